package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.memory.GuestMemory;

/** Breaks a rule on purpose (test sources only): kvm must not build on memory. */
public final class KvmReachingUpProbe {
    private KvmReachingUpProbe() {}

    static long first(GuestMemory memory) {
        return memory.readLong(0);
    }
}
