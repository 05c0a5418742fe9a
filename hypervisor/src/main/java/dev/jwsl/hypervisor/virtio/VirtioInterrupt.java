package dev.jwsl.hypervisor.virtio;

/** How a device interrupts its driver; the transport decides how (an irqfd for virtio-mmio). */
public interface VirtioInterrupt {
    /** Used buffers were added to queue {@code queue}; call only if {@link Queue#needsNotification()}. */
    void signalUsed(int queue);

    /** The device configuration space changed (4.2.2: InterruptStatus bit 1). */
    void signalConfigChange();

    /**
     * The device found the driver's buffers malformed (or failed itself) outside a queue
     * notification, e.g. on a backend thread: the transport sets DEVICE_NEEDS_RESET (2.1.2).
     */
    void signalNeedsReset(Exception cause);
}
