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
import dev.jwsl.hypervisor.sys.EventFd;
import dev.jwsl.hypervisor.virtio.VirtioDevice;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds a {@link VirtualMachine} as a linear recipe of {@code attachXxx} steps. Any failure
 * closes what was built so far and surfaces as a {@link VmStartException} with a one-line message.
 */
final class VmBuilder {
    private static final System.Logger LOG = System.getLogger(VmBuilder.class.getName());
    private final VmConfig config;
    private final List<AutoCloseable> built = new ArrayList<>();
    private final List<EventFd> eventFds = new ArrayList<>();
    private VirtualMachine machine;
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

    VmBuilder(VmConfig config) {
        this.config = config;
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
            machine = new VirtualMachine(kvm, vm, memory, vcpus, ioBus, mmioBus, console, eventFds, devices, disks);
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
            attachVirtio(new VsockDevice(v.guestCid(), new UnixSocketBackend(v.udsPath())), "virtio-vsock");
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
        transport.attachIoeventfds(vm::registerIoeventfd, base, name);
        mmioBus.register(base, Layout.VIRTIO_MMIO_SIZE, transport);
        deviceParams.add("virtio_mmio.device=4K@0x%x:%d".formatted(base, irq));
    }

    private void createVcpus(long entry) {
        CpuidEntries supported = kvm.supportedCpuid();
        boolean tscDeadline = kvm.check(Cap.TSC_DEADLINE_TIMER) > 0;
        vm.disablePmu();
        for (int id = 0; id < config.cpus(); id++) {
            Vcpu vcpu = vm.createVcpu(id);
            built.add(vcpu);
            vcpus.add(vcpu);
            vcpu.setCpuid(GuestCpuid.forVcpu(supported, id, config.cpus(), tscDeadline));
            List<Msr> refused = vcpu.setMsrs(BootCpu.bootMsrs());
            if (!refused.isEmpty() && id == 0) {
                // N.B. not fatal: these are what firmware would leave, and an emulating KVM (PVM)
                // may not implement all of them
                LOG.log(System.Logger.Level.WARNING, "KVM refused boot MSRs: {0}", refused);
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
