package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.kvm.generated.kvm_sregs;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A vCPU's segment, descriptor-table and control registers ({@code struct kvm_sregs}).
 * {@code interruptBitmap} is KVM's pending external interrupts (four 64-bit words), kept so that a
 * read-modify-write of the other registers does not drop them.
 */
public record SpecialRegisters(Segment cs, Segment ds, Segment es, Segment fs, Segment gs, Segment ss,
                               Segment tr, Segment ldt, DescriptorTable gdt, DescriptorTable idt,
                               long cr0, long cr2, long cr3, long cr4, long cr8, long efer, long apicBase,
                               long[] interruptBitmap) {
    private static final int BITMAP_WORDS = 4;

    public SpecialRegisters {
        if (interruptBitmap.length != BITMAP_WORDS) {
            throw new IllegalArgumentException("interrupt bitmap of " + interruptBitmap.length + " words");
        }
        interruptBitmap = interruptBitmap.clone();
    }

    @Override
    public long[] interruptBitmap() {
        return interruptBitmap.clone();
    }

    /** These registers with the segment and control registers a 64-bit entry point needs. */
    public SpecialRegisters withLongMode(Segment code, Segment data, Segment task, DescriptorTable gdt,
                                         DescriptorTable idt, long cr0, long cr3, long cr4, long efer) {
        return new SpecialRegisters(code, data, data, data, data, data, task, ldt, gdt, idt,
                cr0, cr2, cr3, cr4, cr8, efer, apicBase, interruptBitmap);
    }

    static SpecialRegisters from(MemorySegment s) {
        return new SpecialRegisters(Segment.from(kvm_sregs.cs(s)), Segment.from(kvm_sregs.ds(s)),
                Segment.from(kvm_sregs.es(s)), Segment.from(kvm_sregs.fs(s)), Segment.from(kvm_sregs.gs(s)),
                Segment.from(kvm_sregs.ss(s)), Segment.from(kvm_sregs.tr(s)), Segment.from(kvm_sregs.ldt(s)),
                DescriptorTable.from(kvm_sregs.gdt(s)), DescriptorTable.from(kvm_sregs.idt(s)),
                kvm_sregs.cr0(s), kvm_sregs.cr2(s), kvm_sregs.cr3(s), kvm_sregs.cr4(s), kvm_sregs.cr8(s),
                kvm_sregs.efer(s), kvm_sregs.apic_base(s),
                kvm_sregs.interrupt_bitmap(s).toArray(ValueLayout.JAVA_LONG));
    }

    MemorySegment toStruct(Arena arena) {
        MemorySegment s = kvm_sregs.allocate(arena);
        cs.store(kvm_sregs.cs(s));
        ds.store(kvm_sregs.ds(s));
        es.store(kvm_sregs.es(s));
        fs.store(kvm_sregs.fs(s));
        gs.store(kvm_sregs.gs(s));
        ss.store(kvm_sregs.ss(s));
        tr.store(kvm_sregs.tr(s));
        ldt.store(kvm_sregs.ldt(s));
        gdt.store(kvm_sregs.gdt(s));
        idt.store(kvm_sregs.idt(s));
        kvm_sregs.cr0(s, cr0);
        kvm_sregs.cr2(s, cr2);
        kvm_sregs.cr3(s, cr3);
        kvm_sregs.cr4(s, cr4);
        kvm_sregs.cr8(s, cr8);
        kvm_sregs.efer(s, efer);
        kvm_sregs.apic_base(s, apicBase);
        MemorySegment.copy(interruptBitmap, 0, kvm_sregs.interrupt_bitmap(s), ValueLayout.JAVA_LONG, 0, BITMAP_WORDS);
        return s;
    }
}
