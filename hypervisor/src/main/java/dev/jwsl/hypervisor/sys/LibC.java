package dev.jwsl.hypervisor.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The system calls jwsl makes, all through {@link Downcall#syscall} (one linked stub for all of
 * them; see there why). Each failing call becomes a {@link SysCallException} naming the call and
 * its errno.
 */
public final class LibC {
    /** x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
    private static final int SYS_READ = 0, SYS_WRITE = 1, SYS_CLOSE = 3, SYS_POLL = 7, SYS_LSEEK = 8, SYS_MMAP = 9,
            SYS_MUNMAP = 11, SYS_RT_SIGACTION = 13, SYS_IOCTL = 16, SYS_PREAD64 = 17, SYS_PWRITE64 = 18,
            SYS_MADVISE = 28, SYS_GETPID = 39, SYS_FLOCK = 73, SYS_FDATASYNC = 75, SYS_GETTID = 186,
            SYS_CLOCK_GETTIME = 228, SYS_TGKILL = 234, SYS_OPENAT = 257, SYS_FALLOCATE = 285, SYS_EVENTFD2 = 290;
    private static final long AT_FDCWD = -100;
    /** This process, for {@link #tgkill}. */
    private static final long PID = Downcall.syscall(SYS_GETPID, 0, 0, 0, 0, 0, 0);
    /** rt_sigaction(2): struct sigaction as the kernel takes it, and the flag that says it has a restorer. */
    private static final int KERNEL_SIGACTION_SIZE = 32, SIGSET_SIZE = 8, SIGSEGV = 11;
    private static final long SA_RESTORER = 0x04000000L;

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

    /** System call {@code number}; -1 throws for {@code name(subject)} (subject may be null). */
    private static long checked(int number, String name, String subject, long a1, long a2, long a3, long a4, long a5,
                                long a6) {
        long r = Downcall.syscall(number, a1, a2, a3, a4, a5, a6);
        if (r == -1) {
            throw new SysCallException(Downcall.call(name, subject), Downcall.errno());
        }
        return r;
    }

    /** The address of native memory passed to the kernel (a heap segment has none it could use). */
    private static long address(MemorySegment m) {
        if (!m.isNative()) {
            throw new IllegalArgumentException("a system call needs native memory, not " + m);
        }
        return m.address();
    }

    /** ioctl(2) with an integer argument (or none: pass 0). */
    public static int ioctl(int fd, long request, long arg, String name) {
        return (int) checked(SYS_IOCTL, "ioctl", name, fd, request, arg, 0, 0, 0);
    }

    /** ioctl(2) with a pointer argument. */
    public static int ioctl(int fd, long request, MemorySegment arg, String name) {
        try {
            return (int) checked(SYS_IOCTL, "ioctl", name, fd, request, address(arg), 0, 0, 0);
        } finally {
            Reference.reachabilityFence(arg);
        }
    }

