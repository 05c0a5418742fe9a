package dev.jwsl.protocol.relay;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * What to run: the CREATE frame's payload (guest-init/protocol/relay_protocol.h).
 *
 * @param tty   give the process a pseudo-terminal of {@code rows} x {@code cols}
 * @param user  guest user name ("" = root)
 * @param cwd   working directory ("" = the user's home)
 * @param distro the distro to run in ("" = the utility VM itself)
 * @param argv  command (empty = the user's login shell)
 * @param env   "K=V" entries
 */
public record CreateRequest(boolean tty, int rows, int cols, String user, String cwd, String distro, List<String> argv,
                            List<String> env) {
    byte[] encode() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer head = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        if (argv.size() > 0xffff) {
            throw new IllegalArgumentException("too many arguments");
        }
        head.putShort((short) (tty ? 1 : 0)).putShort((short) rows).putShort((short) cols).putShort((short) argv.size());
        out.writeBytes(head.array());
        string(out, user);
        string(out, cwd);
        string(out, distro);
        for (String a : argv) {
            string(out, a);
        }
        for (String e : env) {
            string(out, e);
        }
        byte[] payload = out.toByteArray();
        if (payload.length > RelayConstants.MAX_PAYLOAD) {
            throw new IllegalArgumentException("command and environment exceed " + RelayConstants.MAX_PAYLOAD + " bytes");
        }
        return payload;
    }

    private static void string(ByteArrayOutputStream out, String s) {
        if (s.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("arguments and environment cannot contain NUL bytes");
        }
        out.writeBytes(s.getBytes(StandardCharsets.UTF_8));
        out.write(0);
    }
}
