package dev.jwsl.hypervisor.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Hand-written libc calls, linked by {@link Downcall}: each failing call becomes a
 * {@link SysCallException} naming the call and its errno.
 */
public final class LibC {
    private static final Downcall.Failure FAILED = SysCallException::new;
    private static final Linker.Option VARIADIC_AFTER_2 = Linker.Option.firstVariadicArg(2);

    // The handles with a subject take one more, last, String argument: the call's name in a failure.
    private static final MethodHandle IOCTL_LONG = Downcall.checkedWithSubject("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), FAILED, VARIADIC_AFTER_2);
    private static final MethodHandle IOCTL_PTR = Downcall.checkedWithSubject("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), FAILED, VARIADIC_AFTER_2);
    private static final MethodHandle OPEN = Downcall.checkedWithSubject("open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), FAILED, VARIADIC_AFTER_2);
    private static final MethodHandle MMAP = Downcall.checkedWithSubject("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG), FAILED);
    private static final MethodHandle READ = Downcall.checkedWithSubject("read",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), FAILED);
    private static final MethodHandle WRITE = Downcall.checkedWithSubject("write",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), FAILED);
    private static final MethodHandle PREAD = Downcall.checkedWithSubject("pread",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), FAILED);
    private static final MethodHandle PWRITE = Downcall.checkedWithSubject("pwrite",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), FAILED);
    private static final MethodHandle FDATASYNC = Downcall.checkedWithSubject("fdatasync",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT), FAILED);
    private static final MethodHandle FALLOCATE = Downcall.checkedWithSubject("fallocate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), FAILED);
    private static final MethodHandle FLOCK = Downcall.checkedWithSubject("flock",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), FAILED);
    private static final MethodHandle LSEEK = Downcall.checkedWithSubject("lseek",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT), FAILED);
    private static final MethodHandle SIGACTION = Downcall.checkedWithSubject("sigaction",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS), FAILED);
    private static final MethodHandle MUNMAP = Downcall.checked("munmap",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), FAILED);
    private static final MethodHandle MADVISE = Downcall.checked("madvise",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), FAILED);
    private static final MethodHandle EVENTFD = Downcall.checked("eventfd",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), FAILED);
    private static final MethodHandle POLL = Downcall.capturing("poll",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle CLOSE = Downcall.plain("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle PTHREAD_SELF = Downcall.plain("pthread_self", FunctionDescriptor.of(JAVA_LONG));
    private static final MethodHandle PTHREAD_KILL = Downcall.plain("pthread_kill",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT));

    /** open(2) flags and mmap(2) constants used by jwsl (asm-generic/fcntl.h, mman-common.h). */
    public static final int O_RDONLY = 0, O_RDWR = 2, O_CLOEXEC = 0x80000;
    public static final int PROT_READ = 1, PROT_WRITE = 2;
    public static final int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    public static final int EFD_CLOEXEC = 0x80000, EFD_NONBLOCK = 0x800;
    /** madvise(2) advice: back the range with transparent huge pages (asm-generic/mman-common.h). */
    public static final int MADV_HUGEPAGE = 14;
    /** fallocate(2): deallocate the range (it reads back as zeros), keep the file size. */
    public static final int FALLOC_FL_KEEP_SIZE = 0x01, FALLOC_FL_PUNCH_HOLE = 0x02;
    /** flock(2). */
    public static final int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4;

    private LibC() {}

    /**
     * What a downcall's {@code Throwable} becomes: runtime exceptions and errors as they are,
     * anything else (there is nothing checked a downcall throws) wrapped.
     */
    public static RuntimeException rethrow(Throwable t) {
        return Downcall.rethrow(t);
    }

    /** ioctl(2) with an integer argument (or none: pass 0). */
    public static int ioctl(int fd, long request, long arg, String name) {
        try {
            return (int) IOCTL_LONG.invokeExact(fd, request, arg, name);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** ioctl(2) with a pointer argument. */
    public static int ioctl(int fd, long request, MemorySegment arg, String name) {
        try {
            return (int) IOCTL_PTR.invokeExact(fd, request, arg, name);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** open(2); returns the fd. */
    public static int open(String path, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            return (int) OPEN.invokeExact(arena.allocateFrom(path), flags, 0, path);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** close(2); errors are not reported, as nothing can be done about them. */
    public static void close(int fd) {
        try {
            int _ = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** mmap(2) of {@code length} bytes; the returned segment has that length. */
    public static MemorySegment mmap(long length, int prot, int flags, int fd, long offset, String what) {
        try {
            MemorySegment p = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, length, prot, flags, fd, offset, what);
            // SAFETY: mmap returned a mapping of exactly `length` bytes at p.
            return p.reinterpret(length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** munmap(2) of a segment returned by {@link #mmap}. */
    public static void munmap(MemorySegment mapping) {
        try {
            int _ = (int) MUNMAP.invokeExact(mapping, mapping.byteSize());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** madvise(2) on part of a mapping. */
    public static void madvise(MemorySegment range, int advice) {
        try {
            int _ = (int) MADVISE.invokeExact(range, range.byteSize(), advice);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** eventfd(2). */
    public static int eventfd(int initval, int flags) {
        try {
            return (int) EVENTFD.invokeExact(initval, flags);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** struct pollfd: int fd, short events, short revents. */
    public static final int POLLFD_SIZE = 8;
    /** poll(2) events (asm-generic/poll.h). */
    public static final short POLLIN = 0x1, POLLPRI = 0x2, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10;

    /**
     * poll(2) over {@code count} struct pollfd in {@code fds}; returns how many have events, 0 on
     * timeout, and 0 if a signal interrupted the wait (EINTR is not an error to the caller).
     */
    public static int poll(MemorySegment fds, int count, int timeoutMs) {
        int n;
        try {
            n = (int) POLL.invokeExact(fds, (long) count, timeoutMs);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (n != -1) {
            return n;
        }
        int errno = Downcall.errno();
        if (errno == Errno.EINTR) {
            return 0;
        }
        throw new SysCallException("poll", errno);
    }

    /** read(2) into {@code buf}; returns the count, 0 at end of file. */
    public static long read(int fd, MemorySegment buf, String what) {
        try {
            return (long) READ.invokeExact(fd, buf, buf.byteSize(), what);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** write(2) of {@code buf}; returns the count written. */
    public static long write(int fd, MemorySegment buf, String what) {
        try {
            return (long) WRITE.invokeExact(fd, buf, buf.byteSize(), what);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pread(2) into {@code buf} from file offset {@code offset}; returns the count, 0 at end of file. */
    public static long pread(int fd, MemorySegment buf, long offset, String what) {
        try {
            return (long) PREAD.invokeExact(fd, buf, buf.byteSize(), offset, what);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pwrite(2) of {@code buf} at file offset {@code offset}; returns the count written. */
    public static long pwrite(int fd, MemorySegment buf, long offset, String what) {
        try {
            return (long) PWRITE.invokeExact(fd, buf, buf.byteSize(), offset, what);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fdatasync(2). */
    public static void fdatasync(int fd, String what) {
        try {
            int _ = (int) FDATASYNC.invokeExact(fd, what);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fallocate(2). */
    public static void fallocate(int fd, int mode, long offset, long length, String what) {
        try {
            int _ = (int) FALLOCATE.invokeExact(fd, mode, offset, length, what);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** flock(2). */
    public static void flock(int fd, int operation, String what) {
        try {
            int _ = (int) FLOCK.invokeExact(fd, operation, what);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The size of the file behind {@code fd} (lseek to its end). */
    public static long size(int fd, String what) {
        try {
            return (long) LSEEK.invokeExact(fd, 0L, 2, what);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pthread_self(3) of the calling thread. */
    public static long pthreadSelf() {
        try {
            return (long) PTHREAD_SELF.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pthread_kill(3); returns the error number (0 on success), as pthread calls do. */
    public static int pthreadKill(long thread, int signal) {
        try {
            return (int) PTHREAD_KILL.invokeExact(thread, signal);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** sigaction(2): install {@code handler} for {@code signal}, no flags (so blocking calls see EINTR). */
    public static void sigaction(int signal, MemorySegment handler) {
        // struct sigaction on x86_64 glibc: handler(8), sa_mask(128), sa_flags(4)+pad(4), sa_restorer(8)
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment act = arena.allocate(152, 8);
            act.set(ADDRESS, 0, handler);
            int _ = (int) SIGACTION.invokeExact(signal, act, MemorySegment.NULL, Integer.toString(signal));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The address of a libc function, for use as a native callback. */
    public static MemorySegment symbol(String name) {
        return Downcall.symbol(name);
    }

}
