package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Downcall;
import dev.jwsl.hypervisor.sys.Errno;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * How a server running as root serves a request as the user who attached: for the request's
 * length, the serving thread's file-system uid and gid and its supplementary groups are the
 * user's, so the host kernel makes every access check and gives every new file its owner as it
 * would for that user's own process (diod's way). The thread is root again once the request ends.
 *
 * <p>Per thread, because requests of different users run at once on the workers and on the
 * transports' threads: setfsuid(2) and setfsgid(2) are per thread on Linux (glibc passes them
 * straight to the kernel), but glibc's setgroups(3) changes every thread of the process (it
 * signals each one to follow), so the groups are set with the raw system call. Dropping the
 * fsuid from 0 also drops the capabilities that override file permissions (CAP_DAC_OVERRIDE,
 * CAP_FOWNER, CAP_CHOWN, CAP_MKNOD, ...) from the thread's effective set, and setting it back
 * restores them.
 *
 * <p>A virtual thread may move to another carrier thread between two system calls, taking its
 * credentials nowhere: a request is refused there rather than served as root. Whatever else the
 * JVM does on the thread meanwhile reads files it opened before (the class path's jars, the
 * runtime image), so a user who may not read them does not break the request.
 */
final class Credentials {
    private Credentials() {}

    private static final long SYS_SETGROUPS = 116; // x86_64
    private static final MethodHandle SETFSUID = Downcall.plain("setfsuid", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle SETFSGID = Downcall.plain("setfsgid", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle SYSCALL_SETGROUPS = Downcall.checked("syscall",
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS),
            (call, errno) -> new P9Error(errno, "setgroups"), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle GETGROUPS = Downcall.checked("getgroups",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), (call, errno) -> new P9Error(errno, "getgroups"));

    /** The server's own identity, which every thread returns to after a request. */
    private static final HostUser SERVER = server();

    /** Gives the thread back the server's identity when the request is done. */
    interface Scope extends AutoCloseable {
        @Override
        void close();
    }

    private static final Scope NOTHING = () -> {};

    /** Serves the rest of this request as {@code user}; null (a server that is not root) changes nothing. */
    static Scope actAs(HostUser user) {
        if (user == null || user.equals(SERVER)) {
            return NOTHING;
        }
        if (Thread.currentThread().isVirtual()) {
            throw new P9Error(Errno.EPERM, "a virtual thread cannot hold per-thread credentials");
        }
        try {
            become(user);
        } catch (RuntimeException e) {
            become(SERVER);
            throw e;
        }
        return () -> become(SERVER);
    }

    /** Groups first, while the thread still has CAP_SETGID; the fsuid last, which drops the file capabilities. */
    private static void become(HostUser u) {
        setgroups(u.groups());
        setfsgid(u.gid());
        setfsuid(u.uid());
    }

    private static void setgroups(int[] groups) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment list = a.allocate(JAVA_INT, Math.max(1, groups.length));
            MemorySegment.copy(groups, 0, list, JAVA_INT, 0, groups.length);
            long _ = (long) SYSCALL_SETGROUPS.invokeExact(SYS_SETGROUPS, (long) groups.length, list);
        } catch (Throwable t) {
            throw Downcall.rethrow(t);
        }
    }

    private static void setfsuid(int uid) {
        setFsId(SETFSUID, uid, "setfsuid");
    }

    private static void setfsgid(int gid) {
        setFsId(SETFSGID, gid, "setfsgid");
    }

    /** setfsuid and setfsgid never fail visibly (they answer the old id): asking again with -1 tells what it is now. */
    private static void setFsId(MethodHandle call, int id, String name) {
        try {
            int _ = (int) call.invokeExact(id);
            if ((int) call.invokeExact(-1) != id) {
                throw new P9Error(Errno.EPERM, name + "(" + id + ")");
            }
        } catch (Throwable t) {
            throw Downcall.rethrow(t);
        }
    }

    private static HostUser server() {
        try (Arena a = Arena.ofConfined()) {
            int uid = (int) SETFSUID.invokeExact(-1), gid = (int) SETFSGID.invokeExact(-1);
            int n = (int) GETGROUPS.invokeExact(0, MemorySegment.NULL);
            MemorySegment list = a.allocate(JAVA_INT, Math.max(1, n));
            n = (int) GETGROUPS.invokeExact(n, list);
            return new HostUser(uid, gid, list.asSlice(0, n * 4L).toArray(JAVA_INT));
        } catch (Throwable t) {
            throw Downcall.rethrow(t);
        }
    }
}
