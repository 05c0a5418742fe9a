package dev.jwsl.service;

import dev.jwsl.protocol.JwslMessage;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * What the service offers its clients (the IDL); {@link ServiceHandler} maps messages onto it.
 * Failures the user can act on are {@link IllegalArgumentException}, {@link IllegalStateException}
 * or {@link IOException} with a one-line message.
 */
public interface JwslService {
    /** A session's hold on the running VM and distro: both stay up while any lease is open. */
    interface Lease extends AutoCloseable {
        JwslMessage.VmReady ready();

        @Override
        void close();
    }

    /** Where a long operation reports how far it got. */
    @FunctionalInterface
    interface Progress {
        void report(String phase, long done, long total);
    }

    /**
     * Boots the utility VM if it is not running, starts {@code distro} ("" = the default; none
     * registered or {@code system}: the utility VM itself) and takes a lease on both.
     */
    Lease ensureVm(long transactionId, String distro, boolean system) throws InterruptedException, IOException;

    /** Current state. */
    JwslMessage.StatusReply status(long transactionId);

    /** Stops the VM; open sessions end. Without {@code force} the distros are stopped cleanly first. */
    void shutdown(boolean force);

    List<JwslMessage.DistroInfo> list();

    /**
     * Imports {@code archive} as {@code name}. Cancelling {@code client} (its connection closed)
     * cancels the import: nothing is registered and the install directory is left as it was.
     */
    void importDistro(String name, Path installDir, Path archive, long diskBytes, Progress progress,
                      Cancellation client) throws IOException, InterruptedException;

    /**
     * Reports the progress of the running import of {@code name} until it ends; throws its error
     * if it fails. Cancelling {@code client} stops following, not the import.
     */
    void followImport(String name, Progress progress, Cancellation client) throws InterruptedException;

    void importInPlace(String name, Path image) throws IOException;

    void export(String name, Path output, String format, Progress progress) throws IOException, InterruptedException;

    void unregister(String name) throws IOException, InterruptedException;

    void setDefault(String name) throws IOException;

    void terminate(String name) throws IOException, InterruptedException;

    void manage(String name, long resizeBytes, String defaultUser) throws IOException, InterruptedException;
}
