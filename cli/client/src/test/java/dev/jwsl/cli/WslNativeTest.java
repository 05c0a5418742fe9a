package dev.jwsl.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * wsl-native's own decisions, on the host: what it serves itself and what it leaves to the JVM
 * client (here a script stands in for bin/wsl, and prints what it was run with). What it does
 * with a service and a VM is the integration tests' part (WslIT, ServiceIT run every bin/wsl
 * call through it).
 */
class WslNativeTest {
    private static final Path NATIVE = Path.of("target", "wsl-native").toAbsolutePath();
    @TempDir
    static Path scripts;

    record Result(int exit, String stdout, String stderr) {}

    /** What the stand-in launcher prints: JVM, JWSL_NO_NATIVE in brackets, the arguments. */
    private static String jvm(List<String> args) {
        return "JVM[1]" + args.stream().map(a -> " " + a).reduce("", String::concat) + "\n";
    }

    private static Result run(Map<String, String> env, String... args) throws Exception {
        Path launcher = scripts.resolve("wsl");
        if (!Files.exists(launcher)) {
            Files.writeString(launcher, "#!/bin/sh\nprintf 'JVM[%s]' \"$JWSL_NO_NATIVE\"\nfor a; do printf ' %s' \"$a\"; done\necho\n");
            Files.setPosixFilePermissions(launcher, PosixFilePermissions.fromString("rwx------"));
        }
        List<String> cmd = new ArrayList<>(List.of(NATIVE.toString(), launcher.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        pb.environment().remove("JWSL_TIMING");
        pb.environment().remove("JWSL_NO_NATIVE");
        pb.environment().putAll(env);
        Path err = Files.createTempFile("wsl-native", ".err");
        try {
            Process p = pb.redirectError(err.toFile()).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "wsl-native did not end");
            return new Result(p.exitValue(), out, Files.readString(err));
        } finally {
            Files.delete(err);
        }
    }

    @Test
    void versionIsTheJvmClientsWithoutAJvm() throws Exception {
        Result r = run(Map.of("JAVA_HOME", System.getProperty("java.home")), "--version");
        assertEquals(new Result(0, Wsl.versionText(), ""), r);
    }

    @Test
    void whatItDoesNotServeGoesToTheJvmClientUnchanged(@TempDir Path dir) throws Exception {
        Map<String, String> env = Map.of("XDG_RUNTIME_DIR", dir.toString());
        List<List<String>> jvmOnly = List.of(List.of("--bogus"), List.of("-u"), List.of("-u", "a", "-u", "b"),
                List.of("--system", "-d", "x"), List.of("-h"), List.of("--list", "-v"), List.of("-u", "-e", "true"),
                List.of("--version", "2"), List.of("--status", "-v"), List.of("-ue", "true"), List.of("--cd"),
                List.of("--shutdown"), List.of("-", "x"), List.of("--cd=--", "true"), List.of("--user=-x", "true"),
                List.of("-d", "-x", "true"));
        for (List<String> args : jvmOnly) {
            Result r = run(env, args.toArray(String[]::new));
            assertEquals(new Result(0, jvm(args), ""), r, args.toString());
        }
    }

    @Test
    void withoutAServiceTheJvmClientStartsOne(@TempDir Path dir) throws Exception {
        Files.createDirectory(dir.resolve("jwsl"), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Map<String, String> env = Map.of("XDG_RUNTIME_DIR", dir.toString());
        assertEquals(new Result(0, jvm(List.of("--", "true")), ""), run(env, "--", "true"));
        assertEquals(new Result(0, jvm(List.of("--status")), ""), run(env, "--status"));
    }

    /** A socket in a directory that others can reach, or that is not ours, is the JVM client's to judge. */
    @Test
    void onlyARuntimeDirectoryOfItsOwnIsUsed(@TempDir Path dir) throws Exception {
        Path rt = Files.createDirectory(dir.resolve("jwsl"));
        Map<String, String> env = Map.of("XDG_RUNTIME_DIR", dir.toString());
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(rt.resolve("service.sock")));
            Files.setPosixFilePermissions(rt, PosixFilePermissions.fromString("rwxr-xr-x"));
            assertEquals(new Result(0, jvm(List.of("--status")), ""), run(env, "--status"));
            // Its own: used. This peer closes at once, which the client reports in one line.
            Files.setPosixFilePermissions(rt, PosixFilePermissions.fromString("rwx------"));
            Thread closer = Thread.ofPlatform().start(() -> {
                try (SocketChannel c = server.accept()) {
                    // closed unanswered
                } catch (IOException ignored) {
                    // the test fails on the client's output instead
                }
            });
            assertEquals(new Result(1, "", "wsl: the jwsl service closed the connection\n"), run(env, "--status"));
            closer.join();
        }
    }

    @Test
    void runOnItsOwnItSaysWhereToRunItFrom() throws Exception {
        Process p = new ProcessBuilder(NATIVE.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(1, p.waitFor());
        assertEquals("wsl-native: run it through bin/wsl\n", out);
    }
}
