package dev.jwsl.hypervisor.devices;

/** A device on the x86 port I/O bus. Offsets are relative to the device's base port. */
public interface PortIoDevice {
    /** A guest IN of {@code size} (1, 2 or 4) bytes; returns the value (low bytes used). */
    int read(int offset, int size);

    /** A guest OUT of {@code size} bytes. */
    void write(int offset, int size, int value);
}
