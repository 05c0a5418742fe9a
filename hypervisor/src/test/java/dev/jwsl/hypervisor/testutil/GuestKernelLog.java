package dev.jwsl.hypervisor.testutil;

import java.util.List;
import java.util.regex.Pattern;

/**
 * Reads a guest kernel log ({@code dmesg}) for user processes killed by a fault. A test that
 * boots a guest checks its log with this, so that a crashed process fails the test even when
 * the test's own command survived (issue 14: on PVM hosts, processes crashed at start).
 */
public final class GuestKernelLog {
    /** What x86 Linux logs when a fault kills a user process (arch/x86/mm/fault.c, kernel/traps.c). */
    private static final Pattern CRASH = Pattern.compile("segfault at|general protection fault|trap invalid opcode|traps: ");

    /**
     * What a guest kernel logs about a platform the VMM set up wrongly (issue 18): a WARN or
     * unchecked MSR access, firmware bugs such as an APIC id CPUID and the local APIC disagree
     * on, and fast strings disabled for want of IA32_MISC_ENABLE.FAST_STRING.
     */
    private static final Pattern PLATFORM = Pattern.compile(
            "WARNING: CPU|cut here|unchecked MSR access|\\[Firmware Bug\\]|APIC ID mismatch|Disabled fast string operations"
                    + "|TSC doesn't count with P0 frequency");

    private GuestKernelLog() {}

    /** The lines of {@code dmesg} that complain about the platform the VMM set up. */
    public static List<String> platformComplaints(String dmesg) {
        return dmesg.lines().filter(l -> PLATFORM.matcher(l).find()).toList();
    }

    /** The lines of {@code dmesg} that report a user process killed by a fault. */
    public static List<String> crashes(String dmesg) {
        return dmesg.lines().filter(l -> CRASH.matcher(l).find()).toList();
    }
}
