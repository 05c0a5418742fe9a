package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;
import dev.jwsl.hypervisor.virtio.Descriptor;
import dev.jwsl.hypervisor.virtio.VirtioFeatures;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static dev.jwsl.hypervisor.devices.virtio.transport.FuzzTarget.pick;
import static dev.jwsl.hypervisor.devices.virtio.transport.MmioTransport.*;

/**
 * A hostile virtio-mmio driver: each {@link #step} is one random but plausible thing a guest
 * kernel could do to the device (a status transition, legal or not, feature negotiation, queue
 * set-up, requests or raw descriptors in its rings, index jumps, notifications, configuration
 * and register accesses). It keeps its own view of where its rings are, as a driver does, and
 * does not care whether the device agreed.
 */
final class TransportFuzzer {
    /** Each queue's rings: 128 KiB apart from here, enough for 1024 entries. */
    static final long RING_BASE = 0x10000, RING_STRIDE = 0x20000;
    /** Each queue's buffers: its own window from here, reused round robin. */
    static final long DATA_BASE = 0x100000, DATA_WINDOW = 4L << 20;
    private static final int[] REGISTERS = {MAGIC_VALUE, VERSION, DEVICE_ID, VENDOR_ID, DEVICE_FEATURES,
            DEVICE_FEATURES_SEL, DRIVER_FEATURES, DRIVER_FEATURES_SEL, QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM, QUEUE_READY,
            QUEUE_NOTIFY, INTERRUPT_STATUS, INTERRUPT_ACK, STATUS, QUEUE_DESC_LOW, QUEUE_DESC_HIGH, QUEUE_DRIVER_LOW,
            QUEUE_DRIVER_HIGH, QUEUE_DEVICE_LOW, QUEUE_DEVICE_HIGH, SHM_LEN_LOW, SHM_BASE_HIGH, CONFIG_GENERATION};
    private static final int[] STATUS_BITS = {ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK};

    private final Random rnd;
    private final VirtioDriver driver;
    private final FuzzTarget target;
    private final GuestMemory memory;
    private final long ramEnd;
    private final List<Integer> maxSizes;
    private final MockQueue[] rings;
    private long features;
    private long activeSteps;
    private long used;

    TransportFuzzer(long seed, VirtioDriver driver, FuzzTarget target, GuestMemory memory, long ramEnd) {
        this.rnd = new Random(seed);
        this.driver = driver;
        this.target = target;
        this.memory = memory;
        this.ramEnd = ramEnd;
        this.maxSizes = target.device().queueMaxSizes();
        this.rings = new MockQueue[maxSizes.size()];
        for (int q = 0; q < rings.length; q++) {
            rings[q] = ring(q, maxSizes.get(q));
        }
        this.features = target.device().availableFeatures();
    }

    private MockQueue ring(int queue, int size) {
        long data = DATA_BASE + queue * DATA_WINDOW;
        return new MockQueue(memory, size, RING_BASE + queue * RING_STRIDE, data, data + DATA_WINDOW);
    }

    /** Fresh rings of the largest size on every queue, as a driver that starts over allocates them. */
    List<MockQueue> freshRings() {
        for (int q = 0; q < rings.length; q++) {
            rings[q] = ring(q, maxSizes.get(q));
        }
        return List.of(rings);
    }

    /** One kind of step, and how often it comes (out of the sum of all weights). */
    private record Move(int weight, Runnable action) {}

    private final List<Move> moves = List.of(
            new Move(4, this::bringUp),
            new Move(1, this::reconfigureRunning),
            new Move(4, this::status),
            new Move(3, this::negotiate),
            new Move(6, this::queueRegister),
            new Move(3, this::setUpQueue),
            new Move(40, this::requests),
            new Move(5, this::rawDescriptors),
            new Move(2, this::ringIndices),
            new Move(18, this::notifyQueue),
            new Move(7, this::configAccess),
            new Move(7, this::anyAccess));
    private final int totalWeight = moves.stream().mapToInt(Move::weight).sum();

