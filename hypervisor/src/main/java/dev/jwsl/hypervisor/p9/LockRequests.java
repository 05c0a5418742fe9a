package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.util.List;

import static dev.jwsl.hypervisor.p9.P9Constants.LOCK_BLOCKED;
import static dev.jwsl.hypervisor.p9.P9Constants.LOCK_ERROR;
import static dev.jwsl.hypervisor.p9.P9Constants.LOCK_SUCCESS;

/**
 * Tlock and Tgetlock: POSIX byte-range locks, as open-file-description locks on the fid's own
 * descriptor, so two fids of one connection conflict as two guest processes would.
 */
record LockRequests(FidTable fids) {
    void lock(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = fids.use(in.u32(), held);
        int type = in.u8();
        in.u32(); // flags: BLOCK means the client retries; the server never waits
        long start = in.u64();
        long length = in.u64();
        in.u32(); // proc_id
        in.name(); // client_id
        int fd = lockable(f, type, start, length);
        byte status;
        try {
            HostFs.fcntlLock(fd, HostFs.F_OFD_SETLK, new HostFs.Lock(type, start, length, 0));
            status = LOCK_SUCCESS;
        } catch (P9Error e) {
            status = e.errno() == Errno.EAGAIN || e.errno() == Errno.EACCES ? LOCK_BLOCKED : LOCK_ERROR;
        }
        out.u8(status);
    }

    void getlock(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = fids.use(in.u32(), held);
        int type = in.u8();
        long start = in.u64();
        long length = in.u64();
        int procId = in.u32();
        byte[] client = in.name();
        int fd = lockable(f, type, start, length);
        HostFs.Lock l = HostFs.fcntlLock(fd, HostFs.F_OFD_GETLK, new HostFs.Lock(type, start, length, 0));
        out.u8(l.type()).u64(l.start()).u64(l.length()).u32(l.type() == 2 ? procId : 0).str(client);
    }

    /** The open descriptor to lock, once the range is one fcntl takes. */
    private static int lockable(Fid f, int type, long start, long length) {
        if (f.ioFd() < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (type > 2 || start < 0 || length < 0) {
            throw new P9Error(Errno.EINVAL);
        }
        return f.ioFd();
    }
}
