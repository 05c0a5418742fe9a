package dev.jwsl.hypervisor.devices.virtio.vsock;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Firecracker's hybrid-vsock host side over Unix sockets: guest connections to port P go to
 * {@code <path>_P}; host clients connect to {@code <path>} and send {@code CONNECT <port>\n}.
 */
public final class UnixSocketBackend implements VsockBackend {
    private static final System.Logger LOG = System.getLogger(UnixSocketBackend.class.getName());
    /** Longest CONNECT line accepted ("CONNECT 4294967295\n" is 19 bytes). */
    static final int MAX_LINE = 32;

    private final Path path;
    private ServerSocketChannel server;
    private volatile boolean closed;

    public UnixSocketBackend(Path path) {
        this.path = path;
    }

    /** The socket host clients connect to. */
    public Path path() {
        return path;
    }

    /**
     * N.B. connects without blocking: the device calls this holding its monitor, and a blocking
     * connect to a listener whose backlog is full would wait for its next accept, which may never
     * come, with every connection of the VM stalled behind it. Unix sockets connect at once or
     * refuse (EAGAIN).
     */
    @Override
    public SocketChannel connect(int port) throws IOException {
        SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            c.configureBlocking(false);
            if (!c.connect(UnixDomainSocketAddress.of(path + "_" + Integer.toUnsignedString(port)))) {
                throw new IOException("connection to host port " + Integer.toUnsignedString(port) + " did not complete at once");
            }
            c.configureBlocking(true);
            return c;
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
    }

    @Override
    public synchronized void start(Listener listener) throws IOException {
        if (server != null || closed) {
            return;
        }
        deleteStaleSocket(path);
        ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            s.bind(UnixDomainSocketAddress.of(path));
        } catch (IOException e) {
            s.close();
            throw e;
        }
        server = s; // only a socket we bound is deleted on close
        Thread.ofPlatform().daemon().name("vsock-listener").start(() -> {
            while (!closed) {
                try {
                    SocketChannel client = s.accept();
                    Thread.ofVirtual().name("vsock-connect").start(() -> handshake(client, listener));
                } catch (IOException e) {
                    if (!closed) {
                        LOG.log(System.Logger.Level.WARNING, "vsock listener {0} failed: {1}", path, e.toString());
                    }
                    return;
                }
            }
        });
    }

    /** Removes a socket left by an earlier VM; anything else at the path is left for bind to refuse. */
    private static void deleteStaleSocket(Path path) throws IOException {
        final int sIfMt = 0170000, sIfSock = 0140000; // sys/stat.h
        if (Files.exists(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)
                && ((int) Files.getAttribute(path, "unix:mode", java.nio.file.LinkOption.NOFOLLOW_LINKS) & sIfMt) == sIfSock) {
            Files.delete(path);
        }
    }

    private static void handshake(SocketChannel client, Listener listener) {
        try {
            String line = readLine(client);
            Integer port = line == null ? null : parseConnect(line);
            if (port == null) {
                client.close();
                return;
            }
            listener.hostConnect(port, client);
        } catch (IOException e) {
            closeQuietly(client);
        }
    }

    /** The port of a {@code CONNECT <port>} line, or null if the line is anything else. */
    static Integer parseConnect(String line) {
        if (!line.matches("CONNECT [0-9]{1,10}")) {
            return null;
        }
        long port = Long.parseLong(line.substring(8));
        return port > 0xffff_ffffL ? null : (int) port;
    }

    /** Reads up to '\n' one byte at a time, so no stream bytes after the line are consumed. */
    private static String readLine(SocketChannel c) throws IOException {
        ByteBuffer one = ByteBuffer.allocate(1);
        StringBuilder b = new StringBuilder();
        while (b.length() < MAX_LINE) {
            one.clear();
            if (c.read(one) < 0) {
                return null;
            }
            char ch = (char) (one.get(0) & 0xff);
            if (ch == '\n') {
                return b.toString();
            }
            b.append(ch);
        }
        return null;
    }

    @Override
    public void accepted(SocketChannel channel, int hostPort) throws IOException {
        ByteBuffer ok = ByteBuffer.wrap(("OK " + Integer.toUnsignedString(hostPort) + "\n").getBytes(StandardCharsets.US_ASCII));
        while (ok.hasRemaining()) {
            channel.write(ok);
        }
    }

    @Override
    public synchronized void close() {
        closed = true;
        if (server != null) {
            closeQuietly(server);
            try {
                Files.deleteIfExists(path);
            } catch (IOException ignored) {
                // best effort
            }
        }
    }

    static void closeQuietly(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // nothing to do
        }
    }
}
