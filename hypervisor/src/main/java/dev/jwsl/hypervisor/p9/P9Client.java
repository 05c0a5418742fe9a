package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.memory.Scatter;
import dev.jwsl.hypervisor.sys.Errno;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static dev.jwsl.hypervisor.p9.P9Constants.*;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * A minimal synchronous 9P2000.L client: one request at a time over a {@link Transport}. It
 * drives the server from tests and from the host-side benchmark (this machine's kernel has no
 * 9P client), against jwsl's server or any other (diod).
 */
public final class P9Client implements AutoCloseable {
    /** Sends one request and returns the whole reply. */
    public interface Transport extends AutoCloseable {
        byte[] rpc(byte[] request);

        @Override
        default void close() {}
    }

    /** A reply, positioned after its header. */
    private record Reply(int type, ByteBuffer body) {}

    /** One directory entry from Treaddir: its name as the server sent it, bytes in no particular encoding. */
    public record Entry(byte[] rawName, long qidPath, byte qidType, long offset, int type) {
        /** The name read as UTF-8. */
        public String name() {
            return new String(rawName, StandardCharsets.UTF_8);
        }
    }

    /** What Tgetattr answers (the fields tests and tools look at). */
    public record Attr(long qidPath, byte qidType, int mode, int uid, int gid, long nlink, long size,
                       long mtimeSec, long mtimeNsec) {}

    private final Transport transport;
    private int tag;
    private int msize;

    public P9Client(Transport transport) {
        this.transport = transport;
    }

    /**
     * A transport straight into a session (no socket), one request at a time: the reply buffer
     * is {@code replyBuffer} bytes. Native memory, as a real transport's buffers are.
     */
    public static Transport direct(P9Session session, int replyBuffer) {
        Arena arena = Arena.ofAuto();
        MemorySegment req = arena.allocate(P9Server.MAX_MSIZE + 64);
        MemorySegment out = arena.allocate(replyBuffer);
        return request -> {
            MemorySegment.copy(request, 0, req, JAVA_BYTE, 0, request.length);
            CompletableFuture<Integer> n = new CompletableFuture<>();
            session.submit(Scatter.of(req.asSlice(0, request.length)), Scatter.of(out), n::complete);
            int len = n.join();
            if (len < 0) {
                throw new P9Error(Errno.EPROTO, "server dropped the connection");
            }
            return out.asSlice(0, len).toArray(JAVA_BYTE);
        };
    }

    /** A transport over a byte stream (a Unix or TCP socket). */
    public static Transport stream(InputStream in, OutputStream out, AutoCloseable owner) {
        DataInputStream din = new DataInputStream(in);
        return new Transport() {
            @Override
            public byte[] rpc(byte[] request) {
                try {
                    out.write(request);
                    out.flush();
                    byte[] size = new byte[4];
                    din.readFully(size);
                    int n = ByteBuffer.wrap(size).order(ByteOrder.LITTLE_ENDIAN).getInt();
                    if (n < HEADER || n > P9Server.MAX_MSIZE) {
                        throw new P9Error(Errno.EPROTO, "reply size " + n);
                    }
                    byte[] all = new byte[n];
                    System.arraycopy(size, 0, all, 0, 4);
                    din.readFully(all, 4, n - 4);
                    return all;
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }

            @Override
            public void close() {
                try {
                    owner.close();
                } catch (Exception e) {
                    // closing a socket that is already gone
                }
            }
        };
    }

    /** A request under construction. */
    public final class Request {
        private ByteBuffer b = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);

        Request(int type) {
            b.putInt(0).put((byte) type).putShort((short) (tag++ & 0x7fff));
        }

        private ByteBuffer room(int n) {
            if (b.remaining() < n) {
                ByteBuffer bigger = ByteBuffer.allocate(Math.max(b.capacity() * 2, b.position() + n)).order(ByteOrder.LITTLE_ENDIAN);
                b.flip();
                bigger.put(b);
                b = bigger;
            }
            return b;
        }

        public Request u8(int v) { room(1).put((byte) v); return this; }
        public Request u16(int v) { room(2).putShort((short) v); return this; }
        public Request u32(int v) { room(4).putInt(v); return this; }
        public Request u64(long v) { room(8).putLong(v); return this; }
        public Request bytes(byte[] v) { room(v.length).put(v); return this; }

        public Request str(String s) {
            return str(s.getBytes(StandardCharsets.UTF_8));
        }

        /** A string field of any bytes (names need not be UTF-8). */
        public Request str(byte[] v) {
            room(2 + v.length).putShort((short) v.length).put(v);
            return this;
        }

        /** The encoded message. */
        public byte[] encode() {
            b.putInt(0, b.position());
            byte[] out = new byte[b.position()];
            b.get(0, out);
            return out;
        }
    }

