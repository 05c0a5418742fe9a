package dev.jwsl.hypervisor.devices.virtio.block;

import dev.jwsl.hypervisor.sys.Errno;
import dev.jwsl.hypervisor.sys.LibC;
import dev.jwsl.hypervisor.sys.SysCallException;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A raw disk image file opened for a block device: positional IO straight between the file and
 * guest memory (pread/pwrite on the guest's buffers, no copies), fdatasync, hole punching.
 * Locked with flock (exclusive read-write, shared read-only) so two VMMs never write one disk.
 * A read-only image may end mid-sector (a tarball handed to the guest as a disk): the device
 * sees it rounded up, and reads past the end return zeros.
 */
public final class DiskImage implements AutoCloseable {
    public static final int SECTOR = 512;

    private final Path path;
    private final int fd;
    private final boolean readOnly;
    private final long sizeBytes;
    private boolean punchSupported = true;

    private DiskImage(Path path, int fd, boolean readOnly, long sizeBytes) {
        this.path = path;
        this.fd = fd;
        this.readOnly = readOnly;
        this.sizeBytes = sizeBytes;
    }

    /**
     * Opens {@code path}.
     *
     * @throws DiskException (one line) if it is missing, not a regular file, locked by another
     *                       user, or (read-write) not a whole number of sectors
     */
    public static DiskImage open(Path path, boolean readOnly) {
        if (!Files.isRegularFile(path)) {
            throw new DiskException("disk image " + path + " is not a regular file");
        }
        int fd;
        try {
            fd = LibC.open(path.toString(), (readOnly ? LibC.O_RDONLY : LibC.O_RDWR) | LibC.O_CLOEXEC);
        } catch (SysCallException e) {
            throw new DiskException("cannot open disk image " + path + ": " + e.getMessage());
        }
        try {
            try {
                LibC.flock(fd, (readOnly ? LibC.LOCK_SH : LibC.LOCK_EX) | LibC.LOCK_NB, path.toString());
            } catch (SysCallException e) {
                throw new DiskException(e.errno() == Errno.EAGAIN
                        ? "disk image " + path + " is in use by another VM"
                        : "cannot lock disk image " + path + ": " + e.getMessage());
            }
            long size = LibC.size(fd, path.toString());
            if (!readOnly && size % SECTOR != 0) {
                throw new DiskException("disk image " + path + " is not a whole number of 512-byte sectors");
            }
            return new DiskImage(path, fd, readOnly, size);
        } catch (RuntimeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    public boolean readOnly() {
        return readOnly;
    }

    /** Size in sectors as the guest sees it (rounded up). */
    public long sectors() {
        return (sizeBytes + SECTOR - 1) / SECTOR;
    }

    /** Fills {@code dst} from byte {@code offset}; bytes past the end of the file read as zero. */
    void read(MemorySegment dst, long offset) {
        long done = 0;
        while (done < dst.byteSize()) {
            long n = LibC.pread(fd, dst.asSlice(done), offset + done, path.toString());
            if (n == 0) {
                dst.asSlice(done).fill((byte) 0);
                return;
            }
            done += n;
        }
    }

    void write(MemorySegment src, long offset) {
        long done = 0;
        while (done < src.byteSize()) {
            done += LibC.pwrite(fd, src.asSlice(done), offset + done, path.toString());
        }
    }

    void flush() {
        LibC.fdatasync(fd, path.toString());
    }

    /** Deallocates a range (reads back as zeros), or writes zeros where holes are not supported. */
    void punch(long offset, long length) {
        if (punchSupported) {
            try {
                LibC.fallocate(fd, LibC.FALLOC_FL_PUNCH_HOLE | LibC.FALLOC_FL_KEEP_SIZE, offset, length, path.toString());
                return;
            } catch (SysCallException e) {
                if (e.errno() != Errno.EOPNOTSUPP) {
                    throw e;
                }
                punchSupported = false;
            }
        }
        MemorySegment zeros = MemorySegment.ofArray(new byte[(int) Math.min(length, 1 << 20)]);
        for (long done = 0; done < length; ) {
            long n = Math.min(zeros.byteSize(), length - done);
            write(zeros.asSlice(0, n), offset + done);
            done += n;
        }
    }

    @Override
    public void close() {
        LibC.close(fd); // also drops the flock
    }
}
