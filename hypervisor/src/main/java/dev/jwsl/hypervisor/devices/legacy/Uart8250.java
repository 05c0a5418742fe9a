package dev.jwsl.hypervisor.devices.legacy;

import dev.jwsl.hypervisor.devices.PortIoDevice;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;

/**
 * A 16550A UART (National Semiconductor PC16550D data sheet): transmitted bytes go to a host
 * stream at once, received bytes queue in a 64-byte FIFO fed by {@link #receive}, which blocks
 * while the FIFO is full so host input is never dropped. Interrupts are edges on an IRQ line
 * (an irqfd), raised when the interrupt identification goes from "none" to pending.
 */
public final class Uart8250 implements PortIoDevice {
    public static final int COM1 = 0x3f8;
    public static final int COM1_IRQ = 4;
    public static final int LENGTH = 8;

    static final int RBR_THR_DLL = 0, IER_DLM = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;
    static final int IER_RX = 0x01, IER_THRE = 0x02;
    static final int IIR_NONE = 0x01, IIR_THRE = 0x02, IIR_RX = 0x04, IIR_FIFO_ENABLED = 0xc0;
    static final int FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02;
    static final int LCR_DLAB = 0x80;
    static final int MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
    static final int LSR_DR = 0x01, LSR_THRE = 0x20, LSR_TEMT = 0x40;
    static final int MSR_CTS = 0x10, MSR_DSR = 0x20, MSR_RI = 0x40, MSR_DCD = 0x80;
    static final int FIFO_SIZE = 64;
    private static final int FLUSH_THRESHOLD = 4096;

    private final OutputStream out;
    private final Runnable raiseIrq;
    private final ArrayDeque<Byte> rx = new ArrayDeque<>();
    private int ier, lcr, mcr, scr, fcr;
    private int dll = 0x0c, dlm; // 9600 baud, as after reset
    private boolean thrEmptyPending;
    private boolean irqPending;
    private int unflushed;
    private boolean closed;

    /**
     * @param out      where the guest's transmitted bytes go
     * @param raiseIrq injects one interrupt edge
     */
    public Uart8250(OutputStream out, Runnable raiseIrq) {
        this.out = out;
        this.raiseIrq = raiseIrq;
    }

    /** The registers and receive FIFO, for a snapshot. */
    public record State(int ier, int lcr, int mcr, int scr, int fcr, int dll, int dlm, boolean thrEmptyPending,
                        boolean irqPending, byte[] rx) {}

    /** This UART's state for a snapshot. */
    public synchronized State state() {
        byte[] fifo = new byte[rx.size()];
        int i = 0;
        for (byte b : rx) {
            fifo[i++] = b;
        }
        return new State(ier, lcr, mcr, scr, fcr, dll, dlm, thrEmptyPending, irqPending, fifo);
    }

    /** Takes a {@link #state()} back, before the guest runs; registers are bytes, the FIFO at most {@value #FIFO_SIZE}. */
    public synchronized void restore(State s) {
        int[] regs = {s.ier(), s.lcr(), s.mcr(), s.scr(), s.fcr(), s.dll(), s.dlm()};
        for (int r : regs) {
            if (r < 0 || r > 0xff) {
                throw new IllegalArgumentException("UART register value " + r);
            }
        }
        if (s.rx().length > FIFO_SIZE) {
            throw new IllegalArgumentException("UART FIFO of " + s.rx().length + " bytes");
        }
        ier = s.ier();
        lcr = s.lcr();
        mcr = s.mcr();
        scr = s.scr();
        fcr = s.fcr();
        dll = s.dll();
        dlm = s.dlm();
        thrEmptyPending = s.thrEmptyPending();
        irqPending = s.irqPending();
        rx.clear();
        for (byte b : s.rx()) {
            rx.add(b);
        }
        notifyAll();
    }

