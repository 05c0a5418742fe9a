package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.boot.BootCpu;
import dev.jwsl.hypervisor.boot.BootException;
import dev.jwsl.hypervisor.boot.GuestCpuid;
import dev.jwsl.hypervisor.boot.Layout;
import dev.jwsl.hypervisor.boot.LinuxBoot;
import dev.jwsl.hypervisor.boot.MpTable;
import dev.jwsl.hypervisor.devices.DeviceSetupException;
import dev.jwsl.hypervisor.devices.InitPort;
import dev.jwsl.hypervisor.devices.IoBus;
import dev.jwsl.hypervisor.devices.MmioBus;
import dev.jwsl.hypervisor.devices.legacy.I8042;
import dev.jwsl.hypervisor.devices.legacy.Uart8250;
import dev.jwsl.hypervisor.devices.virtio.block.BlockDevice;
import dev.jwsl.hypervisor.devices.virtio.block.DiskException;
import dev.jwsl.hypervisor.devices.virtio.block.DiskImage;
import dev.jwsl.hypervisor.devices.virtio.net.NetDevice;
import dev.jwsl.hypervisor.devices.virtio.p9.P9Device;
import dev.jwsl.hypervisor.devices.virtio.rng.RngDevice;
import dev.jwsl.hypervisor.devices.virtio.transport.MmioTransport;
import dev.jwsl.hypervisor.devices.virtio.vsock.UnixSocketBackend;
import dev.jwsl.hypervisor.devices.virtio.vsock.VsockDevice;
import dev.jwsl.hypervisor.kvm.Cap;
import dev.jwsl.hypervisor.kvm.CpuidEntries;
import dev.jwsl.hypervisor.kvm.Kvm;
import dev.jwsl.hypervisor.kvm.KvmException;
import dev.jwsl.hypervisor.kvm.Msr;
import dev.jwsl.hypervisor.kvm.Vcpu;
import dev.jwsl.hypervisor.kvm.Vm;
import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.GuestMemoryException;
import dev.jwsl.hypervisor.memory.MemoryRegion;
import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.kvm.VcpuState;
import dev.jwsl.hypervisor.snapshot.SnapshotException;
import dev.jwsl.hypervisor.snapshot.SnapshotFiles;
import dev.jwsl.hypervisor.snapshot.SnapshotKey;
import dev.jwsl.hypervisor.snapshot.VmSnapshot;
import dev.jwsl.hypervisor.sys.EventFd;
import dev.jwsl.hypervisor.virtio.QueueException;
import dev.jwsl.hypervisor.virtio.VirtioDevice;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.net.URISyntaxException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Builds a {@link VirtualMachine} as a linear recipe of {@code attachXxx} steps. Any failure
 * closes what was built so far and surfaces as a {@link VmStartException} with a one-line message.
 */
final class VmBuilder {
    private static final System.Logger LOG = System.getLogger(VmBuilder.class.getName());
    private final VmConfig config;
    private final List<AutoCloseable> built = new ArrayList<>();
    private final List<EventFd> eventFds = new ArrayList<>();
    /** Set once built; devices' callbacks (other threads) read it. */
    private volatile VirtualMachine machine;
    private Kvm kvm;
    private Vm vm;
    private GuestMemory memory;
    private final IoBus ioBus = new IoBus();
    private final MmioBus mmioBus = new MmioBus();
    private final List<AutoCloseable> devices = new ArrayList<>();
    /** {@code virtio_mmio.device=} parameters, one per attached virtio device. */
    private final List<String> deviceParams = new ArrayList<>();
    /** Parameters for the guest init that describe attached devices (the network's addresses). */
    private final List<String> initParams = new ArrayList<>();
    private Uart8250 console;
    private final List<Vcpu> vcpus = new ArrayList<>();
    private final List<BlockDevice> disks = new ArrayList<>();
    private final List<MmioTransport> transports = new ArrayList<>();
    /** The snapshot being restored, when {@link #restore()} builds. */
    private VmSnapshot restoring;

    VmBuilder(VmConfig config) {
        this.config = config;
    }

