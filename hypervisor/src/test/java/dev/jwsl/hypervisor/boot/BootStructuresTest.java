package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.kvm.Segment;
import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Layout checks for the zero page, e820 map, GDT, page tables and MP table. */
class BootStructuresTest {
    private static final long MIB = 1 << 20;

    @Test
    void bootParamsFieldsSitAtTheirBootProtocolOffsets() {
        try (Arena arena = Arena.ofConfined()) {
            BootParams p = BootParams.allocate(arena);
            p.setLoader();
            p.setCmdline(0x20000, 100);
            p.setRamdisk(0x1_2345_6000L, 0x1_0000_0001L);
            MemorySegment s = p.segment();
            assertEquals(0xaa55, Short.toUnsignedInt(s.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 0x1fe)));
            assertEquals(0x53726448, s.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0x202)); // "HdrS"
            assertEquals((byte) 0xff, s.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0x210));       // type_of_loader
            assertEquals(0x20000, s.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0x228));   // cmd_line_ptr
            assertEquals(100, s.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0x238));       // cmdline_size
            assertEquals(0x2345_6000, s.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0x218)); // ramdisk_image
            assertEquals(1, s.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0x0c0));         // ext_ramdisk_image
            assertEquals(1, s.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0x21c));         // ramdisk_size
            assertEquals(1, s.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0x0c4));         // ext_ramdisk_size
            assertEquals(0x1_2345_6000L, p.ramdiskImage());
            assertEquals(0x1_0000_0001L, p.ramdiskSize());
            assertEquals(0x81, s.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0x211) & 0x81); // LOADED_HIGH|CAN_USE_HEAP
        }
    }

    @Test
    void e820CoversRamAndReservesTheMpTable() {
        try (MmapGuestMemory m = MmapGuestMemory.create(LinuxBoot.ramRanges(4096 * MIB));
             Arena arena = Arena.ofConfined()) {
            List<E820Entry> map = LinuxBoot.e820(m);
            assertEquals(List.of(
                    new E820Entry(0, 0x9fc00, E820Entry.RAM),
                    new E820Entry(0x9fc00, 0x400, E820Entry.RESERVED),
                    new E820Entry(0x100000, 0xd000_0000L - 0x100000, E820Entry.RAM),
                    new E820Entry(0x1_0000_0000L, 4096 * MIB - 0xd000_0000L, E820Entry.RAM)), map);
            BootParams p = BootParams.allocate(arena);
            p.setE820(map);
            assertEquals(4, p.e820Entries());
            for (int i = 0; i < map.size(); i++) {
                assertEquals(map.get(i), p.e820(i));
            }
            // 20-byte packed entries from 0x2d0
            assertEquals(0x1_0000_0000L, p.segment().get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, 0x2d0 + 3 * 20));
        }
    }

    @Test
    void ramBelowTheGapStaysInOneRegion() {
        List<long[]> r = LinuxBoot.ramRanges(512 * MIB);
        assertEquals(1, r.size());
        assertEquals(512 * MIB, r.getFirst()[1]);
    }

    @Test
    void tooManyE820EntriesAreRejected() {
        try (Arena arena = Arena.ofConfined()) {
            List<E820Entry> many = java.util.stream.IntStream.range(0, 129)
                    .mapToObj(i -> new E820Entry(i * 4096L, 4096, E820Entry.RAM)).toList();
            assertThrows(BootException.class, () -> BootParams.allocate(arena).setE820(many));
        }
    }

    @Test
    void gdtDescriptorsMatchTheBootProtocolSegments() {
        assertEquals(0x00af9b000000ffffL, Gdt.ENTRIES[Gdt.CODE_INDEX]);
        assertEquals(0x00cf93000000ffffL, Gdt.ENTRIES[Gdt.DATA_INDEX]);
        assertEquals(0x008f8b000000ffffL, Gdt.ENTRIES[Gdt.TSS_INDEX]);
        Segment cs = Gdt.segment(Gdt.CODE_INDEX);
        assertEquals(0x10, cs.selector());
        assertEquals(0xffffffff, cs.limit());
        assertEquals(11, cs.type());
        assertEquals(1, cs.l());
        assertEquals(0, cs.db());
        assertEquals(1, cs.present());
        Segment ds = Gdt.segment(Gdt.DATA_INDEX);
        assertEquals(0x18, ds.selector());
        assertEquals(3, ds.type());
        assertEquals(1, ds.db());
        assertEquals(0, ds.l());
        try (MmapGuestMemory m = MmapGuestMemory.create(List.<long[]>of(new long[] {0, MIB}))) {
            Gdt.write(m);
            assertEquals(Gdt.ENTRIES[Gdt.CODE_INDEX], m.readLong(Layout.GDT + 0x10));
        }
    }

    @Test
    void pageTablesIdentityMapTheFirstGibibyte() {
        try (MmapGuestMemory m = MmapGuestMemory.create(List.<long[]>of(new long[] {0, MIB}))) {
            PageTables.write(m);
            assertEquals(Layout.PDPT | 3, m.readLong(Layout.PML4));
            assertEquals(0, m.readLong(Layout.PML4 + 8));
            assertEquals(Layout.PD | 3, m.readLong(Layout.PDPT));
            assertEquals(0x83, m.readLong(Layout.PD));
            assertEquals(0x3fe0_0000L | 0x83, m.readLong(Layout.PD + 511 * 8));
        }
    }

    @Test
    void mpTableChecksumsAndEntriesAreValid() {
        try (MmapGuestMemory m = MmapGuestMemory.create(List.<long[]>of(new long[] {0, MIB}))) {
            MpTable.write(m, 3);
            byte[] floating = m.read(Layout.MPTABLE, 16);
            assertEquals("_MP_", new String(floating, 0, 4));
            assertEquals(0, sum(floating));
            long table = Integer.toUnsignedLong(m.readInt(Layout.MPTABLE + 4));
            int length = Short.toUnsignedInt(m.readShort(table + 4));
            byte[] t = m.read(table, length);
            assertEquals("PCMP", new String(t, 0, 4));
            assertEquals(0, sum(t));
            assertEquals(3 + 1 + 1 + 24 + 2, Short.toUnsignedInt(m.readShort(table + 34)), "entry count");
            assertEquals(MpTable.size(3), 16 + length);
            // processor entries: APIC ids 0..2, only the first is the BSP
            for (int cpu = 0; cpu < 3; cpu++) {
                long e = table + 44 + cpu * 20L;
                assertEquals(0, m.readByte(e));
                assertEquals(cpu, m.readByte(e + 1));
                assertEquals(cpu == 0 ? 3 : 1, m.readByte(e + 3));
            }
            assertThrows(BootException.class, () -> MpTable.write(m, MpTable.MAX_CPUS + 1));
        }
    }

    private static int sum(byte[] b) {
        int s = 0;
        for (byte x : b) {
            s += x;
        }
        return s & 0xff;
    }
}
