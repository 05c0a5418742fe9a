package dev.jwsl.protocol;

/** A frame that is not a valid jwsl service message. */
public final class ProtocolException extends RuntimeException {
    public ProtocolException(String message) {
        super(message);
    }
}
