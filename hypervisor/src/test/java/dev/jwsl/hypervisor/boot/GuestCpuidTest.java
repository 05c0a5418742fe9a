package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.kvm.CpuidEntries;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CPUID as a 6.12 guest parses it: one package of N cores, one thread each, APIC id = vCPU
 * index, whatever the host's topology (issue 18). The inputs are what KVM_GET_SUPPORTED_CPUID
 * returned on a 16-thread Intel host and on an AMD host with 8-core complexes.
 */
class GuestCpuidTest {
    private static CpuidEntries.Entry e(int function, int index, int eax, int ebx, int ecx, int edx) {
        return new CpuidEntries.Entry(function, index, 0, eax, ebx, ecx, edx);
    }

    private static CpuidEntries intelHost() {
        return new CpuidEntries(new ArrayList<>(List.of(
                e(0x1, 0, 0x906ea, 0x0810_0800, 0x77fa_fbff, 0xbfeb_fbff),
                // L1d, L2 shared by 2 threads, L3 by 16; 8 cores per package
                e(0x4, 0, (7 << 26) | (1 << 14) | (1 << 5) | 1, 0x01c0_003f, 63, 0),
                e(0x4, 1, (7 << 26) | (1 << 14) | (2 << 5) | 3, 0x03c0_003f, 1023, 0),
                e(0x4, 2, (7 << 26) | (15 << 14) | (3 << 5) | 3, 0x03c0_003f, 12287, 6),
                e(0x4, 3, 0, 0, 0, 0),
                e(0x7, 0, 0, 0x029c_6fbf, (1 << 5) | (1 << 2), (1 << 24) | (1 << 4)),
                e(0xd, 0, 0x2e7, 0x2440, 0x2440, 0),
                e(0xa, 0, 0x0704_3004, 0, 0, 0x603),
                // KVM's 0xB: EAX..ECX zeroed, one subleaf
                e(0xb, 0, 0, 0, 0, 0),
                e(0x8000_0008, 0, 0x3027, 0, 0x7, 0))));
    }

    private static CpuidEntries amdHost() {
        return new CpuidEntries(new ArrayList<>(List.of(
                e(0x1, 0, 0x00a2_0f12, 0x0a10_0800, 0x7ed8_320b, 0x178b_fbff),
                e(0xb, 0, 1, 2, 0x100, 5),
                e(0xb, 1, 7, 16, 0x201, 5),
                e(0x8000_0008, 0, 0x3030, 0, 0x700f, 0),
                e(0x8000_001d, 0, (1 << 14) | (1 << 5) | 1, 0x01c0_003f, 63, 0),
                e(0x8000_001d, 1, (15 << 14) | (3 << 5) | 3, 0x03c0_003f, 32767, 1),
                e(0x8000_001e, 0, 5, 0x0102, 0x0100, 0),
                e(0x8000_0026, 0, 1, 2, 0x100, 5))));
    }

    private static CpuidEntries.Entry find(CpuidEntries c, int function, int index) {
        return c.entries().stream().filter(x -> x.function == function && x.index == index).findFirst().orElse(null);
    }

    @Test
    void leafOneCarriesTheApicIdTheCountAndTheHypervisorBit() {
        CpuidEntries c = GuestCpuid.forVcpu(intelHost(), 2, 3, true);
        CpuidEntries.Entry f = find(c, 1, 0);
        assertEquals(2, f.ebx >>> 24);
        assertEquals(3, (f.ebx >>> 16) & 0xff);
        assertEquals(0x0800, f.ebx & 0xffff, "brand index and CLFLUSH size kept");
        assertTrue((f.ecx & (1 << 31)) != 0, "hypervisor");
        assertTrue((f.ecx & (1 << 24)) != 0, "TSC deadline, which KVM emulates");
        assertTrue((f.edx & (1 << 28)) != 0, "HTT with more than one vCPU");
        CpuidEntries one = GuestCpuid.forVcpu(intelHost(), 0, 1, false);
        assertEquals(0, find(one, 1, 0).ecx & (1 << 24), "no TSC deadline where KVM lacks it");
        assertEquals(0, find(one, 1, 0).edx & (1 << 28));
    }

