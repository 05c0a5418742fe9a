package dev.jwsl.hypervisor.devices;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Dispatches MMIO exits (guest accesses to physical addresses with no RAM slot) to devices by
 * address range. Unclaimed reads see all ones and unclaimed writes are dropped, like an
 * unterminated PC bus. Registration happens before the vCPUs start; dispatch is lock-free.
 */
public final class MmioBus {
    private record Range(long base, long length, MmioDevice device) {}

    private final List<Range> ranges = new CopyOnWriteArrayList<>();

    /** Claims {@code base .. base+length-1} for {@code device}. */
    public void register(long base, long length, MmioDevice device) {
        for (Range r : ranges) {
            if (base < r.base + r.length && r.base < base + length) {
                throw new IllegalArgumentException("MMIO 0x%x+0x%x overlaps 0x%x+0x%x".formatted(base, length, r.base, r.length));
            }
        }
        ranges.add(new Range(base, length, device));
    }

    /** Handles one MMIO exit of {@code data.byteSize()} bytes at {@code address}. */
    public void handle(boolean write, long address, MemorySegment data) {
        for (Range r : ranges) {
            long offset = address - r.base;
            if (offset >= 0 && offset < r.length && data.byteSize() <= r.length - offset) {
                if (write) {
                    r.device.write(offset, data);
                } else {
                    r.device.read(offset, data);
                }
                return;
            }
        }
        if (!write) {
            data.fill((byte) 0xff);
        }
    }
}
