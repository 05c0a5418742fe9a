package dev.jwsl.service;

import dev.jwsl.service.protocol.JwslMessage;

/** What the service offers its clients (the IDL); {@link ServiceHandler} maps messages onto it. */
public interface JwslService {
    /** A session's hold on the running VM: the VM stays up while any lease is open. */
    interface Lease extends AutoCloseable {
        JwslMessage.VmReady ready();

        @Override
        void close();
    }

    /** Boots the utility VM if it is not running and takes a lease on it. */
    Lease ensureVm(long transactionId) throws InterruptedException;

    /** Current state. */
    JwslMessage.StatusReply status(long transactionId);

    /** Stops the VM; open sessions end. */
    void shutdown(boolean force);
}
