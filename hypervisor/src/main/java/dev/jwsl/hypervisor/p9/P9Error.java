package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

/**
 * A request failed with a Linux errno, answered as Rlerror. Failed lookups are routine (every
 * {@code stat} of a missing name), so this carries no stack trace.
 */
public final class P9Error extends RuntimeException {
    private final int errno;

    public P9Error(int errno) {
        this(errno, null);
    }

    public P9Error(int errno, String what) {
        super(what == null ? Errno.describe(errno) : what + ": " + Errno.describe(errno), null, false, false);
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }
}
