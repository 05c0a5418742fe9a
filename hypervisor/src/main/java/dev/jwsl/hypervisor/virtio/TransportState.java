package dev.jwsl.hypervisor.virtio;

import java.util.List;

/**
 * A virtio transport's registers and queues for a snapshot: what the driver negotiated and set
 * up, so that a restored device runs on without the driver noticing.
 *
 * @param deviceType      the device behind it (a restore checks it is the same kind)
 * @param status          the device status register (2.1)
 * @param driverFeatures  the features the driver accepted
 * @param interruptStatus pending InterruptStatus bits
 * @param configGeneration the configuration generation count
 * @param queues          one per queue, in order
 */
public record TransportState(int deviceType, int status, long driverFeatures, int interruptStatus, int configGeneration,
                             List<QueueState> queues) {
    public TransportState {
        queues = List.copyOf(queues);
    }
}
