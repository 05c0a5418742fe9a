package dev.jwsl.hypervisor.p9;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * A server for some shares, one connection to it and a client that has negotiated 64 KiB
 * messages. Closing it closes both and checks that the host's descriptors are as they were.
 */
record Served(P9Server server, P9Session session, P9Client client, long fdsBefore) implements AutoCloseable {
    /** The first share is the default; the map's order is kept. */
    static Served shares(Map<String, Path> shares) {
        return of(() -> new P9Server(shares, Executors.newSingleThreadExecutor(), 64, 1));
    }

    /** One share, its root attached as fid 1 by uid 0. */
    static Served attached(Path share) {
        Served s = shares(Map.of("s", share));
        s.client().attach(1, "", 0);
        return s;
    }

    /** A connection to the server {@code start} makes, which closes with it. */
    static Served of(Supplier<P9Server> start) {
        long fds = openFds();
        P9Server server = start.get();
        P9Session session = server.open();
        P9Client client = new P9Client(P9Client.direct(session, 1 << 16));
        int msize = client.version(1 << 16);
        if (msize != 1 << 16) {
            throw new AssertionError("the server negotiated msize " + msize);
        }
        return new Served(server, session, client, fds);
    }

    /** The descriptors this process has open. */
    static long openFds() {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        session.close();
        server.close();
        long fds = openFds();
        if (fds != fdsBefore) {
            throw new AssertionError("host descriptors leaked: " + fdsBefore + " open before, " + fds + " after");
        }
    }
}
