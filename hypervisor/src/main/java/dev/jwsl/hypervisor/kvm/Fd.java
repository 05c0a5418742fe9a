package dev.jwsl.hypervisor.kvm;

import dev.jwsl.hypervisor.sys.LibC;
import dev.jwsl.hypervisor.sys.SysCallException;

import java.lang.foreign.MemorySegment;

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

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            LibC.close(fd);
        }
    }
}
