package dev.jwsl.hypervisor.vmm;

import java.io.OutputStream;
import java.nio.file.Path;

/**
 * What to boot and with what resources.
 *
 * @param kernel       bzImage or ELF vmlinux
 * @param initrd       initramfs, or null
 * @param cmdline      the kernel command line; the builder puts its {@code virtio_mmio.device=}
 *                     declarations in front
 * @param memoryBytes  guest RAM
 * @param cpus         vCPU count
 * @param consoleOut   where the serial console's output goes
 * @param vsock        a virtio-vsock device, or null for none
 * @param disks        virtio-blk devices, in order
 * @param shares       virtio-9p devices, host directories served by jwsl's 9P server
 * @param network      a virtio-net device on the user-mode network, or null for none
 * @param snapshot     restore from and write a snapshot, or null for a plain boot
 */
public record VmConfig(Path kernel, Path initrd, String cmdline, long memoryBytes, int cpus, OutputStream consoleOut,
                       Vsock vsock, java.util.List<Disk> disks, java.util.List<FileShare> shares,
                       dev.jwsl.hypervisor.net.NetConfig network, Snapshot snapshot) {
    /** Smallest RAM jwsl will boot a kernel in. */
    public static final long MIN_MEMORY = 32L << 20;
    /** Most vCPUs: KVM's usual limit is far higher, the MP table's is {@link dev.jwsl.hypervisor.boot.MpTable#MAX_CPUS}. */
    public static final int MAX_CPUS = 64;

    /** A VM without vsock. */
    public VmConfig(Path kernel, Path initrd, String cmdline, long memoryBytes, int cpus, OutputStream consoleOut) {
        this(kernel, initrd, cmdline, memoryBytes, cpus, consoleOut, null, java.util.List.of(), java.util.List.of(), null, null);
    }

    public VmConfig {
        disks = java.util.List.copyOf(disks);
        shares = java.util.List.copyOf(shares);
    }

    /** This configuration with a vsock device. */
    public VmConfig withVsock(Vsock vsock) {
        return new VmConfig(kernel, initrd, cmdline, memoryBytes, cpus, consoleOut, vsock, disks, shares, network, snapshot);
    }

    /** This configuration with these block devices. */
    public VmConfig withDisks(java.util.List<Disk> disks) {
        return new VmConfig(kernel, initrd, cmdline, memoryBytes, cpus, consoleOut, vsock, disks, shares, network, snapshot);
    }

    /** This configuration with these 9P shares. */
    public VmConfig withShares(java.util.List<FileShare> shares) {
        return new VmConfig(kernel, initrd, cmdline, memoryBytes, cpus, consoleOut, vsock, disks, shares, network, snapshot);
    }

    /** This configuration with a network device (null: none). */
    public VmConfig withNetwork(dev.jwsl.hypervisor.net.NetConfig network) {
        return new VmConfig(kernel, initrd, cmdline, memoryBytes, cpus, consoleOut, vsock, disks, shares, network, snapshot);
    }

    /** This configuration with a snapshot (null: none). */
    public VmConfig withSnapshot(Snapshot snapshot) {
        return new VmConfig(kernel, initrd, cmdline, memoryBytes, cpus, consoleOut, vsock, disks, shares, network, snapshot);
    }

    /**
     * Instant start (issue 19): a VM with a snapshot directory is restored from the snapshot there
     * if one was taken of the same kernel, initramfs, disks, command line, resources, devices, host
     * CPU and jwsl; otherwise it boots, and when guest init says it is ready (before the host
     * hears so), its state and RAM are written there for the next start.
     *
     * @param dir     the snapshot's directory
     * @param restore false: never restore, always boot and write a fresh snapshot
     */
    public record Snapshot(Path dir, boolean restore) {}

    /**
     * A virtio-9p device: the guest mounts it with {@code mount -t 9p -o trans=virtio TAG DIR}.
     *
     * @param tag     the mount tag (at most 64 bytes here; the spec allows 65535)
     * @param hostDir the host directory served, with this process's permissions
     */
    public record FileShare(String tag, Path hostDir) {}

    /**
     * A virtio-blk device.
     *
     * @param image    raw image file, or null for an empty slot (media inserted later)
     * @param readOnly attach it read-only
     * @param serial   the name the guest sees (GET_ID, /sys/block/vdX/serial), at most 20 bytes
     */
    public record Disk(Path image, boolean readOnly, String serial) {}

    /**
     * A virtio-vsock device with Firecracker's hybrid Unix-socket host side (see
     * {@code devices.virtio.vsock}): guest connections to host port P go to {@code udsPath_P};
     * host clients connect to {@code udsPath} and send {@code CONNECT <port>\n}.
     *
     * @param udsPath  the host Unix socket path
     * @param guestCid the guest's context id, 3 or more
     */
    public record Vsock(Path udsPath, long guestCid) {
        /** The guest CID when none is given. */
        public static final long DEFAULT_GUEST_CID = 3;

        public Vsock(Path udsPath) {
            this(udsPath, DEFAULT_GUEST_CID);
        }
    }
}
