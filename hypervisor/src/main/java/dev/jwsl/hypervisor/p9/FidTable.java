package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static dev.jwsl.hypervisor.p9.P9Constants.NOFID;

/**
 * A connection's fids, numbered by the client. Bounded, because each fid holds up to two host
 * descriptors and the guest picks how many it makes.
 */
final class FidTable {
    private final Map<Integer, Fid> fids = new ConcurrentHashMap<>();
    private final int max;

    FidTable(int max) {
        this.max = max;
    }

    int size() {
        return fids.size();
    }

    /** The fid numbered {@code n}, referenced until the request ends (its {@code held} list is released). */
    Fid use(int n, List<Fid> held) {
        Fid f = fids.get(n);
        if (f == null || !f.acquire()) {
            throw new P9Error(Errno.EBADF, "fid " + n);
        }
        held.add(f);
        return f;
    }

    /** Numbers {@code f} as {@code n}, replacing (and releasing) what had that number. */
    void install(int n, Fid f) {
        if (fids.size() >= max && !fids.containsKey(n)) {
            f.release();
            throw new P9Error(Errno.EMFILE, "fid limit");
        }
        Fid old = fids.put(n, f);
        if (old != null) {
            old.release();
        }
    }

    void requireUnused(int n) {
        if (n == NOFID || fids.containsKey(n)) {
            throw new P9Error(Errno.EBADF, "fid " + n + " in use");
        }
    }

    /** Takes fid {@code n} out of the table (Tclunk, Tremove); the caller releases it. */
    Fid remove(int n) {
        Fid f = fids.remove(n);
        if (f == null) {
            throw new P9Error(Errno.EBADF);
        }
        return f;
    }

    /** Releases every fid (Tversion, or the connection is gone). */
    void clear() {
        for (Integer n : List.copyOf(fids.keySet())) {
            Fid f = fids.remove(n);
            if (f != null) {
                f.release();
            }
        }
    }
}
