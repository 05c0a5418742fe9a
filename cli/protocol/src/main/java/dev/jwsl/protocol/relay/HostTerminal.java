package dev.jwsl.protocol.relay;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The host terminal while a guest owns it: raw mode, so keys (Ctrl-C included) reach the guest's
 * own line discipline, restored on close or at JVM exit. It binds the five libc calls it needs
 * itself, so a client that relays a terminal does not load the VMM's system layer; a failed call
 * only means "no terminal", so no errno is captured.
 */
public final class HostTerminal implements AutoCloseable {
    private static final int STDIN = 0, STDOUT = 1;
    /** sizeof(struct termios) in glibc on x86_64. */
    private static final int TERMIOS_SIZE = 60;
    /** tcsetattr(3) action: apply once queued output is written, keep pending input. */
    private static final int TCSADRAIN = 1;
    private final MemorySegment saved;
    private final Thread restoreHook;

    private HostTerminal(MemorySegment saved) {
        this.saved = saved;
        this.restoreHook = saved == null ? null : new Thread(this::restore);
        if (restoreHook != null) {
            Runtime.getRuntime().addShutdownHook(restoreHook);
        }
    }

    /** TIOCGWINSZ (asm-generic/ioctls.h). */
    private static final long TIOCGWINSZ = 0x5413;

    /** {rows, cols} of the terminal on stdout, or {24, 80} when it cannot be read. */
    public static int[] windowSize() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ws = arena.allocate(8);
            if (ioctl(STDOUT, TIOCGWINSZ, ws) != 0) {
                return new int[] {24, 80};
            }
            return new int[] {Short.toUnsignedInt(ws.get(ValueLayout.JAVA_SHORT, 0)),
                    Short.toUnsignedInt(ws.get(ValueLayout.JAVA_SHORT, 2))};
        }
    }

    /**
     * True when both stdin and stdout are terminals: the launcher's answer ({@code JWSL_TTY},
     * from bin/wsl's and bin/jwsl-vmm's {@code [ -t ]}, free in the shell), else libc's isatty.
     */
    public static boolean isInteractive() {
        String tty = System.getenv("JWSL_TTY");
        if (tty != null && (tty.equals("0") || tty.equals("1"))) {
            return tty.equals("1");
        }
        return isatty(STDIN) == 1 && isatty(STDOUT) == 1;
    }

    /** Puts stdin's terminal in raw mode. */
    public static HostTerminal raw() {
        MemorySegment saved = Arena.global().allocate(TERMIOS_SIZE, 8);
        if (tcgetattr(STDIN, saved) != 0) {
            return none();
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment raw = arena.allocate(TERMIOS_SIZE, 8);
            raw.copyFrom(saved);
            cfmakeraw(raw);
            if (tcsetattr(STDIN, raw) != 0) {
                return none();
            }
        }
        return new HostTerminal(saved);
    }

    /** No terminal to manage. */
    public static HostTerminal none() {
        return new HostTerminal(null);
    }

    private void restore() {
        if (saved != null) {
            tcsetattr(STDIN, saved); // fails only when the terminal is gone
        }
    }

    @Override
    public void close() {
        restore();
        if (restoreHook != null) {
            try {
                Runtime.getRuntime().removeShutdownHook(restoreHook);
            } catch (IllegalStateException ignored) {
                // already shutting down: the hook runs anyway
            }
        }
    }

    /**
     * The libc calls, linked on first use: a launcher that answers {@link #isInteractive} itself
     * never pays for them (each linked call costs a generated class; tens of ms on the host).
     */
    private static final class Libc {
        static final MethodHandle ISATTY = libc("isatty", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        static final MethodHandle IOCTL = libc("ioctl",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), Linker.Option.firstVariadicArg(2));
        static final MethodHandle TCGETATTR = libc("tcgetattr", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        static final MethodHandle TCSETATTR = libc("tcsetattr",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        static final MethodHandle CFMAKERAW = libc("cfmakeraw", FunctionDescriptor.ofVoid(ADDRESS));
    }

    private static MethodHandle libc(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        Linker linker = Linker.nativeLinker();
        return linker.downcallHandle(linker.defaultLookup().findOrThrow(name), descriptor, options);
    }

    // invokeExact at each call site: no adapter is spun at run time, which a terminal client's
    // start-up would pay for.
    private static int isatty(int fd) {
        try {
            return (int) Libc.ISATTY.invokeExact(fd);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    private static int ioctl(int fd, long request, MemorySegment arg) {
        try {
            return (int) Libc.IOCTL.invokeExact(fd, request, arg);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    private static int tcgetattr(int fd, MemorySegment termios) {
        try {
            return (int) Libc.TCGETATTR.invokeExact(fd, termios);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    private static int tcsetattr(int fd, MemorySegment termios) {
        try {
            return (int) Libc.TCSETATTR.invokeExact(fd, TCSADRAIN, termios);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    private static void cfmakeraw(MemorySegment termios) {
        try {
            Libc.CFMAKERAW.invokeExact(termios);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }
}
