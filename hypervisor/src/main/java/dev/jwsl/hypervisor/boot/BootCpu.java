package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.kvm.Vcpu;
import dev.jwsl.hypervisor.kvm.generated.kvm_dtable;
import dev.jwsl.hypervisor.kvm.generated.kvm_lapic_state;
import dev.jwsl.hypervisor.kvm.generated.kvm_regs;
import dev.jwsl.hypervisor.kvm.generated.kvm_sregs;

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
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment sregs = vcpu.getSregs(arena);
            Gdt.toKvmSegment(Gdt.CODE_INDEX, kvm_sregs.cs(sregs));
            for (MemorySegment s : new MemorySegment[] {kvm_sregs.ds(sregs), kvm_sregs.es(sregs),
                    kvm_sregs.fs(sregs), kvm_sregs.gs(sregs), kvm_sregs.ss(sregs)}) {
                Gdt.toKvmSegment(Gdt.DATA_INDEX, s);
            }
            Gdt.toKvmSegment(Gdt.TSS_INDEX, kvm_sregs.tr(sregs));
            MemorySegment gdt = kvm_sregs.gdt(sregs);
            kvm_dtable.base(gdt, Layout.GDT);
            kvm_dtable.limit(gdt, (short) (Gdt.byteSize() - 1));
            MemorySegment idt = kvm_sregs.idt(sregs);
            kvm_dtable.base(idt, Layout.IDT);
            kvm_dtable.limit(idt, (short) 7);
            kvm_sregs.cr0(sregs, CR0_PE | CR0_ET | CR0_PG);
            kvm_sregs.cr3(sregs, Layout.PML4);
            kvm_sregs.cr4(sregs, CR4_PAE);
            kvm_sregs.efer(sregs, EFER_LME | EFER_LMA);
            vcpu.setSregs(sregs);

            MemorySegment regs = kvm_regs.allocate(arena);
            kvm_regs.rflags(regs, RFLAGS_RESERVED);
            kvm_regs.rip(regs, entry);
            kvm_regs.rsp(regs, Layout.BOOT_STACK);
            kvm_regs.rbp(regs, Layout.BOOT_STACK);
            kvm_regs.rsi(regs, Layout.ZERO_PAGE);
            vcpu.setRegs(regs);
        }
    }

    /** LINT0 = ExtINT (the 8259 path), LINT1 = NMI, on any vCPU. */
    public static void setupLapic(Vcpu vcpu) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment lapic = vcpu.getLapic(arena);
            MemorySegment regs = kvm_lapic_state.regs(lapic);
            setDeliveryMode(regs, APIC_LVT_LINT0, APIC_MODE_EXTINT);
            setDeliveryMode(regs, APIC_LVT_LINT1, APIC_MODE_NMI);
            vcpu.setLapic(lapic);
        }
    }

    private static void setDeliveryMode(MemorySegment apicRegs, int offset, int mode) {
        int v = apicRegs.get(ValueLayout.JAVA_INT_UNALIGNED, offset);
        apicRegs.set(ValueLayout.JAVA_INT_UNALIGNED, offset, (v & ~APIC_MODE_MASK) | mode);
    }
}
