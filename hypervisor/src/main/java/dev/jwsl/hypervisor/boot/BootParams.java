package dev.jwsl.hypervisor.boot;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * A view of the zero page, {@code struct boot_params} (arch/x86/include/uapi/asm/bootparam.h),
 * with the setup header at 0x1f1 (Documentation/arch/x86/boot.rst). Only the fields jwsl sets
 * or reads have accessors.
 */
public final class BootParams {
    public static final int SIZE = 4096;
    /** Setup header: first byte, and the offset whose byte gives its end (0x202 + that byte). */
    public static final int SETUP_HEADER = 0x1f1;
    static final int EXT_RAMDISK_IMAGE = 0x0c0;
    static final int EXT_RAMDISK_SIZE = 0x0c4;
    static final int EXT_CMD_LINE_PTR = 0x0c8;
    static final int E820_ENTRIES = 0x1e8;
    static final int SETUP_SECTS = 0x1f1;
    static final int VID_MODE = 0x1fa;
    static final int BOOT_FLAG = 0x1fe;
    static final int HEADER = 0x202;
    static final int VERSION = 0x206;
    static final int TYPE_OF_LOADER = 0x210;
    static final int LOADFLAGS = 0x211;
    static final int RAMDISK_IMAGE = 0x218;
    static final int RAMDISK_SIZE = 0x21c;
    static final int HEAP_END_PTR = 0x224;
    static final int CMD_LINE_PTR = 0x228;
    static final int INITRD_ADDR_MAX = 0x22c;
    static final int KERNEL_ALIGNMENT = 0x230;
    static final int XLOADFLAGS = 0x236;
    static final int CMDLINE_SIZE = 0x238;
    static final int INIT_SIZE = 0x260;
    static final int E820_TABLE = 0x2d0;
    /** E820_MAX_ENTRIES_ZEROPAGE. */
    public static final int E820_MAX = 128;

    /** "HdrS", the setup header magic. */
    public static final int HDRS_MAGIC = 0x53726448;
    public static final short BOOT_FLAG_MAGIC = (short) 0xaa55;
    /** type_of_loader "undefined" (0xff): jwsl has no assigned loader id. */
    public static final byte LOADER_OTHER = (byte) 0xff;
    static final int LOADED_HIGH = 0x01;
    static final int CAN_USE_HEAP = 0x80;
    /** xloadflags XLF_KERNEL_64: the kernel has the 64-bit entry point at +0x200. */
    public static final int XLF_KERNEL_64 = 0x01;

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED;

    private final MemorySegment seg;

    /** Wraps an existing 4 KiB zero page. */
    public BootParams(MemorySegment seg) {
        if (seg.byteSize() < SIZE) {
            throw new IllegalArgumentException("boot_params needs " + SIZE + " bytes");
        }
        this.seg = seg;
    }

    /** A new all-zero zero page. */
    public static BootParams allocate(Arena arena) {
        return new BootParams(arena.allocate(SIZE, 8));
    }

    public MemorySegment segment() {
        return seg;
    }

    public int setupSects() {
        return Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, SETUP_SECTS));
    }

    public int headerMagic() {
        return seg.get(U32, HEADER);
    }

    public short bootFlag() {
        return seg.get(U16, BOOT_FLAG);
    }

    public int version() {
        return Short.toUnsignedInt(seg.get(U16, VERSION));
    }

    public int xloadflags() {
        return Short.toUnsignedInt(seg.get(U16, XLOADFLAGS));
    }

    public long initrdAddrMax() {
        return Integer.toUnsignedLong(seg.get(U32, INITRD_ADDR_MAX));
    }

    public int cmdlineSize() {
        return seg.get(U32, CMDLINE_SIZE);
    }

    public long initSize() {
        return Integer.toUnsignedLong(seg.get(U32, INIT_SIZE));
    }

    public int e820Entries() {
        return Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, E820_ENTRIES));
    }

    public E820Entry e820(int i) {
        long off = E820_TABLE + (long) i * E820Entry.SIZE;
        return new E820Entry(seg.get(U64, off), seg.get(U64, off + 8), seg.get(U32, off + 16));
    }

    /** Marks the header as written by a boot loader that knows the 2.x protocol. */
    public void setLoader() {
        seg.set(U16, BOOT_FLAG, BOOT_FLAG_MAGIC);
        seg.set(U32, HEADER, HDRS_MAGIC);
        seg.set(ValueLayout.JAVA_BYTE, TYPE_OF_LOADER, LOADER_OTHER);
        seg.set(U16, VID_MODE, (short) 0xffff); // "normal": no video mode change
        byte flags = seg.get(ValueLayout.JAVA_BYTE, LOADFLAGS);
        seg.set(ValueLayout.JAVA_BYTE, LOADFLAGS, (byte) (flags | LOADED_HIGH | CAN_USE_HEAP));
        seg.set(U16, HEAP_END_PTR, (short) 0xfe00);
    }

    public void setKernelAlignment(int alignment) {
        seg.set(U32, KERNEL_ALIGNMENT, alignment);
    }

    public void setCmdline(long gpa, int size) {
        seg.set(U32, CMD_LINE_PTR, (int) gpa);
        seg.set(U32, EXT_CMD_LINE_PTR, (int) (gpa >>> 32));
        seg.set(U32, CMDLINE_SIZE, size);
    }

    public long cmdlinePointer() {
        return Integer.toUnsignedLong(seg.get(U32, CMD_LINE_PTR))
                | Integer.toUnsignedLong(seg.get(U32, EXT_CMD_LINE_PTR)) << 32;
    }

    public void setRamdisk(long gpa, long size) {
        seg.set(U32, RAMDISK_IMAGE, (int) gpa);
        seg.set(U32, EXT_RAMDISK_IMAGE, (int) (gpa >>> 32));
        seg.set(U32, RAMDISK_SIZE, (int) size);
        seg.set(U32, EXT_RAMDISK_SIZE, (int) (size >>> 32));
    }

    public long ramdiskImage() {
        return Integer.toUnsignedLong(seg.get(U32, RAMDISK_IMAGE))
                | Integer.toUnsignedLong(seg.get(U32, EXT_RAMDISK_IMAGE)) << 32;
    }

    public long ramdiskSize() {
        return Integer.toUnsignedLong(seg.get(U32, RAMDISK_SIZE))
                | Integer.toUnsignedLong(seg.get(U32, EXT_RAMDISK_SIZE)) << 32;
    }

    public byte typeOfLoader() {
        return seg.get(ValueLayout.JAVA_BYTE, TYPE_OF_LOADER);
    }

    /** Writes the e820 map. */
    public void setE820(List<E820Entry> entries) {
        if (entries.size() > E820_MAX) {
            throw new BootException(BootException.Reason.TOO_MANY_ENTRIES, "e820 map has " + entries.size()
                    + " entries, the zero page holds " + E820_MAX);
        }
        for (int i = 0; i < entries.size(); i++) {
            E820Entry e = entries.get(i);
            long off = E820_TABLE + (long) i * E820Entry.SIZE;
            seg.set(U64, off, e.address());
            seg.set(U64, off + 8, e.size());
            seg.set(U32, off + 16, e.type());
        }
        seg.set(ValueLayout.JAVA_BYTE, E820_ENTRIES, (byte) entries.size());
    }
}
