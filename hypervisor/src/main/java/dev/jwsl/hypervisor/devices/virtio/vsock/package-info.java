/**
 * virtio-vsock (VIRTIO 1.2 5.10, device id 19) as a userspace "hybrid vsock", after Firecracker's
 * devices/virtio/vsock: the guest speaks AF_VSOCK stream sockets; the host end of each connection
 * is a Unix socket.
 *
 * <ul>
 *   <li>A guest connection to host port P (CID 2) connects to the Unix socket {@code <uds>_P}.</li>
 *   <li>A host client connects to {@code <uds>}, writes {@code CONNECT <port>\n} and, once the
 *       guest accepts, reads {@code OK <hostport>\n}; then the stream is relayed both ways.</li>
 * </ul>
 *
 * <p>Flow control (5.10.6.3): every packet carries the sender's {@code buf_alloc} and
 * {@code fwd_cnt}. The device never sends a connection more payload than the guest's credit
 * ({@code buf_alloc - (rx_cnt - fwd_cnt)}) and advertises only buffer space it really holds for
 * that connection, sending CREDIT_UPDATE when the guest's view of it runs low. That space comes
 * from a fixed pool: once it is used up, new connections are offered a small buffer, so that what
 * a guest may send to hosts that do not read stays within a bound of the heap. Threads: the
 * transport's notifier threads drive the queues; each connection has a reader and a writer virtual
 * thread for its Unix socket. All state is guarded by the device's monitor.
 */
package dev.jwsl.hypervisor.devices.virtio.vsock;
