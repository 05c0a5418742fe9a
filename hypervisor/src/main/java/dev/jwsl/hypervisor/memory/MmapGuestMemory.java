package dev.jwsl.hypervisor.memory;

import dev.jwsl.hypervisor.sys.LibC;
import dev.jwsl.hypervisor.sys.SysCallException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Guest RAM backed by anonymous {@code mmap(MAP_NORESERVE)} mappings, one per region: host pages
 * are only committed when the guest touches them. This class is the only owner of the mappings.
 */
public final class MmapGuestMemory implements GuestMemory {
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;

    private static final long HUGE_PAGE = 2L << 20;

    private final List<MemoryRegion> regions;
    private final MemorySegment[] mappings;
    private volatile boolean closed;

    private MmapGuestMemory(List<MemoryRegion> regions, MemorySegment[] mappings) {
        this.regions = List.copyOf(regions);
        this.mappings = mappings;
    }

    /**
     * Maps RAM for the given {@code (guestBase, size)} ranges, which must be page-aligned,
     * ascending and non-overlapping.
     */
    public static MmapGuestMemory create(List<long[]> ranges) {
        checkRanges(ranges);
        List<MemoryRegion> regions = new ArrayList<>();
        MemorySegment[] maps = new MemorySegment[ranges.size()];
        try {
            for (int i = 0; i < ranges.size(); i++) {
                maps[i] = mapHugePageAligned(ranges.get(i)[1]);
                regions.add(new MemoryRegion(ranges.get(i)[0], ranges.get(i)[1], maps[i].address()));
            }
        } catch (SysCallException e) {
            unmapAll(maps);
            throw new GuestMemoryException(GuestMemoryException.Reason.MMAP_FAILED,
                    "cannot map guest RAM: " + e.getMessage(), e);
        }
        return new MmapGuestMemory(regions, maps);
    }

    /** Page-aligned, non-empty, ascending, non-overlapping. */
    private static void checkRanges(List<long[]> ranges) {
        long previousEnd = 0;
        for (long[] r : ranges) {
            long base = r[0];
            long size = r[1];
            if (size <= 0 || (base & 0xfff) != 0 || (size & 0xfff) != 0 || base < previousEnd) {
                throw new GuestMemoryException(GuestMemoryException.Reason.BAD_SIZE,
                        "bad guest RAM range 0x%x+0x%x".formatted(base, size));
            }
            previousEnd = base + size;
        }
    }

    /**
     * Maps RAM for {@code ranges} from {@code file}, which holds them one after the other (a
     * snapshot's memory file): {@code MAP_PRIVATE}, so a page is read only when the guest first
     * touches it and the guest's writes stay in this process.
     */
    public static MmapGuestMemory mapFile(Path file, List<long[]> ranges) {
        checkRanges(ranges);
        List<MemoryRegion> regions = new ArrayList<>();
        MemorySegment[] maps = new MemorySegment[ranges.size()];
        int fd;
        try {
            fd = LibC.open(file.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC);
        } catch (SysCallException e) {
            throw new GuestMemoryException(GuestMemoryException.Reason.MMAP_FAILED, "cannot open " + file + ": " + e.getMessage(), e);
        }
        try {
            long offset = 0;
            for (int i = 0; i < ranges.size(); i++) {
                long size = ranges.get(i)[1];
                maps[i] = LibC.mmap(size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_PRIVATE | LibC.MAP_NORESERVE, fd, offset,
                        "guest RAM from " + file);
                regions.add(new MemoryRegion(ranges.get(i)[0], size, maps[i].address()));
                offset += size;
            }
        } catch (SysCallException e) {
            unmapAll(maps);
            throw new GuestMemoryException(GuestMemoryException.Reason.MMAP_FAILED, "cannot map guest RAM: " + e.getMessage(), e);
        } finally {
            LibC.close(fd); // the mappings keep the file
        }
        return new MmapGuestMemory(regions, maps);
    }

    /**
     * Anonymous RAM aligned to 2 MiB and advised for transparent huge pages, so that a host with
     * THP in "madvise" mode backs guest RAM with huge pages (fewer host page faults and TLB
     * misses), as QEMU does. The slack around the aligned range is unmapped again.
     */
    private static MemorySegment mapHugePageAligned(long size) {
        MemorySegment raw = LibC.mmap(size + HUGE_PAGE, LibC.PROT_READ | LibC.PROT_WRITE,
                LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_NORESERVE, -1, 0, "guest RAM");
        long head = (HUGE_PAGE - (raw.address() & (HUGE_PAGE - 1))) & (HUGE_PAGE - 1);
        if (head > 0) {
            LibC.munmap(raw.asSlice(0, head));
        }
        long tail = HUGE_PAGE - head;
        if (tail > 0) {
            LibC.munmap(raw.asSlice(head + size, tail));
        }
        MemorySegment ram = raw.asSlice(head, size);
        try {
            LibC.madvise(ram, LibC.MADV_HUGEPAGE);
        } catch (SysCallException e) {
            // THP disabled on this host: 4 KiB pages work, only slower
        }
        return ram;
    }

    private static void unmapAll(MemorySegment[] maps) {
        for (MemorySegment m : maps) {
            if (m != null) {
                LibC.munmap(m);
            }
        }
    }

    @Override
    public List<MemoryRegion> regions() {
        return regions;
    }

    @Override
    public MemorySegment slice(long gpa, long length) {
        for (int i = 0; i < mappings.length; i++) {
            MemoryRegion r = regions.get(i);
            if (r.contains(gpa, length)) {
                if (closed) {
                    throw new IllegalStateException("guest memory is closed");
                }
                return mappings[i].asSlice(gpa - r.guestBase(), length);
            }
        }
        throw new GuestMemoryException(GuestMemoryException.Reason.OUT_OF_RANGE,
                "guest range 0x%x+0x%x is outside guest RAM".formatted(gpa, length));
    }

    @Override
    public byte readByte(long gpa) {
        return slice(gpa, 1).get(ValueLayout.JAVA_BYTE, 0);
    }

    @Override
    public short readShort(long gpa) {
        return slice(gpa, 2).get(SHORT, 0);
    }

    @Override
    public int readInt(long gpa) {
        return slice(gpa, 4).get(INT, 0);
    }

    @Override
    public long readLong(long gpa) {
        return slice(gpa, 8).get(LONG, 0);
    }

    @Override
    public void writeByte(long gpa, byte value) {
        slice(gpa, 1).set(ValueLayout.JAVA_BYTE, 0, value);
    }

    @Override
    public void writeShort(long gpa, short value) {
        slice(gpa, 2).set(SHORT, 0, value);
    }

    @Override
    public void writeInt(long gpa, int value) {
        slice(gpa, 4).set(INT, 0, value);
    }

    @Override
    public void writeLong(long gpa, long value) {
        slice(gpa, 8).set(LONG, 0, value);
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            unmapAll(mappings);
        }
    }
}
