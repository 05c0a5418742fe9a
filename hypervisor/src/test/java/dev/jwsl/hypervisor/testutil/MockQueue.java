package dev.jwsl.hypervisor.testutil;

import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.virtio.Descriptor;
import dev.jwsl.hypervisor.virtio.Queue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.LockSupport;

/**
 * The driver side of a split virtqueue, for device tests without KVM (after rust-vmm
 * virtio-queue's mock.rs): lays the rings out in guest memory, adds chains the way Linux's
 * virtio_ring does, and reads back the used ring. Raw writers let tests build malformed rings.
 */
public final class MockQueue {
    /** Where the rings go: one page each for desc, avail and used per 256 entries. */
    public static final long RING_BASE = 0x10000;
    /** Where buffers are allocated from. */
    public static final long DATA_BASE = 0x100000;

    /** One buffer of a chain to add: device-readable bytes or a device-writable length. */
    public record Seg(byte[] data, int writableLength) {
        public static Seg readable(byte[] data) {
            return new Seg(data, -1);
        }

        public static Seg writable(int length) {
            return new Seg(null, length);
        }

        boolean isWritable() {
            return data == null;
        }
    }

    /** A chain the mock added: its head and each buffer's guest address. */
    public record Chain(int head, List<Long> addresses) {}

    /** An entry of the used ring. */
    public record Used(int id, int length) {}

    private final GuestMemory memory;
    private final int size;
    public final long desc, avail, used;
    private int nextDesc;
    private int availIdx;
    private int usedSeen;
    private final long dataBase;
    private final long dataEnd;
    private long dataNext;

    public MockQueue(GuestMemory memory, int size) {
        this(memory, size, RING_BASE, DATA_BASE);
    }

    public MockQueue(GuestMemory memory, int size, long ringBase, long dataBase) {
        this(memory, size, ringBase, dataBase, Long.MAX_VALUE);
    }

    /**
     * Buffers come from {@code [dataBase, dataEnd)}, starting over at the bottom when it runs out,
     * so that a long-running driver (a fuzzer) reuses its memory as a real one does.
     */
    public MockQueue(GuestMemory memory, int size, long ringBase, long dataBase, long dataEnd) {
        this.memory = memory;
        this.size = size;
        this.desc = ringBase;
        this.avail = align(desc + 16L * size, 4096);
        this.used = align(avail + 6 + 2L * size, 4096);
        this.dataBase = dataBase;
        this.dataEnd = dataEnd;
        this.dataNext = dataBase;
        memory.slice(desc, used + 6 + 8L * size - desc).fill((byte) 0); // fresh rings, as a driver allocates them
    }

    /** The queue size the driver uses (QueueNum). */
    public int size() {
        return size;
    }

    /** 16 MiB of guest RAM at 0, enough for the mock rings and buffers. */
    public static MmapGuestMemory memory() {
        return MmapGuestMemory.create(List.of(new long[] {0, 16 << 20}));
    }

    private static long align(long v, long a) {
        return (v + a - 1) & -a;
    }

    /** A device-side queue configured with this mock's rings, ready, for {@code features}. */
    public Queue deviceQueue(int maxSize, long features) {
        Queue q = new Queue(memory, maxSize);
        configure(q, features);
        return q;
    }

    /** Configures {@code q} as the driver would through the transport. */
    public void configure(Queue q, long features) {
        q.setSize(size);
        q.setDescTable(desc);
        q.setAvailRing(avail);
        q.setUsedRing(used);
        q.setFeatures(features);
        q.validate();
        q.setReady(true);
    }

    /** Allocates a guest buffer of {@code length} bytes. */
    public long allocate(int length) {
        if (dataNext + length > dataEnd) {
            dataNext = dataBase;
        }
        long at = dataNext;
        dataNext = align(dataNext + Math.max(length, 1), 16);
        return at;
    }

    /** Writes descriptor {@code index} raw. */
    public void writeDesc(int index, long address, int length, int flags, int next) {
        long at = desc + 16L * index;
        memory.writeLong(at, address);
        memory.writeInt(at + 8, length);
        memory.writeShort(at + 12, (short) flags);
        memory.writeShort(at + 14, (short) next);
    }

