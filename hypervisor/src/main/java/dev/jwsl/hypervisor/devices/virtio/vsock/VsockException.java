package dev.jwsl.hypervisor.devices.virtio.vsock;

/** A vsock packet from the guest that cannot be parsed, or one that does not fit a receive buffer. */
public final class VsockException extends RuntimeException {
    /** What was wrong. */
    public enum Reason {
        /** The readable part of a TX chain is shorter than the 44-byte header. */
        HEADER_TOO_SHORT,
        /** The header's len exceeds the readable bytes after it. */
        PAYLOAD_MISSING,
        /** The header's len exceeds {@link VsockConstants#MAX_PKT_PAYLOAD}. */
        PAYLOAD_TOO_LONG,
        /** A receive buffer cannot hold the packet. */
        RX_BUFFER_TOO_SMALL,
    }

    private final Reason reason;

    public VsockException(Reason reason, String message) {
        super(reason + ": " + message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
