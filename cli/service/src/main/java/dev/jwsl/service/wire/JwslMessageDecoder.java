package dev.jwsl.service.wire;

import dev.jwsl.protocol.MessageCodec;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;

import java.nio.ByteBuffer;
import java.util.List;

/** Netty inbound: bytes to {@link JwslMessage}s. Stateful (one per channel). */
public final class JwslMessageDecoder extends ByteToMessageDecoder {
    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
        if (in.readableBytes() < MessageCodec.HEADER) {
            return;
        }
        ByteBuffer header = ByteBuffer.allocate(MessageCodec.HEADER);
        in.getBytes(in.readerIndex(), header);
        header.flip();
        int length = MessageCodec.payloadLength(header);
        if (in.readableBytes() < MessageCodec.HEADER + length) {
            return;
        }
        in.skipBytes(MessageCodec.HEADER);
        ByteBuffer payload = ByteBuffer.allocate(length);
        in.readBytes(payload);
        payload.flip();
        out.add(MessageCodec.decode(header, payload));
    }
}
