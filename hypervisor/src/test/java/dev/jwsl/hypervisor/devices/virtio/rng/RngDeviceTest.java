package dev.jwsl.hypervisor.devices.virtio.rng;

import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RngDeviceTest {
    private final MmapGuestMemory memory = MockQueue.memory();
    private final MockQueue driver = new MockQueue(memory, 16);
    private final AtomicInteger interrupts = new AtomicInteger();
    private final RngDevice device = new RngDevice(new Random(7));

    @AfterEach
    void close() {
        memory.close();
    }

    private void activate() {
        Queue q = driver.deviceQueue(RngDevice.QUEUE_SIZE, device.availableFeatures() & ~(3L << 28));
        device.activate(memory, List.of(q), new VirtioInterrupt() {
            @Override public void signalUsed(int queue) { interrupts.incrementAndGet(); }
            @Override public void signalConfigChange() { }
            @Override public void signalNeedsReset(Exception cause) { }
        });
    }

    @Test
    void fillsWritableBuffersWithRandomBytes() {
        activate();
        MockQueue.Chain c = driver.add(Seg.writable(32), Seg.writable(32));
        device.queueNotify(0);
        assertEquals(new MockQueue.Used(c.head(), 64), driver.nextUsed().orElseThrow());
        byte[] expected = new byte[64];
        new Random(7).nextBytes(expected);
        byte[] got = new byte[64];
        System.arraycopy(driver.read(c.addresses().get(0), 32), 0, got, 0, 32);
        System.arraycopy(driver.read(c.addresses().get(1), 32), 0, got, 32, 32);
        assertArrayEquals(expected, got);
        assertEquals(1, interrupts.get());
    }

    @Test
    void capsEachRequest() {
        activate();
        driver.add(Seg.writable(RngDevice.MAX_REQUEST + 100));
        device.queueNotify(0);
        assertEquals(RngDevice.MAX_REQUEST, driver.nextUsed().orElseThrow().length());
    }

    @Test
    void aReadOnlyBufferGetsNothing() {
        activate();
        driver.add(Seg.readable(new byte[8]));
        driver.add(Seg.writable(4));
        device.queueNotify(0);
        assertEquals(0, driver.nextUsed().orElseThrow().length());
        assertEquals(4, driver.nextUsed().orElseThrow().length());
        assertTrue(driver.nextUsed().isEmpty());
    }
}
