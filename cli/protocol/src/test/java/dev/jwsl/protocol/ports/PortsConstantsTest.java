package dev.jwsl.protocol.ports;

import dev.jwsl.protocol.CHeader;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Map;

class PortsConstantsTest {
    /** guest-init/protocol/ports_protocol.h is the definition; these must agree with it. */
    @Test
    void constantsMatchTheCHeader() throws IOException {
        CHeader.read("ports_protocol.h").assertDefines("JWSL_PORTS_", Map.of(
                "PORT", PortsConstants.PORT, "REQUEST_SIZE", PortsConstants.REQUEST_SIZE,
                "WATCH", PortsConstants.WATCH, "CONNECT", PortsConstants.CONNECT,
                "EVENT_SIZE", PortsConstants.EVENT_SIZE, "LISTEN", PortsConstants.LISTEN,
                "CLOSED", PortsConstants.CLOSED, "POLL_MS", PortsConstants.POLL_MS,
                "MAX_RELAYS", PortsConstants.MAX_RELAYS));
    }
}
