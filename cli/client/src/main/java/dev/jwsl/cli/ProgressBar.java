package dev.jwsl.cli;

import dev.jwsl.protocol.JwslMessage;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * A one-line progress bar on stderr for imports and exports: phase, bar, percentage, bytes and
 * rate. Drawn only when stderr is a terminal, so scripts get clean output.
 */
final class ProgressBar implements Consumer<JwslMessage.Progress>, AutoCloseable {
    private static final int WIDTH = 30;

    private final PrintStream out;
    private final String what;
    private final boolean enabled;
    private String phase = "";
    private long phaseStartNs;
    private boolean drawn;

    ProgressBar(String what) {
        this(System.err, what, System.console() != null && System.console().isTerminal());
    }

    ProgressBar(PrintStream out, String what, boolean enabled) {
        this.out = out;
        this.what = what;
        this.enabled = enabled;
    }

    @Override
    public void accept(JwslMessage.Progress p) {
        if (!enabled) {
            return;
        }
        long now = System.nanoTime();
        if (!p.phase().equals(phase)) {
            phase = p.phase();
            phaseStartNs = now;
        }
        out.print("\r" + line(what, p, (now - phaseStartNs) / 1e9) + "\033[K");
        out.flush();
        drawn = true;
    }

    static String line(String what, JwslMessage.Progress p, double seconds) {
        double frac = p.total() > 0 ? Math.min(1.0, (double) p.done() / p.total()) : 0;
        int filled = (int) Math.round(frac * WIDTH);
        String bar = "#".repeat(filled) + "-".repeat(WIDTH - filled);
        double rate = seconds > 0.05 ? p.done() / seconds : 0;
        return String.format(Locale.ROOT, "%s: %-9s [%s] %3d%%  %s / %s  %s/s", what, p.phase(), bar,
                (int) (frac * 100), bytes(p.done()), bytes(p.total()), bytes((long) rate));
    }

    static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String units = "KMGTPE";
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length() - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %siB", v, units.charAt(u));
    }

    @Override
    public void close() {
        if (drawn) {
            out.println();
        }
    }
}
