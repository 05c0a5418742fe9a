package dev.jwsl.protocol.ports;

/** guest-init/protocol/ports_protocol.h in Java; PortsConstantsTest checks that the values agree. */
public final class PortsConstants {
    public static final int PORT = 50001;
    public static final int REQUEST_SIZE = 4;
    public static final int WATCH = 1;
    public static final int CONNECT = 2;
    public static final int EVENT_SIZE = 4;
    public static final int LISTEN = 1;
    public static final int CLOSED = 2;
    public static final int POLL_MS = 200;
    public static final int MAX_RELAYS = 1024;

    private PortsConstants() {}
}
