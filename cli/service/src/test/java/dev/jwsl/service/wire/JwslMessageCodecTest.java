package dev.jwsl.service.wire;

import dev.jwsl.protocol.JwslMessage;
import dev.jwsl.protocol.MessageCodec;
import dev.jwsl.protocol.ProtocolConstants;
import dev.jwsl.protocol.ProtocolException;


import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.DecoderException;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class JwslMessageCodecTest {
    private static final List<JwslMessage> ALL = List.of(
            new JwslMessage.EnsureVm(1, "Debian", false),
            new JwslMessage.VmReady(2, "/run/user/1000/jwsl/vsock.sock", 50000, "Debian", "alice"),
            new JwslMessage.Status(3),
            new JwslMessage.StatusReply(4, "running", 2, 12345, 60000, "/k/vmlinux"),
            new JwslMessage.Shutdown(5, true),
            new JwslMessage.Done(6),
            new JwslMessage.Error(7, "cannot start the VM: ünïcode"),
            new JwslMessage.ListDistros(8),
            new JwslMessage.DistroList(9, List.of(new JwslMessage.DistroInfo("Debian", "Running", 2, true),
                    new JwslMessage.DistroInfo("tiny", "Stopped", 2, false))),
            new JwslMessage.DistroList(10, List.of()),
            new JwslMessage.Import(11, "tiny", "/home/me/tiny", "/tmp/rootfs.tar.gz", 1L << 40),
            new JwslMessage.ImportInPlace(12, "tiny", "/home/me/ext4.img"),
            new JwslMessage.FollowImport(18, "Debian"),
            new JwslMessage.Export(13, "tiny", "/tmp/out.tar.xz", "tar.xz"),
            new JwslMessage.Unregister(14, "tiny"),
            new JwslMessage.SetDefault(15, "tiny"),
            new JwslMessage.Terminate(16, "tiny"),
            new JwslMessage.Manage(17, "tiny", 8L << 30, "alice"),
            new JwslMessage.Progress(18, "unpacking", 100, 1000));

    @Test
    void everyMessageSurvivesEncoderAndDecoder() {
        EmbeddedChannel out = new EmbeddedChannel(JwslMessageEncoder.INSTANCE);
        EmbeddedChannel in = new EmbeddedChannel(new JwslMessageDecoder());
        for (JwslMessage m : ALL) {
            out.writeOutbound(m);
            ByteBuf frame = out.readOutbound();
            // split delivery: the decoder must wait for the whole frame
            in.writeInbound(frame.readRetainedSlice(3));
            assertNull(in.readInbound());
            in.writeInbound(frame);
            assertEquals(m, in.readInbound());
        }
    }

    private static ByteBuf frame(int type, int length, byte[] payload) {
        ByteBuffer b = ByteBuffer.allocate(16 + payload.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort((short) type).putShort((short) 0).putInt(length).putLong(9).put(payload);
        return Unpooled.wrappedBuffer(b.array());
    }

    @Test
    void garbageIsRejected() {
        List<ByteBuf> garbage = List.of(
                frame(99, 0, new byte[0]),                        // unknown type
                frame(ProtocolConstants.ERROR, 2, new byte[2]),   // truncated string length
                frame(ProtocolConstants.ERROR, 8, new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, 0x7f, 0, 0, 0, 0}),
                frame(ProtocolConstants.DONE, 1, new byte[1]),     // trailing bytes
                frame(ProtocolConstants.STATUS, -1, new byte[0]),  // length beyond the limit
                frame(ProtocolConstants.STATUS, ProtocolConstants.MAX_PAYLOAD + 1, new byte[0]));
        for (ByteBuf g : garbage) {
            EmbeddedChannel in = new EmbeddedChannel(new JwslMessageDecoder());
            DecoderException e = assertThrows(DecoderException.class, () -> in.writeInbound(g));
            assertEquals(ProtocolException.class, e.getCause().getClass());
        }
    }

    @Test
    void responsesCarryTheRequestTransactionId() {
        ByteBuffer f = MessageCodec.encode(new JwslMessage.Status(0x1234_5678_9abcL));
        ByteBuffer header = f.slice(0, MessageCodec.HEADER);
        ByteBuffer payload = f.slice(MessageCodec.HEADER, MessageCodec.payloadLength(header));
        assertEquals(0x1234_5678_9abcL, MessageCodec.decode(header, payload).transactionId());
    }
}
