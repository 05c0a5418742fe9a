package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.net.GuestLink;
import dev.jwsl.hypervisor.net.NetBackend;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A network backend with no network: it takes the guest's frames (keeping the last), gives the
 * guest frames on request, and runs on its caller's thread, so that a fuzzer stays deterministic.
 * What a real backend's thread would die of, {@link GuestLink#drainTransmit} throwing, is kept.
 */
final class RecordingNetBackend implements NetBackend {
    private GuestLink guest;
    private boolean draining;
    private boolean wokenWhileDraining;
    private byte[] lastFrame;
    /** The first of each kind: a fuzzer may provoke the same one thousands of times. */
    private final Map<Class<?>, Throwable> escaped = new LinkedHashMap<>();

    @Override
    public void start(GuestLink guest) {
        this.guest = guest;
    }

    /**
     * Does at once what a backend's thread does when woken: drain what the guest sent, again if
     * the device woke it meanwhile (a thread would find its eventfd signalled), never re-entered.
     */
    @Override
    public void wake() {
        if (draining) {
            wokenWhileDraining = true;
            return;
        }
        draining = true;
        try {
            do {
                wokenWhileDraining = false;
                if (guest != null) {
                    guest.drainTransmit(frame -> lastFrame = frame.toArray(ValueLayout.JAVA_BYTE));
                }
            } while (wokenWhileDraining);
        } catch (RuntimeException | Error e) {
            escaped.putIfAbsent(e.getClass(), e);
        } finally {
            draining = false;
        }
    }

    /** A frame from the network for the guest. */
    void deliver(byte[] frame) {
        if (guest == null) {
            return;
        }
        try {
            guest.deliver(MemorySegment.ofArray(frame));
        } catch (RuntimeException | Error e) {
            escaped.putIfAbsent(e.getClass(), e);
        }
        wake(); // where a backend signals the frames it delivered
    }

    byte[] lastFrame() {
        return lastFrame;
    }

    /** What escaped the device into the backend: the first exception of each class. */
    List<Throwable> escaped() {
        return List.copyOf(escaped.values());
    }

    @Override
    public void close() {
        guest = null;
    }
}
