package dev.jwsl.hypervisor.virtio;

/** Device-independent feature bits (VIRTIO 1.2 section 6, "Reserved Feature Bits"). */
public final class VirtioFeatures {
    /** Descriptors may point to tables of indirect descriptors (2.7.5.3). */
    public static final int RING_F_INDIRECT_DESC = 28;
    /** used_event / avail_event notification suppression (2.7.7, 2.7.10). */
    public static final int RING_F_EVENT_IDX = 29;
    /** A modern (non-legacy) device; required by jwsl's transport. */
    public static final int F_VERSION_1 = 32;

    private VirtioFeatures() {}

    /** The mask for feature {@code bit}. */
    public static long bit(int bit) {
        return 1L << bit;
    }

    /** True if {@code features} has {@code bit}. */
    public static boolean has(long features, int bit) {
        return (features & bit(bit)) != 0;
    }

    /** What every jwsl device offers of the ring and transport features (6. Reserved Feature Bits). */
    public static final long TRANSPORT = bit(F_VERSION_1) | bit(RING_F_EVENT_IDX) | bit(RING_F_INDIRECT_DESC);
}