    @Test
    void extendedTopologyDescribesOneThreadPerCoreAndEveryVcpuACore() {
        for (CpuidEntries host : List.of(intelHost(), amdHost())) {
            CpuidEntries c = GuestCpuid.forVcpu(host, 5, 6, false);
            CpuidEntries.Entry smt = find(c, 0xb, 0), core = find(c, 0xb, 1), end = find(c, 0xb, 2);
            assertNotNull(end);
            assertEquals(0, smt.eax, "no APIC id bits for threads");
            assertEquals(1, smt.ebx);
            assertEquals(0x100, smt.ecx, "level 0 is SMT");
            assertEquals(3, core.eax, "6 cores take 3 APIC id bits");
            assertEquals(6, core.ebx);
            assertEquals(0x201, core.ecx, "level 1 is core");
            assertEquals(2, end.ecx, "level 2 ends the list");
            for (CpuidEntries.Entry x : List.of(smt, core, end)) {
                assertEquals(5, x.edx, "x2APIC id");
                assertEquals(1, x.flags, "the subleaf is significant");
            }
            assertEquals(3, c.entries().stream().filter(x -> x.function == 0xb).count());
        }
    }

    @Test
    void cachesAreSharedByOneCoreExceptTheLastLevel() {
        CpuidEntries c = GuestCpuid.forVcpu(intelHost(), 0, 4, false);
        for (int i = 0; i < 3; i++) {
            int eax = find(c, 4, i).eax;
            assertEquals(3, eax >>> 26, "4 core ids in the package");
            assertEquals(i < 2 ? 0 : 3, (eax >>> 14) & 0xfff, "threads sharing the cache at subleaf " + i);
            assertEquals(find(intelHost(), 4, i).eax & 0x3fff, eax & 0x3fff, "type and level kept");
        }
        assertEquals(0, find(c, 4, 3).eax, "the terminating subleaf stays null");
        CpuidEntries a = GuestCpuid.forVcpu(amdHost(), 0, 4, false);
        assertEquals(0, (find(a, 0x8000_001d, 0).eax >>> 14) & 0xfff);
        assertEquals(3, (find(a, 0x8000_001d, 1).eax >>> 14) & 0xfff);
    }

    @Test
    void amdCoreCountAndExtendedApicIdAreTheVms() {
        CpuidEntries a = GuestCpuid.forVcpu(amdHost(), 3, 4, false);
        CpuidEntries.Entry sizes = find(a, 0x8000_0008, 0);
        assertEquals(3, sizes.ecx & 0xff, "NC: 4 cores");
        assertEquals(2, (sizes.ecx >>> 12) & 0xf, "2 APIC id bits for the core id");
        assertEquals(0x3030, sizes.eax, "address sizes kept");
        CpuidEntries.Entry topo = find(a, 0x8000_001e, 0);
        assertEquals(3, topo.eax);
        assertEquals(3, topo.ebx, "core id 3, one thread per core");
        assertEquals(0, topo.ecx, "node 0 of 1");
        assertEquals(null, find(a, 0x8000_0026, 0), "the host's AMD extended topology is not passed on");
    }

    @Test
    void waitpkgThePmuAndAmxWithoutItsStateAreHidden() {
        CpuidEntries c = GuestCpuid.forVcpu(intelHost(), 0, 1, false);
        assertEquals(1 << 2, find(c, 7, 0).ecx, "WAITPKG cleared, the rest kept");
        assertEquals(1 << 4, find(c, 7, 0).edx, "AMX-TILE cleared: leaf 0xD has no tile state");
        CpuidEntries permitted = intelHost();
        find(permitted, 0xd, 0).eax |= (1 << 17) | (1 << 18);
        assertEquals((1 << 24) | (1 << 4), find(GuestCpuid.forVcpu(permitted, 0, 1, false), 7, 0).edx,
                "AMX kept with its state components");
        CpuidEntries.Entry pmu = find(c, 0xa, 0);
        assertEquals(0, pmu.eax | pmu.ebx | pmu.ecx | pmu.edx);
    }

    @Test
    void theHostListIsNotChanged() {
        CpuidEntries host = intelHost();
        GuestCpuid.forVcpu(host, 1, 2, true);
        assertEquals(0, find(host, 0xb, 0).edx);
        assertEquals(0x0810_0800, find(host, 1, 0).ebx);
    }

    @Test
    void apicIdBits() {
        assertEquals(0, GuestCpuid.bitsFor(1));
        assertEquals(1, GuestCpuid.bitsFor(2));
        assertEquals(2, GuestCpuid.bitsFor(3));
        assertEquals(2, GuestCpuid.bitsFor(4));
        assertEquals(3, GuestCpuid.bitsFor(5));
        assertEquals(8, GuestCpuid.bitsFor(256));
    }
}
