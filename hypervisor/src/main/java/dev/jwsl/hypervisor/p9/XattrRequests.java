package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.memory.Scatter;
import dev.jwsl.hypervisor.sys.Errno;

import java.util.List;

/**
 * Extended attributes, which 9P2000.L moves through fids of their own: Txattrwalk makes a fid
 * whose Tread gives the value (or the name list); Txattrcreate turns a fid into one whose Twrite
 * fills a value that Tclunk then sets. The values wait in the heap between those requests, taken
 * from the connection's {@link XattrBudget}: past it, Txattrwalk is ENOMEM and Txattrcreate
 * ENOSPC, which v9fs hands to getxattr(2) and setxattr(2) as they are (ENOSPC is setxattr's own
 * "no room for the attribute"; ERANGE or E2BIG would tell the caller to retry larger or give up
 * on an attribute that a later call could read).
 */
record XattrRequests(FidTable fids, XattrBudget budget) {
    /** XATTR_SIZE_MAX: the largest value Linux sets. */
    private static final int MAX_VALUE = 65536;

    void xattrwalk(P9Reader in, P9Writer out, List<Fid> held) {
        int fidNo = in.u32();
        Fid f = fids.use(fidNo, held);
        int newNo = in.u32();
        byte[] name = in.name();
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (newNo != fidNo) {
            fids.requireUnused(newNo);
        }
        byte[] value;
        if (f.isSymlink()) {
            // the path calls below would follow the link: a symlink's only answer is "no attributes"
            if (name.length > 0) {
                throw new P9Error(Errno.ENODATA);
            }
            value = new byte[0];
        } else {
            String path = HostFs.procPath(f.pathFd);
            value = name.length == 0 ? HostFs.listxattr(path) : HostFs.getxattr(path, name);
        }
        XattrBudget.Charge charge = budget.take(value.length, Errno.ENOMEM);
        Fid x = new Fid(f.share, -1, f.user, f.qid);
        x.xattrRead = value;
        x.xattrCharge = charge;
        fids.install(newNo, x);
        out.u64(value.length);
    }

    void xattrcreate(P9Reader in, List<Fid> held) {
        int n = in.u32();
        Fid f = fids.use(n, held);
        byte[] name = in.name();
        long size = in.u64();
        int flags = in.u32();
        if (size < 0 || size > MAX_VALUE) {
            throw new P9Error(Errno.E2BIG);
        }
        if ((flags & ~3) != 0) {
            throw new P9Error(Errno.EINVAL);
        }
        if (f.pathFd < 0 || f.isSymlink()) {
            throw new P9Error(Errno.EOPNOTSUPP);
        }
        synchronized (f) {
            if (f.isOpen()) {
                throw new P9Error(Errno.EINVAL, "fid already open");
            }
            f.xattrCharge = budget.take(size, Errno.ENOSPC);
            f.xattrWrite = new Fid.XattrWrite(name, flags, (int) size);
        }
    }

    /** Tread on a Txattrwalk fid: up to {@code count} bytes of the value from {@code offset}. */
    static long read(byte[] value, long offset, long count, Scatter into) {
        int from = (int) Math.min(offset, value.length);
        int n = (int) Math.min(count, value.length - from);
        into.write(0, value, from, n);
        return n;
    }

    /** Twrite on a Txattrcreate fid: the value arrives in order, and no longer than announced. */
    static long write(Fid f, Fid.XattrWrite x, long offset, Scatter data) {
        synchronized (f) {
            if (offset != x.written || data.length() > x.value.length - x.written) {
                throw new P9Error(Errno.EINVAL, "xattr write out of order or too long");
            }
            int n = (int) data.length();
            data.read(0, x.value, x.written, n);
            x.written += n;
            return n;
        }
    }

    /** At Tclunk: sets the value Twrite filled (an empty value with no flags removes the attribute). */
    static void commit(Fid f) {
        Fid.XattrWrite x = f.xattrWrite;
        if (x == null) {
            return;
        }
        if (x.written != x.value.length) {
            throw new P9Error(Errno.EINVAL, "xattr value shorter than announced");
        }
        Confinement.inside(f);
        String path = HostFs.procPath(f.pathFd);
        if (x.value.length == 0 && x.flags == 0) {
            HostFs.removexattr(path, x.name);
        } else {
            HostFs.setxattr(path, x.name, x.value, x.flags);
        }
    }
}
