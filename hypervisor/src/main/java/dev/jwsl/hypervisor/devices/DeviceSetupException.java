package dev.jwsl.hypervisor.devices;

/** A device's host side could not be set up (a share that cannot be served, no network stack). */
public final class DeviceSetupException extends RuntimeException {
    public DeviceSetupException(String message, Throwable cause) {
        super(message, cause);
    }
}
