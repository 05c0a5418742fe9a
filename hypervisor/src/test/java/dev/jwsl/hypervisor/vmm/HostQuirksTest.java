package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.kvm.CpuidEntries;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** PVM is told by the supported CPUID of the device jwsl opens, not by a module being loaded. */
class HostQuirksTest {
    private static CpuidEntries.Entry e(int function, int ebx) {
        return new CpuidEntries.Entry(function, 0, 0, 0, ebx, 0, 0);
    }

    /** KVM_CPUID_SIGNATURE: "KVMKVMKVM\0\0\0" in EBX, ECX, EDX. */
    private static final CpuidEntries.Entry KVM_SIGNATURE = new CpuidEntries.Entry(0x40000000, 0, 0, 0x40000001,
            0x4b4d564b, 0x564b4d56, 0x4d);

    @Test
    void pvmsVendorLeafMarksPvm() {
        CpuidEntries pvm = new CpuidEntries(new ArrayList<>(List.of(e(0, 0x756e6547), KVM_SIGNATURE,
                e(0x40000001, 0), e(HostQuirks.KVM_CPUID_VENDOR_FEATURES, HostQuirks.PVM_SIGNATURE))));
        assertTrue(HostQuirks.isPvm(pvm));
    }

    @Test
    void hardwareKvmAndOtherVendorsAreNotPvm() {
        assertFalse(HostQuirks.isPvm(new CpuidEntries(new ArrayList<>(List.of(e(0, 0x68747541), KVM_SIGNATURE,
                e(0x40000001, 0))))), "kvm_amd/kvm_intel: no vendor leaf");
        assertFalse(HostQuirks.isPvm(new CpuidEntries(new ArrayList<>(List.of(KVM_SIGNATURE,
                e(HostQuirks.KVM_CPUID_VENDOR_FEATURES, 0x12345))))), "another vendor's signature");
        assertFalse(HostQuirks.isPvm(new CpuidEntries(new ArrayList<>(List.of(e(0x4d5650, HostQuirks.PVM_SIGNATURE))))),
                "the signature in another leaf");
    }
}
