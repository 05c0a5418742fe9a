package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.memory.GuestMemory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The Intel MultiProcessor Specification 1.4 tables at {@link Layout#MPTABLE}: the floating
 * pointer, a configuration table with one processor entry per vCPU, an ISA bus, the IOAPIC, ISA
 * IRQs 0..23 routed to IOAPIC pins of the same number (as KVM's default GSI routing does), and
 * LINT0 = ExtINT, LINT1 = NMI. Without ACPI this is how the kernel finds the CPUs and IOAPIC.
 */
public final class MpTable {
    static final int FLOATING_SIZE = 16, HEADER_SIZE = 44, CPU_SIZE = 20, ENTRY_SIZE = 8;
    static final int IRQS = 24;
    static final int APIC_VERSION = 0x14, IOAPIC_VERSION = 0x11;
    /** Largest vCPU count whose table fits between {@link Layout#MPTABLE} and base-memory end. */
    public static final int MAX_CPUS = (int) ((Layout.BASE_MEMORY_END - Layout.MPTABLE - FLOATING_SIZE - HEADER_SIZE
            - (1 + 1 + IRQS + 2) * ENTRY_SIZE) / CPU_SIZE);

    private MpTable() {}

    /** Table size for {@code cpus} processors, floating pointer included. */
    static int size(int cpus) {
        return FLOATING_SIZE + HEADER_SIZE + cpus * CPU_SIZE + (1 + 1 + IRQS + 2) * ENTRY_SIZE;
    }

    /** Writes the tables for {@code cpus} vCPUs with APIC ids 0..cpus-1. */
    public static void write(GuestMemory memory, int cpus) {
        if (cpus < 1 || cpus > MAX_CPUS) {
            throw new BootException(BootException.Reason.TOO_MANY_ENTRIES,
                    "the MP table holds 1 to " + MAX_CPUS + " vCPUs, not " + cpus);
        }
        ByteBuffer b = ByteBuffer.allocate(size(cpus)).order(ByteOrder.LITTLE_ENDIAN);
        long tableAddress = Layout.MPTABLE + FLOATING_SIZE;
        int ioapicId = cpus; // must differ from every local APIC id

        // Floating pointer structure (MP spec 4.1).
        b.put("_MP_".getBytes(StandardCharsets.US_ASCII)).putInt((int) tableAddress)
                .put((byte) 1).put((byte) 4).put((byte) 0).put(new byte[5]);
        b.put(10, checksum(b, 0, FLOATING_SIZE));

        // Configuration table header (MP spec 4.2), entries follow.
        int header = FLOATING_SIZE;
        b.put("PCMP".getBytes(StandardCharsets.US_ASCII)).putShort((short) 0).put((byte) 4).put((byte) 0)
                .put("JWSL    ".getBytes(StandardCharsets.US_ASCII))
                .put("JWSL-VM     ".getBytes(StandardCharsets.US_ASCII))
                .putInt(0).putShort((short) 0).putShort((short) (cpus + 1 + 1 + IRQS + 2))
                .putInt((int) Layout.LAPIC).putShort((short) 0).put((byte) 0).put((byte) 0);
        for (int id = 0; id < cpus; id++) {
            b.put((byte) 0).put((byte) id).put((byte) APIC_VERSION)
                    .put((byte) (id == 0 ? 0x03 : 0x01)) // enabled, bootstrap processor
                    .putInt(0x600)                       // family 6
                    .putInt(0x201)                       // FPU, APIC
                    .put(new byte[8]);
        }
        b.put((byte) 1).put((byte) 0).put("ISA   ".getBytes(StandardCharsets.US_ASCII));
        b.put((byte) 2).put((byte) ioapicId).put((byte) IOAPIC_VERSION).put((byte) 1).putInt((int) Layout.IOAPIC);
        for (int irq = 0; irq < IRQS; irq++) {
            // I/O interrupt: INT, polarity/trigger conforming to the bus, ISA irq -> IOAPIC pin irq.
            b.put((byte) 3).put((byte) 0).putShort((short) 0).put((byte) 0).put((byte) irq)
                    .put((byte) ioapicId).put((byte) irq);
        }
        // Local interrupts: ExtINT on LINT0 of the BSP, NMI on LINT1 of all (0xff).
        b.put((byte) 4).put((byte) 3).putShort((short) 0).put((byte) 0).put((byte) 0).put((byte) 0).put((byte) 0);
        b.put((byte) 4).put((byte) 1).putShort((short) 0).put((byte) 0).put((byte) 0).put((byte) 0xff).put((byte) 1);

        int tableLength = b.position() - header;
        b.putShort(header + 4, (short) tableLength);
        b.put(header + 7, checksum(b, header, tableLength));
        memory.write(Layout.MPTABLE, b.array());
    }

    /** The byte that makes {@code length} bytes from {@code start} sum to zero. */
    static byte checksum(ByteBuffer b, int start, int length) {
        int sum = 0;
        for (int i = start; i < start + length; i++) {
            sum += b.get(i);
        }
        return (byte) -sum;
    }
}
