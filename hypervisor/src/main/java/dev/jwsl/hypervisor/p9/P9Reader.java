package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Decodes the fields of one request (little-endian, strings as u16 length + bytes). A field past
 * the end of the message, a string holding a NUL, or a text field that is not valid UTF-8 fails
 * the request with EINVAL: the guest is untrusted and no field is believed before it is checked.
 */
final class P9Reader {
    private final ByteBuffer b;

    P9Reader(byte[] message) {
        this.b = ByteBuffer.wrap(message).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Positions after size[4] type[1] tag[2]. */
    P9Reader skipHeader() {
        b.position(P9Constants.HEADER);
        return this;
    }

    private void need(int n) {
        if (b.remaining() < n) {
            throw new P9Error(Errno.EINVAL, "short message");
        }
    }

    int u8() {
        need(1);
        return b.get() & 0xff;
    }

    int u16() {
        need(2);
        return b.getShort() & 0xffff;
    }

    int u32() {
        need(4);
        return b.getInt();
    }

    long u64() {
        need(8);
        return b.getLong();
    }

    /** True if no field is left (optional trailing fields of older clients). */
    boolean atEnd() {
        return !b.hasRemaining();
    }

    /** A text field (version, user and share names): UTF-8. */
    String str() {
        byte[] bytes = name();
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new P9Error(Errno.EINVAL, "string is not UTF-8");
        }
    }

    /**
     * A file name, symlink target or xattr name: bytes, as Linux keeps them, in whatever encoding
     * (or none) the guest used; only NUL, which would end the C string early, is refused.
     */
    byte[] name() {
        int n = u16();
        need(n);
        byte[] bytes = new byte[n];
        b.get(bytes);
        for (byte c : bytes) {
            if (c == 0) {
                throw new P9Error(Errno.EINVAL, "NUL in a string");
            }
        }
        return bytes;
    }
}