    void step() {
        if ((driver.status() & DEVICE_NEEDS_RESET) != 0 && rnd.nextInt(8) == 0) {
            bringUp(); // a driver that notices DEVICE_NEEDS_RESET starts over, soon or late
        } else {
            int r = rnd.nextInt(totalWeight);
            for (Move m : moves) {
                r -= m.weight();
                if (r < 0) {
                    m.action().run();
                    break;
                }
            }
        }
        target.hostStep(rnd);
        if (driver.status() == (ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)) {
            activeSteps++;
        }
        for (MockQueue ring : rings) {
            while (ring.nextUsed().isPresent()) {
                used++; // a driver takes its used buffers back
            }
        }
    }

    /** Steps after which the device was running and did not need a reset. */
    long activeSteps() {
        return activeSteps;
    }

    /** Buffers the device returned to the driver. */
    long used() {
        return used;
    }

    /** The whole initialisation, with the device's features or a random subset of them. */
    private void bringUp() {
        driver.reset();
        long offered = target.device().availableFeatures();
        features = rnd.nextBoolean() ? offered : offered & rnd.nextLong() | VirtioFeatures.bit(VirtioFeatures.F_VERSION_1);
        driver.negotiate(features);
        for (int q = 0; q < rings.length; q++) {
            if (rnd.nextInt(8) != 0) {
                rings[q] = ring(q, maxSizes.get(q));
                driver.setUpQueue(q, rings[q]);
            }
        }
        driver.driverOk();
    }

    private void status() {
        int now = driver.status();
        int v = switch (rnd.nextInt(10)) {
            case 0, 1 -> 0;
            case 2, 3, 4 -> now | nextStatusBit(now);
            case 5, 6 -> rnd.nextInt(256);
            case 7, 8 -> now & ~STATUS_BITS[rnd.nextInt(4)];
            default -> now | FAILED;
        };
        driver.writeStatus(v);
    }

    /**
     * Issue 16's finding 1 as a move: take DRIVER_OK back, set a queue up again (huge, or
     * elsewhere) and set DRIVER_OK again, as if the device had been reset.
     */
    private void reconfigureRunning() {
        int q = rnd.nextInt(rings.length);
        driver.writeStatus(driver.status() & ~DRIVER_OK);
        driver.write(QUEUE_SEL, q);
        driver.write(QUEUE_READY, 0);
        driver.write(QUEUE_NUM, pick(rnd, 0x7fffffff, 0x10000, maxSizes.get(q) * 2, maxSizes.get(q)));
        driver.write(QUEUE_DESC_LOW, (int) rings[q].desc);
        driver.write(QUEUE_READY, 1);
        if (rnd.nextBoolean()) {
            driver.writeStatus(driver.status() | DRIVER_OK);
        }
    }

    /** The bit a driver sets next (3.1.1): ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK. */
    private static int nextStatusBit(int now) {
        for (int bit : STATUS_BITS) {
            if ((now & bit) == 0) {
                return bit;
            }
        }
        return 0;
    }

    private void negotiate() {
        driver.write(DEVICE_FEATURES_SEL, pick(rnd, 0, 1, 2, rnd.nextInt()));
        driver.read(DEVICE_FEATURES);
        int sel = pick(rnd, 0, 1, 1, 2, rnd.nextInt());
        driver.write(DRIVER_FEATURES_SEL, sel);
        long offered = target.device().availableFeatures();
        driver.write(DRIVER_FEATURES, rnd.nextBoolean() ? (int) (offered >>> (sel == 1 ? 32 : 0)) : rnd.nextInt());
    }

    private void queueRegister() {
        int q = rnd.nextInt(rings.length);
        driver.write(QUEUE_SEL, pick(rnd, q, q, q, rings.length, -1, rnd.nextInt()));
        int max = maxSizes.get(q);
        long ring = rings[q].desc;
        switch (rnd.nextInt(6)) {
            case 0 -> driver.write(QUEUE_NUM, pick(rnd, max, max / 2, 1, 0, 3, max * 2, 0x7fffffff, -1, 0x10000));
            case 1 -> driver.write(QUEUE_READY, pick(rnd, 0, 1, 1, 2));
            case 2 -> driver.write(pick(rnd, QUEUE_DESC_LOW, QUEUE_DRIVER_LOW, QUEUE_DEVICE_LOW),
                    (int) pick(rnd, ring, ring + 1, ring + 0x1000, 0, ramEnd - 8, 0xffff_fff0L));
            case 3 -> driver.write(pick(rnd, QUEUE_DESC_HIGH, QUEUE_DRIVER_HIGH, QUEUE_DEVICE_HIGH), pick(rnd, 0, 0, 1, -1));
            default -> driver.read(pick(rnd, QUEUE_NUM_MAX, QUEUE_READY));
        }
    }

