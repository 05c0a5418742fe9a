package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.devices.IoBus;
import dev.jwsl.hypervisor.devices.virtio.block.BlockDevice;
import dev.jwsl.hypervisor.devices.MmioBus;
import dev.jwsl.hypervisor.devices.legacy.Uart8250;
import dev.jwsl.hypervisor.kvm.Kvm;
import dev.jwsl.hypervisor.kvm.Vcpu;
import dev.jwsl.hypervisor.kvm.Vm;
import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.sys.EventFd;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
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

    VirtualMachine(Kvm kvm, Vm vm, GuestMemory memory, List<Vcpu> vcpus, IoBus ioBus, MmioBus mmioBus,
                   Uart8250 console, List<EventFd> eventFds, List<AutoCloseable> devices, List<BlockDevice> disks) {
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
    }

    /** The block device with virtio serial {@code serial}: the host inserts and ejects media through it. */
    public Optional<BlockDevice> disk(String serial) {
        return disks.stream().filter(d -> d.serial().equals(serial)).findFirst();
    }

    /** Builds a VM from {@code config}; see {@link VmBuilder}. */
    public static VirtualMachine create(VmConfig config) {
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

    void guestReady() {
        ready.countDown();
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
