package dev.jwsl.hypervisor.virtio;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.ResourceBundle;

import static org.junit.jupiter.api.Assertions.assertEquals;

class GuestWarningsTest {
    /** Keeps what is logged. */
    private static final class Recording implements System.Logger {
        final List<String> messages = new ArrayList<>();

        @Override public String getName() { return "test"; }
        @Override public boolean isLoggable(Level level) { return true; }

        @Override
        public void log(Level level, ResourceBundle bundle, String msg, Throwable thrown) {
            messages.add(msg);
        }

        @Override
        public void log(Level level, ResourceBundle bundle, String format, Object... params) {
            messages.add(format);
        }
    }

    /** A driver that breaks its device in a loop gets one line in the host's log, not one per break. */
    @Test
    void aBurstIsLoggedOnce() {
        Recording log = new Recording();
        GuestWarnings w = new GuestWarnings(log);
        for (int i = 0; i < 10_000; i++) {
            w.warn("needs reset " + i, new IllegalStateException());
        }
        assertEquals(List.of("needs reset 0"), log.messages);
    }
}
