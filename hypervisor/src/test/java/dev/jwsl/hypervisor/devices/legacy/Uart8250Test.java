package dev.jwsl.hypervisor.devices.legacy;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Uart8250Test {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final AtomicInteger irqs = new AtomicInteger();
    private final Uart8250 uart = new Uart8250(out, irqs::incrementAndGet);

    @Test
    void transmitsToTheHostAndReportsAnEmptyTransmitter() {
        for (byte b : "hi\n".getBytes()) {
            uart.write(Uart8250.RBR_THR_DLL, 1, b);
        }
        assertEquals("hi\n", out.toString());
        assertEquals(Uart8250.LSR_THRE | Uart8250.LSR_TEMT, uart.read(Uart8250.LSR, 1));
    }

    @Test
    void receivedBytesRaiseOneEdgeAndReadBackInOrder() throws InterruptedException {
        uart.write(Uart8250.IER_DLM, 1, Uart8250.IER_RX);
        assertTrue(uart.receive("ab".getBytes(), 0, 2));
        assertEquals(1, irqs.get(), "one edge while the interrupt stays pending");
        assertEquals(Uart8250.IIR_RX, uart.read(Uart8250.IIR_FCR, 1));
        assertEquals(Uart8250.LSR_DR, uart.read(Uart8250.LSR, 1) & Uart8250.LSR_DR);
        assertEquals('a', uart.read(Uart8250.RBR_THR_DLL, 1));
        assertEquals('b', uart.read(Uart8250.RBR_THR_DLL, 1));
        assertEquals(0, uart.read(Uart8250.LSR, 1) & Uart8250.LSR_DR);
        assertEquals(Uart8250.IIR_NONE, uart.read(Uart8250.IIR_FCR, 1));
    }

    @Test
    void thrEmptyInterruptIsAcknowledgedByReadingIir() {
        uart.write(Uart8250.IER_DLM, 1, Uart8250.IER_THRE);
        assertEquals(1, irqs.get());
        assertEquals(Uart8250.IIR_THRE, uart.read(Uart8250.IIR_FCR, 1));
        assertEquals(Uart8250.IIR_NONE, uart.read(Uart8250.IIR_FCR, 1));
        uart.write(Uart8250.IIR_FCR, 1, Uart8250.FCR_ENABLE);
        assertEquals(Uart8250.IIR_NONE | Uart8250.IIR_FIFO_ENABLED, uart.read(Uart8250.IIR_FCR, 1), "16550A FIFO bits");
    }

    @Test
    void divisorLatchAndLoopbackBehaveLikeTheDataSheet() {
        uart.write(Uart8250.LCR, 1, Uart8250.LCR_DLAB);
        uart.write(Uart8250.RBR_THR_DLL, 1, 0x01);
        uart.write(Uart8250.IER_DLM, 1, 0x02);
        assertEquals(0x01, uart.read(Uart8250.RBR_THR_DLL, 1));
        assertEquals(0x02, uart.read(Uart8250.IER_DLM, 1));
        uart.write(Uart8250.LCR, 1, 0x03);
        uart.write(Uart8250.MCR, 1, Uart8250.MCR_LOOP | Uart8250.MCR_OUT2 | Uart8250.MCR_RTS);
        assertEquals(0x90, uart.read(Uart8250.MSR, 1) & 0xf0, "the 8250 driver's loopback probe");
        uart.write(Uart8250.RBR_THR_DLL, 1, 'x');
        assertEquals('x', uart.read(Uart8250.RBR_THR_DLL, 1));
        assertEquals(0, out.size(), "loopback does not reach the host");
    }

    @Test
    void receiveBlocksWhileTheFifoIsFullAndStopsOnClose() throws Exception {
        byte[] big = new byte[Uart8250.FIFO_SIZE + 1];
        Thread t = new Thread(() -> {
            try {
                assertFalse(uart.receive(big, 0, big.length));
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        });
        t.start();
        t.join(300);
        assertTrue(t.isAlive(), "blocked on the full FIFO");
        uart.close();
        t.join(5000);
        assertFalse(t.isAlive());
    }
}
