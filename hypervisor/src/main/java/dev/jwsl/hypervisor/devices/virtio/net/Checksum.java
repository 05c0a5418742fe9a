package dev.jwsl.hypervisor.devices.virtio.net;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/** The Internet checksum (RFC 1071) a driver leaves to the device with VIRTIO_NET_HDR_F_NEEDS_CSUM. */
final class Checksum {
    private Checksum() {}

    /**
     * Completes a partial checksum (5.1.6.2): sums {@code frame[start..]} (the guest already put
     * the pseudo-header's sum in the checksum field) and stores the complement at
     * {@code start + offset}. False, and nothing changed, if the offsets do not fit the frame.
     */
    static boolean complete(MemorySegment frame, int start, int offset) {
        long len = frame.byteSize();
        if (start >= len || (long) start + offset + 2 > len) {
            return false;
        }
        long sum = 0;
        long i = start;
        for (; i + 1 < len; i += 2) {
            sum += (frame.get(JAVA_BYTE, i) & 0xff) << 8 | (frame.get(JAVA_BYTE, i + 1) & 0xff);
        }
        if (i < len) {
            sum += (frame.get(JAVA_BYTE, i) & 0xff) << 8;
        }
        while ((sum >> 16) != 0) {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        int c = (int) ~sum & 0xffff;
        frame.set(JAVA_BYTE, start + offset, (byte) (c >> 8));
        frame.set(JAVA_BYTE, start + offset + 1, (byte) c);
        return true;
    }
}
