package dev.jwsl.hypervisor.devices;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class MmioBusTest {
    @Test
    void dispatchesByRangeAndFloatsUnclaimedReadsHigh() {
        List<String> log = new ArrayList<>();
        MmioBus bus = new MmioBus();
        bus.register(0x1000, 0x100, new MmioDevice() {
            @Override
            public void read(long offset, MemorySegment data) {
                data.set(ValueLayout.JAVA_INT_UNALIGNED, 0, (int) offset);
            }

            @Override
            public void write(long offset, MemorySegment data) {
                log.add(offset + "=" + data.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
            }
        });
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment d = arena.allocate(4);
            bus.handle(false, 0x1010, d);
            assertEquals(0x10, d.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
            d.set(ValueLayout.JAVA_INT_UNALIGNED, 0, 7);
            bus.handle(true, 0x10fc, d);
            assertEquals(List.of("252=7"), log);
            bus.handle(false, 0x10fe, d); // straddles the end: unclaimed
            assertEquals(-1, d.get(ValueLayout.JAVA_INT_UNALIGNED, 0));
            bus.handle(true, 0x2000, d);
            assertEquals(1, log.size());
        }
        assertThrows(IllegalArgumentException.class, () -> bus.register(0x10ff, 1, null));
    }
}
