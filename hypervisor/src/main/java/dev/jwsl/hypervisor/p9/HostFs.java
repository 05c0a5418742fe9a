package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Downcall;
import dev.jwsl.hypervisor.sys.Errno;
import dev.jwsl.hypervisor.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * The host file system calls the 9P server makes, each failing with {@link P9Error} carrying the
 * host errno (what the guest gets back). Paths are single, checked names relative to a
 * directory descriptor, or {@code /proc/self/fd/N} re-opens of a descriptor the server holds.
 *
 * <p>A name from the guest, a symlink target and a path the kernel gives back are bytes (Linux
 * names need not be UTF-8), and stay {@code byte[]} here: decoding them to a String would change
 * every name that is not valid UTF-8 into one that does not exist. Strings are for the server's
 * own paths only ({@code /proc/self/fd/N}, a share's configured path).
 *
 * <p>N.B. glibc 2.36 has no openat2 wrapper: it is called through syscall(2) (x86_64 number 437).
 */
final class HostFs {
    private HostFs() {}

    static final int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_ACCMODE = 3, O_CREAT = 0100, O_EXCL = 0200,
            O_NOCTTY = 0400, O_TRUNC = 01000, O_APPEND = 02000, O_NONBLOCK = 04000, O_DSYNC = 010000,
            O_DIRECT = 040000, O_LARGEFILE = 0100000, O_DIRECTORY = 0200000, O_NOFOLLOW = 0400000,
            O_NOATIME = 01000000, O_CLOEXEC = 02000000, O_SYNC = 04010000, O_PATH = 010000000;
    static final long RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_BENEATH = 0x08;
    static final int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_SYMLINK_FOLLOW = 0x400, AT_EMPTY_PATH = 0x1000;
    static final int S_IFMT = 0170000, S_IFDIR = 0040000, S_IFREG = 0100000, S_IFLNK = 0120000, S_IFCHR = 0020000,
            S_IFBLK = 0060000, S_ISUID = 04000, S_ISGID = 02000;
    static final int F_OFD_GETLK = 36, F_OFD_SETLK = 37;
    static final long UTIME_NOW = (1L << 30) - 1, UTIME_OMIT = (1L << 30) - 2;
    private static final long SYS_OPENAT2 = 437;
    /** STATX_BASIC_STATS | STATX_BTIME. */
    private static final int STATX_MASK = 0x7ff | 0x800;

    /** P9Error carries no stack trace: a failed lookup is routine, and the guest gets only errno. */
    private static final Downcall.Failure FAILED = (call, errno) -> new P9Error(errno);

    private static MethodHandle link(String name, MemoryLayout ret, MemoryLayout... args) {
        return Downcall.checked(name, FunctionDescriptor.of(ret, args), FAILED);
    }

    private static MethodHandle linkVariadic(String name, int firstVariadic, MemoryLayout ret, MemoryLayout... args) {
        return Downcall.checked(name, FunctionDescriptor.of(ret, args), FAILED,
                Linker.Option.firstVariadicArg(firstVariadic));
    }

    private static final MethodHandle SYSCALL_OPENAT2 =
            linkVariadic("syscall", 1, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG);
    private static final MethodHandle OPEN = linkVariadic("open", 2, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT);
    private static final MethodHandle STATX = link("statx", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS);
    private static final MethodHandle FSTATFS = link("fstatfs", JAVA_INT, JAVA_INT, ADDRESS);
    private static final MethodHandle GETDENTS64 = link("getdents64", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG);
    private static final MethodHandle LSEEK = link("lseek", JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT);
    private static final MethodHandle PREAD = link("pread", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG);
    private static final MethodHandle PWRITE = link("pwrite", JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG);
    private static final MethodHandle READLINKAT = link("readlinkat", JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG);
    private static final MethodHandle MKDIRAT = link("mkdirat", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle MKNODAT = link("mknodat", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG);
    private static final MethodHandle SYMLINKAT = link("symlinkat", JAVA_INT, ADDRESS, JAVA_INT, ADDRESS);
    private static final MethodHandle LINKAT = link("linkat", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle UNLINKAT = link("unlinkat", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle RENAMEAT = link("renameat", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS);
    private static final MethodHandle FCHOWNAT = link("fchownat", JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle CHMOD = link("chmod", JAVA_INT, ADDRESS, JAVA_INT);
    private static final MethodHandle TRUNCATE = link("truncate", JAVA_INT, ADDRESS, JAVA_LONG);
    private static final MethodHandle UTIMENSAT = link("utimensat", JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT);
    private static final MethodHandle FSYNC = link("fsync", JAVA_INT, JAVA_INT);
    private static final MethodHandle FDATASYNC = link("fdatasync", JAVA_INT, JAVA_INT);
    private static final MethodHandle FCNTL_PTR = linkVariadic("fcntl", 2, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS);
    private static final MethodHandle FCNTL_INT = linkVariadic("fcntl", 2, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
    private static final MethodHandle GETXATTR = link("getxattr", JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG);
    private static final MethodHandle LISTXATTR = link("listxattr", JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG);
    private static final MethodHandle SETXATTR = link("setxattr", JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT);
    private static final MethodHandle REMOVEXATTR = link("removexattr", JAVA_INT, ADDRESS, ADDRESS);
    private static final MethodHandle GETEUID = Downcall.plain("geteuid", FunctionDescriptor.of(JAVA_INT));

    /** What statx(2) says about a file. */
    record Stat(long dev, long ino, int mode, long nlink, int uid, int gid, long rdev, long size, long blksize,
                long blocks, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec, long ctimeSec,
                long ctimeNsec, long btimeSec, long btimeNsec) {
        int type() {
            return mode & S_IFMT;
        }

        boolean isDirectory() {
            return type() == S_IFDIR;
        }
    }

    /** What fstatfs(2) says. */
    record StatFs(long type, long bsize, long blocks, long bfree, long bavail, long files, long ffree, long fsid,
                  long namelen) {}

    private static RuntimeException rethrow(Throwable t) {
        return Downcall.rethrow(t);
    }

    /** "." as a name: the directory itself. */
    static final byte[] DOT = {'.'};

    /** The magic link to a descriptor the server holds, for calls that take only a path. */
    static String procPath(int fd) {
        return "/proc/self/fd/" + fd;
    }

    /** {@code name} as a NUL-terminated C string (the caller has refused a NUL inside). */
    private static MemorySegment cstr(Arena a, byte[] name) {
        MemorySegment s = a.allocate(name.length + 1L);
        MemorySegment.copy(name, 0, s, JAVA_BYTE, 0, name.length);
        return s;
    }

    static int openat2(int dirfd, byte[] name, int flags, int mode, long resolve) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment how = a.allocate(24, 8);
            how.set(JAVA_LONG, 0, flags & 0xffffffffL);
            how.set(JAVA_LONG, 8, mode);
            how.set(JAVA_LONG, 16, resolve);
            return (int) (long) SYSCALL_OPENAT2.invokeExact(SYS_OPENAT2, (long) dirfd, cstr(a, name), how, 24L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static int open(String path, int flags, int mode) {
        try (Arena a = Arena.ofConfined()) {
            return (int) OPEN.invokeExact(a.allocateFrom(path), flags, mode);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A second descriptor for the same open file (F_DUPFD_CLOEXEC). */
    static int dup(int fd) {
        try {
            return (int) FCNTL_INT.invokeExact(fd, 1030, 3);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void close(int fd) {
        if (fd >= 0) {
            LibC.close(fd);
        }
    }

    /** statx of the file {@code fd} refers to (an O_PATH descriptor is enough); symlinks not followed. */
    static Stat stat(int fd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(256, 8);
            int _ = (int) STATX.invokeExact(fd, a.allocateFrom(""), AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MASK, buf);
            // struct statx (include/uapi/linux/stat.h)
            long rdev = makedev(buf.get(JAVA_INT, 128), buf.get(JAVA_INT, 132));
            long dev = makedev(buf.get(JAVA_INT, 136), buf.get(JAVA_INT, 140));
            return new Stat(dev, buf.get(JAVA_LONG, 32), buf.get(JAVA_SHORT, 28) & 0xffff,
                    Integer.toUnsignedLong(buf.get(JAVA_INT, 16)), buf.get(JAVA_INT, 20), buf.get(JAVA_INT, 24), rdev,
                    buf.get(JAVA_LONG, 40), Integer.toUnsignedLong(buf.get(JAVA_INT, 4)), buf.get(JAVA_LONG, 48),
                    buf.get(JAVA_LONG, 64), buf.get(JAVA_INT, 72), buf.get(JAVA_LONG, 112), buf.get(JAVA_INT, 120),
                    buf.get(JAVA_LONG, 96), buf.get(JAVA_INT, 104), buf.get(JAVA_LONG, 80), buf.get(JAVA_INT, 88));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** glibc's makedev: the dev_t encoding the Linux 9P client decodes. */
    static long makedev(long major, long minor) {
        major &= 0xffffffffL;
        minor &= 0xffffffffL;
        return ((major & 0xfffff000L) << 32) | ((major & 0xfffL) << 8) | ((minor & 0xffffff00L) << 12) | (minor & 0xffL);
    }

    static StatFs statfs(int fd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(120, 8);
            int _ = (int) FSTATFS.invokeExact(fd, buf);
            return new StatFs(buf.get(JAVA_LONG, 0), buf.get(JAVA_LONG, 8), buf.get(JAVA_LONG, 16), buf.get(JAVA_LONG, 24),
                    buf.get(JAVA_LONG, 32), buf.get(JAVA_LONG, 40), buf.get(JAVA_LONG, 48), buf.get(JAVA_LONG, 56),
                    buf.get(JAVA_LONG, 64));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static int getdents64(int fd, MemorySegment buf) {
        try {
            return (int) (long) GETDENTS64.invokeExact(fd, buf, buf.byteSize());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static long lseek(int fd, long offset, int whence) {
        try {
            return (long) LSEEK.invokeExact(fd, offset, whence);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static long pread(int fd, MemorySegment buf, long offset) {
        try {
            return (long) PREAD.invokeExact(fd, buf, buf.byteSize(), offset);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static long pwrite(int fd, MemorySegment buf, long offset) {
        try {
            return (long) PWRITE.invokeExact(fd, buf, buf.byteSize(), offset);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The target of the symlink {@code fd} (an O_PATH descriptor of the link). */
    static byte[] readlink(int fd) {
        return readlinkat(fd, "");
    }

    /** The host path of the file descriptor {@code fd} refers to, as the kernel names it now. */
    static byte[] pathOf(int fd) {
        return readlinkat(AT_FDCWD, procPath(fd));
    }

    private static byte[] readlinkat(int dirfd, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(4097);
            long n = (long) READLINKAT.invokeExact(dirfd, a.allocateFrom(name), buf, 4097L);
            if (n > 4096) {
                throw new P9Error(Errno.ENAMETOOLONG);
            }
            return buf.asSlice(0, n).toArray(JAVA_BYTE);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void mkdirat(int dirfd, byte[] name, int mode) {
        try (Arena a = Arena.ofConfined()) {
            int _ = (int) MKDIRAT.invokeExact(dirfd, cstr(a, name), mode);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void mknodat(int dirfd, byte[] name, int mode, long dev) {
        try (Arena a = Arena.ofConfined()) {
            int _ = (int) MKNODAT.invokeExact(dirfd, cstr(a, name), mode, dev);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void symlinkat(byte[] target, int dirfd, byte[] name) {
        try (Arena a = Arena.ofConfined()) {
            int _ = (int) SYMLINKAT.invokeExact(cstr(a, target), dirfd, cstr(a, name));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void linkat(int olddirfd, String oldpath, int newdirfd, byte[] newname, int flags) {
        try (Arena a = Arena.ofConfined()) {
            int _ = (int) LINKAT.invokeExact(olddirfd, a.allocateFrom(oldpath), newdirfd, cstr(a, newname), flags);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void unlinkat(int dirfd, byte[] name, int flags) {
        try (Arena a = Arena.ofConfined()) {
            int _ = (int) UNLINKAT.invokeExact(dirfd, cstr(a, name), flags);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void renameat(int olddirfd, byte[] oldname, int newdirfd, byte[] newname) {
        try (Arena a = Arena.ofConfined()) {
            int _ = (int) RENAMEAT.invokeExact(olddirfd, cstr(a, oldname), newdirfd, cstr(a, newname));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fchownat on the file {@code fd} refers to itself (AT_EMPTY_PATH), never following a symlink. */
    static void chown(int fd, int uid, int gid) {
        try (Arena a = Arena.ofConfined()) {
            int _ = (int) FCHOWNAT.invokeExact(fd, a.allocateFrom(""), uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void chmod(String path, int mode) {
        try (Arena a = Arena.ofConfined()) {
            int _ = (int) CHMOD.invokeExact(a.allocateFrom(path), mode);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void truncate(String path, long length) {
        try (Arena a = Arena.ofConfined()) {
            int _ = (int) TRUNCATE.invokeExact(a.allocateFrom(path), length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** utimensat(2); a time of {@link #UTIME_NOW} or {@link #UTIME_OMIT} in the nanoseconds as the call defines. */
    static void utimensat(int dirfd, String path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec, int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment times = a.allocate(32, 8);
            times.set(JAVA_LONG, 0, atimeSec);
            times.set(JAVA_LONG, 8, atimeNsec);
            times.set(JAVA_LONG, 16, mtimeSec);
            times.set(JAVA_LONG, 24, mtimeNsec);
            int _ = (int) UTIMENSAT.invokeExact(dirfd, a.allocateFrom(path), times, flags);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void fsync(int fd, boolean dataOnly) {
        try {
            int _ = dataOnly ? (int) FDATASYNC.invokeExact(fd) : (int) FSYNC.invokeExact(fd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A byte-range lock request or answer (struct flock, x86_64). */
    record Lock(int type, long start, long length, int pid) {}

    /** fcntl F_OFD_SETLK / F_OFD_GETLK: locks belong to the open file, not to the server process. */
    static Lock fcntlLock(int fd, int cmd, Lock lock) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment fl = a.allocate(32, 8);
            fl.set(JAVA_SHORT, 0, (short) lock.type());
            fl.set(JAVA_SHORT, 2, (short) 0); // SEEK_SET
            fl.set(JAVA_LONG, 8, lock.start());
            fl.set(JAVA_LONG, 16, lock.length());
            fl.set(JAVA_INT, 24, 0); // OFD locks require l_pid 0
            int _ = (int) FCNTL_PTR.invokeExact(fd, cmd, fl);
            return new Lock(fl.get(JAVA_SHORT, 0), fl.get(JAVA_LONG, 8), fl.get(JAVA_LONG, 16), fl.get(JAVA_INT, 24));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** getxattr of {@code path} (a /proc/self/fd link); the value, at most 64 KiB (XATTR_SIZE_MAX). */
    static byte[] getxattr(String path, byte[] name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(65536);
            long n = (long) GETXATTR.invokeExact(a.allocateFrom(path), cstr(a, name), buf, 65536L);
            return buf.asSlice(0, n).toArray(JAVA_BYTE);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The NUL-separated attribute names of {@code path}. */
    static byte[] listxattr(String path) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(65536);
            long n = (long) LISTXATTR.invokeExact(a.allocateFrom(path), buf, 65536L);
            return buf.asSlice(0, n).toArray(JAVA_BYTE);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void setxattr(String path, byte[] name, byte[] value, int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(Math.max(1, value.length));
            MemorySegment.copy(value, 0, v, JAVA_BYTE, 0, value.length);
            int _ = (int) SETXATTR.invokeExact(a.allocateFrom(path), cstr(a, name), v, (long) value.length, flags);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void removexattr(String path, byte[] name) {
        try (Arena a = Arena.ofConfined()) {
            int _ = (int) REMOVEXATTR.invokeExact(a.allocateFrom(path), cstr(a, name));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static int geteuid() {
        try {
            return (int) GETEUID.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

}
