package dev.jwsl.hypervisor.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** An eventfd(2): KVM irqfd/ioeventfd endpoints and cross-thread wake-ups. */
public final class EventFd implements AutoCloseable {
    private final int fd;
    private volatile boolean closed;

    public EventFd(int flags) {
        this.fd = LibC.eventfd(0, flags | LibC.EFD_CLOEXEC);
    }

    public int fd() {
        return fd;
    }

    /** Adds 1 to the counter, waking a reader (for an irqfd: injects the interrupt). */
    public void signal() {
        try (Arena arena = Arena.ofConfined()) {
            LibC.write(fd, arena.allocateFrom(JAVA_LONG, 1L), "eventfd");
        }
    }

    /** Reads and clears the counter, blocking until it is non-zero unless EFD_NONBLOCK. */
    public long consume() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(JAVA_LONG);
            LibC.read(fd, buf, "eventfd");
            return buf.get(JAVA_LONG, 0);
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            LibC.close(fd);
        }
    }
}
