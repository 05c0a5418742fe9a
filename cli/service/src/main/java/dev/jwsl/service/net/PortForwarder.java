package dev.jwsl.service.net;

import dev.jwsl.protocol.ports.PortsConstants;

import dev.jwsl.protocol.relay.HybridVsock;
import dev.jwsl.protocol.relay.UnixStream;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.util.ReferenceCountUtil;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

/**
 * Localhost forwarding, WSL's {@code localhostForwarding}: the guest init ({@code jwsl-ports},
 * guest-init/ports/portd.c) reports each TCP port some guest process listens on; the forwarder listens
 * on the same port at the host's 127.0.0.1 and ::1 (or on all interfaces), and relays each
 * connection over its own vsock stream to the guest, which connects it to the listener. When the
 * guest stops listening, the host port is released. A port the host already uses is logged and
 * skipped.
 *
 * <p>Limits against a hostile guest: at most {@link #MAX_PORTS} forwarded ports and
 * {@link #MAX_CONNECTIONS} relayed connections (each holds two host descriptors).
 */
public final class PortForwarder implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(PortForwarder.class.getName());
    /** Ports forwarded at once; more are logged and skipped. */
    public static final int MAX_PORTS = 1024;
    /** Connections relayed at once; more are closed on arrival. */
    public static final int MAX_CONNECTIONS = 2048;
    private static final long RETRY_MS = 1000;

    private final Path vsockSocket;
    private final boolean allInterfaces;
    private final EventLoopGroup group = new EpollEventLoopGroup(1,
            Thread.ofPlatform().name("port-forward").daemon().factory());
    /** Guest port → the host channels listening for it (empty: skipped, the host uses it). */
    private final Map<Integer, List<Channel>> forwarded = new HashMap<>();
    private final AtomicInteger connections = new AtomicInteger();
    private volatile boolean closed;

    public PortForwarder(Path vsockSocket, boolean allInterfaces) {
        this.vsockSocket = vsockSocket;
        this.allInterfaces = allInterfaces;
    }

    /**
     * Follows the guest's listeners while {@code alive} holds (the VM of one boot runs): watches,
     * reconnects after a second if the watch stream ends, and releases every host port when it
     * returns.
     */
    public void follow(BooleanSupplier alive) {
        try {
            while (alive.getAsBoolean() && !closed) {
                try (UnixStream ch = HybridVsock.connect(vsockSocket, PortsConstants.PORT)) {
                    ch.write(request(PortsConstants.WATCH, 0));
                    ByteBuffer event = ByteBuffer.allocate(PortsConstants.EVENT_SIZE).order(ByteOrder.LITTLE_ENDIAN);
                    for (;;) {
                        event.clear();
                        while (event.hasRemaining()) {
                            if (ch.read(event) < 0) {
                                throw new IOException("the guest closed the port watch");
                            }
                        }
                        int op = Short.toUnsignedInt(event.getShort(0));
                        int port = Short.toUnsignedInt(event.getShort(2));
                        if (op == PortsConstants.LISTEN) {
                            open(port);
                        } else if (op == PortsConstants.CLOSED) {
                            release(port);
                        }
                    }
                } catch (IOException e) {
                    releaseAll();
                    if (alive.getAsBoolean() && !closed) {
                        LOG.log(System.Logger.Level.DEBUG, "port watch: {0}; again in {1} ms", e.getMessage(), String.valueOf(RETRY_MS));
                        Thread.sleep(RETRY_MS);
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            releaseAll();
        }
    }

    /** The guest ports forwarded now (for status and tests). */
    public synchronized List<Integer> ports() {
        List<Integer> out = new ArrayList<>();
        forwarded.forEach((port, channels) -> {
            if (!channels.isEmpty()) {
                out.add(port);
            }
        });
        return out;
    }

    static ByteBuffer request(int kind, int port) {
        ByteBuffer b = ByteBuffer.allocate(PortsConstants.REQUEST_SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort((short) kind).putShort((short) port).flip();
        return b;
    }

    private synchronized void open(int port) {
        if (port == 0 || forwarded.containsKey(port)) {
            return;
        }
        if (forwarded.values().stream().filter(c -> !c.isEmpty()).count() >= MAX_PORTS) {
            LOG.log(System.Logger.Level.WARNING, "guest port {0}: {1} ports are forwarded already, not forwarded", String.valueOf(port), MAX_PORTS);
            forwarded.put(port, List.of());
            return;
        }
        List<Channel> bound = new ArrayList<>();
        List<String> addresses = allInterfaces ? List.of("::") : List.of("127.0.0.1", "::1");
        for (String address : addresses) {
            try {
                bound.add(listener(port).bind(new InetSocketAddress(address, port)).sync().channel());
            } catch (Exception e) {
                // the host uses the port (or has no such address family): skip that address
                LOG.log(System.Logger.Level.WARNING, "guest port {0}: cannot listen on the host''s {1} ({2}): not forwarded there",
                        String.valueOf(port), address, e.getMessage());
            }
        }
        if (bound.isEmpty() && allInterfaces) {
            try {
                bound.add(listener(port).bind(new InetSocketAddress("0.0.0.0", port)).sync().channel());
            } catch (Exception e) {
                LOG.log(System.Logger.Level.WARNING, "guest port {0}: cannot listen on the host''s 0.0.0.0 ({1}): not forwarded",
                        String.valueOf(port), e.getMessage());
            }
        }
        forwarded.put(port, bound);
        if (!bound.isEmpty()) {
            LOG.log(System.Logger.Level.INFO, "forwarding host port {0} to the guest", String.valueOf(port));
        }
    }

    private synchronized void release(int port) {
        List<Channel> channels = forwarded.remove(port);
        if (channels != null) {
            for (Channel c : channels) {
                c.close().syncUninterruptibly(); // released before the next LISTEN may bind it again
            }
            if (!channels.isEmpty()) {
                LOG.log(System.Logger.Level.INFO, "released host port {0}", String.valueOf(port));
            }
        }
    }

    private synchronized void releaseAll() {
        for (Integer port : List.copyOf(forwarded.keySet())) {
            release(port);
        }
    }

    private ServerBootstrap listener(int port) {
        return new ServerBootstrap().group(group).channel(EpollServerSocketChannel.class)
                .option(ChannelOption.SO_REUSEADDR, true)
                .childOption(ChannelOption.AUTO_READ, false)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel client) {
                        accept(client, port);
                    }
                });
    }

    /** A host client on a forwarded port: a vsock stream to the guest, then bytes both ways. */
    private void accept(Channel client, int port) {
        if (connections.incrementAndGet() > MAX_CONNECTIONS) {
            connections.decrementAndGet();
            LOG.log(System.Logger.Level.WARNING, "port {0}: {1} forwarded connections open, refused one", String.valueOf(port), MAX_CONNECTIONS);
            client.close();
            return;
        }
        client.closeFuture().addListener(f -> connections.decrementAndGet());
        // Netty reads a closing client even without autoRead: what arrives before the guest end is
        // up waits in the relay, with the end of input.
        Relay clientSide = new Relay(null);
        client.pipeline().addLast("relay", clientSide);
        new Bootstrap().group(client.eventLoop()).channel(EpollDomainSocketChannel.class)
                .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .handler(new GuestConnect(client, clientSide, port))
                .connect(new DomainSocketAddress(vsockSocket.toString()))
                .addListener((ChannelFutureListener) f -> {
                    if (!f.isSuccess()) {
                        client.close();
                    } else {
                        client.closeFuture().addListener(x -> closeAfterFlush(f.channel()));
                    }
                });
    }

    /**
     * The guest end's handshake: the hybrid vsock's {@code CONNECT port} / {@code OK}, the
     * CONNECT request, the guest's status byte; then both channels relay.
     */
    private static final class GuestConnect extends ChannelInboundHandlerAdapter {
        private final Channel client;
        private final Relay clientSide;
        private final int port;
        private final ByteBuf pending = Unpooled.buffer(64);
        private boolean vsockConnected;

        GuestConnect(Channel client, Relay clientSide, int port) {
            this.client = client;
            this.clientSide = clientSide;
            this.port = port;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            ctx.writeAndFlush(Unpooled.copiedBuffer(HybridVsock.connectLine(PortsConstants.PORT), StandardCharsets.US_ASCII));
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf in = (ByteBuf) msg;
            try {
                pending.writeBytes(in);
            } finally {
                ReferenceCountUtil.release(in);
            }
            if (!vsockConnected) {
                int nl = pending.indexOf(pending.readerIndex(), pending.writerIndex(), (byte) '\n');
                if (nl < 0) {
                    if (pending.readableBytes() > 64) {
                        fail(ctx, "malformed vsock handshake");
                    }
                    return;
                }
                String line = pending.readCharSequence(nl - pending.readerIndex(), StandardCharsets.US_ASCII).toString();
                pending.skipBytes(1);
                if (!line.startsWith("OK ")) {
                    fail(ctx, "the VM refused the connection: " + line);
                    return;
                }
                vsockConnected = true;
                ctx.writeAndFlush(Unpooled.wrappedBuffer(request(PortsConstants.CONNECT, port)));
            }
            if (!pending.isReadable()) {
                return;
            }
            int status = pending.readUnsignedByte();
            if (status != 0) {
                fail(ctx, null);
                return;
            }
            ByteBuf early = pending.readRetainedSlice(pending.readableBytes());
            pending.release();
            ctx.pipeline().replace(this, "relay", new Relay(client));
            ctx.channel().config().setAutoRead(false);
            if (early.isReadable()) {
                client.writeAndFlush(early);
            } else {
                early.release();
            }
            clientSide.connected(client, ctx.channel());
            ctx.channel().read();
        }

        private void fail(ChannelHandlerContext ctx, String why) {
            if (why != null) {
                LOG.log(System.Logger.Level.DEBUG, "forwarded port {0}: {1}", String.valueOf(port), why);
            }
            if (pending.refCnt() > 0) {
                pending.release();
            }
            ctx.close();
            client.close();
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            client.close();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
            client.close();
        }
    }

    /**
     * One direction of a relayed connection: what this channel reads goes to {@code peer}; the
     * next read waits until the peer took it (backpressure both ways). End of input here becomes
     * a half-close of the peer's output; the pair closes when both directions ended. Until the
     * peer is {@linkplain #connected known}, reads and the end of input wait here (bounded).
     */
    private static final class Relay extends ChannelInboundHandlerAdapter {
        /** Most bytes held for a peer that is not connected yet. */
        private static final int MAX_PENDING = 4 << 20;
        private Channel peer;
        private final java.util.ArrayDeque<ByteBuf> pending = new java.util.ArrayDeque<>();
        private long pendingBytes;
        private boolean inputEnded;

        Relay(Channel peer) {
            this.peer = peer;
        }

        /** The peer is up (on this channel's event loop): what waited goes out, then reading resumes. */
        void connected(Channel self, Channel peer) {
            this.peer = peer;
            for (ByteBuf b; (b = pending.poll()) != null; ) {
                peer.write(b);
            }
            peer.flush();
            if (inputEnded) {
                endOfInput(self);
            } else {
                self.read();
            }
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (peer == null) {
                ByteBuf b = (ByteBuf) msg;
                pendingBytes += b.readableBytes();
                pending.add(b);
                if (pendingBytes > MAX_PENDING) {
                    ctx.close();
                }
                return;
            }
            peer.writeAndFlush(msg).addListener((ChannelFutureListener) f -> {
                if (f.isSuccess()) {
                    ctx.channel().read();
                } else {
                    ctx.close();
                    peer.close();
                }
            });
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                inputEnded = true;
                if (peer != null) {
                    endOfInput(ctx.channel());
                }
            } else {
                ctx.fireUserEventTriggered(evt);
            }
        }

        private void endOfInput(Channel self) {
            Channel p = peer;
            p.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener((ChannelFutureListener) f -> {
                if (p instanceof DuplexChannel d && d.isActive()) {
                    d.shutdownOutput();
                }
                if (self instanceof DuplexChannel s && s.isInputShutdown()
                        && p instanceof DuplexChannel d && d.isInputShutdown()) {
                    self.close();
                    p.close();
                }
            });
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            pending.forEach(ByteBuf::release);
            pending.clear();
            if (peer != null) {
                closeAfterFlush(peer);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
            if (peer != null) {
                peer.close();
            }
        }
    }

    private static void closeAfterFlush(Channel ch) {
        if (ch.isActive()) {
            ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        }
    }

    @Override
    public void close() {
        closed = true;
        releaseAll();
        group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS);
    }
}
