package dev.jwsl.service.tools;

import dev.jwsl.hypervisor.devices.legacy.Uart8250;
import dev.jwsl.hypervisor.vmm.GuestCommand;
import dev.jwsl.hypervisor.vmm.VirtualMachine;

import java.io.IOException;
import java.io.InputStream;

/** Copies host input to the guest console once init is ready, framed when the guest reads it as a pipe. */
final class ConsoleInput {
    private ConsoleInput() {}

    static void start(VirtualMachine vm, InputStream in, boolean framed) {
        Uart8250 console = vm.console();
        Thread.ofPlatform().name("console-input").daemon().start(() -> {
            byte[] buf = new byte[4096];
            try {
                if (!vm.awaitGuestReady()) {
                    return;
                }
                int n;
                while ((n = in.read(buf)) > 0) {
                    byte[] data = framed ? GuestCommand.frameInput(buf, n) : buf;
                    int length = framed ? data.length : n;
                    if (!console.receive(data, 0, length)) {
                        return;
                    }
                }
                if (framed) {
                    byte[] eof = GuestCommand.endOfInput();
                    console.receive(eof, 0, eof.length);
                }
            } catch (IOException | InterruptedException e) {
                // host input is gone; the guest sees no more
            }
        });
    }
}
