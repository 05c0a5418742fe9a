package dev.jwsl.hypervisor.net;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/** Just enough parsing of Ethernet frames to police what the guest sends; every read is bounds-checked. */
public final class Frames {
    public static final int ETH_HEADER = 14;
    public static final int ETHERTYPE_IPV4 = 0x0800, ETHERTYPE_ARP = 0x0806, ETHERTYPE_IPV6 = 0x86dd;
    public static final int PROTO_ICMP = 1, PROTO_TCP = 6, PROTO_UDP = 17, PROTO_ICMPV6 = 58;
    private static final int TCP_SYN = 0x02, TCP_ACK = 0x10;
    private static final int ICMP_ECHO = 8, ICMPV6_ECHO = 128;

    private Frames() {}

    /** The longest frame a link with {@code config}'s MTU carries (no VLAN tag). */
    public static int maxFrame(NetConfig config) {
        return ETH_HEADER + config.mtu();
    }

    static int u8(MemorySegment f, long at) {
        return at >= 0 && at < f.byteSize() ? f.get(JAVA_BYTE, at) & 0xff : -1;
    }

    static int u16(MemorySegment f, long at) {
        int hi = u8(f, at), lo = u8(f, at + 1);
        return hi < 0 || lo < 0 ? -1 : hi << 8 | lo;
    }

    /** The frame's EtherType, or -1 if it is shorter than an Ethernet header. */
    public static int etherType(MemorySegment f) {
        return f.byteSize() < ETH_HEADER ? -1 : u16(f, 12);
    }

    /**
     * The IP protocol and the offset of its header in an IPv4 or IPv6 frame (no IPv6 extension
     * headers, not a non-first IPv4 fragment), as {@code protocol << 32 | offset}; -1 otherwise.
     */
    public static long transport(MemorySegment f) {
        int type = etherType(f);
        if (type == ETHERTYPE_IPV4) {
            int vihl = u8(f, ETH_HEADER);
            int fragment = u16(f, ETH_HEADER + 6);
            if (vihl < 0 || vihl >> 4 != 4 || fragment < 0 || (fragment & 0x1fff) != 0) {
                return -1;
            }
            int proto = u8(f, ETH_HEADER + 9);
            return (long) proto << 32 | (ETH_HEADER + (vihl & 0xf) * 4L);
        }
        if (type == ETHERTYPE_IPV6) {
            int proto = u8(f, ETH_HEADER + 6);
            return proto < 0 ? -1 : (long) proto << 32 | (ETH_HEADER + 40L);
        }
        return -1;
    }

    /**
     * True if the frame may make the network stack open a host socket: a TCP SYN, any UDP
     * datagram, an ICMP echo request. (ARP, neighbour discovery and packets of open TCP
     * connections never do.)
     */
    public static boolean opensFlow(MemorySegment f) {
        long t = transport(f);
        if (t < 0) {
            return false;
        }
        int proto = (int) (t >>> 32);
        long l4 = t & 0xffffffffL;
        return switch (proto) {
            case PROTO_TCP -> {
                int flags = u8(f, l4 + 13);
                yield flags >= 0 && (flags & TCP_SYN) != 0 && (flags & TCP_ACK) == 0;
            }
            case PROTO_UDP -> true;
            case PROTO_ICMP -> u8(f, l4) == ICMP_ECHO;
            case PROTO_ICMPV6 -> u8(f, l4) == ICMPV6_ECHO;
            default -> false;
        };
    }
}
