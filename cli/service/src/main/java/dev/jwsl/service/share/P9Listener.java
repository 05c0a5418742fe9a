package dev.jwsl.service.share;

import dev.jwsl.hypervisor.p9.P9Server;
import dev.jwsl.hypervisor.p9.P9Session;
import dev.jwsl.hypervisor.memory.Scatter;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;

import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Serves a {@link P9Server} on a stream socket: {@code unix:PATH} or {@code tcp:HOST:PORT}. Each
 * connection is a {@link P9Session}; frames are 9P messages (size[4] little-endian, counting
 * itself). Requests run on the server's workers and replies go out as they finish.
 */
public final class P9Listener {
    private static final System.Logger LOG = System.getLogger(P9Listener.class.getName());
    /** Requests one connection may have in flight before the listener stops reading from it. */
    static final int MAX_IN_FLIGHT = 64;
    /** Connections served at once; more are closed on arrival (each may hold thousands of host descriptors). */
    static final int MAX_CONNECTIONS = 64;

    private P9Listener() {}

    /** Where to listen, parsed from {@code unix:PATH} or {@code tcp:HOST:PORT}. */
    public sealed interface Address permits UnixAddress, TcpAddress {
        static Address parse(String spec) {
            if (spec.startsWith("unix:") && spec.length() > 5) {
                return new UnixAddress(Path.of(spec.substring(5)));
            }
            if (spec.startsWith("tcp:")) {
                String hp = spec.substring(4);
                int colon = hp.lastIndexOf(':');
                if (colon > 0) {
                    String host = hp.substring(0, colon).replace("[", "").replace("]", "");
                    try {
                        int port = Integer.parseInt(hp.substring(colon + 1));
                        if (port >= 0 && port <= 65535) {
                            return new TcpAddress(host, port);
                        }
                    } catch (NumberFormatException ignored) {
                        // reported below
                    }
                }
            }
            throw new IllegalArgumentException("listen address must be unix:PATH or tcp:HOST:PORT, got " + spec);
        }
    }

    public record UnixAddress(Path path) implements Address {}

    public record TcpAddress(String host, int port) implements Address {}

    /**
     * Listens on {@code address}; the returned channel's close stops listening (open connections
     * stay until they end). A Unix socket is made 0600: only this user may connect.
     */
    public static Channel listen(EventLoopGroup group, P9Server server, Address address)
            throws InterruptedException, java.io.IOException {
        java.util.concurrent.atomic.AtomicInteger connections = new java.util.concurrent.atomic.AtomicInteger();
        ServerBootstrap b = new ServerBootstrap().group(group)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (connections.incrementAndGet() > MAX_CONNECTIONS) {
                            LOG.log(System.Logger.Level.WARNING, "9P: more than {0} connections, closing one", MAX_CONNECTIONS);
                            connections.decrementAndGet();
                            ch.close();
                            return;
                        }
                        ch.closeFuture().addListener(f -> connections.decrementAndGet());
                        ch.pipeline().addLast(
                                new LengthFieldBasedFrameDecoder(ByteOrder.LITTLE_ENDIAN, P9Server.MAX_MSIZE, 0, 4, -4, 0, true),
                                new Connection(server.open()));
                    }
                });
        return switch (address) {
            case UnixAddress u -> {
                Files.deleteIfExists(u.path());
                Channel ch = b.channel(EpollServerDomainSocketChannel.class)
                        .bind(new io.netty.channel.unix.DomainSocketAddress(u.path().toString())).sync().channel();
                Files.setPosixFilePermissions(u.path(), PosixFilePermissions.fromString("rw-------"));
                yield ch;
            }
            case TcpAddress t -> b.channel(EpollServerSocketChannel.class)
                    .childOption(ChannelOption.TCP_NODELAY, true)
                    .bind(new InetSocketAddress(t.host(), t.port())).sync().channel();
        };
    }

    /** One client connection: frames in, replies out, a session for its lifetime. */
    private static final class Connection extends ChannelInboundHandlerAdapter {
        private final P9Session session;
        private int inFlight;

        Connection(P9Session session) {
            this.session = session;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf frame = (ByteBuf) msg;
            if (!frame.hasMemoryAddress()) {
                ByteBuf direct = ctx.alloc().directBuffer(frame.readableBytes());
                direct.writeBytes(frame);
                frame.release();
                frame = direct;
            }
            ByteBuf request = frame;
            ByteBuf reply = ctx.alloc().directBuffer(replyCapacity(request));
            // SAFETY: both buffers are direct, held (refcounted) until the callback below runs,
            // and the segments cover exactly their readable/writable bytes.
            MemorySegment req = MemorySegment.ofAddress(request.memoryAddress() + request.readerIndex())
                    .reinterpret(request.readableBytes());
            MemorySegment out = MemorySegment.ofAddress(reply.memoryAddress()).reinterpret(reply.capacity());
            if (++inFlight >= MAX_IN_FLIGHT) {
                ctx.channel().config().setAutoRead(false);
            }
            session.submit(Scatter.of(req), Scatter.of(out), n -> onEventLoop(ctx, () -> {
                request.release();
                if (--inFlight < MAX_IN_FLIGHT / 2) {
                    ctx.channel().config().setAutoRead(true);
                }
                if (n < 0) {
                    reply.release();
                    ctx.close();
                    return;
                }
                reply.writerIndex(n);
                ctx.writeAndFlush(reply);
            }));
        }

        /**
         * Room for the reply: a data reply can fill msize; every other reply of 9P2000.L fits in
         * 8 KiB (the longest, Rreadlink, is a path of at most 4 KiB).
         */
        private int replyCapacity(ByteBuf request) {
            int type = request.readableBytes() > 4 ? request.getUnsignedByte(request.readerIndex() + 4) : 0;
            boolean data = type == 116 || type == 40 || type == 100; // Tread, Treaddir, Tversion
            return data ? session.msize() : Math.min(session.msize(), 8192);
        }

        private static void onEventLoop(ChannelHandlerContext ctx, Runnable r) {
            if (ctx.executor().inEventLoop()) {
                r.run();
            } else {
                ctx.executor().execute(r);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            session.close();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // a frame over msize or a reset connection: this client is done
            LOG.log(System.Logger.Level.DEBUG, "9P connection: {0}", cause.toString());
            ctx.close();
        }
    }
}
