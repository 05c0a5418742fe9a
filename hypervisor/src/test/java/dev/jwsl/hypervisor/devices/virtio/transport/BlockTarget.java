package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.devices.virtio.block.BlockDevice;
import dev.jwsl.hypervisor.devices.virtio.block.DiskImage;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static dev.jwsl.hypervisor.devices.virtio.transport.FuzzTarget.bytes;
import static dev.jwsl.hypervisor.devices.virtio.transport.FuzzTarget.pick;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** virtio-blk over a 1 MiB sparse image: requests of every type, at sectors in and around the disk. */
record BlockTarget(BlockDevice device) implements FuzzTarget {
    private static final int SECTORS = 2048;
    // 5.2.6: request types and the status byte.
    private static final int T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13;

    static BlockTarget in(Path dir) {
        Path image = dir.resolve("disk.img");
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength((long) SECTORS * DiskImage.SECTOR);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new BlockTarget(new BlockDevice(DiskImage.open(image, false), "fuzz"));
    }

    private static byte[] header(int type, long sector) {
        return ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putInt(0, type).putLong(8, sector).array();
    }

    @Override
    public List<Seg> request(int queue, Random rnd) {
        int type = pick(rnd, T_IN, T_IN, T_OUT, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WRITE_ZEROES, rnd.nextInt());
        long sector = pick(rnd, 0, rnd.nextInt(SECTORS), SECTORS - 1, SECTORS, SECTORS + 1, Long.MAX_VALUE, -1, rnd.nextLong());
        int length = pick(rnd, 0, 512, 1024, 511, 4096, 513);
        List<Seg> segs = new ArrayList<>(FuzzTarget.readable(rnd, rnd.nextInt(16) == 0 ? bytes(rnd, 8) : header(type, sector)));
        switch (type) {
            case T_OUT -> segs.addAll(FuzzTarget.readable(rnd, bytes(rnd, length)));
            case T_DISCARD, T_WRITE_ZEROES -> {
                ByteBuffer ranges = ByteBuffer.allocate(16 * pick(rnd, 0, 1, 2, 33)).order(ByteOrder.LITTLE_ENDIAN);
                while (ranges.hasRemaining()) {
                    ranges.putLong(pick(rnd, 0, rnd.nextInt(SECTORS), SECTORS, -1))
                            .putInt(pick(rnd, 1, 8, SECTORS, -1)).putInt(pick(rnd, 0, 0, 1, 2));
                }
                segs.add(Seg.readable(ranges.array()));
            }
            case T_IN, T_GET_ID -> segs.add(Seg.writable(type == T_GET_ID ? pick(rnd, 20, 1, 0) : length));
            default -> { }
        }
        if (rnd.nextInt(16) != 0) {
            segs.add(Seg.writable(1)); // the status byte
        }
        return segs;
    }

    /** Writes a sector and reads it back. */
    @Override
    public void checkWorks(VirtioDriver driver, List<MockQueue> rings) {
        MockQueue ring = rings.getFirst();
        byte[] data = new byte[512];
        new Random(7).nextBytes(data);
        ring.add(Seg.readable(header(T_OUT, 7)), Seg.readable(data), Seg.writable(1));
        driver.notify(0);
        assertEquals(1, ring.awaitUsed(Duration.ofSeconds(5)).length(), "status only");
        MockQueue.Chain read = ring.add(Seg.readable(header(T_IN, 7)), Seg.writable(512), Seg.writable(1));
        driver.notify(0);
        assertEquals(513, ring.awaitUsed(Duration.ofSeconds(5)).length());
        assertArrayEquals(data, ring.read(read.addresses().get(1), 512), "sector 7 reads back");
        assertEquals(0, ring.read(read.addresses().get(2), 1)[0], "VIRTIO_BLK_S_OK");
    }

    @Override
    public void close() {
        device.close();
    }
}
