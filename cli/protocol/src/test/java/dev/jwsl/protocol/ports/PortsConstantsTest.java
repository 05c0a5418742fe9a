package dev.jwsl.protocol.ports;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PortsConstantsTest {
    /** guest-init/protocol/ports_protocol.h is the definition; these must agree with it. */
    @Test
    void constantsMatchTheGuestHeader() throws IOException {
        Path header = Path.of(System.getProperty("jwsl.root", "../.."), "guest-init", "protocol", "ports_protocol.h");
        String h = Files.readString(header);
        Map<String, Integer> expected = Map.of(
                "PORT", PortsConstants.PORT, "REQUEST_SIZE", PortsConstants.REQUEST_SIZE,
                "WATCH", PortsConstants.WATCH, "CONNECT", PortsConstants.CONNECT,
                "EVENT_SIZE", PortsConstants.EVENT_SIZE, "LISTEN", PortsConstants.LISTEN,
                "CLOSED", PortsConstants.CLOSED, "POLL_MS", PortsConstants.POLL_MS,
                "MAX_RELAYS", PortsConstants.MAX_RELAYS);
        for (var e : expected.entrySet()) {
            Matcher m = Pattern.compile("#define JWSL_PORTS_" + e.getKey() + " (\\d+)").matcher(h);
            assertTrue(m.find(), e.getKey() + " in ports_protocol.h");
            assertEquals(e.getValue(), Integer.parseInt(m.group(1)), e.getKey());
        }
    }
}
