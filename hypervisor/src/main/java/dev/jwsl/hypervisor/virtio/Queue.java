package dev.jwsl.hypervisor.virtio;

import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.GuestMemoryException;

import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Optional;

/**
 * The device side of one split virtqueue (VIRTIO 1.2 2.7). The transport fills in the size and
 * ring addresses the driver chose, {@link #validate()}s them and sets the negotiated features;
 * the device then {@link #pop()}s available chains, {@link #addUsed returns} them and asks
 * {@link #needsNotification()} before interrupting the driver.
 *
 * <p>Ring layout (2.7.6, 2.7.8): the available ring is {@code flags, idx, ring[size], used_event}
 * (u16 each); the used ring is {@code flags, idx, ring[size] of {u32 id, u32 len}, avail_event}.
 * Not thread-safe: one device thread owns a queue at a time.
 *
 * <p>What one driver can cost the device is bounded by the queue: a chain has at most
 * {@link #size()} descriptors, indirect ones included (2.7.5.3.1), and a chain the device has
 * not returned cannot be made available again, so at most {@link #size()} requests are in
 * flight however fast the driver publishes. A queue object serves one activation of its device:
 * a device reset {@link #retire retires} it.
 */
public final class Queue {
    /** Largest queue size the split ring format allows (2.7: Queue Size up to 32768). */
    public static final int MAX_SIZE = 32768;
    /** Driver: do not interrupt me on used buffers (2.7.7, without EVENT_IDX). */
    public static final int VRING_AVAIL_F_NO_INTERRUPT = 1;
    /** Most descriptors one indirect table may hold: the ring's own limit. */
    static final int MAX_INDIRECT = MAX_SIZE;

    private final GuestMemory memory;
    private final int maxSize;
    private int size;
    private boolean ready;
    private long descTable;
    private long availRing;
    private long usedRing;
    private boolean eventIdx;
    private boolean indirect;

    private int nextAvail;
    private int nextUsed;
    private int signalledUsed;
    private boolean signalledValid;
    private boolean broken;
    /** Heads popped and not yet returned. */
    private final BitSet inFlight = new BitSet();
    /**
     * The device was reset: a device thread that still holds this queue (a request that finishes
     * late) must neither take from nor write into rings a re-initialised driver may have reused.
     */
    private volatile boolean retired;

    /** A queue of at most {@code maxSize} entries (a power of two) over {@code memory}. */
    public Queue(GuestMemory memory, int maxSize) {
        if (maxSize <= 0 || maxSize > MAX_SIZE || Integer.bitCount(maxSize) != 1) {
            throw new IllegalArgumentException("queue size must be a power of two up to 32768: " + maxSize);
        }
        this.memory = memory;
        this.maxSize = maxSize;
        this.size = maxSize;
    }

    /** QueueNumMax: the largest size the device supports. */
    public int maxSize() {
        return maxSize;
    }

    /** The queue size in use (the driver's QueueNum). */
    public int size() {
        return size;
    }

    /** QueueNum: the size the driver chose (checked by {@link #validate()}). */
    public void setSize(int size) {
        this.size = size;
    }

    /** QueueReady: the driver enabled this queue. */
    public boolean ready() {
        return ready;
    }

    /** Sets QueueReady. */
    public void setReady(boolean ready) {
        this.ready = ready;
    }

    /** Guest address of the descriptor table (QueueDesc). */
    public long descTable() {
        return descTable;
    }

    /** Sets QueueDesc. */
    public void setDescTable(long gpa) {
        this.descTable = gpa;
    }

    /** Guest address of the available ring (QueueDriver). */
    public long availRing() {
        return availRing;
    }

    /** Sets QueueDriver. */
    public void setAvailRing(long gpa) {
        this.availRing = gpa;
    }

    /** Guest address of the used ring (QueueDevice). */
    public long usedRing() {
        return usedRing;
    }

    /** Sets QueueDevice. */
    public void setUsedRing(long gpa) {
        this.usedRing = gpa;
    }

    /** Applies the negotiated feature bits that change ring behaviour (EVENT_IDX, INDIRECT_DESC). */
    public void setFeatures(long acked) {
        this.eventIdx = VirtioFeatures.has(acked, VirtioFeatures.RING_F_EVENT_IDX);
        this.indirect = VirtioFeatures.has(acked, VirtioFeatures.RING_F_INDIRECT_DESC);
    }

    /** True once a malformed chain was seen; a broken queue pops nothing until reset. */
    public boolean isBroken() {
        return broken;
    }

    /** Stops serving this queue until {@link #reset()}. */
    public void markBroken() {
        broken = true;
    }

    /** The device was reset (2.4): from now on this queue pops nothing and returns nothing. */
    public void retire() {
        retired = true;
    }

