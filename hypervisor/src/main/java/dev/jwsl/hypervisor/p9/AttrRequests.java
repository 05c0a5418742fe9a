package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.util.List;

import static dev.jwsl.hypervisor.p9.P9Constants.*;

/** Tgetattr, Tsetattr and Tstatfs: a file's metadata and its file system's. */
record AttrRequests(P9Server server, FidTable fids) {
    void getattr(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = fids.use(in.u32(), held);
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        HostFs.Stat st = HostFs.stat(f.pathFd);
        out.u64(GETATTR_VALID).qid(server.qid(st)).u32(st.mode()).u32(st.uid()).u32(st.gid()).u64(st.nlink())
                .u64(st.rdev()).u64(st.size()).u64(st.blksize()).u64(st.blocks())
                .u64(st.atimeSec()).u64(st.atimeNsec()).u64(st.mtimeSec()).u64(st.mtimeNsec())
                .u64(st.ctimeSec()).u64(st.ctimeNsec()).u64(st.btimeSec()).u64(st.btimeNsec())
                .u64(0).u64(0);
    }

    void setattr(P9Reader in, List<Fid> held) {
        Fid f = fids.use(in.u32(), held);
        int valid = in.u32(), mode = in.u32(), uid = in.u32(), gid = in.u32();
        long size = in.u64();
        long atimeSec = in.u64(), atimeNsec = in.u64(), mtimeSec = in.u64(), mtimeNsec = in.u64();
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        Confinement.inside(f);
        if ((valid & ATTR_MODE) != 0) {
            if (f.isSymlink()) {
                throw new P9Error(Errno.EOPNOTSUPP);
            }
            HostFs.chmod(HostFs.procPath(f.pathFd), mode & 07777);
        }
        if ((valid & (ATTR_UID | ATTR_GID)) != 0) {
            try {
                HostFs.chown(f.pathFd, (valid & ATTR_UID) != 0 ? uid : -1, (valid & ATTR_GID) != 0 ? gid : -1);
            } catch (P9Error e) {
                if (e.errno() != Errno.EPERM || server.privileged()) {
                    throw e;
                }
                // unprivileged: ownership stays the host user's (as QEMU's security_model=none)
            }
        }
        if ((valid & ATTR_SIZE) != 0) {
            if (size < 0) {
                throw new P9Error(Errno.EFBIG);
            }
            if (f.isDirectory()) {
                throw new P9Error(Errno.EISDIR);
            }
            HostFs.truncate(HostFs.procPath(f.pathFd), size);
        }
        if ((valid & (ATTR_ATIME | ATTR_MTIME)) != 0) {
            long aSec = 0, aNsec = HostFs.UTIME_OMIT, mSec = 0, mNsec = HostFs.UTIME_OMIT;
            if ((valid & ATTR_ATIME) != 0) {
                aSec = atimeSec;
                aNsec = (valid & ATTR_ATIME_SET) != 0 ? checkNsec(atimeNsec) : HostFs.UTIME_NOW;
            }
            if ((valid & ATTR_MTIME) != 0) {
                mSec = mtimeSec;
                mNsec = (valid & ATTR_MTIME_SET) != 0 ? checkNsec(mtimeNsec) : HostFs.UTIME_NOW;
            }
            HostFs.utimensat(f.pathFd, "", aSec, aNsec, mSec, mNsec, HostFs.AT_EMPTY_PATH);
        }
    }

    private static long checkNsec(long nsec) {
        if (nsec < 0 || nsec >= 1_000_000_000L) {
            throw new P9Error(Errno.EINVAL, "nanoseconds");
        }
        return nsec;
    }

    void statfs(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = fids.use(in.u32(), held);
        HostFs.StatFs s = HostFs.statfs(f.pathFd >= 0 ? f.pathFd : f.share.fd());
        out.u32((int) s.type()).u32((int) s.bsize()).u64(s.blocks()).u64(s.bfree()).u64(s.bavail())
                .u64(s.files()).u64(s.ffree()).u64(s.fsid()).u32((int) s.namelen());
    }
}
