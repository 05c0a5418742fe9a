package dev.jwsl.hypervisor.devices.virtio.block;

/** A disk image that cannot be attached; the message is one line for the user. */
public final class DiskException extends RuntimeException {
    public DiskException(String message) {
        super(message);
    }
}
