package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.devices.MmioDevice;
import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.sys.EventFd;
import dev.jwsl.hypervisor.virtio.GuestWarnings;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.QueueState;
import dev.jwsl.hypervisor.virtio.TransportState;
import dev.jwsl.hypervisor.virtio.VirtioDevice;
import dev.jwsl.hypervisor.virtio.VirtioFeatures;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The virtio-mmio version 2 register file (VIRTIO 1.2 4.2.2) in front of one {@link VirtioDevice}.
 * Registers below {@link #CONFIG} take 32-bit accesses only; configuration space takes any width.
 *
 * <p>Register access and queue notifications are serialized on this object, so a device's
 * {@code queueNotify}, {@code activate} and {@code reset} never run concurrently. Interrupts are
 * lock-free, so a device may signal from its own threads.
 *
 * <p>The driver is untrusted, and the status register is its state machine (2.1, 3.1.1): bits are
 * only added until a write of 0 resets. A write that would clear a bit is refused and
 * marks the device DEVICE_NEEDS_RESET, so DRIVER_OK, once set, keeps the queue configuration
 * frozen and the device activated exactly once. A device or queue failure (a malformed chain,
 * or anything the device code throws, {@code Error}s included) never reaches the vCPU: the
 * device is marked DEVICE_NEEDS_RESET (2.1.2) and the driver gets a configuration-change
 * interrupt. A reset gives the device new queue objects and retires the old ones, so that a
 * request finishing late cannot write into the rings of the next initialisation.
 */
public final class MmioTransport implements MmioDevice, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(MmioTransport.class.getName());

    /** Size of the register window. */
    public static final long SIZE = 0x1000;

    // Register offsets (4.2.2, Table "MMIO Device Register Layout").
    static final int MAGIC_VALUE = 0x000, VERSION = 0x004, DEVICE_ID = 0x008, VENDOR_ID = 0x00c;
    static final int DEVICE_FEATURES = 0x010, DEVICE_FEATURES_SEL = 0x014;
    static final int DRIVER_FEATURES = 0x020, DRIVER_FEATURES_SEL = 0x024;
    static final int QUEUE_SEL = 0x030, QUEUE_NUM_MAX = 0x034, QUEUE_NUM = 0x038, QUEUE_READY = 0x044;
    static final int QUEUE_NOTIFY = 0x050, INTERRUPT_STATUS = 0x060, INTERRUPT_ACK = 0x064, STATUS = 0x070;
    static final int QUEUE_DESC_LOW = 0x080, QUEUE_DESC_HIGH = 0x084;
    static final int QUEUE_DRIVER_LOW = 0x090, QUEUE_DRIVER_HIGH = 0x094;
    static final int QUEUE_DEVICE_LOW = 0x0a0, QUEUE_DEVICE_HIGH = 0x0a4;
    static final int SHM_LEN_LOW = 0x0b0, SHM_LEN_HIGH = 0x0b4, SHM_BASE_LOW = 0x0b8, SHM_BASE_HIGH = 0x0bc;
    static final int CONFIG_GENERATION = 0x0fc, CONFIG = 0x100;

    /** "virt" little-endian (4.2.2). */
    static final int MAGIC = 0x74726976;
    static final int MMIO_VERSION = 2;
    static final int VENDOR = 0;

    // Device status bits (2.1).
    public static final int ACKNOWLEDGE = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8;
    public static final int DEVICE_NEEDS_RESET = 64, FAILED = 128;
    /** The bits a driver writes; anything else in a write is dropped. */
    private static final int DRIVER_BITS = ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK | FAILED;

    // InterruptStatus bits (4.2.2).
    public static final int INT_USED_BUFFER = 1, INT_CONFIG_CHANGE = 2;

    /** Registers an ioeventfd: a 4-byte guest write of {@code datamatch} to {@code address} signals {@code fd}. */
    @FunctionalInterface
    public interface IoeventfdRegistrar {
        void register(int fd, long address, int length, long datamatch);
    }

    private final VirtioDevice device;
    private final GuestWarnings warnings = new GuestWarnings(LOG);
    private final GuestMemory memory;
    private final Runnable raiseIrq;
    /** This activation's queues; replaced on reset. */
    private final List<Queue> queues = new ArrayList<>();
    private final AtomicInteger interruptStatus = new AtomicInteger();
    private final Interrupt interrupt = new Interrupt();
    private final List<Notifier> notifiers = new ArrayList<>();

    private int status;
    private volatile boolean needsReset;
    private int deviceFeaturesSel;
    private int driverFeaturesSel;
    private long driverFeatures;
    private int queueSel;
    private volatile int configGeneration;
    private volatile boolean activated;
    private volatile boolean closed;

    /**
     * @param device   the device behind the registers
     * @param memory   guest RAM, for the queues
     * @param raiseIrq injects one edge on the device's interrupt line (an irqfd write)
     */
    public MmioTransport(VirtioDevice device, GuestMemory memory, Runnable raiseIrq) {
        if (!VirtioFeatures.has(device.availableFeatures(), VirtioFeatures.F_VERSION_1)) {
            throw new IllegalArgumentException("virtio-mmio v2 devices must offer VIRTIO_F_VERSION_1");
        }
        this.device = device;
        this.memory = memory;
        this.raiseIrq = raiseIrq;
        for (int max : device.queueMaxSizes()) {
            queues.add(new Queue(memory, max));
        }
    }

    /** The device behind this transport. */
    public VirtioDevice device() {
        return device;
    }

    /** Device status as the driver reads it. */
    public synchronized int status() {
        return status | (needsReset ? DEVICE_NEEDS_RESET : 0);
    }

    /** InterruptStatus as the driver reads it. */
    public int interruptStatus() {
        return interruptStatus.get();
    }

    /** Whether the device was activated (DRIVER_OK) and not reset since. */
    public synchronized boolean activated() {
        return activated;
    }

    /**
     * Gives each queue its own eventfd, signalled by KVM when the guest writes the queue's index
     * to QueueNotify, and a thread that passes the notification to the device. A queue whose
     * ioeventfd cannot be registered keeps the slow path: the write exits to the vCPU thread.
     */
    public void attachIoeventfds(IoeventfdRegistrar registrar, long base, String name) {
        for (int q = 0; q < queues.size(); q++) {
            EventFd fd = new EventFd(0);
            try {
                registrar.register(fd.fd(), base + QUEUE_NOTIFY, 4, q);
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "{0}: no ioeventfd for queue {1}, notifications exit to the VMM: {2}",
                        name, q, e.getMessage());
                fd.close();
                continue;
            }
            notifiers.add(new Notifier(q, fd, name));
        }
    }

    @Override
    public void read(long offset, MemorySegment data) {
        int size = (int) data.byteSize();
        if (offset >= CONFIG) {
            byte[] b = new byte[size];
            synchronized (this) {
                guarded(() -> device.readConfig(offset - CONFIG, b));
            }
            MemorySegment.copy(MemorySegment.ofArray(b), 0, data, 0, size);
            return;
        }
        // N.B. InterruptStatus is read lock-free: the guest's interrupt handler must not wait
        // for a notifier thread that is busy in the device.
        int v = size != 4 || (offset & 3) != 0 ? 0
                : offset == INTERRUPT_STATUS ? interruptStatus.get() : readRegister((int) offset);
        if (size == 4) {
            data.set(ValueLayout.JAVA_INT_UNALIGNED, 0, v);
        } else {
            data.fill((byte) 0); // 4.2.2.2: non-32-bit register access is undefined; read as zero
        }
    }

    @Override
    public void write(long offset, MemorySegment data) {
        int size = (int) data.byteSize();
        if (offset >= CONFIG) {
            byte[] b = data.toArray(ValueLayout.JAVA_BYTE);
            synchronized (this) {
                guarded(() -> device.writeConfig(offset - CONFIG, b));
            }
            return;
        }
        if (size == 4 && (offset & 3) == 0) {
            int v = data.get(ValueLayout.JAVA_INT_UNALIGNED, 0);
            if (offset == QUEUE_NOTIFY) {
                notifyQueue(v); // no ioeventfd matched this value
            } else if (offset == INTERRUPT_ACK) {
                interruptStatus.getAndUpdate(s -> s & ~v); // lock-free, like the read
            } else {
                writeRegister((int) offset, v);
            }
        }
    }

    synchronized int readRegister(int offset) {
        Queue q = selectedQueue();
        return switch (offset) {
            case MAGIC_VALUE -> MAGIC;
            case VERSION -> MMIO_VERSION;
            case DEVICE_ID -> device.deviceType();
            case VENDOR_ID -> VENDOR;
            case DEVICE_FEATURES -> switch (deviceFeaturesSel) {
                case 0 -> (int) device.availableFeatures();
                case 1 -> (int) (device.availableFeatures() >>> 32);
                default -> 0;
            };
            case QUEUE_NUM_MAX -> q == null ? 0 : q.maxSize();
            case QUEUE_READY -> q != null && q.ready() ? 1 : 0;
            case INTERRUPT_STATUS -> interruptStatus.get();
            case STATUS -> status();
            case SHM_LEN_LOW, SHM_LEN_HIGH -> -1; // no shared memory regions (4.2.2: length ~0)
            case CONFIG_GENERATION -> configGeneration;
            default -> 0;
        };
    }

    synchronized void writeRegister(int offset, int v) {
        switch (offset) {
            case DEVICE_FEATURES_SEL -> deviceFeaturesSel = v;
            case DRIVER_FEATURES_SEL -> driverFeaturesSel = v;
            case DRIVER_FEATURES -> {
                if ((status & (DRIVER | FEATURES_OK)) == DRIVER && (driverFeaturesSel == 0 || driverFeaturesSel == 1)) {
                    int shift = 32 * driverFeaturesSel;
                    driverFeatures = (driverFeatures & ~(0xffff_ffffL << shift)) | (Integer.toUnsignedLong(v) << shift);
                }
            }
            case QUEUE_SEL -> queueSel = v;
            case QUEUE_NUM, QUEUE_READY, QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_DRIVER_LOW, QUEUE_DRIVER_HIGH,
                 QUEUE_DEVICE_LOW, QUEUE_DEVICE_HIGH -> writeQueueRegister(offset, v);
            case INTERRUPT_ACK -> interruptStatus.getAndUpdate(s -> s & ~v);
            case STATUS -> setStatus(v);
            default -> { } // read-only or unknown: ignored
        }
    }

    /**
     * Queue set-up is allowed after FEATURES_OK, before DRIVER_OK, while the queue is not ready
     * (4.2.3.2), and never on a device that needs a reset: once the device runs, its queues are
     * what it validated.
     */
    private void writeQueueRegister(int offset, int v) {
        Queue q = selectedQueue();
        if (q == null || needsReset || (status & (FEATURES_OK | DRIVER_OK | FAILED)) != FEATURES_OK) {
            return;
        }
        if (offset == QUEUE_READY) {
            q.setReady(v == 1);
            return;
        }
        if (q.ready()) {
            return;
        }
        long u = Integer.toUnsignedLong(v);
        switch (offset) {
            case QUEUE_NUM -> q.setSize(v);
            case QUEUE_DESC_LOW -> q.setDescTable(q.descTable() & ~0xffff_ffffL | u);
            case QUEUE_DESC_HIGH -> q.setDescTable(q.descTable() & 0xffff_ffffL | u << 32);
            case QUEUE_DRIVER_LOW -> q.setAvailRing(q.availRing() & ~0xffff_ffffL | u);
            case QUEUE_DRIVER_HIGH -> q.setAvailRing(q.availRing() & 0xffff_ffffL | u << 32);
            case QUEUE_DEVICE_LOW -> q.setUsedRing(q.usedRing() & ~0xffff_ffffL | u);
            case QUEUE_DEVICE_HIGH -> q.setUsedRing(q.usedRing() & 0xffff_ffffL | u << 32);
            default -> throw new IllegalStateException();
        }
    }

    private Queue selectedQueue() {
        return queueSel >= 0 && queueSel < queues.size() ? queues.get(queueSel) : null;
    }

    /**
     * The status register (2.1, 3.1.1): 0 resets; otherwise the driver only adds bits. Clearing a
     * bit is refused (2.1.1: the driver MUST NOT) and needs a reset: taking DRIVER_OK away from
     * a running device would reopen its queue set-up under it. After FAILED or DEVICE_NEEDS_RESET
     * the driver may still give up (FAILED), and nothing else.
     */
    private void setStatus(int written) {
        if (written == 0) {
            reset();
            return;
        }
        int v = written & DRIVER_BITS; // the driver may write back what it read, DEVICE_NEEDS_RESET included
        if ((v & status) != status) {
            deviceFailed(new IllegalStateException("status 0x%x written over 0x%x without a reset"
                    .formatted(written, status)));
            return;
        }
        int added = v & ~status;
        if (needsReset || ((status | added) & FAILED) != 0) {
            status |= added & FAILED;
            return;
        }
        if ((added & FEATURES_OK) != 0 && !featuresAcceptable()) {
            added &= ~FEATURES_OK; // 3.1.1: the driver re-reads status and sees the refusal
        }
        if ((added & DRIVER_OK) != 0 && (((status | added) & FEATURES_OK) == 0 || !activate())) {
            added &= ~DRIVER_OK;
        }
        status |= added;
    }

    private boolean featuresAcceptable() {
        long offered = device.availableFeatures();
        if (!VirtioFeatures.has(driverFeatures, VirtioFeatures.F_VERSION_1) || (driverFeatures & ~offered) != 0) {
            warnings.warn("virtio device %d: driver features 0x%x refused (offered 0x%x)"
                    .formatted(device.deviceType(), driverFeatures, offered), null);
            return false;
        }
        return guarded(() -> device.ackFeatures(driverFeatures));
    }

    /** DRIVER_OK: at most once per reset, since status bits cannot be taken away before one. */
    private boolean activate() {
        for (Queue q : queues) {
            q.setFeatures(driverFeatures);
        }
        try {
            for (Queue q : queues) {
                if (q.ready()) {
                    q.validate();
                }
            }
        } catch (RuntimeException e) {
            deviceFailed(e);
            return false;
        }
        activated = guarded(() -> device.activate(memory, List.copyOf(queues), interrupt));
        return activated;
    }

    /**
     * Device reset (2.4). The device's own reset runs whatever happened before, even an
     * activation that failed half-way, so that it releases everything it acquired.
     */
    private void reset() {
        activated = false; // first: a device failing in its reset does not interrupt a driver that is starting over
        guarded(device::reset);
        status = 0;
        needsReset = false;
        deviceFeaturesSel = driverFeaturesSel = queueSel = 0;
        driverFeatures = 0;
        interruptStatus.set(0);
        for (int i = 0; i < queues.size(); i++) {
            Queue old = queues.get(i);
            old.retire();
            queues.set(i, new Queue(memory, old.maxSize()));
        }
    }

    /**
     * The registers and queues for a snapshot, with the vCPUs stopped.
     *
     * @throws IllegalStateException if the device needs a reset or a request is in flight
     */
    public synchronized TransportState saveState() {
        if (needsReset) {
            throw new IllegalStateException("virtio device " + device.deviceType() + " needs a reset");
        }
        String blocker = activated ? device.snapshotBlocker() : null;
        if (blocker != null) {
            throw new IllegalStateException("virtio device " + device.deviceType() + ": " + blocker);
        }
        List<QueueState> qs = new ArrayList<>();
        for (Queue q : queues) {
            try {
                qs.add(q.state());
            } catch (IllegalStateException e) {
                throw new IllegalStateException("virtio device " + device.deviceType() + ": " + e.getMessage(), e);
            }
        }
        return new TransportState(device.deviceType(), status, driverFeatures, interruptStatus.get(), configGeneration, qs);
    }

    /**
     * Puts a {@link #saveState()} back on a new transport before any vCPU runs: the features
     * the driver accepted, the queues it set up and, if it had set DRIVER_OK, an activated
     * device, which then looks at every queue once, for buffers the driver published just
     * before the snapshot.
     *
     * @throws IllegalStateException if the state does not fit this device or the device refuses it
     */
    public synchronized void restoreState(TransportState state) {
        if (activated || status != 0) {
            throw new IllegalStateException("restore onto a device already in use");
        }
        if (state.deviceType() != device.deviceType() || state.queues().size() != queues.size()
                || (state.status() & ~DRIVER_BITS) != 0 || (state.status() & FAILED) != 0) {
            throw new IllegalStateException("snapshot of virtio device " + state.deviceType() + " status 0x"
                    + Integer.toHexString(state.status()) + " does not fit device " + device.deviceType());
        }
        driverFeatures = state.driverFeatures();
        for (int i = 0; i < queues.size(); i++) {
            queues.get(i).restore(state.queues().get(i));
        }
        if ((state.status() & FEATURES_OK) != 0) {
            if (!featuresAcceptable()) {
                throw new IllegalStateException("virtio device " + device.deviceType() + " refused its restored features");
            }
        }
        status = state.status() & ~DRIVER_OK;
        if ((state.status() & DRIVER_OK) != 0) {
            if (!activate()) {
                throw new IllegalStateException("virtio device " + device.deviceType() + " refused its restored queues");
            }
            status |= DRIVER_OK;
        }
        interruptStatus.set(state.interruptStatus());
        configGeneration = state.configGeneration();
        if (activated) {
            for (int q = 0; q < queues.size(); q++) {
                if (queues.get(q).ready()) {
                    notifyQueue(q);
                }
            }
        }
    }

    /** The driver notified queue {@code queue} (from an ioeventfd thread, or a QueueNotify exit). */
    public synchronized void notifyQueue(int queue) {
        if (!activated || needsReset || queue < 0 || queue >= queues.size() || queues.get(queue).isBroken()) {
            return;
        }
        guarded(() -> device.queueNotify(queue));
    }

    /**
     * Runs device code on the caller's thread, a vCPU's or a notifier's: whatever it throws, an
     * {@code Error} too (a heap or stack the guest exhausted), stops the device, not the caller.
     *
     * @return false if the device failed
     */
    private boolean guarded(Runnable deviceCode) {
        try {
            deviceCode.run();
            return true;
        } catch (RuntimeException | Error e) {
            deviceFailed(e);
            return false;
        }
    }

    /** 2.1.2: set DEVICE_NEEDS_RESET and, once DRIVER_OK was set, send a configuration change notification. */
    private void deviceFailed(Throwable e) {
        warnings.warn("virtio device " + device.deviceType() + " needs reset: " + e.getMessage(), e);
        boolean wasSet = needsReset;
        needsReset = true;
        if (!wasSet && activated) {
            interrupt.signalConfigChange();
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Notifier n : notifiers) {
            n.stop();
        }
        device.close();
    }

    private final class Interrupt implements VirtioInterrupt {
        @Override
        public void signalUsed(int queue) {
            interruptStatus.getAndUpdate(s -> s | INT_USED_BUFFER);
            raiseIrq.run();
        }

        @Override
        public void signalConfigChange() {
            configGeneration++;
            interruptStatus.getAndUpdate(s -> s | INT_CONFIG_CHANGE);
            raiseIrq.run();
        }

        @Override
        public void signalNeedsReset(Exception cause) {
            deviceFailed(cause); // N.B. lock-free: a device may call this holding its own lock
        }
    }

    /** One queue's ioeventfd and the thread that waits on it. */
    private final class Notifier {
        private final EventFd fd;
        private final Thread thread;

        Notifier(int queue, EventFd fd, String name) {
            this.fd = fd;
            this.thread = Thread.ofPlatform().daemon().name(name + "-q" + queue).start(() -> {
                while (!closed) {
                    try {
                        fd.consume();
                    } catch (RuntimeException e) {
                        if (!closed) {
                            LOG.log(System.Logger.Level.WARNING, "{0}: ioeventfd read failed: {1}", name, e.getMessage());
                        }
                        return;
                    }
                    if (!closed) {
                        notifyQueue(queue);
                    }
                }
            });
        }

        void stop() {
            fd.signal(); // wakes the blocked read; the thread then sees closed
            try {
                thread.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            fd.close();
        }
    }
}
