package dev.jwsl.service;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HostSleepWatchTest {
    @Test
    void theRealClocksShowNoSleepAndTheTestFileCountsAsOne(@TempDir Path dir) throws Exception {
        Path extra = dir.resolve("slept");
        HostSleepWatch watch = new HostSleepWatch(HostSleepWatch.hostSleptNanos(extra));
        assertEquals(Duration.ZERO, watch.check());
        Thread.sleep(50);
        assertEquals(Duration.ZERO, watch.check());
        Files.writeString(extra, "30\n");
        Duration slept = watch.check();
        assertTrue(Math.abs(slept.toMillis() - 30_000) < 100, "slept " + slept);
        assertEquals(Duration.ZERO, watch.check(), "a sleep is seen once");
    }

    @Test
    void jitterNeverAddsUpToASleep() {
        AtomicLong slept = new AtomicLong(5_000_000_000L);
        HostSleepWatch watch = new HostSleepWatch(slept::get);
        for (int i = 0; i < 100; i++) {
            slept.addAndGet(i % 2 == 0 ? 30_000_000L : -20_000_000L);
            assertEquals(Duration.ZERO, watch.check());
        }
        // Highest reading 5.52 s (the last +30 ms), now 5.50 s: a 2 s sleep counts from the highest.
        slept.addAndGet(2_000_000_000L);
        assertEquals(Duration.ofMillis(1_980), watch.check());
    }

    @Test
    void anUnreadableClockIsNoSleep() {
        AtomicLong slept = new AtomicLong(HostSleepWatch.UNKNOWN);
        HostSleepWatch watch = new HostSleepWatch(slept::get);
        slept.set(9_000_000_000L);
        assertEquals(Duration.ZERO, watch.check());
        slept.set(HostSleepWatch.UNKNOWN);
        assertEquals(Duration.ZERO, watch.check());
        slept.set(12_000_000_000L);
        assertEquals(Duration.ZERO, watch.check(), "a failed reading resets the origin");
        slept.set(14_000_000_000L);
        assertEquals(Duration.ofSeconds(2), watch.check());
    }
}
