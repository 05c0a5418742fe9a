package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.testutil.MockQueue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static dev.jwsl.hypervisor.devices.virtio.transport.MmioTransport.*;

/**
 * The guest driver's side of a virtio-mmio register window, for tests without KVM: accesses go
 * to the transport as the vCPU thread would pass them on, and the well-behaved sequences
 * (negotiation, queue set-up, DRIVER_OK) are what Linux's virtio_mmio driver writes.
 */
public final class VirtioDriver implements AutoCloseable {
    private final MmioTransport transport;
    private final Arena arena = Arena.ofConfined();
    /** One buffer for every access: a fuzzer makes millions, and the transport copies out of it. */
    private final MemorySegment scratch = arena.allocate(8, 8);

    public VirtioDriver(MmioTransport transport) {
        this.transport = transport;
    }

    public MmioTransport transport() {
        return transport;
    }

    /** A 32-bit register read. */
    public int read(int offset) {
        return (int) read(offset, 4);
    }

    /** A 32-bit register write. */
    public void write(int offset, int value) {
        write(offset, 4, value);
    }

    /** A read of any width (1, 2, 4 or 8 bytes) at any offset of the window. */
    public long read(long offset, int width) {
        MemorySegment s = scratch.asSlice(0, width);
        transport.read(offset, s);
        return switch (width) {
            case 1 -> s.get(ValueLayout.JAVA_BYTE, 0) & 0xffL;
            case 2 -> s.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0) & 0xffffL;
            case 4 -> s.get(ValueLayout.JAVA_INT_UNALIGNED, 0) & 0xffff_ffffL;
            default -> s.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
        };
    }

    /** A write of any width (1, 2, 4 or 8 bytes) at any offset of the window. */
    public void write(long offset, int width, long value) {
        MemorySegment s = scratch.asSlice(0, width);
        for (int i = 0; i < width; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) (value >>> (8 * i)));
        }
        transport.write(offset, s);
    }

    public int status() {
        return read(STATUS);
    }

    public void writeStatus(int value) {
        write(STATUS, value);
    }

    /** Writes 0 to the status register and, as 2.4 asks, sees it read back as 0. */
    public void reset() {
        write(STATUS, 0);
        if (status() != 0) {
            throw new AssertionError("status reads " + status() + " after a reset");
        }
    }

    /** ACKNOWLEDGE, DRIVER, the driver's features and FEATURES_OK (3.1.1 steps 2 to 5). */
    public void negotiate(long features) {
        write(STATUS, ACKNOWLEDGE);
        write(STATUS, ACKNOWLEDGE | DRIVER);
        write(DRIVER_FEATURES_SEL, 0);
        write(DRIVER_FEATURES, (int) features);
        write(DRIVER_FEATURES_SEL, 1);
        write(DRIVER_FEATURES, (int) (features >>> 32));
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    }

    /** Points queue {@code index} at {@code ring}'s rings and enables it. */
    public void setUpQueue(int index, MockQueue ring) {
        setUpQueue(index, ring, ring.size());
    }

    /** As above, telling the device {@code size} entries whatever the ring holds. */
    public void setUpQueue(int index, MockQueue ring, int size) {
        write(QUEUE_SEL, index);
        write(QUEUE_NUM, size);
        write(QUEUE_DESC_LOW, (int) ring.desc);
        write(QUEUE_DESC_HIGH, (int) (ring.desc >>> 32));
        write(QUEUE_DRIVER_LOW, (int) ring.avail);
        write(QUEUE_DRIVER_HIGH, (int) (ring.avail >>> 32));
        write(QUEUE_DEVICE_LOW, (int) ring.used);
        write(QUEUE_DEVICE_HIGH, (int) (ring.used >>> 32));
        write(QUEUE_READY, 1);
    }

    public void driverOk() {
        write(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    }

    /** The whole initialisation (3.1.1) from a reset: queue {@code i} gets {@code rings.get(i)}. */
    public void bringUp(long features, List<MockQueue> rings) {
        reset();
        negotiate(features);
        for (int i = 0; i < rings.size(); i++) {
            setUpQueue(i, rings.get(i));
        }
        driverOk();
        int want = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK;
        if (status() != want) {
            throw new AssertionError("status 0x" + Integer.toHexString(status()) + " after a correct initialisation");
        }
    }

    /** QueueNotify, as a vCPU exit delivers it. */
    public void notify(int queue) {
        write(QUEUE_NOTIFY, queue);
    }

    @Override
    public void close() {
        arena.close();
    }
}
