package dev.jwsl.hypervisor.devices.virtio.net;

import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.net.GuestLink;
import dev.jwsl.hypervisor.net.NetBackend;
import dev.jwsl.hypervisor.net.NetConfig;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;
import dev.jwsl.hypervisor.virtio.Descriptor;
import dev.jwsl.hypervisor.virtio.QueueException;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The rings of the virtio-net device against a driver that breaks the rules, with the backend's
 * thread played by the test: it calls {@link GuestLink#drainTransmit} and
 * {@link GuestLink#deliver} itself, so every outcome is deterministic.
 */
@Timeout(30)
class NetDeviceRingTest {
    private static final int MTU = 1500;

    private final MmapGuestMemory memory = MmapGuestMemory.create(List.of(new long[] {0, 64L << 20}));
    private final NetConfig config = new NetConfig(MTU);
    private final AtomicInteger wakes = new AtomicInteger();
    private final List<Exception> needsReset = new ArrayList<>();
    private final NetDevice device = new NetDevice(config, new NetBackend() {
        @Override public void start(GuestLink guest) { }
        @Override public void wake() { wakes.incrementAndGet(); }
        @Override public void close() { }
    });
    private MockQueue rx, tx;
    private int generation;

    @AfterEach
    void close() {
        device.close();
        memory.close();
    }

    /** Sets the rings up afresh (each activation gets its own area) and activates the device. */
    private void activate() {
        long base = 0x100000L + generation++ * (8L << 20);
        rx = new MockQueue(memory, 64, base, base + 0x10000);
        tx = new MockQueue(memory, 64, base + 0x4000, base + (4L << 20));
        long features = device.availableFeatures() & ~(3L << 28);
        device.ackFeatures(features);
        device.activate(memory, List.of(rx.deviceQueue(NetDevice.QUEUE_SIZE, features), tx.deviceQueue(NetDevice.QUEUE_SIZE, features)),
                new VirtioInterrupt() {
                    @Override public void signalUsed(int queue) { }
                    @Override public void signalConfigChange() { }
                    @Override public void signalNeedsReset(Exception cause) { needsReset.add(cause); }
                });
    }

    private static byte[] frame(int length, int fill) {
        byte[] f = new byte[length];
        java.util.Arrays.fill(f, (byte) fill);
        return f;
    }

    private void send(byte[] frame) {
        tx.add(Seg.readable(new byte[NetDevice.HEADER_SIZE]), Seg.readable(frame));
    }

    private List<byte[]> drain() {
        List<byte[]> out = new ArrayList<>();
        device.drainTransmit(f -> out.add(f.toArray(JAVA_BYTE)));
        return out;
    }

    @Test
    void aBadTransmitChainMarksTheDeviceForResetAndAResetDeviceWorksAgain() {
        activate();
        tx.publish(63); // descriptor 63 was never written: address 0, length 0, no flags
        tx.writeDesc(63, 0, 16, Descriptor.F_NEXT, 200); // next beyond the ring
        assertDoesNotThrow(this::drain, "the backend's thread must not see the driver's error");
        assertEquals(1, needsReset.size());
        assertInstanceOf(QueueException.class, needsReset.getFirst());
        assertTrue(drain().isEmpty(), "a broken ring is left alone until reset");
        assertEquals(1, needsReset.size(), "reported once");

        device.reset();
        activate();
        send(frame(60, 7));
        List<byte[]> got = drain();
        assertEquals(1, got.size());
        assertArrayEquals(frame(60, 7), got.getFirst());
    }

    @Test
    void aBadReceiveChainMarksTheDeviceForReset() {
        activate();
        rx.publish(0);
        rx.writeDesc(0, 1L << 40, 2048, Descriptor.F_WRITE, 0); // outside guest RAM
        assertDoesNotThrow(() -> device.deliver(MemorySegment.ofArray(frame(60, 1))));
        assertEquals(1, needsReset.size());
        assertDoesNotThrow(() -> device.deliver(MemorySegment.ofArray(frame(60, 2))));
        send(frame(60, 3));
        assertEquals(1, drain().size(), "transmit still works");
    }

    @Test
    void framesLongerThanTheLinkAllowsAreDroppedAndTheRingGoesOn() {
        activate();
        send(frame(14 + MTU + 1, 1));
        send(frame(14 + MTU, 2));
        send(frame(13, 3)); // shorter than an Ethernet header
        List<byte[]> got = drain();
        assertEquals(1, got.size());
        assertEquals(14 + MTU, got.getFirst().length);
        assertEquals(2, device.droppedTx());
        for (int i = 0; i < 3; i++) {
            assertEquals(0, tx.nextUsed().orElseThrow().length());
        }
    }

    @Test
    void aReceiveBufferTooSmallForTheFrameIsReturnedEmpty() {
        activate();
        MockQueue.Chain small = rx.add(Seg.writable(NetDevice.HEADER_SIZE + 50));
        MockQueue.Chain big = rx.add(Seg.writable(NetDevice.HEADER_SIZE + 1514));
        device.deliver(MemorySegment.ofArray(frame(100, 9)));
        assertEquals(new MockQueue.Used(small.head(), 0), rx.nextUsed().orElseThrow());
        assertEquals(1, device.droppedRx());
        device.deliver(MemorySegment.ofArray(frame(100, 10)));
        assertEquals(new MockQueue.Used(big.head(), NetDevice.HEADER_SIZE + 100), rx.nextUsed().orElseThrow());
        assertArrayEquals(frame(100, 10), rx.read(big.addresses().getFirst() + NetDevice.HEADER_SIZE, 100));
    }

    @Test
    void aGuestThatPostsNoReceiveBuffersCostsABoundedBacklog() {
        activate();
        int sent = 2000;
        for (int i = 0; i < sent; i++) {
            device.deliver(MemorySegment.ofArray(frame(14 + MTU, i)));
        }
        long kept = sent - device.droppedRx();
        assertTrue(kept <= NetDevice.BACKLOG_FRAMES && kept * (14 + MTU) <= NetDevice.BACKLOG_BYTES, "kept " + kept);
        for (int i = 0; i < 64; i++) {
            rx.add(Seg.writable(NetDevice.HEADER_SIZE + 1514));
        }
        drain(); // the backend's thread flushes the backlog when it looks again
        int delivered = 0;
        while (rx.nextUsed().isPresent()) {
            delivered++;
        }
        assertEquals(Math.min(64, kept), delivered);
    }

    @Test
    void aDriverThatRefillsTheTransmitRingAsFastAsItDrainsDoesNotHoldTheBackend() {
        activate();
        send(frame(60, 0));
        int wakesBefore = wakes.get();
        AtomicInteger frames = new AtomicInteger();
        device.drainTransmit(f -> {
            if (frames.incrementAndGet() < 20_000) {
                send(frame(60, 1)); // the guest adds another as each one leaves
            }
        });
        assertTrue(frames.get() <= 2 * NetDevice.QUEUE_SIZE, "frames in one pass: " + frames.get());
        assertTrue(wakes.get() > wakesBefore, "the backend is asked to come back for the rest");
    }
}
