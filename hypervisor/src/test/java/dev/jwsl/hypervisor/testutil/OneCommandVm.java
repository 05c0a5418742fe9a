package dev.jwsl.hypervisor.testutil;

import dev.jwsl.hypervisor.vmm.GuestCommand;
import dev.jwsl.hypervisor.vmm.StopReason;
import dev.jwsl.hypervisor.vmm.VirtualMachine;
import dev.jwsl.hypervisor.vmm.VmConfig;

/** Runs a VM booted in one-command mode with an empty stdin, as {@code jwsl-vmm -- CMD </dev/null} would. */
public final class OneCommandVm {
    private OneCommandVm() {}

    /** Boots {@code config}, sends end-of-input once init is ready, and returns why the VM ended. */
    public static StopReason run(VmConfig config) {
        try (VirtualMachine vm = VirtualMachine.create(config)) {
            Thread.ofPlatform().daemon().start(() -> {
                try {
                    if (vm.awaitGuestReady()) {
                        byte[] eof = GuestCommand.endOfInput();
                        vm.console().receive(eof, 0, eof.length);
                    }
                } catch (InterruptedException ignored) {
                    // the VM is gone
                }
            });
            return vm.run();
        }
    }
}
