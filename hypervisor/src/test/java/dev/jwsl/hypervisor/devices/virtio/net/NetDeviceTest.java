package dev.jwsl.hypervisor.devices.virtio.net;

import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.net.NetConfig;
import dev.jwsl.hypervisor.net.slirp.SlirpBackend;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The virtio-net device in front of the real libslirp, driven through mock rings (no KVM): what
 * slirp answers proves frames crossed in both directions; malformed and flooding input must
 * neither crash the process (slirp is C in the VMM's address space) nor grow host sockets without
 * bound.
 */
class NetDeviceTest {
    private static final byte[] GUEST_MAC = NetConfig.GUEST_MAC;
    private static final byte[] BROADCAST = {-1, -1, -1, -1, -1, -1};
    private static final int RX_BUFFERS = 32;
    private static final int SOCKET_LIMIT = 64;

    private final MmapGuestMemory memory = MmapGuestMemory.create(List.of(new long[] {0, 128L << 20}));
    private final MockQueue rxDriver = new MockQueue(memory, 64, 0x10000, 0x100000);
    private final MockQueue txDriver = new MockQueue(memory, 256, 0x40000, 0x2000000);
    private final AtomicInteger interrupts = new AtomicInteger();
    private final NetConfig config = new NetConfig();
    private SlirpBackend backend;
    private NetDevice device;
    /** Receive buffers by head: the mock reuses descriptors, so the latest chain of a head is the live one. */
    private final java.util.Map<Integer, MockQueue.Chain> rxChains = new java.util.HashMap<>();
    private int txSent;

    @BeforeEach
    void activate() {
        backend = new SlirpBackend(config, SOCKET_LIMIT);
        device = new NetDevice(config, backend);
        long features = device.availableFeatures() & ~(3L << 28);
        device.ackFeatures(features);
        for (int i = 0; i < RX_BUFFERS; i++) {
            postRxBuffer();
        }
        Queue rx = rxDriver.deviceQueue(NetDevice.QUEUE_SIZE, features);
        Queue tx = txDriver.deviceQueue(NetDevice.QUEUE_SIZE, features);
        device.activate(memory, List.of(rx, tx), new VirtioInterrupt() {
            @Override public void signalUsed(int queue) { interrupts.incrementAndGet(); }
            @Override public void signalConfigChange() { }
            @Override public void signalNeedsReset(Exception cause) { fail(cause); }
        });
    }

    @AfterEach
    void close() {
        device.close();
        memory.close();
    }

    private void postRxBuffer() {
        MockQueue.Chain c = rxDriver.add(Seg.writable(NetDevice.HEADER_SIZE + 1514));
        rxChains.put(c.head(), c);
    }

    private void send(byte[] frame, int flags, int csumStart, int csumOffset) {
        if (txSent > 0 && txSent % 100 == 0) {
            drainTx(); // two descriptors a frame in a ring of 256: let the device catch up
        }
        txSent++;
        ByteBuffer h = ByteBuffer.allocate(NetDevice.HEADER_SIZE).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        h.put((byte) flags).put((byte) 0).putShort((short) 0).putShort((short) 0)
                .putShort((short) csumStart).putShort((short) csumOffset).putShort((short) 0);
        txDriver.add(Seg.readable(h.array()), Seg.readable(frame));
        device.queueNotify(NetDevice.TX);
    }

    private void send(byte[] frame) {
        send(frame, 0, 0, 0);
    }

    private void drainTx() {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (txDriver.usedIdx() != (txSent & 0xffff)) {
            if (System.nanoTime() > deadline) {
                fail("the device did not take the guest's frames");
            }
            Thread.onSpinWait();
        }
    }

    /** The next frame for the guest that {@code match} accepts, within 5 s (others are skipped). */
    private byte[] receive(java.util.function.Predicate<byte[]> match) {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (System.nanoTime() < deadline) {
            var used = rxDriver.nextUsed();
            if (used.isEmpty()) {
                sleep(5);
                continue;
            }
            MockQueue.Chain c = rxChains.get(used.get().id());
            byte[] all = rxDriver.read(c.addresses().get(0), used.get().length());
            postRxBuffer();
            device.queueNotify(NetDevice.RX);
            assertEquals(NetDevice.HDR_F_DATA_VALID, all[0], "frames to the guest carry DATA_VALID");
            byte[] frame = java.util.Arrays.copyOfRange(all, NetDevice.HEADER_SIZE, all.length);
            if (System.getenv("NET_TEST_TRACE") != null) {
                System.err.println("rx " + frame.length + " " + java.util.HexFormat.of().formatHex(frame, 0, Math.min(frame.length, 48)));
            }
            if (match.test(frame)) {
                return frame;
            }
        }
        return fail("no matching frame from the network stack within 5 s");
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    // ---- frame builders ----

    static byte[] ethernet(byte[] dst, int type, byte[] payload) {
        return ByteBuffer.allocate(14 + payload.length).put(dst).put(GUEST_MAC).putShort((short) type).put(payload).array();
    }

    static byte[] arpRequest(byte[] target) {
        ByteBuffer a = ByteBuffer.allocate(28);
        a.putShort((short) 1).putShort((short) 0x0800).put((byte) 6).put((byte) 4).putShort((short) 1)
                .put(GUEST_MAC).put(NetConfig.GUEST_V4.getAddress()).put(new byte[6]).put(target);
        return ethernet(BROADCAST, 0x0806, a.array());
    }

    static int checksum(byte[] b, int from, int to) {
        long sum = 0;
        for (int i = from; i < to; i += 2) {
            sum += (b[i] & 0xff) << 8 | (i + 1 < to ? b[i + 1] & 0xff : 0);
        }
        while (sum >> 16 != 0) {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        return (int) ~sum & 0xffff;
    }

    static byte[] ipv4(int protocol, byte[] dst, byte[] l4) {
        byte[] ip = ByteBuffer.allocate(20 + l4.length).put((byte) 0x45).put((byte) 0).putShort((short) (20 + l4.length))
                .putShort((short) 1).putShort((short) 0x4000).put((byte) 64).put((byte) protocol).putShort((short) 0)
                .put(NetConfig.GUEST_V4.getAddress()).put(dst).put(l4).array();
        int c = checksum(ip, 0, 20);
        ip[10] = (byte) (c >> 8);
        ip[11] = (byte) c;
        return ip;
    }

    static byte[] echoRequest(int id, boolean withChecksum) {
        byte[] icmp = ByteBuffer.allocate(16).put((byte) 8).put((byte) 0).putShort((short) 0).putShort((short) id)
                .putShort((short) 1).putLong(0x6a77736c6a77736cL).array();
        if (withChecksum) {
            int c = checksum(icmp, 0, icmp.length);
            icmp[2] = (byte) (c >> 8);
            icmp[3] = (byte) c;
        }
        return ethernet(new byte[] {0x52, 0x55, 10, 0, 2, 2}, 0x0800, ipv4(1, NetConfig.HOST_V4.getAddress(), icmp));
    }

    static byte[] udp(int srcPort, int dstPort, byte[] dst) {
        byte[] u = ByteBuffer.allocate(12).putShort((short) srcPort).putShort((short) dstPort).putShort((short) 12)
                .putShort((short) 0).putInt(0x6a77736c).array(); // checksum 0: none (IPv4)
        return ethernet(new byte[] {0x52, 0x55, 10, 0, 2, 2}, 0x0800, ipv4(17, dst, u));
    }

    private static boolean isArpReplyFromHost(byte[] f) {
        return f.length >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2
                && java.util.Arrays.equals(java.util.Arrays.copyOfRange(f, 28, 32), NetConfig.HOST_V4.getAddress());
    }

    private static boolean isEchoReply(byte[] f, int id) {
        return f.length >= 42 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 1 && f[34] == 0
                && ((f[38] & 0xff) << 8 | (f[39] & 0xff)) == id;
    }

    static byte[] dnsQuery(int id, String name, int type) {
        ByteBuffer q = ByteBuffer.allocate(512).putShort((short) id).putShort((short) 0x0100).putShort((short) 1)
                .putShort((short) 0).putShort((short) 0).putShort((short) 0);
        for (String label : name.split("\\.")) {
            q.put((byte) label.length()).put(label.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        }
        q.put((byte) 0).putShort((short) type).putShort((short) 1);
        byte[] dns = java.util.Arrays.copyOf(q.array(), q.position());
        byte[] u = ByteBuffer.allocate(8 + dns.length).putShort((short) 5353).putShort((short) 53)
                .putShort((short) (8 + dns.length)).putShort((short) 0).put(dns).array();
        return ethernet(new byte[] {0x52, 0x55, 10, 0, 2, 3}, 0x0800, ipv4(17, NetConfig.DNS_V4.getAddress(), u));
    }

    // ---- tests ----

    @Test
    void theResolverKnowsTheHostsName() {
        send(dnsQuery(0x1234, "Host.Internal", 1));
        byte[] a = receive(f -> f.length > 42 && f[23] == 17 && f[42] == 0x12 && f[43] == 0x34);
        assertEquals(53, (a[34] & 0xff) << 8 | (a[35] & 0xff), "from the resolver's port");
        assertEquals(0, checksum(a, 14, 34), "IPv4 header checksum");
        assertEquals(1, a[42 + 7], "one answer");
        assertArrayEquals(NetConfig.HOST_V4.getAddress(), java.util.Arrays.copyOfRange(a, a.length - 4, a.length));
        send(dnsQuery(0x1235, "host.internal", 28));
        byte[] aaaa = receive(f -> f.length > 42 && f[23] == 17 && f[42] == 0x12 && f[43] == 0x35);
        assertArrayEquals(NetConfig.HOST_V6.getAddress(), java.util.Arrays.copyOfRange(aaaa, aaaa.length - 16, aaaa.length));
        send(dnsQuery(0x1236, "host.internal", 15)); // MX: the name exists, no such record
        byte[] mx = receive(f -> f.length > 42 && f[23] == 17 && f[42] == 0x12 && f[43] == 0x36);
        assertEquals(0, mx[42 + 7], "no answers");
        assertEquals(0, mx[42 + 3] & 0x0f, "NOERROR");
    }

    @Test
    void answersArpForTheHostAddress() {
        send(arpRequest(NetConfig.HOST_V4.getAddress()));
        byte[] reply = receive(NetDeviceTest::isArpReplyFromHost);
        assertArrayEquals(GUEST_MAC, java.util.Arrays.copyOfRange(reply, 0, 6), "the reply is addressed to the guest");
        assertTrue(interrupts.get() > 0);
    }

    @Test
    void completesChecksumsTheGuestLeftToTheDevice() {
        send(arpRequest(NetConfig.HOST_V4.getAddress()));
        receive(NetDeviceTest::isArpReplyFromHost);
        // slirp drops an ICMP message whose checksum is wrong: the reply proves the device filled it in
        send(echoRequest(77, false), NetDevice.HDR_F_NEEDS_CSUM, 34, 2);
        receive(f -> isEchoReply(f, 77));
        // offsets past the frame's end are dropped, not trusted
        send(echoRequest(78, false), NetDevice.HDR_F_NEEDS_CSUM, 40, 60000);
        drainTx();
        assertEquals(1, device.droppedTx());
    }

    @Test
    void malformedFramesDoNotHurtTheStack() {
        Random r = new Random(42);
        byte[][] seeds = {arpRequest(NetConfig.HOST_V4.getAddress()), echoRequest(5, true),
                udp(4000, 53, NetConfig.DNS_V4.getAddress()), udp(4001, 9, NetConfig.HOST_V4.getAddress())};
        for (int i = 0; i < 20_000; i++) {
            byte[] f;
            switch (r.nextInt(4)) {
                case 0 -> { // random bytes of random length, sometimes beyond the MTU or under a header
                    f = new byte[r.nextInt(4) == 0 ? r.nextInt(14) : r.nextInt(2000)];
                    r.nextBytes(f);
                }
                case 1 -> { // a valid frame with a few bytes flipped
                    f = seeds[r.nextInt(seeds.length)].clone();
                    for (int k = 0; k < 1 + r.nextInt(4); k++) {
                        f[r.nextInt(f.length)] ^= (byte) (1 + r.nextInt(255));
                    }
                }
                case 2 -> { // truncated
                    byte[] s = seeds[r.nextInt(seeds.length)];
                    f = java.util.Arrays.copyOf(s, r.nextInt(s.length));
                }
                default -> { // a valid header with a random body, lengths lying
                    f = seeds[r.nextInt(seeds.length)].clone();
                    f = java.util.Arrays.copyOf(f, f.length + r.nextInt(100));
                    for (int k = 14; k < f.length; k += 1 + r.nextInt(8)) {
                        f[k] = (byte) r.nextInt();
                    }
                }
            }
            send(f, r.nextInt(8) == 0 ? NetDevice.HDR_F_NEEDS_CSUM : 0, r.nextInt(100), r.nextInt(100));
        }
        drainTx();
        // still alive and answering (the fuzz may have used up the socket limit: ARP needs none)
        send(arpRequest(NetConfig.HOST_V4.getAddress()));
        receive(NetDeviceTest::isArpReplyFromHost);
        assertTrue(backend.hostSockets() <= SOCKET_LIMIT + 1, "host sockets: " + backend.hostSockets());
    }

    @Test
    void aFloodOfFlowsIsCappedAtTheSocketLimit() {
        send(arpRequest(NetConfig.HOST_V4.getAddress())); // slirp learns the guest's MAC
        receive(NetDeviceTest::isArpReplyFromHost);
        for (int port = 0; port < SOCKET_LIMIT * 4; port++) {
            send(udp(10_000 + port, 9, NetConfig.HOST_V4.getAddress()));
        }
        drainTx();
        sleep(200);
        assertTrue(backend.droppedFlows() > 0, "flows beyond the limit are dropped");
        assertTrue(backend.hostSockets() <= SOCKET_LIMIT + 1, "host sockets: " + backend.hostSockets());
        // what opens no socket still flows
        send(arpRequest(NetConfig.HOST_V4.getAddress()));
        receive(NetDeviceTest::isArpReplyFromHost);
    }
}
