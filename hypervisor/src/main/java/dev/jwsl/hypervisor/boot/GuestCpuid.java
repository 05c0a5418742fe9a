package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.kvm.CpuidEntries;

import java.util.List;

/**
 * Specialises KVM's supported CPUID for one vCPU of a VM with {@code cpus} vCPUs. KVM's list is
 * filtered to what it can virtualise, but its topology is the host's: leaf 4 and 0x8000001D
 * share caches among the host's threads, 0xB/0x1F describe no levels at all (a 6.12 guest falls
 * back to legacy parsing and WARNs), and 0x80000008 counts the host's cores. Every vCPU here is
 * one core of one package, one thread per core, APIC id = vCPU index; the leaves say exactly that.
 * Also: the hypervisor bit, the TSC-deadline timer where KVM emulates it (KVM leaves it out of
 * the supported list), and no WAITPKG or architectural PMU, which the guest must not rely on.
 * AMX only with its XSTATE components: KVM lists those in leaf 0xD only for a process that asked
 * for them (arch_prctl ARCH_REQ_XCOMP_GUEST_PERM), but AMX itself in leaf 7 regardless.
 */
public final class GuestCpuid {
    static final int LEAF_FEATURES = 0x1;
    static final int LEAF_CACHE = 0x4;
    static final int LEAF_STRUCTURED_FEATURES = 0x7;
    static final int LEAF_PMU = 0xa;
    static final int LEAF_EXT_TOPOLOGY = 0xb;
    static final int LEAF_V2_EXT_TOPOLOGY = 0x1f;
    static final int LEAF_ADDRESS_SIZES = 0x8000_0008;
    static final int LEAF_AMD_CACHE = 0x8000_001d;
    static final int LEAF_AMD_TOPOLOGY = 0x8000_001e;
    static final int LEAF_AMD_EXT_TOPOLOGY = 0x8000_0026;

    static final int ECX_TSC_DEADLINE = 1 << 24;
    static final int ECX_HYPERVISOR = 1 << 31;
    static final int EDX_HTT = 1 << 28;
    /** Leaf 7 subleaf 0: UMONITOR/UMWAIT/TPAUSE. */
    static final int ECX_WAITPKG = 1 << 5;
    /** Leaf 7 subleaf 0 EDX: AMX-BF16, AMX-TILE, AMX-INT8. */
    static final int EDX_AMX = (1 << 22) | (1 << 24) | (1 << 25);
    /** Leaf 0xD subleaf 0 EAX: the XTILECFG and XTILEDATA state components. */
    static final int XCR0_AMX = (1 << 17) | (1 << 18);
    static final int LEAF_XSTATE = 0xd;
    /** Topology level types in 0xB/0x1F ECX[15:8]. */
    static final int LEVEL_INVALID = 0, LEVEL_SMT = 1, LEVEL_CORE = 2;
    /** {@code KVM_CPUID_FLAG_SIGNIFCANT_INDEX}: the subleaf matters. */
    static final int FLAG_SIGNIFICANT_INDEX = 1;

    private GuestCpuid() {}

