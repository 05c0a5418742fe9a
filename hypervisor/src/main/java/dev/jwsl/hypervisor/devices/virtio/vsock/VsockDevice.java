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

import static dev.jwsl.hypervisor.devices.virtio.vsock.VsockConstants.*;

/**
 * The virtio socket device (VIRTIO 1.2 5.10) with a {@link VsockBackend} for the host side. The
 * guest's TX queue is parsed into {@link VsockPacket}s and run through each connection's state
 * machine; packets for the guest (control packets first, then data within the guest's credit)
 * are written into RX buffers as the guest provides them. Malformed packets are dropped (a
 * well-formed one for no connection gets RST); a malformed ring marks the device for reset.
 */
public final class VsockDevice implements VirtioDevice {
    private static final System.Logger LOG = System.getLogger(VsockDevice.class.getName());

    /** A packet waiting for an RX buffer, with its connection (for the credit fields) if any. */
    private record Pending(VsockPacket packet, VsockConnection conn) {}

    private final long guestCid;
    private final VsockBackend backend;
    /** Open connections, in the order data is served: one that just sent goes to the back (round robin). */
    private final Map<Long, VsockConnection> connections = new LinkedHashMap<>();
    private final ArrayDeque<Pending> control = new ArrayDeque<>();
    private Queue rxq;
    private Queue txq;
    private VirtioInterrupt interrupt;
    private boolean active;
    private int nextHostPort = FIRST_HOST_PORT;

