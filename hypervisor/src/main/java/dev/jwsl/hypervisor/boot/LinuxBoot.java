package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.boot.loader.KernelLoader;
import dev.jwsl.hypervisor.boot.loader.LoadedKernel;
import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.GuestMemoryException;
import dev.jwsl.hypervisor.memory.MemoryRegion;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Puts everything a Linux kernel needs at boot into guest memory: the kernel, the initramfs at
 * the top of low RAM, the command line, the e820 map and zero page, the GDT, page tables and MP
 * table. Returns the entry point for {@link BootCpu}.
 */
public final class LinuxBoot {
    private static final long PAGE = 4096;

    private LinuxBoot() {}

    /**
     * @param initrd  initramfs (cpio, optionally compressed), or null for none
     * @return the guest-physical 64-bit entry point
     */
    public static long load(GuestMemory memory, Path kernel, Path initrd, String cmdline, int cpus) {
        try (Arena arena = Arena.ofConfined()) {
            LoadedKernel k = KernelLoader.load(kernel, memory, arena);
            BootParams params = k.bootParams();

            byte[] cmd = cmdline.getBytes(StandardCharsets.US_ASCII);
            if (cmd.length > k.cmdlineMax()) {
                throw new BootException(BootException.Reason.CMDLINE_TOO_LONG,
                        "kernel command line is " + cmd.length + " bytes, the kernel accepts " + k.cmdlineMax());
            }
            memory.write(Layout.CMDLINE, cmd);
            memory.writeByte(Layout.CMDLINE + cmd.length, (byte) 0);
            params.setCmdline(Layout.CMDLINE, cmd.length + 1);

            if (initrd != null) {
                loadInitrd(memory, initrd, k, params);
            }
            params.setE820(e820(memory));
            memory.write(Layout.ZERO_PAGE, params.segment());
            Gdt.write(memory);
            memory.slice(Layout.IDT, 8).fill((byte) 0);
            PageTables.write(memory);
            MpTable.write(memory, cpus);
            return k.entry();
        } catch (GuestMemoryException e) {
            throw new BootException(BootException.Reason.DOES_NOT_FIT, "boot data does not fit in guest memory: "
                    + e.getMessage(), e);
        }
    }

    private static void loadInitrd(GuestMemory memory, Path initrd, LoadedKernel k, BootParams params) {
        try (FileChannel ch = FileChannel.open(initrd, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            long size = ch.size();
            MemoryRegion low = memory.regions().getFirst();
            long top = Math.min(low.guestEnd(), k.initrdMax() + 1);
            long address = (top - size) & ~(PAGE - 1);
            if (size == 0 || address < k.end()) {
                throw new BootException(BootException.Reason.DOES_NOT_FIT, "initramfs " + initrd + " (" + size
                        + " bytes) does not fit in guest RAM above the kernel; give the VM more memory");
            }
            MemorySegment file = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            memory.write(address, file);
            params.setRamdisk(address, size);
        } catch (NoSuchFileException e) {
            throw new BootException(BootException.Reason.READ_FAILED, initrd + ": no such file", e);
        } catch (IOException e) {
            throw new BootException(BootException.Reason.READ_FAILED, "cannot read " + initrd + ": " + e.getMessage(), e);
        }
    }

    /** RAM as the guest should see it: base memory minus the MP table KiB, then every region above 1 MiB. */
    static List<E820Entry> e820(GuestMemory memory) {
        List<E820Entry> map = new ArrayList<>();
        map.add(new E820Entry(0, Layout.MPTABLE, E820Entry.RAM));
        map.add(new E820Entry(Layout.MPTABLE, Layout.BASE_MEMORY_END - Layout.MPTABLE, E820Entry.RESERVED));
        for (MemoryRegion r : memory.regions()) {
            long start = Math.max(r.guestBase(), Layout.HIMEM);
            if (r.guestEnd() > start) {
                map.add(new E820Entry(start, r.guestEnd() - start, E820Entry.RAM));
            }
        }
        return map;
    }

    /** Guest RAM ranges {@code {base, size}} for {@code bytes} of memory, split around the MMIO gap. */
    public static List<long[]> ramRanges(long bytes) {
        long low = Math.min(bytes, Layout.MMIO_GAP_START);
        List<long[]> ranges = new ArrayList<>();
        ranges.add(new long[] {0, low});
        if (bytes > low) {
            ranges.add(new long[] {Layout.MMIO_GAP_END, bytes - low});
        }
        return ranges;
    }
}
