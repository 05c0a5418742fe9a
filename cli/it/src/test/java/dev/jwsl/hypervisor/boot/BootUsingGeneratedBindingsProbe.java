package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.kvm.generated.kvm_regs;

import java.lang.foreign.MemorySegment;

/** Breaks a rule on purpose (test sources only): generated bindings are for kvm and sys alone. */
public final class BootUsingGeneratedBindingsProbe {
    private BootUsingGeneratedBindingsProbe() {}

    static long rip(MemorySegment regs) {
        return kvm_regs.rip(regs);
    }
}
