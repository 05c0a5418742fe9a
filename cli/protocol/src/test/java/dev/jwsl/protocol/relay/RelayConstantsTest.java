package dev.jwsl.protocol.relay;

import dev.jwsl.protocol.CHeader;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RelayConstantsTest {
    /** guest-init/protocol/relay_protocol.h is the definition; these must agree with it. */
    @Test
    void constantsMatchTheCHeader() throws IOException {
        CHeader header = CHeader.read("relay_protocol.h");
        header.assertDefines("JWSL_RELAY_", Map.ofEntries(
                Map.entry("PORT", RelayConstants.PORT), Map.entry("HEADER_SIZE", RelayConstants.HEADER_SIZE),
                Map.entry("MAX_PAYLOAD", RelayConstants.MAX_PAYLOAD), Map.entry("CREATE", RelayConstants.CREATE),
                Map.entry("STDIN", RelayConstants.STDIN), Map.entry("STDIN_EOF", RelayConstants.STDIN_EOF),
                Map.entry("RESIZE", RelayConstants.RESIZE), Map.entry("SIGNAL", RelayConstants.SIGNAL),
                Map.entry("STARTED", RelayConstants.STARTED), Map.entry("ERROR", RelayConstants.ERROR),
                Map.entry("STDOUT", RelayConstants.STDOUT), Map.entry("STDERR", RelayConstants.STDERR),
                Map.entry("EXIT", RelayConstants.EXIT), Map.entry("STAGES", RelayConstants.GUEST_STAGES.size())));
        assertTrue(header.text().contains("#define JWSL_RELAY_HOST_CWD \"" + RelayConstants.HOST_CWD + "\""), "HOST_CWD");
    }

    @Test
    void createPayloadCountsArgumentsSoEmptyOnesSurvive() {
        byte[] p = new CreateRequest(true, 24, 80, "", "/tmp", "tiny", List.of("printf", "", "x"), List.of("TERM=xterm"))
                .encode();
        ByteBuffer b = ByteBuffer.wrap(p).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1, b.getShort());
        assertEquals(24, b.getShort());
        assertEquals(80, b.getShort());
        assertEquals(3, b.getShort());
        assertArrayEquals("\0/tmp\0tiny\0printf\0\0x\0TERM=xterm\0".getBytes(StandardCharsets.UTF_8),
                java.util.Arrays.copyOfRange(p, 8, p.length));
        assertThrows(IllegalArgumentException.class,
                () -> new CreateRequest(false, 0, 0, "", "", "", List.of("a\0b"), List.of()).encode());
    }
}
