package dev.jwsl.hypervisor.devices.virtio.block;

import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;
import dev.jwsl.hypervisor.virtio.Descriptor;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.VirtioFeatures;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** virtio-blk requests as a driver sends them, against a real sparse file. */
class BlockDeviceTest {
    @TempDir
    Path dir;

    private final MmapGuestMemory memory = MockQueue.memory();
    private final MockQueue driver = new MockQueue(memory, 16);
    private final AtomicInteger configChanges = new AtomicInteger();
    private BlockDevice device;

    @AfterEach
    void close() {
        if (device != null) {
            device.close();
        }
        memory.close();
    }

    private Path image(long size) throws IOException {
        Path p = dir.resolve("disk" + System.nanoTime() + ".img");
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
        }
        return p;
    }

    private void activate(BlockDevice d) {
        device = d;
        Queue q = driver.deviceQueue(BlockDevice.QUEUE_SIZE, d.availableFeatures() & ~(3L << 28));
        d.activate(memory, List.of(q), new VirtioInterrupt() {
            @Override public void signalUsed(int queue) { }
            @Override public void signalConfigChange() { configChanges.incrementAndGet(); }
            @Override public void signalNeedsReset(Exception cause) { }
        });
    }

    private static byte[] header(int type, long sector) {
        return ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(type).putInt(0).putLong(sector).array();
    }

    private static byte[] segment(long sector, int count, int flags) {
        return ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(sector).putInt(count).putInt(flags).array();
    }

    /** Sends a request; returns the status byte. */
    private int request(Seg... segs) {
        MockQueue.Chain c = driver.add(segs);
        device.queueNotify(0);
        driver.nextUsed().orElseThrow();
        List<Long> a = c.addresses();
        Seg last = segs[segs.length - 1];
        return driver.read(a.get(a.size() - 1) + last.writableLength() - 1, 1)[0];
    }

    private long allocatedBytes(Path p) throws Exception {
        Process s = new ProcessBuilder("stat", "-c", "%b", p.toString()).start();
        long blocks = Long.parseLong(new String(s.getInputStream().readAllBytes()).strip());
        s.waitFor();
        return blocks * 512;
    }

    @Test
    void writesAndReadsGoStraightToTheFile() throws Exception {
        Path img = image(1 << 20);
        activate(new BlockDevice(DiskImage.open(img, false), "disk0"));
        byte[] data = new byte[1024];
        Arrays.fill(data, 0, 512, (byte) 'a');
        Arrays.fill(data, 512, 1024, (byte) 'b');
        assertEquals(BlockDevice.S_OK, request(Seg.readable(header(BlockDevice.T_OUT, 3)),
                Seg.readable(Arrays.copyOf(data, 512)), Seg.readable(Arrays.copyOfRange(data, 512, 1024)),
                Seg.writable(1)));
        assertEquals(BlockDevice.S_OK, request(Seg.readable(header(BlockDevice.T_FLUSH, 0)), Seg.writable(1)));
        byte[] onDisk = Arrays.copyOfRange(Files.readAllBytes(img), 3 * 512, 5 * 512);
        assertArrayEquals(data, onDisk);

        MockQueue.Chain read = driver.add(Seg.readable(header(BlockDevice.T_IN, 3)), Seg.writable(1024 + 1));
        device.queueNotify(0);
        assertEquals(new MockQueue.Used(read.head(), 1025), driver.nextUsed().orElseThrow());
        byte[] got = driver.read(read.addresses().get(1), 1025);
        assertArrayEquals(data, Arrays.copyOf(got, 1024));
        assertEquals(BlockDevice.S_OK, got[1024]);
        assertEquals(1024, device.bytesRead());
    }

    @Test
    void getIdReturnsTheSerial() throws IOException {
        activate(new BlockDevice(DiskImage.open(image(4096), false), "jwsl-slot-3"));
        MockQueue.Chain c = driver.add(Seg.readable(header(BlockDevice.T_GET_ID, 0)), Seg.writable(21));
        device.queueNotify(0);
        assertEquals(21, driver.nextUsed().orElseThrow().length());
        assertEquals("jwsl-slot-3", new String(driver.read(c.addresses().get(1), 11)));
    }

    @Test
    void discardAndWriteZeroesPunchHoles() throws Exception {
        Path img = image(8 << 20);
        Files.write(img, new byte[8 << 20]); // fully allocated
        activate(new BlockDevice(DiskImage.open(img, false), "d"));
        long before = allocatedBytes(img);
        assertEquals(BlockDevice.S_OK, request(Seg.readable(header(BlockDevice.T_DISCARD, 0)),
                Seg.readable(segment(0, 4096, 0)), Seg.writable(1)));
        assertEquals(BlockDevice.S_OK, request(Seg.readable(header(BlockDevice.T_WRITE_ZEROES, 0)),
                Seg.readable(segment(8192, 4096, 1)), Seg.writable(1)));
        long after = allocatedBytes(img);
        assertTrue(after <= before - (4L << 20), "allocated " + before + " -> " + after);
        assertEquals(8 << 20, Files.size(img));
        // An empty segment is nothing to do, not an error (fallocate would refuse it).
        assertEquals(BlockDevice.S_OK, request(Seg.readable(header(BlockDevice.T_DISCARD, 0)),
                Seg.readable(segment(8, 0, 0)), Seg.writable(1)));
        // Bad segments: beyond the end, unknown flags, too many.
        assertEquals(BlockDevice.S_IOERR, request(Seg.readable(header(BlockDevice.T_DISCARD, 0)),
                Seg.readable(segment(16383, 2, 0)), Seg.writable(1)));
        assertEquals(BlockDevice.S_UNSUPP, request(Seg.readable(header(BlockDevice.T_WRITE_ZEROES, 0)),
                Seg.readable(segment(0, 1, 2)), Seg.writable(1)));
        assertEquals(BlockDevice.S_UNSUPP, request(Seg.readable(header(BlockDevice.T_DISCARD, 0)),
                Seg.readable(new byte[16 * (BlockDevice.MAX_DISCARD_SEG + 1)]), Seg.writable(1)));
    }

    @Test
    void outOfRangeAndMalformedRequestsFailWithoutTouchingTheFile() throws IOException {
        Path img = image(4096);
        activate(new BlockDevice(DiskImage.open(img, false), "d"));
        assertEquals(BlockDevice.S_IOERR, request(Seg.readable(header(BlockDevice.T_IN, 8)), Seg.writable(513)));
        assertEquals(BlockDevice.S_IOERR, request(Seg.readable(header(BlockDevice.T_IN, 7)), Seg.writable(1025)));
        assertEquals(BlockDevice.S_IOERR, request(Seg.readable(header(BlockDevice.T_IN, Long.MAX_VALUE)),
                Seg.writable(513)));
        assertEquals(BlockDevice.S_IOERR, request(Seg.readable(header(BlockDevice.T_IN, -1)), Seg.writable(513)));
        assertEquals(BlockDevice.S_IOERR, request(Seg.readable(header(BlockDevice.T_OUT, 0)),
                Seg.readable(new byte[100]), Seg.writable(1))); // not whole sectors
        assertEquals(BlockDevice.S_UNSUPP, request(Seg.readable(header(99, 0)), Seg.writable(1)));
        // No status byte, or a header cut short: the chain comes back with nothing written.
        driver.add(Seg.readable(header(BlockDevice.T_IN, 0)));
        device.queueNotify(0);
        assertEquals(0, driver.nextUsed().orElseThrow().length());
        driver.add(Seg.readable(new byte[8]), Seg.writable(513));
        device.queueNotify(0);
        assertEquals(0, driver.nextUsed().orElseThrow().length());
        assertArrayEquals(new byte[4096], Files.readAllBytes(img));
    }

    /**
     * A request whose data part exceeds 2 GiB (descriptors may overlap, so a guest needs no such
     * RAM) is refused before any IO: its length cannot be reported in an int, and serving it
     * would hold the device for the time it takes to copy gigabytes.
     */
    @Test
    void requestsOverTwoGibibytesAreRefusedBeforeAnyIo() throws Exception {
        Path img = image(3L << 30); // sparse: only the refused requests could touch it
        long region = 32L << 20, regionLength = 32L << 20;
        try (MmapGuestMemory big = MmapGuestMemory.create(List.of(new long[] {0, region + regionLength}))) {
            MockQueue q = new MockQueue(big, BlockDevice.QUEUE_SIZE);
            BlockDevice d = new BlockDevice(DiskImage.open(img, false), "big");
            device = d;
            d.activate(big, List.of(q.deviceQueue(BlockDevice.QUEUE_SIZE, 0)), new VirtioInterrupt() {
                @Override public void signalUsed(int queue) { }
                @Override public void signalConfigChange() { }
                @Override public void signalNeedsReset(Exception cause) { }
            });
            int pieces = (int) ((1L << 31) / regionLength); // 64 x 32 MiB: exactly 2 GiB of data
            for (int type : new int[] {BlockDevice.T_IN, BlockDevice.T_OUT}) {
                long header = q.allocate(16), status = q.allocate(1);
                big.write(header, header(type, 0));
                q.writeDesc(0, header, 16, Descriptor.F_NEXT, 1);
                int dataFlags = type == BlockDevice.T_IN ? Descriptor.F_WRITE : 0;
                for (int i = 1; i <= pieces; i++) {
                    q.writeDesc(i, region, (int) regionLength, dataFlags | Descriptor.F_NEXT, i + 1);
                }
                q.writeDesc(pieces + 1, status, 1, Descriptor.F_WRITE, 0);
                q.publish(0);
                d.queueNotify(0);
                assertEquals(new MockQueue.Used(0, 1), q.nextUsed().orElseThrow(), "type " + type + ": only the status");
                assertEquals(BlockDevice.S_IOERR, big.read(status, 1)[0], "type " + type);
            }
            assertEquals(0, d.bytesRead());
            assertEquals(0, d.bytesWritten());
        }
        assertEquals(0, allocatedBytes(img), "nothing was written");
    }

    @Test
    void readOnlyMediaRefuseWritesAndReadZerosPastTheEnd() throws IOException {
        Path file = dir.resolve("archive.tar");
        Files.write(file, "not a whole sector".getBytes());
        BlockDevice d = new BlockDevice(DiskImage.open(file, true), "ro");
        assertTrue(VirtioFeatures.has(d.availableFeatures(), BlockDevice.F_RO));
        activate(d);
        byte[] config = new byte[8];
        d.readConfig(0, config);
        assertEquals(1, ByteBuffer.wrap(config).order(ByteOrder.LITTLE_ENDIAN).getLong());
        MockQueue.Chain c = driver.add(Seg.readable(header(BlockDevice.T_IN, 0)), Seg.writable(513));
        device.queueNotify(0);
        driver.nextUsed().orElseThrow();
        byte[] got = driver.read(c.addresses().get(1), 513);
        assertEquals("not a whole sector", new String(got, 0, 18));
        assertArrayEquals(new byte[512 - 18], Arrays.copyOfRange(got, 18, 512));
        assertEquals(BlockDevice.S_IOERR, request(Seg.readable(header(BlockDevice.T_OUT, 0)),
                Seg.readable(new byte[512]), Seg.writable(1)));
        assertEquals("not a whole sector", Files.readString(file));
    }

    @Test
    void mediaChangeUpdatesCapacityAndTellsTheGuest() throws IOException {
        BlockDevice slot = new BlockDevice(null, "jwsl-slot-0");
        assertFalse(VirtioFeatures.has(slot.availableFeatures(), BlockDevice.F_RO));
        activate(slot);
        byte[] cap = new byte[8];
        slot.readConfig(0, cap);
        assertEquals(0, ByteBuffer.wrap(cap).order(ByteOrder.LITTLE_ENDIAN).getLong());
        assertEquals(BlockDevice.S_IOERR, request(Seg.readable(header(BlockDevice.T_IN, 0)), Seg.writable(513)));

        Path img = image(1 << 20);
        slot.insert(img, false);
        assertEquals(1, configChanges.get());
        slot.readConfig(0, cap);
        assertEquals(2048, ByteBuffer.wrap(cap).order(ByteOrder.LITTLE_ENDIAN).getLong());
        assertEquals(BlockDevice.S_OK, request(Seg.readable(header(BlockDevice.T_IN, 2047)), Seg.writable(513)));
        assertThrows(DiskException.class, () -> slot.insert(img, false), "a full slot");

        // The image is locked while inserted: a second VM cannot open it read-write.
        DiskException locked = assertThrows(DiskException.class, () -> DiskImage.open(img, false));
        assertTrue(locked.getMessage().contains("in use"), locked.getMessage());

        slot.eject();
        assertEquals(2, configChanges.get());
        slot.readConfig(0, cap);
        assertEquals(0, ByteBuffer.wrap(cap).order(ByteOrder.LITTLE_ENDIAN).getLong());
        DiskImage.open(img, false).close(); // unlocked again

        Path odd = dir.resolve("odd.img");
        Files.write(odd, new byte[1000]);
        assertThrows(DiskException.class, () -> slot.insert(odd, false), "not whole sectors");
        assertThrows(DiskException.class, () -> slot.insert(dir.resolve("missing"), true));
    }
}
