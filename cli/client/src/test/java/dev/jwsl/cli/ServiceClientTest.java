package dev.jwsl.cli;

import com.sun.security.auth.module.UnixSystem;
import dev.jwsl.protocol.ServicePaths;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class ServiceClientTest {
    @TempDir
    Path tmp;

    /**
     * Another user (nobody, played by root) made the runtime directory first and listens on the
     * service's socket in it: the client must say so in one line, and never talk to that socket.
     */
    @Test
    void neverConnectsThroughARuntimeDirectoryAnotherUserOwns() throws IOException {
        assumeTrue(new UnixSystem().getUid() == 0, "needs root to play another user");
        Path runtime = Files.createDirectory(tmp.resolve("jwsl-victim"));
        Files.setPosixFilePermissions(runtime, PosixFilePermissions.fromString("rwxrwxrwx"));
        Files.setAttribute(runtime, "unix:uid", 65534);
        ServicePaths paths = new ServicePaths(runtime, tmp.resolve("state"));
        try (ServerSocketChannel planted = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            planted.bind(UnixDomainSocketAddress.of(paths.serviceSocket()));
            planted.configureBlocking(false);
            IOException e = assertThrows(IOException.class, () -> ServiceClient.connect(paths, List.of("true")).close());
            assertTrue(e.getMessage().contains(runtime + " is owned by uid 65534"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
            assertNull(planted.accept(), "the client connected to the planted socket");
        }
    }

    @Test
    void aServiceThatExitsAtOnceIsAOneLineError() throws IOException {
        ServicePaths paths = new ServicePaths(tmp.resolve("run"), tmp.resolve("state"));
        IOException e = assertThrows(IOException.class,
                () -> ServiceClient.connect(paths, List.of("sh", "-c", "echo no kernel; exit 1")).close());
        assertTrue(e.getMessage().startsWith("the jwsl service exited with status 1; see "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertEquals("no kernel\n", Files.readString(tmp.resolve("state/service.out")));
    }
}
