package dev.jwsl.hypervisor.snapshot;

/** A snapshot that cannot be used or written; the message is one line saying why. */
public final class SnapshotException extends RuntimeException {
    public SnapshotException(String message) {
        super(message);
    }

    public SnapshotException(String message, Throwable cause) {
        super(message, cause);
    }
}
