package dev.jwsl.protocol.relay;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The host side of the VMM's hybrid vsock (Firecracker's scheme): connect to its Unix socket,
 * send {@code CONNECT <port>\n}, read {@code OK <host port>\n}; the stream then reaches the
 * guest's listener on that vsock port.
 */
public final class HybridVsock {
    /** How long a guest may take to accept. */
    public static final long HANDSHAKE_TIMEOUT_MS = 10_000;

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
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(vsockSocket));
            ch.write(ByteBuffer.wrap(connectLine(port).getBytes(StandardCharsets.US_ASCII)));
            CompletableFuture<String> reply = CompletableFuture.supplyAsync(() -> {
                try {
                    return readLine(ch);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }, Thread::startVirtualThread);
            String line = reply.get(HANDSHAKE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            if (!line.startsWith("OK ")) {
                throw new RelaySession.RelayException("the VM refused the connection to port " + port + ": " + line);
            }
            return ch;
        } catch (TimeoutException e) {
            ch.close();
            throw new RelaySession.RelayException("the VM did not answer on vsock port " + port + " within "
                    + HANDSHAKE_TIMEOUT_MS / 1000 + " s");
        } catch (ExecutionException e) {
            ch.close();
            throw e.getCause() instanceof UncheckedIOException u ? u.getCause() : new IOException(e.getCause());
        } catch (InterruptedException e) {
            ch.close();
            Thread.currentThread().interrupt();
            throw new RelaySession.RelayException("interrupted while connecting to the VM");
        } catch (IOException e) {
            ch.close();
            throw e;
        }
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
