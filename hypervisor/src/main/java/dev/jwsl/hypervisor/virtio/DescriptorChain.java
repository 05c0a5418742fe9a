package dev.jwsl.hypervisor.virtio;

import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.Scatter;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * One buffer the driver made available: the head index (what goes back in the used ring) and its
 * descriptors, device-readable ones first, then device-writable ones, with any indirect table
 * already flattened. {@link Queue#pop()} has checked every descriptor, so each lies entirely in
 * guest RAM and the order rule holds; the copy helpers here address the readable part and the
 * writable part each as one contiguous byte range.
 */
public final class DescriptorChain {
    private final GuestMemory memory;
    private final int head;
    private final List<Descriptor> descriptors;
    private final int firstWritable;
    private final long readableLength;
    private final long writableLength;

    DescriptorChain(GuestMemory memory, int head, List<Descriptor> descriptors) {
        this.memory = memory;
        this.head = head;
        this.descriptors = List.copyOf(descriptors);
        int w = descriptors.size();
        long r = 0, wl = 0;
        for (int i = 0; i < descriptors.size(); i++) {
            Descriptor d = descriptors.get(i);
            if (d.isWritable()) {
                w = Math.min(w, i);
                wl += d.length();
            } else {
                r += d.length();
            }
        }
        this.firstWritable = w;
        this.readableLength = r;
        this.writableLength = wl;
    }

    /** The head descriptor index, to pass to {@link Queue#addUsed}. */
    public int head() {
        return head;
    }

    /** All descriptors, readable ones first. */
    public List<Descriptor> descriptors() {
        return descriptors;
    }

    /** The device-readable descriptors. */
    public List<Descriptor> readable() {
        return descriptors.subList(0, firstWritable);
    }

    /** The device-writable descriptors. */
    public List<Descriptor> writable() {
        return descriptors.subList(firstWritable, descriptors.size());
    }

    /** Total bytes in the readable descriptors. */
    public long readableLength() {
        return readableLength;
    }

    /** Total bytes in the writable descriptors. */
    public long writableLength() {
        return writableLength;
    }

    /** The readable part as one range of guest memory. */
    public Scatter readableScatter() {
        return scatter(readable());
    }

    /** The writable part as one range of guest memory. */
    public Scatter writableScatter() {
        return scatter(writable());
    }

    private Scatter scatter(List<Descriptor> part) {
        List<MemorySegment> segments = new ArrayList<>(part.size());
        for (Descriptor d : part) {
            segments.add(memory.slice(d.address(), d.length()));
        }
        return Scatter.of(segments);
    }

    /**
     * Copies up to {@code length} readable bytes starting {@code offset} bytes into the readable
     * part into {@code dst[dstOffset..]}; returns how many were copied (fewer at the end).
     */
    public int read(long offset, byte[] dst, int dstOffset, int length) {
        return readableScatter().read(offset, dst, dstOffset, length);
    }

    /** All readable bytes, or the first {@code max} if there are more. */
    public byte[] readAll(int max) {
        byte[] out = new byte[(int) Math.min(max, readableLength)];
        read(0, out, 0, out.length);
        return out;
    }

    /**
     * Copies {@code src[srcOffset..srcOffset+length)} into the writable part starting
     * {@code offset} bytes in; returns how many bytes fit.
     */
    public int write(long offset, byte[] src, int srcOffset, int length) {
        return writableScatter().write(offset, src, srcOffset, length);
    }

    /** Writes {@code src} at the start of the writable part; returns how many bytes fit. */
    public int write(byte[] src) {
        return write(0, src, 0, src.length);
    }

    @Override
    public String toString() {
        return "DescriptorChain[head=" + head + ", " + descriptors + "]";
    }
}
