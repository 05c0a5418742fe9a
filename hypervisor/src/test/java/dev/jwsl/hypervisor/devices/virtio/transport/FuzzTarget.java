package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;
import dev.jwsl.hypervisor.virtio.VirtioDevice;

import java.util.List;
import java.util.Random;

/**
 * One device type as {@link TransportFuzzer} drives it: the device, what its requests look like
 * (so that random rings reach past the header checks into request handling), its host side, and
 * what a well-behaved driver expects of it.
 */
sealed interface FuzzTarget extends AutoCloseable permits RngTarget, BlockTarget, P9Target, VsockTarget, NetTarget {
    VirtioDevice device();

    /**
     * The buffers of one request on queue {@code queue}: mostly well-formed, sometimes not.
     * Readable buffers come first unless the request is meant to be malformed.
     */
    List<Seg> request(int queue, Random rnd);

    /** Host-side activity between driver steps (connections, frames for the guest); none by default. */
    default void hostStep(Random rnd) {}

    /**
     * A well-behaved driver's check, on a device just brought up on {@code rings}, that it serves
     * requests again.
     *
     * @throws AssertionError if it does not
     */
    void checkWorks(VirtioDriver driver, List<MockQueue> rings);

    /** Exceptions the device threw where nothing would have caught them (a backend's thread). */
    default List<Throwable> escaped() {
        return List.of();
    }

    @Override
    void close();

    static int pick(Random rnd, int... values) {
        return values[rnd.nextInt(values.length)];
    }

    static long pick(Random rnd, long... values) {
        return values[rnd.nextInt(values.length)];
    }

    /** {@code n} random bytes. */
    static byte[] bytes(Random rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    /** {@code data} as one readable buffer or split in two, as a driver's scatter list may be. */
    static List<Seg> readable(Random rnd, byte[] data) {
        if (data.length < 2 || rnd.nextBoolean()) {
            return List.of(Seg.readable(data));
        }
        int cut = 1 + rnd.nextInt(data.length - 1);
        return List.of(Seg.readable(java.util.Arrays.copyOf(data, cut)),
                Seg.readable(java.util.Arrays.copyOfRange(data, cut, data.length)));
    }
}
