package dev.jwsl.cli;

import dev.jwsl.hypervisor.devices.legacy.Uart8250;
import dev.jwsl.hypervisor.vmm.GuestCommand;

import java.io.IOException;
import java.io.InputStream;

/** Copies host input to the guest console, framed when the guest reads it as a pipe. */
final class ConsoleInput {
    private ConsoleInput() {}

    static void start(Uart8250 console, InputStream in, boolean framed) {
        Thread.ofPlatform().name("console-input").daemon().start(() -> {
            byte[] buf = new byte[4096];
            try {
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
