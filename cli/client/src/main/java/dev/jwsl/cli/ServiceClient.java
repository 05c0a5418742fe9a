package dev.jwsl.cli;

import dev.jwsl.protocol.ServicePaths;
import dev.jwsl.protocol.JwslMessage;
import dev.jwsl.protocol.MessageCodec;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The CLI's blocking connection to the user's jwsl service, started on demand. Netty-free: a
 * plain Unix-domain SocketChannel and the shared {@link MessageCodec}.
 */
final class ServiceClient implements AutoCloseable {
    /**
     * How long a freshly started service may take to open its socket: under a slow JVM start
     * (software-emulated CPUs, as in nested test VMs) it took up to ~15 s, which the old
     * 15 s limit turned into a failed command.
     */
    private static final long START_TIMEOUT_MS = 60_000;

    private final SocketChannel channel;
    private long nextTransaction = 1;

    private ServiceClient(SocketChannel channel) {
        this.channel = channel;
    }

    /**
     * Connects to the service, starting it first if no service answers. The runtime directory is
     * checked first: a socket in a directory another user controls may be theirs.
     */
    static ServiceClient connect(ServicePaths paths, List<String> serviceCommand) throws IOException {
        paths.create();
        Path socket = paths.serviceSocket();
        try {
            return new ServiceClient(open(socket));
        } catch (IOException notRunning) {
            start(paths, serviceCommand);
        }
        long deadline = System.currentTimeMillis() + START_TIMEOUT_MS;
        while (true) {
            try {
                return new ServiceClient(open(socket));
            } catch (IOException e) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IOException("the jwsl service did not start; see " + paths.logFile(), e);
                }
                try {
                    Thread.sleep(20);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while starting the jwsl service");
                }
            }
        }
    }

    private static SocketChannel open(Path socket) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return ch;
        } catch (IOException e) {
            ch.close();
            throw e;
        }
    }

    /** Starts the service detached from this terminal and session (setsid), output to its log. */
    private static void start(ServicePaths paths, List<String> serviceCommand) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("setsid", "--fork"));
        cmd.addAll(serviceCommand);
        ProcessBuilder pb = new ProcessBuilder(cmd)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(paths.stateDir().resolve("service.out").toFile()))
                .redirectErrorStream(true);
        pb.start();
    }

    /** Sends {@code request} and returns its response. */
    JwslMessage.Response call(java.util.function.LongFunction<JwslMessage.Request> request) throws IOException {
        return call(request, p -> { });
    }

    /** Sends {@code request}, passes its {@link JwslMessage.Progress} frames on, returns its final response. */
    JwslMessage.Response call(java.util.function.LongFunction<JwslMessage.Request> request,
                              java.util.function.Consumer<JwslMessage.Progress> progress) throws IOException {
        JwslMessage.Request r = request.apply(nextTransaction++);
        ByteBuffer frame = MessageCodec.encode(r);
        while (frame.hasRemaining()) {
            channel.write(frame);
        }
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
    public void close() throws IOException {
        channel.close();
    }
}