    /**
     * Checks the driver's configuration: size a power of two no larger than the maximum, and each
     * ring aligned (2.7: 16, 2 and 4 bytes) and entirely in guest RAM.
     *
     * @throws QueueException {@link QueueException.Reason#INVALID_CONFIG}
     */
    public void validate() {
        if (size <= 0 || size > maxSize || Integer.bitCount(size) != 1) {
            throw new QueueException(QueueException.Reason.INVALID_CONFIG, "queue size " + size + " (max " + maxSize + ")");
        }
        if ((descTable & 15) != 0 || (availRing & 1) != 0 || (usedRing & 3) != 0) {
            throw new QueueException(QueueException.Reason.INVALID_CONFIG, "misaligned ring at desc 0x%x avail 0x%x used 0x%x"
                    .formatted(descTable, availRing, usedRing));
        }
        try {
            memory.slice(descTable, (long) Descriptor.SIZE * size);
            memory.slice(availRing, 6L + 2L * size);
            memory.slice(usedRing, 6L + 8L * size);
        } catch (GuestMemoryException e) {
            throw new QueueException(QueueException.Reason.INVALID_CONFIG, "ring outside guest RAM", e);
        }
    }

    /** The available ring's idx: how many chains the driver has ever made available, mod 2^16. */
    private int availIdx() {
        int idx = Short.toUnsignedInt(memory.readShort(availRing + 2));
        VarHandle.acquireFence(); // ring entries are read after the index that published them
        return idx;
    }

    /**
     * The next chain the driver made available, or empty when there is none (or the queue is
     * broken or not ready). With EVENT_IDX, also asks the driver to notify when it adds the next one.
     *
     * @throws QueueException if the chain or the available index is malformed; the queue is then broken
     */
    public Optional<DescriptorChain> pop() {
        if (broken || !ready || retired) {
            return Optional.empty();
        }
        try {
            if (eventIdx) {
                // avail_event (2.7.10): "notify me once you publish index nextAvail"; the fence
                // orders this store before the idx load so a concurrent add is never missed.
                memory.writeShort(usedRing + 4 + 8L * size, (short) nextAvail);
                VarHandle.fullFence();
            }
            int avail = availIdx();
            int pending = (avail - nextAvail) & 0xffff;
            if (pending == 0) {
                return Optional.empty();
            }
            if (pending > size) {
                throw new QueueException(QueueException.Reason.AVAIL_IDX_JUMP,
                        "avail idx %d is %d ahead of %d, queue size %d".formatted(avail, pending, nextAvail, size));
            }
            int head = Short.toUnsignedInt(memory.readShort(availRing + 4 + 2L * (nextAvail % size)));
            if (inFlight.get(head)) {
                throw new QueueException(QueueException.Reason.HEAD_IN_FLIGHT, "head " + head + " was not returned yet");
            }
            DescriptorChain chain = walk(head);
            inFlight.set(head);
            nextAvail = (nextAvail + 1) & 0xffff;
            return Optional.of(chain);
        } catch (QueueException e) {
            broken = true;
            throw e;
        } catch (GuestMemoryException e) {
            broken = true;
            throw new QueueException(QueueException.Reason.INVALID_CONFIG, "ring access failed: " + e.getMessage(), e);
        }
    }

    private DescriptorChain walk(int head) {
        if (head >= size) {
            throw new QueueException(QueueException.Reason.DESC_INDEX_OUT_OF_RANGE, "head " + head + " >= size " + size);
        }
        List<Descriptor> out = new ArrayList<>();
        int index = head;
        while (true) {
            Descriptor d = readDescriptor(descTable, index);
            if (d.isIndirect()) {
                walkIndirect(d, out);
                break;
            }
            append(out, d);
            if (!d.hasNext()) {
                break;
            }
            index = d.next();
            if (index >= size) {
                throw new QueueException(QueueException.Reason.DESC_INDEX_OUT_OF_RANGE, "next " + index + " >= size " + size);
            }
        }
        return new DescriptorChain(memory, head, out);
    }

    /** An indirect table (2.7.5.3): must be the last descriptor, and holds no further indirection. */
    private void walkIndirect(Descriptor table, List<Descriptor> out) {
        if (!indirect) {
            throw new QueueException(QueueException.Reason.INDIRECT_NOT_NEGOTIATED, "indirect descriptor " + table);
        }
        if (table.hasNext()) {
            throw new QueueException(QueueException.Reason.INDIRECT_NESTED, "indirect descriptor with F_NEXT");
        }
        long n = table.length() / Descriptor.SIZE;
        if (table.length() == 0 || table.length() % Descriptor.SIZE != 0 || n > MAX_INDIRECT) {
            throw new QueueException(QueueException.Reason.INDIRECT_BAD_LENGTH, "indirect table length " + table.length());
        }
        checkInRam(table);
        int index = 0;
        while (true) {
            Descriptor d = readDescriptor(table.address(), index);
            if (d.isIndirect()) {
                throw new QueueException(QueueException.Reason.INDIRECT_NESTED, "indirect descriptor in an indirect table");
            }
            append(out, d);
            if (!d.hasNext()) {
                return;
            }
            index = d.next();
            if (index >= n) {
                throw new QueueException(QueueException.Reason.DESC_INDEX_OUT_OF_RANGE, "indirect next " + index + " >= " + n);
            }
        }
    }

