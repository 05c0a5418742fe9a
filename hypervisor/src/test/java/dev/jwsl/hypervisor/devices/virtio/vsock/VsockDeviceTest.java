package dev.jwsl.hypervisor.devices.virtio.vsock;

import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;

import static dev.jwsl.hypervisor.devices.virtio.vsock.VsockConstants.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

@Timeout(30)
class VsockDeviceTest {
    private static final int GUEST_PORT = 5000;

    @TempDir
    Path dir;

    private final MmapGuestMemory memory = MockQueue.memory();
    private final MockQueue rx = new MockQueue(memory, 64, 0x10000, 0x100000);
    private final MockQueue tx = new MockQueue(memory, 64, 0x20000, 0x500000);
    private final MockQueue ev = new MockQueue(memory, 64, 0x30000, 0xf00000);
    private final Map<Integer, Long> rxBuffers = new HashMap<>();
    private final AtomicInteger interrupts = new AtomicInteger();
    private final AtomicInteger needsReset = new AtomicInteger();
    private VsockDevice device;
    private UnixSocketBackend backend;
    /** The guest's CPU time when it has all the CPU it wants, and when it gets none (a starved one). */
    private static final LongSupplier GUEST_RUNS = System::nanoTime, GUEST_STARVED = () -> 0;

    @BeforeEach
    void activate() {
        start(new VsockDevice(3, backend = new UnixSocketBackend(dir.resolve("v.sock")), GUEST_RUNS));
        giveRx(16);
    }

    /** Activates {@code d} on the mock rings (replacing the device of {@link #activate()} before any traffic). */
    private void start(VsockDevice d) {
        if (device != null) {
            device.close();
        }
        device = d;
        List<Queue> queues = List.of(rx.deviceQueue(QUEUE_SIZE, 0), tx.deviceQueue(QUEUE_SIZE, 0), ev.deviceQueue(QUEUE_SIZE, 0));
        device.activate(memory, queues, new VirtioInterrupt() {
            @Override public void signalUsed(int queue) { interrupts.incrementAndGet(); }
            @Override public void signalConfigChange() { }
            @Override public void signalNeedsReset(Exception cause) { needsReset.incrementAndGet(); }
        });
    }

    @AfterEach
    void close() {
        device.close();
        memory.close();
    }

    // ---- driver side ---------------------------------------------------------------------------

    private void giveRx(int n) {
        for (int i = 0; i < n; i++) {
            MockQueue.Chain c = rx.add(Seg.writable(VsockPacket.HDR_SIZE + 4096));
            rxBuffers.put(c.head(), c.addresses().getFirst());
        }
        device.queueNotify(RXQ);
    }

    private VsockPacket fromGuest(int op, int hostPort) {
        return new VsockPacket().srcCid(3).dstCid(HOST_CID).srcPort(GUEST_PORT).dstPort(hostPort)
                .type(TYPE_STREAM).op(op).bufAlloc(64 << 10).fwdCnt(0);
    }

    private void send(VsockPacket p) {
        byte[] h = p.header();
        byte[] all = new byte[h.length + p.payload().length];
        System.arraycopy(h, 0, all, 0, h.length);
        System.arraycopy(p.payload(), 0, all, h.length, p.payload().length);
        sendRaw(all);
    }

    private void sendRaw(byte[] bytes) {
        tx.add(Seg.readable(bytes));
        device.queueNotify(TXQ);
    }

    private Optional<VsockPacket> pollRx(long millis) throws InterruptedException {
        long end = System.nanoTime() + millis * 1_000_000;
        do {
            Optional<MockQueue.Used> u = rx.nextUsed();
            if (u.isPresent()) {
                long at = rxBuffers.get(u.get().id());
                VsockPacket p = new VsockPacket(rx.read(at, VsockPacket.HDR_SIZE));
                assertEquals(VsockPacket.HDR_SIZE + p.len(), u.get().length());
                p.payload(rx.read(at + VsockPacket.HDR_SIZE, p.len()));
                giveRx(1); // keep the guest's RX ring stocked
                return Optional.of(p);
            }
            Thread.sleep(2);
        } while (System.nanoTime() < end);
        return Optional.empty();
    }

    private VsockPacket awaitRx() throws InterruptedException {
        return pollRx(5000).orElseThrow(() -> new AssertionError("no packet for the guest"));
    }

