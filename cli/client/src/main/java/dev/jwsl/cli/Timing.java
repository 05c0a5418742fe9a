package dev.jwsl.cli;

import dev.jwsl.protocol.relay.RelayConstants;
import dev.jwsl.protocol.relay.SessionTimer;

import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code JWSL_TIMING} switch (off by default): when set, {@code wsl} prints where its time
 * went to stderr as it exits, one {@code wsl-timing: STAGE MS} line per stage, in milliseconds
 * since {@code bin/wsl} started ({@code JWSL_T0}, epoch microseconds, which bin/wsl exports), or
 * since the JVM's process started; then the guest's stages in milliseconds since it accepted the
 * relay connection ({@code wsl-timing: guest-STAGE MS}). {@code scripts/bench-exec} reads them.
 */
final class Timing implements SessionTimer {
    /** The switch's state for this process: null when off, so that nothing is measured. */
    private static final Timing ON = System.getenv("JWSL_TIMING") == null ? null : new Timing();

    private final long originNanos; // System.nanoTime() at the origin (bin/wsl's start)
    private final List<String> stages = new ArrayList<>();
    private final List<Long> at = new ArrayList<>();
    private long[] guest = new long[0];

    private Timing() {
        Instant now = Instant.now();
        long nanos = System.nanoTime();
        Instant origin = origin();
        originNanos = nanos - Duration.between(origin, now).toNanos();
        if (System.getenv("JWSL_T0") != null) {
            mark("bin-wsl", originNanos);
            Instant exec = epochMicros(System.getenv("JWSL_T1"));
            if (exec != null) {
                mark("java-exec", originNanos + Duration.between(origin, exec).toNanos());
            }
        }
        mark("jvm-main", nanos);
    }

    private static Instant origin() {
        Instant t0 = epochMicros(System.getenv("JWSL_T0"));
        return t0 != null ? t0 : ProcessHandle.current().info().startInstant().orElse(Instant.now());
    }

    private static Instant epochMicros(String s) {
        if (s == null || !s.matches("[0-9]{1,18}")) {
            return null;
        }
        long micros = Long.parseLong(s);
        return Instant.ofEpochSecond(micros / 1_000_000, (micros % 1_000_000) * 1000);
    }

    /** The timer that relayed sessions tell, or {@link SessionTimer#NONE} when timing is off. */
    static SessionTimer session() {
        return ON == null ? SessionTimer.NONE : ON;
    }

    /** Notes that this process reached {@code stage} now, when timing is on. */
    static void reached(String stage) {
        if (ON != null) {
            ON.mark(stage);
        }
    }

    /** Prints the stages to {@code err}, when timing is on. */
    static void report(PrintStream err) {
        if (ON != null) {
            ON.mark("exit");
            ON.print(err);
        }
    }

    @Override
    public synchronized void mark(String stage) {
        mark(stage, System.nanoTime());
    }

    private synchronized void mark(String stage, long nanos) {
        stages.add(stage);
        at.add(nanos);
    }

    @Override
    public synchronized void guestStages(long[] microsSinceAccept) {
        guest = microsSinceAccept.clone();
    }

    private synchronized void print(PrintStream err) {
        for (int i = 0; i < stages.size(); i++) {
            err.printf("wsl-timing: %-20s %9.1f%n", stages.get(i), (at.get(i) - originNanos) / 1e6);
        }
        for (int i = 0; i < guest.length; i++) {
            err.printf("wsl-timing: %-20s %9.1f%n", "guest-" + RelayConstants.GUEST_STAGES.get(i), guest[i] / 1e3);
        }
        err.flush();
    }
}
