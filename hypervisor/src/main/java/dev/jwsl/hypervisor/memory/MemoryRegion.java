package dev.jwsl.hypervisor.memory;

/**
 * One contiguous range of guest RAM and where it lives in this process.
 *
 * @param guestBase   first guest-physical address
 * @param size        bytes
 * @param hostAddress address of the backing mapping in this process (for KVM_SET_USER_MEMORY_REGION)
 */
public record MemoryRegion(long guestBase, long size, long hostAddress) {
    public long guestEnd() {
        return guestBase + size;
    }

    boolean contains(long gpa, long length) {
        return length >= 0 && gpa >= guestBase && length <= size && gpa - guestBase <= size - length;
    }
}
