package dev.jwsl.protocol.relay;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The client side of a relay session against a VMM socket that goes away, as a stopping VM's does. */
class RelaySessionTest {
    @TempDir
    Path dir;

    @Test
    void aConnectionClosedBeforeTheCommandIsSentSaysTheVmStoppedNotBrokenPipe() throws Exception {
        Path socket = dir.resolve("v.sock");
        try (ServerSocketChannel vmm = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            vmm.bind(UnixDomainSocketAddress.of(socket));
            UnixStream client = HybridVsock.start(socket, RelayConstants.PORT);
            try (SocketChannel accepted = vmm.accept()) {
                accepted.read(ByteBuffer.allocate(64)); // CONNECT 6000
                accepted.write(ByteBuffer.wrap("OK 1073741824\n".getBytes(StandardCharsets.US_ASCII)));
            } // closed before the client sends CREATE: the write meets EPIPE
            try (RelaySession session = RelaySession.finish(client, RelayConstants.PORT)) {
                CreateRequest create = new CreateRequest(false, 0, 0, "root", "", "", List.of("true"), List.of());
                RelaySession.RelayException e = assertThrows(RelaySession.RelayException.class,
                        () -> session.run(create, new ByteArrayInputStream(new byte[0]), new ByteArrayOutputStream(),
                                new ByteArrayOutputStream()));
                assertEquals("the VM stopped during the command", e.getMessage());
            }
        }
    }
}
