package dev.jwsl.hypervisor.devices;

import java.util.function.IntConsumer;

/**
 * jwsl's guest-init port, two byte-wide registers written by the guest init through
 * {@code /dev/port} (so no I/O privilege is needed in user mode):
 * <ul>
 *   <li>{@link #EXIT}: the command's exit status; the VM ends with it (like QEMU's
 *       isa-debug-exit, but the value passes unchanged).</li>
 *   <li>{@link #READY}: the console is set up for the command, host input may flow. Bytes sent
 *       earlier would be echoed or dropped by the kernel's tty while it is still being set up.</li>
 * </ul>
 */
public final class InitPort implements PortIoDevice {
    /** Base port: unassigned on PCs, and clear of QEMU's fw_cfg (0x510), so the same init runs under QEMU. */
    public static final int PORT = 0x5f0;
    public static final int LENGTH = 2;
    public static final int EXIT = 0, READY = 1;

    private final IntConsumer onExit;
    private final Runnable onReady;

    public InitPort(IntConsumer onExit, Runnable onReady) {
        this.onExit = onExit;
        this.onReady = onReady;
    }

    @Override
    public int read(int offset, int size) {
        return 0;
    }

    @Override
    public void write(int offset, int size, int value) {
        switch (offset) {
            case EXIT -> onExit.accept(value & 0xff);
            case READY -> onReady.run();
            default -> { }
        }
    }
}
