package dev.jwsl.hypervisor.net.slirp;

import dev.jwsl.hypervisor.net.GuestLink;
import dev.jwsl.hypervisor.net.NetConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/** The libslirp loop against a guest link that misbehaves. */
@Timeout(30)
class SlirpBackendTest {
    private static final byte[] GUEST_MAC = NetConfig.GUEST_MAC;

    private static byte[] arpRequestForTheHost() {
        ByteBuffer f = ByteBuffer.allocate(42);
        f.put(new byte[] {-1, -1, -1, -1, -1, -1}).put(GUEST_MAC).putShort((short) 0x0806);
        f.putShort((short) 1).putShort((short) 0x0800).put((byte) 6).put((byte) 4).putShort((short) 1)
                .put(GUEST_MAC).put(NetConfig.GUEST_V4.getAddress()).put(new byte[6]).put(NetConfig.HOST_V4.getAddress());
        return f.array();
    }

    @Test
    void anExceptionFromTheGuestLinkDoesNotStopTheNetwork() throws Exception {
        BlockingQueue<byte[]> delivered = new LinkedBlockingQueue<>();
        AtomicInteger drains = new AtomicInteger();
        try (SlirpBackend backend = new SlirpBackend(new NetConfig())) {
            backend.start(new GuestLink() {
                @Override
                public void drainTransmit(Consumer<MemorySegment> sink) {
                    switch (drains.incrementAndGet()) {
                        case 1 -> throw new IllegalStateException("a device bug");
                        case 2 -> sink.accept(Arena.ofAuto().allocateFrom(JAVA_BYTE, arpRequestForTheHost())); // native, as a device's
                        default -> { }
                    }
                }

                @Override
                public void deliver(MemorySegment frame) {
                    delivered.add(frame.toArray(JAVA_BYTE));
                }
            });
            backend.wake();
            byte[] reply = delivered.poll(10, TimeUnit.SECONDS);
            assertNotNull(reply, "the stack answered ARP after the failed round");
        }
    }
}