    public Request request(int type) {
        return new Request(type);
    }

    /** Sends raw bytes; returns the raw reply (for fuzzing). */
    public byte[] raw(byte[] message) {
        return transport.rpc(message);
    }

    private Reply call(Request r) {
        byte[] reply = transport.rpc(r.encode());
        ByteBuffer b = ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN);
        int type = b.get(4) & 0xff;
        b.position(HEADER);
        if (type == RLERROR) {
            throw new P9Error(b.getInt());
        }
        return new Reply(type, b);
    }

    private static String str(ByteBuffer b) {
        return new String(bytes(b), StandardCharsets.UTF_8);
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] v = new byte[b.getShort() & 0xffff];
        b.get(v);
        return v;
    }

    private static long qidPath(ByteBuffer b) {
        b.get();
        b.getInt();
        return b.getLong();
    }

    /** Tversion; returns the negotiated msize. */
    public int version(int wanted) {
        Reply r = call(request(TVERSION).u32(wanted).str(VERSION));
        msize = r.body().getInt();
        String v = str(r.body());
        if (!v.equals(VERSION)) {
            throw new P9Error(Errno.EPROTO, "server speaks " + v);
        }
        return msize;
    }

    public long attach(int fid, String aname, int uid) {
        return qidPath(call(request(TATTACH).u32(fid).u32(NOFID).str("user").str(aname).u32(uid)).body());
    }

    /** Twalk; returns the qid paths walked (fewer than names on a partial walk). */
    public List<Long> walk(int fid, int newfid, String... names) {
        Request r = request(TWALK).u32(fid).u32(newfid).u16(names.length);
        for (String n : names) {
            r.str(n);
        }
        ByteBuffer b = call(r).body();
        int n = b.getShort() & 0xffff;
        List<Long> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(qidPath(b));
        }
        return out;
    }

    public Attr getattr(int fid) {
        ByteBuffer b = call(request(TGETATTR).u32(fid).u64(GETATTR_VALID)).body();
        b.getLong();
        byte qtype = b.get();
        b.getInt();
        long qpath = b.getLong();
        int mode = b.getInt(), uid = b.getInt(), gid = b.getInt();
        long nlink = b.getLong();
        b.getLong(); // rdev
        long size = b.getLong();
        b.getLong();
        b.getLong();
        b.getLong();
        b.getLong(); // atime
        long mtime = b.getLong(), mtimeNsec = b.getLong();
        return new Attr(qpath, qtype, mode, uid, gid, nlink, size, mtime, mtimeNsec);
    }

    public void setattr(int fid, int valid, int mode, int uid, int gid, long size, long mtimeSec) {
        call(request(TSETATTR).u32(fid).u32(valid).u32(mode).u32(uid).u32(gid).u64(size)
                .u64(0).u64(0).u64(mtimeSec).u64(0));
    }

    public void lopen(int fid, int flags) {
        call(request(TLOPEN).u32(fid).u32(flags));
    }

    public void lcreate(int fid, String name, int flags, int mode) {
        lcreate(fid, name, flags, mode, -1);
    }

    /** Tlcreate asking for group {@code gid} (-1: none), as a client passes its fsgid. */
    public void lcreate(int fid, String name, int flags, int mode, int gid) {
        call(request(TLCREATE).u32(fid).str(name).u32(flags).u32(mode).u32(gid));
    }

    public byte[] read(int fid, long offset, int count) {
        ByteBuffer b = call(request(TREAD).u32(fid).u64(offset).u32(count)).body();
        byte[] data = new byte[b.getInt()];
        b.get(data);
        return data;
    }

    public int write(int fid, long offset, byte[] data) {
        return call(request(TWRITE).u32(fid).u64(offset).u32(data.length).bytes(data)).body().getInt();
    }

    /** All entries of an opened directory fid, following offsets until an empty reply. */
    public List<Entry> readdirAll(int fid, int count) {
        List<Entry> out = new ArrayList<>();
        long offset = 0;
        for (;;) {
            ByteBuffer b = call(request(TREADDIR).u32(fid).u64(offset).u32(count)).body();
            int n = b.getInt();
            if (n == 0) {
                return out;
            }
            int end = b.position() + n;
            while (b.position() < end) {
                byte qtype = b.get();
                b.getInt();
                long qpath = b.getLong();
                offset = b.getLong();
                int type = b.get() & 0xff;
                out.add(new Entry(bytes(b), qpath, qtype, offset, type));
            }
        }
    }

    public void clunk(int fid) {
        call(request(TCLUNK).u32(fid));
    }

    public void remove(int fid) {
        call(request(TREMOVE).u32(fid));
    }

    public void mkdir(int dfid, String name, int mode) {
        mkdir(dfid, name, mode, -1);
    }

    public void mkdir(int dfid, String name, int mode, int gid) {
        call(request(TMKDIR).u32(dfid).str(name).u32(mode).u32(gid));
    }

    /** Tmknod; {@code mode} holds the file type (S_IFIFO, S_IFBLK, ...). */
    public void mknod(int dfid, String name, int mode, int major, int minor, int gid) {
        call(request(TMKNOD).u32(dfid).str(name).u32(mode).u32(major).u32(minor).u32(gid));
    }

    /** Sends a request built with {@link #request}; the reply body past its header, or the Rlerror as a P9Error. */
    public ByteBuffer send(Request r) {
        return call(r).body();
    }

    public void symlink(int dfid, String name, String target) {
        call(request(TSYMLINK).u32(dfid).str(name).str(target).u32(-1));
    }

    public void link(int dfid, int fid, String name) {
        call(request(TLINK).u32(dfid).u32(fid).str(name));
    }

    public String readlink(int fid) {
        return str(call(request(TREADLINK).u32(fid)).body());
    }

    /** The old fid-only Trename: moves {@code fid}'s file into {@code dfid} as {@code name}. */
    public void rename(int fid, int dfid, String name) {
        call(request(TRENAME).u32(fid).u32(dfid).str(name));
    }

    public void renameat(int olddfid, String oldname, int newdfid, String newname) {
        call(request(TRENAMEAT).u32(olddfid).str(oldname).u32(newdfid).str(newname));
    }

    public void unlinkat(int dfid, String name, int flags) {
        call(request(TUNLINKAT).u32(dfid).str(name).u32(flags));
    }

    public void fsync(int fid) {
        call(request(TFSYNC).u32(fid).u32(0));
    }

    /** Tlock; returns the status byte (0 success, 1 blocked). */
    public int lock(int fid, int type, long start, long length) {
        return call(request(TLOCK).u32(fid).u8(type).u32(0).u64(start).u64(length).u32(1).str("test")).body().get();
    }

    /** Txattrwalk; returns the value's size (read it with {@link #read} on newfid). */
    public long xattrwalk(int fid, int newfid, String name) {
        return call(request(TXATTRWALK).u32(fid).u32(newfid).str(name)).body().getLong();
    }

    public void xattrcreate(int fid, String name, long size, int flags) {
        call(request(TXATTRCREATE).u32(fid).str(name).u64(size).u32(flags));
    }

    /** Tstatfs; returns {blocks, bfree}. */
    public long[] statfs(int fid) {
        ByteBuffer b = call(request(TSTATFS).u32(fid)).body();
        b.getInt();
        b.getInt();
        return new long[] {b.getLong(), b.getLong()};
    }

    @Override
    public void close() {
        try {
            transport.close();
        } catch (Exception e) {
            // nothing to do about a failing close
        }
    }
}