    /** Properly, but perhaps smaller than the maximum, and at any point of the status sequence. */
    private void setUpQueue() {
        int q = rnd.nextInt(rings.length);
        int max = maxSizes.get(q);
        rings[q] = ring(q, pick(rnd, max, max, max / 2, Math.min(max, 16), 1));
        driver.setUpQueue(q, rings[q]);
    }

    /** One to four requests on a queue, direct or through an indirect table, mostly notified. */
    private void requests() {
        int q = rnd.nextInt(rings.length);
        for (int i = rnd.nextInt(4); i >= 0; i--) {
            List<Seg> segs = target.request(q, rnd);
            if (segs.size() > rings[q].size()) {
                continue; // a driver cannot put more in the ring than it has
            }
            Seg[] chain = segs.toArray(Seg[]::new);
            if (VirtioFeatures.has(features, VirtioFeatures.RING_F_INDIRECT_DESC) && rnd.nextInt(4) == 0) {
                rings[q].addIndirect(chain);
            } else {
                rings[q].add(chain);
            }
        }
        if (rnd.nextInt(5) != 0) {
            driver.notify(q);
        }
    }

    /** Descriptors with random fields (loops, out-of-range indices and buffers) and heads published. */
    private void rawDescriptors() {
        int q = rnd.nextInt(rings.length);
        MockQueue ring = rings[q];
        int size = ring.size();
        long data = DATA_BASE + q * DATA_WINDOW;
        for (int i = rnd.nextInt(8); i >= 0; i--) {
            int index = rnd.nextInt(size);
            long address = pick(rnd, data + rnd.nextInt((int) DATA_WINDOW - 4096), data, ramEnd - 16, ramEnd, 1L << 40,
                    ring.desc, rnd.nextLong());
            int length = pick(rnd, 0, 1, 16, 44, 512, 4096, 0x10000, -1, rnd.nextInt());
            int next = pick(rnd, rnd.nextInt(size), rnd.nextInt(size), index, size, rnd.nextInt(0x10000));
            ring.writeDesc(index, address, length, rnd.nextInt(8), next);
        }
        for (int i = rnd.nextInt(3); i >= 0; i--) {
            ring.publish(pick(rnd, rnd.nextInt(size), rnd.nextInt(size), size, rnd.nextInt(0x10000)));
        }
        if (rnd.nextBoolean()) {
            driver.notify(q);
        }
    }

    private void ringIndices() {
        MockQueue ring = rings[rnd.nextInt(rings.length)];
        switch (rnd.nextInt(4)) {
            case 0 -> ring.setAvailIdx(rnd.nextInt(0x10000));
            case 1 -> ring.setAvailIdx(ring.usedIdx() + ring.size() + 1);
            case 2 -> ring.setAvailFlags(rnd.nextInt(2));
            default -> ring.setUsedEvent(rnd.nextInt(0x10000));
        }
    }

    private void notifyQueue() {
        int q = rnd.nextInt(rings.length);
        switch (rnd.nextInt(10)) {
            case 0 -> driver.notify(rnd.nextInt());
            case 1 -> driver.transport().notifyQueue(q); // the ioeventfd path
            default -> driver.notify(q);
        }
    }

    private void configAccess() {
        long offset = CONFIG + (rnd.nextInt(4) == 0 ? rnd.nextInt((int) MmioTransport.SIZE - CONFIG) : rnd.nextInt(72));
        int width = pick(rnd, 1, 2, 4, 8);
        if (rnd.nextInt(4) == 0) {
            driver.write(offset, width, rnd.nextLong());
        } else {
            driver.read(offset, width);
        }
    }

    /** Any register, any width, any alignment: reads, interrupt acknowledgements, and writes of anything. */
    private void anyAccess() {
        long offset = rnd.nextBoolean() ? REGISTERS[rnd.nextInt(REGISTERS.length)] : rnd.nextInt(CONFIG);
        int width = pick(rnd, 4, 4, 4, 1, 2, 8);
        switch (rnd.nextInt(4)) {
            case 0 -> driver.write(INTERRUPT_ACK, rnd.nextInt(4));
            case 1 -> driver.write(offset, width, rnd.nextLong());
            default -> driver.read(offset, width);
        }
    }
}
