package dev.jwsl.cli.relay;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One command in the guest, client side: connects through the VMM's hybrid-vsock socket to the
 * guest relay, sends CREATE, then relays stdin to the guest and the guest's output to the given
 * streams until EXIT.
 */
public final class RelaySession implements AutoCloseable {
    /** How long the guest may take to accept a connection (the VM is already up). */
    static final long HANDSHAKE_TIMEOUT_MS = 10_000;

    private final SocketChannel channel;
    private final Object writeLock = new Object();

    private RelaySession(SocketChannel channel) {
        this.channel = channel;
    }

    /** Thrown when the guest refuses or loses the session; the message is one line for the user. */
    public static final class RelayException extends IOException {
        public RelayException(String message) {
            super(message);
        }
    }

    /**
     * Connects to guest port {@code port} through the hybrid-vsock socket {@code vsockSocket}. A
     * guest that does not answer within {@link #HANDSHAKE_TIMEOUT_MS} is an error, not a hang.
     */
    public static RelaySession connect(Path vsockSocket, int port) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(vsockSocket));
            ch.write(ByteBuffer.wrap(("CONNECT " + port + "\n").getBytes(StandardCharsets.US_ASCII)));
            CompletableFuture<String> reply = CompletableFuture.supplyAsync(() -> {
                try {
                    return readLine(ch);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }, Thread::startVirtualThread);
            String line = reply.get(HANDSHAKE_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            if (!line.startsWith("OK ")) {
                throw new RelayException("the VM refused the connection to port " + port + ": " + line);
            }
            return new RelaySession(ch);
        } catch (TimeoutException e) {
            ch.close();
            throw new RelayException("the VM did not answer on vsock port " + port + " within "
                    + HANDSHAKE_TIMEOUT_MS / 1000 + " s");
        } catch (ExecutionException e) {
            ch.close();
            throw e.getCause() instanceof UncheckedIOException u ? u.getCause() : new IOException(e.getCause());
        } catch (InterruptedException e) {
            ch.close();
            Thread.currentThread().interrupt();
            throw new RelayException("interrupted while connecting to the VM");
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
                throw new RelayException("the VM closed the vsock connection");
            }
            char c = (char) one.get(0);
            if (c == '\n') {
                return sb.toString();
            }
            sb.append(c);
        }
        throw new RelayException("malformed vsock handshake reply");
    }

    /** Sends one frame; safe from several threads. */
    public void send(int type, byte[] payload, int length) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(RelayConstants.HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        header.putShort((short) type).putShort((short) 0).putInt(length).flip();
        ByteBuffer body = ByteBuffer.wrap(payload, 0, length);
        synchronized (writeLock) {
            while (header.hasRemaining() || body.hasRemaining()) {
                channel.write(new ByteBuffer[] {header, body});
            }
        }
    }

    /**
     * Starts the command and relays until it exits.
     *
     * @return the command's exit status (128+N for a signal death)
     */
    public int run(CreateRequest request, InputStream stdin, OutputStream stdout, OutputStream stderr)
            throws IOException {
        byte[] create = request.encode();
        send(RelayConstants.CREATE, create, create.length);
        Thread pump = Thread.ofPlatform().name("relay-stdin").daemon().start(() -> pumpStdin(stdin, request.tty()));
        try {
            ByteBuffer header = ByteBuffer.allocate(RelayConstants.HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
            byte[] payload = new byte[RelayConstants.MAX_PAYLOAD];
            while (true) {
                header.clear();
                if (!readFully(header)) {
                    throw new RelayException("the VM stopped during the command");
                }
                int type = Short.toUnsignedInt(header.getShort(0));
                int length = header.getInt(4);
                if (length < 0 || length > RelayConstants.MAX_PAYLOAD) {
                    throw new RelayException("the guest sent a frame of " + Integer.toUnsignedString(length) + " bytes");
                }
                ByteBuffer body = ByteBuffer.wrap(payload, 0, length);
                if (!readFully(body)) {
                    throw new RelayException("the VM stopped during the command");
                }
                switch (type) {
                    case RelayConstants.STARTED -> { }
                    case RelayConstants.STDOUT -> {
                        stdout.write(payload, 0, length);
                        stdout.flush();
                    }
                    case RelayConstants.STDERR -> {
                        stderr.write(payload, 0, length);
                        stderr.flush();
                    }
                    case RelayConstants.EXIT -> {
                        if (length != 4) {
                            throw new RelayException("malformed exit frame from the guest");
                        }
                        return ByteBuffer.wrap(payload, 0, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
                    }
                    case RelayConstants.ERROR -> throw new RelayException(
                            new String(payload, 0, length, StandardCharsets.UTF_8).strip());
                    default -> throw new RelayException("the guest sent an unknown frame type " + type);
                }
            }
        } finally {
            pump.interrupt();
        }
    }

    private boolean readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) {
                return false;
            }
        }
        b.flip();
        return true;
    }

    private void pumpStdin(InputStream in, boolean tty) {
        byte[] buf = new byte[RelayConstants.MAX_PAYLOAD / 2];
        try {
            int n;
            while ((n = in.read(buf)) > 0) {
                send(RelayConstants.STDIN, buf, n);
            }
            if (!tty) {
                send(RelayConstants.STDIN_EOF, buf, 0);
            }
        } catch (IOException e) {
            // the session is over or the host input is gone
        }
    }

    /** Tells the guest the terminal's new size. */
    public void resize(int rows, int cols) throws IOException {
        byte[] p = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putShort((short) rows).putShort((short) cols)
                .array();
        send(RelayConstants.RESIZE, p, p.length);
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
