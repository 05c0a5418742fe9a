package dev.jwsl.service;

import com.sun.security.auth.module.UnixSystem;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class ServiceMainTest {
    @TempDir
    Path tmp;

    /** A runtime directory that another user (nobody, played by root) made first: one line and exit. */
    @Test
    void refusesARuntimeDirectoryAnotherUserOwnsInOneLine() throws Exception {
        assumeTrue(new UnixSystem().getUid() == 0, "needs root to play another user");
        Path runtime = Files.createDirectories(tmp.resolve("run/jwsl"));
        Files.setAttribute(runtime, "unix:uid", 65534);
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                ServiceMain.class.getName(), "kernel", "initrd", "tools")
                .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.environment().put("XDG_RUNTIME_DIR", tmp.resolve("run").toString());
        pb.environment().put("XDG_STATE_HOME", tmp.resolve("state").toString());
        pb.environment().put("JWSL_WSLCONFIG", tmp.resolve("no-wslconfig").toString());
        Process p = pb.start();
        try {
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the service went on with another user's directory");
            String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            assertEquals(1, p.exitValue(), err);
            assertEquals("jwsl service: " + runtime + " is owned by uid 65534, not by you (uid 0): refusing it as"
                    + " the jwsl runtime directory (remove it, or set XDG_RUNTIME_DIR)\n", err);
        } finally {
            p.destroyForcibly();
        }
    }
}
