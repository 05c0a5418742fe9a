package dev.jwsl.cli;

import dev.jwsl.hypervisor.sys.LibC;
import dev.jwsl.hypervisor.sys.SysCallException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The host terminal while a guest owns it: raw mode, so keys (Ctrl-C included) reach the guest's
 * own line discipline, restored on close or at JVM exit.
 */
final class HostTerminal implements AutoCloseable {
    private static final int STDIN = 0, STDOUT = 1;
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
    static int[] windowSize() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ws = arena.allocate(8);
            LibC.ioctl(STDOUT, TIOCGWINSZ, ws, "TIOCGWINSZ");
            return new int[] {Short.toUnsignedInt(ws.get(java.lang.foreign.ValueLayout.JAVA_SHORT, 0)),
                    Short.toUnsignedInt(ws.get(java.lang.foreign.ValueLayout.JAVA_SHORT, 2))};
        } catch (RuntimeException e) {
            return new int[] {24, 80};
        }
    }

    /** True when both stdin and stdout are terminals. */
    static boolean isInteractive() {
        return LibC.isatty(STDIN) && LibC.isatty(STDOUT);
    }

    /** Puts stdin's terminal in raw mode. */
    static HostTerminal raw() {
        MemorySegment saved = Arena.global().allocate(LibC.TERMIOS_SIZE, 8);
        try {
            LibC.tcgetattr(STDIN, saved);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment raw = arena.allocate(LibC.TERMIOS_SIZE, 8);
                raw.copyFrom(saved);
                LibC.cfmakeraw(raw);
                LibC.tcsetattr(STDIN, raw);
            }
            return new HostTerminal(saved);
        } catch (SysCallException e) {
            return none();
        }
    }

    /** No terminal to manage. */
    static HostTerminal none() {
        return new HostTerminal(null);
    }

    private void restore() {
        if (saved != null) {
            try {
                LibC.tcsetattr(STDIN, saved);
            } catch (SysCallException ignored) {
                // the terminal is gone
            }
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
}
