package dev.jwsl.hypervisor.vmm;

import java.util.ArrayList;
import java.util.List;

/**
 * The kernel command line of every jwsl VM: the base parameters (kernel-build/README.md explains
 * each), this host's quirks ({@link HostQuirks}), the user's additions, then jwsl's own
 * parameters for the guest init.
 */
public final class KernelCmdline {
    /** Parameters every boot gets. */
    public static final String BASE = "console=ttyS0 reboot=k panic=-1 pci=off loglevel=3 8250.nr_uarts=1 no_timer_check";

    private KernelCmdline() {}

    /** {@link #BASE}, host quirks, {@code extra} (user-supplied, may be blank), then {@code initParams}. */
    public static String build(String extra, List<String> initParams) {
        List<String> parts = new ArrayList<>(List.of(BASE));
        parts.addAll(HostQuirks.kernelParams());
        if (extra != null && !extra.isBlank()) {
            parts.add(extra.trim());
        }
        parts.addAll(initParams);
        return String.join(" ", parts);
    }
}
