package dev.jwsl.service;

import dev.jwsl.protocol.ServicePaths;

import dev.jwsl.protocol.relay.RelayConstants;
import dev.jwsl.hypervisor.devices.virtio.block.BlockDevice;
import dev.jwsl.hypervisor.devices.virtio.p9.P9Device;
import dev.jwsl.hypervisor.p9.P9Server;
import dev.jwsl.hypervisor.net.NetConfig;
import dev.jwsl.service.net.PortForwarder;
import dev.jwsl.service.share.P9Listener;
import dev.jwsl.hypervisor.vmm.GuestCommand;
import dev.jwsl.hypervisor.vmm.KernelCmdline;
import dev.jwsl.hypervisor.vmm.StopReason;
import dev.jwsl.hypervisor.vmm.VirtualMachine;
import dev.jwsl.hypervisor.vmm.VmConfig;
import dev.jwsl.hypervisor.vmm.VmStartException;

import java.io.OutputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The managed utility VM: booted on the first hold, kept while holds are open, stopped after the
 * idle timeout, booted again on the next hold if it died or was stopped. It boots with the
 * read-only tools disk and {@link #SLOTS} empty disk slots; distro disks go into slots while it
 * runs ({@link #attach}), so a distro can start without restarting the others.
 *
 * <p>Each boot has a new {@linkplain #generation() generation}: whatever was attached or started
 * in an earlier one is gone.
 */
final class UtilityVm {
    private static final System.Logger LOG = System.getLogger(UtilityVm.class.getName());
    /** Disk slots for distro disks and import/export media: how many may be attached at once. */
    static final int SLOTS = 8;
    static final String TOOLS_SERIAL = "jwsl-tools";

    private final WslConfig config;
    private final Path kernel;
    private final Path initrd;
    private final Path tools;
    private final ServicePaths paths;
    private final OutputStream console;
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("idle-timer").daemon().factory());
    private Runnable onIdle = () -> shutdown();

    private VirtualMachine vm;
    private int generation;
    private long startedAtMs;
    private int holds;
    private ScheduledFuture<?> idleStop;
    /** Slot serial → what is in it (null: empty), for the current generation. */
    private final String[] slotUse = new String[SLOTS];
    /** The 9P server of shareTransport=vsock, started with the first boot. */
    private P9Server vsockShares;
    /** Localhost forwarding, created with the first boot that needs it; follows each boot's guest. */
    private PortForwarder forwarder;

    /** A hold on the running VM: it stays up until every hold is closed (and the idle time passed). */
    interface Hold extends AutoCloseable {
        /** The boot this hold belongs to. */
        int generation();

        GuestShell shell();

        @Override
        void close();
    }

    UtilityVm(WslConfig config, Path kernel, Path initrd, Path tools, ServicePaths paths, OutputStream console) {
        this.config = config;
        this.kernel = config.kernel() != null ? config.kernel() : kernel;
        this.initrd = initrd;
        this.tools = tools;
        this.paths = paths;
        this.console = console;
    }

    /** What to do when the VM has been idle for the timeout (default: stop it). */
    void onIdle(Runnable action) {
        this.onIdle = action;
    }

    Path vsockSocket() {
        return paths.vsockSocket();
    }

    /** Boots the VM if it is not running and holds it. */
    Hold hold() throws InterruptedException {
        return hold(true).orElseThrow();
    }

    /** Holds the VM if it is running (or booting), without booting it. */
    Optional<Hold> holdIfRunning() throws InterruptedException {
        return hold(false);
    }

    private Optional<Hold> hold(boolean boot) throws InterruptedException {
        VirtualMachine current;
        int gen;
        synchronized (this) {
            if (vm == null && !boot) {
                return Optional.empty();
            }
            if (idleStop != null) {
                idleStop.cancel(false);
                idleStop = null;
            }
            if (vm == null) {
                boot();
            }
            current = vm;
            gen = generation;
            holds++; // counted while booting, so an idle stop cannot race the boot
        }
        // Outside the lock: status and shutdown must answer while a boot takes its time.
        if (!current.awaitGuestReady()) {
            synchronized (this) {
                release();
            }
            throw new VmStartException(VmStartException.Reason.BOOT, "the utility VM stopped while booting", null);
        }
        GuestShell shell = new GuestShell(paths.vsockSocket(), RelayConstants.PORT);
        return Optional.of(new Hold() {
            private boolean closed;

            @Override
            public int generation() {
                return gen;
            }

            @Override
            public GuestShell shell() {
                return shell;
            }

            @Override
            public void close() {
                synchronized (UtilityVm.this) {
                    if (!closed) {
                        closed = true;
                        release();
                    }
                }
            }
        });
    }

    /**
     * Steps the guest's wall clock to the host's whenever {@code watch} sees that the host slept,
     * looking every {@code every}. A VM that is stopped then needs nothing: every boot and every
     * restore syncs its clock as it starts.
     */
    void watchHostSleep(HostSleepWatch watch, Duration every) {
        timer.scheduleWithFixedDelay(() -> {
            Duration slept = watch.check();
            if (!slept.isZero() && stepping.compareAndSet(false, true)) {
                Thread.ofPlatform().name("host-resume").daemon().start(() -> {
                    try {
                        stepGuestClock(slept);
                    } finally {
                        stepping.set(false);
                    }
                });
            }
        }, every.toMillis(), every.toMillis(), TimeUnit.MILLISECONDS);
    }

    private final AtomicBoolean stepping = new AtomicBoolean();

    /** The host slept for {@code slept}: the running guest's wall clock to the host's, through the relay. */
    private void stepGuestClock(Duration slept) {
        try {
            Optional<Hold> held = holdIfRunning();
            if (held.isEmpty()) {
                return;
            }
            try (Hold hold = held.get()) {
                LOG.log(System.Logger.Level.INFO, "the host slept {0} s: stepping the guest clock", slept.toMillis() / 1000.0);
                GuestShell.Result res = hold.shell().run("/init " + HOST_SYNC_APPLET);
                if (res.ok()) {
                    LOG.log(System.Logger.Level.INFO, "guest clock stepped to the host's");
                } else {
                    LOG.log(System.Logger.Level.WARNING, "cannot step the guest clock: {0}", res.error());
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (java.io.IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot step the guest clock: {0}", e.getMessage());
        }
    }

    /** guest-init's applet that reads the host's time and entropy from the VMM (hostsync.c). */
    static final String HOST_SYNC_APPLET = "host-sync";

    private void release() {
        holds--;
        if (holds == 0 && vm != null) {
            idleStop = timer.schedule(() -> {
                LOG.log(System.Logger.Level.INFO, "VM idle for {0} ms: stopping it", config.idleTimeoutMs());
                onIdle.run();
            }, config.idleTimeoutMs(), TimeUnit.MILLISECONDS);
        }
    }

    /** The running boot's generation, or -1 when the VM is stopped. */
    synchronized int generation() {
        return vm == null ? -1 : generation;
    }

    synchronized boolean idle() {
        return holds == 0;
    }

    /**
     * Puts {@code image} into a free slot of boot {@code gen} and returns the slot's serial.
     *
     * @throws IllegalStateException (one line) if every slot is in use or that boot is over
     */
    synchronized String attach(Path image, boolean readOnly, int gen, String use) {
        if (vm == null || gen != generation) {
            throw new IllegalStateException("the utility VM stopped");
        }
        int free = java.util.Arrays.asList(slotUse).indexOf(null);
        if (free < 0) {
            throw new IllegalStateException("all " + SLOTS + " disk slots of the utility VM are in use: terminate a distribution first");
        }
        String serial = slotSerial(free);
        BlockDevice slot = vm.disk(serial).orElseThrow(() -> new IllegalStateException("the utility VM has no disk slot " + serial));
        slot.insert(image, readOnly);
        slotUse[free] = use;
        return serial;
    }

    /** Empties slot {@code serial} of boot {@code gen} (nothing to do if that boot is over). */
    synchronized void detach(String serial, int gen) {
        if (vm == null || gen != generation) {
            return;
        }
        for (int i = 0; i < SLOTS; i++) {
            if (slotSerial(i).equals(serial)) {
                vm.disk(serial).ifPresent(BlockDevice::eject);
                slotUse[i] = null;
            }
        }
    }

    /** How many bytes the guest has read from slot {@code serial}'s medium (0 if that boot is over). */
    synchronized long bytesRead(String serial, int gen) {
        if (vm == null || gen != generation) {
            return 0;
        }
        return vm.disk(serial).map(BlockDevice::bytesRead).orElse(0L);
    }

    static String slotSerial(int i) {
        return "jwsl-slot-" + i;
    }

    /**
     * What the guest needs to mount the host shares: NAME HOSTPATH SOURCE OPTIONS per share, the
     * arguments of {@code jwsl-share mount} (guest-init/share/share.c).
     */
    List<String> shareMountArgs() {
        List<String> args = new ArrayList<>();
        for (var e : config.shares().entrySet()) {
            args.addAll(List.of(e.getKey(), e.getValue().toString(),
                    config.shareTransport() == WslConfig.ShareTransport.VIRTIO ? "virtio:" + e.getKey() : "vsock:" + P9_VSOCK_PORT,
                    config.shareMountOptions()));
        }
        return args;
    }

    /** The 9P port over vsock (564, 9P's registered port; WSL's plan9 server listens on vsock too). */
    static final int P9_VSOCK_PORT = 564;

    private void boot() {
        String cmdline = KernelCmdline.build(config.extraCmdline(), GuestCommand.relayModeParams());
        List<VmConfig.Disk> disks = new ArrayList<>();
        disks.add(new VmConfig.Disk(tools, true, TOOLS_SERIAL));
        for (int i = 0; i < SLOTS; i++) {
            disks.add(new VmConfig.Disk(null, false, slotSerial(i)));
        }
        List<VmConfig.FileShare> p9 = new ArrayList<>();
        if (config.shareTransport() == WslConfig.ShareTransport.VIRTIO) {
            config.shares().forEach((name, dir) -> p9.add(new VmConfig.FileShare(name, dir)));
        } else if (!config.shares().isEmpty()) {
            startVsockShares();
        }
        VmConfig vmConfig = new VmConfig(kernel, initrd, cmdline, config.memoryBytes(), config.processors(), console)
                .withVsock(new VmConfig.Vsock(paths.vsockSocket()))
                .withDisks(disks)
                .withShares(p9)
                .withNetwork(config.networking() ? new NetConfig() : null)
                .withSnapshot(config.instantStart() ? new VmConfig.Snapshot(ServicePaths.snapshotDir(), true) : null);
        VirtualMachine machine = VirtualMachine.create(vmConfig);
        vm = machine;
        generation++;
        java.util.Arrays.fill(slotUse, null);
        startedAtMs = System.currentTimeMillis();
        LOG.log(System.Logger.Level.INFO, "{0} utility VM: {1}", machine.restored() ? "restored the" : "booting", cmdline);
        Thread.ofPlatform().name("utility-vm").start(() -> {
            StopReason reason = machine.run();
            LOG.log(System.Logger.Level.INFO, "utility VM ended: {0}", reason);
            machine.close();
            synchronized (UtilityVm.this) {
                if (vm == machine) {
                    vm = null;
                }
            }
        });
        if (config.localhostForwarding()) {
            if (forwarder == null) {
                forwarder = new PortForwarder(paths.vsockSocket(), config.forwardOnAllInterfaces());
            }
            PortForwarder f = forwarder;
            Thread.ofPlatform().name("port-watch").daemon().start(() -> {
                try {
                    if (machine.awaitGuestReady()) {
                        f.follow(() -> running(machine));
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
        }
    }

    private synchronized boolean running(VirtualMachine machine) {
        return vm == machine;
    }

    /** The guest ports forwarded to the host now (empty when forwarding is off). */
    synchronized java.util.List<Integer> forwardedPorts() {
        return forwarder == null ? java.util.List.of() : forwarder.ports();
    }

    /** 9P over vsock: the server listens where the hybrid vsock sends guest connections to port 564. */
    private void startVsockShares() {
        if (vsockShares != null) {
            return; // one server for every boot: connections of a stopped VM just end
        }
        try {
            P9Server server = new P9Server(config.shares(), P9Device.WORKERS);
            io.netty.channel.EventLoopGroup group = new io.netty.channel.epoll.EpollEventLoopGroup(1);
            P9Listener.listen(group, server, new P9Listener.UnixAddress(
                    Path.of(paths.vsockSocket() + "_" + P9_VSOCK_PORT)));
            vsockShares = server;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new VmStartException(VmStartException.Reason.CONFIG, "interrupted", e);
        } catch (java.io.IOException | RuntimeException e) {
            throw new VmStartException(VmStartException.Reason.CONFIG, "cannot serve the host shares: " + e.getMessage(), e);
        }
    }

    synchronized String state() {
        return vm == null ? "stopped" : "running";
    }

    synchronized int holds() {
        return holds;
    }

    synchronized long uptimeMs() {
        return vm == null ? 0 : System.currentTimeMillis() - startedAtMs;
    }

    Path kernel() {
        return kernel;
    }

    long idleTimeoutMs() {
        return config.idleTimeoutMs();
    }

    /** Stops the VM now (the distros must have been stopped first if their disks matter). */
    synchronized void shutdown() {
        if (vm != null) {
            vm.stop();
            vm = null;
        }
        if (idleStop != null) {
            idleStop.cancel(false);
            idleStop = null;
        }
    }
}
