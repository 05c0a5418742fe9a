package dev.jwsl.bench;

import dev.jwsl.hypervisor.p9.P9Client;
import dev.jwsl.service.share.P9Listener;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A 9P load generator for scripts/bench-9p-host: drives any 9P2000.L server (jwsl-9p, diod) with
 * the same file workload from user space, since this host's kernel has no 9P client. Each of
 * {@code --clients} connections works in its own directory; prints one "metric value" line each.
 */
@Command(name = "p9-bench", mixinStandardHelpOptions = true, description = "Drive a 9P server with a file workload.")
public final class P9Bench implements Callable<Integer> {
    @Option(names = "--connect", required = true, description = "unix:PATH or tcp:HOST:PORT")
    String connect;

    @Option(names = "--aname", defaultValue = "", description = "attach name (diod: the export path)")
    String aname;

    @Option(names = "--clients", defaultValue = "1")
    int clients;

    @Option(names = "--mb", defaultValue = "256", description = "MiB written then read per client")
    int mb;

    @Option(names = "--files", defaultValue = "2000", description = "small files created, stat'ed, listed, removed per client")
    int files;

    @Option(names = "--msize", defaultValue = "524288")
    int msize;

    private static final int ROOT = 1, DIR = 2;
    private volatile int negotiated;

    private P9Client open() throws IOException {
        P9Listener.Address a = P9Listener.Address.parse(connect);
        SocketChannel ch = switch (a) {
            case P9Listener.UnixAddress u -> SocketChannel.open(UnixDomainSocketAddress.of(u.path()));
            case P9Listener.TcpAddress t -> {
                SocketChannel s = SocketChannel.open(new InetSocketAddress(t.host(), t.port()));
                s.socket().setTcpNoDelay(true);
                yield s;
            }
        };
        P9Client c = new P9Client(P9Client.stream(Channels.newInputStream(ch), Channels.newOutputStream(ch), ch));
        negotiated = c.version(msize); // servers may offer less (diod caps it)
        c.attach(ROOT, aname, 0);
        return c;
    }

    /** Seconds each phase took for one client. */
    private record Phases(double write, double read, double create, double stat, double list, double remove) {}

    private Phases run(int id) throws IOException {
        String[] step = {"connect"};
        try {
            return run(id, step);
        } catch (dev.jwsl.hypervisor.p9.P9Error e) {
            throw new IOException("9P " + step[0] + ": " + e.getMessage(), e);
        }
    }

    private Phases run(int id, String[] step) throws IOException {
        try (P9Client c = open()) {
            String dir = "bench-" + id + "-" + Long.toHexString(System.nanoTime());
            int io = negotiated - 64; // room for the Twrite/Rread header
            c.mkdir(ROOT, dir, 0755);
            c.walk(ROOT, DIR, dir);
            byte[] chunk = new byte[io];
            new java.util.Random(id).nextBytes(chunk);
            long total = (long) mb << 20;

            step[0] = "write";
            long t0 = System.nanoTime();
            c.walk(ROOT, 10, dir);
            c.lcreate(10, "big", 01 | 0100, 0644);
            for (long off = 0; off < total; ) {
                int n = (int) Math.min(chunk.length, total - off);
                off += c.write(10, off, n == chunk.length ? chunk : java.util.Arrays.copyOf(chunk, n));
            }
            step[0] = "fsync";
            c.fsync(10);
            step[0] = "read";
            c.clunk(10);
            long t1 = System.nanoTime();
            c.walk(DIR, 11, "big");
            c.lopen(11, 0);
            for (long off = 0; off < total; ) {
                byte[] got = c.read(11, off, chunk.length);
                if (got.length == 0) {
                    throw new IOException("short file");
                }
                off += got.length;
            }
            c.clunk(11);
            long t2 = System.nanoTime();
            byte[] small = new byte[4096];
            step[0] = "create";
            for (int i = 0; i < files; i++) {
                c.walk(ROOT, 12, dir);
                c.lcreate(12, "f" + i, 01 | 0100, 0644);
                c.write(12, 0, small);
                c.clunk(12);
            }
            long t3 = System.nanoTime();
            step[0] = "stat";
            for (int i = 0; i < files; i++) {
                c.walk(DIR, 13, "f" + i);
                c.getattr(13);
                c.clunk(13);
            }
            long t4 = System.nanoTime();
            step[0] = "readdir";
            c.walk(ROOT, 14, dir);
            c.lopen(14, 0200000);
            int listed = c.readdirAll(14, io).size();
            c.clunk(14);
            if (listed != files + 3) {
                throw new IOException("listed " + listed + " entries, expected " + (files + 3));
            }
            long t5 = System.nanoTime();
            step[0] = "remove";
            for (int i = 0; i < files; i++) {
                remove(c, "f" + i);
            }
            remove(c, "big");
            long t6 = System.nanoTime();
            c.clunk(DIR);
            c.walk(ROOT, 15, dir);
            c.remove(15);
            return new Phases((t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9, (t4 - t3) / 1e9, (t5 - t4) / 1e9,
                    (t6 - t5) / 1e9);
        }
    }

    /**
     * Tunlinkat, or walk + Tremove where the server has no Tunlinkat (diod), as the Linux client
     * falls back on EOPNOTSUPP.
     */
    private void remove(P9Client c, String name) {
        if (unlinkat) {
            try {
                c.unlinkat(DIR, name, 0);
                return;
            } catch (dev.jwsl.hypervisor.p9.P9Error e) {
                if (e.errno() != 95) {
                    throw e;
                }
                unlinkat = false;
            }
        }
        c.walk(DIR, 16, name);
        c.remove(16);
    }

    private volatile boolean unlinkat = true;

    @Override
    public Integer call() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        List<Future<Phases>> all = new ArrayList<>();
        long start = System.nanoTime();
        for (int i = 0; i < clients; i++) {
            int id = i;
            all.add(pool.submit(() -> run(id)));
        }
        double write = 0, read = 0, create = 0, stat = 0, list = 0, remove = 0;
        for (Future<Phases> f : all) {
            Phases p = f.get();
            write = Math.max(write, p.write());
            read = Math.max(read, p.read());
            create = Math.max(create, p.create());
            stat = Math.max(stat, p.stat());
            list = Math.max(list, p.list());
            remove = Math.max(remove, p.remove());
        }
        pool.shutdown();
        double mib = (double) mb * clients;
        int n = files * clients;
        System.out.printf(Locale.ROOT, "msize %d%nwrite_MBps %.1f%nread_MBps %.1f%ncreate_per_s %.0f%nstat_per_s %.0f%n"
                        + "readdir_s %.3f%nremove_per_s %.0f%ntotal_s %.2f%n",
                negotiated, mib * 1.048576 / write, mib * 1.048576 / read, n / create, n / stat, list, n / remove,
                (System.nanoTime() - start) / 1e9);
        return 0;
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new P9Bench()).execute(args));
    }
}
