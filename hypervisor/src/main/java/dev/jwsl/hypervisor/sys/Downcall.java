package dev.jwsl.hypervisor.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The one place libc functions are linked, and errno captured and checked.
 *
 * <p>Each factory returns a handle of the C function's own type, to be kept in a
 * {@code static final} field and called with {@code invokeExact}:
 * <ul>
 *   <li>{@link #checked}: a result of -1 throws what a {@link Failure} makes of the function's
 *       name and errno; any other result is returned.</li>
 *   <li>{@link #capturing}: returns -1 as it is, for callers to whom some errno is no failure
 *       (EINTR, EAGAIN): they read it with {@link #errno()}.</li>
 *   <li>{@link #plain}: no errno at all, for calls that cannot fail or whose failure is ignored.</li>
 * </ul>
 *
 * <p>N.B. jextract's generated functions cannot capture errno, and its variadic ones take
 * {@code Object...}: variadic functions are linked here with {@link Linker.Option#firstVariadicArg}.
 */
public final class Downcall {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    /**
     * One capture buffer per thread, allocated on its first call and freed with it. Why not one
     * per call: a call must not allocate (the 9P server and KVM_RUN are hot paths), and errno is
     * read back on the thread that made the call, right after it, so a thread's buffer is never
     * shared. The handles fetch it themselves, so call sites never see it.
     */
    private static final ThreadLocal<MemorySegment> STATE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CALL_STATE));

    private static final MethodHandle STATE_GET;
    static {
        try {
            STATE_GET = MethodHandles.lookup().findStatic(Downcall.class, "state",
                    MethodType.methodType(MemorySegment.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * {@code long syscall(long number, ...)} with six variadic longs, capturing errno (the
     * buffer is the first argument). Every system call goes through this one handle, because
     * each distinct function shape the linker sees costs a generated stub class: ~15 ms each on a
     * host, seconds in all under emulation, where the VMM's start-up is measured (issue 18).
     */
    private static final MethodHandle SYSCALL = LINKER.downcallHandle(symbol("syscall"),
            FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
            Linker.Option.firstVariadicArg(1), Linker.Option.captureCallState("errno"));

    private Downcall() {}

    /**
     * System call {@code number} (x86_64 numbering: jwsl runs x86 guests on x86 hosts only) with
     * arguments {@code a1..a6} (pointers as addresses, unused ones 0): its result as the kernel
     * gave it, -1 with {@link #errno()} set on failure. The caller keeps any memory it passes
     * reachable until the call returns.
     */
    public static long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6) {
        try {
            return (long) SYSCALL.invokeExact(state(), number, a1, a2, a3, a4, a5, a6);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** What a failed call throws, made from the call ({@code "open(/dev/kvm)"}) and its errno. */
    @FunctionalInterface
    public interface Failure {
        RuntimeException exception(String call, int errno);
    }

    /** libc function {@code name}, without errno capture. */
    public static MethodHandle plain(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(symbol(name), descriptor);
    }

    /**
     * libc function {@code name} with errno capture: its result as it is, errno for
     * {@link #errno()}. {@code options} are further linker options, e.g. the first variadic
     * argument.
     */
    public static MethodHandle capturing(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        Linker.Option[] all = Arrays.copyOf(options, options.length + 1);
        all[options.length] = Linker.Option.captureCallState("errno");
        // The raw handle takes the capture buffer first; fill it in from this thread's.
        return MethodHandles.foldArguments(LINKER.downcallHandle(symbol(name), descriptor, all), 0, STATE_GET);
    }

    /** libc function {@code name}; a result of -1 throws {@code failure}'s exception for its errno. */
    public static MethodHandle checked(String name, FunctionDescriptor descriptor, Failure failure,
                                       Linker.Option... options) {
        MethodHandle call = capturing(name, descriptor, options);
        return MethodHandles.filterReturnValue(call,
                MethodHandles.insertArguments(checker(call, name), 1, null, failure, name));
    }

    /** The errno this thread's last errno-capturing call left; read it before the next one. */
    public static int errno() {
        return (int) ERRNO.get(state(), 0L);
    }

    /** The address of libc function {@code name}. */
    public static MemorySegment symbol(String name) {
        return LINKER.defaultLookup().find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
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

    private static MemorySegment state() {
        return STATE.get();
    }

    /** The {@code check} below for {@code call}'s result type: (result, subject, failure, name). */
    private static MethodHandle checker(MethodHandle call, String name) {
        Class<?> result = call.type().returnType();
        try {
            return MethodHandles.lookup().findStatic(Downcall.class, "check",
                    MethodType.methodType(result, result, String.class, Failure.class, String.class));
        } catch (ReflectiveOperationException e) {
            throw new IllegalArgumentException(name + " returns " + result + ", which has no -1 to check", e);
        }
    }

    private static int check(int result, String subject, Failure failure, String name) {
        if (result == -1) {
            throw failed(subject, failure, name);
        }
        return result;
    }

    private static long check(long result, String subject, Failure failure, String name) {
        if (result == -1L) {
            throw failed(subject, failure, name);
        }
        return result;
    }

    /** For pointer results such as mmap's, where -1 is MAP_FAILED. */
    private static MemorySegment check(MemorySegment result, String subject, Failure failure, String name) {
        if (result.address() == -1L) {
            throw failed(subject, failure, name);
        }
        return result;
    }

    private static RuntimeException failed(String subject, Failure failure, String name) {
        return failure.exception(call(name, subject), errno());
    }

    /** How a failure names its call: {@code name(subject)}, or {@code name} without a subject. */
    static String call(String name, String subject) {
        return subject == null ? name : name + "(" + subject + ")";
    }
}
