package dev.jwsl.cli;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class WslClientTest {
    @Test
    void shellModeQuotesEachArgumentExecModePassesThem() {
        assertEquals(List.of("/bin/sh", "-c", "'sh' '-c' 'echo $0' '7'"),
                WslClient.argv(List.of("sh", "-c", "echo $0", "7"), false));
        assertEquals(List.of("/bin/sh", "-c", "'it'\\''s'"), WslClient.argv(List.of("it's"), false));
        assertEquals(List.of("sh", "-c", "echo $0"), WslClient.argv(List.of("sh", "-c", "echo $0"), true));
        assertEquals(List.of(), WslClient.argv(List.of(), false));
    }
}
