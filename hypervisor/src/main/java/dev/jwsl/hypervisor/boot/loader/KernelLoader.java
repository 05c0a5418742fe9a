package dev.jwsl.hypervisor.boot.loader;

import dev.jwsl.hypervisor.boot.BootException;
import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.GuestMemoryException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Loads a Linux kernel image of either supported format, chosen by its magic. */
public final class KernelLoader {
    private KernelLoader() {}

    /** Loads {@code kernel} (bzImage or ELF vmlinux) into {@code memory}. */
    public static LoadedKernel load(Path kernel, GuestMemory memory, Arena arena) {
        ByteBuffer image = map(kernel, arena);
        try {
            if (ElfLoader.isElf(image)) {
                return ElfLoader.load(kernel, image, memory, arena);
            }
            if (BzImageLoader.isBzImage(image)) {
                return BzImageLoader.load(kernel, image, memory, arena);
            }
        } catch (GuestMemoryException e) {
            throw new BootException(BootException.Reason.DOES_NOT_FIT,
                    kernel + " does not fit in guest memory: " + e.getMessage(), e);
        }
        throw new BootException(BootException.Reason.NOT_A_KERNEL,
                kernel + " is not a Linux kernel (neither a bzImage nor an x86-64 ELF vmlinux)");
    }

    /** Maps the file read-only for as long as {@code arena} lives: no copy of the image on the heap. */
    static ByteBuffer map(Path file, Arena arena) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena).asByteBuffer()
                    .order(ByteOrder.LITTLE_ENDIAN);
        } catch (NoSuchFileException e) {
            throw new BootException(BootException.Reason.READ_FAILED, file + ": no such file", e);
        } catch (IOException e) {
            throw new BootException(BootException.Reason.READ_FAILED, "cannot read " + file + ": " + e.getMessage(), e);
        }
    }
}
