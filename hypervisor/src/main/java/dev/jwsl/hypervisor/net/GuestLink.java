package dev.jwsl.hypervisor.net;

import java.lang.foreign.MemorySegment;
import java.util.function.Consumer;

/** The guest's end of the link, as a {@link NetBackend} sees it (called on the backend's thread only). */
public interface GuestLink {
    /**
     * Hands each frame the guest has queued for sending to {@code sink}, in order; each segment
     * is valid only during its call. Also where the guest gets one interrupt for the frames
     * {@linkplain #deliver delivered} since the last call: a backend calls this after every round
     * of deliveries, before it waits.
     */
    void drainTransmit(Consumer<MemorySegment> sink);

    /**
     * A frame for the guest: copied into its next receive buffer, or queued (bounded) while it has
     * posted none, or dropped when that queue is full, as a NIC drops on ring overflow.
     */
    void deliver(MemorySegment frame);
}
