package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.kvm.Segment;
import dev.jwsl.hypervisor.memory.GuestMemory;


/**
 * The boot GDT at {@link Layout#GDT}: null, null, 64-bit code at selector 0x10 (__BOOT_CS), data at
 * 0x18 (__BOOT_DS) and a busy TSS at 0x20, as the 64-bit boot protocol expects. Descriptors follow
 * the Intel SDM vol. 3, 3.4.5 "Segment Descriptors".
 */
public final class Gdt {
    /** Access/flags words (bits 8..15 access byte, 12..15 of the high nibble: G, D/B, L, AVL). */
    static final int CODE64 = 0xa09b; // G, L, present, DPL 0, code, execute/read, accessed
    static final int DATA = 0xc093;   // G, D/B, present, DPL 0, data, read/write, accessed
    static final int TSS = 0x808b;    // G, present, 64-bit busy TSS

    public static final int CODE_INDEX = 2;
    public static final int DATA_INDEX = 3;
    public static final int TSS_INDEX = 4;
    static final long[] ENTRIES = {
        0,
        0,
        descriptor(CODE64, 0, 0xfffff),
        descriptor(DATA, 0, 0xfffff),
        descriptor(TSS, 0, 0xfffff),
    };

    private Gdt() {}

    /** Encodes a segment descriptor. */
    static long descriptor(int flags, long base, long limit) {
        return ((base & 0xff00_0000L) << 32)
                | ((flags & 0xf0ffL) << 40)
                | ((limit & 0xf_0000L) << 32)
                | ((base & 0x00ff_ffffL) << 16)
                | (limit & 0xffffL);
    }

    /** Bytes of the table ({@code limit + 1}). */
    public static int byteSize() {
        return ENTRIES.length * 8;
    }

    /** Writes the table to {@link Layout#GDT}. */
    public static void write(GuestMemory memory) {
        for (int i = 0; i < ENTRIES.length; i++) {
            memory.writeLong(Layout.GDT + i * 8L, ENTRIES[i]);
        }
    }

    /** The cached form of descriptor {@code index}, as a segment register holds it. */
    public static Segment segment(int index) {
        long e = ENTRIES[index];
        long base = ((e >>> 16) & 0xff_ffffL) | ((e >>> 32) & 0xff00_0000L);
        long rawLimit = (e & 0xffffL) | ((e >>> 32) & 0xf_0000L);
        boolean g = ((e >>> 55) & 1) != 0;
        boolean present = ((e >>> 47) & 1) != 0;
        return new Segment(base, (int) (g ? (rawLimit << 12) | 0xfff : rawLimit), (short) (index * 8),
                (byte) ((e >>> 40) & 0xf), (byte) (present ? 1 : 0), (byte) ((e >>> 45) & 3),
                (byte) ((e >>> 54) & 1), (byte) ((e >>> 44) & 1), (byte) ((e >>> 53) & 1),
                (byte) (g ? 1 : 0), (byte) ((e >>> 52) & 1), (byte) (present ? 0 : 1));
    }
}
