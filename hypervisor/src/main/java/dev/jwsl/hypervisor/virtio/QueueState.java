package dev.jwsl.hypervisor.virtio;

/**
 * What the device side of a queue holds beyond guest memory, for a snapshot: the driver's
 * configuration and the device's ring positions. Taken only when no chain is in flight.
 */
public record QueueState(int size, boolean ready, long descTable, long availRing, long usedRing,
                         int nextAvail, int nextUsed, int signalledUsed, boolean signalledValid) {}
