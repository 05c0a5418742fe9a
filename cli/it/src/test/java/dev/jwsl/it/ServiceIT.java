package dev.jwsl.it;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The service's life cycle through {@code bin/wsl}, without booting a VM: auto-start, private
 * socket, garbage on the socket, crash and recovery, usage errors.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ServiceIT {
    private static Path root;
    private static Path runtime;
    private static Path state;

    record Result(int exit, String stdout, String stderr) {}

    @BeforeAll
    static void setUp() throws IOException {
        root = Path.of(System.getProperty("jwsl.root", "../..")).toAbsolutePath().normalize();
        Path base = Files.createTempDirectory("jwsl-service-it");
        Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwxr-xr-x"));
        runtime = base.resolve("run");
        state = base.resolve("state");
    }

    @AfterAll
    static void stopService() throws Exception {
        killServices();
    }

    private static boolean serviceOfThisTest(ProcessHandle p) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(p.pid()), "environ")).contains(runtime.getParent().toString());
        } catch (IOException e) {
            return false;
        }
    }

    private static Result wsl(List<String> prefix, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.add(root.resolve("bin/wsl").toString());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("XDG_RUNTIME_DIR", runtime.toString());
        pb.environment().put("XDG_STATE_HOME", state.toString());
        pb.environment().put("XDG_DATA_HOME", runtime.getParent().resolve("data").toString());
        pb.environment().put("JWSL_SNAPSHOT_DIR", runtime.getParent().resolve("snapshot").toString());
        pb.environment().put("JWSL_WSLCONFIG", runtime.getParent().resolve("wslconfig").toString());
        Path out = Files.createTempFile("wsl", ".out");
        Path err = Files.createTempFile("wsl", ".err");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        p.getOutputStream().close();
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "wsl " + String.join(" ", args) + " hung");
        return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    private static Result wsl(String... args) throws Exception {
        return wsl(List.of(), args);
    }

    @Test
    @Order(1)
    void statusStartsTheServiceOnAPrivateSocket() throws Exception {
        Result r = wsl("--status");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.stdout().contains("VM: stopped"), r.stdout());
        Path dir = runtime.resolve("jwsl");
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
        assertEquals("rw-------",
                PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("service.sock"))));
        assertTrue(Files.readString(state.resolve("jwsl/service.log")).contains("serving"));
    }

    @Test
    @Order(2)
    void anotherUserCannotReachTheService() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "needs root to drop to another user");
        Result r = wsl(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"), "--status");
        assertNotEquals(0, r.exit(), r.toString());
        assertTrue(r.stderr().startsWith("wsl: "), r.stderr());
        assertEquals(0, wsl("--status").exit(), "the owner's service is unharmed");
    }

    @Test
    @Order(3)
    void garbageOnTheSocketClosesOnlyThatConnection() throws Exception {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(runtime.resolve("jwsl/service.sock")));
            ch.write(ByteBuffer.wrap("GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4).getBytes()));
            ByteBuffer b = ByteBuffer.allocate(64);
            int n = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return ch.read(b);
                } catch (IOException e) {
                    return -1; // reset by the service: closed as well
                }
            }).get(10, TimeUnit.SECONDS);
            assertEquals(-1, n, "the service closes a connection that sends garbage");
        }
        Result r = wsl("--status");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(Files.readString(state.resolve("jwsl/service.log")).contains("closing client connection"));
    }

    @Test
    @Order(4)
    void shutdownWithoutAVmSucceeds() throws Exception {
        assertEquals(0, wsl("--shutdown").exit());
        assertEquals(0, wsl("--shutdown", "--force").exit());
    }

    @Test
    @Order(5)
    void aCrashedServiceIsReplacedByTheNextCall() throws Exception {
        killServices();
        Result r = wsl("--status");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.stdout().contains("VM: stopped"), r.stdout());
    }

    @Test
    @Order(6)
    void callsThatFindNoServiceStartOneBetweenThem() throws Exception {
        killServices();
        Path log = state.resolve("jwsl/service.log");
        Path out = state.resolve("jwsl/service.out");
        long serving = count(log, "serving");
        long refused = count(out, "already running");
        List<java.util.concurrent.CompletableFuture<Result>> calls = new ArrayList<>();
        for (int i = 0; i < 8; i++) { // all started before any is waited for
            calls.add(java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return wsl("--status");
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            }));
        }
        for (var c : calls) {
            Result r = c.get();
            assertEquals(0, r.exit(), r.toString());
            assertTrue(r.stdout().contains("VM: stopped"), r.toString());
        }
        assertEquals(serving + 1, count(log, "serving"), "services started");
        assertEquals(refused, count(out, "already running"), "services started that found another one");
    }

    private static long count(Path file, String text) throws IOException {
        return Files.exists(file) ? Files.readAllLines(file).stream().filter(l -> l.contains(text)).count() : 0;
    }

    private static void killServices() throws Exception {
        for (ProcessHandle p : ProcessHandle.allProcesses().toList()) {
            if (p.info().commandLine().orElse("").contains("dev.jwsl.service.ServiceMain") && serviceOfThisTest(p)) {
                p.destroyForcibly();
                p.onExit().get(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void usageErrorsAreOneLineWithExitTwo() throws Exception {
        Result r = wsl("--bogus");
        assertEquals(2, r.exit());
        assertTrue(r.stderr().startsWith("wsl: Unknown option: '--bogus'"), r.stderr());
        Result f = wsl("--force");
        assertEquals(2, f.exit(), f.toString());
    }
}
