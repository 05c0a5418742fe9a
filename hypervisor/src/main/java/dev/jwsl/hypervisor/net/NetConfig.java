package dev.jwsl.hypervisor.net;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * The guest's side of the user-mode network: fixed addresses, the same on every host, so that
 * scripts and documentation can name them. The host's loopback is reachable at {@link #HOST_V4}
 * and {@link #HOST_V6} (the name {@code host.internal}); {@link #DNS_V4} and {@link #DNS_V6}
 * relay DNS to the host's resolver.
 *
 * @param mtu the link MTU: large, so that one guest TCP segment carries up to 64 KiB (the
 *            network stack terminates TCP on the host side, so no real link ever sees it)
 */
public record NetConfig(int mtu) {
    /** IPv4: 10.0.2.0/24 as QEMU's and slirp4netns's user networking use it. */
    public static final Inet4Address NETWORK_V4 = v4("10.0.2.0");
    public static final int PREFIX_V4 = 24;
    public static final Inet4Address HOST_V4 = v4("10.0.2.2");
    public static final Inet4Address DNS_V4 = v4("10.0.2.3");
    public static final Inet4Address GUEST_V4 = v4("10.0.2.15");
    /** IPv6: a unique local prefix ("jwsl" in its global ID). */
    public static final Inet6Address NETWORK_V6 = v6("fd00:6a77:736c::");
    public static final int PREFIX_V6 = 64;
    public static final Inet6Address HOST_V6 = v6("fd00:6a77:736c::2");
    public static final Inet6Address DNS_V6 = v6("fd00:6a77:736c::3");
    public static final Inet6Address GUEST_V6 = v6("fd00:6a77:736c::15");
    /** The name of the host in the guest. */
    public static final String HOST_NAME = "host.internal";
    /** The guest's MAC address: locally administered, fixed. */
    public static final byte[] GUEST_MAC = {0x02, 0x6a, 0x77, 0x73, 0x6c, 0x01};
    /** The largest MTU the stack takes (libslirp's IF_MTU_MAX is 65521; slirp4netns uses 65520). */
    public static final int MAX_MTU = 65520;
    public static final int MIN_MTU = 1280;

    public NetConfig {
        if (mtu < MIN_MTU || mtu > MAX_MTU) {
            throw new IllegalArgumentException("network MTU must be " + MIN_MTU + ".." + MAX_MTU + ": " + mtu);
        }
    }

    /** The default: the largest MTU. */
    public NetConfig() {
        this(MAX_MTU);
    }

    /**
     * The guest init's kernel parameter ({@code jwsl_net=}, guest-init/net/net.c): the guest's
     * addresses, gateways and resolvers, and the MTU.
     */
    public String kernelParam() {
        return "jwsl_net=%s/%d,%s,%s,%s/%d,%s,%s,%d".formatted(
                GUEST_V4.getHostAddress(), PREFIX_V4, HOST_V4.getHostAddress(), DNS_V4.getHostAddress(),
                compact(GUEST_V6), PREFIX_V6, compact(HOST_V6), compact(DNS_V6), mtu);
    }

    /** The RFC 5952 text form (Java prints every group). */
    public static String compact(Inet6Address a) {
        byte[] b = a.getAddress();
        int bestStart = -1, bestLen = 0;
        for (int i = 0; i < 8; ) {
            int j = i;
            while (j < 8 && b[2 * j] == 0 && b[2 * j + 1] == 0) {
                j++;
            }
            if (j - i > bestLen && j - i > 1) {
                bestStart = i;
                bestLen = j - i;
            }
            i = j == i ? i + 1 : j;
        }
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                s.append(i == 0 ? "::" : ":");
                i += bestLen - 1;
                continue;
            }
            s.append(Integer.toHexString(((b[2 * i] & 0xff) << 8) | (b[2 * i + 1] & 0xff)));
            if (i < 7) {
                s.append(':');
            }
        }
        return s.toString();
    }

    private static Inet4Address v4(String s) {
        return (Inet4Address) literal(s);
    }

    private static Inet6Address v6(String s) {
        return (Inet6Address) literal(s);
    }

    private static InetAddress literal(String s) {
        try {
            return InetAddress.getByName(s); // a literal: no lookup
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException(s, e);
        }
    }
}
