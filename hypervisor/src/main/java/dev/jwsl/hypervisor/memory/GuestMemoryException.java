package dev.jwsl.hypervisor.memory;

/** A guest-memory access or set-up that cannot be done. */
public final class GuestMemoryException extends RuntimeException {
    /** Why. */
    public enum Reason {
        /** The range is not entirely inside one guest RAM region. */
        OUT_OF_RANGE,
        /** The host could not map the memory. */
        MMAP_FAILED,
        /** The requested size is zero, unaligned or larger than the host has. */
        BAD_SIZE,
    }

    private final Reason reason;

    public GuestMemoryException(Reason reason, String message) {
        this(reason, message, null);
    }

    public GuestMemoryException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
