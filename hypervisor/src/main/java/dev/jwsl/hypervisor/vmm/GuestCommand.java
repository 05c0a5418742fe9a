package dev.jwsl.hypervisor.vmm;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * How the VMM tells jwsl's guest init what to run, and the console stream framing between them.
 * The C side is guest-init/protocol/protocol.h; {@code GuestCommandTest} checks the two agree.
 *
 * <ul>
 *   <li>{@code jwsl_cmd=B64}: the command's argv, NUL-separated, base64url without padding
 *       (kernel parameters cannot carry spaces or quotes; unknown {@code key=value} parameters
 *       reach init as environment variables).</li>
 *   <li>{@code jwsl_stdin=pipe}: host stdin is not a terminal. The console is switched to raw
 *       mode and host input is framed: {@link #ESCAPE} {@link #ESCAPE} is a literal 0xff byte,
 *       {@link #ESCAPE} {@link #EOF} is end of input.</li>
 *   <li>{@code jwsl_stdin=tty}: the console is the command's controlling terminal; no framing.
 *       {@code jwsl_winsize=ROWSxCOLS} gives it the host terminal's size.</li>
 * </ul>
 */
public final class GuestCommand {
    public static final int ESCAPE = 0xff;
    public static final int EOF = 0x00;
    public static final String CMD_PARAM = "jwsl_cmd";
    public static final String STDIN_PARAM = "jwsl_stdin";
    public static final String TERM_PARAM = "jwsl_term";
    public static final String WINSIZE_PARAM = "jwsl_winsize";
    public static final String MODE_PARAM = "jwsl_mode";
    public static final String MODE_RELAY = "relay";

    private GuestCommand() {}

    /**
     * The kernel parameters of the utility VM: init serves the command relay
     * (guest-init/protocol/relay_protocol.h) on vsock instead of running one command.
     */
    public static List<String> relayModeParams() {
        return List.of(MODE_PARAM + "=" + MODE_RELAY);
    }

    /** The kernel parameters that make init run {@code argv} (empty: an interactive shell). */
    public static List<String> kernelParams(List<String> argv, boolean tty, String term) {
        return kernelParams(argv, tty, term, 0, 0);
    }

    /** As above, with the terminal size for a {@code tty} console (0: unknown). */
    public static List<String> kernelParams(List<String> argv, boolean tty, String term, int rows, int cols) {
        List<String> params = new ArrayList<>();
        if (!argv.isEmpty()) {
            params.add(CMD_PARAM + "=" + encodeArgv(argv));
        }
        params.add(STDIN_PARAM + "=" + (tty ? "tty" : "pipe"));
        if (tty && term != null && term.matches("[A-Za-z0-9._+-]{1,64}")) {
            params.add(TERM_PARAM + "=" + term);
        }
        if (tty && rows > 0 && cols > 0 && rows <= 0xffff && cols <= 0xffff) {
            params.add(WINSIZE_PARAM + "=" + rows + "x" + cols);
        }
        return params;
    }

    static String encodeArgv(List<String> argv) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int i = 0; i < argv.size(); i++) {
            if (argv.get(i).indexOf('\0') >= 0) {
                throw new IllegalArgumentException("command arguments cannot contain NUL bytes");
            }
            if (i > 0) {
                b.write(0);
            }
            b.writeBytes(argv.get(i).getBytes(StandardCharsets.UTF_8));
        }
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b.toByteArray());
    }

    /** Frames {@code length} bytes of host input for a {@code jwsl_stdin=pipe} console. */
    public static byte[] frameInput(byte[] buf, int length) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(length + 16);
        for (int i = 0; i < length; i++) {
            out.write(buf[i]);
            if ((buf[i] & 0xff) == ESCAPE) {
                out.write(ESCAPE);
            }
        }
        return out.toByteArray();
    }

    /** The end-of-input marker for a {@code jwsl_stdin=pipe} console. */
    public static byte[] endOfInput() {
        return new byte[] {(byte) ESCAPE, (byte) EOF};
    }
}
