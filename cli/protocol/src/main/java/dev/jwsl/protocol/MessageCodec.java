package dev.jwsl.protocol;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static dev.jwsl.protocol.ProtocolConstants.*;

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
            case JwslMessage.EnsureVm e -> {
                putString(p, e.distro());
                p.put((byte) (e.system() ? 1 : 0));
                yield ENSURE_VM;
            }
            case JwslMessage.VmReady r -> {
                putString(p, r.vsockSocket());
                p.putInt(r.relayPort());
                putString(p, r.distro());
                putString(p, r.defaultUser());
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
            case JwslMessage.ListDistros l -> LIST_DISTROS;
            case JwslMessage.DistroList l -> {
                p.putInt(l.distros().size());
                for (JwslMessage.DistroInfo d : l.distros()) {
                    putString(p, d.name());
                    putString(p, d.state());
                    p.putInt(d.version());
                    p.put((byte) (d.isDefault() ? 1 : 0));
                }
                yield DISTRO_LIST;
            }
            case JwslMessage.Import i -> {
                putString(p, i.name());
                putString(p, i.installDir());
                putString(p, i.archive());
                p.putLong(i.diskBytes());
                yield IMPORT;
            }
            case JwslMessage.FollowImport f -> {
                putString(p, f.name());
                yield FOLLOW_IMPORT;
            }
            case JwslMessage.ImportInPlace i -> {
                putString(p, i.name());
                putString(p, i.image());
                yield IMPORT_IN_PLACE;
            }
            case JwslMessage.Export x -> {
                putString(p, x.name());
                putString(p, x.output());
                putString(p, x.format());
                yield EXPORT;
            }
            case JwslMessage.Unregister u -> {
                putString(p, u.name());
                yield UNREGISTER;
            }
            case JwslMessage.SetDefault d -> {
                putString(p, d.name());
                yield SET_DEFAULT;
            }
            case JwslMessage.Terminate t -> {
                putString(p, t.name());
                yield TERMINATE;
            }
            case JwslMessage.Manage m2 -> {
                putString(p, m2.name());
                p.putLong(m2.resizeBytes());
                putString(p, m2.defaultUser());
                yield MANAGE;
            }
            case JwslMessage.Progress g -> {
                putString(p, g.phase());
                p.putLong(g.done()).putLong(g.total());
                yield PROGRESS;
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
                case ENSURE_VM -> new JwslMessage.EnsureVm(tx, getString(payload), payload.get() != 0);
                case VM_READY -> new JwslMessage.VmReady(tx, getString(payload), payload.getInt(), getString(payload),
                        getString(payload));
                case STATUS -> new JwslMessage.Status(tx);
                case STATUS_REPLY -> new JwslMessage.StatusReply(tx, getString(payload), payload.getInt(),
                        payload.getLong(), payload.getLong(), getString(payload));
                case SHUTDOWN -> new JwslMessage.Shutdown(tx, payload.get() != 0);
                case LIST_DISTROS -> new JwslMessage.ListDistros(tx);
                case DISTRO_LIST -> {
                    int n = payload.getInt();
                    if (n < 0 || n > payload.remaining() / 13) {
                        throw new ProtocolException("distro list of " + Integer.toUnsignedString(n) + " entries");
                    }
                    List<JwslMessage.DistroInfo> list = new ArrayList<>();
                    for (int i = 0; i < n; i++) {
                        list.add(new JwslMessage.DistroInfo(getString(payload), getString(payload), payload.getInt(),
                                payload.get() != 0));
                    }
                    yield new JwslMessage.DistroList(tx, List.copyOf(list));
                }
                case IMPORT -> new JwslMessage.Import(tx, getString(payload), getString(payload), getString(payload),
                        payload.getLong());
                case IMPORT_IN_PLACE -> new JwslMessage.ImportInPlace(tx, getString(payload), getString(payload));
                case FOLLOW_IMPORT -> new JwslMessage.FollowImport(tx, getString(payload));
                case EXPORT -> new JwslMessage.Export(tx, getString(payload), getString(payload), getString(payload));
                case UNREGISTER -> new JwslMessage.Unregister(tx, getString(payload));
                case SET_DEFAULT -> new JwslMessage.SetDefault(tx, getString(payload));
                case TERMINATE -> new JwslMessage.Terminate(tx, getString(payload));
                case MANAGE -> new JwslMessage.Manage(tx, getString(payload), payload.getLong(), getString(payload));
                case PROGRESS -> new JwslMessage.Progress(tx, getString(payload), payload.getLong(), payload.getLong());
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
