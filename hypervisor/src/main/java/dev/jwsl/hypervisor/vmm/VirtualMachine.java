package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.devices.IoBus;
import dev.jwsl.hypervisor.devices.virtio.block.BlockDevice;
import dev.jwsl.hypervisor.devices.MmioBus;
import dev.jwsl.hypervisor.devices.legacy.Uart8250;
import dev.jwsl.hypervisor.devices.virtio.transport.MmioTransport;
import dev.jwsl.hypervisor.kvm.Kvm;
import dev.jwsl.hypervisor.kvm.Vcpu;
import dev.jwsl.hypervisor.kvm.VcpuState;
import dev.jwsl.hypervisor.kvm.Vm;
import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.snapshot.SnapshotException;
import dev.jwsl.hypervisor.snapshot.SnapshotFiles;
import dev.jwsl.hypervisor.snapshot.VmSnapshot;
import dev.jwsl.hypervisor.sys.EventFd;
import dev.jwsl.hypervisor.virtio.TransportState;

import java.nio.file.Path;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;

/**
 * A built VM: run it once with {@link #run()}, stop it from any thread with {@link #stop()}, then
 * {@link #close()} it. The first reason to stop wins; every vCPU thread then leaves KVM_RUN.
 */
public final class VirtualMachine implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(VirtualMachine.class.getName());

    private final Kvm kvm;
    private final Vm vm;
    private final GuestMemory memory;
    private final List<Vcpu> vcpus;
    private final IoBus ioBus;
    private final MmioBus mmioBus;
    private final Uart8250 console;
    private final List<EventFd> eventFds;
    private final List<AutoCloseable> devices;
    private final List<BlockDevice> disks;
    private final CompletableFuture<StopReason> stopReason = new CompletableFuture<>();
    private final List<VcpuRunner> runners = new ArrayList<>();
    private final CountDownLatch ready = new CountDownLatch(1);
    private boolean started;
    private final List<MmioTransport> transports;
    /** Where and how to write a snapshot once the guest is ready; null: none. */
    private final SnapshotPlan snapshotPlan;
    private final boolean restored;
    private boolean snapshotStarted;
    /** Writes the snapshot; it reads guest RAM and device state, so close() waits for it. */
    private volatile Thread snapshotThread;
    /** Guarded by itself: a pause for a snapshot, and the states the parked vCPUs left. */
    private final Object pause = new Object();
    private boolean pausing;
    private final Map<Integer, Object> parked = new TreeMap<>();

    /**
     * A snapshot to write when the guest says it is ready.
     *
     * @param dir        where ({@link SnapshotFiles})
     * @param key        what it is of ({@link dev.jwsl.hypervisor.snapshot.SnapshotKey})
     * @param ram        guest RAM's ranges
     * @param xsaveSize  KVM's {@code struct kvm_xsave} size
     * @param msrIndices the MSRs to save
     */
    record SnapshotPlan(Path dir, String key, List<long[]> ram, int xsaveSize, int[] msrIndices) {}

    VirtualMachine(Kvm kvm, Vm vm, GuestMemory memory, List<Vcpu> vcpus, IoBus ioBus, MmioBus mmioBus,
                   Uart8250 console, List<EventFd> eventFds, List<AutoCloseable> devices, List<BlockDevice> disks,
                   List<MmioTransport> transports, SnapshotPlan snapshotPlan, boolean restored) {
        this.kvm = kvm;
        this.vm = vm;
        this.memory = memory;
        this.vcpus = vcpus;
        this.ioBus = ioBus;
        this.mmioBus = mmioBus;
        this.console = console;
        this.eventFds = eventFds;
        this.devices = devices;
        this.disks = List.copyOf(disks);
        this.transports = List.copyOf(transports);
        this.snapshotPlan = snapshotPlan;
        this.restored = restored;
        if (restored) {
            ready.countDown(); // the snapshot was taken when the guest was ready
        }
    }

    /** Whether this VM was restored from a snapshot rather than booted. */
    public boolean restored() {
        return restored;
    }

    /** The block device with virtio serial {@code serial}: the host inserts and ejects media through it. */
    public Optional<BlockDevice> disk(String serial) {
        return disks.stream().filter(d -> d.serial().equals(serial)).findFirst();
    }

    /**
     * Builds a VM from {@code config}; see {@link VmBuilder}. With a snapshot directory, a
     * snapshot of this very configuration there is restored; failing that (missing, stale,
     * corrupt, refused by KVM) the VM boots, with one log line saying why.
     */
    public static VirtualMachine create(VmConfig config) {
        if (config.snapshot() != null && config.snapshot().restore()) {
            Optional<VirtualMachine> restored = new VmBuilder(config).restore();
            if (restored.isPresent()) {
                return restored.get();
            }
        }
        return new VmBuilder(config).build();
    }

    /** The serial console, for feeding host input to the guest. */
    public Uart8250 console() {
        return console;
    }

    IoBus ioBus() {
        return ioBus;
    }

    MmioBus mmioBus() {
        return mmioBus;
    }

    /** The CPU time the vCPU threads have used, the guest's own included, since the VM started. */
    long guestCpuNanos() {
        long sum = 0;
        synchronized (runners) {
            for (VcpuRunner r : runners) {
                sum += r.cpuNanos();
            }
        }
        return sum;
    }

    /** Records why the VM ends (first caller wins) and kicks every vCPU out of KVM_RUN. */
    void end(StopReason reason) {
        if (stopReason.complete(reason)) {
            LOG.log(System.Logger.Level.DEBUG, "VM stopping: {0}", reason);
            synchronized (runners) {
                for (VcpuRunner r : runners) {
                    r.kick();
                }
            }
        }
    }

    boolean stopping() {
        return stopReason.isDone();
    }

    /**
     * Guest init says it is ready. With a snapshot to write, the snapshot is taken first, and
     * only then does the host hear the guest is ready, so that no host connection, share or
     * distro is in the snapshot. This runs on the vCPU that wrote the port: the pause is asked
     * for here, before that vCPU goes back to KVM_RUN, so that it stops right after the write
     * (where a restore resumes, and init then syncs its clock and RNG), and the snapshot is
     * written on a thread of its own once every vCPU has parked.
     */
    void guestReady() {
        synchronized (pause) {
            if (snapshotPlan == null || snapshotStarted) {
                ready.countDown();
                return;
            }
            snapshotStarted = true;
        }
        requestPause();
        snapshotThread = Thread.ofPlatform().name("vm-snapshot").daemon().start(() -> {
            try {
                takeSnapshot(snapshotPlan);
            } finally {
                ready.countDown();
            }
        });
    }

    /**
     * Stops every vCPU at a clean point, waits for the devices to finish what they were doing,
     * and writes the snapshot; whatever goes wrong, the VM runs on and the failure is one log
     * line (the next start boots and tries again).
     */
    private void takeSnapshot(SnapshotPlan plan) {
        long t0 = System.nanoTime();
        try {
            List<VcpuState> states = awaitParked();
            if (states == null) {
                return; // the VM is stopping
            }
            for (int attempt = 1; ; attempt++) {
                List<TransportState> devices = quietDevices();
                VmSnapshot snapshot = new VmSnapshot(plan.key(), plan.ram(), vm.saveState(), states, console.state(), devices);
                long stored = SnapshotFiles.write(plan.dir(), snapshot, memory);
                if (devices.equals(deviceStates())) {
                    LOG.log(System.Logger.Level.INFO, "snapshot written to {0}: {1} MiB of RAM stored, vCPUs stopped for {2} ms",
                            plan.dir(), stored >> 20, (System.nanoTime() - t0) / 1_000_000);
                    return;
                }
                if (attempt == 3) {
                    throw new SnapshotException("a device kept working while the vCPUs were stopped");
                }
            }
        } catch (RuntimeException e) {
            deleteQuietly(plan.dir());
            LOG.log(System.Logger.Level.WARNING, "no snapshot written: {0}", e.getMessage());
        } finally {
            resumeAll();
        }
    }

    private static void deleteQuietly(Path dir) {
        try {
            java.nio.file.Files.deleteIfExists(dir.resolve(SnapshotFiles.STATE));
        } catch (java.io.IOException e) {
            LOG.log(System.Logger.Level.WARNING, "cannot remove a broken snapshot: {0}", e.getMessage());
        }
    }

    /** Device states once no request is in flight (a request the guest made just before the stop ends in milliseconds). */
    private List<TransportState> quietDevices() {
        long deadline = System.nanoTime() + 2_000_000_000L;
        while (true) {
            try {
                return deviceStates();
            } catch (IllegalStateException e) {
                if (System.nanoTime() > deadline) {
                    throw new SnapshotException("the devices did not go quiet: " + e.getMessage(), e);
                }
                try {
                    Thread.sleep(5);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new SnapshotException("interrupted", ie);
                }
            }
        }
    }

    private List<TransportState> deviceStates() {
        List<TransportState> states = new ArrayList<>();
        for (MmioTransport t : transports) {
            states.add(t.saveState());
        }
        return states;
    }

    /**
     * Waits for a snapshot being written to finish (or give up: the VM is stopping, so its vCPUs
     * will not park), so that guest RAM and the devices are not closed under it.
     */
    private void awaitSnapshotWriter() {
        Thread t = snapshotThread;
        if (t != null) {
            VcpuRunner.awaitEnd(t, () -> { });
        }
    }

    /** Makes every vCPU park at its next exit ({@link #parkIfPausing}). */
    private void requestPause() {
        synchronized (pause) {
            pausing = true;
            parked.clear();
        }
        synchronized (runners) {
            for (VcpuRunner r : runners) {
                r.kick();
            }
        }
    }

    /** Waits for every vCPU to park after {@link #requestPause()} and collects its state; null if the VM stops first. */
    private List<VcpuState> awaitParked() {
        synchronized (pause) {
            while (parked.size() < vcpus.size()) {
                if (stopping()) {
                    return null;
                }
                try {
                    pause.wait(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
            List<VcpuState> states = new ArrayList<>();
            for (Object o : parked.values()) {
                if (o instanceof RuntimeException e) {
                    throw new SnapshotException("KVM would not give a vCPU's state: " + e.getMessage(), e);
                }
                states.add((VcpuState) o);
            }
            return states;
        }
    }

    private void resumeAll() {
        synchronized (pause) {
            pausing = false;
            parked.clear();
            pause.notifyAll();
        }
    }

    /**
     * Called by a vCPU's thread after KVM_RUN returned because it was kicked: with a pause under
     * way, the vCPU is between instructions (an I/O exit was completed by that KVM_RUN), so its
     * state is saved here, on its own thread, and it waits until the pause ends.
     */
    void parkIfPausing(Vcpu vcpu) {
        synchronized (pause) {
            if (!pausing || parked.containsKey(vcpu.id())) {
                return;
            }
            Object state;
            try {
                state = vcpu.saveState(snapshotPlan.xsaveSize(), snapshotPlan.msrIndices());
            } catch (RuntimeException e) {
                state = e;
            }
            parked.put(vcpu.id(), state);
            pause.notifyAll();
            while (pausing && !stopping()) {
                try {
                    pause.wait(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** Whether guest init has said its console is ready (see {@link #awaitGuestReady()}). */
    public boolean isGuestReady() {
        return ready.getCount() == 0;
    }

    /**
     * Waits until the guest init says its console is ready for input, or the VM stops.
     *
     * @return true if the guest is ready, false if the VM stopped first
     */
    public boolean awaitGuestReady() throws InterruptedException {
        while (!ready.await(100, java.util.concurrent.TimeUnit.MILLISECONDS)) {
            if (stopping()) {
                return false;
            }
        }
        return true;
    }

    /** Asks the VM to stop; {@link #run()} then returns {@link StopReason.HostStop} unless something else came first. */
    public void stop() {
        end(new StopReason.HostStop());
    }

    /** Runs the VM until it stops and returns why. */
    public StopReason run() {
        synchronized (runners) {
            if (started) {
                throw new IllegalStateException("a VM runs once");
            }
            started = true;
            VcpuKick.install();
            for (Vcpu vcpu : vcpus) {
                VcpuRunner r = new VcpuRunner(this, vcpu);
                runners.add(r);
                r.start();
            }
        }
        StopReason reason;
        try {
            reason = stopReason.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stop();
            reason = new StopReason.HostStop();
        } catch (ExecutionException e) {
            reason = new StopReason.VmmError(e.getCause());
        }
        for (VcpuRunner r : runners) {
            r.join();
        }
        console.close();
        return reason;
    }

    @Override
    public void close() {
        stop();
        for (VcpuRunner r : runners) {
            r.join();
        }
        awaitSnapshotWriter();
        console.close();
        for (AutoCloseable d : devices) {
            try {
                d.close();
            } catch (Exception e) {
                LOG.log(System.Logger.Level.WARNING, "closing a device failed: {0}", e.toString());
            }
        }
        for (Vcpu v : vcpus) {
            v.close();
        }
        for (EventFd e : eventFds) {
            e.close();
        }
        vm.close();
        kvm.close();
        memory.close();
    }
}