    /**
     * Adds one descriptor to a chain. The chain's length, indirect descriptors included, is what
     * bounds a loop (2.7.5.3.1: no longer than the queue), and what one chain costs the device.
     */
    private void append(List<Descriptor> out, Descriptor d) {
        if (out.size() == size) {
            throw new QueueException(QueueException.Reason.DESC_CHAIN_TOO_LONG, "chain longer than the queue (" + size + ")");
        }
        if (!d.isWritable() && !out.isEmpty() && out.getLast().isWritable()) {
            throw new QueueException(QueueException.Reason.READABLE_AFTER_WRITABLE, "descriptor " + d);
        }
        checkInRam(d);
        out.add(d);
    }

    private void checkInRam(Descriptor d) {
        try {
            memory.slice(d.address(), d.length());
        } catch (GuestMemoryException e) {
            throw new QueueException(QueueException.Reason.DESC_ADDRESS_OUT_OF_RANGE,
                    "buffer 0x%x+0x%x is outside guest RAM".formatted(d.address(), d.length()), e);
        }
    }

    private Descriptor readDescriptor(long table, int index) {
        long at = table + (long) Descriptor.SIZE * index;
        return new Descriptor(memory.readLong(at), Integer.toUnsignedLong(memory.readInt(at + 8)),
                Short.toUnsignedInt(memory.readShort(at + 12)), Short.toUnsignedInt(memory.readShort(at + 14)));
    }

    /**
     * Returns chain {@code head} to the driver with {@code length} bytes written into it (2.7.8).
     *
     * @throws QueueException if {@code head} is not a chain this queue popped and has not returned
     */
    public void addUsed(int head, int length) {
        if (retired) {
            return; // the request outlived its activation: nobody waits for it
        }
        if (head < 0 || head >= size || !inFlight.get(head)) {
            throw new QueueException(QueueException.Reason.USED_INDEX_OUT_OF_RANGE, "head " + head + " is not in flight");
        }
        inFlight.clear(head);
        long entry = usedRing + 4 + 8L * (nextUsed % size);
        memory.writeInt(entry, head);
        memory.writeInt(entry + 4, length);
        nextUsed = (nextUsed + 1) & 0xffff;
        VarHandle.releaseFence(); // the entry is visible before the idx that publishes it
        memory.writeShort(usedRing + 2, (short) nextUsed);
    }

    /**
     * Whether the driver wants an interrupt for the used buffers added since the last time this
     * returned true: with EVENT_IDX, if used_event was crossed (2.7.10, vring_need_event);
     * otherwise unless the driver set VRING_AVAIL_F_NO_INTERRUPT (2.7.7).
     */
    public boolean needsNotification() {
        if (retired) {
            return false;
        }
        VarHandle.fullFence(); // the used idx store is ordered before reading the driver's wishes
        if (!eventIdx) {
            return (memory.readShort(availRing) & VRING_AVAIL_F_NO_INTERRUPT) == 0;
        }
        int usedEvent = Short.toUnsignedInt(memory.readShort(availRing + 4 + 2L * size));
        int old = signalledUsed;
        boolean wasValid = signalledValid;
        signalledUsed = nextUsed;
        signalledValid = true;
        return !wasValid || ((nextUsed - usedEvent - 1) & 0xffff) < ((nextUsed - old) & 0xffff);
    }

    /**
     * This queue's state for a snapshot.
     *
     * @throws IllegalStateException if a chain is in flight (a snapshot needs quiet devices) or the queue is broken
     */
    public QueueState state() {
        if (!inFlight.isEmpty() || broken) {
            throw new IllegalStateException(broken ? "a queue is broken" : inFlight.cardinality() + " requests in flight");
        }
        return new QueueState(size, ready, descTable, availRing, usedRing, nextAvail, nextUsed, signalledUsed, signalledValid);
    }

    /**
     * Takes a {@link #state()} back on a new queue, before the transport validates it. Ring
     * positions are 16-bit; anything else is refused.
     */
    public void restore(QueueState s) {
        if (s.nextAvail() < 0 || s.nextAvail() > 0xffff || s.nextUsed() < 0 || s.nextUsed() > 0xffff
                || s.signalledUsed() < 0 || s.signalledUsed() > 0xffff) {
            throw new QueueException(QueueException.Reason.INVALID_CONFIG, "ring positions out of range: " + s);
        }
        size = s.size();
        ready = s.ready();
        descTable = s.descTable();
        availRing = s.availRing();
        usedRing = s.usedRing();
        nextAvail = s.nextAvail();
        nextUsed = s.nextUsed();
        signalledUsed = s.signalledUsed();
        signalledValid = s.signalledValid();
    }

    /** The device's next available-ring position (for tests and diagnostics). */
    public int nextAvail() {
        return nextAvail;
    }

    /** The device's next used-ring position. */
    public int nextUsed() {
        return nextUsed;
    }
}
