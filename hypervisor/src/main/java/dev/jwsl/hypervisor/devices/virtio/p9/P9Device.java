package dev.jwsl.hypervisor.devices.virtio.p9;

import dev.jwsl.hypervisor.devices.DeviceSetupException;
import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.Scatter;
import dev.jwsl.hypervisor.p9.P9Error;
import dev.jwsl.hypervisor.p9.P9Server;
import dev.jwsl.hypervisor.p9.P9Session;
import dev.jwsl.hypervisor.virtio.DescriptorChain;
import dev.jwsl.hypervisor.virtio.GuestWarnings;
import dev.jwsl.hypervisor.virtio.Queue;
import dev.jwsl.hypervisor.virtio.VirtioDevice;
import dev.jwsl.hypervisor.virtio.VirtioFeatures;
import dev.jwsl.hypervisor.virtio.VirtioInterrupt;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The virtio-9p device: a mount tag and a {@link P9Server}. Requests are taken off the queue on
 * the notification thread and run on the server's workers, so a slow host call does not hold up
 * the next request; replies go back to the used ring as they finish, in any order.
 */
public final class P9Device implements VirtioDevice {
    private static final System.Logger LOG = System.getLogger(P9Device.class.getName());

    /** Device type "9P transport" (5). */
    public static final int DEVICE_TYPE = 9;
    /** Worker threads per device: enough to overlap the guest's parallel requests on two cores. */
    public static final int WORKERS = 4;
    static final int QUEUE_SIZE = 1024;
    /** VIRTIO_9P_MOUNT_TAG (5.14.3): the config space holds the tag. */
    static final int F_MOUNT_TAG = 0;
    static final int MAX_TAG = 64;

    private final byte[] tag;
    private final P9Server server;
    private final GuestWarnings warnings = new GuestWarnings(LOG);
    private final Object ring = new Object();
    private P9Session session;
    private Queue queue;
    private VirtioInterrupt interrupt;

    /** A device serving host directory {@code dir} under {@code tag}. */
    public static P9Device forDirectory(String tag, Path dir) {
        try {
            return new P9Device(tag, new P9Server(Map.of(tag, dir), WORKERS));
        } catch (P9Error e) {
            throw new DeviceSetupException(e.getMessage(), e);
        }
    }

    public P9Device(String tag, P9Server server) {
        this.tag = tag.getBytes(StandardCharsets.UTF_8);
        if (this.tag.length == 0 || this.tag.length > MAX_TAG) {
            throw new IllegalArgumentException("9P mount tag must be 1.." + MAX_TAG + " bytes: " + tag);
        }
        this.server = server;
    }

    @Override
    public int deviceType() {
        return DEVICE_TYPE;
    }

    @Override
    public long availableFeatures() {
        return VirtioFeatures.TRANSPORT | VirtioFeatures.bit(F_MOUNT_TAG);
    }

    @Override
    public void ackFeatures(long features) {
        // the tag is offered either way
    }

    @Override
    public List<Integer> queueMaxSizes() {
        return List.of(QUEUE_SIZE);
    }

    /** struct virtio_9p_config: le16 tag_len, u8 tag[tag_len]. */
    @Override
    public void readConfig(long offset, byte[] data) {
        byte[] c = new byte[2 + tag.length];
        c[0] = (byte) tag.length;
        c[1] = (byte) (tag.length >> 8);
        System.arraycopy(tag, 0, c, 2, tag.length);
        VirtioDevice.readConfigSpace(c, offset, data);
    }

    @Override
    public void writeConfig(long offset, byte[] data) {
        // read-only configuration
    }

    @Override
    public synchronized void activate(GuestMemory memory, List<Queue> queues, VirtioInterrupt interrupt) {
        this.queue = queues.get(0);
        this.interrupt = interrupt;
        this.session = server.open();
    }

    @Override
    public void queueNotify(int index) {
        Queue q;
        P9Session s;
        VirtioInterrupt irq;
        synchronized (this) {
            if (queue == null) {
                return;
            }
            q = queue;
            s = session;
            irq = interrupt;
        }
        for (;;) {
            Optional<DescriptorChain> next;
            synchronized (ring) {
                next = q.pop();
            }
            if (next.isEmpty()) {
                return;
            }
            DescriptorChain chain = next.get();
            Scatter request = chain.readableScatter();
            Scatter reply = chain.writableScatter();
            s.submit(request, reply, written -> {
                if (written < 0) {
                    warnings.warn("virtio-9p: a buffer that is not a 9P message", null);
                }
                synchronized (ring) {
                    if (q != queue) {
                        return; // the device was reset while the request ran: a new activation has new queues
                    }
                    q.addUsed(chain.head(), Math.max(written, 0));
                    if (q.needsNotification()) {
                        irq.signalUsed(0);
                    }
                }
            });
        }
    }

    @Override
    public void reset() {
        P9Session s;
        synchronized (this) {
            s = session;
            session = null;
            synchronized (ring) {
                queue = null;
            }
            interrupt = null;
        }
        if (s != null) {
            s.close();
        }
    }

    @Override
    public void close() {
        reset();
        server.close();
    }
}
