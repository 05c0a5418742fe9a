package dev.jwsl.hypervisor.devices;

import java.lang.foreign.MemorySegment;

/** A device on the MMIO bus. Offsets are relative to the device's base address. */
public interface MmioDevice {
    /** A guest load of {@code data.byteSize()} bytes (1, 2, 4 or 8): fill {@code data}. */
    void read(long offset, MemorySegment data);

    /** A guest store of {@code data.byteSize()} bytes. */
    void write(long offset, MemorySegment data);
}
