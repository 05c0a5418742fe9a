package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.snapshot.SnapshotFiles;
import dev.jwsl.hypervisor.testutil.SuiteBuild;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Instant start (issue 19) on the real kernel and init: a one-command VM boots and writes a
 * snapshot when init is ready; restores of it run the command again with the clock stepped to
 * the host's and the RNG reseeded; a damaged or foreign snapshot makes the VM boot, with one log
 * line, and write a fresh one. The tests share one snapshot directory and run in order.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SnapshotIT {
    /** uuid, 32 bytes of getrandom's pool, the wall clock, and how long a 1 s sleep took. */
    private static final String SCRIPT = "echo U:$(cat /proc/sys/kernel/random/uuid);"
            + " echo R:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'); echo T:$(date +%s);"
            + " s=$(cut -d' ' -f1 /proc/uptime | tr -d .); sleep 1; e=$(cut -d' ' -f1 /proc/uptime | tr -d .);"
            + " echo S:$(( (e - s) * 10 ))";

    @TempDir
    static Path dir;
    private static String firstUuid;
    private static String firstRandom;

    record Run(StopReason reason, boolean restored, List<String> lines, double hostBefore, double hostAfter,
               List<String> log) {
        String field(String name) {
            return lines.stream().filter(l -> l.startsWith(name + ":")).map(l -> l.substring(name.length() + 1))
                    .findFirst().orElseThrow(() -> new AssertionError("no " + name + ": line in " + lines));
        }

        String uuid() {
            return field("U");
        }

        String random() {
            return field("R");
        }

        double guestClock() {
            return Double.parseDouble(field("T"));
        }

        long sleptMs() {
            return Long.parseLong(field("S"));
        }
    }

    private static Run run(String script, boolean restore) {
        SuiteBuild build = SuiteBuild.require();
        String cmdline = KernelCmdline.build("", GuestCommand.kernelParams(List.of("/bin/sh", "-c", script), false, null));
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        VmConfig config = new VmConfig(build.kernel(), build.initrd(), cmdline, 256L << 20, 2, console)
                .withSnapshot(new VmConfig.Snapshot(dir, restore));
        List<String> log = new ArrayList<>();
        Handler handler = new Handler() {
            @Override
            public void publish(LogRecord r) {
                log.add(new java.util.logging.SimpleFormatter().formatMessage(r));
            }

            @Override public void flush() { }

            @Override public void close() { }
        };
        Logger builderLog = Logger.getLogger(VmBuilder.class.getName());
        Logger vmLog = Logger.getLogger(VirtualMachine.class.getName());
        builderLog.addHandler(handler);
        vmLog.addHandler(handler);
        double before = System.currentTimeMillis() / 1000.0;
        try (VirtualMachine vm = VirtualMachine.create(config)) {
            Thread.ofPlatform().daemon().start(() -> {
                try {
                    if (vm.awaitGuestReady()) {
                        byte[] eof = GuestCommand.endOfInput();
                        vm.console().receive(eof, 0, eof.length);
                    }
                } catch (InterruptedException ignored) {
                    // the VM is gone
                }
            });
            StopReason reason = vm.run();
            double after = System.currentTimeMillis() / 1000.0;
            String out = console.toString(StandardCharsets.UTF_8);
            System.out.println((vm.restored() ? "restored" : "booted") + ", console:\n" + out + "\nlog: " + log);
            List<String> lines = out.lines().map(String::strip).toList();
            return new Run(reason, vm.restored(), lines, before, after, List.copyOf(log));
        } finally {
            builderLog.removeHandler(handler);
            vmLog.removeHandler(handler);
        }
    }

    private static void assertRanWell(Run r) {
        assertEquals(new StopReason.GuestExit(0), r.reason(), r.lines().toString());
        assertEquals(64, r.random().length(), r.lines().toString());
        // busybox date has whole seconds
        assertTrue(r.guestClock() >= Math.floor(r.hostBefore()) - 1 && r.guestClock() <= r.hostAfter() + 1,
                "guest clock " + r.guestClock() + " outside the host's " + r.hostBefore() + ".." + r.hostAfter());
        assertTrue(r.sleptMs() >= 990 && r.sleptMs() < 10_000, "sleep 1 took " + r.sleptMs() + " ms of uptime");
    }

    @Test
    @Order(1)
    @Timeout(600)
    void aBootWritesTheSnapshotWhenInitIsReady() {
        Run boot = run(SCRIPT, false);
        assertFalse(boot.restored());
        assertRanWell(boot);
        assertTrue(boot.log().stream().anyMatch(l -> l.startsWith("snapshot written to")), boot.log().toString());
        assertTrue(Files.isRegularFile(dir.resolve(SnapshotFiles.STATE)));
        firstUuid = boot.uuid();
        firstRandom = boot.random();
    }

    @Test
    @Order(2)
    @Timeout(600)
    void twoRestoresRunTheCommandWithTheHostsClockAndTheirOwnRandomNumbers() throws Exception {
        Thread.sleep(3000); // without a clock step the restored guest would be 3 s behind
        Run one = run(SCRIPT, true);
        Run two = run(SCRIPT, true);
        for (Run r : List.of(one, two)) {
            assertTrue(r.restored(), r.log().toString());
            assertRanWell(r);
        }
        assertNotEquals(one.uuid(), two.uuid());
        assertNotEquals(one.random(), two.random());
        assertNotEquals(firstUuid, one.uuid());
        assertNotEquals(firstRandom, one.random());
    }

    @Test
    @Order(3)
    @Timeout(900)
    void aDamagedSnapshotBootsWithOneLogLineAndIsWrittenAfresh() throws Exception {
        Path state = dir.resolve(SnapshotFiles.STATE);
        byte[] bytes = Files.readAllBytes(state);
        bytes[bytes.length / 3] ^= 0x40;
        Files.write(state, bytes);
        Run flipped = run(SCRIPT, true);
        assertFalse(flipped.restored());
        assertRanWell(flipped);
        assertEquals(1, flipped.log().stream().filter(l -> l.startsWith("booting:")).count(), flipped.log().toString());
        assertTrue(run(SCRIPT, true).restored(), "the boot wrote a fresh snapshot");

        try (RandomAccessFile f = new RandomAccessFile(dir.resolve(SnapshotFiles.MEMORY).toFile(), "rw")) {
            f.setLength(f.length() / 2);
        }
        Run truncated = run(SCRIPT, true);
        assertFalse(truncated.restored());
        assertRanWell(truncated);
        assertEquals(1, truncated.log().stream().filter(l -> l.startsWith("booting:")).count(), truncated.log().toString());

        Run other = run(SCRIPT + "; true", true); // another command line: another key
        assertFalse(other.restored());
        assertEquals(1, other.log().stream().filter(l -> l.contains("another kernel, initramfs, jwsl or VM configuration"))
                .count(), other.log().toString());
    }
}
