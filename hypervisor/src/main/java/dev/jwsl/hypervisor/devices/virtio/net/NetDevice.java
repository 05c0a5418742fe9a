package dev.jwsl.hypervisor.devices.virtio.net;

import dev.jwsl.hypervisor.devices.DeviceSetupException;
import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.Scatter;
import dev.jwsl.hypervisor.net.Frames;
import dev.jwsl.hypervisor.net.GuestLink;
import dev.jwsl.hypervisor.net.NetBackend;
import dev.jwsl.hypervisor.net.NetConfig;
import dev.jwsl.hypervisor.net.NetworkUnavailableException;
import dev.jwsl.hypervisor.net.slirp.SlirpBackend;
import dev.jwsl.hypervisor.virtio.DescriptorChain;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.QueueException;
import dev.jwsl.hypervisor.virtio.VirtioDevice;
import dev.jwsl.hypervisor.virtio.VirtioFeatures;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * The virtio network device (VIRTIO 1.2 5.1): one receive and one transmit queue, a fixed MAC,
 * a large MTU (VIRTIO_NET_F_MTU) and checksum offload both ways, in front of a
 * {@link NetBackend}. Both queues are processed on the backend's thread: a notification only
 * wakes it.
 *
 * <p>Checksums: the guest may leave a transmitted packet's checksum to the device
 * (VIRTIO_NET_F_CSUM); the device completes it before the backend sees the frame. Frames to the
 * guest carry DATA_VALID (VIRTIO_NET_F_GUEST_CSUM): the backend wrote their checksums.
 * No segmentation offload: with the MTU at 64 KiB it would buy little.
 */
public final class NetDevice implements VirtioDevice, GuestLink {
    private static final System.Logger LOG = System.getLogger(NetDevice.class.getName());
    /** Device type "Network card" (5). */
    public static final int DEVICE_TYPE = 1;
    static final int RX = 0, TX = 1;
    static final int QUEUE_SIZE = 256;
    /** Feature bits (5.1.3). */
    static final int F_CSUM = 0, F_GUEST_CSUM = 1, F_MTU = 3, F_MAC = 5;
    /** struct virtio_net_hdr for VERSION_1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
    static final int HEADER_SIZE = 12;
    static final int HDR_F_NEEDS_CSUM = 1, HDR_F_DATA_VALID = 2;
    /** Frames queued for the guest while it has posted no receive buffer. */
    static final int BACKLOG_FRAMES = 512;
    static final long BACKLOG_BYTES = 16L << 20;
    /** Frames sent per look at the transmit ring before the backend's other work gets a turn. */
    static final int TX_BUDGET = QUEUE_SIZE;

    private final NetConfig config;
    private final NetBackend backend;
    private final byte[] mac;
    private final MemorySegment txBuffer;
    private final ArrayDeque<byte[]> backlog = new ArrayDeque<>();
    private long backlogBytes;
    private boolean started;
    private long acked;
    private Queue rx, tx;
    private VirtioInterrupt interrupt;
    private long droppedRx, droppedTx;
    /** Receive buffers were used since the last interrupt. */
    private boolean rxUsed;

    /** A started device on the user-mode network (libslirp) that {@code config} describes. */
    public static NetDevice withUserNetwork(NetConfig config) {
        NetDevice net = null;
        try {
            net = new NetDevice(config, new SlirpBackend(config));
            net.start();
            return net;
        } catch (NetworkUnavailableException e) {
            if (net != null) {
                net.close();
            }
            throw new DeviceSetupException(e.getMessage(), e);
        }
    }

    public NetDevice(NetConfig config, NetBackend backend) {
        this.config = config;
        this.backend = backend;
        this.mac = NetConfig.GUEST_MAC.clone();
        this.txBuffer = Arena.ofAuto().allocate(HEADER_SIZE + Frames.maxFrame(config), 8);
    }

    @Override
    public int deviceType() {
        return DEVICE_TYPE;
    }

    @Override
    public long availableFeatures() {
        return VirtioFeatures.TRANSPORT | VirtioFeatures.bit(F_MAC) | VirtioFeatures.bit(F_MTU)
                | VirtioFeatures.bit(F_CSUM) | VirtioFeatures.bit(F_GUEST_CSUM);
    }

    @Override
    public synchronized void ackFeatures(long features) {
        acked = features;
    }

    @Override
    public List<Integer> queueMaxSizes() {
        return List.of(QUEUE_SIZE, QUEUE_SIZE);
    }

    /** struct virtio_net_config: mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu. */
    @Override
    public void readConfig(long offset, byte[] data) {
        byte[] c = new byte[12];
        System.arraycopy(mac, 0, c, 0, 6);
        c[8] = 1; // max_virtqueue_pairs (only read with VIRTIO_NET_F_MQ, which is not offered)
        c[10] = (byte) config.mtu();
        c[11] = (byte) (config.mtu() >> 8);
        VirtioDevice.readConfigSpace(c, offset, data);
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        // the MAC is writable only for legacy drivers (5.1.4): ignored
    }

    /**
     * Starts the backend, before the guest boots, so that a backend that cannot start fails the
     * VM's creation rather than the driver's activation.
     *
     * @throws dev.jwsl.hypervisor.net.NetworkUnavailableException if it cannot start
     */
    public void start() {
        synchronized (this) {
            if (started) {
                return;
            }
            started = true;
        }
        backend.start(this);
    }

