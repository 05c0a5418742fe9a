package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.memory.Scatter;
import dev.jwsl.hypervisor.sys.Errno;

import java.lang.foreign.MemorySegment;
import java.util.List;

import static dev.jwsl.hypervisor.p9.P9Constants.*;

/**
 * Tlopen, Tlcreate, Tread, Twrite and Tfsync. Reads and writes move data between the host file
 * and the transport's buffers directly: they take the raw message, not a decoded copy of it.
 */
record FileRequests(P9Server server, FidTable fids) {
    /** statfs f_type of procfs and sysfs (include/uapi/linux/magic.h). */
    private static final long PROC_SUPER_MAGIC = 0x9fa0, SYSFS_MAGIC = 0x62656572;

    /** The open(2) flags a client may ask for; the rest (O_CREAT, O_NOFOLLOW, O_DIRECT, ...) are the server's. */
    private static int openFlags(int p9flags) {
        int keep = HostFs.O_ACCMODE | HostFs.O_TRUNC | HostFs.O_APPEND | HostFs.O_DSYNC | HostFs.O_SYNC
                | HostFs.O_DIRECTORY;
        if ((p9flags & HostFs.O_ACCMODE) == HostFs.O_ACCMODE) {
            throw new P9Error(Errno.EINVAL, "open mode 3");
        }
        return (p9flags & keep) | HostFs.O_CLOEXEC | HostFs.O_NOCTTY | HostFs.O_LARGEFILE;
    }

    void lopen(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = fids.use(in.u32(), held);
        int flags = openFlags(in.u32());
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (f.isSymlink()) {
            throw new P9Error(Errno.ELOOP);
        }
        if (f.isOpen()) { // before opening anything: an open fid is EINVAL whatever the flags
            throw new P9Error(Errno.EINVAL, "fid already open");
        }
        Confinement.inside(f);
        int fd = openExisting(f.pathFd, flags);
        if (!f.setOpen(fd, flags)) {
            HostFs.close(fd);
            throw new P9Error(Errno.EINVAL, "fid already open");
        }
        out.qid(f.qid).u32(0);
    }

    /**
     * Opens for I/O the file an O_PATH descriptor holds: only a regular file or a directory. The
     * client opens fifos and devices as its own special inodes, never through the server (and a
     * fifo's open would wait for the other end on the thread serving the request).
     */
    private static int openExisting(int pathFd, int flags) {
        HostFs.Stat st = HostFs.stat(pathFd);
        if (st.type() != HostFs.S_IFREG && st.type() != HostFs.S_IFDIR) {
            throw new P9Error(Errno.EOPNOTSUPP, "open of a special file");
        }
        refuseKernelFiles(pathFd, flags);
        return HostFs.open(HostFs.procPath(pathFd), flags, 0);
    }

    /**
     * A share of the host's "/" reaches /proc and /sys. The server never opens procfs files: its
     * own /proc/self/mem and descriptors would be the guest's to read and write. sysfs is
     * read-only to the guest (a privileged server would otherwise retune host devices).
     */
    private static void refuseKernelFiles(int pathFd, int flags) {
        long type = HostFs.statfs(pathFd).type();
        if (type == PROC_SUPER_MAGIC || (type == SYSFS_MAGIC && (flags & HostFs.O_ACCMODE) != HostFs.O_RDONLY)) {
            throw new P9Error(Errno.EACCES, "host kernel file");
        }
    }

    void lcreate(P9Reader in, P9Writer out, List<Fid> held) {
        int fidNo = in.u32();
        Fid dir = Confinement.directory(fids.use(fidNo, held));
        byte[] name = Confinement.name(in.name());
        int p9flags = in.u32();
        int flags = openFlags(p9flags) & ~HostFs.O_DIRECTORY;
        int mode = in.u32() & 07777;
        int gid = in.u32();
        if (dir.isOpen()) {
            throw new P9Error(Errno.EINVAL, "fid already open");
        }
        Opened opened = createOrOpen(dir.pathFd, name, flags, mode, (p9flags & HostFs.O_EXCL) != 0);
        int io = opened.fd();
        int path = -1;
        try {
            path = Confinement.child(dir.pathFd, name);
            HostFs.Stat a = HostFs.stat(io), b = HostFs.stat(path);
            if (a.dev() != b.dev() || a.ino() != b.ino()) {
                throw new P9Error(Errno.EAGAIN, "file replaced while created");
            }
            if (opened.created()) {
                NewFile.settle(path, gid, mode); // a file that was there keeps its owner and mode
            }
            Fid created = new Fid(dir.share, path, dir.user, server.qid(a));
            path = -1;
            created.setOpen(io, flags);
            io = -1;
            fids.install(fidNo, created);
            out.qid(created.qid).u32(0);
        } finally {
            HostFs.close(io);
            HostFs.close(path);
        }
    }

