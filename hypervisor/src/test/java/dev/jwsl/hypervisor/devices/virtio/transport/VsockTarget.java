package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.devices.virtio.vsock.UnixSocketBackend;
import dev.jwsl.hypervisor.devices.virtio.vsock.VsockDevice;
import dev.jwsl.hypervisor.devices.virtio.vsock.VsockPacket;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static dev.jwsl.hypervisor.devices.virtio.transport.FuzzTarget.bytes;
import static dev.jwsl.hypervisor.devices.virtio.transport.FuzzTarget.pick;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * virtio-vsock over Unix sockets, with a host service on one port (it greets, then reads until
 * the other end closes) and host clients now and then asking for a guest port. Packets are
 * mostly addressed right, with every op and any credit.
 */
record VsockTarget(VsockDevice device, Path socket, ServerSocketChannel service) implements FuzzTarget {
    private static final int GUEST_CID = 3, HOST_CID = 2, SERVICE_PORT = 1234, FIRST_HOST_PORT = 1 << 30;
    private static final int OP_REQUEST = 1, OP_RESPONSE = 2, TYPE_STREAM = 1;

    static VsockTarget in(Path dir) {
        Path socket = dir.resolve("v.sock");
        try {
            ServerSocketChannel service = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            service.bind(UnixDomainSocketAddress.of(socket + "_" + SERVICE_PORT));
            Thread.ofPlatform().daemon().name("fuzz-vsock-service").start(() -> serve(service));
            return new VsockTarget(new VsockDevice(GUEST_CID, new UnixSocketBackend(socket), System::nanoTime), socket, service);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void serve(ServerSocketChannel service) {
        while (true) {
            SocketChannel c;
            try {
                c = service.accept();
            } catch (IOException e) {
                return; // closed
            }
            Thread.ofVirtual().start(() -> talk(c, "hello from the host\n"));
        }
    }

    /** Writes {@code greeting}, then reads until the other end closes, then closes. */
    private static void talk(SocketChannel c, String greeting) {
        try (c) {
            c.write(ByteBuffer.wrap(greeting.getBytes(StandardCharsets.US_ASCII)));
            ByteBuffer sink = ByteBuffer.allocate(8192);
            while (c.read(sink.clear()) >= 0) {
                // the guest's data goes nowhere
            }
        } catch (IOException e) {
            // the device closed it first
        }
    }

    @Override
    public List<Seg> request(int queue, Random rnd) {
        if (queue != 1) {
            return List.of(Seg.writable(pick(rnd, VsockPacket.HDR_SIZE, VsockPacket.HDR_SIZE + 4096, 8, 0)));
        }
        byte[] payload = bytes(rnd, pick(rnd, 0, 0, 16, 1000));
        VsockPacket p = new VsockPacket()
                .srcCid(rnd.nextInt(16) == 0 ? rnd.nextLong() : GUEST_CID)
                .dstCid(rnd.nextInt(16) == 0 ? rnd.nextLong() : HOST_CID)
                .srcPort(pick(rnd, 5000, 5001, 5002, rnd.nextInt()))
                .dstPort(pick(rnd, SERVICE_PORT, SERVICE_PORT, 4321, FIRST_HOST_PORT, FIRST_HOST_PORT + 1, rnd.nextInt()))
                .type(rnd.nextInt(16) == 0 ? rnd.nextInt(4) : TYPE_STREAM)
                .op(rnd.nextInt(9))
                .flags(pick(rnd, 0, 1, 2, 3, rnd.nextInt()))
                .bufAlloc(pick(rnd, 0, 4096, 256 << 10, rnd.nextInt()))
                .fwdCnt(pick(rnd, 0, rnd.nextInt(1 << 16), rnd.nextInt()))
                .payload(payload);
        if (rnd.nextInt(16) == 0) {
            p.len(rnd.nextInt());
        }
        byte[] packet = new byte[VsockPacket.HDR_SIZE + payload.length];
        System.arraycopy(p.header(), 0, packet, 0, VsockPacket.HDR_SIZE);
        System.arraycopy(payload, 0, packet, VsockPacket.HDR_SIZE, payload.length);
        return FuzzTarget.readable(rnd, packet);
    }

    /** Now and then a host client asks for a guest port, then talks until the device closes it. */
    @Override
    public void hostStep(Random rnd) {
        if (rnd.nextInt(500) != 0) {
            return;
        }
        String connect = "CONNECT " + pick(rnd, 5000, 5001) + "\n";
        try {
            SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket));
            Thread.ofVirtual().start(() -> talk(c, connect));
        } catch (IOException e) {
            // nothing listens before the first activation
        }
    }

    /** A guest connection to the host service is answered with RESPONSE. */
    @Override
    public void checkWorks(VirtioDriver driver, List<MockQueue> rings) {
        MockQueue rx = rings.get(0), tx = rings.get(1);
        Map<Integer, Long> buffers = new HashMap<>();
        for (int i = 0; i < 8; i++) {
            MockQueue.Chain c = rx.add(Seg.writable(VsockPacket.HDR_SIZE + 4096));
            buffers.put(c.head(), c.addresses().getFirst());
        }
        driver.notify(0);
        VsockPacket request = new VsockPacket().srcCid(GUEST_CID).dstCid(HOST_CID).srcPort(7000).dstPort(SERVICE_PORT)
                .type(TYPE_STREAM).op(OP_REQUEST).bufAlloc(64 << 10);
        tx.add(Seg.readable(request.header()));
        driver.notify(1);
        for (int i = 0; i < buffers.size(); i++) {
            MockQueue.Used used = rx.awaitUsed(Duration.ofSeconds(5));
            VsockPacket p = new VsockPacket(rx.read(buffers.get(used.id()), VsockPacket.HDR_SIZE));
            if (p.op() == OP_RESPONSE && p.dstPort() == 7000 && p.srcPort() == SERVICE_PORT) {
                return;
            }
        }
        fail("no RESPONSE to a connection request");
    }

    @Override
    public void close() {
        device.close();
        try {
            service.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
