package dev.jwsl.hypervisor.boot;

/** A kernel, initramfs or boot structure that cannot be set up. */
public final class BootException extends RuntimeException {
    /** Why. */
    public enum Reason {
        /** The file is neither a bzImage nor an x86-64 ELF vmlinux. */
        NOT_A_KERNEL,
        /** A kernel too old or built without 64-bit entry support. */
        UNSUPPORTED_KERNEL,
        /** The kernel, initramfs or tables do not fit in guest RAM. */
        DOES_NOT_FIT,
        /** The command line is longer than the kernel accepts. */
        CMDLINE_TOO_LONG,
        /** A file could not be read. */
        READ_FAILED,
        /** Too many vCPUs or memory ranges for the boot tables. */
        TOO_MANY_ENTRIES,
    }

    private final Reason reason;

    public BootException(Reason reason, String message) {
        this(reason, message, null);
    }

    public BootException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
