package dev.jwsl.hypervisor.devices.legacy;

import dev.jwsl.hypervisor.devices.PortIoDevice;

/**
 * The part of the i8042 keyboard controller a VM needs: the status port reads "nothing to read,
 * ready for a command", and command 0xFE (pulse the reset line) resets the machine, which is how
 * Linux reboots with {@code reboot=k}. Registered at ports 0x60..0x64.
 */
public final class I8042 implements PortIoDevice {
    public static final int BASE = 0x60;
    public static final int LENGTH = 5;
    static final int DATA = 0, COMMAND = 4;
    static final int CMD_RESET_CPU = 0xfe;

    private final Runnable onReset;

    public I8042(Runnable onReset) {
        this.onReset = onReset;
    }

    @Override
    public int read(int offset, int size) {
        return 0; // status: output buffer empty, input buffer empty; data: nothing
    }

    @Override
    public void write(int offset, int size, int value) {
        if (offset == COMMAND && (value & 0xff) == CMD_RESET_CPU) {
            onReset.run();
        }
    }
}
