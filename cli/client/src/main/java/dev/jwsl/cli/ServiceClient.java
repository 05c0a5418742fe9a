package dev.jwsl.cli;

import dev.jwsl.protocol.ServicePaths;
import dev.jwsl.protocol.JwslMessage;
import dev.jwsl.protocol.MessageCodec;
import dev.jwsl.protocol.relay.UnixStream;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.StandardOpenOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The CLI's blocking connection to the user's jwsl service, started on demand. Netty-free: a
 * {@link UnixStream} and the shared {@link MessageCodec}.
 */
final class ServiceClient implements AutoCloseable {
    /**
     * How long a service that has exited may leave the socket unanswered (one that found another
     * service holding the lock, which may be stopping): the client starts it again until then.
     */
    private static final long START_TIMEOUT_MS = 60_000;
    /**
     * How long the service this client started may run without opening its socket: long, because
     * a starved JVM (100 `wsl` calls at once on one emulated CPU, issue 29) takes minutes to get
     * there, and a live service process is making its way; only a stuck one meets this limit.
     */
    private static final long LIVE_START_TIMEOUT_MS = 600_000;
    /** ServiceMain's exit status when another service holds the lock. */
    private static final int EXIT_ALREADY_RUNNING = 3;

    private final UnixStream channel;
    private long nextTransaction = 1;

    private ServiceClient(UnixStream channel) {
        this.channel = channel;
    }

    /**
     * Connects to the service, starting it first if no service answers. The runtime directory is
     * checked first: a socket in a directory another user controls may be theirs. Of the calls
     * that find no service, one at a time starts it (the start lock) and the others wait for that
     * one, then find it serving: 100 calls at once started 100 service JVMs, and their start-up
     * starved the one that was to serve.
     */
    static ServiceClient connect(ServicePaths paths, List<String> serviceCommand) throws IOException {
        paths.create();
        UnixStream.requireLibrary(); // else every connect fails as if no service ran, and one is started
        Path socket = paths.serviceSocket();
        try {
            return new ServiceClient(UnixStream.connect(socket));
        } catch (IOException notRunning) {
            // start it, below
        }
        try (FileChannel lockChannel = FileChannel.open(paths.startLockFile(), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE);
             FileLock ignored = lockChannel.lock()) {
            try {
                return new ServiceClient(UnixStream.connect(socket)); // started by the client that held the lock before
            } catch (IOException notRunning) {
                return new ServiceClient(startAndOpen(paths, serviceCommand));
            }
        }
    }

    /** Starts the service and connects once it serves; bounded as the limits above say. */
    private static UnixStream startAndOpen(ServicePaths paths, List<String> serviceCommand) throws IOException {
        long started = System.currentTimeMillis();
        long lastStart = started;
        Process service = start(paths, serviceCommand);
        while (true) {
            try {
                return UnixStream.connect(paths.serviceSocket());
            } catch (IOException e) {
                long now = System.currentTimeMillis();
                if (service.isAlive()) {
                    if (now - started > LIVE_START_TIMEOUT_MS) {
                        throw new IOException("the jwsl service did not start; see " + paths.logFile(), e);
                    }
                } else if (service.exitValue() != EXIT_ALREADY_RUNNING) {
                    throw new IOException("the jwsl service exited with status " + service.exitValue() + "; see "
                            + paths.logFile() + " and " + serviceOutput(paths), e);
                } else if (now - started > START_TIMEOUT_MS) {
                    throw new IOException("the jwsl service did not start; another one holds " + paths.lockFile()
                            + " but does not serve", e);
                } else if (now - lastStart >= 1000) { // the one holding the lock may be stopping: once a second
                    lastStart = now;
                    service = start(paths, serviceCommand);
                }
                pause();
            }
        }
    }

    private static void pause() throws IOException {
        try {
            Thread.sleep(20);
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while starting the jwsl service");
        }
    }

    private static Path serviceOutput(ServicePaths paths) {
        return paths.stateDir().resolve("service.out");
    }

    /**
     * Starts the service detached from this terminal and session (setsid), output to its log. The
     * process returned is the service itself ({@code --wait}: setsid waits for it if it had to
     * fork), so that its end is seen.
     */
    private static Process start(ServicePaths paths, List<String> serviceCommand) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("setsid", "--wait"));
        cmd.addAll(serviceCommand);
        ProcessBuilder pb = new ProcessBuilder(cmd)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(serviceOutput(paths).toFile()))
                .redirectErrorStream(true);
        return pb.start();
    }

    /** Sends {@code request} and returns its response. */
    JwslMessage.Response call(java.util.function.LongFunction<JwslMessage.Request> request) throws IOException {
        return call(request, p -> { });
    }

    /** Sends {@code request}, passes its {@link JwslMessage.Progress} frames on, returns its final response. */
    JwslMessage.Response call(java.util.function.LongFunction<JwslMessage.Request> request,
                              java.util.function.Consumer<JwslMessage.Progress> progress) throws IOException {
        JwslMessage.Request r = request.apply(nextTransaction++);
        channel.write(MessageCodec.encode(r));
        while (true) {
            ByteBuffer header = readFully(MessageCodec.HEADER);
            ByteBuffer payload = readFully(MessageCodec.payloadLength(header));
            JwslMessage m = MessageCodec.decode(header, payload);
            if (!(m instanceof JwslMessage.Response resp) || m.transactionId() != r.transactionId()) {
                throw new IOException("the jwsl service sent an unexpected reply: " + m);
            }
            if (resp instanceof JwslMessage.Progress p) {
                progress.accept(p);
            } else {
                return resp;
            }
        }
    }

    private ByteBuffer readFully(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (channel.read(b) < 0) {
                throw new IOException("the jwsl service closed the connection");
            }
        }
        return b.flip();
    }

    @Override
    public void close() {
        channel.close();
    }
}
