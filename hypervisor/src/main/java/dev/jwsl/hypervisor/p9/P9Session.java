package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.memory.Scatter;
import dev.jwsl.hypervisor.sys.Errno;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.IntConsumer;

import static dev.jwsl.hypervisor.p9.P9Constants.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

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
    private final Map<Integer, Fid> fids = new ConcurrentHashMap<>();
    private final Map<Integer, CompletableFuture<Void>> inFlight = new ConcurrentHashMap<>();
    private volatile int msize = P9Server.MAX_MSIZE;
    private volatile boolean closed;

    P9Session(P9Server server) {
        this.server = server;
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
                return write(message, reply, tag, held);
            }
            if (type == TREAD) {
                return read(message, reply, tag, capacity, held);
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
                case TATTACH -> attach(in, out);
                case TFLUSH -> flush(in);
                case TWALK -> walk(in, out, held);
                case TGETATTR -> getattr(in, out, held);
                case TSETATTR -> setattr(in, held);
                case TLOPEN -> lopen(in, out, held);
                case TLCREATE -> lcreate(in, out, held);
                case TREADDIR -> readdir(in, out, held);
                case TCLUNK -> clunk(in);
                case TREMOVE -> remove(in);
                case TMKDIR -> mkdir(in, out, held);
                case TSYMLINK -> symlink(in, out, held);
                case TMKNOD -> mknod(in, out, held);
                case TLINK -> link(in, held);
                case TREADLINK -> out.str(HostFs.readlink(use(in.u32(), held).pathFd, ""));
                case TRENAME -> rename(in, held);
                case TRENAMEAT -> renameat(in, held);
                case TUNLINKAT -> unlinkat(in, held);
                case TSTATFS -> statfs(in, out, held);
                case TFSYNC -> fsync(in, held);
                case TLOCK -> lock(in, out, held);
                case TGETLOCK -> getlock(in, out, held);
                case TXATTRWALK -> xattrwalk(in, out, held);
                case TXATTRCREATE -> xattrcreate(in, held);
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

    // --- fids

    /** The fid numbered {@code n}, referenced until the request ends. */
    private Fid use(int n, List<Fid> held) {
        Fid f = fids.get(n);
        if (f == null || !f.acquire()) {
            throw new P9Error(Errno.EBADF, "fid " + n);
        }
        held.add(f);
        return f;
    }

    private void install(int n, Fid f) {
        if (fids.size() >= server.maxFids() && !fids.containsKey(n)) {
            f.release();
            throw new P9Error(Errno.EMFILE, "fid limit");
        }
        Fid old = fids.put(n, f);
        if (old != null) {
            old.release();
        }
    }

    private void requireUnused(int n) {
        if (n == NOFID || fids.containsKey(n)) {
            throw new P9Error(Errno.EBADF, "fid " + n + " in use");
        }
    }

    private Qid qid(HostFs.Stat st) {
        byte type = switch (st.type()) {
            case HostFs.S_IFDIR -> QTDIR;
            case HostFs.S_IFLNK -> QTSYMLINK;
            default -> QTFILE;
        };
        return new Qid(type, 0, server.qidPath(st.dev(), st.ino()));
    }

    /** A name the client may use inside a directory: one component, never "." or "..". */
    private static String checkName(String name) {
        if (name.isEmpty() || name.equals(".") || name.equals("..") || name.indexOf('/') >= 0) {
            throw new P9Error(Errno.EINVAL, "bad name");
        }
        if (name.getBytes(StandardCharsets.UTF_8).length > 255) {
            throw new P9Error(Errno.ENAMETOOLONG);
        }
        return name;
    }

    private static Fid requireDirectory(Fid f) {
        if (f.pathFd < 0 || !f.isDirectory()) {
            throw new P9Error(Errno.ENOTDIR);
        }
        return f;
    }

    /** Opens {@code name} in {@code dirFd} as a new O_PATH fid; the name must stay beneath dirFd. */
    private int openBeneath(int dirFd, String name) {
        return HostFs.openat2(dirFd, name, HostFs.O_PATH | HostFs.O_NOFOLLOW | HostFs.O_CLOEXEC, 0,
                HostFs.RESOLVE_BENEATH | HostFs.RESOLVE_NO_MAGICLINKS);
    }

    /** Gives a new file to the creating user and the group the client asked for, where the host allows. */
    private void own(int fd, Fid creator, int gid) {
        int uid = server.privileged() && creator.uid != -1 ? creator.uid : -1;
        try {
            HostFs.chown(fd, uid, gid);
        } catch (P9Error e) {
            if (e.errno() != Errno.EPERM) {
                throw e;
            }
            // an unprivileged server keeps the host user's ownership, as WSL's drvfs does
        }
    }

    /** A new entry {@code name} in {@code dir}: its O_PATH fid state, owned by the creator. */
    private Qid created(Fid dir, String name, int gid) {
        int fd = openBeneath(dir.pathFd, name);
        try {
            own(fd, dir, gid);
            return qid(HostFs.stat(fd));
        } finally {
            HostFs.close(fd);
        }
    }

    // --- session

    private void version(P9Reader in, P9Writer out) {
        int requested = in.u32();
        String version = in.str();
        for (Integer n : List.copyOf(fids.keySet())) {
            Fid f = fids.remove(n);
            if (f != null) {
                f.release();
            }
        }
        if (requested < 4096) {
            throw new P9Error(Errno.EINVAL, "msize below 4096");
        }
        msize = Math.min(requested, P9Server.MAX_MSIZE);
        out.u32(msize).str(version.startsWith(VERSION) ? VERSION : "unknown");
    }

    private void attach(P9Reader in, P9Writer out) {
        int fid = in.u32();
        in.u32(); // afid: no authentication
        in.str(); // uname
        String aname = in.str();
        int uid = in.atEnd() ? -1 : in.u32();
        requireUnused(fid);
        P9Server.ShareRoot share = server.share(aname).orElseThrow(() -> new P9Error(Errno.ENOENT, "no share " + aname));
        int fd = HostFs.openat2(share.fd(), ".", HostFs.O_PATH | HostFs.O_DIRECTORY | HostFs.O_CLOEXEC, 0,
                HostFs.RESOLVE_BENEATH);
        Fid f;
        try {
            f = new Fid(share, fd, uid, qid(HostFs.stat(fd)));
        } catch (P9Error e) {
            HostFs.close(fd);
            throw e;
        }
        install(fid, f);
        out.qid(f.qid);
    }

    private void flush(P9Reader in) {
        CompletableFuture<Void> old = inFlight.get(in.u16());
        if (old != null) {
            old.join(); // Rflush must follow the flushed request's reply (9P flush(5))
        }
    }

    private void walk(P9Reader in, P9Writer out, List<Fid> held) {
        int fidNo = in.u32();
        int newNo = in.u32();
        int n = in.u16();
        if (n > MAX_WALK) {
            throw new P9Error(Errno.EINVAL, "walk of " + n + " names");
        }
        List<String> names = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            names.add(in.str());
        }
        Fid from = use(fidNo, held);
        if (from.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (newNo != fidNo) {
            requireUnused(newNo);
        }
        List<Qid> qids = new ArrayList<>(n);
        int cur = -1; // owned descriptor of the last step; -1 while still at "from"
        Qid curQid = from.qid;
        try {
            for (String name : names) {
                int at = cur >= 0 ? cur : from.pathFd;
                int next;
                try {
                    if (curQid.type() != QTDIR) {
                        throw new P9Error(Errno.ENOTDIR);
                    }
                    next = step(from.share, at, name);
                } catch (P9Error e) {
                    if (qids.isEmpty()) {
                        throw e;
                    }
                    break; // a partial walk answers the qids it got and makes no fid
                }
                HostFs.close(cur);
                cur = next;
                curQid = qid(HostFs.stat(cur));
                qids.add(curQid);
            }
            if (qids.size() == n) {
                int fd = cur >= 0 ? cur : HostFs.dup(from.pathFd);
                cur = -1;
                install(newNo, new Fid(from.share, fd, from.uid, curQid));
            }
        } finally {
            HostFs.close(cur);
        }
        out.u16(qids.size());
        for (Qid q : qids) {
            out.qid(q);
        }
    }

    /** One walk step from directory {@code dirFd}: a child, or the parent but never above the share. */
    private int step(P9Server.ShareRoot share, int dirFd, String name) {
        if (name.equals("..")) {
            HostFs.Stat st = HostFs.stat(dirFd);
            if (st.dev() == share.dev() && st.ino() == share.ino()) {
                return HostFs.dup(dirFd);
            }
            return HostFs.openat(dirFd, "..", HostFs.O_PATH | HostFs.O_DIRECTORY | HostFs.O_NOFOLLOW | HostFs.O_CLOEXEC, 0);
        }
        if (name.equals(".")) {
            return HostFs.dup(dirFd);
        }
        return openBeneath(dirFd, checkName(name));
    }

    private void getattr(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = use(in.u32(), held);
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        HostFs.Stat st = HostFs.stat(f.pathFd);
        out.u64(GETATTR_VALID).qid(qid(st)).u32(st.mode()).u32(st.uid()).u32(st.gid()).u64(st.nlink())
                .u64(st.rdev()).u64(st.size()).u64(st.blksize()).u64(st.blocks())
                .u64(st.atimeSec()).u64(st.atimeNsec()).u64(st.mtimeSec()).u64(st.mtimeNsec())
                .u64(st.ctimeSec()).u64(st.ctimeNsec()).u64(st.btimeSec()).u64(st.btimeNsec())
                .u64(0).u64(0);
    }

    private void setattr(P9Reader in, List<Fid> held) {
        Fid f = use(in.u32(), held);
        int valid = in.u32();
        int mode = in.u32();
        int uid = in.u32();
        int gid = in.u32();
        long size = in.u64();
        long atimeSec = in.u64(), atimeNsec = in.u64(), mtimeSec = in.u64(), mtimeNsec = in.u64();
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if ((valid & ATTR_MODE) != 0) {
            if (f.isSymlink()) {
                throw new P9Error(Errno.EOPNOTSUPP);
            }
            HostFs.chmod(HostFs.procPath(f.pathFd), mode & 07777);
        }
        if ((valid & (ATTR_UID | ATTR_GID)) != 0) {
            try {
                HostFs.chown(f.pathFd, (valid & ATTR_UID) != 0 ? uid : -1, (valid & ATTR_GID) != 0 ? gid : -1);
            } catch (P9Error e) {
                if (e.errno() != Errno.EPERM || server.privileged()) {
                    throw e;
                }
                // unprivileged: ownership stays the host user's (as QEMU's security_model=none)
            }
        }
        if ((valid & ATTR_SIZE) != 0) {
            if (size < 0) {
                throw new P9Error(Errno.EFBIG);
            }
            if (f.isDirectory()) {
                throw new P9Error(Errno.EISDIR);
            }
            HostFs.truncate(HostFs.procPath(f.pathFd), size);
        }
        if ((valid & (ATTR_ATIME | ATTR_MTIME)) != 0) {
            long aSec = 0, aNsec = HostFs.UTIME_OMIT, mSec = 0, mNsec = HostFs.UTIME_OMIT;
            if ((valid & ATTR_ATIME) != 0) {
                aSec = atimeSec;
                aNsec = (valid & ATTR_ATIME_SET) != 0 ? checkNsec(atimeNsec) : HostFs.UTIME_NOW;
            }
            if ((valid & ATTR_MTIME) != 0) {
                mSec = mtimeSec;
                mNsec = (valid & ATTR_MTIME_SET) != 0 ? checkNsec(mtimeNsec) : HostFs.UTIME_NOW;
            }
            HostFs.utimensat(f.pathFd, "", aSec, aNsec, mSec, mNsec, HostFs.AT_EMPTY_PATH);
        }
    }

    private static long checkNsec(long nsec) {
        if (nsec < 0 || nsec >= 1_000_000_000L) {
            throw new P9Error(Errno.EINVAL, "nanoseconds");
        }
        return nsec;
    }

    /** The open(2) flags a client may ask for; the rest (O_CREAT, O_NOFOLLOW, O_DIRECT, ...) are the server's. */
    private static int openFlags(int p9flags) {
        int keep = HostFs.O_ACCMODE | HostFs.O_TRUNC | HostFs.O_APPEND | HostFs.O_DSYNC | HostFs.O_SYNC
                | HostFs.O_DIRECTORY;
        if ((p9flags & HostFs.O_ACCMODE) == HostFs.O_ACCMODE) {
            throw new P9Error(Errno.EINVAL, "open mode 3");
        }
        return (p9flags & keep) | HostFs.O_CLOEXEC | HostFs.O_NOCTTY | HostFs.O_LARGEFILE;
    }

    private void lopen(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = use(in.u32(), held);
        int flags = openFlags(in.u32());
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (f.isSymlink()) {
            throw new P9Error(Errno.ELOOP);
        }
        HostFs.Stat st = HostFs.stat(f.pathFd);
        if (st.type() != HostFs.S_IFREG && st.type() != HostFs.S_IFDIR) {
            // the client opens fifos and devices as its own special inodes, never through the server
            throw new P9Error(Errno.EOPNOTSUPP, "open of a special file");
        }
        refuseKernelFiles(f.pathFd, flags);
        int fd = HostFs.open(HostFs.procPath(f.pathFd), flags, 0);
        if (!f.setOpen(fd, flags)) {
            HostFs.close(fd);
            throw new P9Error(Errno.EINVAL, "fid already open");
        }
        out.qid(f.qid).u32(0);
    }

    /** statfs f_type of procfs and sysfs (include/uapi/linux/magic.h). */
    private static final long PROC_SUPER_MAGIC = 0x9fa0, SYSFS_MAGIC = 0x62656572;

    /**
     * A share of the host's "/" reaches /proc and /sys. The server never opens procfs files: its
     * own /proc/self/mem and descriptors would be the guest's to read and write. sysfs is
     * read-only to the guest (a privileged server would otherwise retune host devices).
     */
    private static void refuseKernelFiles(int pathFd, int flags) {
        long type = HostFs.statfs(pathFd).type();
        if (type == PROC_SUPER_MAGIC || (type == SYSFS_MAGIC && (flags & HostFs.O_ACCMODE) != HostFs.O_RDONLY)) {
            throw new P9Error(Errno.EACCES, "host kernel file");
        }
    }

    private void lcreate(P9Reader in, P9Writer out, List<Fid> held) {
        int fidNo = in.u32();
        Fid dir = requireDirectory(use(fidNo, held));
        String name = checkName(in.str());
        int flags = openFlags(in.u32()) & ~HostFs.O_DIRECTORY;
        int mode = in.u32() & 07777;
        int gid = in.u32();
        if (dir.isOpen()) {
            throw new P9Error(Errno.EINVAL, "fid already open");
        }
        int io = HostFs.openat2(dir.pathFd, name, flags | HostFs.O_CREAT | HostFs.O_NOFOLLOW, mode,
                HostFs.RESOLVE_BENEATH | HostFs.RESOLVE_NO_MAGICLINKS);
        int path = -1;
        try {
            path = openBeneath(dir.pathFd, name);
            HostFs.Stat a = HostFs.stat(io), b = HostFs.stat(path);
            if (a.dev() != b.dev() || a.ino() != b.ino()) {
                throw new P9Error(Errno.EAGAIN, "file replaced while created");
            }
            own(path, dir, gid);
            Fid created = new Fid(dir.share, path, dir.uid, qid(a));
            path = -1;
            created.setOpen(io, flags);
            io = -1;
            install(fidNo, created);
            out.qid(created.qid).u32(0);
        } finally {
            HostFs.close(io);
            HostFs.close(path);
        }
    }

    private void mkdir(P9Reader in, P9Writer out, List<Fid> held) {
        Fid dir = requireDirectory(use(in.u32(), held));
        String name = checkName(in.str());
        int mode = in.u32() & 07777;
        int gid = in.u32();
        HostFs.mkdirat(dir.pathFd, name, mode);
        out.qid(created(dir, name, gid));
    }

    private void symlink(P9Reader in, P9Writer out, List<Fid> held) {
        Fid dir = requireDirectory(use(in.u32(), held));
        String name = checkName(in.str());
        String target = in.str();
        int gid = in.u32();
        if (target.isEmpty()) {
            throw new P9Error(Errno.ENOENT);
        }
        if (target.getBytes(StandardCharsets.UTF_8).length > 4095) {
            throw new P9Error(Errno.ENAMETOOLONG);
        }
        HostFs.symlinkat(target, dir.pathFd, name);
        out.qid(created(dir, name, gid));
    }

    private void mknod(P9Reader in, P9Writer out, List<Fid> held) {
        Fid dir = requireDirectory(use(in.u32(), held));
        String name = checkName(in.str());
        int mode = in.u32();
        int major = in.u32();
        int minor = in.u32();
        int gid = in.u32();
        HostFs.mknodat(dir.pathFd, name, mode, HostFs.makedev(major, minor));
        out.qid(created(dir, name, gid));
    }

    private void link(P9Reader in, List<Fid> held) {
        Fid dir = requireDirectory(use(in.u32(), held));
        Fid target = use(in.u32(), held);
        String name = checkName(in.str());
        if (target.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (target.isDirectory()) {
            throw new P9Error(Errno.EPERM);
        }
        try {
            HostFs.linkat(target.pathFd, "", dir.pathFd, name, HostFs.AT_EMPTY_PATH);
        } catch (P9Error e) {
            if (e.errno() != Errno.ENOENT && e.errno() != Errno.EPERM || target.isSymlink()) {
                throw e;
            }
            // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc link is the unprivileged way
            HostFs.linkat(HostFs.AT_FDCWD, HostFs.procPath(target.pathFd), dir.pathFd, name, HostFs.AT_SYMLINK_FOLLOW);
        }
    }

    private void renameat(P9Reader in, List<Fid> held) {
        Fid from = requireDirectory(use(in.u32(), held));
        String oldName = checkName(in.str());
        Fid to = requireDirectory(use(in.u32(), held));
        String newName = checkName(in.str());
        HostFs.renameat(from.pathFd, oldName, to.pathFd, newName);
    }

    private void unlinkat(P9Reader in, List<Fid> held) {
        Fid dir = requireDirectory(use(in.u32(), held));
        String name = checkName(in.str());
        int flags = in.u32();
        HostFs.unlinkat(dir.pathFd, name, flags & AT_REMOVEDIR);
    }

    /**
     * Where the fid's file is now, as its parent directory (an owned O_PATH descriptor, checked
     * to be inside the share) and its name: for the old fid-only Trename and Tremove.
     */
    private record Located(int parentFd, String name) {}

    private Located locate(Fid f) {
        String host = HostFs.readlink(HostFs.AT_FDCWD, HostFs.procPath(f.pathFd));
        String root = f.share.path().toString();
        String prefix = root.endsWith("/") ? root : root + "/";
        if (!host.startsWith(prefix)) {
            throw new P9Error(Errno.EBUSY, "the share root or a file outside it");
        }
        String rel = host.substring(prefix.length());
        int slash = rel.lastIndexOf('/');
        String parent = slash < 0 ? "." : rel.substring(0, slash);
        String name = rel.substring(slash + 1);
        int parentFd = HostFs.openat2(f.share.fd(), parent, HostFs.O_PATH | HostFs.O_DIRECTORY | HostFs.O_CLOEXEC, 0,
                HostFs.RESOLVE_BENEATH | HostFs.RESOLVE_NO_MAGICLINKS);
        try {
            int check = openBeneath(parentFd, checkName(name));
            try {
                HostFs.Stat a = HostFs.stat(check), b = HostFs.stat(f.pathFd);
                if (a.dev() != b.dev() || a.ino() != b.ino()) {
                    throw new P9Error(Errno.ENOENT, "file moved");
                }
            } finally {
                HostFs.close(check);
            }
            return new Located(parentFd, name);
        } catch (P9Error e) {
            HostFs.close(parentFd);
            throw e;
        }
    }

    private void rename(P9Reader in, List<Fid> held) {
        Fid f = use(in.u32(), held);
        Fid to = requireDirectory(use(in.u32(), held));
        String name = checkName(in.str());
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        Located at = locate(f);
        try {
            HostFs.renameat(at.parentFd(), at.name(), to.pathFd, name);
        } finally {
            HostFs.close(at.parentFd());
        }
    }

    private void remove(P9Reader in) {
        int n = in.u32();
        Fid f = fids.remove(n);
        if (f == null) {
            throw new P9Error(Errno.EBADF);
        }
        try {
            if (f.pathFd < 0) {
                throw new P9Error(Errno.EBADF);
            }
            Located at = locate(f);
            try {
                HostFs.unlinkat(at.parentFd(), at.name(), f.isDirectory() ? AT_REMOVEDIR : 0);
            } finally {
                HostFs.close(at.parentFd());
            }
        } finally {
            f.release(); // Tremove clunks the fid even when the removal fails
        }
    }

    private void clunk(P9Reader in) {
        Fid f = fids.remove(in.u32());
        if (f == null) {
            throw new P9Error(Errno.EBADF);
        }
        try {
            Fid.XattrWrite x = f.xattrWrite;
            if (x != null) {
                if (x.written != x.value.length) {
                    throw new P9Error(Errno.EINVAL, "xattr value shorter than announced");
                }
                String path = HostFs.procPath(f.pathFd);
                if (x.value.length == 0 && x.flags == 0) {
                    HostFs.removexattr(path, x.name);
                } else {
                    HostFs.setxattr(path, x.name, x.value, x.flags);
                }
            }
        } finally {
            f.release();
        }
    }

    private void statfs(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = use(in.u32(), held);
        HostFs.StatFs s = HostFs.statfs(f.pathFd >= 0 ? f.pathFd : f.share.fd());
        out.u32((int) s.type()).u32((int) s.bsize()).u64(s.blocks()).u64(s.bfree()).u64(s.bavail())
                .u64(s.files()).u64(s.ffree()).u64(s.fsid()).u32((int) s.namelen());
    }

    private void fsync(P9Reader in, List<Fid> held) {
        Fid f = use(in.u32(), held);
        boolean dataOnly = !in.atEnd() && in.u32() != 0;
        if (f.ioFd() < 0) {
            throw new P9Error(Errno.EBADF);
        }
        HostFs.fsync(f.ioFd(), dataOnly);
    }

    private void lock(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = use(in.u32(), held);
        int type = in.u8();
        in.u32(); // flags: BLOCK means the client retries; the server never waits
        long start = in.u64();
        long length = in.u64();
        in.u32(); // proc_id
        in.str(); // client_id
        if (f.ioFd() < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (type > 2 || start < 0 || length < 0) {
            throw new P9Error(Errno.EINVAL);
        }
        byte status;
        try {
            HostFs.fcntlLock(f.ioFd(), HostFs.F_OFD_SETLK, new HostFs.Lock(type, start, length, 0));
            status = LOCK_SUCCESS;
        } catch (P9Error e) {
            status = e.errno() == Errno.EAGAIN || e.errno() == Errno.EACCES ? LOCK_BLOCKED : LOCK_ERROR;
        }
        out.u8(status);
    }

    private void getlock(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = use(in.u32(), held);
        int type = in.u8();
        long start = in.u64();
        long length = in.u64();
        int procId = in.u32();
        String client = in.str();
        if (f.ioFd() < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (type > 2 || start < 0 || length < 0) {
            throw new P9Error(Errno.EINVAL);
        }
        HostFs.Lock l = HostFs.fcntlLock(f.ioFd(), HostFs.F_OFD_GETLK, new HostFs.Lock(type, start, length, 0));
        out.u8(l.type()).u64(l.start()).u64(l.length()).u32(l.type() == 2 ? procId : 0).str(client);
    }

    private void xattrwalk(P9Reader in, P9Writer out, List<Fid> held) {
        int fidNo = in.u32();
        Fid f = use(fidNo, held);
        int newNo = in.u32();
        String name = in.str();
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (newNo != fidNo) {
            requireUnused(newNo);
        }
        byte[] value;
        if (f.isSymlink()) {
            value = name.isEmpty() ? new byte[0] : null;
            if (value == null) {
                throw new P9Error(Errno.ENODATA);
            }
        } else {
            String path = HostFs.procPath(f.pathFd);
            value = name.isEmpty() ? HostFs.listxattr(path) : HostFs.getxattr(path, name);
        }
        Fid x = new Fid(f.share, -1, f.uid, f.qid);
        x.xattrRead = value;
        install(newNo, x);
        out.u64(value.length);
    }

    private void xattrcreate(P9Reader in, List<Fid> held) {
        int n = in.u32();
        Fid f = use(n, held);
        String name = in.str();
        long size = in.u64();
        int flags = in.u32();
        if (size < 0 || size > 65536) {
            throw new P9Error(Errno.E2BIG);
        }
        if ((flags & ~3) != 0) {
            throw new P9Error(Errno.EINVAL);
        }
        if (f.pathFd < 0 || f.isSymlink()) {
            throw new P9Error(Errno.EOPNOTSUPP);
        }
        synchronized (f) {
            if (f.isOpen()) {
                throw new P9Error(Errno.EINVAL, "fid already open");
            }
            f.xattrWrite = new Fid.XattrWrite(name, flags, (int) size);
        }
    }

    // --- data

    private int read(Scatter message, Scatter reply, int tag, int capacity, List<Fid> held) {
        byte[] bytes = new byte[HEADER + 16]; // fid[4] offset[8] count[4]
        if (message.read(0, bytes) < bytes.length) {
            throw new P9Error(Errno.EINVAL, "short Tread");
        }
        P9Reader in = new P9Reader(bytes).skipHeader();
        Fid f = use(in.u32(), held);
        long offset = in.u64();
        long count = Integer.toUnsignedLong(in.u32());
        if (offset < 0) {
            throw new P9Error(Errno.EINVAL);
        }
        count = Math.min(count, Math.max(0, capacity - IO_HEADER));
        long got;
        byte[] xattr = f.xattrRead;
        if (xattr != null) {
            int from = (int) Math.min(offset, xattr.length);
            int n = (int) Math.min(count, xattr.length - from);
            reply.write(IO_HEADER, java.util.Arrays.copyOfRange(xattr, from, from + n), n);
            got = n;
        } else {
            int fd = f.ioFd();
            if (fd < 0 || (f.openFlags() & HostFs.O_ACCMODE) == HostFs.O_WRONLY || f.isDirectory()) {
                throw new P9Error(Errno.EBADF);
            }
            got = 0;
            for (MemorySegment seg : reply.slice(IO_HEADER, count).parts()) {
                long n = HostFs.pread(fd, seg, offset + got);
                got += n;
                if (n < seg.byteSize()) {
                    break;
                }
            }
        }
        byte[] h = new P9Writer(IO_HEADER, TREAD + 1, tag).u32((int) got).finish((int) (IO_HEADER + got));
        reply.write(0, h, h.length);
        return (int) (IO_HEADER + got);
    }

    private int write(Scatter message, Scatter reply, int tag, List<Fid> held) {
        byte[] bytes = new byte[WRITE_HEADER];
        if (message.read(0, bytes) < WRITE_HEADER) {
            throw new P9Error(Errno.EINVAL, "short Twrite");
        }
        P9Reader in = new P9Reader(bytes).skipHeader();
        Fid f = use(in.u32(), held);
        long offset = in.u64();
        long count = Integer.toUnsignedLong(in.u32());
        if (offset < 0 || count > message.length() - WRITE_HEADER) {
            throw new P9Error(Errno.EINVAL, "Twrite count beyond the message");
        }
        Scatter data = message.slice(WRITE_HEADER, count);
        long done = 0;
        Fid.XattrWrite x = f.xattrWrite;
        if (x != null) {
            synchronized (f) {
                if (offset != x.written || count > x.value.length - x.written) {
                    throw new P9Error(Errno.EINVAL, "xattr write out of order or too long");
                }
                byte[] chunk = new byte[(int) count];
                data.read(0, chunk);
                System.arraycopy(chunk, 0, x.value, x.written, chunk.length);
                x.written += chunk.length;
                done = count;
            }
        } else {
            int fd = f.ioFd();
            if (fd < 0 || (f.openFlags() & HostFs.O_ACCMODE) == HostFs.O_RDONLY) {
                throw new P9Error(Errno.EBADF);
            }
            for (MemorySegment seg : data.parts()) {
                long n = HostFs.pwrite(fd, seg, offset + done);
                done += n;
                if (n < seg.byteSize()) {
                    break;
                }
            }
        }
        byte[] r = new P9Writer(HEADER + 4, TWRITE + 1, tag).u32((int) done).finish(HEADER + 4);
        return reply.write(0, r, r.length);
    }

    private void readdir(P9Reader in, P9Writer out, List<Fid> held) {
        Fid f = use(in.u32(), held);
        long offset = in.u64();
        int count = (int) Math.min(Integer.toUnsignedLong(in.u32()), out.remaining() - 4);
        int fd = f.ioFd();
        if (fd < 0 || !f.isDirectory()) {
            throw new P9Error(Errno.EBADF);
        }
        if (count < 0) {
            throw new P9Error(Errno.EINVAL);
        }
        long dirDev = HostFs.stat(fd).dev();
        P9Writer entries = new P9Writer(count + HEADER, 0, 0);
        synchronized (f) {
            if (offset != f.dirPosition) {
                HostFs.lseek(fd, offset, 0);
                f.dirPosition = offset;
            }
            try (Arena a = Arena.ofConfined()) {
                MemorySegment buf = a.allocate(Math.max(4096, Math.min(count * 2L, 1 << 20)), 8);
                boolean full = false;
                while (!full) {
                    int n = HostFs.getdents64(fd, buf);
                    if (n == 0) {
                        break;
                    }
                    long resumeAt = f.dirPosition;
                    for (int at = 0; at < n; ) {
                        // struct linux_dirent64: ino[8] off[8] reclen[2] type[1] name (NUL-terminated)
                        long ino = buf.get(JAVA_LONG, at);
                        long off = buf.get(JAVA_LONG, at + 8);
                        int reclen = buf.get(JAVA_SHORT, at + 16) & 0xffff;
                        int type = buf.get(JAVA_BYTE, at + 18) & 0xff;
                        int nameLen = 0;
                        while (buf.get(JAVA_BYTE, at + 19 + nameLen) != 0) {
                            nameLen++;
                        }
                        byte[] name = buf.asSlice(at + 19, nameLen).toArray(JAVA_BYTE);
                        if (entries.remaining() < QID_SIZE + 8 + 1 + 2 + name.length) {
                            full = true;
                            break;
                        }
                        byte qtype = type == 4 ? QTDIR : type == 10 ? QTSYMLINK : QTFILE;
                        entries.qid(new Qid(qtype, 0, server.qidPath(dirDev, ino))).u64(off).u8(type)
                                .u16(name.length).bytes(name, name.length);
                        resumeAt = off;
                        at += reclen;
                    }
                    f.dirPosition = resumeAt;
                    if (full) {
                        // the rest of this batch did not fit: continue from the last entry sent
                        HostFs.lseek(fd, resumeAt, 0);
                    }
                }
            }
        }
        int n = entries.position() - HEADER;
        byte[] all = entries.finish(0);
        out.u32(n).bytes(java.util.Arrays.copyOfRange(all, HEADER, HEADER + n), n);
    }

    /** Clunks every fid: the connection is gone. */
    @Override
    public void close() {
        closed = true;
        for (Integer n : List.copyOf(fids.keySet())) {
            Fid f = fids.remove(n);
            if (f != null) {
                f.release();
            }
        }
    }
}