    /** A device with guest CID {@code guestCid} (3 or more) and host side {@code backend}. */
    public VsockDevice(long guestCid, VsockBackend backend) {
        if (guestCid < 3 || guestCid > 0xffff_fffeL) {
            throw new IllegalArgumentException("guest CID must be 3..2^32-2: " + guestCid);
        }
        this.guestCid = guestCid;
        this.backend = backend;
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
        rxq = txq = null;
        interrupt = null;
        notifyAll();
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

    // ---- guest to host -------------------------------------------------------------------------

    private void processTx() {
        boolean used = false;
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
            if (p != null) {
                fromGuest(p);
            }
        }
        if (used && txq.needsNotification()) {
            interrupt.signalUsed(TXQ);
        }
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
                    reset(conn);
                    return;
                }
                try {
                    backend.accepted(conn.channel, conn.hostPort);
                } catch (IOException e) {
                    reset(conn);
                    return;
                }
                conn.state = VsockConnection.State.ESTABLISHED;
                conn.start(this);
            }
            case OP_RW -> {
                if (conn.state != VsockConnection.State.ESTABLISHED || conn.guestShutSend
                        || p.payload().length > conn.ourFreeSpace()) {
                    reset(conn); // N.B. data beyond our advertised credit is a protocol violation
                    return;
                }
                if (p.payload().length > 0) {
                    conn.toHost.add(p.payload());
                    conn.toHostBytes += p.payload().length;
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
            case OP_RST -> kill(conn);
            default -> reset(conn); // REQUEST on an open connection, or an unknown op
        }
        notifyAll();
    }

    /** A guest REQUEST for a port with no connection: connect to the host socket, RESPONSE or RST. */
    private void guestConnect(VsockPacket p) {
        if (connections.size() >= MAX_CONNECTIONS) {
            rstReply(p);
            return;
        }
        SocketChannel channel;
        try {
            channel = backend.connect(p.dstPort());
        } catch (IOException e) {
            LOG.log(System.Logger.Level.DEBUG, "vsock: guest connection to host port {0} refused: {1}",
                    Integer.toUnsignedString(p.dstPort()), e.toString());
            rstReply(p);
            return;
        }
        VsockConnection conn = new VsockConnection(p.dstPort(), p.srcPort(), channel, VsockConnection.State.ESTABLISHED);
        conn.peerBufAlloc = p.bufAlloc();
        conn.peerFwdCnt = p.fwdCnt();
        connections.put(conn.key(), conn);
        queue(conn, OP_RESPONSE, 0);
        conn.start(this);
    }

    // ---- host to guest -------------------------------------------------------------------------

    /** A host client asked for guest port {@code guestPort} (backend listener thread). */
    synchronized void hostConnect(int guestPort, SocketChannel channel) {
        if (!active || connections.size() >= MAX_CONNECTIONS) {
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
        VsockConnection conn = new VsockConnection(port, guestPort, channel, VsockConnection.State.CONNECTING);
        connections.put(conn.key(), conn);
        queue(conn, OP_REQUEST, 0);
        processRx();
    }

    /** Reader thread: waits until the connection may read from the host; returns how much, 0 to stop. */
    synchronized int awaitReadable(VsockConnection conn) {
        while (conn.state != VsockConnection.State.CLOSED
                && (conn.pendingToGuest() > 0 || conn.peerCredit() == 0 || conn.guestShutRcv)) {
            if (conn.peerCredit() == 0 && !conn.creditRequested && conn.pendingToGuest() == 0 && !conn.guestShutRcv) {
                conn.creditRequested = true;
                queue(conn, OP_CREDIT_REQUEST, 0);
                processRx();
            }
            waitQuietly();
        }
        return conn.state == VsockConnection.State.CLOSED ? 0 : Math.min(conn.peerCredit(), MAX_PKT_PAYLOAD);
    }

    /** Reader thread: {@code data} was read from the host, or null at end of stream; false to stop. */
    synchronized boolean readFromHost(VsockConnection conn, byte[] data) {
        if (conn.state == VsockConnection.State.CLOSED) {
            return false;
        }
        if (data == null) {
            conn.hostEof = true;
            maybeShutdown(conn);
            processRx();
            return false;
        }
        conn.toGuest = data;
        conn.toGuestOffset = 0;
        processRx();
        return true;
    }

    /** Writer thread: the next chunk for the host, or null to stop. */
    synchronized byte[] awaitWritable(VsockConnection conn) {
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
        return conn.state == VsockConnection.State.CLOSED ? null : conn.toHost.peek();
    }

    /** Writer thread: {@code n} bytes went to the host (or failed); false to stop. */
    synchronized boolean wroteToHost(VsockConnection conn, int n, boolean ok) {
        if (conn.state == VsockConnection.State.CLOSED) {
            return false;
        }
        if (!ok) {
            reset(conn);
            processRx();
            return false;
        }
        conn.toHost.poll();
        conn.toHostBytes -= n;
        conn.fwdCnt += n;
        if (conn.fwdCnt != conn.lastSentFwdCnt && conn.guestViewOfFreeSpace() < CREDIT_UPDATE_THRESHOLD
                && control.stream().noneMatch(q -> q.conn == conn && q.packet.op() == OP_CREDIT_UPDATE)) {
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
        if (conn.guestShutSend && conn.toHost.isEmpty() && (conn.guestShutRcv || conn.shutdownSent)) {
            reset(conn);
        }
    }

    /** Sends RST for {@code conn} and tears it down. */
    private void reset(VsockConnection conn) {
        if (conn.state != VsockConnection.State.CLOSED) {
            queue(conn, OP_RST, 0);
            kill(conn);
        }
    }

    /** Tears {@code conn} down without telling the guest. */
    private void kill(VsockConnection conn) {
        conn.state = VsockConnection.State.CLOSED;
        connections.remove(conn.key());
        conn.closeChannel();
        notifyAll();
    }

    private void queue(VsockConnection conn, int op, int flags) {
        VsockPacket p = header(conn.hostPort, conn.guestPort).op(op).flags(flags);
        control.add(new Pending(p, conn));
    }

    /** RST in reply to {@code p}, for a connection the device does not have. */
    private void rstReply(VsockPacket p) {
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
                    }
                }
                if (conn != null) {
                    p.bufAlloc(conn.bufAlloc).fwdCnt(conn.fwdCnt);
                    conn.lastSentFwdCnt = conn.fwdCnt;
                }
                rxq.addUsed(chain.head(), p.writeTo(chain));
                used = true;
            }
            if (used && rxq.needsNotification()) {
                interrupt.signalUsed(RXQ);
            }
        } catch (QueueException e) {
            active = false; // the RX ring is broken: nothing more can reach the guest
            interrupt.signalNeedsReset(e);
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
