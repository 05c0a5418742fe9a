package dev.jwsl.hypervisor.vmm;

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

    private HostQuirks() {}

    /** True when /dev/kvm is provided by kvm_pvm. */
    public static boolean isPvmHost() {
        return Files.isDirectory(Path.of("/sys/module/kvm_pvm"));
    }

    /** The extra kernel parameters this host needs (none on hardware KVM). */
    public static List<String> kernelParams() {
        return isPvmHost() ? PVM_PARAMS : List.of();
    }
}
