package dev.jwsl.it;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;

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
@ExtendWith(ServiceLogsOnFailure.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class WslIT {
    private static WslHarness h;
    private static Path base;

    @BeforeAll
    static void setUp() throws IOException {
        h = new WslHarness("jwsl-wsl-it", 300);
        base = h.base;
    }

    @AfterAll
    static void tearDown() throws Exception {
        wsl("", "--shutdown");
        h.killService();
        h.close();
    }

    private static ProcessBuilder builder(List<String> args) {
        return h.builder(args);
    }

    private static WslHarness.Result wsl(byte[] stdin, String... args) throws Exception {
        return h.wsl(stdin, args);
    }

    private static WslHarness.Result wsl(String stdin, String... args) throws Exception {
        return h.wsl(stdin, args);
    }

    private static void killService() throws Exception {
        h.killService();
    }

    @Test
    @Order(1)
    void exitCodesAndSignalDeathsComeBack() throws Exception {
        WslHarness.Result first = wsl("", "--", "sh", "-c", "echo booted");
        assertEquals(0, first.exit(), first.toString());
        assertEquals("booted\n", first.stdout());
        assertEquals(1, wsl("", "--", "false").exit());
        assertEquals(7, wsl("", "--", "sh", "-c", "exit 7").exit());
        assertEquals(137, wsl("", "--", "sh", "-c", "kill -9 $$").exit());
    }

    @Test
    @Order(2)
    void stdoutStderrAndArgumentsArriveIntact() throws Exception {
        WslHarness.Result r = wsl("", "--", "sh", "-c", "echo out; echo err >&2; printf '[%s]' \"$0\" \"$1\"", "a b", "");
        assertEquals("out\n[a b][]", r.stdout());
        assertEquals("err\n", r.stderr());
        WslHarness.Result cd = wsl("", "--cd", "/tmp", "-e", "pwd");
        assertEquals("/tmp\n", cd.stdout(), cd.toString());
        WslHarness.Result user = wsl("", "-u", "nosuchuser", "--", "true");
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
        WslHarness.Result r = wsl(data, "--", "sha256sum");
        assertEquals(0, r.exit(), r.toString());
        assertEquals(expected + "  -\n", r.stdout());
    }

    @Test
    @Order(4)
    void fiftyConcurrentCallsEachGetTheirOwnOutput() throws Exception {
        List<CompletableFuture<WslHarness.Result>> calls = new ArrayList<>();
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
            WslHarness.Result r = calls.get(i).get(300, TimeUnit.SECONDS);
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
        String command = "env " + env + h.root.resolve("bin/wsl") + " -- sh -c \"" + guest + "\"; echo EXIT=$? > " + log
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
        WslHarness.Result r = wsl("", "--", "echo", "still here");
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
        // One guest command waits for the file: a guest command is never retried, since a retry
        // would hide a crashed one (issue 14).
        WslHarness.Result r = wsl("", "--", "sh", "-c",
                "i=0; while [ ! -s /tmp/hup ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done; cat /tmp/hup");
        assertEquals(0, r.exit(), r.toString());
        assertEquals("hup\n", r.stdout(), r.toString());
    }

    @Test
    @Order(8)
    void noGuestProcessCrashedSoFar() throws Exception {
        h.assertNoGuestCrashes();
    }

    @Test
    @Order(9)
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
    @Order(10)
    void aCrashedServiceIsReplacedAndAnIdleVmStops() throws Exception {
        Files.writeString(base.resolve("wslconfig"), "[wsl2]\nvmIdleTimeout=2000\n");
        assertEquals(0, wsl("", "--", "true").exit());
        killService(); // takes the VM with it: the service is the VMM
        WslHarness.Result back = wsl("", "--", "echo", "back");
        assertEquals("back\n", back.stdout(), back.toString());
        long deadline = System.currentTimeMillis() + 60_000;
        String status;
        do {
            Thread.sleep(500);
            status = wsl("", "--status").stdout();
        } while (!status.contains("VM: stopped") && System.currentTimeMillis() < deadline);
        assertTrue(status.contains("VM: stopped"), "idle VM still up: " + status);
        WslHarness.Result again = wsl("", "--", "echo", "again");
        assertEquals("again\n", again.stdout(), again.toString());
    }
}
