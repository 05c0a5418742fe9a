package dev.jwsl.protocol.relay;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.GatheringByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A blocking, connected Unix-domain stream socket: how clients reach the service and the VMM's
 * hybrid-vsock socket. Its system calls are in a small JNI library ({@code jwsl_unix_stream.c},
 * built with this module, found through the {@code jwsl.native.lib} property that the launchers
 * and the test set-up pass), because {@code wsl} is a new JVM per call and the JDK's
 * Unix-domain {@code SocketChannel} costs ~20 ms to first open (~400 ms under emulation: its
 * static initializer seeds a SecureRandom), FFM ~40 ms to bind; the library ~2 ms (issue 29).
 *
 * <p>Reads take heap buffers only (all this project's are). Any thread may read, write and close;
 * a close wakes the threads blocked on the socket (their reads see end of stream, their writes
 * fail) and frees the descriptor only once no call uses it, so that no call can reach a
 * descriptor the number was reused for.
 */
public final class UnixStream implements ByteChannel, GatheringByteChannel {
    /** The property naming the library's absolute path. */
    public static final String LIBRARY_PROPERTY = "jwsl.native.lib";
    /** What one native call moves at most (the C side's stack buffer). */
    private static final int CHUNK = 65536;

    /** Why the library did not load (a one-line error for every connect), or null. */
    private static final String LOAD_ERROR = load();

    private static String load() {
        String lib = System.getProperty(LIBRARY_PROPERTY);
        if (lib == null || lib.isEmpty()) {
            return LIBRARY_PROPERTY + " is not set: start jwsl through its launchers in bin/";
        }
        try {
            System.load(lib);
            return null;
        } catch (UnsatisfiedLinkError e) {
            return "cannot load " + lib + " (run scripts/build): " + e.getMessage();
        }
    }

    private final int fd;
    private final String peer;
    /** Calls in progress on fd; guarded by this. */
    private int users;
    /** Guarded by this. */
    private boolean closed;

    private UnixStream(int fd, String peer) {
        this.fd = fd;
        this.peer = peer;
    }

    /**
     * Fails with a one-line error when the library did not load: callers that take a failed
     * connect for "nothing listens" (and start a service) ask this first.
     */
    public static void requireLibrary() throws IOException {
        if (LOAD_ERROR != null) {
            throw new IOException(LOAD_ERROR);
        }
    }

    /** Connects to the socket at {@code path}; the error names the path. */
    public static UnixStream connect(Path path) throws IOException {
        requireLibrary();
        byte[] name = path.toString().getBytes(StandardCharsets.UTF_8);
        int r = connect0(name);
        if (r < 0) {
            throw new IOException(strerror0(-r) + ": " + path);
        }
        return new UnixStream(r, path.toString());
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        if (!dst.hasArray()) {
            throw new IllegalArgumentException("UnixStream reads into heap buffers only");
        }
        if (!dst.hasRemaining()) {
            return 0;
        }
        int n = read(dst.array(), dst.arrayOffset() + dst.position(), dst.remaining());
        if (n > 0) {
            dst.position(dst.position() + n);
        }
        return n;
    }

    /** Reads at most {@code len} bytes into {@code b}; -1 at end of stream (or after a close). */
    public int read(byte[] b, int off, int len) throws IOException {
        Objects.checkFromIndexSize(off, len, b.length);
        if (len == 0) {
            return 0;
        }
        begin();
        try {
            int r = read0(fd, b, off, Math.min(len, CHUNK));
            if (r < 0) {
                throw failure(-r);
            }
            return r == 0 ? -1 : r;
        } finally {
            end();
        }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        int total = 0;
        while (src.hasRemaining()) {
            byte[] b;
            int off;
            int len = Math.min(src.remaining(), CHUNK);
            if (src.hasArray()) {
                b = src.array();
                off = src.arrayOffset() + src.position();
            } else {
                b = new byte[len];
                src.get(src.position(), b);
                off = 0;
            }
            int n = writeSome(b, off, len);
            src.position(src.position() + n);
            total += n;
        }
        return total;
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        Objects.checkFromIndexSize(offset, length, srcs.length);
        long total = 0;
        for (int i = offset; i < offset + length; i++) {
            total += write(srcs[i]);
        }
        return total;
    }

    @Override
    public long write(ByteBuffer[] srcs) throws IOException {
        return write(srcs, 0, srcs.length);
    }

    /** Writes all of {@code b[off, off+len)}. */
    public void write(byte[] b, int off, int len) throws IOException {
        Objects.checkFromIndexSize(off, len, b.length);
        while (len > 0) {
            int n = writeSome(b, off, Math.min(len, CHUNK));
            off += n;
            len -= n;
        }
    }

    private int writeSome(byte[] b, int off, int len) throws IOException {
        begin();
        try {
            int r = write0(fd, b, off, len);
            if (r < 0) {
                throw failure(-r);
            }
            return r;
        } finally {
            end();
        }
    }

    private IOException failure(int errno) {
        synchronized (this) {
            if (closed) {
                return new ClosedChannelException();
            }
        }
        return new IOException(strerror0(errno));
    }

    private synchronized void begin() throws ClosedChannelException {
        if (closed) {
            throw new ClosedChannelException();
        }
        users++;
    }

    private synchronized void end() {
        if (--users == 0 && closed) {
            notifyAll();
        }
    }

    @Override
    public synchronized boolean isOpen() {
        return !closed;
    }

    /** Ends the connection; threads blocked on it return, and the descriptor is freed after them. */
    @Override
    public void close() {
        boolean interrupted = false;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            shutdown0(fd);
            while (users > 0) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true; // the descriptor must not leak: wait on, then say so
                }
            }
        }
        close0(fd);
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public String toString() {
        return "UnixStream[" + peer + ", fd " + fd + "]";
    }

    private static native int connect0(byte[] path);

    private static native int read0(int fd, byte[] b, int off, int len);

    private static native int write0(int fd, byte[] b, int off, int len);

    private static native int shutdown0(int fd);

    private static native int close0(int fd);

    private static native String strerror0(int errno);
}
