package dev.jwsl.protocol;

import com.sun.security.auth.module.UnixSystem;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The runtime directory holds the service's sockets: one that another user made first (as anyone
 * can under /tmp) is refused with one line that says which directory and why. Another user is
 * played by root giving the directory to nobody (uid 65534).
 */
class ServicePathsTest {
    static final int NOBODY = 65534;

    @TempDir
    Path tmp;
    Path runtime;
    ServicePaths paths;

    @BeforeEach
    void paths() {
        runtime = tmp.resolve("jwsl-someone");
        paths = new ServicePaths(runtime, tmp.resolve("state"));
    }

    @Test
    void theUidIsTheOneJaasReports() throws IOException {
        assertEquals(new UnixSystem().getUid(), ServicePaths.uid());
    }

    static void assumeRoot() {
        assumeTrue(new UnixSystem().getUid() == 0, "needs root to play another user");
    }

    static String mode(Path p) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
    }

    static void refused(ServicePaths paths, String why) {
        IOException e = assertThrows(IOException.class, paths::create);
        String m = e.getMessage();
        assertTrue(m.contains(paths.runtimeDir().toString()) && m.contains(why), m);
        assertFalse(m.contains("\n"), "one line: " + m);
    }

    @Test
    void makesItPrivateAndFixesTheModeOfOurOwn() throws IOException {
        paths.create();
        assertEquals("rwx------", mode(runtime));
        assertTrue(Files.isDirectory(tmp.resolve("state")));
        Files.setPosixFilePermissions(runtime, PosixFilePermissions.fromString("rwxr-xr-x"));
        paths.create();
        assertEquals("rwx------", mode(runtime));
    }

    @Test
    void refusesADirectoryAnotherUserMadeFirst() throws IOException {
        assumeRoot();
        Files.createDirectory(runtime);
        Files.setAttribute(runtime, "unix:uid", NOBODY);
        refused(paths, "owned by uid 65534");
        Files.setPosixFilePermissions(runtime, PosixFilePermissions.fromString("rwxrwxrwx"));
        refused(paths, "owned by uid 65534");
        assertEquals("rwxrwxrwx", mode(runtime), "not repaired: its owner could still plant sockets");
    }

    @Test
    void refusesASymlinkAndLeavesItsTargetAlone() throws IOException {
        Path ours = Files.createDirectory(tmp.resolve("elsewhere"));
        Files.setPosixFilePermissions(ours, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.createSymbolicLink(runtime, ours);
        refused(paths, "symbolic link");
        assertEquals("rwxr-xr-x", mode(ours));
    }

    @Test
    void refusesAFile() throws IOException {
        Files.writeString(runtime, "");
        refused(paths, "not a directory");
    }
}
