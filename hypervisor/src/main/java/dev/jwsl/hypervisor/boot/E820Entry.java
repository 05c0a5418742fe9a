package dev.jwsl.hypervisor.boot;

/**
 * One BIOS e820 map entry (arch/x86/include/uapi/asm/setup_data.h {@code struct boot_e820_entry}).
 *
 * @param address first byte
 * @param size    bytes
 * @param type    {@link #RAM} or {@link #RESERVED}
 */
public record E820Entry(long address, long size, int type) {
    public static final int RAM = 1;
    public static final int RESERVED = 2;
    /** Bytes per entry in the zero page's table (packed u64, u64, u32). */
    public static final int SIZE = 20;
}
