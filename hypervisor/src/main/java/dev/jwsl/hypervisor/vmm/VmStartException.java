package dev.jwsl.hypervisor.vmm;

/** A VM that could not be built or started; the message is a complete one-line explanation. */
public final class VmStartException extends RuntimeException {
    /** Which layer refused. */
    public enum Reason {
        /** The configuration is invalid (memory, vCPUs, files). */
        CONFIG,
        /** KVM is unavailable, refused or lacks a capability. */
        KVM,
        /** The kernel or initramfs could not be loaded. */
        BOOT,
        /** Guest memory could not be mapped. */
        MEMORY,
    }

    private final Reason reason;

    public VmStartException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
