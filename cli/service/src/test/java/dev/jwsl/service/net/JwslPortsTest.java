package dev.jwsl.service.net;

import dev.jwsl.protocol.ports.PortsConstants;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
 * The guest half of localhost forwarding, {@code jwsl-ports} (guest-init/ports/portd.c), run on the host
 * from the very binary in the initramfs, on a Unix socket instead of vsock: what it reports about
 * listeners (sock_diag sees this host's sockets) and how it relays, driven by ports_protocol.h.
 */
class JwslPortsTest {
    private GuestPortsDaemon daemon;
    private Path socket;
    private final List<AutoCloseable> open = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        daemon = new GuestPortsDaemon();
        socket = daemon.socket;
    }

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : open) {
            c.close();
        }
        daemon.close();
    }

    private SocketChannel request(int kind, int port) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        ch.connect(UnixDomainSocketAddress.of(socket));
        ch.write(PortForwarder.request(kind, port));
        open.add(ch);
        return ch;
    }

    private ServerSocket listener(InetAddress address) throws IOException {
        ServerSocket s = new ServerSocket();
        s.bind(new InetSocketAddress(address, 0));
        open.add(s);
        return s;
    }

    /** Reads events until {@code port} has {@code op}, within 3 s; returns every port's last op. */
    private static Map<Integer, Integer> awaitEvent(InputStream in, Map<Integer, Integer> seen, int op, int port) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
        while (!Integer.valueOf(op).equals(seen.get(port))) {
            if (System.nanoTime() > deadline) {
                fail("no event " + op + " for port " + port + " within 3 s");
            }
            byte[] e = in.readNBytes(PortsConstants.EVENT_SIZE);
            assertEquals(PortsConstants.EVENT_SIZE, e.length, "the watch stream ended");
            ByteBuffer b = ByteBuffer.wrap(e).order(ByteOrder.LITTLE_ENDIAN);
            int o = Short.toUnsignedInt(b.getShort()), p = Short.toUnsignedInt(b.getShort());
            seen.put(p, o);
        }
        return seen;
    }

    @Test
    void watchReportsListenersOnAnyAddressAndTheirEnd() throws Exception {
        ServerSocket v4 = listener(InetAddress.getByName("127.0.0.1"));
        ServerSocket v6 = listener(InetAddress.getByName("::1"));
        ServerSocket any = listener(InetAddress.getByName("0.0.0.0"));
        SocketChannel watch = request(PortsConstants.WATCH, 0);
        InputStream in = Channels.newInputStream(watch);
        Map<Integer, Integer> seen = new HashMap<>();
        for (ServerSocket s : List.of(v4, v6, any)) {
            awaitEvent(in, seen, PortsConstants.LISTEN, s.getLocalPort());
        }
        ServerSocket later = listener(InetAddress.getByName("::"));
        awaitEvent(in, seen, PortsConstants.LISTEN, later.getLocalPort());
        v6.close();
        awaitEvent(in, seen, PortsConstants.CLOSED, v6.getLocalPort());
        // a second watcher replaces the first and starts from the full picture
        InputStream in2 = Channels.newInputStream(request(PortsConstants.WATCH, 0));
        Map<Integer, Integer> seen2 = new HashMap<>();
        awaitEvent(in2, seen2, PortsConstants.LISTEN, later.getLocalPort());
        assertEquals(-1, in.read(), "the first watcher's stream ends");
    }

    /** A CONNECT stream to {@code port}: the status byte, then the connection's bytes. */
    private InputStream connect(int port) throws IOException {
        return Channels.newInputStream(request(PortsConstants.CONNECT, port));
    }

    @Test
    void oneHundredConcurrentRelaysEchoOneMebibyteEach() throws Exception {
        ServerSocket echo = listener(InetAddress.getByName("127.0.0.1"));
        ExecutorService pool = Executors.newCachedThreadPool();
        open.add(pool::shutdownNow);
        pool.submit(() -> {
            while (!echo.isClosed()) {
                Socket c = echo.accept();
                pool.submit(() -> {
                    try (c) {
                        c.getInputStream().transferTo(c.getOutputStream()); // until the half-close
                    }
                    return null;
                });
            }
            return null;
        });
        long fdsBefore = fds() + 1; // + the sock_diag socket the first CONNECT's scan opens, kept for later scans
        int n = 100, size = 1 << 20;
        List<Future<?>> done = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            byte[] data = new byte[size];
            new Random(i).nextBytes(data);
            done.add(pool.submit(() -> {
                SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                try (ch) {
                    ch.connect(UnixDomainSocketAddress.of(socket));
                    ch.write(PortForwarder.request(PortsConstants.CONNECT, echo.getLocalPort()));
                    InputStream in = Channels.newInputStream(ch);
                    assertEquals(0, in.read(), "status: connected");
                    Future<?> writer = pool.submit(() -> {
                        OutputStream o = Channels.newOutputStream(ch);
                        o.write(data);
                        ch.shutdownOutput();
                        return null;
                    });
                    byte[] back = in.readNBytes(size + 1);
                    writer.get();
                    assertEquals(size, back.length);
                    assertArrayEquals(MessageDigest.getInstance("SHA-256").digest(data),
                            MessageDigest.getInstance("SHA-256").digest(back));
                }
                return null;
            }));
        }
        for (Future<?> f : done) {
            f.get(120, TimeUnit.SECONDS);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (fds() > fdsBefore && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertEquals(fdsBefore, fds(), "descriptors of finished relays are closed");
    }

    @Test
    void aClosedPortGivesItsErrnoAndGarbageIsDropped() throws Exception {
        ServerSocket gone = listener(InetAddress.getByName("127.0.0.1"));
        int port = gone.getLocalPort();
        gone.close();
        InputStream in = connect(port);
        assertEquals(111, in.read(), "ECONNREFUSED");
        assertEquals(-1, in.read());
        SocketChannel junk = SocketChannel.open(StandardProtocolFamily.UNIX);
        open.add(junk);
        junk.connect(UnixDomainSocketAddress.of(socket));
        junk.write(ByteBuffer.wrap(new byte[] {9, 9, 9, 9})); // kind 0x0909
        assertEquals(-1, Channels.newInputStream(junk).read(), "an unknown request ends the stream");
        assertTrue(daemon.process.isAlive());
        ServerSocket alive = listener(InetAddress.getByName("127.0.0.1"));
        InputStream in2 = connect(alive.getLocalPort());
        assertEquals(0, in2.read(), "still serving");
    }

    private long fds() throws IOException {
        return daemon.fds();
    }
}
