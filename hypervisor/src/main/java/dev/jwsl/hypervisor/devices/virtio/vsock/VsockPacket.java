package dev.jwsl.hypervisor.devices.virtio.vsock;

import dev.jwsl.hypervisor.virtio.DescriptorChain;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A vsock packet: {@code struct virtio_vsock_hdr} (5.10.6, 44 bytes, little-endian, packed) as a
 * view over a heap segment, and its payload.
 *
 * <pre>
 *   0 le64 src_cid   8 le64 dst_cid   16 le32 src_port  20 le32 dst_port  24 le32 len
 *  28 le16 type     30 le16 op       32 le32 flags     36 le32 buf_alloc 40 le32 fwd_cnt
 * </pre>
 */
public final class VsockPacket {
    /** sizeof(struct virtio_vsock_hdr). */
    public static final int HDR_SIZE = 44;

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED;

    private final MemorySegment hdr;
    private byte[] payload = new byte[0];

    /** An all-zero header with no payload. */
    public VsockPacket() {
        this(new byte[HDR_SIZE]);
    }

    /** A view of the 44 header bytes {@code header} (copied by the caller if needed). */
    public VsockPacket(byte[] header) {
        if (header.length != HDR_SIZE) {
            throw new IllegalArgumentException("a vsock header is 44 bytes");
        }
        this.hdr = MemorySegment.ofArray(header);
    }

    /**
     * Parses the readable part of a TX chain: header, then {@code len} payload bytes.
     *
     * @throws VsockException if the chain is too short or the length is out of bounds
     */
    public static VsockPacket fromTx(DescriptorChain chain) {
        if (chain.readableLength() < HDR_SIZE) {
            throw new VsockException(VsockException.Reason.HEADER_TOO_SHORT, chain.readableLength() + " bytes");
        }
        byte[] h = new byte[HDR_SIZE];
        chain.read(0, h, 0, HDR_SIZE);
        VsockPacket p = new VsockPacket(h);
        long len = Integer.toUnsignedLong(p.len());
        if (len > VsockConstants.MAX_PKT_PAYLOAD) {
            throw new VsockException(VsockException.Reason.PAYLOAD_TOO_LONG, "len " + len);
        }
        if (len > chain.readableLength() - HDR_SIZE) {
            throw new VsockException(VsockException.Reason.PAYLOAD_MISSING,
                    "len " + len + " but " + (chain.readableLength() - HDR_SIZE) + " bytes follow the header");
        }
        byte[] data = new byte[(int) len];
        chain.read(HDR_SIZE, data, 0, data.length);
        p.payload = data;
        return p;
    }

    /**
     * Writes header and payload into the writable part of an RX chain; returns the bytes written.
     *
     * @throws VsockException if they do not fit
     */
    public int writeTo(DescriptorChain chain) {
        int total = HDR_SIZE + payload.length;
        if (chain.writableLength() < total) {
            throw new VsockException(VsockException.Reason.RX_BUFFER_TOO_SMALL,
                    chain.writableLength() + " bytes for a " + total + "-byte packet");
        }
        chain.write(0, hdr.toArray(ValueLayout.JAVA_BYTE), 0, HDR_SIZE);
        chain.write(HDR_SIZE, payload, 0, payload.length);
        return total;
    }

    /** The header bytes (a copy). */
    public byte[] header() {
        return hdr.toArray(ValueLayout.JAVA_BYTE);
    }

    public byte[] payload() {
        return payload;
    }

    /** Sets the payload and {@code len}. */
    public VsockPacket payload(byte[] data) {
        this.payload = data;
        return len(data.length);
    }

    public long srcCid() { return hdr.get(LONG, 0); }
    public VsockPacket srcCid(long v) { hdr.set(LONG, 0, v); return this; }
    public long dstCid() { return hdr.get(LONG, 8); }
    public VsockPacket dstCid(long v) { hdr.set(LONG, 8, v); return this; }
    public int srcPort() { return hdr.get(INT, 16); }
    public VsockPacket srcPort(int v) { hdr.set(INT, 16, v); return this; }
    public int dstPort() { return hdr.get(INT, 20); }
    public VsockPacket dstPort(int v) { hdr.set(INT, 20, v); return this; }
    public int len() { return hdr.get(INT, 24); }
    public VsockPacket len(int v) { hdr.set(INT, 24, v); return this; }
    public int type() { return Short.toUnsignedInt(hdr.get(SHORT, 28)); }
    public VsockPacket type(int v) { hdr.set(SHORT, 28, (short) v); return this; }
    public int op() { return Short.toUnsignedInt(hdr.get(SHORT, 30)); }
    public VsockPacket op(int v) { hdr.set(SHORT, 30, (short) v); return this; }
    public int flags() { return hdr.get(INT, 32); }
    public VsockPacket flags(int v) { hdr.set(INT, 32, v); return this; }
    public int bufAlloc() { return hdr.get(INT, 36); }
    public VsockPacket bufAlloc(int v) { hdr.set(INT, 36, v); return this; }
    public int fwdCnt() { return hdr.get(INT, 40); }
    public VsockPacket fwdCnt(int v) { hdr.set(INT, 40, v); return this; }

    @Override
    public String toString() {
        return "VsockPacket[%d:%d -> %d:%d op=%d type=%d len=%d flags=%d buf_alloc=%d fwd_cnt=%d]".formatted(
                srcCid(), Integer.toUnsignedLong(srcPort()), dstCid(), Integer.toUnsignedLong(dstPort()), op(), type(),
                Integer.toUnsignedLong(len()), flags(), Integer.toUnsignedLong(bufAlloc()), Integer.toUnsignedLong(fwdCnt()));
    }
}
