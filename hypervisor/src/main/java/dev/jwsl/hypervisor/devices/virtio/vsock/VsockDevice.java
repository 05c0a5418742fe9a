package dev.jwsl.hypervisor.devices.virtio.vsock;

import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.virtio.DescriptorChain;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.QueueException;
import dev.jwsl.hypervisor.virtio.VirtioDevice;
import dev.jwsl.hypervisor.virtio.VirtioFeatures;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongSupplier;

import static dev.jwsl.hypervisor.devices.virtio.vsock.VsockConstants.*;

/**
 * The virtio socket device (VIRTIO 1.2 5.10) with a {@link VsockBackend} for the host side. The
 * guest's TX queue is parsed into {@link VsockPacket}s and run through each connection's state
 * machine; packets for the guest (control packets first, then data within the guest's credit)
 * are written into RX buffers as the guest provides them. Malformed packets are dropped (a
 * well-formed one for no connection gets RST); a malformed ring marks the device for reset.
 *
 * <p>The guest is untrusted, and may send without end while it posts no RX buffers. What it can
 * make the device hold is bounded: each connection has at most one control packet of each kind
 * queued, connections (with those torn down whose RST the guest has not taken yet) are capped at
 * {@link VsockConstants#MAX_CONNECTIONS}, RSTs for no connection at
 * {@link VsockConstants#MAX_UNBOUND_RST} (more are dropped and counted), and the data buffers the
 * guest is offered come from a fixed pool ({@link VsockConstants#BUFFER_POOL}).
 */
public final class VsockDevice implements VirtioDevice {
    private static final System.Logger LOG = System.getLogger(VsockDevice.class.getName());

    /** A packet waiting for an RX buffer, with its connection (for the credit fields) if any. */
    private record Pending(VsockPacket packet, VsockConnection conn) {}

    /** The bounds above, and how long a host client waits for the guest to accept; tests make them small. */
    record Limits(int maxConnections, int maxUnboundRst, long bufferPool, long connectTimeoutMs) {
        static final Limits DEFAULT = new Limits(MAX_CONNECTIONS, MAX_UNBOUND_RST, BUFFER_POOL, CONNECT_TIMEOUT_MS);
    }

    private final long guestCid;
    private final VsockBackend backend;
    private final Limits limits;
    /** Open connections, in the order data is served: one that just sent goes to the back (round robin). */
    private final Map<Long, VsockConnection> connections = new LinkedHashMap<>();
    private final ArrayDeque<Pending> control = new ArrayDeque<>();
    private Queue rxq;
    private Queue txq;
    private VirtioInterrupt interrupt;
    private boolean active;
    private int nextHostPort = FIRST_HOST_PORT;
    /** Connections torn down whose RST is still queued: they keep their place in the limit. */
    private int closing;
    /** RSTs queued that belong to no connection. */
    private int unboundRsts;
    /** Bytes of {@link VsockConnection.Buffers#FULL} granted to open connections. */
    private long pooled;
    private long dropped;
    /** Connections reset for the guest's fault or silence (see {@link #reset}). */
    private long anomalies;
    /** Descriptor chains the guest has given the device (TX packets sent, RX buffers filled): whether it is alive. */
    private long guestProgress;
    /** The CPU time the guest's vCPUs have had so far: whether a silent guest had the chance to answer. */
    private final LongSupplier guestCpuNanos;

    /**
     * A device with guest CID {@code guestCid} (3 or more) and host side {@code backend};
     * {@code guestCpuNanos} says how much CPU time the guest's vCPUs have had so far.
     */
    public VsockDevice(long guestCid, VsockBackend backend, LongSupplier guestCpuNanos) {
        this(guestCid, backend, Limits.DEFAULT, guestCpuNanos);
    }

    VsockDevice(long guestCid, VsockBackend backend, Limits limits, LongSupplier guestCpuNanos) {
        if (guestCid < 3 || guestCid > 0xffff_fffeL) {
            throw new IllegalArgumentException("guest CID must be 3..2^32-2: " + guestCid);
        }
        this.guestCid = guestCid;
        this.backend = backend;
        this.limits = limits;
        this.guestCpuNanos = guestCpuNanos;
    }

    @Override
    public int deviceType() {
        return DEVICE_TYPE;
    }

    @Override
    public long availableFeatures() {
        // N.B. no VIRTIO_VSOCK_F_SEQPACKET: stream sockets only
        return VirtioFeatures.TRANSPORT;
    }

