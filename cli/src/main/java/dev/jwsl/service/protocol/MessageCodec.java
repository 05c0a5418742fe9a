package dev.jwsl.service.protocol;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

import static dev.jwsl.service.protocol.ProtocolConstants.*;

/**
 * Encodes and decodes single frames to and from {@link ByteBuffer}s; transport-neutral, so the
 * blocking client and the Netty service share it.
 */
public final class MessageCodec {
    private MessageCodec() {}

    /** Header size: a caller reads this many bytes, then {@link #payloadLength}. */
    public static final int HEADER = HEADER_SIZE;

    /** The whole frame for {@code m}. */
    public static ByteBuffer encode(JwslMessage m) {
        ByteBuffer p = ByteBuffer.allocate(MAX_PAYLOAD).order(ByteOrder.LITTLE_ENDIAN);
        int type = switch (m) {
            case JwslMessage.EnsureVm e -> ENSURE_VM;
            case JwslMessage.VmReady r -> {
                putString(p, r.vsockSocket());
                p.putInt(r.relayPort());
                yield VM_READY;
            }
            case JwslMessage.Status s -> STATUS;
            case JwslMessage.StatusReply s -> {
                putString(p, s.vmState());
                p.putInt(s.sessions()).putLong(s.uptimeMs()).putLong(s.idleTimeoutMs());
                putString(p, s.kernel());
                yield STATUS_REPLY;
            }
            case JwslMessage.Shutdown s -> {
                p.put((byte) (s.force() ? 1 : 0));
                yield SHUTDOWN;
            }
            case JwslMessage.Done d -> DONE;
            case JwslMessage.Error e -> {
                putString(p, e.message());
                yield ERROR;
            }
        };
        p.flip();
        ByteBuffer f = ByteBuffer.allocate(HEADER_SIZE + p.remaining()).order(ByteOrder.LITTLE_ENDIAN);
        f.putShort((short) type).putShort((short) 0).putInt(p.remaining()).putLong(m.transactionId()).put(p).flip();
        return f;
    }

    /** Payload length from a complete header; throws if it is out of bounds. */
    public static int payloadLength(ByteBuffer header) {
        int len = header.order(ByteOrder.LITTLE_ENDIAN).getInt(4);
        if (len < 0 || len > MAX_PAYLOAD) {
            throw new ProtocolException("frame payload of " + Integer.toUnsignedString(len) + " bytes");
        }
        return len;
    }

    /** Decodes a frame from its header and its payload (exactly {@link #payloadLength} bytes). */
    public static JwslMessage decode(ByteBuffer header, ByteBuffer payload) {
        header.order(ByteOrder.LITTLE_ENDIAN);
        payload.order(ByteOrder.LITTLE_ENDIAN);
        int type = Short.toUnsignedInt(header.getShort(0));
        long tx = header.getLong(8);
        try {
            JwslMessage m = switch (type) {
                case ENSURE_VM -> new JwslMessage.EnsureVm(tx);
                case VM_READY -> new JwslMessage.VmReady(tx, getString(payload), payload.getInt());
                case STATUS -> new JwslMessage.Status(tx);
                case STATUS_REPLY -> new JwslMessage.StatusReply(tx, getString(payload), payload.getInt(),
                        payload.getLong(), payload.getLong(), getString(payload));
                case SHUTDOWN -> new JwslMessage.Shutdown(tx, payload.get() != 0);
                case DONE -> new JwslMessage.Done(tx);
                case ERROR -> new JwslMessage.Error(tx, getString(payload));
                default -> throw new ProtocolException("unknown message type " + type);
            };
            if (payload.hasRemaining()) {
                throw new ProtocolException("trailing bytes in message type " + type);
            }
            return m;
        } catch (BufferUnderflowException e) {
            throw new ProtocolException("truncated message type " + type);
        }
    }

    private static void putString(ByteBuffer b, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        b.putInt(bytes.length).put(bytes);
    }

    private static String getString(ByteBuffer b) {
        int n = b.getInt();
        if (n < 0 || n > b.remaining()) {
            throw new ProtocolException("string of " + Integer.toUnsignedString(n) + " bytes");
        }
        byte[] bytes = new byte[n];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
