package dev.jwsl.service;

import dev.jwsl.cli.relay.RelayConstants;
import dev.jwsl.hypervisor.vmm.GuestCommand;
import dev.jwsl.hypervisor.vmm.KernelCmdline;
import dev.jwsl.hypervisor.vmm.StopReason;
import dev.jwsl.hypervisor.vmm.VirtualMachine;
import dev.jwsl.hypervisor.vmm.VmConfig;
import dev.jwsl.hypervisor.vmm.VmStartException;
import dev.jwsl.service.protocol.JwslMessage;

import java.io.OutputStream;
import java.nio.file.Path;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * The managed utility VM: booted on the first lease, kept while leases are open, stopped after
 * the idle timeout, booted again on the next lease if it died or was stopped.
 */
final class UtilityVm implements JwslService {
    private static final System.Logger LOG = System.getLogger(UtilityVm.class.getName());

    private final WslConfig config;
    private final Path kernel;
    private final Path initrd;
    private final ServicePaths paths;
    private final OutputStream console;
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().name("idle-timer").daemon().factory());

    private VirtualMachine vm;
    private long startedAtMs;
    private int leases;
    private ScheduledFuture<?> idleStop;

    UtilityVm(WslConfig config, Path kernel, Path initrd, ServicePaths paths, OutputStream console) {
        this.config = config;
        this.kernel = config.kernel() != null ? config.kernel() : kernel;
        this.initrd = initrd;
        this.paths = paths;
        this.console = console;
    }

    @Override
    public Lease ensureVm(long transactionId) throws InterruptedException {
        VirtualMachine current;
        synchronized (this) {
            if (idleStop != null) {
                idleStop.cancel(false);
                idleStop = null;
            }
            if (vm == null) {
                boot();
            }
            current = vm;
            leases++; // counted while booting, so an idle stop cannot race the boot
        }
        // Outside the lock: status and shutdown must answer while a boot takes its time.
        if (!current.awaitGuestReady()) {
            synchronized (this) {
                release();
            }
            throw new VmStartException(VmStartException.Reason.BOOT, "the utility VM stopped while booting", null);
        }
        JwslMessage.VmReady ready = new JwslMessage.VmReady(transactionId, paths.vsockSocket().toString(),
                RelayConstants.PORT);
        return new Lease() {
            private boolean closed;

            @Override
            public JwslMessage.VmReady ready() {
                return ready;
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
        };
    }

    private void release() {
        leases--;
        if (leases == 0 && vm != null) {
            idleStop = timer.schedule(() -> {
                LOG.log(System.Logger.Level.INFO, "VM idle for {0} ms: stopping it", config.idleTimeoutMs());
                shutdown(false);
            }, config.idleTimeoutMs(), TimeUnit.MILLISECONDS);
        }
    }

    private void boot() {
        String cmdline = KernelCmdline.build(config.extraCmdline(), GuestCommand.relayModeParams());
        VmConfig vmConfig = new VmConfig(kernel, initrd, cmdline, config.memoryBytes(), config.processors(), console)
                .withVsock(new VmConfig.Vsock(paths.vsockSocket()));
        VirtualMachine machine = VirtualMachine.create(vmConfig);
        vm = machine;
        startedAtMs = System.currentTimeMillis();
        LOG.log(System.Logger.Level.INFO, "booting utility VM: {0}", cmdline);
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
    }

    @Override
    public synchronized JwslMessage.StatusReply status(long transactionId) {
        String state = vm == null ? "stopped" : "running";
        long uptime = vm == null ? 0 : System.currentTimeMillis() - startedAtMs;
        return new JwslMessage.StatusReply(transactionId, state, leases, uptime, config.idleTimeoutMs(),
                kernel.toString());
    }

    @Override
    public synchronized void shutdown(boolean force) {
        // No guest disks yet: a host-side stop loses nothing, so --force and a plain shutdown agree.
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
