package dev.jwsl.service.wire;

import dev.jwsl.protocol.JwslMessage;
import dev.jwsl.protocol.MessageCodec;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.MessageToByteEncoder;

/** Netty outbound: {@link JwslMessage}s to bytes. Stateless. */
@ChannelHandler.Sharable
public final class JwslMessageEncoder extends MessageToByteEncoder<JwslMessage> {
    public static final JwslMessageEncoder INSTANCE = new JwslMessageEncoder();

    private JwslMessageEncoder() {}

    @Override
    protected void encode(ChannelHandlerContext ctx, JwslMessage msg, ByteBuf out) {
        out.writeBytes(MessageCodec.encode(msg));
    }
}
