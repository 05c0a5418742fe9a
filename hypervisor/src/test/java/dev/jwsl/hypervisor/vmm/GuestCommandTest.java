package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.devices.InitPort;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GuestCommandTest {
    /** The guest's C header is the other half of this protocol: the values must agree. */
    @Test
    void constantsMatchGuestInitProtocolHeader() throws IOException {
        Path header = Path.of(System.getProperty("jwsl.root", ".."), "guest-init", "protocol", "protocol.h");
        if (!Files.exists(header)) {
            header = Path.of("..", "guest-init", "protocol", "protocol.h");
        }
        String h = Files.readString(header);
        assertEquals("\"" + GuestCommand.CMD_PARAM + "\"", define(h, "JWSL_CMD_PARAM"));
        assertEquals("\"" + GuestCommand.STDIN_PARAM + "\"", define(h, "JWSL_STDIN_PARAM"));
        assertEquals("\"" + GuestCommand.TERM_PARAM + "\"", define(h, "JWSL_TERM_PARAM"));
        assertEquals("\"" + GuestCommand.WINSIZE_PARAM + "\"", define(h, "JWSL_WINSIZE_PARAM"));
        assertEquals("\"" + GuestCommand.MODE_PARAM + "\"", define(h, "JWSL_MODE_PARAM"));
        assertEquals("\"" + GuestCommand.MODE_RELAY + "\"", define(h, "JWSL_MODE_RELAY"));
        assertEquals(GuestCommand.ESCAPE, Integer.decode(define(h, "JWSL_INPUT_ESCAPE")));
        assertEquals(GuestCommand.EOF, Integer.decode(define(h, "JWSL_INPUT_EOF")));
        assertEquals(InitPort.PORT, Integer.decode(define(h, "JWSL_INIT_PORT")));
        assertEquals(InitPort.EXIT, Integer.decode(define(h, "JWSL_INIT_PORT_EXIT")));
        assertEquals(InitPort.READY, Integer.decode(define(h, "JWSL_INIT_PORT_READY")));
        assertEquals(InitPort.HOST_DATA, Integer.decode(define(h, "JWSL_INIT_PORT_HOST_DATA")));
        assertEquals(InitPort.HOST_DATA_SIZE, Integer.decode(define(h, "JWSL_HOST_DATA_SIZE")));
    }

    private static String define(String header, String name) {
        Matcher m = Pattern.compile("#define " + name + " (\\S+)").matcher(header);
        assertTrue(m.find(), name + " in protocol.h");
        return m.group(1);
    }

    @Test
    void argvSurvivesSpacesQuotesAndUnicode() {
        List<String> argv = List.of("/bin/sh", "-c", "echo \"a b\" 'c'; exit 7", "ünï");
        String param = GuestCommand.kernelParams(argv, false, null).getFirst();
        assertTrue(param.startsWith("jwsl_cmd="));
        String b64 = param.substring("jwsl_cmd=".length());
        assertTrue(b64.matches("[A-Za-z0-9_-]+"), "no characters the kernel's parser would split on");
        String decoded = new String(Base64.getUrlDecoder().decode(b64), StandardCharsets.UTF_8);
        assertEquals(String.join("\0", argv), decoded);
        assertThrows(IllegalArgumentException.class, () -> GuestCommand.kernelParams(List.of("a\0b"), false, null));
    }

    @Test
    void pipeInputFramingEscapesTheEscapeByte() {
        byte[] in = {1, (byte) 0xff, 0, (byte) 0xff};
        assertArrayEquals(new byte[] {1, (byte) 0xff, (byte) 0xff, 0, (byte) 0xff, (byte) 0xff},
                GuestCommand.frameInput(in, in.length));
        assertArrayEquals(new byte[] {(byte) 0xff, 0}, GuestCommand.endOfInput());
    }

    @Test
    void ttyModeCarriesASafeTermOnly() {
        assertEquals(List.of("jwsl_stdin=tty", "jwsl_term=xterm-256color"),
                GuestCommand.kernelParams(List.of(), true, "xterm-256color"));
        assertEquals(List.of("jwsl_stdin=tty"), GuestCommand.kernelParams(List.of(), true, "bad term; rm"));
        assertEquals(List.of("jwsl_stdin=tty", "jwsl_winsize=50x132"),
                GuestCommand.kernelParams(List.of(), true, null, 50, 132));
    }
}