    @Override
    public void activate(GuestMemory memory, List<Queue> queues, VirtioInterrupt interrupt) {
        synchronized (this) {
            this.rx = queues.get(RX);
            this.tx = queues.get(TX);
            this.interrupt = interrupt;
        }
        start();
        backend.wake();
    }

    @Override
    public void queueNotify(int queue) {
        backend.wake();
    }

    @Override
    public synchronized void reset() {
        rxUsed = false;
        rx = null;
        tx = null;
        interrupt = null;
        backlog.clear();
        backlogBytes = 0;
    }

    @Override
    public void close() {
        backend.close();
    }

    /** Frames the guest sent that were not Ethernet frames the backend could take. */
    public synchronized long droppedTx() {
        return droppedTx;
    }

    /** Frames for the guest dropped: no buffer for too long, or a buffer too small. */
    public synchronized long droppedRx() {
        return droppedRx;
    }

    // ---- GuestLink: the backend's thread ----

    @Override
    public synchronized void drainTransmit(Consumer<MemorySegment> sink) {
        flushBacklog();
        Queue q = tx;
        if (q == null || !q.ready()) {
            return;
        }
        try {
            transmit(q, sink);
        } finally {
            signalReceived();
        }
    }

    /**
     * One interrupt for every frame delivered since the last: the backend's loop comes here after
     * each round of delivering (and at once when it has nothing to wait for), so a burst costs the
     * guest one interrupt, not one a frame.
     */
    private void signalReceived() {
        if (rxUsed && rx != null) {
            rxUsed = false;
            if (rx.needsNotification()) {
                interrupt.signalUsed(RX);
            }
        }
    }

    private void transmit(Queue q, Consumer<MemorySegment> sink) {
        boolean used = false;
        for (int budget = TX_BUDGET; ; budget--) {
            if (budget == 0) {
                backend.wake(); // a driver refilling as fast as we drain would keep slirp's sockets waiting
                break;
            }
            Optional<DescriptorChain> c = pop(q);
            if (c.isEmpty()) {
                break;
            }
            DescriptorChain chain = c.get();
            used = true;
            long n = chain.readableLength();
            if (n < HEADER_SIZE + Frames.ETH_HEADER || n > txBuffer.byteSize()) {
                droppedTx++;
                q.addUsed(chain.head(), 0);
                continue;
            }
            chain.readableScatter().read(0, txBuffer.asSlice(0, n));
            MemorySegment frame = txBuffer.asSlice(HEADER_SIZE, n - HEADER_SIZE);
            if ((txBuffer.get(JAVA_BYTE, 0) & HDR_F_NEEDS_CSUM) != 0
                    && !Checksum.complete(frame, u16le(txBuffer, 6), u16le(txBuffer, 8))) {
                droppedTx++;
                q.addUsed(chain.head(), 0);
                continue;
            }
            q.addUsed(chain.head(), 0);
            sink.accept(frame);
        }
        if (used && q.needsNotification()) {
            interrupt.signalUsed(TX);
        }
    }

    @Override
    public synchronized void deliver(MemorySegment frame) {
        if (rx == null) {
            return; // the driver is not up: nobody would see it
        }
        if (backlog.isEmpty() && put(frame)) {
            return;
        }
        if (backlog.size() >= BACKLOG_FRAMES || backlogBytes + frame.byteSize() > BACKLOG_BYTES) {
            droppedRx++;
            return;
        }
        backlog.add(frame.toArray(JAVA_BYTE));
        backlogBytes += frame.byteSize();
        flushBacklog();
    }

    private void flushBacklog() {
        while (!backlog.isEmpty() && rx != null && put(MemorySegment.ofArray(backlog.peek()))) {
            backlogBytes -= backlog.poll().length;
        }
    }

    /** Copies {@code frame} into the guest's next receive buffer; false if it has none. */
    private boolean put(MemorySegment frame) {
        Queue q = rx;
        if (q == null || !q.ready()) {
            return false;
        }
        Optional<DescriptorChain> c = pop(q);
        if (c.isEmpty()) {
            return false;
        }
        DescriptorChain chain = c.get();
        Scatter buf = chain.writableScatter();
        int written = 0;
        if (buf.length() >= HEADER_SIZE + frame.byteSize()) {
            byte[] header = new byte[HEADER_SIZE];
            if ((acked & VirtioFeatures.bit(F_GUEST_CSUM)) != 0) {
                header[0] = HDR_F_DATA_VALID;
            }
            header[10] = 1; // num_buffers
            buf.write(0, header, HEADER_SIZE);
            buf.write(HEADER_SIZE, frame);
            written = HEADER_SIZE + (int) frame.byteSize();
        } else {
            droppedRx++;
            LOG.log(System.Logger.Level.DEBUG, "virtio-net: receive buffer of {0} bytes for a {1}-byte frame", buf.length(), frame.byteSize());
        }
        q.addUsed(chain.head(), written);
        rxUsed = true;
        return true;
    }

    /**
     * The next chain, or empty if there is none or the driver broke the ring. The queue stays
     * broken (it pops nothing more) and the transport sets DEVICE_NEEDS_RESET: the error must not
     * reach the backend's thread, whose loop is the whole network stack.
     */
    private Optional<DescriptorChain> pop(Queue q) {
        try {
            return q.pop();
        } catch (QueueException e) {
            interrupt.signalNeedsReset(e);
            return Optional.empty();
        }
    }

    private static int u16le(MemorySegment s, long at) {
        return (s.get(JAVA_BYTE, at) & 0xff) | (s.get(JAVA_BYTE, at + 1) & 0xff) << 8;
    }
}
