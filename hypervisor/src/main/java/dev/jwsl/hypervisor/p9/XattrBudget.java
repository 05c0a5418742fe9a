package dev.jwsl.hypervisor.p9;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The heap one connection's xattr values may hold between requests. A Txattrwalk value waits for
 * its Treads and a Txattrcreate value for its Twrites and Tclunk, each up to 64 KiB, for as long
 * as the guest keeps the fid: without a bound, 4096 fids pin 256 MiB.
 */
final class XattrBudget {
    private final long limit;
    private final AtomicLong used = new AtomicLong();

    XattrBudget(long limit) {
        this.limit = limit;
    }

    /** Bytes held now. */
    long used() {
        return used.get();
    }

    /** Takes {@code n} bytes, or fails with {@code errno} if that would pass the bound. */
    Charge take(long n, int errno) {
        for (;;) {
            long u = used.get();
            if (u + n > limit) {
                throw new P9Error(errno, "xattr values pending on this connection: " + u + " bytes");
            }
            if (used.compareAndSet(u, u + n)) {
                return new Charge(n);
            }
        }
    }

    /** Bytes taken for one fid's value, given back once when the fid goes (clunk, error, or the connection's end). */
    final class Charge {
        private final long bytes;
        private final AtomicBoolean returned = new AtomicBoolean();

        private Charge(long bytes) {
            this.bytes = bytes;
        }

        void giveBack() {
            if (returned.compareAndSet(false, true)) {
                used.addAndGet(-bytes);
            }
        }
    }
}
