package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.kvm.DescriptorTable;
import dev.jwsl.hypervisor.kvm.Registers;
import dev.jwsl.hypervisor.kvm.Segment;
import dev.jwsl.hypervisor.kvm.Vcpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * vCPU register state for the 64-bit boot protocol: long mode with paging on the identity tables
 * of {@link PageTables}, flat segments from {@link Gdt}, RSI pointing at the zero page. Also the
 * local APIC LINT pins every vCPU needs (the PC wiring the MP table describes).
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

    private BootCpu() {}

    /** Puts the bootstrap vCPU at {@code entry} in long mode. */
    public static void setupBootVcpu(Vcpu vcpu, long entry) {
        Segment data = Gdt.segment(Gdt.DATA_INDEX);
        vcpu.setSpecialRegisters(vcpu.specialRegisters().withLongMode(Gdt.segment(Gdt.CODE_INDEX), data,
                Gdt.segment(Gdt.TSS_INDEX), new DescriptorTable(Layout.GDT, (short) (Gdt.byteSize() - 1)),
                new DescriptorTable(Layout.IDT, (short) 7), CR0_PE | CR0_ET | CR0_PG, Layout.PML4, CR4_PAE,
                EFER_LME | EFER_LMA));
        long rsi = Layout.ZERO_PAGE, rsp = Layout.BOOT_STACK, rbp = Layout.BOOT_STACK;
        vcpu.setRegisters(new Registers(0, 0, 0, 0, rsi, 0, rsp, rbp, 0, 0, 0, 0, 0, 0, 0, 0, entry, RFLAGS_RESERVED));
    }

    /** LINT0 = ExtINT (the 8259 path), LINT1 = NMI, on any vCPU. */
    public static void setupLapic(Vcpu vcpu) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment lapic = vcpu.getLapic(arena);
            setDeliveryMode(lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
            setDeliveryMode(lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
            vcpu.setLapic(lapic);
        }
    }

    private static void setDeliveryMode(MemorySegment apicRegs, int offset, int mode) {
        int v = apicRegs.get(ValueLayout.JAVA_INT_UNALIGNED, offset);
        apicRegs.set(ValueLayout.JAVA_INT_UNALIGNED, offset, (v & ~APIC_MODE_MASK) | mode);
    }
}
