package dev.jwsl.protocol;

import java.util.List;

/**
 * Messages between the {@code wsl} client and the jwsl service, over the service's Unix socket.
 * Each frame is {@code u16 type, u16 flags (0), u32 payload length, u64 transaction id} and the
 * payload (little-endian; strings are u32 length + UTF-8). A request's response carries the
 * request's transaction id; each request type names its response type. Long operations send
 * any number of {@link Progress} frames before their final response.
 */
public sealed interface JwslMessage {
    /** Transaction id echoed by the response. */
    long transactionId();

    /** Marker for client requests. */
    sealed interface Request extends JwslMessage {}

    /** Marker for service responses. */
    sealed interface Response extends JwslMessage {}

    /**
     * Boot the utility VM if needed, start {@code distro} in it ("" = the default distro; the
     * utility VM itself when none is registered or {@code system} is set), and keep both up while
     * this connection stays open (the connection is the session's lease). Response:
     * {@link VmReady} or {@link Error}.
     */
    record EnsureVm(long transactionId, String distro, boolean system) implements Request {}

    /**
     * Where the client reaches the guest's command relay, and what to run in.
     *
     * @param distro      the distro to name in CREATE ("" = the utility VM)
     * @param defaultUser the user to run as when the client names none ("" = root)
     */
    record VmReady(long transactionId, String vsockSocket, int relayPort, String distro, String defaultUser)
            implements Response {}

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

    /** The registered distros. Response: {@link DistroList}. */
    record ListDistros(long transactionId) implements Request {}

    /** One line of {@code wsl --list --verbose}. */
    record DistroInfo(String name, String state, int version, boolean isDefault) {}

    record DistroList(long transactionId, List<DistroInfo> distros) implements Response {}

    /**
     * Import {@code archive} (a host path the service can read: tar, tar.gz or tar.xz) as
     * {@code name}, its disk in {@code installDir}, at most {@code diskBytes} big (0 = the
     * configured default). Response: {@link Progress}..., then {@link Done} or {@link Error}.
     */
    record Import(long transactionId, String name, String installDir, String archive, long diskBytes)
            implements Request {}

    /**
     * Follow the running import of {@code name}: its progress, then how it ended. Response:
     * {@link Progress}..., then {@link Done} (imported) or {@link Error} (failed or cancelled).
     */
    record FollowImport(long transactionId, String name) implements Request {}

    /** Register an existing ext4 image as {@code name}. Response: {@link Done} or {@link Error}. */
    record ImportInPlace(long transactionId, String name, String image) implements Request {}

    /**
     * Write {@code name}'s root file system to {@code output} as {@code format} ("tar", "tar.gz",
     * "tar.xz"). Response: {@link Progress}..., then {@link Done} or {@link Error}.
     */
    record Export(long transactionId, String name, String output, String format) implements Request {}

    /** Stop {@code name} if running, delete its disk and forget it. Response: {@link Done}. */
    record Unregister(long transactionId, String name) implements Request {}

    /** Response: {@link Done}. */
    record SetDefault(long transactionId, String name) implements Request {}

    /** Stop {@code name} (the VM stays up for the others). Response: {@link Done}. */
    record Terminate(long transactionId, String name) implements Request {}

    /**
     * Change a distro's settings: {@code resizeBytes} &gt; 0 resizes its disk, a non-empty
     * {@code defaultUser} sets its default user. Response: {@link Done}.
     */
    record Manage(long transactionId, String name, long resizeBytes, String defaultUser) implements Request {}

    /** A long operation's progress: {@code done} of {@code total} bytes in {@code phase}. */
    record Progress(long transactionId, String phase, long done, long total) implements Response {}

    /** A request without data to return succeeded. */
    record Done(long transactionId) implements Response {}

    /** A request failed; {@code message} is one line for the user. */
    record Error(long transactionId, String message) implements Response {}
}
