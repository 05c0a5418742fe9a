package dev.jwsl.hypervisor.memory;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Bytes spread over several memory segments, read and written as one range: the guest buffers
 * of a virtio descriptor chain, or one socket buffer. Devices hand the segments themselves to
 * host I/O (pread/pwrite straight into guest memory, no copy through the Java heap).
 */
public record Scatter(List<MemorySegment> parts, long length) {
    public Scatter {
        parts = List.copyOf(parts);
    }

    /** One contiguous buffer. */
    public static Scatter of(MemorySegment segment) {
        return new Scatter(List.of(segment), segment.byteSize());
    }

    /** Segments in order. */
    public static Scatter of(List<MemorySegment> parts) {
        long n = 0;
        for (MemorySegment p : parts) {
            n += p.byteSize();
        }
        return new Scatter(parts, n);
    }

    /** The bytes [offset, offset + length), clamped to what there is. */
    public Scatter slice(long offset, long count) {
        List<MemorySegment> out = new ArrayList<>();
        long skip = Math.max(0, offset);
        long left = Math.max(0, Math.min(count, length - skip));
        long total = left;
        for (MemorySegment p : parts) {
            if (left == 0) {
                break;
            }
            if (skip >= p.byteSize()) {
                skip -= p.byteSize();
                continue;
            }
            long n = Math.min(p.byteSize() - skip, left);
            out.add(p.asSlice(skip, n));
            left -= n;
            skip = 0;
        }
        return new Scatter(out, total);
    }

    /** Copies up to {@code dst.length} bytes from {@code offset}; returns how many. */
    public int read(long offset, byte[] dst) {
        return read(offset, dst, 0, dst.length);
    }

    /** Copies up to {@code n} bytes from {@code offset} into {@code dst[dstOffset..]}; returns how many. */
    public int read(long offset, byte[] dst, int dstOffset, int n) {
        return copy(offset, MemorySegment.ofArray(dst), dstOffset, n, false);
    }

    /** Copies {@code n} bytes of {@code src} to {@code offset}; returns how many fit. */
    public int write(long offset, byte[] src, int n) {
        return write(offset, src, 0, n);
    }

    /** Copies {@code src[srcOffset..srcOffset+n)} to {@code offset}; returns how many fit. */
    public int write(long offset, byte[] src, int srcOffset, int n) {
        return copy(offset, MemorySegment.ofArray(src), srcOffset, n, true);
    }

    /** Copies up to {@code dst.byteSize()} bytes from {@code offset} into {@code dst}; returns how many. */
    public int read(long offset, MemorySegment dst) {
        return copy(offset, dst, 0, (int) Math.min(dst.byteSize(), Integer.MAX_VALUE), false);
    }

    /** Copies all of {@code src} to {@code offset}; returns how many bytes fit. */
    public int write(long offset, MemorySegment src) {
        return copy(offset, src, 0, (int) Math.min(src.byteSize(), Integer.MAX_VALUE), true);
    }

    private int copy(long offset, MemorySegment buf, long bufOffset, int n, boolean into) {
        if (offset < 0 || n < 0 || bufOffset < 0 || bufOffset + n > buf.byteSize()) {
            throw new IndexOutOfBoundsException("offset " + offset + " length " + n);
        }
        int done = 0;
        long skip = offset;
        for (MemorySegment p : parts) {
            if (done == n) {
                break;
            }
            if (skip >= p.byteSize()) {
                skip -= p.byteSize();
                continue;
            }
            int k = (int) Math.min(p.byteSize() - skip, n - done);
            if (into) {
                MemorySegment.copy(buf, bufOffset + done, p, skip, k);
            } else {
                MemorySegment.copy(p, skip, buf, bufOffset + done, k);
            }
            done += k;
            skip = 0;
        }
        return done;
    }
}
