package dev.jwsl.hypervisor.memory;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Guest RAM, addressed by guest-physical address. Every access is bounds-checked: a range that
 * is not entirely inside one RAM region throws {@link GuestMemoryException} with
 * {@link GuestMemoryException.Reason#OUT_OF_RANGE}, so guest-supplied addresses and lengths can
 * be passed straight in. Multi-byte values are little-endian, as on x86.
 */
public interface GuestMemory extends AutoCloseable {
    /** The RAM regions, in ascending guest address order. */
    List<MemoryRegion> regions();

    /** Total RAM in bytes. */
    default long size() {
        return regions().stream().mapToLong(MemoryRegion::size).sum();
    }

    /**
     * A view of {@code length} bytes at {@code gpa}, valid until the memory is closed. For
     * bulk copies by devices and loaders; the view cannot reach outside the checked range.
     */
    MemorySegment slice(long gpa, long length);

    byte readByte(long gpa);

    short readShort(long gpa);

    int readInt(long gpa);

    long readLong(long gpa);

    void writeByte(long gpa, byte value);

    void writeShort(long gpa, short value);

    void writeInt(long gpa, int value);

    void writeLong(long gpa, long value);

    /** Copies {@code bytes} to guest memory at {@code gpa}. */
    default void write(long gpa, byte[] bytes) {
        MemorySegment.copy(MemorySegment.ofArray(bytes), 0, slice(gpa, bytes.length), 0, bytes.length);
    }

    /** Copies {@code src} to guest memory at {@code gpa}. */
    default void write(long gpa, MemorySegment src) {
        slice(gpa, src.byteSize()).copyFrom(src);
    }

    /** Reads {@code length} bytes at {@code gpa}. */
    default byte[] read(long gpa, int length) {
        byte[] out = new byte[length];
        MemorySegment.copy(slice(gpa, length), 0, MemorySegment.ofArray(out), 0, length);
        return out;
    }

    /** Unmaps the memory; the VM using it must be gone. */
    @Override
    void close();
}
