package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.devices.virtio.rng.RngDevice;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static dev.jwsl.hypervisor.devices.virtio.transport.FuzzTarget.pick;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** virtio-rng: every request is a few writable buffers (a readable one now and then). */
record RngTarget(RngDevice device) implements FuzzTarget {
    RngTarget() {
        this(new RngDevice(new Random(4))); // seeded: SecureRandom would only slow the fuzzer down
    }

    @Override
    public List<Seg> request(int queue, Random rnd) {
        List<Seg> segs = new ArrayList<>();
        if (rnd.nextInt(8) == 0) {
            segs.add(Seg.readable(new byte[pick(rnd, 0, 1, 16)]));
        }
        for (int i = rnd.nextInt(3); i >= 0; i--) {
            // rarely past the limit: generating 64 KiB of randomness is most of what a step would cost
            segs.add(Seg.writable(rnd.nextInt(32) == 0 ? RngDevice.MAX_REQUEST + 1000 : pick(rnd, 0, 1, 64, 4096)));
        }
        return segs;
    }

    @Override
    public void checkWorks(VirtioDriver driver, List<MockQueue> rings) {
        rings.getFirst().add(Seg.writable(64));
        driver.notify(0);
        assertEquals(64, rings.getFirst().awaitUsed(Duration.ofSeconds(5)).length(), "random bytes");
    }

    @Override
    public void close() {
    }
}
