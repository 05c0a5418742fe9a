package dev.jwsl.hypervisor.net;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Locale;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Answers DNS queries for {@link NetConfig#HOST_NAME} sent to the network's resolver
 * ({@link NetConfig#DNS_V4}, {@link NetConfig#DNS_V6}) itself, so that the name resolves through
 * DNS as well as through /etc/hosts (tools such as nslookup and containers' resolvers ask DNS
 * only): A gives {@link NetConfig#HOST_V4}, AAAA {@link NetConfig#HOST_V6}, any other type an
 * empty answer. Every other query goes to the host's resolver as before.
 */
public final class HostNameResponder {
    private static final int DNS_PORT = 53;
    private static final int TYPE_A = 1, TYPE_AAAA = 28, CLASS_IN = 1;
    private static final int TTL = 60;
    private static final byte[] QNAME = encode(NetConfig.HOST_NAME);

    private HostNameResponder() {}

    /** The reply frame if {@code frame} is a query for the host's name to the resolver, else null. */
    public static byte[] reply(MemorySegment frame) {
        long t = Frames.transport(frame);
        if (t < 0 || (int) (t >>> 32) != Frames.PROTO_UDP) {
            return null;
        }
        int l4 = (int) (t & 0xffffffffL);
        boolean v6 = Frames.etherType(frame) == Frames.ETHERTYPE_IPV6;
        byte[] resolver = (v6 ? NetConfig.DNS_V6 : NetConfig.DNS_V4).getAddress();
        int dstAt = v6 ? Frames.ETH_HEADER + 24 : Frames.ETH_HEADER + 16;
        if (frame.byteSize() < l4 + 8 + 12 || Frames.u16(frame, l4 + 2) != DNS_PORT
                || !Arrays.equals(bytes(frame, dstAt, resolver.length), resolver)) {
            return null;
        }
        int udpLen = Frames.u16(frame, l4 + 4);
        if (udpLen < 8 + 12 || l4 + udpLen > frame.byteSize()) {
            return null;
        }
        byte[] dns = bytes(frame, l4 + 8, udpLen - 8);
        // header: one question, a standard query (QR=0, opcode 0)
        if ((dns[2] & 0xf8) != 0 || ((dns[4] & 0xff) << 8 | (dns[5] & 0xff)) != 1) {
            return null;
        }
        int q = 12;
        if (dns.length < q + QNAME.length + 4) {
            return null;
        }
        byte[] name = Arrays.copyOfRange(dns, q, q + QNAME.length);
        if (!new String(name, StandardCharsets.ISO_8859_1).toLowerCase(Locale.ROOT)
                .equals(new String(QNAME, StandardCharsets.ISO_8859_1))) {
            return null;
        }
        int qtype = (dns[q + QNAME.length] & 0xff) << 8 | (dns[q + QNAME.length + 1] & 0xff);
        int qclass = (dns[q + QNAME.length + 2] & 0xff) << 8 | (dns[q + QNAME.length + 3] & 0xff);
        byte[] address = qclass != CLASS_IN ? null
                : qtype == TYPE_A ? NetConfig.HOST_V4.getAddress()
                : qtype == TYPE_AAAA ? NetConfig.HOST_V6.getAddress() : null;
        int questionEnd = q + QNAME.length + 4;
        ByteBuffer answer = ByteBuffer.allocate(questionEnd + (address == null ? 0 : 12 + address.length));
        answer.put(dns, 0, 2) // id
                .put((byte) (0x84 | (dns[2] & 0x01))) // QR, AA, RD as asked
                .put((byte) 0x80) // RA, NOERROR
                .putShort((short) 1).putShort((short) (address == null ? 0 : 1)).putShort((short) 0).putShort((short) 0)
                .put(dns, 12, questionEnd - 12);
        if (address != null) {
            answer.putShort((short) 0xc00c).putShort((short) qtype).putShort((short) CLASS_IN).putInt(TTL)
                    .putShort((short) address.length).put(address);
        }
        return udpFrame(frame, v6, l4, answer.array());
    }

    /** A UDP datagram back to the query's sender, from the resolver's address and port. */
    private static byte[] udpFrame(MemorySegment query, boolean v6, int l4, byte[] payload) {
        int ipLen = v6 ? 40 : 20;
        int udpLen = 8 + payload.length;
        ByteBuffer f = ByteBuffer.allocate(Frames.ETH_HEADER + ipLen + udpLen);
        f.put(bytes(query, 6, 6)).put(bytes(query, 0, 6)).putShort((short) (v6 ? Frames.ETHERTYPE_IPV6 : Frames.ETHERTYPE_IPV4));
        byte[] src, dst;
        if (v6) {
            src = bytes(query, Frames.ETH_HEADER + 24, 16);
            dst = bytes(query, Frames.ETH_HEADER + 8, 16);
            f.putInt(0x60000000).putShort((short) udpLen).put((byte) Frames.PROTO_UDP).put((byte) 64).put(src).put(dst);
        } else {
            src = bytes(query, Frames.ETH_HEADER + 16, 4);
            dst = bytes(query, Frames.ETH_HEADER + 12, 4);
            int start = f.position();
            f.put((byte) 0x45).put((byte) 0).putShort((short) (ipLen + udpLen)).putShort((short) 0).putShort((short) 0x4000)
                    .put((byte) 64).put((byte) Frames.PROTO_UDP).putShort((short) 0).put(src).put(dst);
            f.putShort(start + 10, (short) checksum(f.array(), start, start + 20, 0));
        }
        int udpAt = f.position();
        f.putShort((short) DNS_PORT).putShort((short) Frames.u16(query, l4)).putShort((short) udpLen).putShort((short) 0).put(payload);
        long pseudo = sum(src, 0, src.length) + sum(dst, 0, dst.length) + Frames.PROTO_UDP + udpLen;
        int c = checksum(f.array(), udpAt, udpAt + udpLen, pseudo);
        f.putShort(udpAt + 6, (short) (c == 0 ? 0xffff : c));
        return f.array();
    }

    private static long sum(byte[] b, int from, int to) {
        long s = 0;
        for (int i = from; i < to; i += 2) {
            s += (b[i] & 0xff) << 8 | (i + 1 < to ? b[i + 1] & 0xff : 0);
        }
        return s;
    }

    private static int checksum(byte[] b, int from, int to, long initial) {
        long s = initial + sum(b, from, to);
        while (s >> 16 != 0) {
            s = (s & 0xffff) + (s >> 16);
        }
        return (int) ~s & 0xffff;
    }

    private static byte[] bytes(MemorySegment f, long at, int n) {
        if (at < 0 || at + n > f.byteSize()) {
            return new byte[0];
        }
        return f.asSlice(at, n).toArray(JAVA_BYTE);
    }

    /** A name in DNS wire form (labels, root), lower case. */
    private static byte[] encode(String name) {
        ByteBuffer b = ByteBuffer.allocate(name.length() + 2);
        for (String label : name.split("\\.")) {
            b.put((byte) label.length()).put(label.toLowerCase(Locale.ROOT).getBytes(StandardCharsets.US_ASCII));
        }
        b.put((byte) 0);
        return Arrays.copyOf(b.array(), b.position());
    }
}