    /** open(2); returns the fd. */
    public static int open(String path, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            return (int) checked(SYS_OPENAT, "open", path, AT_FDCWD, arena.allocateFrom(path).address(), flags, 0, 0, 0);
        }
    }

    /** close(2); errors are not reported, as nothing can be done about them. */
    public static void close(int fd) {
        Downcall.syscall(SYS_CLOSE, fd, 0, 0, 0, 0, 0);
    }

    /** mmap(2) of {@code length} bytes; the returned segment has that length. */
    public static MemorySegment mmap(long length, int prot, int flags, int fd, long offset, String what) {
        long p = checked(SYS_MMAP, "mmap", what, 0, length, prot, flags, fd, offset);
        // SAFETY: mmap returned a mapping of exactly `length` bytes at p.
        return MemorySegment.ofAddress(p).reinterpret(length);
    }

    /** munmap(2) of a segment returned by {@link #mmap}. */
    public static void munmap(MemorySegment mapping) {
        checked(SYS_MUNMAP, "munmap", null, address(mapping), mapping.byteSize(), 0, 0, 0, 0);
    }

    /** madvise(2) on part of a mapping. */
    public static void madvise(MemorySegment range, int advice) {
        checked(SYS_MADVISE, "madvise", null, address(range), range.byteSize(), advice, 0, 0, 0);
    }

    /** eventfd(2). */
    public static int eventfd(int initval, int flags) {
        return (int) checked(SYS_EVENTFD2, "eventfd", null, initval, flags, 0, 0, 0, 0);
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
        long n;
        try {
            n = Downcall.syscall(SYS_POLL, address(fds), count, timeoutMs, 0, 0, 0);
        } finally {
            Reference.reachabilityFence(fds);
        }
        if (n != -1) {
            return (int) n;
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
            return checked(SYS_READ, "read", what, fd, address(buf), buf.byteSize(), 0, 0, 0);
        } finally {
            Reference.reachabilityFence(buf);
        }
    }

    /** write(2) of {@code buf}; returns the count written. */
    public static long write(int fd, MemorySegment buf, String what) {
        try {
            return checked(SYS_WRITE, "write", what, fd, address(buf), buf.byteSize(), 0, 0, 0);
        } finally {
            Reference.reachabilityFence(buf);
        }
    }

    /** pread(2) into {@code buf} from file offset {@code offset}; returns the count, 0 at end of file. */
    public static long pread(int fd, MemorySegment buf, long offset, String what) {
        try {
            return checked(SYS_PREAD64, "pread", what, fd, address(buf), buf.byteSize(), offset, 0, 0);
        } finally {
            Reference.reachabilityFence(buf);
        }
    }

    /** pwrite(2) of {@code buf} at file offset {@code offset}; returns the count written. */
    public static long pwrite(int fd, MemorySegment buf, long offset, String what) {
        try {
            return checked(SYS_PWRITE64, "pwrite", what, fd, address(buf), buf.byteSize(), offset, 0, 0);
        } finally {
            Reference.reachabilityFence(buf);
        }
    }

    /** fdatasync(2). */
    public static void fdatasync(int fd, String what) {
        checked(SYS_FDATASYNC, "fdatasync", what, fd, 0, 0, 0, 0, 0);
    }

    /** fallocate(2). */
    public static void fallocate(int fd, int mode, long offset, long length, String what) {
        checked(SYS_FALLOCATE, "fallocate", what, fd, mode, offset, length, 0, 0);
    }

    /** flock(2). */
    public static void flock(int fd, int operation, String what) {
        checked(SYS_FLOCK, "flock", what, fd, operation, 0, 0, 0, 0);
    }

    /** The size of the file behind {@code fd} (lseek to its end). */
    public static long size(int fd, String what) {
        return checked(SYS_LSEEK, "lseek", what, fd, 0, 2 /* SEEK_END */, 0, 0, 0);
    }

    /** gettid(2): the calling thread's kernel id, for {@link #tgkill}. */
    public static int gettid() {
        return (int) Downcall.syscall(SYS_GETTID, 0, 0, 0, 0, 0, 0);
    }

    /**
     * The CPU time thread {@code tid} of this process has used, in nanoseconds (its
     * {@code CLOCK_THREAD_CPUTIME_ID}, read from another thread: clock_gettime(2) on the clock id
     * the kernel builds for a thread, ~tid << 3 | CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED). A vCPU
     * thread's includes the time its guest ran.
     */
    public static long threadCpuNanos(int tid) {
        if (tid <= 0 || tid > 1 << 22) { // PID_MAX_LIMIT: beyond it the shift makes some other clock's id
            throw new IllegalArgumentException("not a thread id: " + tid);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ts = arena.allocate(JAVA_LONG, 2);
            checked(SYS_CLOCK_GETTIME, "clock_gettime", "thread " + tid, (~tid << 3) | 4 | 2, address(ts), 0, 0, 0, 0);
            return ts.getAtIndex(JAVA_LONG, 0) * 1_000_000_000L + ts.getAtIndex(JAVA_LONG, 1);
        }
    }

    /** tgkill(2) to thread {@code tid} of this process; returns the errno, 0 on success. */
    public static int tgkill(int tid, int signal) {
        long r = Downcall.syscall(SYS_TGKILL, PID, tid, signal, 0, 0, 0);
        return r == -1 ? Downcall.errno() : 0;
    }

    /**
     * sigaction(2): install {@code handler} for {@code signal}, no flags (so blocking calls see
     * EINTR). The raw call needs a restorer, the trampoline the handler returns to (it makes
     * rt_sigreturn), which libc keeps private; the JVM's own SIGSEGV handler, installed through
     * libc, carries it, and is read here rather than linking libc's sigaction (a stub class of
     * its own, a cost in every VMM start, issue 18).
     */
    public static void sigaction(int signal, MemorySegment handler) {
        // struct sigaction for the x86_64 kernel: handler(8), flags(8), restorer(8), mask(8)
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment act = arena.allocate(KERNEL_SIGACTION_SIZE, 8);
            checked(SYS_RT_SIGACTION, "rt_sigaction", "SIGSEGV", SIGSEGV, 0, act.address(), SIGSET_SIZE, 0, 0);
            long restorer = act.get(JAVA_LONG, 16);
            if ((act.get(JAVA_LONG, 8) & SA_RESTORER) == 0 || restorer == 0) {
                throw new IllegalStateException("the JVM's SIGSEGV handler has no restorer to borrow for signal " + signal);
            }
            act.set(ADDRESS, 0, handler);
            act.set(JAVA_LONG, 8, SA_RESTORER);
            act.set(JAVA_LONG, 24, 0);
            checked(SYS_RT_SIGACTION, "rt_sigaction", Integer.toString(signal), signal, act.address(), 0, SIGSET_SIZE, 0, 0);
        }
    }

    /** The address of a libc function, for use as a native callback. */
    public static MemorySegment symbol(String name) {
        return Downcall.symbol(name);
    }

}
