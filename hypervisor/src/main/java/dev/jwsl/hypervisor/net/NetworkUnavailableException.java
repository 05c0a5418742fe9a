package dev.jwsl.hypervisor.net;

/** The user-mode network cannot start (libslirp missing or refusing the configuration); one-line message. */
public final class NetworkUnavailableException extends RuntimeException {
    public NetworkUnavailableException(String message) {
        super(message, null, false, false);
    }
}
