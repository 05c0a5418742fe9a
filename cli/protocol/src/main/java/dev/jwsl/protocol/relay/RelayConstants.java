package dev.jwsl.protocol.relay;

/**
 * The command relay protocol with guest init; the definition is guest-init/protocol/relay_protocol.h and
 * {@code RelayConstantsTest} checks these values against it.
 */
public final class RelayConstants {
    public static final int PORT = 50000;
    public static final int HEADER_SIZE = 8;
    public static final int MAX_PAYLOAD = 65536;
    /** A CREATE cwd with this prefix is a host directory, mapped in the guest through the shares. */
    public static final String HOST_CWD = "host:";

    public static final int CREATE = 1;
    public static final int STDIN = 2;
    public static final int STDIN_EOF = 3;
    public static final int RESIZE = 4;
    public static final int SIGNAL = 5;

    public static final int STARTED = 16;
    /** What STARTED's microsecond values after the pid mark, in order (JWSL_RELAY_STAGES of them). */
    public static final java.util.List<String> GUEST_STAGES = java.util.List.of("forked", "create", "namespaces", "user",
            "exec");
    public static final int ERROR = 17;
    public static final int STDOUT = 18;
    public static final int STDERR = 19;
    public static final int EXIT = 20;

    private RelayConstants() {}
}