    /** What Tlcreate opened, and whether it made the file. */
    private record Opened(int fd, boolean created) {}

    /**
     * A new file {@code name} in {@code dirFd}, or (without O_EXCL) the one already there, opened
     * with the checks of Tlopen: O_CREAT alone would open a fifo, a device or a kernel file.
     */
    private static Opened createOrOpen(int dirFd, byte[] name, int flags, int mode, boolean exclusive) {
        try {
            return new Opened(HostFs.openat2(dirFd, name, flags | HostFs.O_CREAT | HostFs.O_EXCL | HostFs.O_NOFOLLOW,
                    mode, HostFs.RESOLVE_BENEATH | HostFs.RESOLVE_NO_MAGICLINKS), true);
        } catch (P9Error e) {
            if (e.errno() != Errno.EEXIST || exclusive) {
                throw e;
            }
        }
        int path = Confinement.child(dirFd, name);
        try {
            HostFs.Stat st = HostFs.stat(path);
            if (st.type() == HostFs.S_IFLNK) {
                throw new P9Error(Errno.ELOOP);
            }
            if (st.isDirectory()) {
                throw new P9Error(Errno.EISDIR);
            }
            return new Opened(openExisting(path, flags), false);
        } finally {
            HostFs.close(path);
        }
    }

    int read(Scatter message, Scatter reply, int tag, int capacity, List<Fid> held) {
        byte[] bytes = new byte[HEADER + 16]; // fid[4] offset[8] count[4]
        if (message.read(0, bytes) < bytes.length) {
            throw new P9Error(Errno.EINVAL, "short Tread");
        }
        P9Reader in = new P9Reader(bytes).skipHeader();
        Fid f = fids.use(in.u32(), held);
        long offset = in.u64();
        long count = Integer.toUnsignedLong(in.u32());
        if (offset < 0) {
            throw new P9Error(Errno.EINVAL);
        }
        count = Math.min(count, Math.max(0, capacity - IO_HEADER));
        long got;
        byte[] xattr = f.xattrRead;
        if (xattr != null) {
            got = XattrRequests.read(xattr, offset, count, reply.slice(IO_HEADER, count));
        } else {
            int fd = f.ioFd();
            if (fd >= 0 && f.isDirectory()) {
                throw new P9Error(Errno.EISDIR); // read(2)'s answer; a directory is read with Treaddir
            }
            if (fd < 0 || (f.openFlags() & HostFs.O_ACCMODE) == HostFs.O_WRONLY) {
                throw new P9Error(Errno.EBADF);
            }
            got = 0;
            for (MemorySegment seg : reply.slice(IO_HEADER, count).parts()) {
                long n = HostFs.pread(fd, seg, offset + got);
                got += n;
                if (n < seg.byteSize()) {
                    break;
                }
            }
        }
        byte[] h = new P9Writer(IO_HEADER, TREAD + 1, tag).u32((int) got).finish((int) (IO_HEADER + got));
        reply.write(0, h, h.length);
        return (int) (IO_HEADER + got);
    }

    int write(Scatter message, Scatter reply, int tag, List<Fid> held) {
        byte[] bytes = new byte[WRITE_HEADER];
        if (message.read(0, bytes) < WRITE_HEADER) {
            throw new P9Error(Errno.EINVAL, "short Twrite");
        }
        P9Reader in = new P9Reader(bytes).skipHeader();
        Fid f = fids.use(in.u32(), held);
        long offset = in.u64();
        long count = Integer.toUnsignedLong(in.u32());
        if (offset < 0 || count > message.length() - WRITE_HEADER) {
            throw new P9Error(Errno.EINVAL, "Twrite count beyond the message");
        }
        Scatter data = message.slice(WRITE_HEADER, count);
        long done = 0;
        Fid.XattrWrite x = f.xattrWrite;
        if (x != null) {
            done = XattrRequests.write(f, x, offset, data);
        } else {
            int fd = f.ioFd();
            if (fd < 0 || (f.openFlags() & HostFs.O_ACCMODE) == HostFs.O_RDONLY) {
                throw new P9Error(Errno.EBADF);
            }
            for (MemorySegment seg : data.parts()) {
                long n = HostFs.pwrite(fd, seg, offset + done);
                done += n;
                if (n < seg.byteSize()) {
                    break;
                }
            }
        }
        byte[] r = new P9Writer(HEADER + 4, TWRITE + 1, tag).u32((int) done).finish(HEADER + 4);
        return reply.write(0, r, r.length);
    }

    void fsync(P9Reader in, List<Fid> held) {
        Fid f = fids.use(in.u32(), held);
        boolean dataOnly = !in.atEnd() && in.u32() != 0;
        if (f.ioFd() < 0) {
            throw new P9Error(Errno.EBADF);
        }
        HostFs.fsync(f.ioFd(), dataOnly);
    }
}
