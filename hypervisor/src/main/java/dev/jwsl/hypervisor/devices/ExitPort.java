package dev.jwsl.hypervisor.devices;

import java.util.function.IntConsumer;

/**
 * jwsl's guest exit port: the guest init writes its command's exit status (one byte) here, and
 * the VM ends with that status. Like QEMU's isa-debug-exit, but the value is passed unchanged.
 * Guest init reaches it through {@code /dev/port}, so no I/O privilege is needed in user mode.
 */
public final class ExitPort implements PortIoDevice {
    /** Base port; chosen in the unassigned 0x500 range of the PC I/O map. */
    public static final int PORT = 0x510;

    private final IntConsumer onExit;

    public ExitPort(IntConsumer onExit) {
        this.onExit = onExit;
    }

    @Override
    public int read(int offset, int size) {
        return 0;
    }

    @Override
    public void write(int offset, int size, int value) {
        if (offset == 0) {
            onExit.accept(value & 0xff);
        }
    }
}
