package dev.jwsl.it;

import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Networking end to end through the service's default configuration (NAT on libslirp, localhost
 * forwarding on), from a busybox distro, on this machine's loopback only: host servers reached
 * from the guest over IPv4 and IPv6 and by name, host.internal through /etc/hosts and through
 * DNS, guest listeners reached at the host's 127.0.0.1 and ::1 and released when they stop,
 * 100 concurrent forwarded connections each echoing 1 MiB, a port the host already uses skipped.
 */
@ExtendWith(ServiceLogsOnFailure.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class NetworkIT {
    private static final InetAddress V4 = InetAddress.getLoopbackAddress();
    private static final InetAddress V6 = address("::1");
    private static WslHarness h;
    private static HttpServer hostV4, hostV6;

    private static InetAddress address(String literal) {
        try {
            return InetAddress.getByName(literal);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @BeforeAll
    static void setUp() throws Exception {
        h = new WslHarness("jwsl-net-it", 900);
        hostV4 = server(V4, "hello over IPv4");
        hostV6 = server(V6, "hello over IPv6");
        Path rootfs = h.base.resolve("rootfs");
        DistroIT.buildRootfs(rootfs);
        DistroIT.sh("""
                set -e
                r=%s
                for a in wget nc httpd nslookup killall setsid head; do ln -s busybox $r/bin/$a; done
                printf '[user]\\ndefault = alice\\n' > $r/etc/wsl.conf
                mkdir -p $r/srv/www && echo 'served by the guest' > $r/srv/www/index.html
                musl-gcc -static -O2 -o $r/bin/netbench %s
                tar --numeric-owner -C $r -czf %s .
                """.formatted(rootfs, h.root.resolve("scripts/netbench.c"), h.base.resolve("rootfs.tar.gz")));
        ok(h.wsl("", "--import", "net", h.base.resolve("net").toString(), h.base.resolve("rootfs.tar.gz").toString()));
    }

    private static HttpServer server(InetAddress address, String body) throws IOException {
        HttpServer s = HttpServer.create(new InetSocketAddress(address, 0), 16);
        s.createContext("/", ex -> {
            byte[] b = body.getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(200, b.length);
            try (OutputStream o = ex.getResponseBody()) {
                o.write(b);
            }
        });
        s.start();
        return s;
    }

    @AfterAll
    static void tearDown() throws Exception {
        if (hostV4 != null) {
            hostV4.stop(0);
            hostV6.stop(0);
        }
        try {
            h.assertNoGuestCrashes();
        } finally {
            h.wsl("", "--shutdown", "--force");
            h.killService();
            h.close();
        }
    }

    private static WslHarness.Result ok(WslHarness.Result r) {
        assertEquals(0, r.exit(), r.toString());
        return r;
    }

    /** A shell script in the distro as root. */
    private static String root(String script) throws Exception {
        return ok(h.wsl("", "-u", "root", "--", "sh", "-c", "set -e; " + script)).stdout();
    }

    @Test
    @Order(1)
    void hostServersOnLoopbackAreReachedThroughTheHostAddress() throws Exception {
        int p4 = hostV4.getAddress().getPort(), p6 = hostV6.getAddress().getPort();
        String out = root("wget -q -O- http://10.0.2.2:%d/; echo; wget -q -O- 'http://[fd00:6a77:736c::2]:%d/'; echo; "
                .formatted(p4, p6) + "wget -q -O- http://host.internal:%d/".formatted(p4));
        assertEquals("hello over IPv4\nhello over IPv6\nhello over IPv4", out);
    }

    @Test
    @Order(2)
    void hostInternalResolvesThroughHostsAndDns() throws Exception {
        String files = root("cat /etc/resolv.conf /etc/hosts");
        assertTrue(files.contains("nameserver 10.0.2.3\n") && files.contains("nameserver fd00:6a77:736c::3\n"), files);
        assertTrue(files.contains("10.0.2.2\thost.internal\n") && files.contains("fd00:6a77:736c::2\thost.internal\n"), files);
        String dns = root("nslookup host.internal 10.0.2.3");
        assertTrue(dns.contains("10.0.2.2") && dns.contains("fd00:6a77:736c::2"), dns);
    }

    /** Milliseconds until {@code address:port} accepts (or, with {@code open} false, refuses) a connection. */
    private static long waitFor(InetAddress address, int port, boolean open) throws Exception {
        long t0 = System.nanoTime();
        long deadline = t0 + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            boolean accepts;
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(address, port), 1000);
                accepts = true;
            } catch (IOException e) {
                accepts = false;
            }
            if (accepts == open) {
                return (System.nanoTime() - t0) / 1_000_000;
            }
            Thread.sleep(20);
        }
        return fail("host " + address.getHostAddress() + ":" + port + (open ? " never accepted" : " was never released"));
    }

    private static String get(InetAddress address, int port) throws IOException {
        try (Socket s = new Socket(address, port)) {
            s.setSoTimeout(60_000);
            s.getOutputStream().write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            String reply = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            return reply.substring(reply.indexOf("\r\n\r\n") + 4);
        }
    }

    @Test
    @Order(3)
    void aGuestListenerIsForwardedFromHostLoopbackAndReleased() throws Exception {
        int port = 18080;
        root("httpd -p " + port + " -h /srv/www");
        long v4 = waitFor(V4, port, true);
        long v6 = waitFor(V6, port, true);
        System.out.printf("NetworkIT: guest port %d reachable at 127.0.0.1 after %d ms, at ::1 after %d ms more%n", port, v4, v6);
        assertEquals("served by the guest\n", get(V4, port));
        assertEquals("served by the guest\n", get(V6, port));
        root("killall httpd");
        long released = waitFor(V4, port, false);
        waitFor(V6, port, false);
        System.out.printf("NetworkIT: host port %d released %d ms after the guest listener stopped%n", port, released);
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(V4, port)); // the service let go of it
        }
    }

    /** scripts/netbench.c's download pattern: byte i of a download. */
    private static byte pattern(long i) {
        return (byte) (i ^ (i >> 8) ^ (i >> 16) ^ 0x5a);
    }

    /** A netbench download ('d' + u64 LE count) through {@code address:port}: every byte checked. */
    private static void download(InetAddress address, int port, int size) throws IOException {
        try (Socket s = new Socket(address, port)) {
            s.setSoTimeout(600_000);
            s.getOutputStream().write(java.nio.ByteBuffer.allocate(9).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .put((byte) 'd').putLong(size).array());
            byte[] got = s.getInputStream().readAllBytes();
            assertEquals(size, got.length, "bytes through " + address.getHostAddress());
            for (int i = 0; i < size; i++) {
                if (got[i] != pattern(i)) {
                    fail("byte " + i + " through " + address.getHostAddress() + " is wrong");
                }
            }
        }
    }

    @Test
    @Order(4)
    void oneHundredConcurrentForwardedConnectionsEachCarryOneMebibyte() throws Exception {
        int port = 18081, n = 100, size = 1 << 20;
        root("setsid netbench serve " + port + " </dev/null >/dev/null 2>&1 &");
        // Half the connections go to ::1: its listener is bound a moment after 127.0.0.1's.
        waitFor(V4, port, true);
        waitFor(V6, port, true);
        ExecutorService pool = Executors.newFixedThreadPool(n);
        long t0 = System.nanoTime();
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                InetAddress to = i % 2 == 0 ? V4 : V6;
                done.add(pool.submit(() -> {
                    download(to, port, size);
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get(900, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        System.out.printf("NetworkIT: %d concurrent forwarded downloads of 1 MiB in %.1f s%n", n, (System.nanoTime() - t0) / 1e9);
        root("killall netbench");
    }

    @Test
    @Order(5)
    void uploadsReachTheGuestIntactWithTheirHalfClose() throws Exception {
        int port = 18082, n = 10, size = 128 << 10;
        root("setsid nc -ll -p " + port + " -e cat </dev/null >/dev/null 2>&1 &");
        waitFor(V4, port, true);
        waitFor(V6, port, true);
        ExecutorService pool = Executors.newFixedThreadPool(2 * n);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                byte[] data = new byte[size];
                new Random(i).nextBytes(data);
                InetAddress to = i % 2 == 0 ? V4 : V6;
                done.add(pool.submit(() -> {
                    try (Socket s = new Socket(to, port)) {
                        s.setSoTimeout(600_000);
                        Future<?> writer = pool.submit(() -> {
                            OutputStream o = s.getOutputStream();
                            o.write(data);
                            s.shutdownOutput(); // cat sees end of input and exits: the echo ends
                            return null;
                        });
                        byte[] back = s.getInputStream().readAllBytes();
                        writer.get();
                        assertArrayEquals(data, back, "echoed intact");
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get(900, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        root("killall nc");
    }

    @Test
    @Order(6)
    void aPortTheHostUsesIsSkippedAndLogged() throws Exception {
        try (ServerSocket taken = new ServerSocket()) {
            taken.bind(new InetSocketAddress(V4, 0));
            int port = taken.getLocalPort();
            root("setsid nc -l -p " + port + " </dev/null >/dev/null 2>&1 &");
            Path log = h.base.resolve("state/jwsl/service.log");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            String want = "guest port " + port + ": cannot listen on the host's 127.0.0.1";
            while (!Files.readString(log).contains(want)) {
                if (System.nanoTime() > deadline) {
                    fail("no log line '" + want + "' in " + log);
                }
                Thread.sleep(50);
            }
            // the guest listener is still reached where the host had the port free
            waitFor(V6, port, true);
            root("killall nc");
        }
    }
}
