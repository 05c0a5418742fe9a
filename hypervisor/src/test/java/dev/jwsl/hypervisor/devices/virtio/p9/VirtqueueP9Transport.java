package dev.jwsl.hypervisor.devices.virtio.p9;

import dev.jwsl.hypervisor.devices.virtio.transport.VirtioDriver;
import dev.jwsl.hypervisor.p9.P9Client;
import dev.jwsl.hypervisor.testutil.MockQueue;
import dev.jwsl.hypervisor.testutil.MockQueue.Seg;

import java.time.Duration;

/**
 * A 9P client's transport over a virtio-9p queue, as the guest's trans_virtio uses it: each
 * request is one chain, the request readable and a reply buffer writable, and the reply is what
 * the device reports it wrote.
 */
public final class VirtqueueP9Transport implements P9Client.Transport {
    private final VirtioDriver driver;
    private final MockQueue ring;
    private final int replySize;

    public VirtqueueP9Transport(VirtioDriver driver, MockQueue ring, int replySize) {
        this.driver = driver;
        this.ring = ring;
        this.replySize = replySize;
    }

    @Override
    public byte[] rpc(byte[] request) {
        MockQueue.Chain c = ring.add(Seg.readable(request), Seg.writable(replySize));
        driver.notify(0);
        MockQueue.Used used = ring.awaitUsed(Duration.ofSeconds(10));
        if (used.id() != c.head()) {
            throw new AssertionError("reply for chain " + used.id() + ", expected " + c.head());
        }
        return ring.read(c.addresses().get(1), used.length());
    }
}
