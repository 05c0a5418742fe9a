package dev.jwsl.hypervisor.virtio;

/**
 * One split-ring descriptor ({@code struct virtq_desc}, VIRTIO 1.2 2.7.5): a guest buffer.
 *
 * @param address guest-physical address of the buffer
 * @param length  buffer length in bytes (unsigned 32-bit, held in a long)
 * @param flags   {@code VIRTQ_DESC_F_*}
 * @param next    index of the next descriptor when {@link #hasNext()}
 */
public record Descriptor(long address, long length, int flags, int next) {
    /** Size of {@code struct virtq_desc}. */
    public static final int SIZE = 16;
    /** The buffer continues via {@code next} (2.7.5). */
    public static final int F_NEXT = 1;
    /** The buffer is device write-only, otherwise device read-only (2.7.5). */
    public static final int F_WRITE = 2;
    /** The buffer holds a table of indirect descriptors (2.7.5.3). */
    public static final int F_INDIRECT = 4;

    public boolean hasNext() {
        return (flags & F_NEXT) != 0;
    }

    /** True for a device-writable buffer. */
    public boolean isWritable() {
        return (flags & F_WRITE) != 0;
    }

    public boolean isIndirect() {
        return (flags & F_INDIRECT) != 0;
    }
}
