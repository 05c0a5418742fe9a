package dev.jwsl.protocol.relay;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The JNI socket against the JDK's own Unix-domain server sockets. */
@Timeout(60)
class UnixStreamTest {
    @TempDir
    Path dir;

    @Test
    void bytesGoBothWaysExactlyAndEndOfStreamIsMinusOne() throws Exception {
        Path path = dir.resolve("s.sock");
        byte[] sent = new byte[300_000]; // several chunks of the native side's 64 KiB
        new Random(7).nextBytes(sent);
        try (ServerSocketChannel server = listen(path);
             UnixStream client = UnixStream.connect(path);
             SocketChannel peer = server.accept()) {
            CompletableFuture<byte[]> received = CompletableFuture.supplyAsync(() -> {
                ByteBuffer got = ByteBuffer.allocate(sent.length);
                try {
                    while (got.hasRemaining() && peer.read(got) > 0) {
                        // more
                    }
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
                return got.array();
            });
            client.write(new ByteBuffer[] {ByteBuffer.wrap(sent, 0, 1000), ByteBuffer.wrap(sent, 1000, sent.length - 1000)});
            assertArrayEquals(sent, received.get(30, TimeUnit.SECONDS));
            CompletableFuture<byte[]> echoed = CompletableFuture.supplyAsync(() -> readAll(client, sent.length));
            peer.write(ByteBuffer.wrap(sent));
            assertArrayEquals(sent, echoed.get(30, TimeUnit.SECONDS));
            peer.shutdownOutput();
            assertEquals(-1, client.read(ByteBuffer.allocate(8)));
        }
    }

    @Test
    void closeWakesABlockedReaderAndLaterCallsAreRefused() throws Exception {
        Path path = dir.resolve("s.sock");
        try (ServerSocketChannel server = listen(path)) {
            UnixStream client = UnixStream.connect(path);
            try (SocketChannel peer = server.accept()) {
                CompletableFuture<Integer> blocked = CompletableFuture.supplyAsync(() -> {
                    try {
                        return client.read(ByteBuffer.allocate(8));
                    } catch (IOException e) {
                        return -2;
                    }
                });
                Thread.sleep(200); // let it block: a close before the read is the case below
                client.close();
                assertEquals(-1, blocked.get(30, TimeUnit.SECONDS), "woken as at end of stream");
                assertFalse(client.isOpen());
                assertThrows(ClosedChannelException.class, () -> client.read(ByteBuffer.allocate(8)));
                assertThrows(ClosedChannelException.class, () -> client.write(ByteBuffer.allocate(8)));
                client.close(); // twice is harmless
                assertEquals(-1, peer.read(ByteBuffer.allocate(8)), "the peer sees the connection end");
            }
        }
    }

    @Test
    void aPeerGoneIsAnIoErrorNotASignal() throws Exception {
        Path path = dir.resolve("s.sock");
        try (ServerSocketChannel server = listen(path);
             UnixStream client = UnixStream.connect(path)) {
            server.accept().close();
            byte[] chunk = new byte[65536];
            IOException e = assertThrows(IOException.class, () -> {
                for (int i = 0; i < 100; i++) { // the first writes may still be buffered
                    client.write(ByteBuffer.wrap(chunk));
                }
            });
            assertTrue(e.getMessage().equals("Broken pipe") || e.getMessage().equals("Connection reset by peer"),
                    e.getMessage());
        }
    }

    @Test
    void noListenerIsAOneLineErrorNamingThePath() throws IOException {
        Path path = dir.resolve("none.sock");
        IOException e = assertThrows(IOException.class, () -> UnixStream.connect(path));
        assertEquals("No such file or directory: " + path, e.getMessage());
        Files.createFile(path);
        e = assertThrows(IOException.class, () -> UnixStream.connect(path));
        assertEquals("Connection refused: " + path, e.getMessage());
        Path tooLong = dir.resolve("x".repeat(120));
        e = assertThrows(IOException.class, () -> UnixStream.connect(tooLong));
        assertTrue(e.getMessage().startsWith("File name too long"), e.getMessage());
    }

    private static ServerSocketChannel listen(Path path) throws IOException {
        ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        s.bind(UnixDomainSocketAddress.of(path));
        return s;
    }

    private static byte[] readAll(UnixStream s, int n) {
        byte[] b = new byte[n];
        int off = 0;
        try {
            while (off < n) {
                int r = s.read(b, off, n - off);
                if (r < 0) {
                    return Arrays.copyOf(b, off);
                }
                off += r;
            }
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
        return b;
    }
}
