package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.kvm.CpuidEntries;
import dev.jwsl.hypervisor.kvm.Kvm;
import dev.jwsl.hypervisor.kvm.KvmException;
import dev.jwsl.hypervisor.sys.SysCallException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Capability checks for hosts whose KVM needs guest-side accommodations. The VMM code path is the
 * same everywhere; only the kernel command line differs (kernel-build/README.md explains each item).
 */
public final class HostQuirks {
    /**
     * Kernel parameters for a PVM host (kvm_pvm without hardware virtualization), where the guest's
     * kernel mode runs under an instruction emulator: turn on the jwsl kernel's {@code pvm_compat}
     * paths and hide CPU features whose instructions the emulator cannot execute.
     */
    static final List<String> PVM_PARAMS = List.of(
            "pvm_compat",
            // A contended PV spinlock kicks the waiting vCPU with a KVM hypercall; PVM answers it
            // by patching the guest's VMCALL in place, which faults on read-only kernel text
            // (an oops in interrupt context, then a panic).
            "nopvspin",
            "clearcpuid=xsave,cx16,popcnt,fsgsbase,pcid,invpcid,rdpid,avx,avx2,avx512f,rdrand,rdseed,smap,movbe,bmi1,bmi2");

    /**
     * KVM_CPUID_VENDOR_FEATURES: PVM's KVM offers this leaf with its vendor signature in EBX
     * ("PVM", 0x4d5650), the leaf a PVM guest kernel reads to know where it runs (virt-pvm/linux,
     * arch/x86/include/asm/pvm_para.h). Hardware KVM has no such leaf.
     */
    static final int KVM_CPUID_VENDOR_FEATURES = 0x40000002;
    static final int PVM_SIGNATURE = 0x4d5650;

    private HostQuirks() {}

    /**
     * True when the KVM jwsl opens ({@link Kvm#open()}) is kvm_pvm: told by the device itself, so
     * a host with kvm_pvm loaded beside kvm_intel or kvm_amd gets what its /dev/kvm is. Where the
     * device cannot be opened (only a command line is printed), whether kvm_pvm is loaded.
     */
    public static boolean isPvmHost() {
        return Detected.PVM;
    }

    /** Whether {@code supported} (KVM_GET_SUPPORTED_CPUID) is PVM's. */
    static boolean isPvm(CpuidEntries supported) {
        return supported.entries().stream()
                .anyMatch(e -> e.function == KVM_CPUID_VENDOR_FEATURES && e.ebx == PVM_SIGNATURE);
    }

    /** The extra kernel parameters this host needs (none on hardware KVM). */
    public static List<String> kernelParams() {
        return isPvmHost() ? PVM_PARAMS : List.of();
    }

    /** Asked once per process: the device does not change under it. */
    private static final class Detected {
        static final boolean PVM = detect();

        private static boolean detect() {
            try (Kvm kvm = Kvm.open()) {
                return isPvm(kvm.supportedCpuid());
            } catch (KvmException | SysCallException e) {
                return Files.isDirectory(Path.of("/sys/module/kvm_pvm"));
            }
        }
    }
}
