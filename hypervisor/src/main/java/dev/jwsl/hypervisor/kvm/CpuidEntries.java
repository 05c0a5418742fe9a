package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.kvm.generated.kvm_cpuid2;
import dev.jwsl.hypervisor.kvm.generated.kvm_cpuid_entry2;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/** A mutable list of CPUID entries, converted to and from {@code struct kvm_cpuid2}. */
public final class CpuidEntries {
    /** One CPUID leaf/subleaf and its registers. */
    public static final class Entry {
        public final int function;
        public final int index;
        public final int flags;
        public int eax;
        public int ebx;
        public int ecx;
        public int edx;

        public Entry(int function, int index, int flags, int eax, int ebx, int ecx, int edx) {
            this.function = function;
            this.index = index;
            this.flags = flags;
            this.eax = eax;
            this.ebx = ebx;
            this.ecx = ecx;
            this.edx = edx;
        }

        Entry copy() {
            return new Entry(function, index, flags, eax, ebx, ecx, edx);
        }
    }

    private final List<Entry> entries;

    public CpuidEntries(List<Entry> entries) {
        this.entries = entries;
    }

    static CpuidEntries copyOf(MemorySegment cpuid2) {
        int n = kvm_cpuid2.nent(cpuid2);
        List<Entry> list = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            MemorySegment e = cpuid2.asSlice(kvm_cpuid2.sizeof() + (long) i * kvm_cpuid_entry2.sizeof(),
                    kvm_cpuid_entry2.sizeof());
            list.add(new Entry(kvm_cpuid_entry2.function(e), kvm_cpuid_entry2.index(e), kvm_cpuid_entry2.flags(e),
                    kvm_cpuid_entry2.eax(e), kvm_cpuid_entry2.ebx(e), kvm_cpuid_entry2.ecx(e),
                    kvm_cpuid_entry2.edx(e)));
        }
        return new CpuidEntries(list);
    }

    /** A deep copy, to specialise per vCPU. */
    public CpuidEntries copy() {
        return new CpuidEntries(new ArrayList<>(entries.stream().map(Entry::copy).toList()));
    }

    public List<Entry> entries() {
        return entries;
    }

    MemorySegment toKvmCpuid2(Arena arena) {
        MemorySegment seg = arena.allocate(kvm_cpuid2.sizeof() + entries.size() * kvm_cpuid_entry2.sizeof(), 8);
        kvm_cpuid2.nent(seg, entries.size());
        for (int i = 0; i < entries.size(); i++) {
            Entry en = entries.get(i);
            MemorySegment e = seg.asSlice(kvm_cpuid2.sizeof() + (long) i * kvm_cpuid_entry2.sizeof(),
                    kvm_cpuid_entry2.sizeof());
            kvm_cpuid_entry2.function(e, en.function);
            kvm_cpuid_entry2.index(e, en.index);
            kvm_cpuid_entry2.flags(e, en.flags);
            kvm_cpuid_entry2.eax(e, en.eax);
            kvm_cpuid_entry2.ebx(e, en.ebx);
            kvm_cpuid_entry2.ecx(e, en.ecx);
            kvm_cpuid_entry2.edx(e, en.edx);
        }
        return seg;
    }
}
