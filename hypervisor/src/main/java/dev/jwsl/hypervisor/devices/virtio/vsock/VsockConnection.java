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

    final int hostPort;
    final int guestPort;
    final SocketChannel channel;
    State state;

    // The guest's receive credit, from the last header it sent (5.10.6.3).
    int peerBufAlloc;
    int peerFwdCnt;
    /** Payload bytes sent to the guest. */
    int rxCnt;
    boolean creditRequested;

    // Our receive buffer for guest data on its way to the host socket.
    final int bufAlloc = VsockConstants.CONN_BUF_SIZE;
    /** Payload bytes received from the guest. */
    int recvCnt;
    /** Payload bytes written to the host socket (our fwd_cnt). */
    int fwdCnt;
    /** The fwd_cnt the guest last saw. */
    int lastSentFwdCnt;
    final ArrayDeque<byte[]> toHost = new ArrayDeque<>();
    int toHostBytes;

    /** Bytes read from the host socket, not yet sent to the guest. */
    byte[] toGuest = new byte[0];
    int toGuestOffset;

    boolean hostEof;
    boolean hostOutputShut;
    boolean shutdownSent;
    boolean guestShutRcv;
    boolean guestShutSend;

    VsockConnection(int hostPort, int guestPort, SocketChannel channel, State state) {
        this.hostPort = hostPort;
        this.guestPort = guestPort;
        this.channel = channel;
        this.state = state;
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

    int pendingToGuest() {
        return toGuest.length - toGuestOffset;
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

    private void readLoop(VsockDevice device) {
        ByteBuffer buf = ByteBuffer.allocate(VsockConstants.MAX_PKT_PAYLOAD);
        while (true) {
            int want = device.awaitReadable(this);
            if (want <= 0) {
                return;
            }
            buf.clear().limit(want);
            int n;
            try {
                n = channel.read(buf);
            } catch (IOException e) {
                n = -1;
            }
            byte[] data = n > 0 ? java.util.Arrays.copyOf(buf.array(), n) : null;
            if (!device.readFromHost(this, data)) {
                return;
            }
        }
    }

    private void writeLoop(VsockDevice device) {
        while (true) {
            byte[] chunk = device.awaitWritable(this);
            if (chunk == null) {
                return;
            }
            boolean ok = true;
            try {
                ByteBuffer b = ByteBuffer.wrap(chunk);
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
