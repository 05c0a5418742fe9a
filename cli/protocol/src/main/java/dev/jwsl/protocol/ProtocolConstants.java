package dev.jwsl.protocol;

/** Frame layout and message type numbers of the service protocol. */
public final class ProtocolConstants {
    public static final int HEADER_SIZE = 16;
    /** Larger frames are a protocol error: the connection is closed. */
    public static final int MAX_PAYLOAD = 64 * 1024;

    public static final int ENSURE_VM = 1;
    public static final int VM_READY = 2;
    public static final int STATUS = 3;
    public static final int STATUS_REPLY = 4;
    public static final int SHUTDOWN = 5;
    public static final int DONE = 6;
    public static final int ERROR = 7;
    public static final int LIST_DISTROS = 8;
    public static final int DISTRO_LIST = 9;
    public static final int IMPORT = 10;
    public static final int IMPORT_IN_PLACE = 11;
    public static final int EXPORT = 12;
    public static final int UNREGISTER = 13;
    public static final int SET_DEFAULT = 14;
    public static final int TERMINATE = 15;
    public static final int MANAGE = 16;
    public static final int PROGRESS = 17;
    public static final int FOLLOW_IMPORT = 18;

    private ProtocolConstants() {}
}
