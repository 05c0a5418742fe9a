package dev.jwsl.hypervisor.devices;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Dispatches port I/O exits to devices by port range. Unclaimed reads see all ones (a floating
 * ISA bus) and unclaimed writes are dropped, as on a PC.
 */
public final class IoBus {
    private record Range(int base, int length, PortIoDevice device) {}

    private final List<Range> ranges = new ArrayList<>();

    /** Claims ports {@code base .. base+length-1} for {@code device}. */
    public void register(int base, int length, PortIoDevice device) {
        for (Range r : ranges) {
            if (base < r.base + r.length && r.base < base + length) {
                throw new IllegalArgumentException("ports 0x%x+%d overlap 0x%x+%d".formatted(base, length, r.base, r.length));
            }
        }
        ranges.add(new Range(base, length, device));
    }

    private Range find(int port) {
        for (Range r : ranges) {
            if (port >= r.base && port < r.base + r.length) {
                return r;
            }
        }
        return null;
    }

    /**
     * Handles one I/O exit: {@code count} transfers of {@code size} bytes through {@code data}
     * (string I/O repeats on the same port).
     */
    public void handle(boolean in, int port, int size, int count, MemorySegment data) {
        Range r = find(port);
        for (int i = 0; i < count; i++) {
            long at = (long) i * size;
            if (in) {
                int v = r == null ? -1 : r.device.read(port - r.base, size);
                switch (size) {
                    case 1 -> data.set(ValueLayout.JAVA_BYTE, at, (byte) v);
                    case 2 -> data.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, (short) v);
                    default -> data.set(ValueLayout.JAVA_INT_UNALIGNED, at, v);
                }
            } else if (r != null) {
                int v = switch (size) {
                    case 1 -> Byte.toUnsignedInt(data.get(ValueLayout.JAVA_BYTE, at));
                    case 2 -> Short.toUnsignedInt(data.get(ValueLayout.JAVA_SHORT_UNALIGNED, at));
                    default -> data.get(ValueLayout.JAVA_INT_UNALIGNED, at);
                };
                r.device.write(port - r.base, size, v);
            }
        }
    }
}
