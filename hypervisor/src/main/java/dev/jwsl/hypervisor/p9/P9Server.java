package dev.jwsl.hypervisor.p9;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Serves host directories ("shares") over 9P2000.L to any number of connections, each a
 * {@link P9Session}. Run by a user, it serves with that user's permissions and nothing more; run
 * as root, it serves each request as the user the client attached as (see {@code Credentials}).
 * Requests run on a small pool of worker threads shared by every connection, so one slow host
 * read does not stall other requests, and replies may complete out of order (9P tags allow that).
 */
public final class P9Server implements AutoCloseable {
    /** Largest message the server accepts or sends: 1 MiB. */
    public static final int MAX_MSIZE = 1 << 20;
    /** Fids one connection may hold; each holds up to two host descriptors. */
    public static final int DEFAULT_MAX_FIDS = 4096;

    /**
     * What one connection may hold, and what the server makes.
     *
     * @param maxFids     fids per connection
     * @param xattrBytes  bytes of extended-attribute values per connection held between requests
     *                    (Txattrwalk values not yet read, Txattrcreate values not yet set): each
     *                    is up to 64 KiB of heap, and the guest picks how many it leaves pending
     * @param deviceNodes whether Tmknod may make block and character devices: a node the guest
     *                    makes on the host opens the host's device for any host user its mode
     *                    allows
     */
    public record Settings(int maxFids, long xattrBytes, boolean deviceNodes) {
        /** 1 MiB of xattr values: sixteen of the largest, far more than a v9fs client keeps pending. */
        public static final Settings DEFAULT = new Settings(DEFAULT_MAX_FIDS, 1 << 20, false);

        public Settings withDeviceNodes(boolean allowed) {
            return new Settings(maxFids, xattrBytes, allowed);
        }
    }

    /**
     * A share as the server holds it: its root opened once, and the root's identity. {@code path}
     * is the host path as configured (an attach may name it); {@code realPath} is the root's name
     * as the kernel gives it for the descriptor (symlinks resolved), the prefix of every file
     * inside.
     */
    record ShareRoot(String name, Path path, byte[] realPath, int fd, long dev, long ino) {}

    private final Map<String, ShareRoot> shares = new LinkedHashMap<>();
    private final ShareRoot defaultShare;
    private final ExecutorService workers;
    private final boolean ownExecutor;
    private final Settings settings;
    private final boolean privileged = HostFs.geteuid() == 0;
    private final Map<Long, Integer> devices = new ConcurrentHashMap<>();
    private final AtomicInteger nextDevice = new AtomicInteger();
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong internalErrors = new AtomicLong();

    /**
     * @param shares  share name to host directory; the first is what an empty attach name gets
     * @param threads worker threads
     * @throws P9Error if a share root cannot be opened as a directory
     */
    public P9Server(Map<String, Path> shares, int threads) {
        this(shares, threads, Settings.DEFAULT);
    }

    public P9Server(Map<String, Path> shares, int threads, Settings settings) {
        this(shares, null, settings, threads);
    }

    /** As above, running requests on {@code executor} (tests). */
    P9Server(Map<String, Path> shares, ExecutorService executor, int maxFids, int threads) {
        this(shares, executor, new Settings(maxFids, Settings.DEFAULT.xattrBytes(), false), threads);
    }

    P9Server(Map<String, Path> shares, ExecutorService executor, Settings settings, int threads) {
        if (shares.isEmpty()) {
            throw new IllegalArgumentException("no share to serve");
        }
        for (var e : shares.entrySet()) {
            Path root = e.getValue().toAbsolutePath().normalize();
            int fd = -1;
            try {
                fd = HostFs.open(root.toString(), HostFs.O_PATH | HostFs.O_DIRECTORY | HostFs.O_CLOEXEC, 0);
                HostFs.Stat st = HostFs.stat(fd);
                byte[] real = HostFs.pathOf(fd);
                this.shares.put(e.getKey(), new ShareRoot(e.getKey(), root, real, fd, st.dev(), st.ino()));
            } catch (P9Error err) {
                HostFs.close(fd);
                close();
                throw new P9Error(err.errno(), "share " + e.getKey() + " (" + root + ")");
            }
        }
        this.defaultShare = this.shares.values().iterator().next();
        this.settings = settings;
        this.ownExecutor = executor == null;
        this.workers = executor != null ? executor : Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "p9-worker");
            t.setDaemon(true);
            return t;
        });
    }

    /** One server for a single directory, as {@code jwsl-9p --root} serves. */
    public static P9Server single(Path root, int threads) {
        return new P9Server(Map.of("root", root), threads);
    }

    /** A new connection. */
    public P9Session open() {
        return new P9Session(this);
    }

    /** The share an attach name selects: empty or "/" for the default, else by name or by host path. */
    Optional<ShareRoot> share(String aname) {
        if (aname.isEmpty() || aname.equals("/")) {
            return Optional.of(defaultShare);
        }
        ShareRoot byName = shares.get(aname);
        if (byName != null) {
            return Optional.of(byName);
        }
        return shares.values().stream().filter(s -> s.path().toString().equals(aname)).findFirst();
    }

    List<ShareRoot> shares() {
        return List.copyOf(shares.values());
    }

    ExecutorService workers() {
        return workers;
    }

    Settings settings() {
        return settings;
    }

    /** Whether the server runs as root, and so serves each request as the attaching user. */
    boolean privileged() {
        return privileged;
    }

    /**
     * A qid path unique across the host devices a share spans (a share of {@code /} crosses
     * mounts): the device's index in the top 16 bits, the inode in the rest. The first device
     * seen gets index 0, so the main file system keeps its inode numbers.
     */
    long qidPath(long dev, long ino) {
        int index = devices.computeIfAbsent(dev, d -> nextDevice.getAndIncrement());
        long low = ino < (1L << 48) && ino >= 0 ? ino : (ino ^ (ino >>> 48)) & ((1L << 48) - 1);
        return ((long) (index & 0xffff) << 48) | low;
    }

    /** The qid of the file {@code st} describes. */
    Qid qid(HostFs.Stat st) {
        byte type = switch (st.type()) {
            case HostFs.S_IFDIR -> P9Constants.QTDIR;
            case HostFs.S_IFLNK -> P9Constants.QTSYMLINK;
            default -> P9Constants.QTFILE;
        };
        return new Qid(type, 0, qidPath(st.dev(), st.ino()));
    }

    void internalError() {
        internalErrors.incrementAndGet();
    }

    /** Requests that failed with an unexpected exception (a server bug, answered EIO). */
    public long internalErrors() {
        return internalErrors.get();
    }

    void counted() {
        requests.incrementAndGet();
    }

    /** Requests served since start. */
    public long requests() {
        return requests.get();
    }

    @Override
    public void close() {
        if (workers != null && ownExecutor) {
            workers.shutdownNow();
        }
        for (ShareRoot s : shares.values()) {
            HostFs.close(s.fd());
        }
        shares.clear();
    }
}
