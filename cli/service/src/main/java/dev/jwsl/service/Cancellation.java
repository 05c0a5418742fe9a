package dev.jwsl.service;

import java.util.ArrayList;
import java.util.List;

/**
 * A long request that can be called off: by its client going away (or Ctrl-C, which ends the
 * client), or by another client ({@code wsl --unregister NAME} of a distro being imported). The
 * work polls {@link #check} between steps and registers hooks that stop what it waits for (a
 * guest command). Cancelling happens once; the first reason stays.
 */
public final class Cancellation {
    /** Thrown by {@link #check}: the message is the reason, one line for the user. */
    public static final class CancelledException extends IllegalStateException {
        CancelledException(String reason) {
            super(reason);
        }
    }

    /** A hook's registration; closing it removes the hook. */
    public interface Registration extends AutoCloseable {
        @Override
        void close();
    }

    private final List<Runnable> hooks = new ArrayList<>();
    private String reason;

    /** Cancels with {@code why}, running the hooks on this thread; nothing if already cancelled. */
    public void cancel(String why) {
        List<Runnable> run;
        synchronized (this) {
            if (reason != null) {
                return;
            }
            reason = why;
            run = List.copyOf(hooks);
            hooks.clear();
        }
        run.forEach(Runnable::run);
    }

    public synchronized boolean cancelled() {
        return reason != null;
    }

    /** Why it was cancelled, or null. */
    public synchronized String reason() {
        return reason;
    }

    /** Throws {@link CancelledException} if cancelled. */
    public void check() {
        String r = reason();
        if (r != null) {
            throw new CancelledException(r);
        }
    }

    /** Runs {@code hook} when cancelled (at once if it is already) unless the registration is closed first. */
    public Registration onCancel(Runnable hook) {
        synchronized (this) {
            if (reason == null) {
                hooks.add(hook);
                return () -> {
                    synchronized (this) {
                        hooks.remove(hook);
                    }
                };
            }
        }
        hook.run();
        return () -> { };
    }
}
