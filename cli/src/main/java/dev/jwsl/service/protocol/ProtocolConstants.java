package dev.jwsl.service.protocol;

/** Frame layout and message type numbers of the service protocol. */
final class ProtocolConstants {
    static final int HEADER_SIZE = 16;
    /** Larger frames are a protocol error: the connection is closed. */
    static final int MAX_PAYLOAD = 64 * 1024;

    static final int ENSURE_VM = 1;
    static final int VM_READY = 2;
    static final int STATUS = 3;
    static final int STATUS_REPLY = 4;
    static final int SHUTDOWN = 5;
    static final int DONE = 6;
    static final int ERROR = 7;
    static final int LIST_DISTROS = 8;
    static final int DISTRO_LIST = 9;
    static final int IMPORT = 10;
    static final int IMPORT_IN_PLACE = 11;
    static final int EXPORT = 12;
    static final int UNREGISTER = 13;
    static final int SET_DEFAULT = 14;
    static final int TERMINATE = 15;
    static final int MANAGE = 16;
    static final int PROGRESS = 17;

    private ProtocolConstants() {}
}
