package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.memory.Scatter;
import dev.jwsl.hypervisor.sys.Errno;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.IntConsumer;

import static dev.jwsl.hypervisor.p9.P9Constants.*;

/**
 * One 9P connection: its negotiated msize and its fids. A transport {@link #submit submits}
 * each request with a buffer for the reply; the reply's length comes back through a callback
 * once it is written (or -1: the message was not 9P, drop the connection).
 */
public final class P9Session implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(P9Session.class.getName());

    /** JWSL_P9_TRACE=1 prints every failed request to stderr (protocol debugging). */
    private static final boolean TRACE = System.getenv("JWSL_P9_TRACE") != null;

    private final P9Server server;
    private final FidTable fids;
    private final Map<Integer, CompletableFuture<Void>> inFlight = new ConcurrentHashMap<>();
    private final WalkRequests walks;
    private final AttrRequests attrs;
    private final DirRequests dirs;
    private final FileRequests files;
    private final XattrRequests xattrs;
    private final LockRequests locks;
    private final LinkRequests links;
    private volatile int msize = P9Server.MAX_MSIZE;
    private volatile boolean closed;

    P9Session(P9Server server) {
        this.server = server;
        this.fids = new FidTable(server.maxFids());
        this.walks = new WalkRequests(server, fids);
        this.attrs = new AttrRequests(server, fids);
        this.dirs = new DirRequests(server, fids);
        this.files = new FileRequests(server, fids);
        this.xattrs = new XattrRequests(fids);
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
            int n;
            try {
                n = handle(type, tag, message, reply);
            } catch (RuntimeException e) {
                server.internalError();
                LOG.log(System.Logger.Level.WARNING, "9P request type " + type + " failed", e);
                n = error(reply, tag, Errno.EIO);
            }
            try {
                done.accept(n);
            } finally {
                if (type != TFLUSH) {
                    inFlight.remove(tag, finished);
                }
                finished.complete(null);
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

    private int handle(int type, int tag, Scatter message, Scatter reply) {
        server.counted();
        if (closed) {
            return error(reply, tag, Errno.EBADF);
        }
        int capacity = (int) Math.min(reply.length(), msize);
        List<Fid> held = new ArrayList<>(2);
        try {
            if (type == TWRITE) {
                return files.write(message, reply, tag, held);
            }
            if (type == TREAD) {
                return files.read(message, reply, tag, capacity, held);
            }
            if (message.length() > msize) {
                throw new P9Error(Errno.EINVAL, "message larger than msize");
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

    private void version(P9Reader in, P9Writer out) {
        int requested = in.u32();
        String version = in.str();
        fids.clear();
        if (requested < 4096) {
            throw new P9Error(Errno.EINVAL, "msize below 4096");
        }
        msize = Math.min(requested, P9Server.MAX_MSIZE);
        out.u32(msize).str(version.startsWith(VERSION) ? VERSION : "unknown");
    }

    private void flush(P9Reader in) {
        CompletableFuture<Void> old = inFlight.get(in.u16());
        if (old != null) {
            old.join(); // Rflush must follow the flushed request's reply (9P flush(5))
        }
    }

    private void clunk(P9Reader in) {
        Fid f = fids.remove(in.u32());
        try {
            XattrRequests.commit(f);
        } finally {
            f.release();
        }
    }

    /** Clunks every fid: the connection is gone. */
    @Override
    public void close() {
        closed = true;
        fids.clear();
    }
}