    @Override
    public synchronized int read(int offset, int size) {
        boolean dlab = (lcr & LCR_DLAB) != 0;
        int v = switch (offset) {
            case RBR_THR_DLL -> dlab ? dll : receiveByte();
            case IER_DLM -> dlab ? dlm : ier;
            case IIR_FCR -> interruptIdentification();
            case LCR -> lcr;
            case MCR -> mcr;
            case LSR -> {
                flush();
                yield (rx.isEmpty() ? 0 : LSR_DR) | LSR_THRE | LSR_TEMT;
            }
            case MSR -> modemStatus();
            case SCR -> scr;
            default -> 0xff;
        };
        updateIrq();
        return v;
    }

    @Override
    public synchronized void write(int offset, int size, int value) {
        value &= 0xff;
        boolean dlab = (lcr & LCR_DLAB) != 0;
        switch (offset) {
            case RBR_THR_DLL -> {
                if (dlab) {
                    dll = value;
                } else {
                    transmit(value);
                }
            }
            case IER_DLM -> {
                if (dlab) {
                    dlm = value;
                } else {
                    if ((value & IER_THRE) != 0 && (ier & IER_THRE) == 0) {
                        thrEmptyPending = true; // enabling THRE with an empty THR interrupts at once
                    }
                    ier = value & 0x0f;
                }
            }
            case IIR_FCR -> {
                fcr = value & FCR_ENABLE;
                if ((value & FCR_CLEAR_RX) != 0) {
                    rx.clear();
                    notifyAll();
                }
            }
            case LCR -> lcr = value;
            case MCR -> mcr = value & 0x1f;
            case SCR -> scr = value;
            default -> { }
        }
        updateIrq();
    }

    private void transmit(int b) {
        if ((mcr & MCR_LOOP) != 0) {
            if (rx.size() < FIFO_SIZE) {
                rx.add((byte) b);
            }
        } else {
            try {
                out.write(b);
                if (++unflushed >= FLUSH_THRESHOLD || b == '\n') {
                    flush();
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        thrEmptyPending = true;
    }

    private void flush() {
        if (unflushed > 0) {
            unflushed = 0;
            try {
                out.flush();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    private int receiveByte() {
        if (rx.isEmpty()) {
            return 0;
        }
        int b = Byte.toUnsignedInt(rx.poll());
        notifyAll();
        return b;
    }

    private int interruptIdentification() {
        int fifo = fcr != 0 ? IIR_FIFO_ENABLED : 0;
        if ((ier & IER_RX) != 0 && !rx.isEmpty()) {
            return IIR_RX | fifo;
        }
        if ((ier & IER_THRE) != 0 && thrEmptyPending) {
            thrEmptyPending = false; // reading IIR acknowledges a THRE interrupt
            return IIR_THRE | fifo;
        }
        return IIR_NONE | fifo;
    }

    private int modemStatus() {
        if ((mcr & MCR_LOOP) != 0) {
            return ((mcr & MCR_RTS) != 0 ? MSR_CTS : 0) | ((mcr & MCR_DTR) != 0 ? MSR_DSR : 0)
                    | ((mcr & MCR_OUT1) != 0 ? MSR_RI : 0) | ((mcr & MCR_OUT2) != 0 ? MSR_DCD : 0);
        }
        return MSR_DCD | MSR_DSR | MSR_CTS;
    }

    private void updateIrq() {
        boolean pending = ((ier & IER_RX) != 0 && !rx.isEmpty()) || ((ier & IER_THRE) != 0 && thrEmptyPending);
        if (pending && !irqPending) {
            raiseIrq.run();
        }
        irqPending = pending;
    }

    /**
     * Queues host input for the guest, blocking while the FIFO is full.
     *
     * @return false if the UART was closed before everything was queued
     */
    public synchronized boolean receive(byte[] bytes, int offset, int length) throws InterruptedException {
        for (int i = offset; i < offset + length; i++) {
            while (rx.size() >= FIFO_SIZE && !closed) {
                wait();
            }
            if (closed) {
                return false;
            }
            rx.add(bytes[i]);
            updateIrq();
        }
        return true;
    }

    /** Flushes output and releases any thread blocked in {@link #receive}. */
    public synchronized void close() {
        closed = true;
        flush();
        notifyAll();
    }
}
