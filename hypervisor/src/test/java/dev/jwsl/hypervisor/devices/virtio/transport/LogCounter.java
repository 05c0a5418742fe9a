package dev.jwsl.hypervisor.devices.virtio.transport;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Takes over jwsl's log while a fuzzer runs: a million stack traces on the console would be most
 * of the run time, and what matters is which failures the fuzzer reached, and how often.
 */
final class LogCounter extends Handler implements AutoCloseable {
    /** Held: java.util.logging keeps loggers only weakly, and would forget the settings. */
    private final Logger logger = Logger.getLogger("dev.jwsl");
    private final Map<String, LongAdder> counts = new ConcurrentHashMap<>();
    private final boolean parentHandlers;

    LogCounter() {
        parentHandlers = logger.getUseParentHandlers();
        logger.setUseParentHandlers(false);
        logger.addHandler(this);
    }

    @Override
    public void publish(LogRecord r) {
        if (r.getLevel().intValue() < Level.WARNING.intValue()) {
            return;
        }
        Throwable t = r.getThrown();
        String what = String.valueOf(t != null ? t.getMessage() : r.getMessage());
        // numbers differ from one occurrence to the next: count the kind of message, not each one
        String kind = what.replaceAll("0x[0-9a-fA-F]+|-?\\d+", "#");
        counts.computeIfAbsent(kind.substring(0, Math.min(kind.length(), 100)), k -> new LongAdder()).increment();
    }

    /** Warning and error messages by kind, with how many times each came. */
    Map<String, Long> counts() {
        Map<String, Long> out = new TreeMap<>();
        counts.forEach((k, v) -> out.put(k, v.sum()));
        return out;
    }

    @Override
    public void flush() {
    }

    @Override
    public void close() {
        logger.removeHandler(this);
        logger.setUseParentHandlers(parentHandlers);
    }
}
