package dev.jwsl.protocol.relay;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The host side of the VMM's hybrid vsock (Firecracker's scheme): connect to its Unix socket,
 * send {@code CONNECT <port>\n}, read {@code OK <host port>\n}; the stream then reaches the
 * guest's listener on that vsock port.
 */
public final class HybridVsock {
    /**
     * How long the VMM may take to answer: past its own limit for the guest's answer (30 s, then
     * it refuses), so that only a VMM that hangs itself meets this one. A host under load can
     * keep a healthy guest from answering for over 10 s (issue 29).
     */
    public static final long HANDSHAKE_TIMEOUT_MS = 60_000;

    private HybridVsock() {}

    /** The handshake's first line. */
    public static String connectLine(int port) {
        return "CONNECT " + port + "\n";
    }

    /**
     * A blocking stream to guest port {@code port}; a guest that does not answer within
     * {@link #HANDSHAKE_TIMEOUT_MS} is an error, not a hang.
     */
    public static SocketChannel connect(Path vsockSocket, int port) throws IOException {
        return finish(start(vsockSocket, port), port);
    }

    /**
     * The first half of {@link #connect}: connects and asks for guest port {@code port}, without
     * waiting for the answer, so that the caller can do other work while the guest accepts.
     */
    public static SocketChannel start(Path vsockSocket, int port) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(vsockSocket));
            ByteBuffer line = ByteBuffer.wrap(connectLine(port).getBytes(StandardCharsets.US_ASCII));
            while (line.hasRemaining()) {
                ch.write(line);
            }
            return ch;
        } catch (IOException e) {
            ch.close();
            throw e;
        }
    }

    /** The second half of {@link #connect}: reads the answer to {@link #start}; closes {@code ch} on failure. */
    public static SocketChannel finish(SocketChannel ch, int port) throws IOException {
        try {
            String line = readLineWithin(ch, port);
            if (!line.startsWith("OK ")) {
                throw new RelaySession.RelayException("the VM refused the connection to port " + port + ": " + line);
            }
            return ch;
        } catch (IOException e) {
            ch.close();
            throw e;
        }
    }

    /**
     * The reply line, or an error after {@link #HANDSHAKE_TIMEOUT_MS}: a plain thread closes the
     * channel then, which ends the blocked read (blocking Unix-domain channels have no read
     * timeout). Not a future on a virtual thread: that starts a scheduler and loads ~100 classes in
     * every {@code wsl} call (issue 29).
     */
    private static String readLineWithin(SocketChannel ch, int port) throws IOException {
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(HANDSHAKE_TIMEOUT_MS);
                ch.close();
            } catch (InterruptedException | IOException e) {
                // answered in time, or closed already
            }
        }, "vsock-handshake");
        watchdog.setDaemon(true);
        watchdog.start();
        String line;
        try {
            line = readLine(ch);
        } catch (java.nio.channels.AsynchronousCloseException e) {
            line = null;
        } finally {
            watchdog.interrupt();
            try {
                watchdog.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (line == null || !ch.isOpen()) { // no answer, or one just as the time ran out
            throw timedOut(port);
        }
        return line;
    }

    private static RelaySession.RelayException timedOut(int port) {
        return new RelaySession.RelayException("the VM did not answer on vsock port " + port + " within "
                + HANDSHAKE_TIMEOUT_MS / 1000 + " s");
    }

    private static String readLine(SocketChannel ch) throws IOException {
        StringBuilder sb = new StringBuilder();
        ByteBuffer one = ByteBuffer.allocate(1);
        while (sb.length() < 64) {
            one.clear();
            if (ch.read(one) < 0) {
                throw new RelaySession.RelayException("the VM closed the vsock connection");
            }
            char c = (char) one.get(0);
            if (c == '\n') {
                return sb.toString();
            }
            sb.append(c);
        }
        throw new RelaySession.RelayException("malformed vsock handshake reply");
    }
}
