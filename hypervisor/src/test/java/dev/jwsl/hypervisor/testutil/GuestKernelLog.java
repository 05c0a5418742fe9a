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

    private GuestKernelLog() {}

    /** The lines of {@code dmesg} that report a user process killed by a fault. */
    public static List<String> crashes(String dmesg) {
        return dmesg.lines().filter(l -> CRASH.matcher(l).find()).toList();
    }
}
