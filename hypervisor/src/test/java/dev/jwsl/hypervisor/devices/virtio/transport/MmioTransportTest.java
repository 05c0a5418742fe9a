package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;
import dev.jwsl.hypervisor.virtio.Descriptor;
import dev.jwsl.hypervisor.virtio.DescriptorChain;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.TransportState;
import dev.jwsl.hypervisor.virtio.VirtioDevice;
import dev.jwsl.hypervisor.virtio.VirtioFeatures;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.jwsl.hypervisor.devices.virtio.transport.MmioTransport.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MmioTransportTest {
    private static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.F_VERSION_1)
            | VirtioFeatures.bit(VirtioFeatures.RING_F_EVENT_IDX) | 0x5;

    /**
     * A device with two queues that echoes each readable chain's length into the used ring, and
     * fails on demand: it throws {@link #failure} from whatever device code runs next.
     */
    static final class FakeDevice implements VirtioDevice {
        long acked = -1;
        List<Queue> queues;
        VirtioInterrupt interrupt;
        int resets;
        int activations;
        String blocker;
        /** Held from activate to reset, as a session or a socket would be. */
        boolean holding;
        Throwable failure;
        final List<Integer> notified = new ArrayList<>();

        private void failIfAsked() {
            Throwable f = failure;
            if (f instanceof RuntimeException e) {
                throw e;
            }
            if (f instanceof Error e) {
                throw e;
            }
        }

        @Override public int deviceType() { return 42; }
        @Override public long availableFeatures() { return FEATURES; }
        @Override public void ackFeatures(long features) { acked = features; }
        @Override public List<Integer> queueMaxSizes() { return List.of(16, 8); }

        @Override
        public void readConfig(long offset, byte[] data) {
            failIfAsked();
            for (int i = 0; i < data.length; i++) {
                data[i] = (byte) (0x10 + offset + i);
            }
        }

        @Override public void writeConfig(long offset, byte[] data) { failIfAsked(); }

        @Override
        public void activate(GuestMemory memory, List<Queue> queues, VirtioInterrupt interrupt) {
            activations++;
            holding = true;
            failIfAsked();
            this.queues = queues;
            this.interrupt = interrupt;
        }

        @Override
        public void queueNotify(int queue) {
            notified.add(queue);
            failIfAsked();
            Queue q = queues.get(queue);
            for (Optional<DescriptorChain> c = q.pop(); c.isPresent(); c = q.pop()) {
                q.addUsed(c.get().head(), (int) c.get().readableLength());
            }
            if (q.needsNotification()) {
                interrupt.signalUsed(queue);
            }
        }

        @Override
        public String snapshotBlocker() {
            return blocker;
        }

        @Override
        public void reset() {
            resets++;
            holding = false;
            queues = null;
            failIfAsked();
        }
    }

    private final MmapGuestMemory memory = MockQueue.memory();
    private final FakeDevice device = new FakeDevice();
    private final AtomicInteger irqs = new AtomicInteger();
    private final MmioTransport t = new MmioTransport(device, memory, irqs::incrementAndGet);
    private final VirtioDriver driver = new VirtioDriver(t);
    private final Arena arena = Arena.ofConfined();

    @AfterEach
    void close() {
        driver.close();
        arena.close();
        memory.close();
    }

    private int read(int offset) {
        return driver.read(offset);
    }

    private void write(int offset, int value) {
        driver.write(offset, value);
    }

    private void negotiate(long features) {
        driver.negotiate(features);
    }

    private void setUpQueue(int index, MockQueue mock, int size) {
        driver.setUpQueue(index, mock, size);
    }

    @Test
    void identifiesAsAModernDevice() {
        assertEquals(0x74726976, read(MAGIC_VALUE));
        assertEquals(2, read(VERSION));
        assertEquals(42, read(DEVICE_ID));
        assertEquals(0, read(STATUS));
        write(DEVICE_FEATURES_SEL, 0);
        assertEquals((int) FEATURES, read(DEVICE_FEATURES));
        write(DEVICE_FEATURES_SEL, 1);
        assertEquals(1, read(DEVICE_FEATURES));
        write(DEVICE_FEATURES_SEL, 2);
        assertEquals(0, read(DEVICE_FEATURES));
        write(QUEUE_SEL, 1);
        assertEquals(8, read(QUEUE_NUM_MAX));
        write(QUEUE_SEL, 2);
        assertEquals(0, read(QUEUE_NUM_MAX), "no such queue");
    }

    @Test
    void acceptsASubsetWithVersion1() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1) | 1);
        assertEquals(ACKNOWLEDGE | DRIVER | FEATURES_OK, read(STATUS));
        assertEquals(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1) | 1, device.acked);
    }

    @Test
    void refusesALegacyDriver() {
        negotiate(1);
        assertEquals(0, read(STATUS) & FEATURES_OK);
        assertEquals(-1, device.acked);
    }

    @Test
    void refusesFeaturesNotOffered() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1) | 2);
        assertEquals(0, read(STATUS) & FEATURES_OK);
    }

    @Test
    void featuresCannotChangeAfterFeaturesOk() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        write(DRIVER_FEATURES_SEL, 0);
        write(DRIVER_FEATURES, 0x5);
        MockQueue mock = new MockQueue(memory, 16);
        setUpQueue(0, mock, 16);
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assertEquals(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1), device.acked);
    }

    @Test
    void queueConfigOnlyAfterFeaturesOkAndBeforeReady() {
        write(QUEUE_SEL, 0);
        write(QUEUE_NUM, 4); // before FEATURES_OK: ignored
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        MockQueue mock = new MockQueue(memory, 8);
        setUpQueue(0, mock, 8);
        assertEquals(1, read(QUEUE_READY));
        write(QUEUE_NUM, 4); // ready: ignored
        write(QUEUE_DESC_LOW, 0x123000);
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assertTrue(t.activated());
        Queue q = device.queues.getFirst();
        assertEquals(8, q.size());
        assertEquals(mock.desc, q.descTable());
        assertFalse(device.queues.get(1).ready(), "queue 1 was never enabled");
    }

    @Test
    void notifyProcessesTheQueueAndInterrupts() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        MockQueue mock = new MockQueue(memory, 16);
        setUpQueue(0, mock, 16);
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        mock.add(Seg.readable(new byte[5]));
        write(QUEUE_NOTIFY, 0);
        assertEquals(new MockQueue.Used(0, 5), mock.nextUsed().orElseThrow());
        assertEquals(1, irqs.get());
        assertEquals(INT_USED_BUFFER, read(INTERRUPT_STATUS));
        write(INTERRUPT_ACK, INT_USED_BUFFER);
        assertEquals(0, read(INTERRUPT_STATUS));
        write(QUEUE_NOTIFY, 7); // no such queue: ignored
        assertEquals(List.of(0), device.notified);
    }

    @Test
    void aMalformedChainSetsNeedsResetInsteadOfThrowing() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        MockQueue mock = new MockQueue(memory, 16);
        setUpQueue(0, mock, 16);
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        mock.publish(200);
        write(QUEUE_NOTIFY, 0);
        assertEquals(DEVICE_NEEDS_RESET, read(STATUS) & DEVICE_NEEDS_RESET);
        assertEquals(INT_CONFIG_CHANGE, read(INTERRUPT_STATUS) & INT_CONFIG_CHANGE);
        assertEquals(1, irqs.get());
        write(QUEUE_NOTIFY, 0); // further kicks are ignored until reset
        assertEquals(1, device.notified.size());
        write(STATUS, 0);
        assertEquals(0, read(STATUS));
        assertEquals(1, device.resets);
    }

    @Test
    void invalidQueueConfigFailsDriverOk() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        MockQueue mock = new MockQueue(memory, 16);
        setUpQueue(0, mock, 12); // not a power of two
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assertFalse(t.activated());
        assertEquals(DEVICE_NEEDS_RESET, read(STATUS) & (DEVICE_NEEDS_RESET | DRIVER_OK));
    }

    @Test
    void resetClearsEverything() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        MockQueue mock = new MockQueue(memory, 16);
        setUpQueue(0, mock, 16);
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        write(STATUS, 0);
        assertEquals(1, device.resets);
        assertFalse(t.activated());
        write(QUEUE_SEL, 0);
        assertEquals(0, read(QUEUE_READY));
        assertEquals(0, read(STATUS));
    }

    @Test
    void ioeventfdNotificationsReachTheDeviceOnTheirOwnThread() throws Exception {
        List<long[]> registered = new ArrayList<>();
        t.attachIoeventfds((fd, address, length, datamatch) -> registered.add(new long[] {fd, address, length, datamatch}),
                0xd000_0000L, "test");
        assertEquals(2, registered.size(), "one per queue");
        assertEquals(0xd000_0000L + QUEUE_NOTIFY, registered.get(1)[1]);
        assertEquals(4, registered.get(1)[2]);
        assertEquals(1, registered.get(1)[3], "datamatch is the queue index");
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        MockQueue mock = new MockQueue(memory, 16);
        setUpQueue(0, mock, 16);
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        mock.add(Seg.readable(new byte[3]));
        MemorySegment one = arena.allocate(ValueLayout.JAVA_LONG);
        one.set(ValueLayout.JAVA_LONG, 0, 1);
        dev.jwsl.hypervisor.sys.LibC.write((int) registered.getFirst()[0], one, "eventfd"); // what KVM does
        long end = System.nanoTime() + 5_000_000_000L;
        Optional<MockQueue.Used> used;
        while ((used = mock.nextUsed()).isEmpty() && System.nanoTime() < end) {
            Thread.sleep(1);
        }
        assertEquals(new MockQueue.Used(0, 3), used.orElseThrow());
        t.close(); // stops and joins the notifier threads
    }

    @Test
    void registrationFailureFallsBackToExits() {
        t.attachIoeventfds((fd, address, length, datamatch) -> {
            throw new IllegalStateException("no ioeventfd here");
        }, 0, "test");
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        MockQueue mock = new MockQueue(memory, 16);
        setUpQueue(0, mock, 16);
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        mock.add(Seg.readable(new byte[2]));
        write(QUEUE_NOTIFY, 0);
        assertEquals(new MockQueue.Used(0, 2), mock.nextUsed().orElseThrow());
    }

    @Test
    void registersNeedAlignedWordAccessButConfigSpaceTakesAnyWidth() {
        MemorySegment b = arena.allocate(1);
        t.read(MAGIC_VALUE, b);
        assertEquals(0, b.get(ValueLayout.JAVA_BYTE, 0));
        t.read(CONFIG + 3, b);
        assertEquals(0x13, b.get(ValueLayout.JAVA_BYTE, 0));
        MemorySegment w = arena.allocate(2);
        t.read(CONFIG + 4, w);
        assertEquals(0x1514, w.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0));
    }

    // ---- issue 16, finding 1: the status register and what a hostile driver does with it ----

    private static final long V1 = VirtioFeatures.bit(VirtioFeatures.F_VERSION_1);
    private static final int RUNNING = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;

    /** A running device with queue 0 (16 entries) on {@code mock}. */
    private MockQueue running() {
        negotiate(V1);
        MockQueue mock = new MockQueue(memory, 16);
        setUpQueue(0, mock, 16);
        write(STATUS, RUNNING);
        assertTrue(t.activated());
        return mock;
    }

    @Test
    void clearingAStatusBitWithoutAResetIsRefused() {
        running();
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        assertEquals(RUNNING | DEVICE_NEEDS_RESET, read(STATUS), "2.1.1: only a write of 0 clears bits");
        assertEquals(INT_CONFIG_CHANGE, read(INTERRUPT_STATUS) & INT_CONFIG_CHANGE, "2.1.2: the driver is told");
        assertTrue(t.activated());
    }

    @Test
    void queueConfigurationIsFrozenOnceDriverOkWasSet() {
        running();
        Queue q = device.queues.getFirst();
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        write(QUEUE_SEL, 0);
        write(QUEUE_READY, 0);
        write(QUEUE_NUM, 0x7fffffff);
        write(QUEUE_DESC_LOW, 0x2000);
        write(QUEUE_READY, 1);
        assertEquals(16, q.size());
        assertTrue(q.ready());
        assertEquals(MockQueue.RING_BASE, q.descTable());
    }

    /** The input of finding 1: a queue of 2^31-1 entries and a self-linked descriptor (before: OutOfMemoryError). */
    @Test
    void theFindingsInputEndsInNeedsResetNotAnError() {
        MockQueue mock = running();
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        write(QUEUE_SEL, 0);
        write(QUEUE_READY, 0);
        write(QUEUE_NUM, 0x7fffffff);
        write(QUEUE_READY, 1);
        mock.writeDesc(0, MockQueue.DATA_BASE, 4, Descriptor.F_NEXT, 0);
        mock.publish(0);
        assertDoesNotThrow(() -> write(QUEUE_NOTIFY, 0));
        assertEquals(DEVICE_NEEDS_RESET, read(STATUS) & DEVICE_NEEDS_RESET);
        write(STATUS, 0);
        mock = new MockQueue(memory, 16, 0x40000, 0x200000);
        driver.bringUp(V1, List.of(mock));
        mock.add(Seg.readable(new byte[3]));
        write(QUEUE_NOTIFY, 0);
        assertEquals(new MockQueue.Used(0, 3), mock.nextUsed().orElseThrow(), "a reset device works again");
    }

    @Test
    void driverOkAgainDoesNotActivateTwice() {
        running();
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        write(STATUS, RUNNING);
        assertEquals(1, device.activations);
    }

    @Test
    void failedForbidsActivation() {
        negotiate(V1);
        setUpQueue(0, new MockQueue(memory, 16), 16);
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | FAILED);
        write(STATUS, RUNNING | FAILED);
        assertFalse(t.activated(), "2.1.1: after FAILED the driver must reset first");
        assertEquals(0, device.activations);
    }

    @Test
    void anErrorInTheDeviceStopsTheDeviceNotTheVcpu() {
        MockQueue mock = running();
        device.failure = new StackOverflowError("a device bug");
        mock.add(Seg.readable(new byte[1]));
        assertDoesNotThrow(() -> write(QUEUE_NOTIFY, 0));
        assertEquals(DEVICE_NEEDS_RESET, read(STATUS) & DEVICE_NEEDS_RESET);
        device.failure = new OutOfMemoryError("in configuration space");
        assertDoesNotThrow(() -> driver.read(CONFIG, 4));
        assertDoesNotThrow(() -> driver.write(CONFIG, 1, 7));
        device.failure = new IllegalStateException("in reset");
        assertDoesNotThrow(() -> write(STATUS, 0));
        assertEquals(0, read(STATUS));
    }

    @Test
    void anActivationThatFailsHalfWayIsStillResetAndTheNextOneWorks() {
        negotiate(V1);
        setUpQueue(0, new MockQueue(memory, 16), 16);
        device.failure = new OutOfMemoryError("while activating");
        assertDoesNotThrow(() -> write(STATUS, RUNNING));
        assertFalse(t.activated());
        assertEquals(DEVICE_NEEDS_RESET, read(STATUS) & DEVICE_NEEDS_RESET);
        device.failure = null;
        write(STATUS, 0);
        assertFalse(device.holding, "reset releases what a failed activation acquired");
        driver.bringUp(V1, List.of(new MockQueue(memory, 16)));
        assertTrue(t.activated());
    }

    /** A device thread that finishes a request after the reset must not write into the new rings. */
    @Test
    void resetRetiresTheQueuesADeviceStillHolds() {
        MockQueue mock = running();
        Queue old = device.queues.getFirst();
        mock.add(Seg.writable(8));
        DescriptorChain inFlight = old.pop().orElseThrow(); // as a worker thread takes a request
        write(STATUS, 0);
        MockQueue fresh = new MockQueue(memory, 16); // the same rings, as a re-probing driver allocates
        driver.bringUp(V1, List.of(fresh));
        fresh.add(Seg.writable(8));
        old.addUsed(inFlight.head(), 8);
        assertTrue(fresh.nextUsed().isEmpty(), "a request of the old activation reached the new used ring");
        assertTrue(old.pop().isEmpty(), "the old queue object serves nothing");
        write(QUEUE_NOTIFY, 0);
        assertEquals(new MockQueue.Used(0, 0), fresh.nextUsed().orElseThrow());
    }

    @Test
    void queueNumAboveTheMaximumFailsDriverOk() {
        negotiate(V1);
        setUpQueue(0, new MockQueue(memory, 16), 32);
        write(STATUS, RUNNING);
        assertFalse(t.activated());
        assertEquals(DEVICE_NEEDS_RESET, read(STATUS) & DEVICE_NEEDS_RESET);
    }

    @Test
    void aSnapshotRestoresOntoANewTransportAndServesWhatTheDriverPublishedBeforeIt() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_F_EVENT_IDX));
        MockQueue mock = new MockQueue(memory, 16);
        setUpQueue(0, mock, 16);
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        mock.add(Seg.readable(new byte[5]));
        write(QUEUE_NOTIFY, 0);
        assertEquals(new MockQueue.Used(0, 5), mock.nextUsed().orElseThrow());
        mock.add(Seg.readable(new byte[7])); // published, its notification not yet seen when the vCPUs stop
        TransportState state = t.saveState();

        FakeDevice fresh = new FakeDevice();
        AtomicInteger freshIrqs = new AtomicInteger();
        MmioTransport restored = new MmioTransport(fresh, memory, freshIrqs::incrementAndGet);
        restored.restoreState(state);
        assertTrue(restored.activated());
        assertEquals(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK, restored.status());
        assertEquals(state.driverFeatures(), fresh.acked);
        assertEquals(1, fresh.activations);
        assertEquals(List.of(0), fresh.notified, "every ready queue is looked at once");
        assertEquals(new MockQueue.Used(1, 7), mock.nextUsed().orElseThrow());
        restored.close();
    }

    @Test
    void aSnapshotDoesNotRestoreOntoAnotherKindOfDeviceOrATransportInUse() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        TransportState state = t.saveState();
        TransportState other = new TransportState(43, state.status(), state.driverFeatures(), 0, 0, state.queues());
        MmioTransport fresh = new MmioTransport(new FakeDevice(), memory, () -> { });
        assertThrows(IllegalStateException.class, () -> fresh.restoreState(other));
        assertThrows(IllegalStateException.class, () -> t.restoreState(state));
        fresh.close();
    }

    @Test
    void aDeviceWithHostStateItCannotRestoreIsNotSnapshotted() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        MockQueue mock = new MockQueue(memory, 16);
        setUpQueue(0, mock, 16);
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        device.blocker = "2 connections open";
        assertEquals("virtio device 42: 2 connections open", assertThrows(IllegalStateException.class, t::saveState).getMessage());
        device.blocker = null;
        t.saveState();
    }

    @Test
    void aDeviceThatNeedsAResetIsNotSnapshotted() {
        negotiate(VirtioFeatures.bit(VirtioFeatures.F_VERSION_1));
        write(STATUS, ACKNOWLEDGE); // clears bits without a reset
        assertThrows(IllegalStateException.class, t::saveState);
    }
}
