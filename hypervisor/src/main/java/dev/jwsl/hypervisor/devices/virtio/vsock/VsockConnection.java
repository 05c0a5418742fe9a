package dev.jwsl.hypervisor.devices.virtio.vsock;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.ArrayDeque;

/**
 * One stream connection's state (5.10.6.3, 5.10.6.4) and the two virtual threads relaying its
 * Unix socket. Every field is guarded by the owning {@link VsockDevice}'s monitor; the threads
 * block on the socket outside it and wait on it for credit or data.
 */
final class VsockConnection {
    enum State {
        /** Host-initiated: REQUEST queued or sent to the guest, no RESPONSE yet. */
        CONNECTING,
        /** Data flows. */
        ESTABLISHED,
        /** Torn down; the threads exit. */
        CLOSED,
    }

    /**
     * The heap a connection may take for data in flight: {@code guestToHost} is advertised as
     * buf_alloc (the guest may fill it however slowly the host reads), {@code hostToGuest} is the
     * most read from the host socket at once.
     */
    record Buffers(int guestToHost, int hostToGuest) {
        static final Buffers FULL = new Buffers(VsockConstants.CONN_BUF_SIZE, VsockConstants.HOST_READ_SIZE);
        static final Buffers MIN = new Buffers(VsockConstants.CONN_BUF_MIN, VsockConstants.HOST_READ_MIN);

        long bytes() {
            return (long) guestToHost + hostToGuest;
        }
    }

    /**
     * Guest data waiting for the host socket. Payloads shorter than {@link VsockConstants#PACK_SIZE}
     * are packed into shared chunks (the stream has no packet boundaries): one array per tiny
     * packet would cost the heap tens of times the credit the guest was given.
     */
    static final class Chunk {
        final byte[] data;
        int length;

        Chunk(byte[] data, int length) {
            this.data = data;
            this.length = length;
        }
    }

    final int hostPort;
    final int guestPort;
    final SocketChannel channel;
    final Buffers buffers;
    State state;

    // The guest's receive credit, from the last header it sent (5.10.6.3).
    int peerBufAlloc;
    int peerFwdCnt;
    /** Payload bytes sent to the guest. */
    int rxCnt;
    boolean creditRequested;

    // Our receive buffer for guest data on its way to the host socket.
    final int bufAlloc;
    /** Payload bytes received from the guest. */
    int recvCnt;
    /** Payload bytes written to the host socket (our fwd_cnt). */
    int fwdCnt;
    /** The fwd_cnt the guest last saw. */
    int lastSentFwdCnt;
    /** Chunks not yet taken by the writer thread. */
    final ArrayDeque<Chunk> toHost = new ArrayDeque<>();
    /** Bytes received and not yet written to the host, the writer's current chunk included. */
    int toHostBytes;

    /** Bytes read from the host socket, not yet sent to the guest: {@code toGuest[toGuestOffset, toGuestEnd)}. */
    byte[] toGuest = new byte[0];
    int toGuestOffset;
    int toGuestEnd;

    /** One bit per op ({@code 1 << op}) with a packet in the device's control queue. */
    int queuedOps;

    boolean hostEof;
    boolean hostOutputShut;
    boolean shutdownSent;
    boolean guestShutRcv;
    boolean guestShutSend;
    /** The guest reset the connection: what it sent before still goes to the host, nothing more to the guest. */
    boolean guestReset;

    VsockConnection(int hostPort, int guestPort, SocketChannel channel, State state, Buffers buffers) {
        this.hostPort = hostPort;
        this.guestPort = guestPort;
        this.channel = channel;
        this.state = state;
        this.buffers = buffers;
        this.bufAlloc = buffers.guestToHost();
    }

    static long key(int hostPort, int guestPort) {
        return (Integer.toUnsignedLong(hostPort) << 32) | Integer.toUnsignedLong(guestPort);
    }

