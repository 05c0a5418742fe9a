package dev.jwsl.hypervisor.sys;

/** A failed libc call: which call, and the errno it left. */
public final class SysCallException extends RuntimeException {
    private final String call;
    private final int errno;

    public SysCallException(String call, int errno) {
        super(call + ": " + Errno.describe(errno));
        this.call = call;
        this.errno = errno;
    }

    /** The call that failed, e.g. {@code "open(/dev/kvm)"} or {@code "ioctl(KVM_RUN)"}. */
    public String call() {
        return call;
    }

    /** The errno the call left. */
    public int errno() {
        return errno;
    }
}