    /**
     * Builds the VM from the snapshot in the configured directory, or says why not (one log line)
     * and returns empty, having closed all it opened: the caller then boots. Configuration errors
     * still throw, as a boot would fail the same way.
     */
    Optional<VirtualMachine> restore() {
        long t0 = System.nanoTime();
        Path dir = config.snapshot().dir();
        try {
            checkConfig();
            openKvm();
            createVm();
            SnapshotFiles.Loaded loaded = SnapshotFiles.read(dir, snapshotKey());
            restoring = loaded.snapshot();
            if (!sameRanges(restoring.ram(), LinuxBoot.ramRanges(config.memoryBytes()))
                    || restoring.vcpus().size() != config.cpus()) {
                throw new SnapshotException("the snapshot's RAM or vCPUs do not match the VM");
            }
            memory = MmapGuestMemory.mapFile(loaded.memoryFile(), restoring.ram());
            built.add(memory);
            mapMemory();
            attachLegacyDevices();
            console.restore(restoring.console());
            attachVirtioDevices();
            if (transports.size() != restoring.devices().size()) {
                throw new SnapshotException("the snapshot has " + restoring.devices().size() + " devices, the VM "
                        + transports.size());
            }
            createVcpus(0);
            vm.restoreState(restoring.vm());
            for (int i = 0; i < transports.size(); i++) {
                transports.get(i).restoreState(restoring.devices().get(i));
            }
            machine = new VirtualMachine(kvm, vm, memory, vcpus, ioBus, mmioBus, console, eventFds, devices, disks,
                    transports, null, true);
            LOG.log(System.Logger.Level.INFO, "restored the VM from {0} in {1} ms", dir, (System.nanoTime() - t0) / 1_000_000);
            return Optional.of(machine);
        } catch (SnapshotException e) {
            closeAll();
            LOG.log(System.Logger.Level.INFO, "booting: {0}", e.getMessage());
            return Optional.empty();
        } catch (KvmException | GuestMemoryException | QueueException | IllegalStateException | IllegalArgumentException e) {
            closeAll();
            LOG.log(System.Logger.Level.WARNING, "booting: the snapshot in {0} could not be restored: {1}", dir, e.getMessage());
            return Optional.empty();
        } catch (RuntimeException e) {
            closeAll();
            throw e;
        }
    }

    private static boolean sameRanges(List<long[]> a, List<long[]> b) {
        if (a.size() != b.size()) {
            return false;
        }
        for (int i = 0; i < a.size(); i++) {
            if (a.get(i)[0] != b.get(i)[0] || a.get(i)[1] != b.get(i)[1]) {
                return false;
            }
        }
        return true;
    }

    /**
     * What the guest's state depends on: the files it booted from, what the VM gives it, the
     * CPU KVM describes, and jwsl's own code. Host-side paths that the guest never sees (the
     * vsock socket, a share's host directory) are left out; a disk image is in by identity, so a
     * disk written since the snapshot makes a new key.
     */
    private String snapshotKey() {
        SnapshotKey k = new SnapshotKey()
                .addFile("kernel", config.kernel())
                .addFile("initrd", config.initrd())
                .add("cmdline", config.cmdline())
                .add("memory", config.memoryBytes())
                .add("cpus", config.cpus())
                .add("vsock", config.vsock() == null ? "none" : "cid " + config.vsock().guestCid())
                .add("network", config.network() == null ? "none" : config.network().kernelParam() + " " + config.network());
        for (VmConfig.Disk d : config.disks()) {
            k.add("disk", d.serial() + (d.readOnly() ? " ro" : " rw")).addFile("image", d.image());
        }
        for (VmConfig.FileShare share : config.shares()) {
            k.add("share", share.tag());
        }
        // What each vCPU is given, not KVM's list: that holds the APIC ID of the host CPU it was
        // read on (leaves 0xB, 0x1F), so it differs between two runs on a multi-CPU host.
        CpuidEntries supported = kvm.supportedCpuid();
        for (int id = 0; id < config.cpus(); id++) {
            for (var e : guestCpuid(supported, id).entries()) {
                k.add("cpuid", "%x.%x %x %x %x %x %x".formatted(e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx));
            }
        }
        k.add("xsave", kvm.xsaveSize());
        addCode(k);
        return k.key();
    }