    private VsockPacket awaitOp(int op) throws InterruptedException {
        while (true) {
            VsockPacket p = awaitRx();
            if (p.op() == op) {
                return p;
            }
        }
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static String readN(SocketChannel c, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (c.read(b) < 0) {
                break;
            }
        }
        return new String(b.array(), 0, b.position(), StandardCharsets.US_ASCII);
    }

    /**
     * A host service's socket, with the backlog Netty gives one (SOMAXCONN): the device connects
     * without waiting, so a burst of guest connections relies on the backlog, not on how soon the
     * service accepts.
     */
    private ServerSocketChannel hostListener(int port) throws IOException {
        ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        s.bind(UnixDomainSocketAddress.of(dir.resolve("v.sock_" + port)), 4096);
        return s;
    }

    /** Opens a guest-initiated connection to host port 1234; returns the host's end. */
    private SocketChannel connectFromGuest(ServerSocketChannel server, int guestBufAlloc) throws Exception {
        send(fromGuest(OP_REQUEST, 1234).bufAlloc(guestBufAlloc));
        VsockPacket r = awaitRx();
        assertEquals(OP_RESPONSE, r.op(), r.toString());
        assertEquals(1234, r.srcPort());
        assertEquals(GUEST_PORT, r.dstPort());
        assertEquals(3, r.dstCid());
        assertEquals(CONN_BUF_SIZE, r.bufAlloc());
        return server.accept();
    }

    // ---- tests ---------------------------------------------------------------------------------

    @Test
    void configSpaceHoldsTheGuestCid() {
        byte[] b = new byte[8];
        device.readConfig(0, b);
        assertArrayEquals(new byte[] {3, 0, 0, 0, 0, 0, 0, 0}, b);
    }

    @Test
    void guestConnectsAndDataFlowsBothWays() throws Exception {
        try (ServerSocketChannel server = hostListener(1234); SocketChannel host = connectFromGuest(server, 64 << 10)) {
            send(fromGuest(OP_RW, 1234).payload(ascii("hello")));
            assertEquals("hello", readN(host, 5));
            host.write(ByteBuffer.wrap(ascii("world")));
            VsockPacket p = awaitOp(OP_RW);
            assertEquals("world", new String(p.payload(), StandardCharsets.US_ASCII));
            assertEquals(5, p.fwdCnt(), "our fwd_cnt counts the 5 bytes written to the host");
            send(fromGuest(OP_SHUTDOWN, 1234).flags(SHUTDOWN_RCV | SHUTDOWN_SEND));
            assertEquals(OP_RST, awaitOp(OP_RST).op());
            assertEquals(-1, host.read(ByteBuffer.allocate(1)), "the host sees end of stream");
            assertEquals(0, device.connectionCount());
        }
    }

    @Test
    void noSnapshotWhileAConnectionIsOpen() throws Exception {
        assertEquals(null, device.snapshotBlocker());
        try (ServerSocketChannel server = hostListener(1234); SocketChannel host = connectFromGuest(server, 64 << 10)) {
            assertEquals("1 vsock connections open, 0 packets queued", device.snapshotBlocker());
            send(fromGuest(OP_SHUTDOWN, 1234).flags(SHUTDOWN_RCV | SHUTDOWN_SEND));
            awaitOp(OP_RST);
            assertEquals(null, device.snapshotBlocker());
        }
    }

    @Test
    void hostCloseBecomesShutdownThenRst() throws Exception {
        try (ServerSocketChannel server = hostListener(1234); SocketChannel host = connectFromGuest(server, 64 << 10)) {
            host.write(ByteBuffer.wrap(ascii("bye")));
            host.shutdownOutput();
            assertEquals("bye", new String(awaitOp(OP_RW).payload(), StandardCharsets.US_ASCII));
            VsockPacket s = awaitOp(OP_SHUTDOWN);
            assertEquals(SHUTDOWN_SEND, s.flags());
            send(fromGuest(OP_RW, 1234).payload(ascii("late reply")));
            assertEquals("late reply", readN(host, 10), "the other direction still works");
            send(fromGuest(OP_SHUTDOWN, 1234).flags(SHUTDOWN_SEND));
            awaitOp(OP_RST);
            assertEquals(0, device.connectionCount());
        }
    }

