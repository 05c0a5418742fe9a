package dev.jwsl.hypervisor.devices.virtio.rng;

import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.virtio.DescriptorChain;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.VirtioDevice;
import dev.jwsl.hypervisor.virtio.VirtioFeatures;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;

import java.security.SecureRandom;
import java.util.List;
import java.util.Optional;
import java.util.Random;

/**
 * The virtio entropy device (VIRTIO 1.2 5.4): fills each writable buffer on its one queue from a
 * {@link SecureRandom}, at most {@link #MAX_REQUEST} bytes per request so that a guest cannot make
 * the VMM allocate or generate without bound. No configuration space, no device features.
 */
public final class RngDevice implements VirtioDevice {
    /** Device type "Entropy source" (5, Table "Device Types"). */
    public static final int DEVICE_TYPE = 4;
    /** Most random bytes returned for one request. */
    public static final int MAX_REQUEST = 64 << 10;
    static final int QUEUE_SIZE = 256;

    private final Random random;
    private List<Queue> queues;
    private VirtioInterrupt interrupt;

    /** An entropy device backed by a fresh {@link SecureRandom}. */
    public RngDevice() {
        this(new SecureRandom());
    }

    /** An entropy device backed by {@code random} (tests pass a seeded one). */
    public RngDevice(Random random) {
        this.random = random;
    }

    @Override
    public int deviceType() {
        return DEVICE_TYPE;
    }

    @Override
    public long availableFeatures() {
        return VirtioFeatures.TRANSPORT;
    }

    @Override
    public void ackFeatures(long features) {
        // nothing device-specific to negotiate (5.4.3)
    }

    @Override
    public List<Integer> queueMaxSizes() {
        return List.of(QUEUE_SIZE);
    }

    @Override
    public void readConfig(long offset, byte[] data) {
        java.util.Arrays.fill(data, (byte) 0); // 5.4.4: no configuration space
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        // read-only (and empty)
    }

    @Override
    public void activate(GuestMemory memory, List<Queue> queues, VirtioInterrupt interrupt) {
        this.queues = queues;
        this.interrupt = interrupt;
    }

    @Override
    public void queueNotify(int queue) {
        Queue q = queues.get(queue);
        boolean used = false;
        for (Optional<DescriptorChain> c = q.pop(); c.isPresent(); c = q.pop()) {
            DescriptorChain chain = c.get();
            byte[] bytes = new byte[(int) Math.min(chain.writableLength(), MAX_REQUEST)];
            random.nextBytes(bytes);
            q.addUsed(chain.head(), chain.write(bytes));
            used = true;
        }
        if (used && q.needsNotification()) {
            interrupt.signalUsed(queue);
        }
    }

    @Override
    public void reset() {
        queues = null;
        interrupt = null;
    }
}
