package dev.jwsl.hypervisor.virtio;

import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class QueueTest {
    private final MmapGuestMemory memory = MockQueue.memory();
    private final MockQueue driver = new MockQueue(memory, 16);

    @AfterEach
    void close() {
        memory.close();
    }

    private Queue queue(long features) {
        return driver.deviceQueue(16, features);
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void popAndAddUsedRoundTrip() {
        Queue q = queue(0);
        assertTrue(q.pop().isEmpty());
        MockQueue.Chain c = driver.add(Seg.readable(bytes("hello")));
        DescriptorChain chain = q.pop().orElseThrow();
        assertEquals(c.head(), chain.head());
        assertArrayEquals(bytes("hello"), chain.readAll(100));
        assertTrue(q.pop().isEmpty());
        q.addUsed(chain.head(), 0);
        assertEquals(new MockQueue.Used(c.head(), 0), driver.nextUsed().orElseThrow());
        assertTrue(driver.nextUsed().isEmpty());
    }

    @Test
    void wrapsAroundTheRingAndTheSixteenBitIndex() {
        Queue q = queue(0);
        for (int i = 0; i < 70000; i++) {
            driver.add(Seg.writable(4));
            DescriptorChain chain = q.pop().orElseThrow();
            q.addUsed(chain.head(), 4);
            assertEquals(4, driver.nextUsed().orElseThrow().length());
        }
        assertEquals(70000 & 0xffff, q.nextAvail());
    }

    @Test
    void mixedChainReadsReadableAndWritesWritable() {
        Queue q = queue(0);
        MockQueue.Chain c = driver.add(Seg.readable(bytes("abc")), Seg.readable(bytes("defg")),
                Seg.writable(2), Seg.writable(5));
        DescriptorChain chain = q.pop().orElseThrow();
        assertEquals(2, chain.readable().size());
        assertEquals(2, chain.writable().size());
        assertEquals(7, chain.readableLength());
        assertEquals(7, chain.writableLength());
        byte[] mid = new byte[3];
        assertEquals(3, chain.read(2, mid, 0, 3));
        assertArrayEquals(bytes("cde"), mid);
        assertEquals(7, chain.write(bytes("1234567xyz")), "only 7 bytes fit");
        assertArrayEquals(bytes("12"), driver.read(c.addresses().get(2), 2));
        assertArrayEquals(bytes("34567"), driver.read(c.addresses().get(3), 5));
    }

    @Test
    void indirectTablesAreFlattenedWhenNegotiated() {
        Queue q = queue(VirtioFeatures.bit(VirtioFeatures.RING_F_INDIRECT_DESC));
        MockQueue.Chain c = driver.addIndirect(Seg.readable(bytes("hdr")), Seg.writable(8));
        DescriptorChain chain = q.pop().orElseThrow();
        assertEquals(c.head(), chain.head());
        assertArrayEquals(bytes("hdr"), chain.readAll(10));
        assertEquals(8, chain.writableLength());
    }

    private void assertRejected(Queue q, QueueException.Reason reason) {
        QueueException e = assertThrows(QueueException.class, q::pop);
        assertEquals(reason, e.reason(), e.getMessage());
        assertTrue(q.isBroken());
        assertTrue(q.pop().isEmpty(), "a broken queue pops nothing");
    }

    @Test
    void headOutOfRange() {
        Queue q = queue(0);
        driver.publish(16);
        assertRejected(q, QueueException.Reason.DESC_INDEX_OUT_OF_RANGE);
    }

    @Test
    void nextOutOfRange() {
        Queue q = queue(0);
        driver.writeDesc(0, MockQueue.DATA_BASE, 4, Descriptor.F_NEXT, 99);
        driver.publish(0);
        assertRejected(q, QueueException.Reason.DESC_INDEX_OUT_OF_RANGE);
    }

    @Test
    void descriptorLoop() {
        Queue q = queue(0);
        driver.writeDesc(0, MockQueue.DATA_BASE, 4, Descriptor.F_NEXT, 1);
        driver.writeDesc(1, MockQueue.DATA_BASE, 4, Descriptor.F_NEXT, 0);
        driver.publish(0);
        assertRejected(q, QueueException.Reason.DESC_CHAIN_TOO_LONG);
    }

    @Test
    void selfLoop() {
        Queue q = queue(0);
        driver.writeDesc(3, MockQueue.DATA_BASE, 4, Descriptor.F_NEXT, 3);
        driver.publish(3);
        assertRejected(q, QueueException.Reason.DESC_CHAIN_TOO_LONG);
    }

    @Test
    void bufferOutsideRam() {
        Queue q = queue(0);
        driver.writeDesc(0, (16 << 20) - 2, 4, 0, 0);
        driver.publish(0);
        assertRejected(q, QueueException.Reason.DESC_ADDRESS_OUT_OF_RANGE);
    }

    @Test
    void hugeLengthWrapsNothing() {
        Queue q = queue(0);
        driver.writeDesc(0, 0x1000, -1, 0, 0); // length 0xffffffff
        driver.publish(0);
        assertRejected(q, QueueException.Reason.DESC_ADDRESS_OUT_OF_RANGE);
    }

    @Test
    void readableAfterWritable() {
        Queue q = queue(0);
        driver.add(Seg.writable(4), Seg.readable(bytes("x")));
        assertRejected(q, QueueException.Reason.READABLE_AFTER_WRITABLE);
    }

    @Test
    void availIdxJump() {
        Queue q = queue(0);
        driver.setAvailIdx(17);
        assertRejected(q, QueueException.Reason.AVAIL_IDX_JUMP);
    }

    @Test
    void indirectWithoutNegotiation() {
        Queue q = queue(0);
        driver.addIndirect(Seg.readable(bytes("x")));
        assertRejected(q, QueueException.Reason.INDIRECT_NOT_NEGOTIATED);
    }

    @Test
    void indirectBadLength() {
        Queue q = queue(VirtioFeatures.bit(VirtioFeatures.RING_F_INDIRECT_DESC));
        driver.writeDesc(0, MockQueue.DATA_BASE, 15, Descriptor.F_INDIRECT, 0);
        driver.publish(0);
        assertRejected(q, QueueException.Reason.INDIRECT_BAD_LENGTH);
    }

    @Test
    void indirectNested() {
        Queue q = queue(VirtioFeatures.bit(VirtioFeatures.RING_F_INDIRECT_DESC));
        long table = driver.allocate(32);
        driver.writeDescAt(table, 0, table, 32, Descriptor.F_INDIRECT, 0);
        driver.writeDesc(0, table, 32, Descriptor.F_INDIRECT, 0);
        driver.publish(0);
        assertRejected(q, QueueException.Reason.INDIRECT_NESTED);
    }

    @Test
    void indirectLoop() {
        Queue q = queue(VirtioFeatures.bit(VirtioFeatures.RING_F_INDIRECT_DESC));
        long table = driver.allocate(32);
        driver.writeDescAt(table, 0, MockQueue.DATA_BASE, 4, Descriptor.F_NEXT, 1);
        driver.writeDescAt(table, 1, MockQueue.DATA_BASE, 4, Descriptor.F_NEXT, 0);
        driver.writeDesc(0, table, 32, Descriptor.F_INDIRECT, 0);
        driver.publish(0);
        assertRejected(q, QueueException.Reason.DESC_CHAIN_TOO_LONG);
    }

    @Test
    void indirectTableOutsideRam() {
        Queue q = queue(VirtioFeatures.bit(VirtioFeatures.RING_F_INDIRECT_DESC));
        driver.writeDesc(0, 1L << 40, 32, Descriptor.F_INDIRECT, 0);
        driver.publish(0);
        assertRejected(q, QueueException.Reason.DESC_ADDRESS_OUT_OF_RANGE);
    }

    @Test
    void addUsedChecksTheHead() {
        Queue q = queue(0);
        QueueException e = assertThrows(QueueException.class, () -> q.addUsed(16, 0));
        assertEquals(QueueException.Reason.USED_INDEX_OUT_OF_RANGE, e.reason());
    }

    @Test
    void validateRejectsBadConfig() {
        Queue q = new Queue(memory, 16);
        q.setSize(12);
        assertEquals(QueueException.Reason.INVALID_CONFIG, assertThrows(QueueException.class, q::validate).reason());
        q.setSize(32);
        assertThrows(QueueException.class, q::validate);
        q.setSize(16);
        q.setDescTable(0x1008);
        assertThrows(QueueException.class, q::validate);
        q.setDescTable(1L << 40);
        assertThrows(QueueException.class, q::validate);
        q.setDescTable(0x1000);
        q.setAvailRing(0x2000);
        q.setUsedRing(0x3000);
        q.validate();
    }

    @Test
    void aRetiredQueueNeitherPopsNorReturns() {
        Queue q = queue(0);
        driver.add(Seg.writable(4));
        int head = q.pop().orElseThrow().head();
        driver.add(Seg.writable(4));
        q.retire();
        assertTrue(q.pop().isEmpty());
        q.addUsed(head, 4);
        assertEquals(0, driver.usedIdx(), "a late request of a reset device reached the ring");
        assertFalse(q.needsNotification());
    }

    @Test
    void noInterruptFlagSuppressesNotification() {
        Queue q = queue(0);
        driver.add(Seg.writable(1));
        q.addUsed(q.pop().orElseThrow().head(), 1);
        assertTrue(q.needsNotification());
        driver.setAvailFlags(Queue.VRING_AVAIL_F_NO_INTERRUPT);
        driver.add(Seg.writable(1));
        q.addUsed(q.pop().orElseThrow().head(), 1);
        assertFalse(q.needsNotification());
    }

    @Test
    void eventIdxNotifiesOnlyWhenUsedEventIsCrossed() {
        Queue q = queue(VirtioFeatures.bit(VirtioFeatures.RING_F_EVENT_IDX));
        driver.setUsedEvent(0); // interrupt after the first used entry
        driver.add(Seg.writable(1));
        q.addUsed(q.pop().orElseThrow().head(), 1);
        assertTrue(q.needsNotification());
        driver.setUsedEvent(2); // not until used idx passes 2, i.e. becomes 3
        driver.add(Seg.writable(1));
        q.addUsed(q.pop().orElseThrow().head(), 1);
        assertFalse(q.needsNotification(), "used idx 2 does not cross used_event 2");
        driver.add(Seg.writable(1));
        q.addUsed(q.pop().orElseThrow().head(), 1);
        assertTrue(q.needsNotification(), "used idx 3 crosses used_event 2");
        assertFalse(q.needsNotification(), "nothing new since");
    }

    @Test
    void eventIdxPublishesAvailEvent() {
        Queue q = queue(VirtioFeatures.bit(VirtioFeatures.RING_F_EVENT_IDX));
        driver.add(Seg.writable(1));
        driver.add(Seg.writable(1));
        q.pop().orElseThrow();
        q.pop().orElseThrow();
        assertTrue(q.pop().isEmpty());
        assertEquals(2, driver.availEvent(), "notify me when avail idx 2 is published");
    }

    // ---- issue 16: what one chain may cost the device ----

    /** An indirect table of {@code n} descriptors linked in order; its address. */
    private long linkedTable(int n) {
        long table = driver.allocate(16 * n);
        for (int i = 0; i < n; i++) {
            driver.writeDescAt(table, i, MockQueue.DATA_BASE, 4, i < n - 1 ? Descriptor.F_NEXT : 0, i + 1);
        }
        return table;
    }

    /** 2.7.5.3.1: a chain, indirect table included, is no longer than the queue. */
    @Test
    void aChainThroughAnIndirectTableIsCappedAtTheQueueSize() {
        Queue q = queue(VirtioFeatures.bit(VirtioFeatures.RING_F_INDIRECT_DESC));
        driver.writeDesc(0, linkedTable(17), 16 * 17, Descriptor.F_INDIRECT, 0);
        driver.publish(0);
        assertRejected(q, QueueException.Reason.DESC_CHAIN_TOO_LONG);
    }

    @Test
    void directAndIndirectDescriptorsCountTogether() {
        Queue q = queue(VirtioFeatures.bit(VirtioFeatures.RING_F_INDIRECT_DESC));
        for (int i = 0; i < 9; i++) {
            driver.writeDesc(i, MockQueue.DATA_BASE, 4, Descriptor.F_NEXT, i + 1);
        }
        driver.writeDesc(9, linkedTable(8), 16 * 8, Descriptor.F_INDIRECT, 0);
        driver.publish(0);
        assertRejected(q, QueueException.Reason.DESC_CHAIN_TOO_LONG); // 9 + 8 descriptors in a queue of 16
    }

    /**
     * A driver that makes a chain available again before the device returned it would give an
     * asynchronous device (9P) an unbounded number of requests in flight.
     */
    @Test
    void aHeadStillInFlightCannotBeMadeAvailableAgain() {
        Queue q = queue(0);
        driver.writeDesc(0, MockQueue.DATA_BASE, 4, 0, 0);
        driver.publish(0);
        q.pop().orElseThrow();
        driver.publish(0);
        assertRejected(q, QueueException.Reason.HEAD_IN_FLIGHT);
    }

    @Test
    void aReturnedHeadMayBeMadeAvailableAgain() {
        Queue q = queue(0);
        driver.writeDesc(0, MockQueue.DATA_BASE, 4, 0, 0);
        for (int i = 0; i < 40; i++) {
            driver.publish(0);
            q.addUsed(q.pop().orElseThrow().head(), 0);
        }
        assertEquals(40, driver.usedIdx());
    }

    @Test
    void addUsedRefusesAHeadTheDeviceDoesNotHold() {
        Queue q = queue(0);
        driver.add(Seg.writable(4));
        int head = q.pop().orElseThrow().head();
        q.addUsed(head, 4);
        QueueException e = assertThrows(QueueException.class, () -> q.addUsed(head, 4));
        assertEquals(QueueException.Reason.USED_INDEX_OUT_OF_RANGE, e.reason());
        assertEquals(1, driver.usedIdx(), "returned once");
    }

    @Test
    void aSnapshotOfTheRingPositionsCarriesOnInANewQueue() {
        Queue q = queue(VirtioFeatures.bit(VirtioFeatures.RING_F_EVENT_IDX));
        for (int i = 0; i < 3; i++) {
            driver.add(Seg.writable(4));
            q.addUsed(q.pop().orElseThrow().head(), 4);
            q.needsNotification();
        }
        driver.add(Seg.readable(bytes("after")));
        QueueState state = q.state();
        assertEquals(3, state.nextAvail());
        Queue restored = new Queue(memory, 16);
        restored.restore(state);
        restored.setFeatures(VirtioFeatures.bit(VirtioFeatures.RING_F_EVENT_IDX));
        restored.validate();
        assertEquals(state, restored.state());
        DescriptorChain chain = restored.pop().orElseThrow();
        assertArrayEquals(bytes("after"), chain.readAll(100));
        restored.addUsed(chain.head(), 0);
        for (int i = 0; i < 3; i++) {
            driver.nextUsed().orElseThrow();
        }
        assertEquals(new MockQueue.Used(chain.head(), 0), driver.nextUsed().orElseThrow());
    }

    @Test
    void noSnapshotWhileAChainIsInFlight() {
        Queue q = queue(0);
        driver.add(Seg.writable(4));
        DescriptorChain chain = q.pop().orElseThrow();
        assertThrows(IllegalStateException.class, q::state);
        q.addUsed(chain.head(), 0);
        assertEquals(1, q.state().nextUsed());
    }

    @Test
    void restoredRingPositionsAreSixteenBit() {
        Queue q = new Queue(memory, 16);
        assertThrows(QueueException.class, () -> q.restore(new QueueState(16, true, 0, 0, 0, 0x10000, 0, 0, false)));
        assertThrows(QueueException.class, () -> q.restore(new QueueState(16, true, 0, 0, 0, 0, -1, 0, false)));
    }
}
