package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.kvm.generated.kvm_dtable;

import java.lang.foreign.MemorySegment;

/** The GDTR or IDTR ({@code struct kvm_dtable}): base and limit (size - 1). */
public record DescriptorTable(long base, short limit) {

    static DescriptorTable from(MemorySegment m) {
        return new DescriptorTable(kvm_dtable.base(m), kvm_dtable.limit(m));
    }

    void store(MemorySegment m) {
        kvm_dtable.base(m, base);
        kvm_dtable.limit(m, limit);
    }
}