    /** jwsl's code: the jar (or class directory) this class came from. */
    private static void addCode(SnapshotKey k) {
        Path code;
        try {
            code = Path.of(VmBuilder.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException | RuntimeException e) {
            throw new SnapshotException("cannot tell which jwsl this is: " + e.getMessage(), e);
        }
        if (!Files.isDirectory(code)) {
            k.addFile("jwsl", code);
            return;
        }
        try (Stream<Path> classes = Files.walk(code)) {
            classes.filter(p -> p.toString().endsWith(".class")).sorted().forEach(p -> k.addFile("class", p));
        } catch (IOException e) {
            throw new SnapshotException("cannot list jwsl's classes: " + e.getMessage(), e);
        }
    }

    VirtualMachine build() {
        try {
            checkConfig();
            openKvm();
            createVm();
            attachMemory();
            attachLegacyDevices();
            attachVirtioDevices();
            long entry = loadKernel();
            createVcpus(entry);
            machine = new VirtualMachine(kvm, vm, memory, vcpus, ioBus, mmioBus, console, eventFds, devices, disks,
                    transports, snapshotPlan(), false);
            return machine;
        } catch (KvmException e) {
            closeAll();
            throw new VmStartException(VmStartException.Reason.KVM, e.getMessage(), e);
        } catch (BootException e) {
            closeAll();
            throw new VmStartException(VmStartException.Reason.BOOT, e.getMessage(), e);
        } catch (GuestMemoryException e) {
            closeAll();
            throw new VmStartException(VmStartException.Reason.MEMORY, e.getMessage(), e);
        } catch (RuntimeException e) {
            closeAll();
            throw e;
        }
    }

    /** The snapshot to write once the guest is ready, or null; a key that cannot be made means none (one log line). */
    private VirtualMachine.SnapshotPlan snapshotPlan() {
        if (config.snapshot() == null) {
            return null;
        }
        try {
            return new VirtualMachine.SnapshotPlan(config.snapshot().dir(), snapshotKey(),
                    LinuxBoot.ramRanges(config.memoryBytes()), kvm.xsaveSize(), kvm.msrIndexList());
        } catch (SnapshotException | KvmException e) {
            LOG.log(System.Logger.Level.WARNING, "no snapshot will be written: {0}", e.getMessage());
            return null;
        }
    }

    private void checkConfig() {
        if (config.cpus() < 1 || config.cpus() > Math.min(VmConfig.MAX_CPUS, MpTable.MAX_CPUS)) {
            throw new VmStartException(VmStartException.Reason.CONFIG, "--cpus must be 1.."
                    + Math.min(VmConfig.MAX_CPUS, MpTable.MAX_CPUS) + ", not " + config.cpus(), null);
        }
        if (config.memoryBytes() < VmConfig.MIN_MEMORY || (config.memoryBytes() & 0xfffff) != 0) {
            throw new VmStartException(VmStartException.Reason.CONFIG,
                    "memory must be a whole number of MiB and at least " + (VmConfig.MIN_MEMORY >> 20) + " MiB", null);
        }
        long host = HostMemory.totalBytes();
        if (config.memoryBytes() > host) {
            throw new VmStartException(VmStartException.Reason.CONFIG, "cannot give the VM %d MiB: the host has %d MiB"
                    .formatted(config.memoryBytes() >> 20, host >> 20), null);
        }
        requireFile(config.kernel(), "kernel");
        if (config.initrd() != null) {
            requireFile(config.initrd(), "initramfs");
        }
    }

    private static void requireFile(Path file, String what) {
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new VmStartException(VmStartException.Reason.CONFIG, what + " " + file + " is not a readable file", null);
        }
    }

