package dev.jwsl.hypervisor.devices.virtio.vsock;

/** Numbers from VIRTIO 1.2 5.10 and include/uapi/linux/virtio_vsock.h. */
final class VsockConstants {
    /** Device type "Socket device" (5, Table "Device Types"). */
    static final int DEVICE_TYPE = 19;
    /** Queues (5.10.2): receive (device to driver), transmit, event. */
    static final int RXQ = 0, TXQ = 1, EVQ = 2;
    static final int QUEUE_SIZE = 256;

    /** Well-known CIDs (5.10.4): the host is 2; guests start at 3. */
    static final long HOST_CID = 2;
    static final long DEFAULT_GUEST_CID = 3;

    /** {@code enum virtio_vsock_type} (5.10.6): only stream sockets. */
    static final int TYPE_STREAM = 1;

    /** {@code enum virtio_vsock_op} (5.10.6). */
    static final int OP_INVALID = 0, OP_REQUEST = 1, OP_RESPONSE = 2, OP_RST = 3, OP_SHUTDOWN = 4, OP_RW = 5,
            OP_CREDIT_UPDATE = 6, OP_CREDIT_REQUEST = 7;

    /** {@code enum virtio_vsock_shutdown} (5.10.6.5): the sender will receive / send no more. */
    static final int SHUTDOWN_RCV = 1, SHUTDOWN_SEND = 2;

    /** Largest payload accepted in one packet (Linux VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
    static final int MAX_PKT_PAYLOAD = 64 << 10;
    /** Receive buffer the device holds per connection, advertised as buf_alloc, while the pool lasts. */
    static final int CONN_BUF_SIZE = 256 << 10;
    /** Most bytes read from a host socket at once, for a connection with a full-size buffer. */
    static final int HOST_READ_SIZE = 64 << 10;
    /** The same two for a connection opened once the pool is used up: slower, and still correct. */
    static final int CONN_BUF_MIN = 8 << 10, HOST_READ_MIN = 4 << 10;
    /**
     * Heap for full-size connection buffers, across connections. What the device advertises it
     * must be able to hold (a guest may send all of it at once to a host that never reads), so
     * {@code BUFFER_POOL + MAX_CONNECTIONS * (CONN_BUF_MIN + HOST_READ_MIN)} (28 MiB), plus one
     * partly filled {@link #PACK_SIZE} chunk per connection (4 MiB), bounds the heap that
     * connection data can take.
     */
    static final long BUFFER_POOL = 16L << 20;
    /** Guest data in packets smaller than this is packed into chunks of this size (see {@link VsockConnection}). */
    static final int PACK_SIZE = 4 << 10;
    /**
     * Most open connections per device; more are refused with RST (bounds host threads and
     * sockets). A connection torn down with RST keeps its place until the guest has taken the RST.
     */
    static final int MAX_CONNECTIONS = 1024;
    /**
     * Most RSTs waiting for the guest that belong to no connection (replies to packets for
     * unknown ports); more are dropped and counted, as Firecracker's muxer drops past its RX
     * queue. A guest that keeps sending and posts no receive buffers gets no more than this.
     */
    static final int MAX_UNBOUND_RST = 256;
    /**
     * How long a host-initiated connection waits for the guest's RESPONSE while the guest runs but
     * uses no descriptor at all (Firecracker waits 2 s): long, because the host clients have no limit of
     * their own (a wall-clock limit in a client failed healthy calls when 100 `wsl` calls at once
     * starved each other on one CPU, issue 29), and it only holds the connection's place.
     */
    static final long CONNECT_TIMEOUT_MS = 30_000;
    /** How many {@link #CONNECT_TIMEOUT_MS} a busy or starved guest may take to answer a REQUEST (5 min). */
    static final int CONNECT_TIMEOUT_PERIODS = 10;
    /** First local port for host-initiated connections (Firecracker uses 1 << 30 too). */
    static final int FIRST_HOST_PORT = 1 << 30;

    private VsockConstants() {}
}
