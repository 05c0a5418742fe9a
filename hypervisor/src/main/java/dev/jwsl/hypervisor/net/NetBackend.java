package dev.jwsl.hypervisor.net;

/**
 * The host side of a virtio-net device: a network stack that runs on a thread of its own and
 * exchanges Ethernet frames with the guest through a {@link GuestLink}.
 */
public interface NetBackend extends AutoCloseable {
    /** Starts the backend's thread; it then calls {@code guest} only from that thread. */
    void start(GuestLink guest);

    /** The guest queued frames or posted receive buffers: the backend's thread should look. */
    void wake();

    /** Stops the thread and releases every host socket. */
    @Override
    void close();
}
