package dev.jwsl.hypervisor.p9;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * A file the client named with a fid: an {@code O_PATH} descriptor of it (symlinks not
 * followed), and once opened a second descriptor for I/O. Requests on one fid may run at once
 * (parallel reads), so a fid is reference-counted: its descriptors close only when it is clunked
 * and no request still uses it, never under a running pread (a reused descriptor number could
 * otherwise reach another file).
 */
final class Fid {
    /** A pending xattr value (Txattrcreate): written by Twrite, applied at Tclunk. */
    static final class XattrWrite {
        final byte[] name;
        final int flags;
        final byte[] value;
        int written;

        XattrWrite(byte[] name, int flags, int size) {
            this.name = name;
            this.flags = flags;
            this.value = new byte[size];
        }
    }

    final P9Server.ShareRoot share;
    /** O_PATH descriptor of the file itself; -1 for an xattr fid. */
    final int pathFd;
    /** Who requests on this fid act as, on a server running as root; null on a server that is not. */
    final HostUser user;
    final Qid qid;
    private final AtomicInteger refs = new AtomicInteger(1);
    private volatile int ioFd = -1;
    private int openFlags;
    /** Where getdents64 continues on ioFd: the cookie of the last entry it returned. */
    long dirPosition;
    /** Txattrwalk: the value (or name list) Tread returns. */
    volatile byte[] xattrRead;
    /** Txattrcreate: the value Twrite fills. */
    volatile XattrWrite xattrWrite;
    /** The connection's heap that xattrRead or xattrWrite holds, given back when the fid goes. */
    volatile XattrBudget.Charge xattrCharge;

    Fid(P9Server.ShareRoot share, int pathFd, HostUser user, Qid qid) {
        this.share = share;
        this.pathFd = pathFd;
        this.user = user;
        this.qid = qid;
    }

    boolean isDirectory() {
        return qid.type() == P9Constants.QTDIR;
    }

    boolean isSymlink() {
        return qid.type() == P9Constants.QTSYMLINK;
    }

    int ioFd() {
        return ioFd;
    }

    int openFlags() {
        return openFlags;
    }

    /** Records the I/O descriptor once; false if the fid was already open. */
    synchronized boolean setOpen(int fd, int flags) {
        if (ioFd >= 0 || xattrRead != null || xattrWrite != null) {
            return false;
        }
        ioFd = fd;
        openFlags = flags;
        return true;
    }

    synchronized boolean isOpen() {
        return ioFd >= 0 || xattrRead != null || xattrWrite != null;
    }

    /** Takes a reference for one request; false once the fid is gone. */
    boolean acquire() {
        for (;;) {
            int r = refs.get();
            if (r == 0) {
                return false;
            }
            if (refs.compareAndSet(r, r + 1)) {
                return true;
            }
        }
    }

    /** Drops a reference; the last one closes the descriptors and gives back an xattr value's heap. */
    void release() {
        if (refs.decrementAndGet() == 0) {
            HostFs.close(ioFd);
            HostFs.close(pathFd);
            XattrBudget.Charge c = xattrCharge;
            if (c != null) {
                c.giveBack();
            }
        }
    }
}
