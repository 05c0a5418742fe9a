package dev.jwsl.service;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class CancellationTest {
    @Test
    void hooksRunOnceWithTheFirstReason() {
        Cancellation c = new Cancellation();
        List<String> ran = new ArrayList<>();
        c.onCancel(() -> ran.add("a"));
        Cancellation.Registration b = c.onCancel(() -> ran.add("b"));
        b.close();
        c.check();
        c.cancel("the client went away");
        c.cancel("again");
        assertEquals(List.of("a"), ran);
        assertEquals("the client went away", c.reason());
        assertEquals("the client went away", assertThrows(Cancellation.CancelledException.class, c::check).getMessage());
        c.onCancel(() -> ran.add("late"));
        assertEquals(List.of("a", "late"), ran, "a hook registered after the cancel runs at once");
    }
}
