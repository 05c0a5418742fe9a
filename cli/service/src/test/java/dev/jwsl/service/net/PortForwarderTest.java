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
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The service's forwarder against the real guest daemon without a VM: the daemon and its
 * listeners ({@code busybox nc}) live in a network namespace of their own, as in a guest, and a
 * stand-in for the VMM's hybrid vsock ({@code CONNECT port} / {@code OK}, then a byte pipe to
 * jwsl-ports' Unix socket) joins it to the forwarder, which listens on this host's loopback.
 */
class PortForwarderTest {
    private static final InetAddress V4 = InetAddress.getLoopbackAddress();
    private GuestPortsDaemon daemon;
    private ServerSocketChannel vsock;
    private PortForwarder forwarder;
    private volatile boolean running = true;
    private final List<AutoCloseable> open = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        daemon = new GuestPortsDaemon(true);
        Path vsockPath = daemon.dir.resolve("vsock");
        vsock = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        vsock.bind(UnixDomainSocketAddress.of(vsockPath));
        Thread.ofVirtual().start(this::hybridVsock);
        forwarder = new PortForwarder(vsockPath, false);
        Thread.ofPlatform().daemon().start(() -> forwarder.follow(() -> running));
    }

    @AfterEach
    void stop() throws Exception {
        running = false;
        for (AutoCloseable c : open) {
            c.close();
        }
        forwarder.close();
        vsock.close();
        daemon.close();
    }

    /** The VMM's part: the CONNECT handshake, then bytes both ways to the guest's socket. */
    private void hybridVsock() {
        while (vsock.isOpen()) {
            try {
                SocketChannel host = vsock.accept();
                Thread.ofVirtual().start(() -> {
                    try (host; SocketChannel guest = SocketChannel.open(UnixDomainSocketAddress.of(daemon.socket))) {
                        StringBuilder line = new StringBuilder();
                        ByteBuffer one = ByteBuffer.allocate(1);
                        while (host.read(one.clear()) == 1 && one.get(0) != '\n') {
                            line.append((char) one.get(0));
                        }
                        assertEquals("CONNECT " + PortsConstants.PORT, line.toString());
                        host.write(ByteBuffer.wrap("OK 1\n".getBytes(StandardCharsets.US_ASCII)));
                        Thread up = Thread.ofVirtual().start(() -> pipe(host, guest));
                        pipe(guest, host);
                        up.join();
                    } catch (Exception e) {
                        // the stream ended
                    }
                });
            } catch (IOException e) {
                return;
            }
        }
    }

    private static void pipe(SocketChannel from, SocketChannel to) {
        try {
            Channels.newInputStream(from).transferTo(Channels.newOutputStream(to));
            to.shutdownOutput();
        } catch (IOException e) {
            // reset: the other direction ends too
        }
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail(what + " within 20 s");
            }
            Thread.sleep(20);
        }
    }

    /** Guest listeners on ports {@code first..first+count-1}: busybox nc, an echo server on the first. */
    private Process guestListeners(int first, int count) throws IOException {
        Process p = daemon.inNetwork("""
                busybox nc -ll -p %d -e /bin/cat &
                i=1; while [ $i -lt %d ]; do busybox nc -l -p $((%d + i)) & i=$((i + 1)); done
                wait""".formatted(first, count, first));
        open.add(() -> {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly().waitFor();
        });
        return p;
    }

    private static boolean hostPortFree(int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.bind(new InetSocketAddress(V4, port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    @Test
    void aListenerIsForwardedRelaysBothWaysAndIsReleased() throws Exception {
        int port = 20000;
        Process guest = guestListeners(port, 1);
        await("port " + port + " forwarded", () -> forwarder.ports().contains(port));
        byte[] data = new byte[1 << 20];
        new java.util.Random(1).nextBytes(data);
        try (Socket s = new Socket(V4, port)) {
            OutputStream o = s.getOutputStream();
            Thread w = Thread.ofVirtual().start(() -> {
                try {
                    o.write(data);
                    s.shutdownOutput(); // cat ends with its input: the echo ends
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            InputStream in = s.getInputStream();
            assertTrue(java.util.Arrays.equals(data, in.readAllBytes()), "1 MiB echoed intact through the forwarder");
            w.join();
        }
        guest.descendants().forEach(ProcessHandle::destroyForcibly);
        await("port " + port + " released", () -> !forwarder.ports().contains(port) && hostPortFree(port));
    }

    @Test
    void bytesSentBeforeTheGuestEndIsUpAndAnImmediateCloseArrive() throws Exception {
        int port = 20001;
        Path got = daemon.dir.resolve("got");
        Process guest = daemon.inNetwork("busybox nc -l -p " + port + " > " + got);
        open.add(() -> guest.destroyForcibly().waitFor());
        await("port " + port + " forwarded", () -> forwarder.ports().contains(port));
        try (Socket s = new Socket(V4, port)) {
            s.getOutputStream().write("sent, then closed at once".getBytes(StandardCharsets.US_ASCII));
        }
        assertTrue(guest.waitFor(20, TimeUnit.SECONDS), "the guest's nc saw the end of input");
        assertEquals("sent, then closed at once", java.nio.file.Files.readString(got));
    }

    @Test
    void aFloodOfListenersIsCappedAndReleased() throws Exception {
        int first = 20100, n = PortForwarder.MAX_PORTS + 50;
        Process guest = guestListeners(first, n);
        await(PortForwarder.MAX_PORTS + " ports forwarded", () -> forwarder.ports().size() == PortForwarder.MAX_PORTS);
        Thread.sleep(500);
        assertEquals(PortForwarder.MAX_PORTS, forwarder.ports().size(), "never more than the cap");
        guest.descendants().forEach(ProcessHandle::destroyForcibly);
        await("every port released", () -> forwarder.ports().isEmpty());
    }
}
