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
        return finish(pb);
    }

    /** Runs {@code pb} to its end (30 s at most) and returns what it printed. */
    private static Result finish(ProcessBuilder pb) throws Exception {
        Path out = Files.createTempFile("wsl-native", ".out");
        Path err = Files.createTempFile("wsl-native", ".err");
        try {
            Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("wsl-native did not end: " + pb.command());
            }
            return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        } finally {
            Files.delete(out);
            Files.delete(err);
        }
    }

    /**
     * A runtime directory of this user with a service socket whose every connection is closed
     * unanswered: a call that wsl-native serves itself ends "the jwsl service closed the
     * connection" (status 1), one it leaves to the JVM client prints the stand-in's line.
     */
    private static ServerSocketChannel closingService(Path rt) throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(rt.resolve("service.sock")));
        Thread.ofPlatform().daemon().start(() -> {
            while (true) {
                try (SocketChannel c = server.accept()) {
                    // closed unanswered
                } catch (IOException closed) {
                    return;
                }
            }
        });
        return server;
    }

    private static Path ownRuntimeDir(Path dir) throws IOException {
        return Files.createDirectory(dir.resolve("jwsl"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }

    private static final Result SERVED = new Result(1, "", "wsl: the jwsl service closed the connection\n");

    @Test
    void versionIsTheJvmClientsWithoutAJvm() throws Exception {
        Result r = run(Map.of("JAVA_HOME", System.getProperty("java.home")), "--version");
        assertEquals(new Result(0, Wsl.versionText(), ""), r);
    }

    @Test
    void whatItDoesNotServeGoesToTheJvmClientUnchanged(@TempDir Path dir) throws Exception {
        Map<String, String> env = Map.of("XDG_RUNTIME_DIR", dir.toString());
        try (ServerSocketChannel service = closingService(ownRuntimeDir(dir))) {
            List<List<String>> served = List.of(List.of("--", "true"), List.of("-u", "root", "--cd", "/", "-e", "ls"),
                    List.of("--user=", "--cd=~", "--exec", "--", "x"), List.of("--system", "true"),
                    List.of("-d", "Debian", "sh", "-c", "--help"), List.of(), List.of("--status"));
            for (List<String> args : served) {
                assertEquals(SERVED, run(env, args.toArray(String[]::new)), args.toString());
            }
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
    }

    @Test
    void withoutAServiceTheJvmClientStartsOne(@TempDir Path dir) throws Exception {
        ownRuntimeDir(dir);
        Map<String, String> env = Map.of("XDG_RUNTIME_DIR", dir.toString());
        assertEquals(new Result(0, jvm(List.of("--", "true")), ""), run(env, "--", "true"));
        assertEquals(new Result(0, jvm(List.of("--status")), ""), run(env, "--status"));
    }

    /** A socket in a directory that others can reach is the JVM client's to judge; in its own, it is used. */
    @Test
    void onlyARuntimeDirectoryOfItsOwnIsUsed(@TempDir Path dir) throws Exception {
        Path rt = ownRuntimeDir(dir);
        Map<String, String> env = Map.of("XDG_RUNTIME_DIR", dir.toString());
        try (ServerSocketChannel service = closingService(rt)) {
            Files.setPosixFilePermissions(rt, PosixFilePermissions.fromString("rwxr-xr-x"));
            assertEquals(new Result(0, jvm(List.of("--status")), ""), run(env, "--status"));
            Files.setPosixFilePermissions(rt, PosixFilePermissions.fromString("rwx------"));
            assertEquals(SERVED, run(Map.of("XDG_RUNTIME_DIR", dir + "//"), "--status"), "the same directory, written with '//'");
        }
    }

    @Test
    void runOnItsOwnItSaysWhereToRunItFrom() throws Exception {
        assertEquals(new Result(1, "", "wsl-native: run it through bin/wsl\n"), finish(new ProcessBuilder(NATIVE.toString())));
    }
}
