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
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;

import java.lang.foreign.MemorySegment;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Serves a {@link P9Server} on a stream socket: {@code unix:PATH} or {@code tcp:HOST:PORT}. Each
 * connection is a {@link P9Session}; frames are 9P messages (size[4] little-endian, counting
 * itself).
 *
 * <p>The event loop only moves bytes: a request is handed, in order, to the connection's own
 * thread, because session work is host file system calls that can block (a share on a hung NFS
 * mount) and its reply buffer is an allocation that can wait for memory. Data requests go on from
 * there to the server's workers, and replies go out as they finish. A client is served only as
 * fast as it takes its replies: past {@link Limits#requests} or {@link Limits#bytes} between
 * reading a request and writing its reply, the listener stops reading from it.
 */
public final class P9Listener {
    private static final System.Logger LOG = System.getLogger(P9Listener.class.getName());
    /** Tread and Treaddir: their count[4] follows size[4] type[1] tag[2] fid[4] offset[8]. */
    private static final int TREAD = 116, TREADDIR = 40, COUNT_AT = 19;
    /** Rread and Rreaddir before their data: size[4] type[1] tag[2] count[4]. */
    private static final int IO_HEADER = 11;
    /** Any other reply of 9P2000.L fits: the longest, Rreadlink, is a path of at most 4 KiB. */
    private static final int SMALL_REPLY = 8192;
    private static final ThreadFactory CONNECTION_THREADS = Thread.ofPlatform().name("p9-connection-", 0)
            .daemon().factory();

    private P9Listener() {}

    /**
     * What the listener lets clients hold.
     *
     * @param connections served at once; more are refused (each may hold thousands of host descriptors)
     * @param perPeer     of those, from one TCP peer address, so one host cannot take them all
     * @param requests    one connection's requests between being read and their reply being written
     * @param bytes       their request and reply buffers, in bytes (one request is let through
     *                    whatever its size)
     * @param idle        how long a connection without fids may stay silent before it is closed
     */
    record Limits(int connections, int perPeer, int requests, int bytes, Duration idle) {
        /**
         * Room for four reads or writes at the 512 KiB msize the guest mounts with, headers
         * included: as many as the server's workers run at once. All 64 connections stalled hold
         * 132 MiB at most, half of bin/jwsl-9p's and the service's direct memory (their -Xmx).
         */
        static final Limits DEFAULT = new Limits(64, 16, 64, (2 << 20) + (64 << 10), Duration.ofSeconds(30));
    }

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
        return listen(group, server, address, Limits.DEFAULT);
    }

    static Channel listen(EventLoopGroup group, P9Server server, Address address, Limits limits)
            throws InterruptedException, java.io.IOException {
        Gate gate = new Gate(limits);
        ServerBootstrap b = new ServerBootstrap().group(group)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        if (!gate.admit(ch)) {
                            ch.close();
                            return;
                        }
                        ch.pipeline().addLast(
                                new IdleStateHandler(0, 0, limits.idle().toMillis(), TimeUnit.MILLISECONDS),
                                new LengthFieldBasedFrameDecoder(ByteOrder.LITTLE_ENDIAN, P9Server.MAX_MSIZE, 0, 4, -4, 0, true),
                                new Connection(server.open(), limits));
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

    /** Who is at the other end, for the log. */
    private static String peer(Channel ch) {
        return ch.remoteAddress() instanceof InetSocketAddress a ? a.getAddress().getHostAddress() + ":" + a.getPort()
                : "the Unix socket";
    }

    /**
     * Admits connections up to the limits and takes them back when they close. A refusal is
     * logged, at most every {@link #QUIET_NANOS} with the count since, so that a flood of
     * connections cannot flood the log.
     */
    private static final class Gate {
        private static final long QUIET_NANOS = TimeUnit.SECONDS.toNanos(10);
        private final Limits limits;
        private final AtomicInteger open = new AtomicInteger();
        private final Map<InetAddress, Integer> perPeer = new ConcurrentHashMap<>();
        private long lastLog = System.nanoTime() - QUIET_NANOS;
        private int unlogged;

        Gate(Limits limits) {
            this.limits = limits;
        }

        boolean admit(Channel ch) {
            InetAddress peer = ch.remoteAddress() instanceof InetSocketAddress a ? a.getAddress() : null;
            if (open.incrementAndGet() > limits.connections()) {
                open.decrementAndGet();
                refused(ch, limits.connections() + " connections are open, the most served at once");
                return false;
            }
            if (peer != null && perPeer.merge(peer, 1, Integer::sum) > limits.perPeer()) {
                leave(peer);
                refused(ch, "it has " + limits.perPeer() + " connections open, the most one peer may have");
                return false;
            }
            ch.closeFuture().addListener(f -> leave(peer));
            return true;
        }

        private void leave(InetAddress peer) {
            if (peer != null) {
                perPeer.computeIfPresent(peer, (p, n) -> n > 1 ? n - 1 : null);
            }
            open.decrementAndGet();
        }

        private synchronized void refused(Channel ch, String why) {
            long now = System.nanoTime();
            if (now - lastLog < QUIET_NANOS) {
                unlogged++;
                return;
            }
            LOG.log(System.Logger.Level.WARNING, "9P: refused a connection from {0}: {1}{2}", peer(ch), why,
                    unlogged == 0 ? "" : " (and " + unlogged + " more refused since the last such message)");
            lastLog = now;
            unlogged = 0;
        }
    }

    /**
     * One client connection: frames in, replies out, a session for its lifetime. Its counters and
     * queue belong to the event loop; its thread runs the session's side.
     */
    private static final class Connection extends ChannelInboundHandlerAdapter {
        private final P9Session session;
        private final Limits limits;
        /** One thread at most, so requests reach the session in the order they came; it ends when idle. */
        private final ThreadPoolExecutor thread = new ThreadPoolExecutor(0, 1, 10, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(), CONNECTION_THREADS);
        /** Requests read but not handed on, while the client is at its limits. */
        private final ArrayDeque<ByteBuf> waiting = new ArrayDeque<>();
        private int requests;
        private long bytes;
        private ChannelHandlerContext ctx;

        Connection(P9Session session, Limits limits) {
            this.session = session;
            this.limits = limits;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            waiting.add((ByteBuf) msg);
            handOn();
        }

        /** Hands waiting requests to the connection's thread as far as the limits allow. */
        private void handOn() {
            while (!waiting.isEmpty() && ctx.channel().isActive()) {
                ByteBuf frame = waiting.peek();
                int replyBytes = replyCapacity(frame);
                long cost = (long) frame.readableBytes() + replyBytes;
                if (requests > 0 && (requests >= limits.requests() || bytes + cost > limits.bytes())) {
                    break;
                }
                waiting.poll();
                requests++;
                bytes += cost;
                thread.execute(() -> serve(frame, replyBytes, cost));
            }
            // reading on would only pile up requests that cannot be served yet
            boolean room = requests < limits.requests() && bytes < limits.bytes();
            ctx.channel().config().setAutoRead(waiting.isEmpty() && room);
        }

        /** On the connection's thread: gives the request and a buffer for its reply to the session. */
        private void serve(ByteBuf frame, int replyBytes, long cost) {
            if (!ctx.channel().isActive()) {
                drop(frame, null, cost);
                return;
            }
            ByteBuf request = frame;
            ByteBuf reply = null;
            try {
                request = direct(frame);
                reply = ctx.alloc().directBuffer(replyBytes, replyBytes);
                ByteBuf in = request, out = reply;
                // The segments view the buffers' memory; both stay held until replied() runs.
                session.submit(Scatter.of(MemorySegment.ofBuffer(in.nioBuffer())),
                        Scatter.of(MemorySegment.ofBuffer(out.nioBuffer(0, replyBytes))),
                        n -> ctx.executor().execute(() -> replied(in, out, cost, n)));
            } catch (RuntimeException | OutOfMemoryError e) {
                // out of direct memory, most likely: this client goes, the others stay
                LOG.log(System.Logger.Level.WARNING, "9P: dropping a connection from {0}: {1}",
                        peer(ctx.channel()), e.toString());
                drop(request, reply, cost);
            }
        }

        private void drop(ByteBuf request, ByteBuf reply, long cost) {
            ctx.executor().execute(() -> {
                request.release();
                if (reply != null) {
                    reply.release();
                }
                written(cost);
                ctx.close();
            });
        }

        /** The session needs the request in one piece of native memory; Netty's reads nearly always are. */
        private ByteBuf direct(ByteBuf frame) {
            if (frame.isDirect() && frame.nioBufferCount() == 1) {
                return frame;
            }
            ByteBuf copy = ctx.alloc().directBuffer(frame.readableBytes());
            copy.writeBytes(frame);
            frame.release();
            return copy;
        }

        /** On the event loop: the reply is ready ({@code n} bytes), or -1: not 9P, drop the client. */
        private void replied(ByteBuf request, ByteBuf reply, long cost, int n) {
            request.release();
            if (n < 0 || !ctx.channel().isActive()) {
                reply.release();
                written(cost);
                ctx.close();
                return;
            }
            reply.writerIndex(n);
            ctx.writeAndFlush(reply).addListener(f -> written(cost));
        }

        private void written(long cost) {
            requests--;
            bytes -= cost;
            handOn();
        }

        /**
         * Room for the reply: what a Tread or Treaddir asks for (up to msize), 8 KiB for anything
         * else. Sized by the request, not by msize, so that replies held for a slow reader are
         * counted at what they can be.
         */
        private int replyCapacity(ByteBuf frame) {
            int at = frame.readerIndex();
            int type = frame.readableBytes() > 4 ? frame.getUnsignedByte(at + 4) : 0;
            if ((type == TREAD || type == TREADDIR) && frame.readableBytes() >= COUNT_AT + 4) {
                long count = frame.getUnsignedIntLE(at + COUNT_AT);
                return (int) Math.min(session.msize(), IO_HEADER + count);
            }
            return Math.min(session.msize(), SMALL_REPLY);
        }

        /** A client that connects and never attaches holds a place another client may need. */
        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object event) {
            if (event instanceof IdleStateEvent && session.fidCount() == 0 && requests == 0 && waiting.isEmpty()) {
                LOG.log(System.Logger.Level.DEBUG, "9P: closing a connection from {0}: no fid and silent for {1} s",
                        peer(ctx.channel()), limits.idle().toSeconds());
                ctx.close();
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            for (ByteBuf frame; (frame = waiting.poll()) != null; ) {
                frame.release();
            }
            // after the requests already handed on, so none of them opens a fid the close would miss
            thread.execute(session::close);
            thread.shutdown();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // a frame over msize or a reset connection: this client is done
            LOG.log(System.Logger.Level.DEBUG, "9P connection: {0}", cause.toString());
            ctx.close();
        }
    }
}