    @Override
    public void ackFeatures(long features) {
        // nothing device-specific
    }

    @Override
    public List<Integer> queueMaxSizes() {
        return List.of(QUEUE_SIZE, QUEUE_SIZE, QUEUE_SIZE);
    }

    /** 5.10.4: {@code le64 guest_cid}. */
    @Override
    public void readConfig(long offset, byte[] data) {
        for (int i = 0; i < data.length; i++) {
            long at = offset + i;
            data[i] = at >= 0 && at < 8 ? (byte) (guestCid >>> (8 * at)) : 0;
        }
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        // read-only
    }

    @Override
    public synchronized void activate(GuestMemory memory, List<Queue> queues, VirtioInterrupt interrupt) {
        this.rxq = queues.get(RXQ);
        this.txq = queues.get(TXQ);
        this.interrupt = interrupt;
        this.active = true;
        try {
            backend.start(this::hostConnect);
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "vsock: cannot listen for host connections: {0}", e.toString());
        }
    }

    @Override
    public synchronized void queueNotify(int queue) {
        if (!active) {
            return;
        }
        if (queue == TXQ) {
            processTx();
        }
        processRx(); // TX may have queued replies; an RX kick means new buffers
    }

    @Override
    public synchronized void reset() {
        active = false;
        for (VsockConnection c : new ArrayList<>(connections.values())) {
            kill(c);
        }
        control.clear();
        closing = 0;
        unboundRsts = 0;
        rxq = txq = null;
        interrupt = null;
        notifyAll();
    }

    /**
     * A snapshot holds no connection: the host side of one would not survive the restore, and a
     * transport reset event sent after it races the host's first new connection (the guest resets
     * every connected socket when it gets to the event, that one too).
     */
    @Override
    public synchronized String snapshotBlocker() {
        int open = connections.size() + closing;
        return open == 0 && control.isEmpty() ? null : open + " vsock connections open, " + control.size() + " packets queued";
    }

    @Override
    public void close() {
        reset();
        backend.close();
    }

    /** Number of open connections (for tests and diagnostics). */
    public synchronized int connectionCount() {
        return connections.size();
    }

    /** Packets for the guest dropped because it left too many waiting (for tests and diagnostics). */
    public synchronized long droppedPackets() {
        return dropped;
    }

    /** Chunks of guest data held for host sockets, across connections (for tests). */
    synchronized int heldChunks() {
        return connections.values().stream().mapToInt(c -> c.toHost.size()).sum();
    }

    /** Bytes read from host sockets and not yet sent to the guest, across connections (for tests). */
    synchronized int heldForGuest() {
        return connections.values().stream().mapToInt(VsockConnection::pendingToGuest).sum();
    }

    // ---- guest to host -------------------------------------------------------------------------

    private void processTx() {
        boolean used = false;
        try {
            for (Optional<DescriptorChain> c = txq.pop(); c.isPresent(); c = txq.pop()) {
                DescriptorChain chain = c.get();
                VsockPacket p;
                try {
                    p = VsockPacket.fromTx(chain);
                } catch (VsockException e) {
                    LOG.log(System.Logger.Level.DEBUG, "vsock: dropping a malformed TX packet: {0}", e.getMessage());
                    p = null;
                }
                txq.addUsed(chain.head(), 0);
                used = true;
                guestProgress++;
                if (p != null) {
                    deliver(p);
                }
            }
        } catch (QueueException e) {
            broken(e);
            return;
        }
        if (used && txq.needsNotification()) {
            interrupt.signalUsed(TXQ);
        }
    }

    /**
     * {@link #fromGuest}, where a failure on one packet costs its connection, not the device: a
     * device that needs reset stops every relay and share of the VM, and Linux never resets it.
     */
    private void deliver(VsockPacket p) {
        try {
            fromGuest(p);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.WARNING, "vsock: resetting the connection of {0} after {1}", p, e.toString());
            VsockConnection conn = connections.get(VsockConnection.key(p.dstPort(), p.srcPort()));
            if (conn != null) {
                reset(conn, null); // logged above
            } else if (p.op() != OP_RST) {
                rstReply(p);
            }
            notifyAll();
        }
    }

    /** The ring is malformed: nothing more can pass; the guest must reset the device (2.1.2). */
    private void broken(RuntimeException e) {
        active = false;
        interrupt.signalNeedsReset(e);
        notifyAll();
    }

    private void fromGuest(VsockPacket p) {
        if (p.srcCid() != guestCid || p.dstCid() != HOST_CID) {
            LOG.log(System.Logger.Level.DEBUG, "vsock: dropping misaddressed {0}", p);
            return;
        }
        if (p.type() != TYPE_STREAM) {
            if (p.op() != OP_RST) {
                rstReply(p);
            }
            return;
        }
        VsockConnection conn = connections.get(VsockConnection.key(p.dstPort(), p.srcPort()));
        if (conn != null && conn.guestReset && p.op() == OP_REQUEST) { // a new connection on the same ports
            kill(conn);
            conn = null;
        }
        if (conn == null) {
            if (p.op() == OP_REQUEST) {
                guestConnect(p);
            } else if (p.op() != OP_RST) {
                rstReply(p);
            }
            return;
        }
        conn.peerBufAlloc = p.bufAlloc();
        conn.peerFwdCnt = p.fwdCnt();
        if (conn.peerCredit() > 0) {
            conn.creditRequested = false;
        }
        switch (p.op()) {
            case OP_RESPONSE -> {
                if (conn.state != VsockConnection.State.CONNECTING) {
                    reset(conn, "RESPONSE on an established connection");
                    return;
                }
                try {
                    backend.accepted(conn.channel, conn.hostPort);
                } catch (IOException e) {
                    reset(conn, null); // the host client is gone
                    return;
                }
                conn.state = VsockConnection.State.ESTABLISHED;
                conn.start(this);
            }
            case OP_RW -> {
                if (conn.state != VsockConnection.State.ESTABLISHED || conn.guestShutSend
                        || p.payload().length > conn.ourFreeSpace()) {
                    // N.B. data beyond our advertised credit is a protocol violation
                    reset(conn, conn.state != VsockConnection.State.ESTABLISHED ? "data before RESPONSE"
                            : conn.guestShutSend ? "data after SHUTDOWN"
                            : "data beyond the credit given (" + p.payload().length + " > " + conn.ourFreeSpace() + ")");
                    return;
                }
                if (p.payload().length > 0) {
                    conn.queueToHost(p.payload());
                    conn.recvCnt += p.payload().length;
                }
            }
            case OP_CREDIT_UPDATE -> { } // credit already taken from the header
            case OP_CREDIT_REQUEST -> queue(conn, OP_CREDIT_UPDATE, 0);
            case OP_SHUTDOWN -> {
                conn.guestShutRcv |= (p.flags() & SHUTDOWN_RCV) != 0;
                conn.guestShutSend |= (p.flags() & SHUTDOWN_SEND) != 0;
                maybeFinish(conn);
            }
            case OP_RST -> {
                if (conn.toHostBytes > 0) {
                    passOnThenClose(conn);
                } else {
                    kill(conn);
                }
            }
            default -> reset(conn, p.op() == OP_REQUEST ? "REQUEST on an open connection" : "unknown op " + p.op());
        }
        notifyAll();
    }

    /**
     * The guest reset {@code conn} before the host had all it sent: the host client still gets
     * those bytes, then end of stream, as a Linux host reading a vsock socket would (the data
     * received stays readable after the peer's RST). The device took them, and gave the guest
     * credit for them, so they are the host's; a guest that closes on time-out resets a
     * connection whose last frames a slow host has not read yet (Linux waits 8 s after close). The
     * connection keeps its place in the limit until then, and nothing more goes to the guest.
     */
    private void passOnThenClose(VsockConnection conn) {
        conn.guestReset = true;
        conn.guestShutSend = true;
        conn.guestShutRcv = true;
        control.removeIf(q -> q.conn == conn);
        conn.queuedOps = 0;
    }

    /** A guest REQUEST for a port with no connection: connect to the host socket, RESPONSE or RST. */
    private void guestConnect(VsockPacket p) {
        if (connections.size() + closing >= limits.maxConnections()) {
            rstReply(p);
            return;
        }
        SocketChannel channel;
        try {
            channel = backend.connect(p.dstPort());
        } catch (IOException | RuntimeException e) {
            LOG.log(System.Logger.Level.DEBUG, "vsock: guest connection to host port {0} refused: {1}",
                    Integer.toUnsignedString(p.dstPort()), e.toString());
            rstReply(p);
            return;
        }
        VsockConnection conn = new VsockConnection(p.dstPort(), p.srcPort(), channel, VsockConnection.State.ESTABLISHED,
                grantBuffers());
        conn.peerBufAlloc = p.bufAlloc();
        conn.peerFwdCnt = p.fwdCnt();
        connections.put(conn.key(), conn);
        queue(conn, OP_RESPONSE, 0);
        conn.start(this);
    }

    // ---- host to guest -------------------------------------------------------------------------

    /** A host client asked for guest port {@code guestPort} (backend listener thread). */
    synchronized void hostConnect(int guestPort, SocketChannel channel) {
        if (!active || connections.size() + closing >= limits.maxConnections()) {
            UnixSocketBackend.closeQuietly(channel);
            return;
        }
        int port;
        do {
            port = nextHostPort++;
            if (nextHostPort == 0) {
                nextHostPort = FIRST_HOST_PORT;
            }
        } while (connections.containsKey(VsockConnection.key(port, guestPort)));
        VsockConnection conn = new VsockConnection(port, guestPort, channel, VsockConnection.State.CONNECTING, grantBuffers());
        connections.put(conn.key(), conn);
        queue(conn, OP_REQUEST, 0);
        processRx();
        Thread.ofVirtual().name("vsock-connect-timeout").start(() -> expireRequest(conn));
    }

    /**
     * A guest that never answers a REQUEST (or never takes it) must not keep the host client
     * waiting, or the connection's place, for ever: RST once the guest has passed a whole
     * {@link Limits#connectTimeoutMs} in which its vCPUs ran (a tenth of it, at least) without
     * using a descriptor (a hung guest), and after {@link VsockConstants#CONNECT_TIMEOUT_PERIODS}
     * of them in any case (a guest that works but ignores this one, or never gets to run). A guest
     * that is merely slow, busy or starved is given the time: 100 `wsl` calls at once on one
     * emulated CPU left it no descriptor used for 30 s, for want of CPU (issue 29), and a Linux
     * guest answers each REQUEST as soon as it runs and takes it.
     */
    private void expireRequest(VsockConnection conn) {
        long seen;
        long cpuSeen = guestCpuNanos.getAsLong();
        synchronized (this) {
            seen = guestProgress;
        }
        for (int period = 1; ; period++) {
            try {
                Thread.sleep(limits.connectTimeoutMs());
            } catch (InterruptedException e) {
                return;
            }
            long cpu = guestCpuNanos.getAsLong();
            synchronized (this) {
                if (conn.state != VsockConnection.State.CONNECTING) {
                    return;
                }
                long ranMs = (cpu - cpuSeen) / 1_000_000;
                boolean hung = guestProgress == seen && ranMs * 10 >= limits.connectTimeoutMs();
                if (hung || period == CONNECT_TIMEOUT_PERIODS) {
                    reset(conn, "no RESPONSE within " + period * limits.connectTimeoutMs() + " ms"
                            + (hung ? ", the guest ran " + ranMs + " ms in the last " + limits.connectTimeoutMs()
                                    + " ms and used no descriptor" : ""));
                    processRx();
                    return;
                }
                seen = guestProgress;
                cpuSeen = cpu;
            }
        }
    }

    /** Reader thread: waits until the connection may read from the host; returns how much, 0 to stop. */
    synchronized int awaitReadable(VsockConnection conn) {
        while (conn.state != VsockConnection.State.CLOSED
                && (conn.pendingToGuest() > 0 || conn.peerCredit() == 0 || conn.guestShutRcv)) {
            if (askForCredit(conn)) {
                processRx();
            }
            waitQuietly();
        }
        return conn.state == VsockConnection.State.CLOSED ? 0 : Math.min(conn.peerCredit(), MAX_PKT_PAYLOAD);
    }

    /**
     * Queues CREDIT_REQUEST once when the guest has no room left for {@code conn}, data pending or
     * not: Linux sends CREDIT_UPDATE only as its reader takes data, or when asked.
     */
    private boolean askForCredit(VsockConnection conn) {
        if (conn.state != VsockConnection.State.ESTABLISHED || conn.peerCredit() > 0 || conn.creditRequested
                || conn.guestShutRcv) {
            return false;
        }
        conn.creditRequested = true;
        queue(conn, OP_CREDIT_REQUEST, 0);
        return true;
    }

    /**
     * Reader thread: {@code data[0, n)} was read from the host, or {@code n} is negative at end of
     * stream; false to stop. The device sends from {@code data} itself (no copy) until it is empty.
     */
    synchronized boolean readFromHost(VsockConnection conn, byte[] data, int n) {
        if (conn.state == VsockConnection.State.CLOSED) {
            return false;
        }
        if (n < 0) {
            conn.hostEof = true;
            maybeShutdown(conn);
            processRx();
            return false;
        }
        conn.toGuest = data;
        conn.toGuestOffset = 0;
        conn.toGuestEnd = n;
        processRx();
        return true;
    }

    /** Writer thread: the next chunk for the host (now the writer's alone), or null to stop. */
    synchronized VsockConnection.Chunk awaitWritable(VsockConnection conn) {
        while (conn.state != VsockConnection.State.CLOSED && conn.toHost.isEmpty()) {
            if (conn.guestShutSend && !conn.hostOutputShut) {
                conn.hostOutputShut = true;
                try {
                    conn.channel.shutdownOutput();
                } catch (IOException ignored) {
                    // the host end is gone; the reader will see it
                }
            }
            waitQuietly();
        }
        return conn.state == VsockConnection.State.CLOSED ? null : conn.toHost.poll();
    }

    /** Writer thread: {@code n} bytes went to the host (or failed); false to stop. */
    synchronized boolean wroteToHost(VsockConnection conn, int n, boolean ok) {
        if (conn.state == VsockConnection.State.CLOSED) {
            return false;
        }
        if (!ok) {
            reset(conn, null); // the host client is gone
            processRx();
            return false;
        }
        conn.toHostBytes -= n;
        conn.fwdCnt += n;
        if (conn.fwdCnt != conn.lastSentFwdCnt && conn.guestViewOfFreeSpace() < conn.creditUpdateThreshold()) {
            queue(conn, OP_CREDIT_UPDATE, 0);
        }
        maybeFinish(conn);
        processRx();
        notifyAll();
        return true;
    }

    /** After host EOF and all its data reached the guest: SHUTDOWN(SEND) once. */
    private void maybeShutdown(VsockConnection conn) {
        if (conn.hostEof && !conn.shutdownSent && conn.pendingToGuest() == 0 && conn.state == VsockConnection.State.ESTABLISHED) {
            conn.shutdownSent = true;
            queue(conn, OP_SHUTDOWN, SHUTDOWN_SEND);
            maybeFinish(conn);
        }
    }

    /** Both directions are done and our buffer is flushed: RST and forget the connection. */
    private void maybeFinish(VsockConnection conn) {
        if (conn.guestShutSend && conn.toHostBytes == 0 && (conn.guestShutRcv || conn.shutdownSent)) {
            reset(conn, null); // the end of a healthy connection
        }
    }

    /**
     * Sends RST for {@code conn} and tears it down. {@code why}, when not null, is an anomaly on
     * the guest's side, logged so that a session that ends abruptly says why; rate-limited like
     * the dropped RSTs, since the guest can repeat it at will.
     */
    private void reset(VsockConnection conn, String why) {
        if (conn.state != VsockConnection.State.CLOSED) {
            if (why != null && Long.bitCount(++anomalies) == 1) {
                LOG.log(System.Logger.Level.WARNING, "vsock: resetting host port {0} to guest port {1}: {2} ({3} so far)",
                        Integer.toUnsignedString(conn.hostPort), Integer.toUnsignedString(conn.guestPort), why, anomalies);
            }
            queue(conn, OP_RST, 0);
            kill(conn);
        }
    }

    /**
     * Tears {@code conn} down without telling the guest (beyond an RST already queued, which
     * keeps the connection's place in the limit until the guest takes it).
     */
    private void kill(VsockConnection conn) {
        conn.state = VsockConnection.State.CLOSED;
        connections.remove(conn.key());
        if (conn.buffers == VsockConnection.Buffers.FULL) {
            pooled -= conn.buffers.bytes();
        }
        conn.toHost.clear();
        conn.closeChannel();
        int rst = 1 << OP_RST;
        if ((conn.queuedOps & ~rst) != 0) {
            // N.B. otherwise a guest that opens and resets connections while it reads nothing
            // would leave a RESPONSE or CREDIT_UPDATE behind for each one
            control.removeIf(q -> q.conn == conn && q.packet.op() != OP_RST);
            conn.queuedOps &= rst;
        }
        if (conn.queuedOps != 0) {
            closing++;
        }
        notifyAll();
    }

    /** Full-size buffers while the pool lasts, then the minimum. */
    private VsockConnection.Buffers grantBuffers() {
        VsockConnection.Buffers full = VsockConnection.Buffers.FULL;
        if (pooled + full.bytes() <= limits.bufferPool()) {
            pooled += full.bytes();
            return full;
        }
        return VsockConnection.Buffers.MIN;
    }

    /**
     * Queues a control packet unless one with the same op is already waiting: the credit fields
     * are filled in when it is sent, so one carries everything a second would.
     */
    private void queue(VsockConnection conn, int op, int flags) {
        if (conn.state == VsockConnection.State.CLOSED || conn.guestReset || (conn.queuedOps & (1 << op)) != 0) {
            return;
        }
        conn.queuedOps |= 1 << op;
        VsockPacket p = header(conn.hostPort, conn.guestPort).op(op).flags(flags);
        control.add(new Pending(p, conn));
    }

    /** RST in reply to {@code p}, for a connection the device does not have; dropped past the limit. */
    private void rstReply(VsockPacket p) {
        if (unboundRsts >= limits.maxUnboundRst()) {
            dropped++;
            if (Long.bitCount(dropped) == 1) { // 1, 2, 4, ...: a flood is visible, not a log per packet
                LOG.log(System.Logger.Level.WARNING, "vsock: the guest leaves RSTs unread: {0} dropped", dropped);
            }
            return;
        }
        unboundRsts++;
        control.add(new Pending(new VsockPacket().srcCid(HOST_CID).dstCid(guestCid).srcPort(p.dstPort())
                .dstPort(p.srcPort()).type(p.type() == TYPE_STREAM ? TYPE_STREAM : p.type()).op(OP_RST), null));
    }

    private VsockPacket header(int hostPort, int guestPort) {
        return new VsockPacket().srcCid(HOST_CID).dstCid(guestCid).srcPort(hostPort).dstPort(guestPort).type(TYPE_STREAM);
    }

    /** Fills RX buffers: control packets first, then data within each connection's credit. */
    private void processRx() {
        if (!active) {
            return;
        }
        boolean used = false;
        try {
            while (!control.isEmpty() || dataReady() != null) {
                Optional<DescriptorChain> c = rxq.pop();
                if (c.isEmpty()) {
                    break;
                }
                DescriptorChain chain = c.get();
                int room = (int) Math.min(chain.writableLength() - VsockPacket.HDR_SIZE, MAX_PKT_PAYLOAD);
                if (room < 0) {
                    rxq.addUsed(chain.head(), 0); // cannot hold even a header: give it back empty
                    used = true;
                    continue;
                }
                VsockPacket p;
                VsockConnection conn;
                if (!control.isEmpty()) {
                    Pending pending = control.poll();
                    p = pending.packet;
                    conn = pending.conn;
                    sent(pending);
                } else {
                    conn = dataReady();
                    int n = Math.min(room, Math.min(conn.pendingToGuest(), conn.peerCredit()));
                    byte[] data = java.util.Arrays.copyOfRange(conn.toGuest, conn.toGuestOffset, conn.toGuestOffset + n);
                    conn.toGuestOffset += n;
                    conn.rxCnt += n;
                    p = header(conn.hostPort, conn.guestPort).op(OP_RW).payload(data);
                    connections.remove(conn.key()); // to the back of the line
                    connections.put(conn.key(), conn);
                    if (conn.pendingToGuest() == 0) {
                        maybeShutdown(conn);
                        notifyAll();
                    } else {
                        askForCredit(conn);
                    }
                }
                if (conn != null) {
                    p.bufAlloc(conn.bufAlloc).fwdCnt(conn.fwdCnt);
                    conn.lastSentFwdCnt = conn.fwdCnt;
                }
                rxq.addUsed(chain.head(), p.writeTo(chain));
                used = true;
                guestProgress++;
            }
            if (used && rxq.needsNotification()) {
                interrupt.signalUsed(RXQ);
            }
        } catch (QueueException | VsockException e) {
            broken(e); // the RX ring is broken, or a buffer did not hold what it was checked to: nothing more can reach the guest
        }
    }

    /** {@code pending} left the control queue: its connection may queue that op again, or give up its place. */
    private void sent(Pending pending) {
        VsockConnection conn = pending.conn;
        if (conn == null) {
            unboundRsts--;
            return;
        }
        conn.queuedOps &= ~(1 << pending.packet.op());
        if (conn.state == VsockConnection.State.CLOSED && conn.queuedOps == 0) {
            closing--;
        }
    }

    /** A connection with data the guest can take now, if any. */
    private VsockConnection dataReady() {
        for (VsockConnection c : connections.values()) {
            if (c.hasDataForGuest()) {
                return c;
            }
        }
        return null;
    }

    private void waitQuietly() {
        try {
            wait();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
