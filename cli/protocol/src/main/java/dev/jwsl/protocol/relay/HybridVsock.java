package dev.jwsl.protocol.relay;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The host side of the VMM's hybrid vsock (Firecracker's scheme): connect to its Unix socket,
 * send {@code CONNECT <port>\n}, read {@code OK <host port>\n}; the stream then reaches the
 * guest's listener on that vsock port.
 */
public final class HybridVsock {
    private HybridVsock() {}

    /** The handshake's first line. */
    public static String connectLine(int port) {
        return "CONNECT " + port + "\n";
    }

    /**
     * A blocking stream to guest port {@code port}. It waits for the VMM's answer without a limit
     * of its own: the VMM answers, or closes the connection, within its limits for the guest's
     * answer (VsockDevice.expireRequest: 30 s of a guest that runs and stays silent, 5 min at most). A wall-clock
     * limit here failed healthy calls on a loaded host, where a starved client took longer to
     * read the answer than the guest took to give it (100 calls at once, issue 29).
     */
    public static UnixStream connect(Path vsockSocket, int port) throws IOException {
        return finish(start(vsockSocket, port), port);
    }

    /**
     * The first half of {@link #connect}: connects and asks for guest port {@code port}, without
     * waiting for the answer, so that the caller can do other work while the guest accepts.
     */
    public static UnixStream start(Path vsockSocket, int port) throws IOException {
        UnixStream ch = UnixStream.connect(vsockSocket);
        try {
            ch.write(ByteBuffer.wrap(connectLine(port).getBytes(StandardCharsets.US_ASCII)));
            return ch;
        } catch (IOException e) {
            ch.close();
            throw e;
        }
    }

    /** The second half of {@link #connect}: reads the answer to {@link #start}; closes {@code ch} on failure. */
    public static UnixStream finish(UnixStream ch, int port) throws IOException {
        try {
            String line = readLine(ch, port);
            if (!line.startsWith("OK ")) {
                throw new RelaySession.RelayException("the VM refused the connection to port " + port + ": " + line);
            }
            return ch;
        } catch (IOException e) {
            ch.close();
            throw e;
        }
    }

    private static String readLine(UnixStream ch, int port) throws IOException {
        StringBuilder sb = new StringBuilder();
        ByteBuffer one = ByteBuffer.allocate(1);
        while (sb.length() < 64) {
            one.clear();
            if (ch.read(one) < 0) {
                throw new RelaySession.RelayException("the VM did not accept the connection to port " + port);
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
