package dev.jwsl.hypervisor.boot.loader;

import dev.jwsl.hypervisor.boot.BootException;
import dev.jwsl.hypervisor.boot.BootParams;
import dev.jwsl.hypervisor.boot.Layout;
import dev.jwsl.hypervisor.memory.GuestMemory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * Loads an uncompressed x86-64 ELF {@code vmlinux}: each PT_LOAD segment at its physical address,
 * entered at {@code e_entry} (the kernel links it as {@code phys_startup_64}) in long mode. This
 * skips the bzImage decompressor entirely, which matters when guest kernel code runs slowly.
 */
final class ElfLoader {
    private static final int EM_X86_64 = 62;
    private static final int PT_LOAD = 1;
    /** The x86-64 kernel's minimum alignment (CONFIG_PHYSICAL_ALIGN default), for the header. */
    private static final int KERNEL_ALIGNMENT = 0x20_0000;
    /** The bzImage default for initrd_addr_max on 64-bit kernels. */
    private static final long INITRD_ADDR_MAX = 0x7fff_ffffL;

    private ElfLoader() {}

    static boolean isElf(ByteBuffer image) {
        return image.limit() >= 64 && image.getInt(0) == 0x464c457f; // "\x7fELF"
    }

    static LoadedKernel load(Path path, ByteBuffer image, GuestMemory memory, Arena arena) {
        if (image.get(4) != 2 || image.get(5) != 1 || image.getShort(18) != EM_X86_64) {
            throw new BootException(BootException.Reason.NOT_A_KERNEL, path + " is an ELF file but not an x86-64 kernel");
        }
        long entry = image.getLong(24);
        long phoff = image.getLong(32);
        int phentsize = Short.toUnsignedInt(image.getShort(54));
        int phnum = Short.toUnsignedInt(image.getShort(56));
        if (phentsize < 56 || phoff < 0 || phoff + (long) phnum * phentsize > image.limit()) {
            throw new BootException(BootException.Reason.NOT_A_KERNEL, path + ": corrupt ELF program headers");
        }
        MemorySegment file = MemorySegment.ofBuffer(image);
        long end = 0;
        boolean entryLoaded = false;
        for (int i = 0; i < phnum; i++) {
            int ph = (int) (phoff + (long) i * phentsize);
            if (image.getInt(ph) != PT_LOAD) {
                continue;
            }
            long offset = image.getLong(ph + 8);
            long paddr = image.getLong(ph + 24);
            long filesz = image.getLong(ph + 32);
            long memsz = image.getLong(ph + 40);
            if (offset < 0 || filesz < 0 || memsz < filesz || offset > image.limit() - filesz) {
                throw new BootException(BootException.Reason.NOT_A_KERNEL, path + ": corrupt ELF segment " + i);
            }
            if (paddr < Layout.HIMEM) {
                throw new BootException(BootException.Reason.UNSUPPORTED_KERNEL,
                        path + ": segment at 0x%x is below 1 MiB".formatted(paddr));
            }
            memory.write(paddr, file.asSlice(offset, filesz));
            memory.slice(paddr + filesz, memsz - filesz).fill((byte) 0);
            end = Math.max(end, paddr + memsz);
            entryLoaded |= entry >= paddr && entry < paddr + memsz;
        }
        if (!entryLoaded) {
            throw new BootException(BootException.Reason.NOT_A_KERNEL,
                    path + ": entry point 0x%x is in no loadable segment".formatted(entry));
        }
        BootParams params = BootParams.allocate(arena);
        params.setLoader();
        params.setKernelAlignment(KERNEL_ALIGNMENT);
        return new LoadedKernel(entry, end, params, Layout.CMDLINE_MAX - 1, INITRD_ADDR_MAX);
    }
}
