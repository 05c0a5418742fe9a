package dev.jwsl.hypervisor.virtio;

import dev.jwsl.hypervisor.memory.GuestMemory;

import java.util.List;

/**
 * A virtio device as its transport sees it (VIRTIO 1.2 sections 2 and 5), after Firecracker's
 * {@code VirtioDevice} trait. The transport does feature negotiation, queue set-up and status
 * handling; the device sees only its queues, guest memory and a {@link VirtioInterrupt}.
 *
 * <p>Threading: the transport serializes every call on one device.
 */
public interface VirtioDevice {
    /** The device type (5: 1 net, 2 block, 4 entropy, 9 9P, 19 vsock). */
    int deviceType();

    /** Every feature bit the device offers, {@link VirtioFeatures#F_VERSION_1} included. */
    long availableFeatures();

    /** The driver accepted {@code features} (a subset of {@link #availableFeatures()}). */
    void ackFeatures(long features);

    /** The maximum size of each queue; the list's length is the number of queues. */
    List<Integer> queueMaxSizes();

    /** Reads device configuration space at {@code offset} into {@code data}; unbacked bytes read 0. */
    void readConfig(long offset, byte[] data);

    /**
     * Fills {@code data} from a device's configuration space {@code space} at {@code offset}:
     * the shared body of {@link #readConfig} for devices that build their space as bytes.
     */
    static void readConfigSpace(byte[] space, long offset, byte[] data) {
        for (int i = 0; i < data.length; i++) {
            long at = offset + i;
            data[i] = at >= 0 && at < space.length ? space[(int) at] : 0;
        }
    }

    /** A driver write to configuration space; devices without writable fields ignore it. */
    void writeConfig(long offset, byte[] data);

    /**
     * The driver set DRIVER_OK: the queues are validated and ready (one per
     * {@link #queueMaxSizes()} entry; a queue the driver did not enable is not {@link Queue#ready()}).
     * Called at most once between resets; the queues are new each time.
     */
    void activate(GuestMemory memory, List<Queue> queues, VirtioInterrupt interrupt);

    /** The driver notified queue {@code queue} that buffers are available. */
    void queueNotify(int queue);

    /**
     * Device reset (status 0): drop all state from the last activation and release what it
     * acquired (sessions, connections, host descriptors), so that the driver can start over.
     * Also called when there was no activation, or one that threw half-way.
     */
    void reset();

    /**
     * Why the device cannot be in a snapshot now (host-side state a restore could not bring
     * back, such as open connections), or null if it can. A restored device is activated afresh
     * with its queues as they were, so only driver-visible state may be in flight.
     */
    default String snapshotBlocker() {
        return null;
    }

    /** Releases host resources when the VM ends. */
    default void close() {}
}
