package dev.jwsl.hypervisor.boot.loader;

import dev.jwsl.hypervisor.boot.BootParams;

/**
 * A kernel placed in guest memory.
 *
 * @param entry        guest-physical 64-bit entry point (RIP at boot, paging identity-mapped)
 * @param end          first guest-physical byte past everything the kernel needs while booting
 * @param bootParams   zero page prepared from the kernel's setup header (cmdline, initrd and
 *                     e820 still to fill in)
 * @param cmdlineMax   longest command line the kernel accepts, without the NUL
 * @param initrdMax    highest guest-physical address an initramfs may occupy (inclusive)
 */
public record LoadedKernel(long entry, long end, BootParams bootParams, int cmdlineMax, long initrdMax) {}
