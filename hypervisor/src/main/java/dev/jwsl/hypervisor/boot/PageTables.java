package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.memory.GuestMemory;

/**
 * Identity page tables for the first 1 GiB (2 MiB pages) at {@link Layout#PML4}: enough for the
 * kernel's 64-bit entry, which builds its own tables before touching anything else.
 */
public final class PageTables {
    static final long PRESENT = 1, WRITABLE = 1 << 1, PAGE_SIZE = 1 << 7;
    static final long HUGE_PAGE = 2L << 20;
    static final int ENTRIES = 512;

    private PageTables() {}

    /** Writes PML4, PDPT and PD; CR3 must point at {@link Layout#PML4}. */
    public static void write(GuestMemory memory) {
        memory.slice(Layout.PML4, 3 * 4096).fill((byte) 0);
        memory.writeLong(Layout.PML4, Layout.PDPT | PRESENT | WRITABLE);
        memory.writeLong(Layout.PDPT, Layout.PD | PRESENT | WRITABLE);
        for (int i = 0; i < ENTRIES; i++) {
            memory.writeLong(Layout.PD + i * 8L, i * HUGE_PAGE | PRESENT | WRITABLE | PAGE_SIZE);
        }
    }
}
