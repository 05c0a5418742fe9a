package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.boot.BootCpu;
import dev.jwsl.hypervisor.boot.GuestCpuid;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** What the VMM sets on a vCPU reaches KVM as set (issue 18): boot MSRs and the per-vCPU CPUID. */
class VcpuSetupIT {
    @Test
    void bootMsrsAndCpuidAreAccepted() {
        try (Kvm kvm = Kvm.open(); Vm vm = kvm.createVm()) {
            vm.createIrqchip();
            try (Vcpu vcpu = vm.createVcpu(1)) {
                vcpu.setCpuid(GuestCpuid.forVcpu(kvm.supportedCpuid(), 1, 2, kvm.check(Cap.TSC_DEADLINE_TIMER) > 0));
                assertEquals(List.of(), vcpu.setMsrs(BootCpu.bootMsrs()), "KVM refused boot MSRs");
                assertEquals(1, vcpu.getMsr(0x1a0) & 1, "IA32_MISC_ENABLE.FAST_STRING");
                assertEquals(0x806, vcpu.getMsr(0x2ff), "MTRRdefType: enabled, write-back");
            }
        }
    }

    /** This machine's two kinds of KVM: kvm_pvm (its module loaded) or kvm_amd in the nested L1. */
    @Test
    void theDeviceOpenedTellsPvm() {
        assertEquals(java.nio.file.Files.isDirectory(java.nio.file.Path.of("/sys/module/kvm_pvm")),
                dev.jwsl.hypervisor.vmm.HostQuirks.isPvmHost());
    }

    @Test
    void anMsrKvmRefusesIsSkippedAndTheRestSet() {
        try (Kvm kvm = Kvm.open(); Vm vm = kvm.createVm(); Vcpu vcpu = vm.createVcpu(0)) {
            Msr bogus = new Msr(0x4000_7fff, 1); // in the hypervisor range, defined by nobody
            assertEquals(List.of(bogus), vcpu.setMsrs(List.of(new Msr(0x2ff, 0xc06), bogus, new Msr(0x1a0, 1))));
            assertEquals(1, vcpu.getMsr(0x1a0) & 1, "the MSR after the refused one is set");
        }
    }
}