    long key() {
        return key(hostPort, guestPort);
    }

    /** Bytes the guest can still accept: buf_alloc minus what is in flight, never negative. */
    int peerCredit() {
        long inFlight = Integer.toUnsignedLong(rxCnt - peerFwdCnt);
        long free = Integer.toUnsignedLong(peerBufAlloc) - inFlight;
        return (int) Math.max(0, Math.min(free, Integer.MAX_VALUE));
    }

    /** Space left in our buffer for guest data. */
    int ourFreeSpace() {
        return bufAlloc - toHostBytes;
    }

    /** How much of our buffer the guest believes is free (it last saw {@link #lastSentFwdCnt}). */
    int guestViewOfFreeSpace() {
        return bufAlloc - (recvCnt - lastSentFwdCnt);
    }

    /** Send CREDIT_UPDATE once the guest believes less than this much of our buffer is free. */
    int creditUpdateThreshold() {
        return bufAlloc / 4;
    }

    int pendingToGuest() {
        return toGuestEnd - toGuestOffset;
    }

    /** Queues guest data for the host; the caller has checked it fits {@link #ourFreeSpace()}. */
    void queueToHost(byte[] payload) {
        toHostBytes += payload.length;
        if (payload.length >= VsockConstants.PACK_SIZE) {
            toHost.add(new Chunk(payload, payload.length));
            return;
        }
        int done = 0;
        Chunk tail = toHost.peekLast();
        if (tail != null && tail.data.length == VsockConstants.PACK_SIZE) {
            done = Math.min(payload.length, VsockConstants.PACK_SIZE - tail.length);
            System.arraycopy(payload, 0, tail.data, tail.length, done);
            tail.length += done;
        }
        if (done < payload.length) {
            Chunk c = new Chunk(new byte[VsockConstants.PACK_SIZE], payload.length - done);
            System.arraycopy(payload, done, c.data, 0, c.length);
            toHost.add(c);
        }
    }

    /** Whether data can go to the guest now. */
    boolean hasDataForGuest() {
        return state == State.ESTABLISHED && !guestShutRcv && pendingToGuest() > 0 && peerCredit() > 0;
    }

    /** Starts the reader (host to guest) and writer (guest to host) threads. */
    void start(VsockDevice device) {
        Thread.ofVirtual().name("vsock-rd-" + Integer.toUnsignedString(hostPort)).start(() -> readLoop(device));
        Thread.ofVirtual().name("vsock-wr-" + Integer.toUnsignedString(hostPort)).start(() -> writeLoop(device));
    }

    /**
     * N.B. one buffer for the connection's life, handed to the device as {@link #toGuest}:
     * {@link VsockDevice#awaitReadable} returns only once the device has sent all of it, so the
     * next read never overwrites bytes the guest has not had.
     */
    private void readLoop(VsockDevice device) {
        ByteBuffer buf = ByteBuffer.allocate(buffers.hostToGuest());
        while (true) {
            int want = device.awaitReadable(this);
            if (want <= 0) {
                return;
            }
            buf.clear().limit(Math.min(want, buf.capacity()));
            int n;
            try {
                n = channel.read(buf);
            } catch (IOException e) {
                n = -1;
            }
            if (!device.readFromHost(this, buf.array(), n)) {
                return;
            }
        }
    }

    private void writeLoop(VsockDevice device) {
        while (true) {
            Chunk chunk = device.awaitWritable(this);
            if (chunk == null) {
                return;
            }
            boolean ok = true;
            try {
                ByteBuffer b = ByteBuffer.wrap(chunk.data, 0, chunk.length);
                while (b.hasRemaining()) {
                    channel.write(b);
                }
            } catch (IOException e) {
                ok = false;
            }
            if (!device.wroteToHost(this, chunk.length, ok)) {
                return;
            }
        }
    }

    void closeChannel() {
        UnixSocketBackend.closeQuietly(channel);
    }
}
