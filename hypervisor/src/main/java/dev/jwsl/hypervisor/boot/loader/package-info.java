/**
 * Kernel image loaders: bzImage (64-bit boot protocol) and uncompressed ELF vmlinux, chosen by
 * {@link dev.jwsl.hypervisor.boot.loader.KernelLoader} from the file's magic. Every offset and
 * length read from the image is checked before it is used.
 */
package dev.jwsl.hypervisor.boot.loader;