    @Test
    void refusedAndUnknownConnectionsGetRst() throws Exception {
        send(fromGuest(OP_REQUEST, 9999));
        VsockPacket r = awaitRx();
        assertEquals(OP_RST, r.op());
        assertEquals(9999, r.srcPort());
        assertEquals(GUEST_PORT, r.dstPort());
        send(fromGuest(OP_RW, 4321).payload(ascii("x")));
        assertEquals(OP_RST, awaitRx().op());
        send(fromGuest(OP_RST, 4321));
        assertTrue(pollRx(100).isEmpty(), "no reply to an RST");
    }

    @Test
    void garbageIsDroppedWithoutHarm() throws Exception {
        sendRaw(new byte[10]); // shorter than a header
        byte[] lying = fromGuest(OP_RW, 1234).len(1000).header(); // len beyond the buffer
        sendRaw(lying);
        byte[] huge = fromGuest(OP_RW, 1234).len(-1).header();
        sendRaw(huge);
        sendRaw(fromGuest(OP_REQUEST, 1234).srcCid(7).header()); // spoofed source CID
        assertTrue(pollRx(100).isEmpty());
        assertEquals(4, tx.usedIdx(), "every TX buffer is returned");
        send(fromGuest(OP_REQUEST, 1234).type(2)); // SEQPACKET: not offered
        assertEquals(OP_RST, awaitRx().op());
        assertEquals(0, needsReset.get());
        send(fromGuest(OP_REQUEST, 9999));
        assertEquals(OP_RST, awaitRx().op(), "the device still works");
    }

    @Test
    void neverSendsTheGuestMoreThanItsCredit() throws Exception {
        try (ServerSocketChannel server = hostListener(1234); SocketChannel host = connectFromGuest(server, 100)) {
            host.write(ByteBuffer.wrap(new byte[300]));
            int got = 0;
            VsockPacket p;
            while ((p = awaitRx()).op() == OP_RW) {
                got += p.len();
            }
            assertEquals(OP_CREDIT_REQUEST, p.op(), p.toString());
            assertEquals(100, got);
            send(fromGuest(OP_CREDIT_UPDATE, 1234).bufAlloc(100).fwdCnt(100));
            while (got < 200) {
                p = awaitRx();
                if (p.op() == OP_RW) {
                    got += p.len();
                }
            }
            assertEquals(200, got);
            Optional<VsockPacket> more;
            while ((more = pollRx(200)).isPresent()) {
                assertTrue(more.get().op() != OP_RW, "data beyond credit: " + more.get());
            }
        }
    }

    @Test
    void asksForCreditWhenTheGuestShrinksItsBufferUnderDataTheDeviceHolds() throws Exception {
        try (ServerSocketChannel server = hostListener(1234); SocketChannel host = connectFromGuest(server, 100)) {
            exhaustRx();
            host.write(ByteBuffer.wrap(new byte[300]));
            long end = System.nanoTime() + 5_000_000_000L;
            while (device.heldForGuest() < 100 && System.nanoTime() < end) {
                Thread.sleep(2); // the device reads what the guest's credit allows and holds it for RX buffers
            }
            assertEquals(100, device.heldForGuest());
            send(fromGuest(OP_CREDIT_UPDATE, 1234).bufAlloc(40).fwdCnt(0));
            giveRx(16);
            int got = 0;
            VsockPacket p;
            while ((p = awaitRx()).op() == OP_RW) {
                got += p.len();
            }
            assertEquals(OP_CREDIT_REQUEST, p.op(), "60 bytes wait for room the guest has not offered: " + p);
            assertEquals(40, got);
            send(fromGuest(OP_CREDIT_UPDATE, 1234).bufAlloc(100).fwdCnt(40));
            while (got < 100) {
                p = awaitRx();
                if (p.op() == OP_RW) {
                    got += p.len();
                }
            }
            assertEquals(100, got);
        }
    }