    private void openKvm() {
        kvm = Kvm.open();
        built.add(kvm);
        kvm.require(Cap.IRQCHIP, Cap.USER_MEMORY, Cap.SET_TSS_ADDR, Cap.PIT2, Cap.IRQFD, Cap.IOEVENTFD,
                Cap.EXT_CPUID, Cap.IMMEDIATE_EXIT);
        int maxVcpus = kvm.check(Cap.MAX_VCPUS);
        if (maxVcpus > 0 && config.cpus() > maxVcpus) {
            throw new VmStartException(VmStartException.Reason.CONFIG,
                    "this host's KVM runs at most " + maxVcpus + " vCPUs per VM", null);
        }
    }

    private void createVm() {
        vm = kvm.createVm();
        built.add(vm);
        // Intel needs these before vCPUs exist; on other hosts they are harmless.
        if (kvm.check(Cap.SET_IDENTITY_MAP_ADDR) > 0) {
            vm.setIdentityMapAddress(Layout.KVM_IDENTITY_MAP);
        }
        vm.setTssAddress(Layout.KVM_TSS);
        vm.createIrqchip();
        vm.createPit2();
    }

    private void attachMemory() {
        memory = MmapGuestMemory.create(LinuxBoot.ramRanges(config.memoryBytes()));
        built.add(memory);
        mapMemory();
    }

    private void mapMemory() {
        int slot = 0;
        for (MemoryRegion r : memory.regions()) {
            vm.setUserMemoryRegion(slot++, r.guestBase(), r.size(), r.hostAddress());
        }
    }

    /**
     * The configured command line with the virtio-mmio device declarations in front (so that a
     * {@code --} in the user's part cannot turn them into init arguments).
     */
    private String cmdline() {
        List<String> parts = new ArrayList<>(deviceParams);
        parts.addAll(initParams);
        if (config.cmdline() != null && !config.cmdline().isBlank()) {
            parts.add(config.cmdline());
        }
        return String.join(" ", parts);
    }

    private long loadKernel() {
        return LinuxBoot.load(memory, config.kernel(), config.initrd(), cmdline(), config.cpus());
    }

    /** The vCPUs' CPU time so far, for devices that tell a starved guest from a hung one (0 until built). */
    private long guestCpuNanos() {
        VirtualMachine m = machine;
        return m == null ? 0 : m.guestCpuNanos();
    }

    private void attachLegacyDevices() {
        EventFd consoleIrq = new EventFd(0);
        eventFds.add(consoleIrq);
        built.add(consoleIrq);
        vm.registerIrqfd(consoleIrq.fd(), Uart8250.COM1_IRQ);
        console = new Uart8250(config.consoleOut(), consoleIrq::signal);
        ioBus.register(Uart8250.COM1, Uart8250.LENGTH, console);
        ioBus.register(I8042.BASE, I8042.LENGTH, new I8042(() -> machine.end(new StopReason.GuestReset(machine.isGuestReady()))));
        ioBus.register(InitPort.PORT, InitPort.LENGTH, new InitPort(
                status -> machine.end(new StopReason.GuestExit(status)), () -> machine.guestReady()));
    }

    private void attachVirtioDevices() {
        attachVirtio(new RngDevice(), "virtio-rng");
        if (config.vsock() != null) {
            VmConfig.Vsock v = config.vsock();
            if (v.guestCid() < 3 || v.guestCid() > 0xffff_fffeL) {
                throw new VmStartException(VmStartException.Reason.CONFIG, "vsock guest CID must be 3..4294967294", null);
            }
            attachVirtio(new VsockDevice(v.guestCid(), new UnixSocketBackend(v.udsPath()), this::guestCpuNanos),
                    "virtio-vsock");
        }
        for (VmConfig.Disk d : config.disks()) {
            DiskImage image;
            try {
                image = d.image() == null ? null : DiskImage.open(d.image(), d.readOnly());
            } catch (DiskException e) {
                throw new VmStartException(VmStartException.Reason.CONFIG, e.getMessage(), e);
            }
            BlockDevice disk = new BlockDevice(image, d.serial());
            disks.add(disk);
            attachVirtio(disk, "virtio-blk " + d.serial());
        }
        for (VmConfig.FileShare s : config.shares()) {
            P9Device share;
            try {
                share = P9Device.forDirectory(s.tag(), s.hostDir());
            } catch (DeviceSetupException e) {
                throw new VmStartException(VmStartException.Reason.CONFIG, e.getMessage(), e);
            }
            attachVirtio(share, "virtio-9p " + s.tag());
        }
        if (config.network() != null) {
            NetDevice net;
            try {
                net = NetDevice.withUserNetwork(config.network());
            } catch (DeviceSetupException e) {
                throw new VmStartException(VmStartException.Reason.CONFIG, e.getMessage(), e);
            }
            attachVirtio(net, "virtio-net");
            initParams.add(config.network().kernelParam());
        }
    }

