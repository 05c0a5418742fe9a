package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

import static dev.jwsl.hypervisor.p9.P9Constants.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/** Treaddir, and the entries other than regular files: Tmkdir, Tsymlink (and Treadlink), Tmknod. */
record DirRequests(P9Server server, FidTable fids) {
    void readdir(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = fids.use(in.u32(), held);
        long offset = in.u64();
        int count = (int) Math.min(Integer.toUnsignedLong(in.u32()), out.remaining() - 4);
        int fd = f.ioFd();
        if (fd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (!f.isDirectory()) {
            throw new P9Error(Errno.ENOTDIR);
        }
        if (count < 0) {
            throw new P9Error(Errno.EINVAL);
        }
        long dirDev = HostFs.stat(fd).dev();
        P9Writer entries = new P9Writer(count + HEADER, 0, 0);
        synchronized (f) {
            if (offset != f.dirPosition) {
                HostFs.lseek(fd, offset, 0);
                f.dirPosition = offset;
            }
            try (Arena a = Arena.ofConfined()) {
                MemorySegment buf = a.allocate(Math.max(4096, Math.min(count * 2L, 1 << 20)), 8);
                boolean full = false;
                while (!full) {
                    int n = HostFs.getdents64(fd, buf);
                    if (n == 0) {
                        break;
                    }
                    long resumeAt = f.dirPosition;
                    for (int at = 0; at < n; ) {
                        // struct linux_dirent64: ino[8] off[8] reclen[2] type[1] name (NUL-terminated)
                        long ino = buf.get(JAVA_LONG, at);
                        long off = buf.get(JAVA_LONG, at + 8);
                        int reclen = buf.get(JAVA_SHORT, at + 16) & 0xffff;
                        int type = buf.get(JAVA_BYTE, at + 18) & 0xff;
                        int nameLen = 0;
                        while (buf.get(JAVA_BYTE, at + 19 + nameLen) != 0) {
                            nameLen++;
                        }
                        byte[] name = buf.asSlice(at + 19, nameLen).toArray(JAVA_BYTE);
                        if (entries.remaining() < QID_SIZE + 8 + 1 + 2 + name.length) {
                            full = true;
                            break;
                        }
                        byte qtype = type == 4 ? QTDIR : type == 10 ? QTSYMLINK : QTFILE;
                        entries.qid(new Qid(qtype, 0, server.qidPath(dirDev, ino))).u64(off).u8(type)
                                .u16(name.length).bytes(name, name.length);
                        resumeAt = off;
                        at += reclen;
                    }
                    f.dirPosition = resumeAt;
                    if (full) {
                        // the rest of this batch did not fit: continue from the last entry sent
                        HostFs.lseek(fd, resumeAt, 0);
                    }
                }
            }
        }
        int n = entries.position() - HEADER;
        byte[] all = entries.finish(0);
        out.u32(n).bytes(Arrays.copyOfRange(all, HEADER, HEADER + n), n);
    }

    void mkdir(P9Reader in, P9Writer out, List<Fid> held) {
        Fid dir = Confinement.directory(fids.use(in.u32(), held));
        byte[] name = Confinement.name(in.name());
        int mode = in.u32() & 07777;
        int gid = in.u32();
        HostFs.mkdirat(dir.pathFd, name, mode);
        out.qid(created(dir, name, gid, mode));
    }

    void symlink(P9Reader in, P9Writer out, List<Fid> held) {
        Fid dir = Confinement.directory(fids.use(in.u32(), held));
        byte[] name = Confinement.name(in.name());
        byte[] target = in.name();
        int gid = in.u32();
        if (target.length == 0) {
            throw new P9Error(Errno.ENOENT);
        }
        if (target.length > 4095) {
            throw new P9Error(Errno.ENAMETOOLONG);
        }
        HostFs.symlinkat(target, dir.pathFd, name);
        out.qid(created(dir, name, gid, NewFile.NO_MODE));
    }

    /** The target as stored: the server never follows it, the client resolves it in the guest. */
    void readlink(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = fids.use(in.u32(), held);
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (!f.isSymlink()) {
            throw new P9Error(Errno.EINVAL, "not a symlink"); // readlink(2)'s answer
        }
        out.str(HostFs.readlink(f.pathFd));
    }

    /**
     * A fifo, socket or empty regular file; a block or character device only where the settings
     * allow it. Made on the host, a device node opens the host's device to every host user its
     * owner and mode admit: the guest's root must not make one it can hand to its own uid.
     */
    void mknod(P9Reader in, P9Writer out, List<Fid> held) {
        Fid dir = Confinement.directory(fids.use(in.u32(), held));
        byte[] name = Confinement.name(in.name());
        int mode = in.u32();
        int major = in.u32();
        int minor = in.u32();
        int gid = in.u32();
        int type = mode & HostFs.S_IFMT;
        if ((type == HostFs.S_IFCHR || type == HostFs.S_IFBLK) && !server.settings().deviceNodes()) {
            throw new P9Error(Errno.EPERM, "device nodes are not allowed");
        }
        HostFs.mknodat(dir.pathFd, name, mode, HostFs.makedev(major, minor));
        out.qid(created(dir, name, gid, mode & 07777));
    }

    /** The qid of a new entry {@code name} in {@code dir}, once it has the group and mode asked. */
    private Qid created(Fid dir, byte[] name, int gid, int mode) {
        int fd = Confinement.child(dir.pathFd, name);
        try {
            return server.qid(NewFile.settle(fd, gid, mode));
        } finally {
            HostFs.close(fd);
        }
    }
}
