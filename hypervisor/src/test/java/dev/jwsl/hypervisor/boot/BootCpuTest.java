package dev.jwsl.hypervisor.boot;

import dev.jwsl.hypervisor.kvm.DescriptorTable;
import dev.jwsl.hypervisor.kvm.Msr;
import dev.jwsl.hypervisor.kvm.Segment;
import dev.jwsl.hypervisor.kvm.SpecialRegisters;
import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The boot vCPU's registers, MSRs and LAPIC wiring, and where the boot tables sit (issue 18). */
class BootCpuTest {
    /** A segment as KVM resets it: real-mode, base 0. */
    private static final Segment RESET_SEGMENT = new Segment(0, 0xffff, (short) 0, (byte) 3, (byte) 1, (byte) 0,
            (byte) 0, (byte) 1, (byte) 0, (byte) 0, (byte) 0, (byte) 0);

    private static SpecialRegisters reset() {
        return new SpecialRegisters(RESET_SEGMENT, RESET_SEGMENT, RESET_SEGMENT, RESET_SEGMENT, RESET_SEGMENT,
                RESET_SEGMENT, RESET_SEGMENT, RESET_SEGMENT, new DescriptorTable(0, (short) 0xffff),
                new DescriptorTable(0, (short) 0xffff), 0x60000010L, 0, 0, 0, 0, 0, 0xfee00900L, new long[] {0, 0, 1, 0});
    }

    @Test
    void theBootVcpuIsInLongModeOnTheBootGdt() {
        SpecialRegisters s = BootCpu.longMode(reset());
        assertEquals(0x10, s.cs().selector());
        assertEquals(1, s.cs().l(), "64-bit code");
        assertEquals(0, s.cs().db(), "L and D/B together are reserved");
        for (Segment d : List.of(s.ds(), s.es(), s.fs(), s.gs(), s.ss())) {
            assertEquals(0x18, d.selector());
            assertEquals(1, d.present());
        }
        assertEquals(0x20, s.tr().selector());
        assertEquals(0xb, s.tr().type(), "a busy 64-bit TSS");
        assertEquals(new DescriptorTable(Layout.GDT, (short) (5 * 8 - 1)), s.gdt());
        assertEquals(Layout.IDT, s.idt().base());
        assertEquals(BootCpu.CR0_PE | BootCpu.CR0_ET | BootCpu.CR0_PG, s.cr0());
        assertEquals(Layout.PML4, s.cr3());
        assertEquals(BootCpu.CR4_PAE, s.cr4());
        assertEquals(BootCpu.EFER_LME | BootCpu.EFER_LMA, s.efer());
        assertEquals(0xfee00900L, s.apicBase(), "the APIC base stays as KVM reset it");
        assertEquals(1, s.interruptBitmap()[2], "pending interrupts are kept");
    }

    @Test
    void theIdtDoesNotOverlapTheGdt() {
        assertTrue(Layout.IDT >= Layout.GDT + Gdt.byteSize(), "IDT at 0x" + Long.toHexString(Layout.IDT));
        try (MmapGuestMemory memory = MmapGuestMemory.create(List.<long[]>of(new long[] {0, 1 << 20}))) {
            Gdt.write(memory);
            memory.slice(Layout.IDT, 8).fill((byte) 0); // as LinuxBoot clears it
            assertEquals(Gdt.ENTRIES[Gdt.TSS_INDEX], memory.readLong(Layout.GDT + Gdt.TSS_INDEX * 8L),
                    "the TSS descriptor survives the IDT");
        }
    }

    @Test
    void everyVcpuStartsWithFastStringsAndWriteBackMemory() {
        Map<Integer, Long> msrs = BootCpu.bootMsrs().stream().collect(Collectors.toMap(Msr::index, Msr::value));
        assertEquals(1L, msrs.get(0x1a0) & 1, "IA32_MISC_ENABLE.FAST_STRING");
        assertEquals((1L << 11) | 6, msrs.get(0x2ff), "MTRRs on, default write-back");
        for (int syscall : new int[] {0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102, 0x174, 0x175, 0x176}) {
            assertEquals(0L, msrs.get(syscall), "MSR 0x" + Integer.toHexString(syscall));
        }
    }

    @Test
    void lintPinsGetExtIntAndNmiKeepingTheOtherBits() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment lapic = arena.allocate(1024);
            lapic.set(ValueLayout.JAVA_INT_UNALIGNED, 0x350, 0x0001_0000 | (0x2 << 8) | 0x31); // masked, SMI, vector
            lapic.set(ValueLayout.JAVA_INT_UNALIGNED, 0x360, 0x0001_0000);
            lapic.set(ValueLayout.JAVA_INT_UNALIGNED, 0x340, 0x1234);
            BootCpu.wireLints(lapic);
            assertEquals(0x0001_0000 | (0x7 << 8) | 0x31, lapic.get(ValueLayout.JAVA_INT_UNALIGNED, 0x350));
            assertEquals(0x0001_0000 | (0x4 << 8), lapic.get(ValueLayout.JAVA_INT_UNALIGNED, 0x360));
            assertEquals(0x1234, lapic.get(ValueLayout.JAVA_INT_UNALIGNED, 0x340), "other registers untouched");
        }
    }
}
