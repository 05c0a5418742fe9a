package dev.jwsl.service.distro;

/** A rootfs archive that cannot be imported; the message is one line for the user. */
public final class ArchiveException extends RuntimeException {
    public ArchiveException(String message) {
        super(message);
    }
}
