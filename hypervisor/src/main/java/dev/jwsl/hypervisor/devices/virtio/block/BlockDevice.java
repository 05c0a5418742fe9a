package dev.jwsl.hypervisor.devices.virtio.block;

import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.Scatter;
import dev.jwsl.hypervisor.sys.SysCallException;
import dev.jwsl.hypervisor.virtio.DescriptorChain;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.VirtioDevice;
import dev.jwsl.hypervisor.virtio.VirtioFeatures;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The virtio block device (VIRTIO 1.2 5.2) over a raw {@link DiskImage}, served synchronously on
 * the queue's notification thread (as Firecracker does). Requests: read, write, flush
 * (fdatasync), get-id (the serial), discard and write-zeroes (both punch holes, so the host gets
 * the space back). Every sector, length and segment count from the guest is checked; a bad
 * request gets IOERR or UNSUPP, never an exception out of the device.
 *
 * <p>Media change: a device may start empty and get an image {@link #insert inserted} or
 * {@link #eject ejected} while the guest runs; the new capacity reaches the guest by a
 * configuration-change interrupt. An image attached at boot read-only offers VIRTIO_BLK_F_RO;
 * a read-only image inserted later is enforced here (writes fail with IOERR), since feature
 * bits cannot change after negotiation.
 */
public final class BlockDevice implements VirtioDevice {
    private static final System.Logger LOG = System.getLogger(BlockDevice.class.getName());

    /** Device type "Block device" (5). */
    public static final int DEVICE_TYPE = 2;
    static final int QUEUE_SIZE = 256;
    /** Data descriptors per request (VIRTIO_BLK_F_SEG_MAX), besides header and status. */
    static final int SEG_MAX = QUEUE_SIZE - 2;
    /** Most sectors one discard or write-zeroes segment may cover: 2 GiB. */
    static final int MAX_DISCARD_SECTORS = 1 << 22;
    static final int MAX_DISCARD_SEG = 32;
    /**
     * Most data bytes one read or write may move: the largest whole number of sectors under 2 GiB,
     * QEMU's BDRV_REQUEST_MAX_BYTES. The used length must fit the ring's le32 and a Java int, and
     * descriptors may overlap, so a guest needs no such RAM to ask for far more.
     */
    static final long MAX_TRANSFER = Integer.MAX_VALUE & -DiskImage.SECTOR;
    static final int ID_BYTES = 20;

    // Feature bits (5.2.3).
    static final int F_SEG_MAX = 2, F_RO = 5, F_BLK_SIZE = 6, F_FLUSH = 9, F_DISCARD = 13, F_WRITE_ZEROES = 14;
    // Request types and status (5.2.6).
    static final int T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13;
    static final byte S_OK = 0, S_IOERR = 1, S_UNSUPP = 2;
    static final int HEADER = 16, SEGMENT = 16;

    private final String serial;
    private final boolean bootReadOnly;
    private DiskImage image;
    private List<Queue> queues;
    private VirtioInterrupt interrupt;
    private final AtomicLong bytesRead = new AtomicLong();
    private final AtomicLong bytesWritten = new AtomicLong();

    /**
     * @param image  the disk, or null for an empty slot
     * @param serial what GET_ID returns (at most 20 bytes), so the guest finds the disk by name
     */
    public BlockDevice(DiskImage image, String serial) {
        if (serial.getBytes(StandardCharsets.US_ASCII).length > ID_BYTES) {
            throw new IllegalArgumentException("disk serial longer than 20 bytes: " + serial);
        }
        this.image = image;
        this.serial = serial;
        this.bootReadOnly = image != null && image.readOnly();
    }

    public String serial() {
        return serial;
    }

    /** Bytes the guest has read from the current medium (progress of a guest reading a disk). */
    public long bytesRead() {
        return bytesRead.get();
    }

    public long bytesWritten() {
        return bytesWritten.get();
    }

    /** The image in the slot, if any. */
    public synchronized Optional<Path> medium() {
        return Optional.ofNullable(image).map(DiskImage::path);
    }

    /**
     * Puts {@code path} into this (empty) slot and tells the guest the new capacity.
     *
     * @throws DiskException (one line) if the slot is full or the image cannot be opened
     */
    public void insert(Path path, boolean readOnly) {
        DiskImage opened = DiskImage.open(path, readOnly);
        VirtioInterrupt notify;
        synchronized (this) {
            if (image != null) {
                opened.close();
                throw new DiskException("disk slot " + serial + " already holds " + image.path());
            }
            image = opened;
            bytesRead.set(0);
            bytesWritten.set(0);
            notify = interrupt;
        }
        if (notify != null) {
            notify.signalConfigChange();
        }
    }

    /** Empties the slot (flushing what was written) and tells the guest its capacity is 0. */
    public void eject() {
        VirtioInterrupt notify;
        synchronized (this) {
            if (image == null) {
                return;
            }
            try {
                if (!image.readOnly()) {
                    image.flush();
                }
            } catch (SysCallException e) {
                LOG.log(System.Logger.Level.WARNING, "flushing {0} on eject: {1}", image.path(), e.getMessage());
            }
            image.close();
            image = null;
            notify = interrupt;
        }
        if (notify != null) {
            notify.signalConfigChange();
        }
    }

    @Override
    public int deviceType() {
        return DEVICE_TYPE;
    }

    @Override
    public long availableFeatures() {
        long f = VirtioFeatures.TRANSPORT | VirtioFeatures.bit(F_SEG_MAX) | VirtioFeatures.bit(F_BLK_SIZE)
                | VirtioFeatures.bit(F_FLUSH) | VirtioFeatures.bit(F_DISCARD) | VirtioFeatures.bit(F_WRITE_ZEROES);
        return bootReadOnly ? f | VirtioFeatures.bit(F_RO) : f;
    }

    @Override
    public void ackFeatures(long features) {
        // nothing changes with the subset the driver took
    }

    @Override
    public List<Integer> queueMaxSizes() {
        return List.of(QUEUE_SIZE);
    }

    /** struct virtio_blk_config (5.2.4), the fields up to write_zeroes_may_unmap. */
    private synchronized byte[] config() {
        ByteBuffer c = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        c.putLong(0, image == null ? 0 : image.sectors());  // capacity
        c.putInt(12, SEG_MAX);                              // seg_max
        c.putInt(20, DiskImage.SECTOR);                     // blk_size
        c.putInt(36, MAX_DISCARD_SECTORS);                  // max_discard_sectors
        c.putInt(40, MAX_DISCARD_SEG);                      // max_discard_seg
        c.putInt(44, 8);                                    // discard_sector_alignment: 4 KiB
        c.putInt(48, MAX_DISCARD_SECTORS);                  // max_write_zeroes_sectors
        c.putInt(52, MAX_DISCARD_SEG);                      // max_write_zeroes_seg
        c.put(56, (byte) 1);                                // write_zeroes_may_unmap
        return c.array();
    }

    @Override
    public void readConfig(long offset, byte[] data) {
        VirtioDevice.readConfigSpace(config(), offset, data);
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        // writeback toggling (VIRTIO_BLK_F_CONFIG_WCE) is not offered: nothing is writable
    }

    @Override
    public synchronized void activate(GuestMemory memory, List<Queue> queues, VirtioInterrupt interrupt) {
        this.queues = queues;
        this.interrupt = interrupt;
    }

    @Override
    public void queueNotify(int queue) {
        Queue q;
        synchronized (this) {
            if (queues == null) {
                return;
            }
            q = queues.get(queue);
        }
        boolean used = false;
        for (Optional<DescriptorChain> c = q.pop(); c.isPresent(); c = q.pop()) {
            DescriptorChain chain = c.get();
            int written = handle(chain);
            q.addUsed(chain.head(), written);
            used = true;
        }
        if (used && q.needsNotification()) {
            interrupt.signalUsed(queue);
        }
    }

    /** Serves one request; returns the bytes written into the chain (data and status). */
    synchronized int handle(DescriptorChain chain) {
        if (chain.readableLength() < HEADER || chain.writableLength() < 1) {
            return 0; // no header or no status byte: nothing can be answered (5.2.6.1)
        }
        byte[] h = new byte[HEADER];
        chain.read(0, h, 0, HEADER);
        ByteBuffer hb = ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN);
        int type = hb.getInt(0);
        long sector = hb.getLong(8);
        long dataIn = chain.writableLength() - 1; // the status byte is the last writable byte
        int written = 0;
        byte status;
        try {
            switch (type) {
                case T_IN -> {
                    status = transfer(chain, sector, dataIn, true);
                    written = status == S_OK ? Math.toIntExact(dataIn) : 0; // transfer() capped it
                }
                case T_OUT -> status = transfer(chain, sector, chain.readableLength() - HEADER, false);
                case T_FLUSH -> {
                    if (image != null && !image.readOnly()) {
                        image.flush();
                    }
                    status = S_OK;
                }
                case T_GET_ID -> {
                    byte[] id = java.util.Arrays.copyOf(serial.getBytes(StandardCharsets.US_ASCII), ID_BYTES);
                    written = chain.write(0, id, 0, (int) Math.min(ID_BYTES, dataIn));
                    status = S_OK;
                }
                case T_DISCARD, T_WRITE_ZEROES -> status = punch(chain, type);
                default -> status = S_UNSUPP;
            }
        } catch (SysCallException e) {
            LOG.log(System.Logger.Level.WARNING, "disk {0}: {1}", serial, e.getMessage());
            status = S_IOERR;
            written = 0;
        }
        chain.write(dataIn, new byte[] {status}, 0, 1);
        return written + 1;
    }

    /** Whether [sector, sector + bytes/512) is inside the medium; bytes must be whole sectors. */
    private boolean inRange(long sector, long bytes) {
        if (image == null || sector < 0 || bytes < 0 || bytes % DiskImage.SECTOR != 0) {
            return false;
        }
        long sectors = bytes / DiskImage.SECTOR;
        return sector <= image.sectors() && sectors <= image.sectors() - sector;
    }

    private byte transfer(DescriptorChain chain, long sector, long bytes, boolean toGuest) {
        if (bytes > MAX_TRANSFER || !inRange(sector, bytes) || (!toGuest && image.readOnly())) {
            return S_IOERR;
        }
        long offset = sector * DiskImage.SECTOR;
        Scatter data = toGuest ? chain.writableScatter().slice(0, bytes) : chain.readableScatter().slice(HEADER, bytes);
        for (MemorySegment seg : data.parts()) {
            if (toGuest) {
                image.read(seg, offset);
            } else {
                image.write(seg, offset);
            }
            offset += seg.byteSize();
        }
        (toGuest ? bytesRead : bytesWritten).addAndGet(bytes);
        return S_OK;
    }

    /** DISCARD and WRITE_ZEROES: a list of {u64 sector, u32 num_sectors, u32 flags} (5.2.6). */
    private byte punch(DescriptorChain chain, int type) {
        long bytes = chain.readableLength() - HEADER;
        if (bytes <= 0 || bytes % SEGMENT != 0 || bytes / SEGMENT > MAX_DISCARD_SEG) {
            return S_UNSUPP;
        }
        if (image == null || image.readOnly()) {
            return S_IOERR;
        }
        byte[] segs = new byte[(int) bytes];
        chain.read(HEADER, segs, 0, segs.length);
        ByteBuffer b = ByteBuffer.wrap(segs).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < segs.length; i += SEGMENT) {
            long sector = b.getLong(i);
            long count = Integer.toUnsignedLong(b.getInt(i + 8));
            int flags = b.getInt(i + 12);
            boolean unmapFlagOnly = (flags & ~1) == 0;
            if (count > MAX_DISCARD_SECTORS || !unmapFlagOnly || (type == T_DISCARD && flags != 0)) {
                return S_UNSUPP;
            }
            if (!inRange(sector, count * DiskImage.SECTOR)) {
                return S_IOERR;
            }
        }
        for (int i = 0; i < segs.length; i += SEGMENT) {
            long sector = b.getLong(i);
            long count = Integer.toUnsignedLong(b.getInt(i + 8));
            if (count == 0) {
                continue; // fallocate refuses an empty range with EINVAL: nothing to do is success
            }
            // A punched range reads back as zeros: right for both requests, and the host gets
            // the space back.
            image.punch(sector * DiskImage.SECTOR, count * DiskImage.SECTOR);
        }
        return S_OK;
    }

    @Override
    public synchronized void reset() {
        queues = null;
        interrupt = null;
    }

    @Override
    public synchronized void close() {
        if (image != null) {
            image.close();
            image = null;
        }
    }
}
