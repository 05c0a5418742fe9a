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
    /** Receive buffer the device holds per connection, advertised as buf_alloc. */
    static final int CONN_BUF_SIZE = 256 << 10;
    /** Send CREDIT_UPDATE once the guest believes less than this much of our buffer is free. */
    static final int CREDIT_UPDATE_THRESHOLD = 64 << 10;
    /** Most open connections per device; more are refused with RST (bounds host threads and sockets). */
    static final int MAX_CONNECTIONS = 1024;
    /** First local port for host-initiated connections (Firecracker uses 1 << 30 too). */
    static final int FIRST_HOST_PORT = 1 << 30;

    private VsockConstants() {}
}
