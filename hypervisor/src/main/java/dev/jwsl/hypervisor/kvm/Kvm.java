package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.kvm.generated.KvmH;
import dev.jwsl.hypervisor.kvm.generated.kvm_cpuid2;
import dev.jwsl.hypervisor.kvm.generated.kvm_cpuid_entry2;
import dev.jwsl.hypervisor.kvm.generated.kvm_msr_list;
import dev.jwsl.hypervisor.kvm.generated.kvm_xsave;
import dev.jwsl.hypervisor.sys.Errno;
import dev.jwsl.hypervisor.sys.LibC;
import dev.jwsl.hypervisor.sys.SysCallException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

/** The KVM system fd ({@code /dev/kvm}): API checks, capabilities, supported CPUID, new VMs. */
public final class Kvm extends Fd {
    /** The default device; {@code JWSL_KVM_DEVICE} in the environment overrides it. */
    public static final String DEFAULT_DEVICE = "/dev/kvm";
    /** Upper bound on CPUID entries asked of KVM_GET_SUPPORTED_CPUID (the kernel's own limit is 256). */
    private static final int MAX_CPUID_ENTRIES = 256;

    private final String path;

    private Kvm(int fd, String path) {
        super(fd);
        this.path = path;
    }

    /** Opens the KVM device named by {@code JWSL_KVM_DEVICE}, or {@code /dev/kvm}. */
    public static Kvm open() {
        String dev = System.getenv("JWSL_KVM_DEVICE");
        return open(dev == null || dev.isEmpty() ? DEFAULT_DEVICE : dev);
    }

    /** Opens {@code path} and checks it speaks KVM API version 12. */
    public static Kvm open(String path) {
        int fd;
        try {
            fd = LibC.open(path, LibC.O_RDWR | LibC.O_CLOEXEC);
        } catch (SysCallException e) {
            throw switch (e.errno()) {
                case Errno.ENOENT, Errno.ENODEV, Errno.ENXIO -> new KvmException(KvmException.Reason.NO_DEVICE,
                        path + " does not exist: enable VT-x/AMD-V and load the kvm_intel or kvm_amd module", e);
                case Errno.EACCES, Errno.EPERM -> new KvmException(KvmException.Reason.NO_PERMISSION,
                        "no permission to open " + path + ": add your user to the group owning it ("
                                + ownerGroup(path) + ") with 'sudo usermod -aG " + ownerGroup(path)
                                + " $USER' and log in again", e);
                default -> new KvmException(KvmException.Reason.NO_DEVICE, "cannot open " + path + ": "
                        + Errno.describe(e.errno()), e);
            };
        }
        Kvm kvm = new Kvm(fd, path);
        try {
            int version = LibC.ioctl(fd, KvmH.KVM_GET_API_VERSION(), 0L, "KVM_GET_API_VERSION");
            if (version != KvmH.KVM_API_VERSION()) {
                throw new KvmException(KvmException.Reason.NOT_KVM,
                        path + " speaks KVM API " + version + ", jwsl needs " + KvmH.KVM_API_VERSION());
            }
        } catch (SysCallException e) {
            kvm.close();
            throw new KvmException(KvmException.Reason.NOT_KVM, path + " is not a KVM device", e);
        } catch (KvmException e) {
            kvm.close();
            throw e;
        }
        return kvm;
    }

    private static String ownerGroup(String path) {
        try {
            return Files.getAttribute(Path.of(path), "posix:group").toString();
        } catch (Exception e) {
            return "kvm";
        }
    }

    /** The device path this was opened from. */
    public String path() {
        return path;
    }

    /** KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific positive value. */
    public int check(Cap cap) {
        return ioctl(KvmH.KVM_CHECK_EXTENSION(), cap.id, "KVM_CHECK_EXTENSION");
    }

    /** Throws unless every capability is present. */
    public void require(Cap... caps) {
        for (Cap cap : caps) {
            if (check(cap) <= 0) {
                throw new KvmException(KvmException.Reason.MISSING_CAPABILITY,
                        "KVM on this host lacks KVM_CAP_" + cap.name());
            }
        }
    }

    /** Size of each vCPU's shared kvm_run mapping. */
    public int vcpuMmapSize() {
        return ioctl(KvmH.KVM_GET_VCPU_MMAP_SIZE(), 0L, "KVM_GET_VCPU_MMAP_SIZE");
    }

    /** KVM_GET_SUPPORTED_CPUID: what this host's KVM can expose to a guest. */
    public CpuidEntries supportedCpuid() {
        Arena arena = Arena.ofAuto();
        MemorySegment cpuid = arena.allocate(kvm_cpuid2.sizeof() + MAX_CPUID_ENTRIES * kvm_cpuid_entry2.sizeof(), 8);
        kvm_cpuid2.nent(cpuid, MAX_CPUID_ENTRIES);
        ioctl(KvmH.KVM_GET_SUPPORTED_CPUID(), cpuid, "KVM_GET_SUPPORTED_CPUID");
        return CpuidEntries.copyOf(cpuid);
    }

    /**
     * KVM_GET_MSR_INDEX_LIST: the MSRs a snapshot saves (the architectural ones this host's KVM
     * virtualises and KVM's own, kvmclock's among them).
     */
    public int[] msrIndexList() {
        try (Arena arena = Arena.ofConfined()) {
            int max = 1024;
            MemorySegment list = arena.allocate(kvm_msr_list.sizeof() + 4L * max, 8);
            kvm_msr_list.nmsrs(list, max);
            ioctl(KvmH.KVM_GET_MSR_INDEX_LIST(), list, "KVM_GET_MSR_INDEX_LIST");
            int n = Math.min(kvm_msr_list.nmsrs(list), max);
            return list.asSlice(kvm_msr_list.sizeof(), 4L * n).toArray(ValueLayout.JAVA_INT);
        }
    }

    /** The size of {@code struct kvm_xsave} for a VM of this KVM (KVM_CAP_XSAVE2: larger with AMX). */
    public int xsaveSize() {
        return Math.max((int) kvm_xsave.sizeof(), ioctl(KvmH.KVM_CHECK_EXTENSION(), KvmH.KVM_CAP_XSAVE2(), "KVM_CHECK_EXTENSION"));
    }

    /** Creates a VM. */
    public Vm createVm() {
        int fd = ioctl(KvmH.KVM_CREATE_VM(), 0L, "KVM_CREATE_VM");
        return new Vm(fd, vcpuMmapSize());
    }
}
