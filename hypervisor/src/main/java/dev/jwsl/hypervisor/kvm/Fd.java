package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.sys.LibC;
import dev.jwsl.hypervisor.sys.SysCallException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** An owned KVM file descriptor: the one place where a failed ioctl becomes a {@link KvmException}. */
abstract class Fd implements AutoCloseable {
    private final int fd;
    private volatile boolean closed;

    Fd(int fd) {
        this.fd = fd;
    }

    final int fd() {
        return fd;
    }

    final int ioctl(long request, long arg, String name) {
        try {
            return LibC.ioctl(fd, request, arg, name);
        } catch (SysCallException e) {
            throw new KvmException(KvmException.Reason.IOCTL, e.getMessage(), e);
        }
    }

    final int ioctl(long request, MemorySegment arg, String name) {
        try {
            return LibC.ioctl(fd, request, arg, name);
        } catch (SysCallException e) {
            throw new KvmException(KvmException.Reason.IOCTL, e.getMessage(), e);
        }
    }

    /** An ioctl that fills a kernel structure of {@code size} bytes, returned as bytes (snapshot state). */
    final byte[] getStruct(long request, long size, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(size, 8);
            ioctl(request, buf, name);
            return buf.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** An ioctl that takes a kernel structure of {@code size} bytes, given as bytes from {@link #getStruct}. */
    final void setStruct(long request, byte[] value, long size, String name) {
        if (value.length != size) {
            throw new KvmException(KvmException.Reason.IOCTL, name + ": " + value.length + " bytes, KVM takes " + size);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(size, 8);
            MemorySegment.copy(value, 0, buf, ValueLayout.JAVA_BYTE, 0, value.length);
            ioctl(request, buf, name);
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
