package dev.jwsl.hypervisor.virtio;

import java.util.concurrent.TimeUnit;

/**
 * Warnings a guest can cause at will (a malformed ring, an illegal status write, a buffer that is
 * no request): logged at most once per {@link #INTERVAL_NS}, with a count of those left out, so
 * that a driver breaking and resetting its device in a loop cannot fill the host's log.
 */
public final class GuestWarnings {
    static final long INTERVAL_NS = TimeUnit.SECONDS.toNanos(10);

    private final System.Logger log;
    private boolean loggedOnce;
    private long lastNs;
    private long leftOut;

    public GuestWarnings(System.Logger log) {
        this.log = log;
    }

    /** Logs {@code message} (and {@code cause}, which may be null) unless one was logged lately. */
    public void warn(String message, Throwable cause) {
        long skipped;
        synchronized (this) {
            long now = System.nanoTime();
            if (loggedOnce && now - lastNs < INTERVAL_NS) {
                leftOut++;
                return;
            }
            loggedOnce = true;
            lastNs = now;
            skipped = leftOut;
            leftOut = 0;
        }
        log.log(System.Logger.Level.WARNING, skipped == 0 ? message : message + " (" + skipped + " warnings left out before this one)", cause);
    }
}
