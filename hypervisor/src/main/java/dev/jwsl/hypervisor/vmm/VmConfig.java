package dev.jwsl.hypervisor.vmm;

import java.io.OutputStream;
import java.nio.file.Path;

/**
 * What to boot and with what resources.
 *
 * @param kernel       bzImage or ELF vmlinux
 * @param initrd       initramfs, or null
 * @param cmdline      the full kernel command line
 * @param memoryBytes  guest RAM
 * @param cpus         vCPU count
 * @param consoleOut   where the serial console's output goes
 */
public record VmConfig(Path kernel, Path initrd, String cmdline, long memoryBytes, int cpus, OutputStream consoleOut) {
    /** Smallest RAM jwsl will boot a kernel in. */
    public static final long MIN_MEMORY = 32L << 20;
    /** Most vCPUs: KVM's usual limit is far higher, the MP table's is {@link dev.jwsl.hypervisor.boot.MpTable#MAX_CPUS}. */
    public static final int MAX_CPUS = 64;
}
