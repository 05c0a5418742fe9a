package dev.jwsl.hypervisor.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Hand-written libc downcalls that capture errno.
 *
 * <p>N.B. jextract's generated functions cannot capture errno, and its {@code ioctl} is variadic;
 * every call here is linked with {@code Linker.Option.captureCallState("errno")} and, for the
 * variadic ones, an explicit layout for the argument after the fixed ones. Each failing call
 * becomes a {@link SysCallException} in exactly one place, {@link #check}.
 */
public final class LibC {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    private static final MethodHandle IOCTL_LONG = downcall("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), 2);
    private static final MethodHandle IOCTL_PTR = downcall("ioctl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), 2);
    private static final MethodHandle OPEN = downcall("open",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), 2);
    private static final MethodHandle CLOSE = downcall("close",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT), -1);
    private static final MethodHandle MMAP = downcall("mmap",
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG), -1);
    private static final MethodHandle MUNMAP = downcall("munmap",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), -1);
    private static final MethodHandle MADVISE = downcall("madvise",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), -1);
    private static final MethodHandle EVENTFD = downcall("eventfd",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), -1);
    private static final MethodHandle READ = downcall("read",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), -1);
    private static final MethodHandle WRITE = downcall("write",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), -1);
    private static final MethodHandle PREAD = downcall("pread",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), -1);
    private static final MethodHandle PWRITE = downcall("pwrite",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), -1);
    private static final MethodHandle FDATASYNC = downcall("fdatasync",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT), -1);
    private static final MethodHandle FALLOCATE = downcall("fallocate",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), -1);
    private static final MethodHandle FLOCK = downcall("flock",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), -1);
    private static final MethodHandle LSEEK = downcall("lseek",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT), -1);
    private static final MethodHandle POLL = downcall("poll",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), -1);
    private static final MethodHandle ISATTY = downcall("isatty",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT), -1);
    private static final MethodHandle PTHREAD_SELF = downcall("pthread_self",
            FunctionDescriptor.of(JAVA_LONG), -1);
    private static final MethodHandle PTHREAD_KILL = downcall("pthread_kill",
            FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT), -1);
    private static final MethodHandle SIGACTION = downcall("sigaction",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS), -1);
    private static final MethodHandle TCGETATTR = downcall("tcgetattr",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), -1);
    private static final MethodHandle TCSETATTR = downcall("tcsetattr",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS), -1);
    private static final MethodHandle CFMAKERAW = downcall("cfmakeraw",
            FunctionDescriptor.ofVoid(ADDRESS), -1);

    /** sizeof(struct termios) in glibc on x86_64. */
    public static final int TERMIOS_SIZE = 60;
    /** tcsetattr(3) action: apply once queued output is written, keep pending input. */
    public static final int TCSADRAIN = 1;

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

    private static MethodHandle downcall(String name, FunctionDescriptor fd, int firstVariadic) {
        MemorySegment symbol = LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
        Linker.Option capture = Linker.Option.captureCallState("errno");
        return firstVariadic < 0
                ? LINKER.downcallHandle(symbol, fd, capture)
                : LINKER.downcallHandle(symbol, fd, capture, Linker.Option.firstVariadicArg(firstVariadic));
    }

    /** One per thread: the captured-errno buffer lives as long as the thread. */
    private static final ThreadLocal<MemorySegment> STATE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CALL_STATE));

    private static long check(long result, String call, MemorySegment state) {
        if (result == -1) {
            throw new SysCallException(call, (int) ERRNO.get(state, 0L));
        }
        return result;
    }

    /**
     * What a downcall's {@code Throwable} becomes: runtime exceptions and errors as they are,
     * anything else (there is nothing checked a downcall throws) wrapped.
     */
    public static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    /** ioctl(2) with an integer argument (or none: pass 0). */
    public static int ioctl(int fd, long request, long arg, String name) {
        MemorySegment state = STATE.get();
        try {
            return (int) check((int) IOCTL_LONG.invokeExact(state, fd, request, arg), "ioctl(" + name + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** ioctl(2) with a pointer argument. */
    public static int ioctl(int fd, long request, MemorySegment arg, String name) {
        MemorySegment state = STATE.get();
        try {
            return (int) check((int) IOCTL_PTR.invokeExact(state, fd, request, arg), "ioctl(" + name + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** open(2); returns the fd. */
    public static int open(String path, int flags) {
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            return (int) check((int) OPEN.invokeExact(state, arena.allocateFrom(path), flags, 0),
                    "open(" + path + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** close(2); errors are not reported, as nothing can be done about them. */
    public static void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(STATE.get(), fd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** mmap(2) of {@code length} bytes; the returned segment has that length. */
    public static MemorySegment mmap(long length, int prot, int flags, int fd, long offset, String what) {
        MemorySegment state = STATE.get();
        try {
            MemorySegment p = (MemorySegment) MMAP.invokeExact(state, MemorySegment.NULL, length, prot, flags, fd, offset);
            check(p.address(), "mmap(" + what + ")", state);
            // SAFETY: mmap returned a mapping of exactly `length` bytes at p.
            return p.reinterpret(length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** munmap(2) of a segment returned by {@link #mmap}. */
    public static void munmap(MemorySegment mapping) {
        MemorySegment state = STATE.get();
        try {
            check((int) MUNMAP.invokeExact(state, mapping, mapping.byteSize()), "munmap", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** madvise(2) on part of a mapping. */
    public static void madvise(MemorySegment range, int advice) {
        MemorySegment state = STATE.get();
        try {
            check((int) MADVISE.invokeExact(state, range, range.byteSize(), advice), "madvise", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** eventfd(2). */
    public static int eventfd(int initval, int flags) {
        MemorySegment state = STATE.get();
        try {
            return (int) check((int) EVENTFD.invokeExact(state, initval, flags), "eventfd", state);
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
        MemorySegment state = STATE.get();
        try {
            int n = (int) POLL.invokeExact(state, fds, (long) count, timeoutMs);
            if (n == -1 && (int) ERRNO.get(state, 0L) == Errno.EINTR) {
                return 0;
            }
            return (int) check(n, "poll", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** read(2) into {@code buf}; returns the count, 0 at end of file. */
    public static long read(int fd, MemorySegment buf, String what) {
        MemorySegment state = STATE.get();
        try {
            return check((long) READ.invokeExact(state, fd, buf, buf.byteSize()), "read(" + what + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** write(2) of {@code buf}; returns the count written. */
    public static long write(int fd, MemorySegment buf, String what) {
        MemorySegment state = STATE.get();
        try {
            return check((long) WRITE.invokeExact(state, fd, buf, buf.byteSize()), "write(" + what + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pread(2) into {@code buf} from file offset {@code offset}; returns the count, 0 at end of file. */
    public static long pread(int fd, MemorySegment buf, long offset, String what) {
        MemorySegment state = STATE.get();
        try {
            return check((long) PREAD.invokeExact(state, fd, buf, buf.byteSize(), offset), "pread(" + what + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pwrite(2) of {@code buf} at file offset {@code offset}; returns the count written. */
    public static long pwrite(int fd, MemorySegment buf, long offset, String what) {
        MemorySegment state = STATE.get();
        try {
            return check((long) PWRITE.invokeExact(state, fd, buf, buf.byteSize(), offset), "pwrite(" + what + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fdatasync(2). */
    public static void fdatasync(int fd, String what) {
        MemorySegment state = STATE.get();
        try {
            check((int) FDATASYNC.invokeExact(state, fd), "fdatasync(" + what + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** fallocate(2). */
    public static void fallocate(int fd, int mode, long offset, long length, String what) {
        MemorySegment state = STATE.get();
        try {
            check((int) FALLOCATE.invokeExact(state, fd, mode, offset, length), "fallocate(" + what + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** flock(2). */
    public static void flock(int fd, int operation, String what) {
        MemorySegment state = STATE.get();
        try {
            check((int) FLOCK.invokeExact(state, fd, operation), "flock(" + what + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The size of the file behind {@code fd} (lseek to its end). */
    public static long size(int fd, String what) {
        MemorySegment state = STATE.get();
        try {
            return check((long) LSEEK.invokeExact(state, fd, 0L, 2), "lseek(" + what + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** isatty(3). */
    public static boolean isatty(int fd) {
        try {
            return (int) ISATTY.invokeExact(STATE.get(), fd) == 1;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pthread_self(3) of the calling thread. */
    public static long pthreadSelf() {
        try {
            return (long) PTHREAD_SELF.invokeExact(STATE.get());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** pthread_kill(3); returns the error number (0 on success), as pthread calls do. */
    public static int pthreadKill(long thread, int signal) {
        try {
            return (int) PTHREAD_KILL.invokeExact(STATE.get(), thread, signal);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** sigaction(2): install {@code handler} for {@code signal}, no flags (so blocking calls see EINTR). */
    public static void sigaction(int signal, MemorySegment handler) {
        // struct sigaction on x86_64 glibc: handler(8), sa_mask(128), sa_flags(4)+pad(4), sa_restorer(8)
        MemorySegment state = STATE.get();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment act = arena.allocate(152, 8);
            act.set(ADDRESS, 0, handler);
            check((int) SIGACTION.invokeExact(state, signal, act, MemorySegment.NULL), "sigaction(" + signal + ")", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** tcgetattr(3) into a {@link #TERMIOS_SIZE}-byte buffer. */
    public static void tcgetattr(int fd, MemorySegment termios) {
        MemorySegment state = STATE.get();
        try {
            check((int) TCGETATTR.invokeExact(state, fd, termios), "tcgetattr", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** tcsetattr(3) with TCSADRAIN. */
    public static void tcsetattr(int fd, MemorySegment termios) {
        MemorySegment state = STATE.get();
        try {
            check((int) TCSETATTR.invokeExact(state, fd, TCSADRAIN, termios), "tcsetattr", state);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** cfmakeraw(3): no echo, no line editing, no signals from keys, 8-bit clean, no output processing. */
    public static void cfmakeraw(MemorySegment termios) {
        try {
            CFMAKERAW.invokeExact(STATE.get(), termios);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Links libc function {@code name} with errno capture, for a package that maps errno its own
     * way (the 9P server answers it to the guest instead of throwing {@link SysCallException}).
     * The handle's first argument is {@link #callState()}; read errno with {@link #errno}.
     */
    public static MethodHandle linkCapturingErrno(String name, FunctionDescriptor descriptor, int firstVariadic) {
        return downcall(name, descriptor, firstVariadic);
    }

    /** This thread's captured-call-state buffer, the first argument of every errno-capturing handle. */
    public static MemorySegment callState() {
        return STATE.get();
    }

    /** The errno a call captured into {@code state}. */
    public static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** The address of a libc function, for use as a native callback. */
    public static MemorySegment symbol(String name) {
        return LINKER.defaultLookup().find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
    }

}
