package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.nio.BufferOverflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** Encodes one reply: header first, fields after, size patched in by {@link #finish}. */
final class P9Writer {
    private final ByteBuffer b;

    /** A reply of at most {@code capacity} bytes (the client's reply buffer). */
    P9Writer(int capacity, int type, int tag) {
        this.b = ByteBuffer.allocate(Math.max(capacity, P9Constants.HEADER)).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0).put((byte) type).putShort((short) tag);
    }

    private P9Writer checked(Runnable put) {
        try {
            put.run();
        } catch (BufferOverflowException e) {
            throw new P9Error(Errno.ENOSPC, "reply larger than the client's buffer");
        }
        return this;
    }

    P9Writer u8(int v) {
        return checked(() -> b.put((byte) v));
    }

    P9Writer u16(int v) {
        return checked(() -> b.putShort((short) v));
    }

    P9Writer u32(int v) {
        return checked(() -> b.putInt(v));
    }

    P9Writer u64(long v) {
        return checked(() -> b.putLong(v));
    }

    P9Writer str(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > 0xffff) {
            throw new P9Error(Errno.ENAMETOOLONG);
        }
        return checked(() -> b.putShort((short) bytes.length).put(bytes));
    }

    P9Writer bytes(byte[] v, int n) {
        return checked(() -> b.put(v, 0, n));
    }

    P9Writer qid(Qid q) {
        return checked(() -> b.put(q.type()).putInt(q.version()).putLong(q.path()));
    }

    /** Bytes still free. */
    int remaining() {
        return b.remaining();
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
