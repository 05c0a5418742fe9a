package dev.jwsl.it;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Instant start through the service (issue 19): the first boot of the utility VM writes a
 * snapshot, every later start restores it, and a restored VM is a whole one: its clock is the
 * host's, its random numbers its own, and a distro imports and runs in it, reads and writes a
 * host share and serves a forwarded port. After the host slept, the running guest's clock is
 * stepped to the host's.
 */
@ExtendWith(ServiceLogsOnFailure.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class InstantStartIT {
    private static WslHarness h;
    private static Path work;

    @BeforeAll
    static void setUp() throws Exception {
        h = new WslHarness("jwsl-instant-it", 900);
        Files.writeString(h.base.resolve("wslconfig"), "[wsl2]\nvmIdleTimeout=600000\ndefaultVhdSize=256MB\n");
        work = Files.createDirectories(h.base.resolve("work"));
    }

    @AfterAll
    static void tearDown() throws Exception {
        try {
            h.assertNoGuestCrashes();
        } finally {
            h.wsl("", "--shutdown", "--force");
            h.killService();
            h.close();
        }
    }

    private static WslHarness.Result ok(WslHarness.Result r) {
        assertEquals(0, r.exit(), r.toString());
        return r;
    }

    private static String log() throws IOException {
        return Files.readString(h.base.resolve("state/jwsl/service.log"));
    }

    private static long count(String text, String part) {
        return text.lines().filter(l -> l.contains(part)).count();
    }

    /** The system shell's stdout after a {@code --shutdown}: the next call starts the VM again. */
    private static String afterRestart(String script) throws Exception {
        ok(h.wsl("", "--shutdown"));
        return ok(h.wsl("", "--system", "--", "sh", "-c", script)).stdout();
    }

    @Test
    @Order(1)
    void theFirstBootWritesASnapshotAndTheNextStartsRestoreIt() throws Exception {
        ok(h.wsl("", "--system", "--", "true"));
        assertEquals(1, count(log(), "snapshot written to"), log());
        Thread.sleep(5000); // a restored clock that was not stepped would be 5 s behind, or more
        ok(h.wsl("", "--shutdown"));
        double before = System.currentTimeMillis() / 1000.0;
        String first = ok(h.wsl("", "--system", "--", "sh", "-c", "cat /proc/sys/kernel/random/uuid; date +%s")).stdout();
        double after = System.currentTimeMillis() / 1000.0;
        String second = afterRestart("cat /proc/sys/kernel/random/uuid");
        assertEquals(2, count(log(), "restored the utility VM"), log());
        assertEquals(1, count(log(), "snapshot written to"), "restores write no snapshot");
        String[] lines = first.strip().split("\n");
        long guest = Long.parseLong(lines[1]); // busybox date: whole seconds
        assertTrue(guest >= Math.floor(before) - 1 && guest <= after + 1, "guest clock " + guest + ", host " + before + ".." + after);
        assertNotEquals(lines[0], second.strip(), "two restores share their random numbers");
    }

    @Test
    @Order(2)
    void aDistroImportsAndRunsInARestoredVmWithItsShareAndItsForwardedPort() throws Exception {
        Path rootfs = h.base.resolve("rootfs");
        DistroIT.buildRootfs(rootfs);
        DistroIT.sh("""
                set -e
                r=%s
                for a in httpd killall; do ln -s busybox $r/bin/$a; done
                mkdir -p $r/srv/www && echo 'served after a restore' > $r/srv/www/index.html
                tar --numeric-owner -C $r -czf %s .
                """.formatted(rootfs, h.base.resolve("rootfs.tar.gz")));
        ok(h.wsl("", "--shutdown"));
        ok(h.wsl("", "--import", "inst", h.base.resolve("inst").toString(), h.base.resolve("rootfs.tar.gz").toString()));
        assertEquals(3, count(log(), "restored the utility VM"), log());
        assertEquals("alice\n", ok(h.wsl("", "--", "id", "-un")).stdout());

        Files.writeString(work.resolve("from-host"), "host wrote this\n");
        String guestWork = "/mnt/host" + work;
        assertEquals("host wrote this\n", ok(h.wsl("", "--", "cat", guestWork + "/from-host")).stdout());
        ok(h.wsl("", "-u", "root", "--", "sh", "-c", "echo guest wrote this > " + guestWork + "/from-guest"));
        assertEquals("guest wrote this\n", Files.readString(work.resolve("from-guest")));

        int port = 18090;
        ok(h.wsl("", "-u", "root", "--", "httpd", "-p", Integer.toString(port), "-h", "/srv/www"));
        assertEquals("served after a restore\n", getWhenUp(port));
        ok(h.wsl("", "-u", "root", "--", "killall", "httpd"));
    }

    @Test
    @Order(3)
    void afterTheHostSleptTheGuestClockIsSteppedToTheHostsAndMonotonicTimeGoesOn() throws Exception {
        // What a host suspend leaves behind: the guest's wall clock 30 s behind the host's.
        String behind = ok(h.wsl("", "--system", "--", "sh", "-c",
                "date -s @$(( $(date +%s) - 30 )) >/dev/null; date +%s; cut -d' ' -f1 /proc/uptime")).stdout();
        long now = System.currentTimeMillis() / 1000;
        String[] b = behind.strip().split("\n");
        assertTrue(Long.parseLong(b[0]) <= now - 28, "the guest clock was not set back: " + b[0] + ", host " + now);

        // The service's watch then sees the host's CLOCK_BOOTTIME 30 s ahead of CLOCK_MONOTONIC.
        Files.writeString(h.hostSleepFile(), "30\n");
        long deadline = System.nanoTime() + 300_000_000_000L;
        while (count(log(), "guest clock stepped to the host's") == 0) {
            assertEquals(0, count(log(), "cannot step the guest clock"), log());
            assertTrue(System.nanoTime() < deadline, "no clock step within 300 s of the host's sleep\n" + log());
            Thread.sleep(200);
        }
        assertEquals(1, count(log(), "the host slept "), log());

        double before = System.currentTimeMillis() / 1000.0;
        String after = ok(h.wsl("", "--system", "--", "sh", "-c", "date +%s; cut -d' ' -f1 /proc/uptime")).stdout();
        double done = System.currentTimeMillis() / 1000.0;
        String[] a = after.strip().split("\n");
        long guest = Long.parseLong(a[0]); // whole seconds
        assertTrue(guest >= Math.floor(before) - 1 && guest <= done + 1, "guest clock " + guest + ", host " + before + ".." + done);
        // The guest never sleeps, so its uptime is its CLOCK_MONOTONIC too.
        assertTrue(Double.parseDouble(a[1]) > Double.parseDouble(b[1]), "guest uptime went from " + b[1] + " to " + a[1]);
    }

    private static String getWhenUp(int port) throws Exception {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (true) {
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
                s.setSoTimeout(60_000);
                s.getOutputStream().write("GET / HTTP/1.0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
                String reply = new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                return reply.substring(reply.indexOf("\r\n\r\n") + 4);
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(50);
            }
        }
    }
}