    /** Writes descriptor {@code index} of a table at {@code table} raw (for indirect tables). */
    public void writeDescAt(long table, int index, long address, int length, int flags, int next) {
        long at = table + 16L * index;
        memory.writeLong(at, address);
        memory.writeInt(at + 8, length);
        memory.writeShort(at + 12, (short) flags);
        memory.writeShort(at + 14, (short) next);
    }

    /** Puts {@code head} in the next available slot and publishes it. */
    public void publish(int head) {
        memory.writeShort(avail + 4 + 2L * (availIdx % size), (short) head);
        availIdx = (availIdx + 1) & 0xffff;
        memory.writeShort(avail + 2, (short) availIdx);
    }

    /** Sets the available idx raw. */
    public void setAvailIdx(int idx) {
        availIdx = idx & 0xffff;
        memory.writeShort(avail + 2, (short) idx);
    }

    /** Adds a chain of fresh buffers and makes it available. */
    public Chain add(Seg... segs) {
        int head = nextDesc;
        List<Long> addresses = new ArrayList<>();
        for (int i = 0; i < segs.length; i++) {
            Seg s = segs[i];
            int length = s.isWritable() ? s.writableLength() : s.data().length;
            long at = allocate(length);
            if (!s.isWritable()) {
                memory.write(at, s.data());
            }
            addresses.add(at);
            int index = (nextDesc + i) % size;
            int flags = (s.isWritable() ? Descriptor.F_WRITE : 0) | (i + 1 < segs.length ? Descriptor.F_NEXT : 0);
            writeDesc(index, at, length, flags, (index + 1) % size);
        }
        nextDesc = (nextDesc + segs.length) % size;
        publish(head);
        return new Chain(head, addresses);
    }

    /** Adds a chain as one indirect descriptor pointing at a table of the given buffers. */
    public Chain addIndirect(Seg... segs) {
        long table = allocate(16 * segs.length);
        List<Long> addresses = new ArrayList<>();
        for (int i = 0; i < segs.length; i++) {
            Seg s = segs[i];
            int length = s.isWritable() ? s.writableLength() : s.data().length;
            long at = allocate(length);
            if (!s.isWritable()) {
                memory.write(at, s.data());
            }
            addresses.add(at);
            writeDescAt(table, i, at, length,
                    (s.isWritable() ? Descriptor.F_WRITE : 0) | (i + 1 < segs.length ? Descriptor.F_NEXT : 0), i + 1);
        }
        int head = nextDesc;
        writeDesc(head, table, 16 * segs.length, Descriptor.F_INDIRECT, 0);
        nextDesc = (nextDesc + 1) % size;
        publish(head);
        return new Chain(head, addresses);
    }

    /** The next used entry the device returned, if any. */
    public Optional<Used> nextUsed() {
        int idx = Short.toUnsignedInt(memory.readShort(used + 2));
        if (idx == usedSeen) {
            return Optional.empty();
        }
        long at = used + 4 + 8L * (usedSeen % size);
        usedSeen = (usedSeen + 1) & 0xffff;
        return Optional.of(new Used(memory.readInt(at), memory.readInt(at + 4)));
    }

    /**
     * The next used entry, waiting up to {@code timeout} for a device that answers on its own
     * threads (9P workers, a network backend).
     *
     * @throws AssertionError if none comes
     */
    public Used awaitUsed(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (Optional<Used> u = nextUsed(); ; u = nextUsed()) {
            if (u.isPresent()) {
                return u.get();
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no used buffer within " + timeout);
            }
            LockSupport.parkNanos(100_000);
        }
    }

    /** The used ring's idx. */
    public int usedIdx() {
        return Short.toUnsignedInt(memory.readShort(used + 2));
    }

    /** Sets the available ring's flags (VRING_AVAIL_F_NO_INTERRUPT). */
    public void setAvailFlags(int flags) {
        memory.writeShort(avail, (short) flags);
    }

    /** Sets used_event (EVENT_IDX): interrupt me once the used idx passes this. */
    public void setUsedEvent(int idx) {
        memory.writeShort(avail + 4 + 2L * size, (short) idx);
    }

    /** The device's avail_event (EVENT_IDX). */
    public int availEvent() {
        return Short.toUnsignedInt(memory.readShort(used + 4 + 8L * size));
    }

    /** Bytes at {@code address}. */
    public byte[] read(long address, int length) {
        return memory.read(address, length);
    }

    public GuestMemory guestMemory() {
        return memory;
    }
}
