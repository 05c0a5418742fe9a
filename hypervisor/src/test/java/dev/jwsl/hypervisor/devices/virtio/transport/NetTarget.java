package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.devices.virtio.net.NetDevice;
import dev.jwsl.hypervisor.net.NetConfig;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static dev.jwsl.hypervisor.devices.virtio.transport.FuzzTarget.bytes;
import static dev.jwsl.hypervisor.devices.virtio.transport.FuzzTarget.pick;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * virtio-net in front of {@link RecordingNetBackend}: the device is what is under test, and the
 * real network stack would only make the run slow and nondeterministic. Frames go out with any
 * checksum request and length; frames come in now and then.
 */
record NetTarget(NetDevice device, RecordingNetBackend backend) implements FuzzTarget {
    /** struct virtio_net_hdr with num_buffers (5.1.6), and its NEEDS_CSUM flag. */
    private static final int HEADER = 12, NEEDS_CSUM = 1;

    NetTarget() {
        this(new RecordingNetBackend());
    }

    private NetTarget(RecordingNetBackend backend) {
        this(new NetDevice(new NetConfig(), backend), backend);
    }

    private static byte[] header(int flags, int csumStart, int csumOffset) {
        return ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN).put(0, (byte) flags)
                .putShort(6, (short) csumStart).putShort(8, (short) csumOffset).array();
    }

    @Override
    public List<Seg> request(int queue, Random rnd) {
        if (queue == 0) {
            return List.of(Seg.writable(pick(rnd, HEADER + 1514, HEADER + 1514, HEADER + 60, 10, 65550)));
        }
        // frames past the 64 KiB MTU now and then: mostly, making and copying them would be the run time
        byte[] frame = bytes(rnd, rnd.nextInt(16) == 0 ? pick(rnd, 65000, 70000) : pick(rnd, 0, 13, 14, 60, 1514));
        int flags = pick(rnd, 0, 0, NEEDS_CSUM, rnd.nextInt(256));
        byte[] packet = new byte[HEADER + frame.length];
        System.arraycopy(header(flags, pick(rnd, 14, 34, rnd.nextInt(0x10000)), pick(rnd, 6, 16, rnd.nextInt(0x10000))),
                0, packet, 0, HEADER);
        System.arraycopy(frame, 0, packet, HEADER, frame.length);
        List<Seg> segs = new ArrayList<>(FuzzTarget.readable(rnd, packet));
        if (rnd.nextInt(16) == 0) {
            segs.add(Seg.writable(8));
        }
        return segs;
    }

    @Override
    public void hostStep(Random rnd) {
        if (rnd.nextInt(20) == 0) {
            backend.deliver(bytes(rnd, pick(rnd, 14, 60, 1514, 9000)));
        }
    }

    /** A frame goes out to the backend, and one comes in. */
    @Override
    public void checkWorks(VirtioDriver driver, List<MockQueue> rings) {
        byte[] out = bytes(new Random(1), 60);
        byte[] packet = Arrays.copyOf(header(0, 0, 0), HEADER + out.length);
        System.arraycopy(out, 0, packet, HEADER, out.length);
        rings.get(1).add(Seg.readable(packet));
        driver.notify(1);
        rings.get(1).awaitUsed(Duration.ofSeconds(5));
        assertArrayEquals(out, backend.lastFrame(), "the frame the guest sent");
        MockQueue.Chain rx = rings.get(0).add(Seg.writable(HEADER + 1514));
        driver.notify(0);
        byte[] in = bytes(new Random(2), 90);
        backend.deliver(in);
        assertEquals(HEADER + in.length, rings.get(0).awaitUsed(Duration.ofSeconds(5)).length());
        assertArrayEquals(in, rings.get(0).read(rx.addresses().getFirst() + HEADER, in.length), "the frame the guest got");
    }

    /** What escaped into the backend's thread: nothing may, a broken ring included (issue 16, finding 4). */
    @Override
    public List<Throwable> escaped() {
        return backend.escaped();
    }

    @Override
    public void close() {
        device.close();
    }
}
