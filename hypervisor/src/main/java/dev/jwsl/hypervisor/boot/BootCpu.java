package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.kvm.DescriptorTable;
import dev.jwsl.hypervisor.kvm.Msr;
import dev.jwsl.hypervisor.kvm.Registers;
import dev.jwsl.hypervisor.kvm.Segment;
import dev.jwsl.hypervisor.kvm.SpecialRegisters;
import dev.jwsl.hypervisor.kvm.Vcpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * vCPU register state for the 64-bit boot protocol: long mode with paging on the identity tables
 * of {@link PageTables}, flat segments from {@link Gdt}, RSI pointing at the zero page. Also the
 * local APIC LINT pins and boot MSRs every vCPU needs (the PC wiring the MP table describes).
 */
public final class BootCpu {
    static final long CR0_PE = 1, CR0_ET = 1 << 4, CR0_PG = 1L << 31;
    static final long CR4_PAE = 1 << 5;
    static final long EFER_LME = 1 << 8, EFER_LMA = 1 << 10;
    /** RFLAGS bit 1 is reserved and always 1. */
    static final long RFLAGS_RESERVED = 2;
    /** Local APIC LVT registers and delivery modes (Intel SDM vol. 3, 11.5.1). */
    static final int APIC_LVT_LINT0 = 0x350, APIC_LVT_LINT1 = 0x360;
    static final int APIC_MODE_EXTINT = 0x7 << 8, APIC_MODE_NMI = 0x4 << 8;
    static final int APIC_MODE_MASK = 0x7 << 8;

    /** MSR numbers (Intel SDM vol. 4; AMD APM vol. 2 for the SYSCALL ones, shared by both). */
    static final int MSR_IA32_SYSENTER_CS = 0x174, MSR_IA32_SYSENTER_ESP = 0x175, MSR_IA32_SYSENTER_EIP = 0x176;
    static final int MSR_IA32_MISC_ENABLE = 0x1a0, MSR_MTRR_DEF_TYPE = 0x2ff;
    static final int MSR_STAR = 0xc000_0081, MSR_LSTAR = 0xc000_0082, MSR_CSTAR = 0xc000_0083;
    static final int MSR_SYSCALL_MASK = 0xc000_0084, MSR_KERNEL_GS_BASE = 0xc000_0102;
    /** IA32_MISC_ENABLE bit 0: without it the kernel says "Disabled fast string operations" and drops ERMS. */
    static final long MISC_ENABLE_FAST_STRING = 1;
    /** MTRRdefType: MTRRs enabled, memory write-back unless a range says otherwise. */
    static final long MTRR_ENABLE = 1 << 11, MTRR_TYPE_WRBACK = 6;

    private BootCpu() {}

    /** The MSRs every vCPU starts with, as firmware would leave them. */
    public static List<Msr> bootMsrs() {
        return List.of(
                new Msr(MSR_IA32_SYSENTER_CS, 0), new Msr(MSR_IA32_SYSENTER_ESP, 0), new Msr(MSR_IA32_SYSENTER_EIP, 0),
                new Msr(MSR_STAR, 0), new Msr(MSR_LSTAR, 0), new Msr(MSR_CSTAR, 0), new Msr(MSR_SYSCALL_MASK, 0),
                new Msr(MSR_KERNEL_GS_BASE, 0),
                new Msr(MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
                new Msr(MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK));
    }

    /** Puts the bootstrap vCPU at {@code entry} in long mode. */
    public static void setupBootVcpu(Vcpu vcpu, long entry) {
        vcpu.setSpecialRegisters(longMode(vcpu.specialRegisters()));
        long rsi = Layout.ZERO_PAGE, rsp = Layout.BOOT_STACK, rbp = Layout.BOOT_STACK;
        vcpu.setRegisters(new Registers(0, 0, 0, 0, rsi, 0, rsp, rbp, 0, 0, 0, 0, 0, 0, 0, 0, entry, RFLAGS_RESERVED));
    }

    /** {@code reset} (a vCPU's registers after creation) in long mode on jwsl's GDT, IDT and page tables. */
    static SpecialRegisters longMode(SpecialRegisters reset) {
        Segment data = Gdt.segment(Gdt.DATA_INDEX);
        return reset.withLongMode(Gdt.segment(Gdt.CODE_INDEX), data, Gdt.segment(Gdt.TSS_INDEX),
                new DescriptorTable(Layout.GDT, (short) (Gdt.byteSize() - 1)),
                new DescriptorTable(Layout.IDT, (short) 7), CR0_PE | CR0_ET | CR0_PG, Layout.PML4, CR4_PAE,
                EFER_LME | EFER_LMA);
    }

    /** LINT0 = ExtINT (the 8259 path), LINT1 = NMI, on any vCPU. */
    public static void setupLapic(Vcpu vcpu) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment lapic = vcpu.getLapic(arena);
            wireLints(lapic);
            vcpu.setLapic(lapic);
        }
    }

    /** Sets the LINT delivery modes in a local APIC register page, keeping every other bit. */
    static void wireLints(MemorySegment lapic) {
        setDeliveryMode(lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
        setDeliveryMode(lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
    }

    private static void setDeliveryMode(MemorySegment apicRegs, int offset, int mode) {
        int v = apicRegs.get(ValueLayout.JAVA_INT_UNALIGNED, offset);
        apicRegs.set(ValueLayout.JAVA_INT_UNALIGNED, offset, (v & ~APIC_MODE_MASK) | mode);
    }
}
