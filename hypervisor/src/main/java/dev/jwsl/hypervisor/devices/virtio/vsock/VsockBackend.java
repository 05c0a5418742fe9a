package dev.jwsl.hypervisor.devices.virtio.vsock;

import java.io.IOException;
import java.nio.channels.SocketChannel;

/** The host side of a {@link VsockDevice}: where guest connections go and host connections come from. */
public interface VsockBackend extends AutoCloseable {
    /** Receives host-initiated connections. */
    @FunctionalInterface
    interface Listener {
        /** A host client asked to connect to guest port {@code guestPort} over {@code channel}. */
        void hostConnect(int guestPort, SocketChannel channel);
    }

    /**
     * Opens the host end of a guest connection to host port {@code port}.
     *
     * @throws IOException if nothing listens there
     */
    SocketChannel connect(int port) throws IOException;

    /** Starts accepting host-initiated connections (once; later calls do nothing). */
    void start(Listener listener) throws IOException;

    /** The guest accepted a host-initiated connection on local port {@code hostPort}: tell the client. */
    void accepted(SocketChannel channel, int hostPort) throws IOException;

    /** Stops accepting and releases the listening socket. */
    @Override
    void close();
}
