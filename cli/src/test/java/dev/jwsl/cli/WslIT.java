package dev.jwsl.cli;

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
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@code wsl} end to end on the real kernel, init and utility VM: one service and VM serve most
 * tests (boots are slow on an emulating KVM host); the last tests crash the service and let the
 * VM go idle, which boots it twice more.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class WslIT {
    private static final long TIMEOUT_S = 300;
    private static Path root;
    private static Path base;
    private static String kernel;
    private static String initrd;

    record Result(int exit, String stdout, String stderr) {}

    @BeforeAll
    static void setUp() throws IOException {
        root = Path.of(System.getProperty("jwsl.root", "..")).toAbsolutePath().normalize();
        kernel = System.getProperty("jwsl.kernel", "");
        initrd = System.getProperty("jwsl.initrd", "");
        if (kernel.isEmpty() || initrd.isEmpty()) {
            fail("jwsl.kernel and jwsl.initrd are not set: run the suite with scripts/test");
        }
        base = Files.createTempDirectory("jwsl-wsl-it");
        Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.writeString(base.resolve("wslconfig"), "[wsl2]\nvmIdleTimeout=600000\n");
    }

    @AfterAll
    static void tearDown() throws Exception {
        wsl("", "--shutdown");
        killService();
    }

    private static ProcessBuilder builder(List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(root.resolve("bin/wsl").toString());
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("XDG_RUNTIME_DIR", base.resolve("run").toString());
        pb.environment().put("XDG_STATE_HOME", base.resolve("state").toString());
        pb.environment().put("XDG_DATA_HOME", base.resolve("data").toString());
        pb.environment().put("JWSL_WSLCONFIG", base.resolve("wslconfig").toString());
        pb.environment().put("JWSL_KERNEL", kernel);
        pb.environment().put("JWSL_INITRD", initrd);
        return pb;
    }

    private static Result wsl(byte[] stdin, String... args) throws Exception {
        Path out = Files.createTempFile(base, "out", "");
        Path err = Files.createTempFile(base, "err", "");
        Process p = builder(List.of(args)).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        CompletableFuture.runAsync(() -> {
            try (var in = p.getOutputStream()) {
                in.write(stdin);
            } catch (IOException ignored) {
                // the command did not read all of it
            }
        });
        if (!p.waitFor(TIMEOUT_S, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("wsl hung: " + String.join(" ", args));
        }
        return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    private static Result wsl(String stdin, String... args) throws Exception {
        return wsl(stdin.getBytes(StandardCharsets.UTF_8), args);
    }

    private static void killService() throws Exception {
        for (ProcessHandle p : ProcessHandle.allProcesses().toList()) {
            String cmd = p.info().commandLine().orElse("");
            if (cmd.contains("dev.jwsl.service.ServiceMain") && environ(p).contains(base.toString())) {
                p.destroyForcibly();
                p.onExit().get(10, TimeUnit.SECONDS);
            }
        }
    }

    private static String environ(ProcessHandle p) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(p.pid()), "environ"));
        } catch (IOException e) {
            return "";
        }
    }

    @Test
    @Order(1)
    void exitCodesAndSignalDeathsComeBack() throws Exception {
        Result first = wsl("", "--", "sh", "-c", "echo booted");
        assertEquals(0, first.exit(), first.toString());
        assertEquals("booted\n", first.stdout());
        assertEquals(1, wsl("", "--", "false").exit());
        assertEquals(7, wsl("", "--", "sh", "-c", "exit 7").exit());
        assertEquals(137, wsl("", "--", "sh", "-c", "kill -9 $$").exit());
    }

    @Test
    @Order(2)
    void stdoutStderrAndArgumentsArriveIntact() throws Exception {
        Result r = wsl("", "--", "sh", "-c", "echo out; echo err >&2; printf '[%s]' \"$0\" \"$1\"", "a b", "");
        assertEquals("out\n[a b][]", r.stdout());
        assertEquals("err\n", r.stderr());
        Result cd = wsl("", "--cd", "/tmp", "-e", "pwd");
        assertEquals("/tmp\n", cd.stdout(), cd.toString());
        Result user = wsl("", "-u", "nosuchuser", "--", "true");
        assertEquals(1, user.exit());
        assertEquals("wsl: user nosuchuser not found\n", user.stderr());
    }

    @Test
    @Order(3)
    void stdinIsPipedThroughByteExactly() throws Exception {
        // 1 MiB: guest kernel code is emulated here, so vsock moves ~0.3 MB/s (see the notes).
        byte[] data = new byte[1 << 20];
        new Random(42).nextBytes(data);
        String expected = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        Result r = wsl(data, "--", "sha256sum");
        assertEquals(0, r.exit(), r.toString());
        assertEquals(expected + "  -\n", r.stdout());
    }

    @Test
    @Order(4)
    void fiftyConcurrentCallsEachGetTheirOwnOutput() throws Exception {
        List<CompletableFuture<Result>> calls = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            String n = Integer.toString(i);
            calls.add(CompletableFuture.supplyAsync(() -> {
                try {
                    return wsl("", "--", "sh", "-c", "echo $0", n);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            }));
        }
        for (int i = 0; i < 50; i++) {
            Result r = calls.get(i).get(TIMEOUT_S, TimeUnit.SECONDS);
            assertEquals(0, r.exit(), r.toString());
            assertEquals(i + "\n", r.stdout());
        }
    }

    @Test
    @Order(5)
    void aTerminalSessionGetsCtrlCAndResizes() throws Exception {
        String session = "wslit" + ProcessHandle.current().pid();
        Path log = base.resolve("tty.txt");
        String guest = "trap 'stty size' WINCH; trap 'echo got-int; exit 42' INT; stty size; echo ready;"
                + " while :; do sleep 1; done";
        StringBuilder env = new StringBuilder();
        builder(List.of()).environment().forEach((k, v) -> {
            if (k.startsWith("XDG_") || k.startsWith("JWSL_")) {
                env.append(k).append("='").append(v).append("' ");
            }
        });
        String command = "env " + env + root.resolve("bin/wsl") + " -- sh -c \"" + guest + "\"; echo EXIT=$? > " + log
                + "; sleep 30";
        run("tmux", "new-session", "-d", "-s", session, "-x", "90", "-y", "25", command);
        try {
            waitForPane(session, "ready");
            assertTrue(capture(session).contains("25 90"), capture(session));
            run("tmux", "resize-window", "-t", session, "-x", "100", "-y", "30");
            waitForPane(session, "30 100");
            run("tmux", "send-keys", "-t", session, "C-c");
            long deadline = System.currentTimeMillis() + 60_000;
            while (!Files.exists(log) && System.currentTimeMillis() < deadline) {
                Thread.sleep(200);
            }
            assertTrue(capture(session).contains("got-int"), capture(session));
            assertEquals("EXIT=42", Files.readString(log).strip());
        } finally {
            run("tmux", "kill-session", "-t", session);
        }
    }

    private static String run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(30, TimeUnit.SECONDS);
        return out;
    }

    private static String capture(String session) throws Exception {
        return run("tmux", "capture-pane", "-t", session, "-p");
    }

    private static void waitForPane(String session, String text) throws Exception {
        long deadline = System.currentTimeMillis() + 60_000;
        while (System.currentTimeMillis() < deadline) {
            if (capture(session).contains(text)) {
                return;
            }
            Thread.sleep(200);
        }
        fail("'" + text + "' never appeared:\n" + capture(session));
    }

    @Test
    @Order(6)
    void garbageOnTheRelayPortLeavesTheVmServing() throws Exception {
        Path vsock = base.resolve("run/jwsl/vsock.sock");
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(vsock));
            ch.write(ByteBuffer.wrap("CONNECT 50000\n".getBytes(StandardCharsets.US_ASCII)));
            ch.write(ByteBuffer.wrap(new byte[] {1, 0, 0, 0, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x7f}));
            ch.write(ByteBuffer.wrap("garbage".repeat(100).getBytes(StandardCharsets.US_ASCII)));
        }
        Result r = wsl("", "--", "echo", "still here");
        assertEquals("still here\n", r.stdout(), r.toString());
    }

    @Test
    @Order(7)
    void aDisconnectedClientsCommandGetsSighup() throws Exception {
        Process p = builder(List.of("--", "sh", "-c",
                "rm -f /tmp/hup; trap 'echo hup > /tmp/hup; exit 1' HUP; echo started; while :; do sleep 1; done"))
                .redirectErrorStream(true).start();
        byte[] started = p.getInputStream().readNBytes("started\n".length());
        assertEquals("started\n", new String(started, StandardCharsets.UTF_8));
        p.destroyForcibly();
        p.onExit().get(30, TimeUnit.SECONDS);
        long deadline = System.currentTimeMillis() + 60_000;
        Result r;
        do {
            Thread.sleep(500);
            r = wsl("", "--", "cat", "/tmp/hup");
        } while (r.exit() != 0 && System.currentTimeMillis() < deadline);
        assertEquals("hup\n", r.stdout(), r.toString());
    }

    @Test
    @Order(8)
    void shutdownWhileACommandRunsEndsItWithAnError() throws Exception {
        Path err = base.resolve("sleep.err");
        Process sleeper = builder(List.of("--", "sh", "-c", "echo started; sleep 300"))
                .redirectError(err.toFile()).start();
        byte[] started = sleeper.getInputStream().readNBytes("started\n".length());
        assertEquals("started\n", new String(started, StandardCharsets.UTF_8));
        assertEquals(0, wsl("", "--shutdown").exit());
        assertTrue(sleeper.waitFor(60, TimeUnit.SECONDS), "the running command's wsl did not end");
        assertEquals(1, sleeper.exitValue());
        assertEquals("wsl: the VM stopped during the command\n", Files.readString(err));
        assertTrue(wsl("", "--status").stdout().contains("VM: stopped"));
    }

    @Test
    @Order(9)
    void aCrashedServiceIsReplacedAndAnIdleVmStops() throws Exception {
        Files.writeString(base.resolve("wslconfig"), "[wsl2]\nvmIdleTimeout=2000\n");
        assertEquals(0, wsl("", "--", "true").exit());
        killService(); // takes the VM with it: the service is the VMM
        Result back = wsl("", "--", "echo", "back");
        assertEquals("back\n", back.stdout(), back.toString());
        long deadline = System.currentTimeMillis() + 60_000;
        String status;
        do {
            Thread.sleep(500);
            status = wsl("", "--status").stdout();
        } while (!status.contains("VM: stopped") && System.currentTimeMillis() < deadline);
        assertTrue(status.contains("VM: stopped"), "idle VM still up: " + status);
        Result again = wsl("", "--", "echo", "again");
        assertEquals("again\n", again.stdout(), again.toString());
    }
}