    /**
     * Puts {@code device} behind a virtio-mmio transport in the next 4 KiB window of the MMIO gap
     * with the next free interrupt line (an irqfd), gives each queue an ioeventfd, and declares
     * it on the kernel command line.
     */
    private void attachVirtio(VirtioDevice device, String name) {
        int index = deviceParams.size();
        long base = Layout.VIRTIO_MMIO_BASE + index * Layout.VIRTIO_MMIO_SIZE;
        int irq = Layout.VIRTIO_IRQ_BASE + index;
        if (irq > Layout.VIRTIO_IRQ_LAST) {
            throw new VmStartException(VmStartException.Reason.CONFIG, "too many virtio devices", null);
        }
        EventFd irqFd = new EventFd(0);
        eventFds.add(irqFd);
        built.add(irqFd);
        vm.registerIrqfd(irqFd.fd(), irq);
        MmioTransport transport = new MmioTransport(device, memory, irqFd::signal);
        built.add(transport);
        devices.add(transport);
        transports.add(transport);
        transport.attachIoeventfds(vm::registerIoeventfd, base, name);
        mmioBus.register(base, Layout.VIRTIO_MMIO_SIZE, transport);
        deviceParams.add("virtio_mmio.device=4K@0x%x:%d".formatted(base, irq));
    }

    private CpuidEntries guestCpuid(CpuidEntries supported, int id) {
        return GuestCpuid.forVcpu(supported, id, config.cpus(), kvm.check(Cap.TSC_DEADLINE_TIMER) > 0);
    }

    private void createVcpus(long entry) {
        CpuidEntries supported = kvm.supportedCpuid();
        vm.disablePmu();
        for (int id = 0; id < config.cpus(); id++) {
            Vcpu vcpu = vm.createVcpu(id);
            built.add(vcpu);
            vcpus.add(vcpu);
            vcpu.setCpuid(guestCpuid(supported, id));
            List<Msr> refused = vcpu.setMsrs(BootCpu.bootMsrs());
            if (!refused.isEmpty() && id == 0) {
                // N.B. not fatal: these are what firmware would leave, and an emulating KVM (PVM)
                // may not implement all of them
                LOG.log(System.Logger.Level.WARNING, "KVM refused boot MSRs: {0}", refused);
            }
            if (restoring != null) {
                VcpuState state = restoring.vcpus().get(id);
                List<Msr> notRestored = vcpu.restoreState(state);
                if (!notRestored.isEmpty()) {
                    LOG.log(System.Logger.Level.WARNING, "KVM refused restored MSRs of vCPU {0}: {1}", id, notRestored);
                }
                continue;
            }
            BootCpu.setupLapic(vcpu);
            if (id == 0) {
                BootCpu.setupBootVcpu(vcpu, entry); // the others wait for the kernel's INIT/SIPI
            }
        }
    }

    private void closeAll() {
        for (int i = built.size() - 1; i >= 0; i--) {
            try {
                built.get(i).close();
            } catch (Exception ignored) {
                // best effort: the start-up failure is what gets reported
            }
        }
    }

    /** Host RAM, from /proc/meminfo. */
    static final class HostMemory {
        static long totalBytes() {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                    if (line.startsWith("MemTotal:")) {
                        return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                    }
                }
            } catch (IOException | NumberFormatException e) {
                // fall through: no limit known
            }
            return Long.MAX_VALUE;
        }
    }
}
