package dev.jwsl.service;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.LongSupplier;

/**
 * Notices that the host slept. A VM's clocks stop with the host's {@code CLOCK_MONOTONIC}
 * during a suspend, so a guest comes back with its wall clock behind by the time slept (WSL
 * #10006, #8763). The host's {@code CLOCK_BOOTTIME} counts the sleep and {@code CLOCK_MONOTONIC}
 * does not: when their difference grows, the host slept that long. Polled, because it needs
 * nothing from the host (no logind, no D-Bus) and costs one small file read per look.
 */
final class HostSleepWatch {
    /** A smaller jump is noise: the two clocks are read one after the other, /proc/uptime in 10 ms. */
    static final long MIN_SLEEP_NANOS = 1_000_000_000L;

    /** What {@link #hostSleptNanos} reads when it cannot read the clocks. */
    static final long UNKNOWN = Long.MIN_VALUE;

    private final LongSupplier sleptNanos;
    private long last;

    /** {@code sleptNanos}: how long the host has slept since it booted, from any fixed origin. */
    HostSleepWatch(LongSupplier sleptNanos) {
        this.sleptNanos = sleptNanos;
        this.last = sleptNanos.getAsLong();
    }

    /** How long the host slept since the last look, or {@link Duration#ZERO} if it did not. */
    synchronized Duration check() {
        long now = sleptNanos.getAsLong();
        if (now == UNKNOWN || last == UNKNOWN) {
            last = now;
            return Duration.ZERO;
        }
        long delta = now - last;
        if (delta < MIN_SLEEP_NANOS) {
            // Drift between the clocks' readings, either way: keep the larger origin, so noise
            // never adds up to a jump.
            last = Math.max(last, now);
            return Duration.ZERO;
        }
        last = now;
        return Duration.ofNanos(delta);
    }

    /**
     * The host's sleep so far: {@code CLOCK_BOOTTIME} ({@code /proc/uptime}) minus
     * {@code CLOCK_MONOTONIC} ({@link System#nanoTime()}), plus the seconds in {@code extraFile}
     * if one is given: tests cannot suspend the host, so they move this reading instead and
     * let everything after it run as it does after a real resume.
     */
    static LongSupplier hostSleptNanos(Path extraFile) {
        return () -> {
            try {
                String uptime = Files.readString(Path.of("/proc/uptime"));
                long boottime = (long) (Double.parseDouble(uptime.substring(0, uptime.indexOf(' '))) * 1e9);
                long slept = boottime - System.nanoTime();
                if (extraFile != null && Files.exists(extraFile)) {
                    slept += (long) (Double.parseDouble(Files.readString(extraFile).strip()) * 1e9);
                }
                return slept;
            } catch (IOException | RuntimeException e) {
                return UNKNOWN; // no jump is seen across a reading that failed
            }
        };
    }
}
