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
 * Loads a bzImage for the 64-bit boot protocol (Documentation/arch/x86/boot.rst, "64-bit Boot
 * Protocol"): the protected-mode part goes to {@link Layout#HIMEM} and is entered at +0x200 in
 * long mode; its setup header is copied into the zero page.
 */
final class BzImageLoader {
    /** Protocol 2.12 introduced xloadflags, which advertise the 64-bit entry. */
    private static final int MIN_VERSION = 0x020c;
    private static final int ENTRY_64_OFFSET = 0x200;

    private BzImageLoader() {}

    static boolean isBzImage(ByteBuffer image) {
        return image.limit() > 0x264 && image.getInt(0x202) == BootParams.HDRS_MAGIC
                && image.getShort(0x1fe) == BootParams.BOOT_FLAG_MAGIC;
    }

    static LoadedKernel load(Path path, ByteBuffer image, GuestMemory memory, Arena arena) {
        int headerEnd = 0x202 + Byte.toUnsignedInt(image.get(0x201));
        BootParams params = BootParams.allocate(arena);
        MemorySegment.copy(MemorySegment.ofBuffer(image), BootParams.SETUP_HEADER, params.segment(),
                BootParams.SETUP_HEADER, headerEnd - BootParams.SETUP_HEADER);
        if (params.version() < MIN_VERSION || (params.xloadflags() & BootParams.XLF_KERNEL_64) == 0) {
            throw new BootException(BootException.Reason.UNSUPPORTED_KERNEL, path
                    + ": bzImage lacks the 64-bit entry point (boot protocol 0x%x, need 0x%x and XLF_KERNEL_64)"
                    .formatted(params.version(), MIN_VERSION));
        }
        int setupSects = params.setupSects() == 0 ? 4 : params.setupSects();
        long kernelOffset = (setupSects + 1L) * 512;
        long kernelSize = image.limit() - kernelOffset;
        if (kernelSize <= 0) {
            throw new BootException(BootException.Reason.NOT_A_KERNEL, path + ": truncated bzImage");
        }
        memory.write(Layout.HIMEM, MemorySegment.ofBuffer(image).asSlice(kernelOffset, kernelSize));
        // The kernel decompresses in place and needs init_size bytes from its load address.
        long end = Layout.HIMEM + Math.max(kernelSize, params.initSize());
        memory.slice(Layout.HIMEM, end - Layout.HIMEM); // checks the whole range is RAM
        params.setLoader();
        int cmdlineMax = params.cmdlineSize() > 0 ? Math.min(params.cmdlineSize(), Layout.CMDLINE_MAX - 1)
                : Layout.CMDLINE_MAX - 1;
        return new LoadedKernel(Layout.HIMEM + ENTRY_64_OFFSET, end, params, cmdlineMax, params.initrdAddrMax());
    }
}
