package dev.jwsl.hypervisor.memory;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class MmapGuestMemoryTest {
    private static final long MIB = 1 << 20;

    @Test
    void readsBackWhatWasWrittenInEachRegion() {
        try (MmapGuestMemory m = MmapGuestMemory.create(List.of(new long[] {0, 2 * MIB}, new long[] {16 * MIB, MIB}))) {
            m.writeLong(0x1000, 0x1122334455667788L);
            m.writeInt(16 * MIB + 4, 0xcafebabe);
            m.write(2 * MIB - 3, new byte[] {1, 2, 3});
            assertEquals(0x1122334455667788L, m.readLong(0x1000));
            assertEquals((byte) 0x88, m.readByte(0x1000), "little-endian");
            assertEquals(0xcafebabe, m.readInt(16 * MIB + 4));
            assertArrayEquals(new byte[] {1, 2, 3}, m.read(2 * MIB - 3, 3));
            assertEquals(3 * MIB, m.size());
        }
    }

    @Test
    void rejectsEveryRangeNotInsideOneRegion() {
        try (MmapGuestMemory m = MmapGuestMemory.create(List.of(new long[] {0, 2 * MIB}, new long[] {4 * MIB, MIB}))) {
            long[][] bad = {
                {2 * MIB, 1},            // in the hole
                {2 * MIB - 4, 8},        // straddles the end of a region
                {5 * MIB, 1},            // past the end
                {-1, 1},                 // negative address
                {0, -1},                 // negative length
                {4 * MIB, Long.MAX_VALUE}, // length overflow
                {Long.MAX_VALUE, 2},     // address overflow
            };
            for (long[] r : bad) {
                GuestMemoryException e = assertThrows(GuestMemoryException.class, () -> m.slice(r[0], r[1]),
                        () -> "range 0x%x+0x%x".formatted(r[0], r[1]));
                assertEquals(GuestMemoryException.Reason.OUT_OF_RANGE, e.reason());
            }
            assertThrows(GuestMemoryException.class, () -> m.readLong(2 * MIB - 4));
            assertThrows(GuestMemoryException.class, () -> m.writeByte(3 * MIB, (byte) 1));
        }
    }

    @Test
    void rejectsUnalignedOrOverlappingRanges() {
        assertThrows(GuestMemoryException.class, () -> MmapGuestMemory.create(List.<long[]>of(new long[] {0, 100})));
        assertThrows(GuestMemoryException.class,
                () -> MmapGuestMemory.create(List.of(new long[] {0, 2 * MIB}, new long[] {MIB, MIB})));
    }
}
