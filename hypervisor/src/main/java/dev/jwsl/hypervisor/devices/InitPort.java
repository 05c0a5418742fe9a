package dev.jwsl.hypervisor.devices;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.SecureRandom;
import java.time.Instant;
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
    public static final int LENGTH = 3;
    public static final int EXIT = 0, READY = 1, HOST_DATA = 2;
    public static final int HOST_DATA_SIZE = 48;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final IntConsumer onExit;
    private final Runnable onReady;
    private final byte[] hostData = new byte[HOST_DATA_SIZE];
    private int hostDataRead = HOST_DATA_SIZE;

    public InitPort(IntConsumer onExit, Runnable onReady) {
        this.onExit = onExit;
        this.onReady = onReady;
    }

    @Override
    public synchronized int read(int offset, int size) {
        if (offset == HOST_DATA && hostDataRead < HOST_DATA_SIZE) {
            return hostData[hostDataRead++] & 0xff;
        }
        return 0;
    }

    private synchronized void latchHostData() {
        Instant now = Instant.now();
        ByteBuffer b = ByteBuffer.wrap(hostData).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 'J').put((byte) 'W').put((byte) 'S').put((byte) 'L');
        b.putLong(now.getEpochSecond()).putInt(now.getNano());
        byte[] seed = new byte[32];
        RANDOM.nextBytes(seed);
        b.put(seed);
        hostDataRead = 0;
    }

    @Override
    public void write(int offset, int size, int value) {
        switch (offset) {
            case EXIT -> onExit.accept(value & 0xff);
            case READY -> onReady.run();
            case HOST_DATA -> latchHostData();
            default -> { }
        }
    }
}
