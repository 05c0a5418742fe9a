package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.memory.Scatter;
import dev.jwsl.hypervisor.sys.Errno;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.IntConsumer;

import static dev.jwsl.hypervisor.p9.P9Constants.*;

/**
 * One 9P connection: its negotiated msize and its fids. A transport {@link #submit submits}
 * each request with a buffer for the reply; the reply's length comes back through a callback
 * once it is written (or -1: the message was not 9P, drop the connection). Nothing but Tversion
 * is served until a Tversion has agreed on 9P2000.L and an msize, and no message may be larger
 * than that msize.
 */
public final class P9Session implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(P9Session.class.getName());

    /** JWSL_P9_TRACE=1 prints every failed request to stderr (protocol debugging). */
    private static final boolean TRACE = System.getenv("JWSL_P9_TRACE") != null;

    private final P9Server server;
    private final FidTable fids;
    private final XattrBudget xattrBudget;
    private final Map<Integer, CompletableFuture<Void>> inFlight = new ConcurrentHashMap<>();
    private final WalkRequests walks;
    private final AttrRequests attrs;
    private final DirRequests dirs;
    private final FileRequests files;
    private final XattrRequests xattrs;
    private final LockRequests locks;
    private final LinkRequests links;
    private volatile int msize = P9Server.MAX_MSIZE;
    private volatile boolean negotiated;
    private volatile boolean closed;
    /**
     * Held shared while a request runs; {@link #close} takes it exclusively. Reply buffers may be
     * guest memory that a device reset hands back to the driver: once close returns, no request
     * of this session writes into one again.
     */
    private final ReentrantReadWriteLock running = new ReentrantReadWriteLock();

    P9Session(P9Server server) {
        this.server = server;
        this.fids = new FidTable(server.settings().maxFids());
        this.xattrBudget = new XattrBudget(server.settings().xattrBytes());
        this.walks = new WalkRequests(server, fids);
        this.attrs = new AttrRequests(server, fids);
        this.dirs = new DirRequests(server, fids);
        this.files = new FileRequests(server, fids);
        this.xattrs = new XattrRequests(fids, xattrBudget);
        this.locks = new LockRequests(fids);
        this.links = new LinkRequests(fids);
    }

    /** The negotiated largest message. */
    public int msize() {
        return msize;
    }

    /** Fids held now. */
    public int fidCount() {
        return fids.size();
    }

    /** Heap held now by xattr values between requests. */
    long xattrBytes() {
        return xattrBudget.used();
    }

    /**
     * Serves one request: checks its framing here, then runs it on the server's workers.
     * {@code done} gets the reply length once the reply is in {@code reply}, or -1 for a
     * message that is not 9P (the transport should drop the connection).
     */
    public void submit(Scatter request, Scatter reply, IntConsumer done) {
        byte[] header = new byte[HEADER];
        if (request.read(0, header) < HEADER) {
            done.accept(-1);
            return;
        }
        P9Reader h = new P9Reader(header);
        long size = Integer.toUnsignedLong(h.u32());
        int type = h.u8();
        int tag = h.u16();
        if (size < HEADER || size > request.length() || size > P9Server.MAX_MSIZE) {
            done.accept(-1);
            return;
        }
        Scatter message = request.slice(0, size);
        CompletableFuture<Void> finished = new CompletableFuture<>();
        if (type != TFLUSH) {
            inFlight.put(tag, finished);
        }
        Runnable work = () -> {
            int n = -1; // an Error that escapes: the transport drops the client, which then waits for nothing
            try {
                n = serve(type, tag, message, reply);
            } catch (RuntimeException e) {
                server.internalError();
                LOG.log(System.Logger.Level.WARNING, "9P request type " + type + " failed", e);
                n = error(reply, tag, Errno.EIO);
            } finally {
                completed(type, tag, finished, done, n);
            }
        };
        if (runsInline(type)) {
            work.run();
            return;
        }
        try {
            server.workers().execute(work);
        } catch (RejectedExecutionException e) {
            inFlight.remove(tag, finished);
            done.accept(-1);
        }
    }

    /** Hands the reply on and lets a Tflush waiting for this tag go, whatever {@code done} does. */
    private void completed(int type, int tag, CompletableFuture<Void> finished, IntConsumer done, int n) {
        try {
            done.accept(n);
        } finally {
            if (type != TFLUSH) {
                inFlight.remove(tag, finished);
            }
            finished.complete(null);
        }
    }

    /**
     * Metadata requests are a syscall or two on the host: they run on the transport's thread,
     * which saves two thread hand-offs per request (measured by scripts/bench-9p-host). Data
     * transfers, fsync, directory reads and flush (which waits) go to the workers, so a large read
     * never holds up the transport.
     */
    private static boolean runsInline(int type) {
        return switch (type) {
            case TREAD, TWRITE, TFSYNC, TREADDIR, TFLUSH -> false;
            default -> true;
        };
    }

    private int error(Scatter reply, int tag, int errno) {
        if (reply.length() < HEADER + 4) {
            return 0;
        }
        byte[] out = new P9Writer(HEADER + 4, RLERROR, tag).u32(errno).finish(HEADER + 4);
        return reply.write(0, out, out.length);
    }

    /**
     * Runs one request unless the session is closed, in which case nothing is written and the
     * reply length is 0. Tflush waits for the flushed request before it takes {@link #running}:
     * a close waiting for the flush would otherwise wait for a request queued behind it.
     */
    private int serve(int type, int tag, Scatter message, Scatter reply) {
        if (type == TFLUSH) {
            awaitFlushed(message);
        }
        if (closed) {
            return 0;
        }
        running.readLock().lock();
        try {
            if (closed) {
                return 0;
            }
            try {
                return handle(type, tag, message, reply);
            } catch (RuntimeException | OutOfMemoryError e) {
                // N.B. an error reply, never none: the guest's request would wait for ever
                server.internalError();
                LOG.log(System.Logger.Level.WARNING, "9P request type " + type + " failed", e);
                return error(reply, tag, Errno.EIO);
            }
        } finally {
            running.readLock().unlock();
        }
    }

    private void awaitFlushed(Scatter message) {
        byte[] b = new byte[HEADER + 2];
        if (message.read(0, b) == b.length) {
            CompletableFuture<Void> old = inFlight.get(new P9Reader(b).skipHeader().u16());
            if (old != null) {
                old.join(); // Rflush must follow the flushed request's reply (9P flush(5))
            }
        }
    }

    private int handle(int type, int tag, Scatter message, Scatter reply) {
        server.counted();
        List<Fid> held = new ArrayList<>(2);
        try {
            if (message.length() > msize) {
                throw new P9Error(Errno.EMSGSIZE, "message larger than msize " + msize);
            }
            if (!negotiated && type != TVERSION) {
                throw new P9Error(Errno.EPROTO, "no Tversion yet");
            }
            try (Credentials.Scope _ = Credentials.actAs(requester(type, message, held))) {
                return dispatch(type, tag, message, reply, held);
            }
        } catch (P9Error e) {
            if (TRACE) {
                System.err.println("9P type " + type + " tag " + tag + ": " + e.getMessage());
            }
            return error(reply, tag, e.errno());
        } finally {
            for (Fid f : held) {
                f.release();
            }
        }
    }

    /**
     * Who a server running as root serves the request as: the user its first fid was attached by
     * (every request but Tversion, Tattach and Tflush starts with one). The fid is taken here, so
     * a request whose fid does not exist fails before anything runs as root. Null on a server that
     * is not root, or for a request no user makes.
     */
    private HostUser requester(int type, Scatter message, List<Fid> held) {
        if (!server.privileged() || !startsWithFid(type)) {
            return null;
        }
        byte[] fid = new byte[HEADER + 4];
        if (message.read(0, fid) < fid.length) {
            throw new P9Error(Errno.EINVAL, "short message");
        }
        return fids.use(new P9Reader(fid).skipHeader().u32(), held).user;
    }

    private static boolean startsWithFid(int type) {
        return switch (type) {
            case TSTATFS, TLOPEN, TLCREATE, TSYMLINK, TMKNOD, TRENAME, TREADLINK, TGETATTR, TSETATTR, TXATTRWALK,
                 TXATTRCREATE, TREADDIR, TFSYNC, TLOCK, TGETLOCK, TLINK, TMKDIR, TRENAMEAT, TUNLINKAT, TWALK, TREAD,
                 TWRITE, TCLUNK, TREMOVE -> true;
            default -> false;
        };
    }

    private int dispatch(int type, int tag, Scatter message, Scatter reply, List<Fid> held) {
        int capacity = (int) Math.min(reply.length(), msize);
        if (type == TWRITE) {
            return files.write(message, reply, tag, held);
        }
        if (type == TREAD) {
            return files.read(message, reply, tag, capacity, held);
        }
        byte[] bytes = new byte[(int) message.length()];
        message.read(0, bytes);
        P9Reader in = new P9Reader(bytes).skipHeader();
        P9Writer out = new P9Writer(capacity, type + 1, tag);
        switch (type) {
            case TVERSION -> version(in, out);
            case TATTACH -> walks.attach(in, out);
            case TFLUSH -> flush(in);
            case TWALK -> walks.walk(in, out, held);
            case TGETATTR -> attrs.getattr(in, out, held);
            case TSETATTR -> attrs.setattr(in, held);
            case TSTATFS -> attrs.statfs(in, out, held);
            case TLOPEN -> files.lopen(in, out, held);
            case TLCREATE -> files.lcreate(in, out, held);
            case TFSYNC -> files.fsync(in, held);
            case TREADDIR -> dirs.readdir(in, out, held);
            case TMKDIR -> dirs.mkdir(in, out, held);
            case TSYMLINK -> dirs.symlink(in, out, held);
            case TREADLINK -> dirs.readlink(in, out, held);
            case TMKNOD -> dirs.mknod(in, out, held);
            case TLINK -> links.link(in, held);
            case TRENAME -> links.rename(in, held);
            case TRENAMEAT -> links.renameat(in, held);
            case TUNLINKAT -> links.unlinkat(in, held);
            case TREMOVE -> links.remove(in);
            case TCLUNK -> clunk(in);
            case TLOCK -> locks.lock(in, out, held);
            case TGETLOCK -> locks.getlock(in, out, held);
            case TXATTRWALK -> xattrs.xattrwalk(in, out, held);
            case TXATTRCREATE -> xattrs.xattrcreate(in, held);
            default -> throw new P9Error(Errno.EOPNOTSUPP);
        }
        byte[] r = out.finish(out.position());
        return reply.write(0, r, r.length);
    }

    /**
     * Starts the session again: every fid goes, and only a client that speaks 9P2000.L with an
     * msize of at least 4 KiB (an unsigned field: 2^31 and up is large, not negative) may go on.
     */
    private void version(P9Reader in, P9Writer out) {
        long requested = Integer.toUnsignedLong(in.u32());
        String version = in.str();
        negotiated = false;
        fids.clear();
        if (requested < 4096) {
            throw new P9Error(Errno.EINVAL, "msize below 4096");
        }
        boolean known = version.startsWith(VERSION);
        msize = (int) Math.min(requested, P9Server.MAX_MSIZE);
        out.u32(msize).str(known ? VERSION : "unknown");
        negotiated = known;
    }

    private void flush(P9Reader in) {
        in.u16(); // oldtag: serve() waited for it before this request took the session
    }

    private void clunk(P9Reader in) {
        Fid f = fids.remove(in.u32());
        try {
            XattrRequests.commit(f);
        } finally {
            f.release();
        }
    }

    /**
     * Clunks every fid: the connection is gone. Waits for the requests running now (a worker's
     * read or fsync at most), so that none writes a reply afterwards; requests still queued
     * write nothing.
     */
    @Override
    public void close() {
        closed = true;
        running.writeLock().lock();
        try {
            fids.clear();
        } finally {
            running.writeLock().unlock();
        }
    }
}
