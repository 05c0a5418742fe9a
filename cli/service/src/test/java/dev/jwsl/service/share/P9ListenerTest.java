package dev.jwsl.service.share;

import dev.jwsl.service.tools.Jwsl9p;
import dev.jwsl.hypervisor.p9.P9Client;
import dev.jwsl.hypervisor.p9.P9Server;
import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollEventLoopGroup;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The 9P server on Unix and TCP sockets (what jwsl-9p and the vsock transport use), no VM. */
class P9ListenerTest {
    @TempDir
    Path dir;
    Path share;
    EventLoopGroup group;
    P9Server server;

    @BeforeEach
    void start() throws IOException {
        share = Files.createDirectory(dir.resolve("share"));
        Files.writeString(share.resolve("hello"), "hello over a socket");
        group = new EpollEventLoopGroup(1);
        server = new P9Server(Map.of("root", share), 2);
    }

    @AfterEach
    void stop() {
        group.shutdownGracefully();
        server.close();
    }

    static P9Client client(SocketChannel ch) {
        return new P9Client(P9Client.stream(Channels.newInputStream(ch), Channels.newOutputStream(ch), ch));
    }

    static void readsAFile(P9Client c) {
        assertEquals(1 << 16, c.version(1 << 16));
        c.attach(0, "", 0);
        c.walk(0, 1, "hello");
        c.lopen(1, 0);
        assertEquals("hello over a socket", new String(c.read(1, 0, 100)));
        c.walk(0, 2);
        c.lcreate(2, "new", 0101, 0644);
        byte[] big = new byte[300_000];
        new java.util.Random(1).nextBytes(big);
        int written = 0;
        while (written < big.length) {
            byte[] chunk = java.util.Arrays.copyOfRange(big, written, Math.min(big.length, written + 60_000));
            written += c.write(2, written, chunk);
        }
        c.clunk(2);
    }

    @Test
    void servesOverAUnixSocketOnlyToThisUser() throws Exception {
        Path sock = dir.resolve("9p.sock");
        Channel listener = P9Listener.listen(group, server, new P9Listener.UnixAddress(sock));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(sock)));
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(sock)); P9Client c = client(ch)) {
            readsAFile(c);
        }
        assertEquals(300_000, Files.size(share.resolve("new")));
        listener.close().sync();
    }

    @Test
    void servesOverTcpAndDropsAClientThatIsNot9p() throws Exception {
        Channel listener = P9Listener.listen(group, server, new P9Listener.TcpAddress("127.0.0.1", 0));
        int port = ((InetSocketAddress) listener.localAddress()).getPort();
        try (SocketChannel bad = SocketChannel.open(new InetSocketAddress("127.0.0.1", port))) {
            ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(64 << 20).put((byte) 100);
            b.flip();
            bad.write(b);
            assertEquals(-1, bad.read(ByteBuffer.allocate(16)), "a frame over 1 MiB ends the connection");
        }
        try (SocketChannel bad = SocketChannel.open(new InetSocketAddress("127.0.0.1", port))) {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(2).putInt(0);
            b.flip();
            bad.write(b);
            assertEquals(-1, bad.read(ByteBuffer.allocate(16)), "a size below the header ends the connection");
        }
        try (SocketChannel ch = SocketChannel.open(new InetSocketAddress("127.0.0.1", port)); P9Client c = client(ch)) {
            readsAFile(c);
        }
        listener.close().sync();
    }

    @Test
    void jwsl9pRejectsBadUsageInOneLine() {
        for (String[] args : new String[][] {
                {"--listen", "udp:1", "--root", share.toString()},
                {"--listen", "unix:/tmp/x.sock"},
                {"--listen", "unix:/tmp/x.sock", "--root", dir.resolve("missing").toString()},
                {"--listen", "tcp:127.0.0.1:99999", "--root", share.toString()}}) {
            StringWriter err = new StringWriter();
            int code = new CommandLine(new Jwsl9p()).setErr(new PrintWriter(err)).execute(args);
            assertEquals(2, code, String.join(" ", args));
            assertTrue(err.toString().lines().findFirst().orElse("").length() > 10, String.join(" ", args) + " => [" + err + "]");
            assertFalse(err.toString().contains("\tat "), "no stack trace: " + err);
        }
        assertTrue(StandardProtocolFamily.UNIX != null);
    }
}