    /**
     * @param tscDeadline whether KVM emulates the TSC-deadline timer ({@code KVM_CAP_TSC_DEADLINE_TIMER})
     */
    public static CpuidEntries forVcpu(CpuidEntries supported, int apicId, int cpus, boolean tscDeadline) {
        CpuidEntries c = supported.copy();
        int coreBits = bitsFor(cpus);
        boolean hasTopology = false, hasV2Topology = false;
        boolean amxState = c.entries().stream()
                .anyMatch(e -> e.function == LEAF_XSTATE && e.index == 0 && (e.eax & XCR0_AMX) == XCR0_AMX);
        for (CpuidEntries.Entry e : c.entries()) {
            switch (e.function) {
                case LEAF_FEATURES -> {
                    // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
                    e.ebx = (e.ebx & 0x0000_ffff) | (apicId << 24) | (Math.min(cpus, 255) << 16);
                    e.ecx |= ECX_HYPERVISOR;
                    e.ecx = tscDeadline ? e.ecx | ECX_TSC_DEADLINE : e.ecx & ~ECX_TSC_DEADLINE;
                    e.edx = cpus > 1 ? e.edx | EDX_HTT : e.edx & ~EDX_HTT;
                }
                case LEAF_CACHE -> {
                    // EAX[31:26] core ids in the package - 1, EAX[25:14] threads sharing this cache - 1.
                    if ((e.eax & 0x1f) != 0) {
                        e.eax = (e.eax & 0x3fff) | (((1 << coreBits) - 1) << 26) | (sharing(e.eax, cpus) << 14);
                    }
                }
                case LEAF_STRUCTURED_FEATURES -> {
                    if (e.index == 0) {
                        e.ecx &= ~ECX_WAITPKG;
                        e.edx = amxState ? e.edx : e.edx & ~EDX_AMX;
                    }
                }
                case LEAF_PMU -> e.eax = e.ebx = e.ecx = e.edx = 0;
                case LEAF_EXT_TOPOLOGY -> hasTopology = true;
                case LEAF_V2_EXT_TOPOLOGY -> hasV2Topology = true;
                case LEAF_ADDRESS_SIZES -> {
                    // ECX[7:0] cores in the package - 1, ECX[15:12] APIC id bits for the core id.
                    e.ecx = (e.ecx & ~0xf0ff) | (coreBits << 12) | (Math.min(cpus, 256) - 1);
                }
                case LEAF_AMD_CACHE -> {
                    if ((e.eax & 0x1f) != 0) {
                        e.eax = (e.eax & ~(0xfff << 14)) | (sharing(e.eax, cpus) << 14);
                    }
                }
                case LEAF_AMD_TOPOLOGY -> {
                    e.eax = apicId;         // extended APIC id
                    e.ebx = apicId & 0xff;  // core id; threads per core - 1 = 0
                    e.ecx = 0;              // node 0 of 1
                    e.edx = 0;
                }
                default -> { }
            }
        }
        // Rebuilt rather than edited: KVM lists the host's subleaves, whatever their number.
        c.entries().removeIf(e -> e.function == LEAF_EXT_TOPOLOGY || e.function == LEAF_V2_EXT_TOPOLOGY
                || e.function == LEAF_AMD_EXT_TOPOLOGY);
        if (hasTopology) {
            c.entries().addAll(topology(LEAF_EXT_TOPOLOGY, apicId, cpus, coreBits));
        }
        if (hasV2Topology) {
            c.entries().addAll(topology(LEAF_V2_EXT_TOPOLOGY, apicId, cpus, coreBits));
        }
        return c;
    }

    /** Leaf 0xB or 0x1F: an SMT level of one thread, a core level of {@code cpus}, then the end. */
    static List<CpuidEntries.Entry> topology(int leaf, int apicId, int cpus, int coreBits) {
        return List.of(
                new CpuidEntries.Entry(leaf, 0, FLAG_SIGNIFICANT_INDEX, 0, 1, (LEVEL_SMT << 8), apicId),
                new CpuidEntries.Entry(leaf, 1, FLAG_SIGNIFICANT_INDEX, coreBits, cpus, (LEVEL_CORE << 8) | 1, apicId),
                new CpuidEntries.Entry(leaf, 2, FLAG_SIGNIFICANT_INDEX, 0, 0, (LEVEL_INVALID << 8) | 2, apicId));
    }

    /** Threads sharing the cache a leaf 4 / 0x8000001D EAX describes, minus one: L1 and L2 per core, L3 by all. */
    private static int sharing(int eax, int cpus) {
        int level = (eax >>> 5) & 0x7;
        return level >= 3 ? Math.min(cpus, 4096) - 1 : 0;
    }

    /** APIC id bits that {@code n} ids need. */
    static int bitsFor(int n) {
        return n <= 1 ? 0 : 32 - Integer.numberOfLeadingZeros(n - 1);
    }
}
