package dev.jwsl.hypervisor.boot;

/**
 * The guest-physical memory map jwsl builds for an x86-64 Linux guest. Low addresses follow the
 * PC conventions the kernel expects (Documentation/arch/x86/boot.rst, the Intel MP spec).
 */
public final class Layout {
    /** Boot GDT: null, null, 64-bit code (0x10 = __BOOT_CS), data (0x18 = __BOOT_DS), TSS (0x20). */
    public static final long GDT = 0x500;
    /** An empty boot IDT, right after the GDT's five entries: the kernel installs its own before enabling interrupts. */
    public static final long IDT = 0x528;
    /** The zero page ({@code struct boot_params}) handed to the kernel in RSI. */
    public static final long ZERO_PAGE = 0x7000;
    /** Top of the boot stack (grows down below the page tables). */
    public static final long BOOT_STACK = 0x8ff0;
    /** PML4, PDPT and one page directory identity-mapping the first 1 GiB with 2 MiB pages. */
    public static final long PML4 = 0x9000;
    public static final long PDPT = 0xa000;
    public static final long PD = 0xb000;
    /** Kernel command line (NUL-terminated). */
    public static final long CMDLINE = 0x20000;
    /** The kernel's COMMAND_LINE_SIZE on x86 (arch/x86/include/asm/setup.h). */
    public static final int CMDLINE_MAX = 2048;
    /** MP floating pointer and table, in the last KiB of base memory where the kernel scans. */
    public static final long MPTABLE = 0x9fc00;
    /** End of base memory (start of the legacy VGA/BIOS hole). */
    public static final long BASE_MEMORY_END = 0xa0000;
    /** Where a bzImage's protected-mode kernel is loaded (boot protocol "high" load). */
    public static final long HIMEM = 0x100000;
    /** 32-bit MMIO hole below 4 GiB: RAM is split around it; devices live inside it. */
    public static final long MMIO_GAP_START = 0xd000_0000L;
    public static final long MMIO_GAP_END = 0x1_0000_0000L;
    /**
     * Virtio-mmio devices: 4 KiB register windows from the start of the MMIO gap (VIRTIO 1.2
     * 4.2.2), declared to the kernel with {@code virtio_mmio.device=4K@ADDR:IRQ}.
     */
    public static final long VIRTIO_MMIO_BASE = MMIO_GAP_START;
    public static final long VIRTIO_MMIO_SIZE = 0x1000;
    /**
     * First interrupt line for virtio devices, one each upwards: IRQs 5..23 are free (4 is COM1)
     * and routed to the IOAPIC pins of the same number by the MP table; KVM's IOAPIC has 24
     * pins (KVM_IOAPIC_NUM_PINS), as Firecracker uses them.
     */
    public static final int VIRTIO_IRQ_BASE = 5;
    public static final int VIRTIO_IRQ_LAST = 23;
    /** Default IOAPIC and local APIC addresses (Intel MP spec). */
    public static final long IOAPIC = 0xfec0_0000L;
    public static final long LAPIC = 0xfee0_0000L;
    /** Three pages for KVM_SET_TSS_ADDR and one for KVM_SET_IDENTITY_MAP_ADDR, inside the hole. */
    public static final long KVM_TSS = 0xfffb_d000L;
    public static final long KVM_IDENTITY_MAP = 0xfffb_c000L;

    private Layout() {}
}
