package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** Encodes one reply: header first, fields after, size patched in by {@link #finish}. */
final class P9Writer {
    private final int capacity;
    private ByteBuffer b;

    /** A reply of at most {@code capacity} bytes (the client's reply buffer). */
    P9Writer(int capacity, int type, int tag) {
        this.capacity = Math.max(capacity, P9Constants.HEADER);
        // most replies are tens of bytes: grow on demand rather than zero a whole msize per reply
        this.b = ByteBuffer.allocate(Math.min(this.capacity, 256)).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0).put((byte) type).putShort((short) tag);
    }

    private ByteBuffer room(int n) {
        if (b.remaining() < n) {
            if (b.position() + n > capacity) {
                throw new P9Error(Errno.ENOSPC, "reply larger than the client's buffer");
            }
            ByteBuffer bigger = ByteBuffer.allocate((int) Math.min(capacity, Math.max(2L * b.capacity(), b.position() + n)))
                    .order(ByteOrder.LITTLE_ENDIAN);
            b.flip();
            bigger.put(b);
            b = bigger;
        }
        return b;
    }

    P9Writer u8(int v) {
        room(1).put((byte) v);
        return this;
    }

    P9Writer u16(int v) {
        room(2).putShort((short) v);
        return this;
    }

    P9Writer u32(int v) {
        room(4).putInt(v);
        return this;
    }

    P9Writer u64(long v) {
        room(8).putLong(v);
        return this;
    }

    P9Writer str(String s) {
        return str(s.getBytes(StandardCharsets.UTF_8));
    }

    /** A string field holding bytes as the host gave them (a symlink target). */
    P9Writer str(byte[] bytes) {
        if (bytes.length > 0xffff) {
            throw new P9Error(Errno.ENAMETOOLONG);
        }
        room(2 + bytes.length).putShort((short) bytes.length).put(bytes);
        return this;
    }

    P9Writer bytes(byte[] v, int n) {
        room(n).put(v, 0, n);
        return this;
    }

    P9Writer qid(Qid q) {
        room(P9Constants.QID_SIZE).put(q.type()).putInt(q.version()).putLong(q.path());
        return this;
    }

    /** Bytes still free. */
    int remaining() {
        return capacity - b.position();
    }

    int position() {
        return b.position();
    }

    /** Patches size[4] for a reply of {@code total} bytes; returns the encoded header and fields. */
    byte[] finish(int total) {
        b.putInt(0, total);
        byte[] out = new byte[b.position()];
        b.get(0, out);
        return out;
    }
}