    @Test
    void aFailureOnOnePacketCostsItsConnectionNotTheDevice() throws Exception {
        UnixSocketBackend real = new UnixSocketBackend(dir.resolve("f.sock"));
        VsockBackend failing = new VsockBackend() {
            @Override public SocketChannel connect(int port) throws IOException { return real.connect(port); }
            @Override public void start(Listener listener) throws IOException { real.start(listener); }
            @Override public void accepted(SocketChannel channel, int hostPort) {
                throw new IllegalStateException("a bug in the backend");
            }
            @Override public void close() { real.close(); }
        };
        start(new VsockDevice(3, failing, GUEST_RUNS));
        giveRx(16);
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(real.path()))) {
            client.write(ByteBuffer.wrap(ascii("CONNECT 52\n")));
            VsockPacket req = awaitOp(OP_REQUEST);
            send(new VsockPacket().srcCid(3).dstCid(HOST_CID).srcPort(52).dstPort(req.srcPort()).type(TYPE_STREAM)
                    .op(OP_RESPONSE).bufAlloc(4096));
            assertEquals(OP_RST, awaitOp(OP_RST).op());
            assertEquals(-1, client.read(ByteBuffer.allocate(16)), "closed without OK");
        }
        assertEquals(0, needsReset.get());
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(dir.resolve("f.sock_1234")));
            send(fromGuest(OP_REQUEST, 1234));
            assertEquals(OP_RESPONSE, awaitOp(OP_RESPONSE).op(), "the device still serves the guest");
        }
    }

    @Test
    void sendsCreditUpdateWhenTheGuestRunsLow() throws Exception {
        try (ServerSocketChannel server = hostListener(1234); SocketChannel host = connectFromGuest(server, 64 << 10)) {
            for (int i = 0; i < CONN_BUF_SIZE / MAX_PKT_PAYLOAD; i++) {
                send(fromGuest(OP_RW, 1234).payload(new byte[MAX_PKT_PAYLOAD]));
            }
            // The guest has used all its credit; once the host drains the data it must get enough back.
            assertEquals(CONN_BUF_SIZE, readN(host, CONN_BUF_SIZE).length());
            VsockPacket p;
            do {
                p = awaitOp(OP_CREDIT_UPDATE);
                assertEquals(CONN_BUF_SIZE, p.bufAlloc());
            } while (CONN_BUF_SIZE - (CONN_BUF_SIZE - p.fwdCnt()) < CONN_BUF_SIZE / 4);
            send(fromGuest(OP_RW, 1234).payload(new byte[MAX_PKT_PAYLOAD]));
            assertEquals(MAX_PKT_PAYLOAD, readN(host, MAX_PKT_PAYLOAD).length(), "the new credit is real");
            assertEquals(1, device.connectionCount());
        }
    }

    @Test
    void dataBeyondOurCreditResetsTheConnection() throws Exception {
        try (ServerSocketChannel server = hostListener(1234); SocketChannel host = connectFromGuest(server, 64 << 10)) {
            // The host never reads: once its socket buffer and ours are full, the guest is over credit.
            for (int i = 0; i < 64 && device.connectionCount() > 0; i++) {
                send(fromGuest(OP_RW, 1234).payload(new byte[MAX_PKT_PAYLOAD]));
            }
            assertEquals(0, device.connectionCount());
            awaitOp(OP_RST);
        }
    }

    @Test
    void whatTheGuestSentBeforeItsRstStillReachesTheHost() throws Exception {
        try (ServerSocketChannel server = hostListener(1234); SocketChannel host = connectFromGuest(server, 64 << 10)) {
            // more than the host socket holds while the host reads nothing, within our credit: some waits in the device
            byte[] sent = new byte[CONN_BUF_SIZE - 1024];
            new java.util.Random(7).nextBytes(sent);
            for (int off = 0; off < sent.length; off += MAX_PKT_PAYLOAD) {
                send(fromGuest(OP_RW, 1234).payload(java.util.Arrays.copyOfRange(sent, off,
                        Math.min(sent.length, off + MAX_PKT_PAYLOAD))));
            }
            send(fromGuest(OP_RST, 1234));
            ByteBuffer got = ByteBuffer.allocate(sent.length + 1);
            while (host.read(got) >= 0 && got.hasRemaining()) {
                // all of it, then end of stream
            }
            assertEquals(sent.length, got.position(), "bytes the host got");
            assertArrayEquals(sent, java.util.Arrays.copyOf(got.array(), got.position()));
            assertEquals(0, device.connectionCount());
            for (Optional<VsockPacket> p = pollRx(200); p.isPresent(); p = pollRx(200)) {
                assertTrue(p.get().op() != OP_RST, "no RST answers the guest's");
            }
        }
    }

    // ---- a guest that floods the device (issue 16) ---------------------------------------------

    /**
     * Posts RX buffers again and counts packets with {@code op} the guest receives until the
     * device goes quiet, stopping past {@code cap}.
     */
    private int countUntilQuiet(int op, int cap) throws InterruptedException {
        giveRx(16);
        int n = 0;
        Optional<VsockPacket> p;
        while (n <= cap && (p = pollRx(200)).isPresent()) {
            if (p.get().op() == op) {
                n++;
            }
        }
        return n;
    }

    /** Uses up the RX buffers the guest posted, so that what follows must wait in the device. */
    private void exhaustRx() throws Exception {
        for (int i = 0; i < 16; i++) {
            send(fromGuest(OP_RW, 7).srcPort(60000 + i));
        }
        while (rx.nextUsed().isPresent()) {
            // dropped: the test's guest never reads them
        }
    }

    @Test
    void rstRepliesToAGuestThatPostsNoRxBuffersAreBounded() throws Exception {
        exhaustRx();
        for (int i = 0; i < 5000; i++) {
            send(fromGuest(OP_RW, 4321).srcPort(10000 + i));
        }
        int rsts = countUntilQuiet(OP_RST, 500);
        assertTrue(rsts <= 500, "RSTs queued for a guest that reads none: " + rsts);
        send(fromGuest(OP_REQUEST, 9999));
        assertEquals(OP_RST, awaitOp(OP_RST).op(), "the device still answers");
    }

    @Test
    void creditRequestsAreAnsweredOnceWhileTheGuestReadsNothing() throws Exception {
        try (ServerSocketChannel server = hostListener(1234); SocketChannel host = connectFromGuest(server, 64 << 10)) {
            exhaustRx();
            for (int i = 0; i < 3000; i++) {
                send(fromGuest(OP_CREDIT_REQUEST, 1234));
            }
            int updates = countUntilQuiet(OP_CREDIT_UPDATE, 100);
            assertTrue(updates <= 2, "CREDIT_UPDATEs for 3000 requests: " + updates);
            assertEquals(1, device.connectionCount());
        }
    }

    /** Accepts host ends of guest connections in the background and keeps them until closed. */
    private static final class Acceptor implements AutoCloseable {
        final ServerSocketChannel server;
        final List<SocketChannel> accepted = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        private final Thread thread;

        Acceptor(ServerSocketChannel server, boolean keep) {
            this.server = server;
            this.thread = Thread.ofVirtual().start(() -> {
                try {
                    while (true) {
                        SocketChannel c = server.accept();
                        if (keep) {
                            accepted.add(c);
                        } else {
                            c.close();
                        }
                    }
                } catch (IOException e) {
                    // closed
                }
            });
        }

        @Override
        public void close() throws Exception {
            server.close();
            thread.join();
            for (SocketChannel c : accepted) {
                c.close();
            }
        }
    }

    @Test
    void connectionsTheGuestOpensAndResetsLeaveNothingQueued() throws Exception {
        try (Acceptor a = new Acceptor(hostListener(1234), false)) {
            exhaustRx();
            for (int i = 0; i < 2000; i++) {
                send(fromGuest(OP_REQUEST, 1234).srcPort(20000 + i));
                send(fromGuest(OP_RST, 1234).srcPort(20000 + i));
            }
            int responses = countUntilQuiet(OP_RESPONSE, 100);
            assertTrue(responses <= 16, "RESPONSEs for connections already gone: " + responses);
            assertEquals(0, device.connectionCount());
        }
    }

    @Test
    void bufferSpaceAdvertisedToTheGuestIsBoundedAcrossConnections() throws Exception {
        try (Acceptor a = new Acceptor(hostListener(1234), true)) {
            long advertised = 0;
            for (int i = 0; i < 200; i++) {
                send(fromGuest(OP_REQUEST, 1234).srcPort(30000 + i));
                VsockPacket r = awaitOp(OP_RESPONSE);
                advertised += Integer.toUnsignedLong(r.bufAlloc());
            }
            assertEquals(200, device.connectionCount());
            // N.B. what the guest may send is what the device must be able to hold on its heap
            assertTrue(advertised <= 32L << 20, "buf_alloc over 200 connections: " + advertised);
        }
    }

    @Test
    void tinyPacketsDoNotMultiplyTheHeapTheyTakeUp() throws Exception {
        try (ServerSocketChannel server = hostListener(1234); SocketChannel host = connectFromGuest(server, 64 << 10)) {
            // The host never reads: its socket buffer fills, then the device holds the rest.
            for (int i = 0; i < 20_000; i++) {
                send(fromGuest(OP_RW, 1234).payload(new byte[] {(byte) i}));
            }
            assertEquals(1, device.connectionCount());
            int chunks = device.heldChunks();
            assertTrue(chunks <= 20_000 / PACK_SIZE + 1, "arrays held for 20000 one-byte packets: " + chunks);
            assertEquals(20_000, readN(host, 20_000).length(), "every byte arrives");
        }
    }

    /** The ops of the packets the guest receives until the device goes quiet. */
    private List<Integer> opsUntilQuiet() throws InterruptedException {
        List<Integer> ops = new java.util.ArrayList<>();
        for (Optional<VsockPacket> p; (p = pollRx(200)).isPresent(); ) {
            ops.add(p.get().op());
        }
        return ops;
    }

    @Test
    void connectionsResetWhileTheGuestReadsNothingKeepTheirPlaceUntilItTakesTheRst() throws Exception {
        start(new VsockDevice(3, backend = new UnixSocketBackend(dir.resolve("v.sock")), new VsockDevice.Limits(4, 8, BUFFER_POOL, CONNECT_TIMEOUT_MS), GUEST_RUNS));
        try (Acceptor a = new Acceptor(hostListener(1234), true)) {
            exhaustRx();
            for (int i = 0; i < 20; i++) {
                send(fromGuest(OP_REQUEST, 1234).srcPort(40000 + i));
                send(fromGuest(OP_RESPONSE, 1234).srcPort(40000 + i)); // a RESPONSE on an open connection: reset
            }
            assertEquals(0, device.connectionCount());
            // 4 connections owe an RST and hold their places; each of the other 16 cycles earns two
            // RSTs for no connection (the refused REQUEST, then its RESPONSE): 8 are kept.
            assertEquals(2 * 16 - 8, device.droppedPackets());
            giveRx(16);
            List<Integer> ops = opsUntilQuiet();
            assertEquals(java.util.Collections.nCopies(4 + 8, OP_RST), ops);
            send(fromGuest(OP_REQUEST, 1234).srcPort(50000));
            assertEquals(OP_RESPONSE, awaitRx().op(), "the places are free once the guest has the RSTs");
        }
    }

    @Test
    void buffersComeFromAPoolAndGoBackToIt() throws Exception {
        long twoFull = 2 * (CONN_BUF_SIZE + HOST_READ_SIZE);
        start(new VsockDevice(3, backend = new UnixSocketBackend(dir.resolve("v.sock")), new VsockDevice.Limits(16, 8, twoFull, CONNECT_TIMEOUT_MS), GUEST_RUNS));
        try (Acceptor a = new Acceptor(hostListener(1234), true)) {
            int[] expected = {CONN_BUF_SIZE, CONN_BUF_SIZE, CONN_BUF_MIN};
            for (int i = 0; i < expected.length; i++) {
                send(fromGuest(OP_REQUEST, 1234).srcPort(41000 + i));
                assertEquals(expected[i], awaitOp(OP_RESPONSE).bufAlloc(), "connection " + i);
            }
            send(fromGuest(OP_RST, 1234).srcPort(41000));
            send(fromGuest(OP_REQUEST, 1234).srcPort(41003));
            assertEquals(CONN_BUF_SIZE, awaitOp(OP_RESPONSE).bufAlloc(), "a closed connection's buffers are free again");
            // a connection with the minimum buffers still carries data
            send(fromGuest(OP_RW, 1234).srcPort(41002).payload(new byte[CONN_BUF_MIN]));
            while (a.accepted.size() < 4) {
                Thread.sleep(5);
            }
            assertEquals(CONN_BUF_MIN, readN(a.accepted.get(2), CONN_BUF_MIN).length());
        }
    }

    @Test
    void hostInitiatedConnection() throws Exception {
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(backend.path()))) {
            client.write(ByteBuffer.wrap(ascii("CONNECT 52\n")));
            VsockPacket req = awaitRx();
            assertEquals(OP_REQUEST, req.op());
            assertEquals(52, req.dstPort());
            assertEquals(FIRST_HOST_PORT, req.srcPort());
            send(new VsockPacket().srcCid(3).dstCid(HOST_CID).srcPort(52).dstPort(req.srcPort()).type(TYPE_STREAM)
                    .op(OP_RESPONSE).bufAlloc(4096));
            String ok = "OK " + FIRST_HOST_PORT + "\n";
            assertEquals(ok, readN(client, ok.length()));
            client.write(ByteBuffer.wrap(ascii("ping")));
            VsockPacket p = awaitOp(OP_RW);
            assertEquals("ping", new String(p.payload(), StandardCharsets.US_ASCII));
            send(new VsockPacket().srcCid(3).dstCid(HOST_CID).srcPort(52).dstPort(req.srcPort()).type(TYPE_STREAM)
                    .op(OP_RW).bufAlloc(4096).payload(ascii("pong")));
            assertEquals("pong", readN(client, 4));
            send(new VsockPacket().srcCid(3).dstCid(HOST_CID).srcPort(52).dstPort(req.srcPort()).type(TYPE_STREAM)
                    .op(OP_RST));
            assertEquals(-1, client.read(ByteBuffer.allocate(1)));
        }
    }

    /** A host client that asked guest port {@code port} of a device whose guest has {@code connectTimeoutMs} to answer. */
    private SocketChannel hostClientAsking(int port, long connectTimeoutMs, LongSupplier guestCpu) throws IOException {
        start(new VsockDevice(3, backend = new UnixSocketBackend(dir.resolve("v.sock")),
                new VsockDevice.Limits(4, 8, BUFFER_POOL, connectTimeoutMs), guestCpu));
        SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(backend.path()));
        client.write(ByteBuffer.wrap(ascii("CONNECT " + port + "\n")));
        return client;
    }

    @Test
    void aHostConnectionTheGuestNeverAnswersIsClosed() throws Exception {
        long waited = silentGuestResetsAfterMs(54, GUEST_RUNS);
        assertTrue(waited < CONNECT_TIMEOUT_PERIODS * 100L, "a guest that ran and stayed silent kept it " + waited + " ms");
    }

    @Test
    void aStarvedGuestKeepsAHostConnectionUntilTheLastLimit() throws Exception {
        long waited = silentGuestResetsAfterMs(57, GUEST_STARVED); // never given the CPU to answer
        assertTrue(waited >= CONNECT_TIMEOUT_PERIODS * 100L, "reset after " + waited + " ms");
    }

    /** A guest that never answers a host client on {@code port} (100 ms limits): the client is closed, the guest RST. */
    private long silentGuestResetsAfterMs(int port, LongSupplier guestCpu) throws Exception {
        long asked = System.nanoTime();
        try (SocketChannel client = hostClientAsking(port, 100, guestCpu)) {
            VsockPacket req = awaitOp(OP_REQUEST);
            assertEquals(-1, client.read(ByteBuffer.allocate(16)), "closed without OK");
            long waited = (System.nanoTime() - asked) / 1_000_000;
            VsockPacket rst = awaitOp(OP_RST);
            assertEquals(req.srcPort(), rst.srcPort());
            assertEquals(0, device.connectionCount());
            return waited;
        }
    }

    @Test
    void aBusyGuestGetsMoreTimeToAnswerAHostConnection() throws Exception {
        try (SocketChannel client = hostClientAsking(55, 100, GUEST_RUNS)) {
            VsockPacket req = awaitOp(OP_REQUEST);
            for (int i = 0; i < 8; i++) { // 400 ms, 4 limits, of other traffic (each answered by an RST)
                send(fromGuest(OP_REQUEST, 9999));
                assertEquals(OP_RST, awaitRx().op());
                Thread.sleep(50);
            }
            send(new VsockPacket().srcCid(3).dstCid(HOST_CID).srcPort(55).dstPort(req.srcPort()).type(TYPE_STREAM)
                    .op(OP_RESPONSE).bufAlloc(4096));
            String ok = "OK " + FIRST_HOST_PORT + "\n";
            assertEquals(ok, readN(client, ok.length()));
        }
    }

    @Test
    void aBusyGuestThatNeverAnswersAHostConnectionLosesItInTheEnd() throws Exception {
        try (SocketChannel client = hostClientAsking(56, 50, GUEST_RUNS)) {
            VsockPacket req = awaitOp(OP_REQUEST);
            long limit = System.nanoTime() + 10_000_000_000L;
            VsockPacket p;
            do { // traffic on another port all along: the connection is reset after CONNECT_TIMEOUT_PERIODS limits
                assertTrue(System.nanoTime() < limit, "the REQUEST was never given up");
                send(fromGuest(OP_REQUEST, 9999));
                p = awaitRx();
                Thread.sleep(10);
            } while (p.srcPort() != req.srcPort());
            assertEquals(OP_RST, p.op());
            assertEquals(-1, client.read(ByteBuffer.allocate(16)), "closed without OK");
            assertEquals(0, device.connectionCount());
        }
    }

    @Test
    void aHostListenerThatDoesNotAcceptCannotStallTheDevice() throws Exception {
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(dir.resolve("v.sock_1234")), 1);
            List<SocketChannel> queued = new java.util.ArrayList<>();
            try {
                while (true) { // fill the listener's backlog
                    SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
                    queued.add(c);
                    c.configureBlocking(false);
                    c.connect(server.getLocalAddress());
                }
            } catch (IOException full) {
                // EAGAIN: the backlog is full
            }
            Thread guest = Thread.ofPlatform().start(() -> send(fromGuest(OP_REQUEST, 1234)));
            guest.join(5000);
            boolean stalled = guest.isAlive();
            if (stalled) {
                server.close(); // wakes a connect waiting for the backlog, so the test can end
                guest.join();
            }
            assertTrue(!stalled, "the device waited for the host listener to accept");
            assertEquals(OP_RST, awaitRx().op());
            send(fromGuest(OP_REQUEST, 9999));
            assertEquals(OP_RST, awaitRx().op(), "the device still answers");
            for (SocketChannel c : queued) {
                c.close();
            }
        }
    }

    @Test
    void aRefusedHostConnectionIsClosedWithoutOk() throws Exception {
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(backend.path()))) {
            client.write(ByteBuffer.wrap(ascii("CONNECT 53\n")));
            VsockPacket req = awaitRx();
            send(new VsockPacket().srcCid(3).dstCid(HOST_CID).srcPort(53).dstPort(req.srcPort()).type(TYPE_STREAM)
                    .op(OP_RST));
            assertEquals(-1, client.read(ByteBuffer.allocate(16)));
        }
    }

    @Test
    void aBadConnectLineIsClosed() throws Exception {
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(backend.path()))) {
            client.write(ByteBuffer.wrap(ascii("HELLO\n")));
            assertEquals(-1, client.read(ByteBuffer.allocate(16)));
            assertTrue(pollRx(100).isEmpty());
        }
    }

    @Test
    void aStaleSocketIsReplacedButAFileIsNot() throws Exception {
        Path stale = dir.resolve("stale.sock");
        ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(stale)).close();
        try (UnixSocketBackend b = new UnixSocketBackend(stale)) {
            b.start((port, channel) -> { });
            SocketChannel.open(UnixDomainSocketAddress.of(stale)).close();
        }
        Path file = java.nio.file.Files.writeString(dir.resolve("file"), "keep me");
        try (UnixSocketBackend b = new UnixSocketBackend(file)) {
            org.junit.jupiter.api.Assertions.assertThrows(IOException.class, () -> b.start((port, channel) -> { }));
        }
        assertEquals("keep me", java.nio.file.Files.readString(file));
    }

    @Test
    void parsesConnectLines() {
        assertEquals(52, UnixSocketBackend.parseConnect("CONNECT 52"));
        assertEquals(-1, UnixSocketBackend.parseConnect("CONNECT 4294967295"));
        assertEquals(null, UnixSocketBackend.parseConnect("CONNECT 4294967296"));
        assertEquals(null, UnixSocketBackend.parseConnect("CONNECT -1"));
        assertEquals(null, UnixSocketBackend.parseConnect("connect 52"));
        if (UnixSocketBackend.parseConnect("CONNECT ") != null) {
            fail();
        }
    }
}
