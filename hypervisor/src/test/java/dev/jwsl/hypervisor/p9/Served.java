package dev.jwsl.hypervisor.p9;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Executors;

/** A server for some shares, one connection to it and a client that has negotiated 64 KiB messages. */
record Served(P9Server server, P9Session session, P9Client client) implements AutoCloseable {
    /** The first share is the default; the map's order is kept. */
    static Served shares(Map<String, Path> shares) {
        return of(new P9Server(shares, Executors.newSingleThreadExecutor(), 64, 1));
    }

    /** One share, its root attached as fid 1 by uid 0. */
    static Served attached(Path share) {
        Served s = shares(Map.of("s", share));
        s.client().attach(1, "", 0);
        return s;
    }

    /** A connection to {@code server}, which closes with it. */
    static Served of(P9Server server) {
        P9Session session = server.open();
        P9Client client = new P9Client(P9Client.direct(session, 1 << 16));
        client.version(1 << 16);
        return new Served(server, session, client);
    }

    @Override
    public void close() {
        session.close();
        server.close();
    }
}
