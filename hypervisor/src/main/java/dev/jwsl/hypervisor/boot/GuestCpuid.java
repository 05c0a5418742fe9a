package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.kvm.CpuidEntries;

/**
 * Specialises KVM's supported CPUID for one vCPU: its APIC ids, the logical processor count and
 * the hypervisor bit. Everything else is what the host's KVM offers (KVM_GET_SUPPORTED_CPUID is
 * already filtered to what KVM can virtualise).
 */
public final class GuestCpuid {
    static final int LEAF_FEATURES = 0x1;
    static final int LEAF_EXT_TOPOLOGY = 0xb;
    static final int LEAF_V2_EXT_TOPOLOGY = 0x1f;
    static final int ECX_HYPERVISOR = 1 << 31;
    static final int EDX_HTT = 1 << 28;

    private GuestCpuid() {}

    public static CpuidEntries forVcpu(CpuidEntries supported, int apicId, int cpus) {
        CpuidEntries c = supported.copy();
        for (CpuidEntries.Entry e : c.entries()) {
            switch (e.function) {
                case LEAF_FEATURES -> {
                    // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
                    e.ebx = (e.ebx & 0x0000_ffff) | (apicId << 24) | (Math.min(cpus, 255) << 16);
                    e.ecx |= ECX_HYPERVISOR;
                    e.edx = cpus > 1 ? e.edx | EDX_HTT : e.edx & ~EDX_HTT;
                }
                case LEAF_EXT_TOPOLOGY, LEAF_V2_EXT_TOPOLOGY -> e.edx = apicId; // x2APIC id
                default -> { }
            }
        }
        return c;
    }
}
