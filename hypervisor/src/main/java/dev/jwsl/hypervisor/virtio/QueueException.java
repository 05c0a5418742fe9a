package dev.jwsl.hypervisor.virtio;

/** The driver put something on a virtqueue that the device must refuse. */
public final class QueueException extends RuntimeException {
    /** What was wrong. */
    public enum Reason {
        /** The queue's size or ring addresses are invalid (2.7: size a power of 2, rings aligned and in RAM). */
        INVALID_CONFIG,
        /** The available index moved by more than the queue size since the device last looked. */
        AVAIL_IDX_JUMP,
        /** A head or {@code next} index is not below the queue (or indirect table) size. */
        DESC_INDEX_OUT_OF_RANGE,
        /** A chain, indirect descriptors included, is longer than the queue (2.7.5.3.1): a loop, or a chain too long. */
        DESC_CHAIN_TOO_LONG,
        /** A chain the device has not returned yet was made available again. */
        HEAD_IN_FLIGHT,
        /** A buffer is not entirely inside guest RAM. */
        DESC_ADDRESS_OUT_OF_RANGE,
        /** A device-readable descriptor follows a device-writable one (2.7.4.2). */
        READABLE_AFTER_WRITABLE,
        /** An indirect descriptor without VIRTIO_F_INDIRECT_DESC negotiated. */
        INDIRECT_NOT_NEGOTIATED,
        /** An indirect table whose length is zero or not a multiple of 16 (2.7.5.3.1). */
        INDIRECT_BAD_LENGTH,
        /** An indirect descriptor inside an indirect table, or one with F_NEXT set (2.7.5.3.1). */
        INDIRECT_NESTED,
        /** The device returned a head index the driver never made available. */
        USED_INDEX_OUT_OF_RANGE,
    }

    private final Reason reason;

    public QueueException(Reason reason, String message) {
        this(reason, message, null);
    }

    public QueueException(Reason reason, String message, Throwable cause) {
        super(reason + ": " + message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
