package dev.jwsl.protocol.relay;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * One command in the guest, client side: connects through the VMM's hybrid-vsock socket to the
 * guest relay, sends CREATE, then relays stdin to the guest and the guest's output to the given
 * streams until EXIT.
 */
public final class RelaySession implements AutoCloseable {
    private final UnixStream channel;
    private final Object writeLock = new Object();

    private static final String VM_STOPPED = "the VM stopped during the command";

    private RelaySession(UnixStream channel) {
        this.channel = channel;
    }

    /** Thrown when the guest refuses or loses the session; the message is one line for the user. */
    public static final class RelayException extends IOException {
        public RelayException(String message) {
            super(message);
        }
    }

    /**
     * Connects to guest port {@code port} through the hybrid-vsock socket {@code vsockSocket} (see
     * {@link HybridVsock#connect} for how long that may take).
     */
    public static RelaySession connect(Path vsockSocket, int port) throws IOException {
        return new RelaySession(HybridVsock.connect(vsockSocket, port));
    }

    /** A session on a stream that {@link HybridVsock#start} opened: reads the VMM's answer first. */
    public static RelaySession finish(UnixStream started, int port) throws IOException {
        return new RelaySession(HybridVsock.finish(started, port));
    }

    /** Sends one frame; safe from several threads. */
    public void send(int type, byte[] payload, int length) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(RelayConstants.HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        header.putShort((short) type).putShort((short) 0).putInt(length).flip();
        ByteBuffer body = ByteBuffer.wrap(payload, 0, length);
        synchronized (writeLock) {
            try {
                while (header.hasRemaining() || body.hasRemaining()) {
                    channel.write(new ByteBuffer[] {header, body});
                }
            } catch (IOException e) {
                throw vmStopped(e);
            }
        }
    }

    /**
     * The connection to the guest failed: the VMM closes a VM's connections when the VM stops.
     * Said as such, never as the socket's own error: a "Broken pipe" from here must not pass for
     * the client's stdout gone (which ends a call quietly, as SIGPIPE would).
     */
    private static RelayException vmStopped(IOException cause) {
        RelayException e = new RelayException(VM_STOPPED);
        e.initCause(cause);
        return e;
    }

    /**
     * Starts the command and relays until it exits.
     *
     * @return the command's exit status (128+N for a signal death)
     */
    public int run(CreateRequest request, InputStream stdin, OutputStream stdout, OutputStream stderr)
            throws IOException {
        return run(request, stdin, stdout, stderr, SessionTimer.NONE);
    }

    /** As {@link #run(CreateRequest, InputStream, OutputStream, OutputStream)}, telling {@code timer} its stages. */
    public int run(CreateRequest request, InputStream stdin, OutputStream stdout, OutputStream stderr, SessionTimer timer)
            throws IOException {
        byte[] create = request.encode();
        send(RelayConstants.CREATE, create, create.length);
        timer.mark("create-sent");
        boolean output = false;
        Thread pump = Thread.ofPlatform().name("relay-stdin").daemon().start(() -> pumpStdin(stdin, request.tty()));
        try {
            ByteBuffer header = ByteBuffer.allocate(RelayConstants.HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
            byte[] payload = new byte[RelayConstants.MAX_PAYLOAD];
            while (true) {
                header.clear();
                readFully(header);
                int type = Short.toUnsignedInt(header.getShort(0));
                int length = header.getInt(4);
                if (length < 0 || length > RelayConstants.MAX_PAYLOAD) {
                    throw new RelayException("the guest sent a frame of " + Integer.toUnsignedString(length) + " bytes");
                }
                readFully(ByteBuffer.wrap(payload, 0, length));
                switch (type) {
                    case RelayConstants.STARTED -> {
                        timer.mark("started");
                        timer.guestStages(guestStages(payload, length));
                    }
                    case RelayConstants.STDOUT, RelayConstants.STDERR -> {
                        if (!output) {
                            output = true;
                            timer.mark("first-output");
                        }
                        OutputStream to = type == RelayConstants.STDOUT ? stdout : stderr;
                        to.write(payload, 0, length);
                        to.flush();
                    }
                    case RelayConstants.EXIT -> {
                        if (length != 4) {
                            throw new RelayException("malformed exit frame from the guest");
                        }
                        timer.mark("exit-frame");
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

    /** STARTED's stage times after the pid: as many whole ones as the guest sent, at most the known ones. */
    private static long[] guestStages(byte[] payload, int length) {
        int n = Math.max(0, Math.min((length - 4) / 4, RelayConstants.GUEST_STAGES.size()));
        ByteBuffer b = ByteBuffer.wrap(payload, 0, length).order(ByteOrder.LITTLE_ENDIAN);
        long[] micros = new long[n];
        for (int i = 0; i < n; i++) {
            micros[i] = Integer.toUnsignedLong(b.getInt(4 + 4 * i));
        }
        return micros;
    }

    /** Fills {@code b}: the stream ending or failing before that is the VM gone. */
    private void readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            int n;
            try {
                n = channel.read(b);
            } catch (IOException e) {
                throw vmStopped(e);
            }
            if (n < 0) {
                throw new RelayException(VM_STOPPED);
            }
        }
        b.flip();
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

    /** Sends signal {@code sig} to the command's process group. */
    public void signal(int sig) throws IOException {
        byte[] p = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(sig).array();
        send(RelayConstants.SIGNAL, p, p.length);
    }

    /** Tells the guest the terminal's new size. */
    public void resize(int rows, int cols) throws IOException {
        byte[] p = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putShort((short) rows).putShort((short) cols)
                .array();
        send(RelayConstants.RESIZE, p, p.length);
    }

    @Override
    public void close() {
        channel.close();
    }
}
