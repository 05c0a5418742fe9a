package dev.jwsl.hypervisor.kvm;

/** A KVM operation that failed, with a reason precise enough to act on. */
public final class KvmException extends RuntimeException {
    /** Why. */
    public enum Reason {
        /** /dev/kvm does not exist: no KVM module or no hardware support. */
        NO_DEVICE,
        /** /dev/kvm exists but this user may not open it. */
        NO_PERMISSION,
        /** The device is not KVM, or speaks another API version. */
        NOT_KVM,
        /** A capability jwsl needs is missing. */
        MISSING_CAPABILITY,
        /** Any other ioctl failure. */
        IOCTL,
    }

    private final Reason reason;

    public KvmException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public KvmException(Reason reason, String message) {
        this(reason, message, null);
    }

    public Reason reason() {
        return reason;
    }
}
