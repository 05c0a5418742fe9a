package dev.jwsl.protocol.relay;

/**
 * Where one relayed command's time goes (the client's {@code JWSL_TIMING} switch): a session tells
 * it each stage as the host reaches it, and the guest's own stages from the STARTED frame.
 */
@FunctionalInterface
public interface SessionTimer {
    /** Times nothing: the default. */
    SessionTimer NONE = stage -> { };

    /** The host reached {@code stage} now. */
    void mark(String stage);

    /**
     * The guest's stages, in microseconds since it accepted the connection, in the order
     * relay_protocol.h gives for STARTED ({@link RelayConstants#GUEST_STAGES}); a guest that sent
     * fewer leaves the rest out.
     */
    default void guestStages(long[] microsSinceAccept) { }
}
