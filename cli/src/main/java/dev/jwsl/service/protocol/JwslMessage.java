package dev.jwsl.service.protocol;

/**
 * Messages between the {@code wsl} client and the jwsl service, over the service's Unix socket.
 * Each frame is {@code u16 type, u16 flags (0), u32 payload length, u64 transaction id} and the
 * payload (little-endian; strings are u32 length + UTF-8). A request's response carries the
 * request's transaction id; each request type names its response type.
 */
public sealed interface JwslMessage {
    /** Transaction id echoed by the response. */
    long transactionId();

    /** Marker for client requests. */
    sealed interface Request extends JwslMessage {}

    /** Marker for service responses. */
    sealed interface Response extends JwslMessage {}

    /**
     * Boot the utility VM if needed and keep it up while this connection stays open (the
     * connection is the session's lease). Response: {@link VmReady} or {@link Error}.
     */
    record EnsureVm(long transactionId) implements Request {}

    /** Where the client reaches the guest's command relay. */
    record VmReady(long transactionId, String vsockSocket, int relayPort) implements Response {}

    /** Service and VM state. Response: {@link StatusReply}. */
    record Status(long transactionId) implements Request {}

    /**
     * @param vmState     "stopped", "starting" or "running"
     * @param sessions    open session leases
     * @param uptimeMs    VM uptime, 0 when stopped
     * @param idleTimeoutMs configured idle timeout
     * @param kernel      kernel image in use
     */
    record StatusReply(long transactionId, String vmState, int sessions, long uptimeMs, long idleTimeoutMs,
                       String kernel) implements Response {}

    /** Stop the VM now ({@code force}: without waiting for the guest). Response: {@link Done}. */
    record Shutdown(long transactionId, boolean force) implements Request {}

    /** A request without data to return succeeded. */
    record Done(long transactionId) implements Response {}

    /** A request failed; {@code message} is one line for the user. */
    record Error(long transactionId, String message) implements Response {}
}
