package dev.jwsl.hypervisor.net.slirp;

import dev.jwsl.hypervisor.net.Frames;
import dev.jwsl.hypervisor.net.GuestLink;
import dev.jwsl.hypervisor.net.HostNameResponder;
import dev.jwsl.hypervisor.net.NetBackend;
import dev.jwsl.hypervisor.net.NetConfig;
import dev.jwsl.hypervisor.net.NetworkUnavailableException;
import dev.jwsl.hypervisor.sys.EventFd;
import dev.jwsl.hypervisor.sys.LibC;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.net.InetAddress;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * User-mode networking through libslirp (QEMU's {@code -netdev user}): NAT for TCP, UDP and
 * ICMP over ordinary host sockets, DHCP, router advertisements, DNS relayed to the host's
 * resolver, and the host's loopback at {@link NetConfig#HOST_V4}/{@link NetConfig#HOST_V6}. No
 * root, TAP or bridge on the host.
 *
 * <p>libslirp is single-threaded: one platform thread makes every call into it, and libslirp
 * calls back on that thread (frames for the guest, timers, the fds to poll). The thread polls
 * slirp's sockets and an eventfd that {@link #wake()} signals when the guest sends.
 *
 * <p>The guest is untrusted: frames are length-checked before slirp parses them, and while
 * slirp holds {@link #MAX_HOST_SOCKETS} host sockets, frames that would open another one
 * (TCP SYN, UDP, ICMP echo) are dropped, so that a guest cannot exhaust the VMM's descriptors.
 */
public final class SlirpBackend implements NetBackend {
    private static final System.Logger LOG = System.getLogger(SlirpBackend.class.getName());
    /** Most host sockets slirp may hold for the guest's flows. */
    public static final int MAX_HOST_SOCKETS = 4096;
    /** The longest wait in poll: timers and the stop flag are looked at least this often. */
    private static final int MAX_POLL_MS = 1000;
    private static final long LOG_INTERVAL_NS = 10_000_000_000L;

    private final NetConfig config;
    private final int maxHostSockets;
    private final LibSlirp lib;
    private final EventFd wakeFd;
    private final CountDownLatch started = new CountDownLatch(1);
    private volatile boolean stopping;
    private volatile String startError;
    private Thread thread;
    private GuestLink guest;

    // Loop-thread state: the native pollfd array, timers, counters.
    private MemorySegment slirp = MemorySegment.NULL;
    private MemorySegment pollFds;
    private int pollCount;
    private int polledSockets;
    private int registeredSockets;
    private final Map<Long, Timer> timers = new HashMap<>();
    private long nextTimerHandle = 1;
    private final AtomicLong droppedFlows = new AtomicLong();
    private final AtomicLong droppedMalformed = new AtomicLong();
    private final LogInterval limitLog = new LogInterval();
    private final LogInterval guestErrorLog = new LogInterval();
    private final LogInterval linkErrorLog = new LogInterval();
    /** The loop thread's arena: upcall stubs, the configuration, the pollfd array. */
    private Arena loopArena;

    /** A message the guest can provoke at will is logged at most once per {@link #LOG_INTERVAL_NS}. */
    private static final class LogInterval {
        private long lastNs = -LOG_INTERVAL_NS;

        boolean due() {
            long now = System.nanoTime();
            if (now - lastNs < LOG_INTERVAL_NS) {
                return false;
            }
            lastNs = now;
            return true;
        }
    }

    private static final class Timer {
        final int id;
        final MemorySegment cbOpaque;
        long expireMs = -1;

        Timer(int id, MemorySegment cbOpaque) {
            this.id = id;
            this.cbOpaque = cbOpaque;
        }
    }

    /**
     * @throws NetworkUnavailableException if libslirp cannot be loaded
     */
    public SlirpBackend(NetConfig config) {
        this(config, MAX_HOST_SOCKETS);
    }

    /** With a smaller socket limit (tests). */
    public SlirpBackend(NetConfig config, int maxHostSockets) {
        this.config = config;
        this.maxHostSockets = maxHostSockets;
        this.lib = LibSlirp.load();
        this.wakeFd = new EventFd(LibC.EFD_NONBLOCK);
    }

    @Override
    public void start(GuestLink guest) {
        if (thread != null) {
            throw new IllegalStateException("already started");
        }
        this.guest = guest;
        thread = Thread.ofPlatform().name("net-slirp").daemon().start(this::run);
        try {
            started.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (startError != null) {
            throw new NetworkUnavailableException(startError);
        }
    }

    @Override
    public void wake() {
        if (!stopping) {
            wakeFd.signal();
        }
    }

    /** Frames dropped because slirp held {@link #MAX_HOST_SOCKETS} sockets. */
    public long droppedFlows() {
        return droppedFlows.get();
    }

    /** Frames dropped before slirp saw them: shorter than a header or longer than the MTU allows. */
    public long droppedMalformed() {
        return droppedMalformed.get();
    }

    /** Host sockets slirp held at the last poll. */
    public int hostSockets() {
        return Math.max(polledSockets, registeredSockets);
    }

    @Override
    public void close() {
        if (stopping) {
            return;
        }
        if (thread == null) {
            stopping = true;
            wakeFd.close();
            return;
        }
        stopping = true;
        wakeFd.signal();
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!thread.isAlive()) {
            wakeFd.close();
        }
    }

    private void run() {
        try (Arena arena = Arena.ofConfined()) {
            loopArena = arena;
            MemorySegment callbacks = callbacks(arena);
            MemorySegment cfg = slirpConfig(arena);
            MemorySegment addPoll = upcall(arena, "addPoll", LibSlirp.ADD_POLL);
            MemorySegment getRevents = upcall(arena, "getRevents", LibSlirp.GET_REVENTS);
            MemorySegment timeout = arena.allocate(JAVA_INT);
            slirp = (MemorySegment) lib.slirpNew.invokeExact(cfg, callbacks, MemorySegment.NULL);
            if (slirp.equals(MemorySegment.NULL)) {
                startError = "libslirp refused the network configuration";
                started.countDown();
                return;
            }
            LOG.log(System.Logger.Level.DEBUG, "libslirp {0}: {1}", lib.version(), config);
            started.countDown();
            pollFds = loopArena.allocate(LibC.POLLFD_SIZE * 64L, 8);
            while (!stopping) {
                drainGuest();
                pollCount = 0;
                addPollFd(wakeFd.fd(), LibC.POLLIN);
                timeout.set(JAVA_INT, 0, nextTimeoutMs());
                lib.slirpPollfdsFill.invokeExact(slirp, timeout, addPoll, MemorySegment.NULL);
                polledSockets = pollCount - 1;
                int n = LibC.poll(pollFds, pollCount, Math.min(timeout.get(JAVA_INT, 0), MAX_POLL_MS));
                if ((pollFds.get(JAVA_SHORT, 6) & LibC.POLLIN) != 0) {
                    wakeFd.consume();
                }
                lib.slirpPollfdsPoll.invokeExact(slirp, n < 0 ? 1 : 0, getRevents, MemorySegment.NULL);
                fireTimers();
            }
            lib.slirpCleanup.invokeExact(slirp);
            slirp = MemorySegment.NULL;
        } catch (Throwable t) {
            if (startError == null && started.getCount() > 0) {
                startError = "the network stack failed: " + t.getMessage();
            }
            LOG.log(System.Logger.Level.ERROR, "network stack stopped", t);
        } finally {
            started.countDown();
        }
    }

    /**
     * Takes the guest's frames. The device reports a broken ring itself (DEVICE_NEEDS_RESET); any
     * other exception is a bug there, and letting it end this loop would end the VM's network for
     * its lifetime, so it is logged and the loop goes on.
     */
    private void drainGuest() {
        try {
            guest.drainTransmit(this::input);
        } catch (RuntimeException e) {
            if (linkErrorLog.due()) {
                LOG.log(System.Logger.Level.ERROR, "taking the guest's frames failed", e);
            }
        }
    }

    /** A frame from the guest, into slirp, unless it is malformed or would open a socket too many. */
    private void input(MemorySegment frame) {
        long len = frame.byteSize();
        if (len < Frames.ETH_HEADER || len > Frames.ETH_HEADER + config.mtu()) {
            droppedMalformed.incrementAndGet();
            return;
        }
        byte[] hostName = HostNameResponder.reply(frame);
        if (hostName != null) {
            guest.deliver(MemorySegment.ofArray(hostName));
            return;
        }
        boolean opensFlow = Frames.opensFlow(frame);
        if (opensFlow && hostSockets() >= maxHostSockets) {
            droppedFlows.incrementAndGet();
            if (limitLog.due()) {
                LOG.log(System.Logger.Level.WARNING, "the guest holds {0} host sockets: new connections dropped ({1} so far)",
                        hostSockets(), droppedFlows.get());
            }
            return;
        }
        if (opensFlow) {
            polledSockets++; // counted until the next fill recounts: a burst of SYNs cannot overshoot
        }
        try {
            lib.slirpInput.invokeExact(slirp, frame, (int) len);
        } catch (Throwable t) {
            throw LibC.rethrow(t);
        }
    }

    private int nextTimeoutMs() {
        long now = nowMs();
        long next = MAX_POLL_MS;
        for (Timer t : timers.values()) {
            if (t.expireMs >= 0) {
                next = Math.min(next, Math.max(0, t.expireMs - now));
            }
        }
        return (int) next;
    }

    private void fireTimers() throws Throwable {
        long now = nowMs();
        for (Timer t : timers.values().toArray(new Timer[0])) {
            if (t.expireMs >= 0 && t.expireMs <= now) {
                t.expireMs = -1;
                lib.slirpHandleTimer.invokeExact(slirp, t.id, t.cbOpaque);
            }
        }
    }

    private static long nowMs() {
        return System.nanoTime() / 1_000_000;
    }

    private void addPollFd(int fd, int events) {
        if ((pollCount + 1L) * LibC.POLLFD_SIZE > pollFds.byteSize()) {
            MemorySegment bigger = loopArena.allocate(pollFds.byteSize() * 2, 8);
            bigger.copyFrom(pollFds);
            pollFds = bigger;
        }
        long at = (long) pollCount * LibC.POLLFD_SIZE;
        pollFds.set(JAVA_INT, at, fd);
        pollFds.set(JAVA_SHORT, at + 4, (short) events);
        pollFds.set(JAVA_SHORT, at + 6, (short) 0);
        pollCount++;
    }

    // ---- upcalls: on the loop thread; an exception escaping one would end the JVM ----

    private int addPoll(int fd, int slirpEvents, MemorySegment opaque) {
        try {
            int events = 0;
            if ((slirpEvents & LibSlirp.POLL_IN) != 0) events |= LibC.POLLIN;
            if ((slirpEvents & LibSlirp.POLL_OUT) != 0) events |= LibC.POLLOUT;
            if ((slirpEvents & LibSlirp.POLL_PRI) != 0) events |= LibC.POLLPRI;
            addPollFd(fd, events);
            return pollCount - 1;
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.ERROR, "add_poll", t);
            return -1;
        }
    }

    private int getRevents(int index, MemorySegment opaque) {
        if (index <= 0 || index >= pollCount) {
            return 0;
        }
        int r = pollFds.get(JAVA_SHORT, (long) index * LibC.POLLFD_SIZE + 6);
        int out = 0;
        if ((r & LibC.POLLIN) != 0) out |= LibSlirp.POLL_IN;
        if ((r & LibC.POLLOUT) != 0) out |= LibSlirp.POLL_OUT;
        if ((r & LibC.POLLPRI) != 0) out |= LibSlirp.POLL_PRI;
        if ((r & LibC.POLLERR) != 0) out |= LibSlirp.POLL_ERR;
        if ((r & LibC.POLLHUP) != 0) out |= LibSlirp.POLL_HUP;
        return out;
    }

    private long sendPacket(MemorySegment buf, long len, MemorySegment opaque) {
        try {
            if (len > 0 && len <= Frames.ETH_HEADER + NetConfig.MAX_MTU) {
                guest.deliver(buf.reinterpret(len));
            }
            return len;
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.ERROR, "delivering a frame to the guest", t);
            return len; // dropped: TCP retransmits
        }
    }

    private void guestError(MemorySegment msg, MemorySegment opaque) {
        try {
            if (guestErrorLog.due()) {
                LOG.log(System.Logger.Level.WARNING, "guest network error: {0}", msg.reinterpret(256).getString(0));
            }
        } catch (Throwable t) {
            // nothing to do: logging failed
        }
    }

    private long clockGetNs(MemorySegment opaque) {
        return System.nanoTime();
    }

    private MemorySegment timerNewOpaque(int id, MemorySegment cbOpaque, MemorySegment opaque) {
        long handle = nextTimerHandle++;
        timers.put(handle, new Timer(id, cbOpaque));
        return MemorySegment.ofAddress(handle);
    }

    private void timerFree(MemorySegment timer, MemorySegment opaque) {
        timers.remove(timer.address());
    }

    private void timerMod(MemorySegment timer, long expireMs, MemorySegment opaque) {
        Timer t = timers.get(timer.address());
        if (t != null) {
            t.expireMs = Math.max(0, expireMs);
        }
    }

    private void registerPollFd(int fd, MemorySegment opaque) {
        registeredSockets++;
    }

    private void unregisterPollFd(int fd, MemorySegment opaque) {
        registeredSockets = Math.max(0, registeredSockets - 1);
    }

    private void notify(MemorySegment opaque) {
        // the loop polls again after every input anyway
    }

    private void initCompleted(MemorySegment slirp, MemorySegment opaque) {
        // nothing to do
    }

    private MemorySegment upcall(Arena arena, String method, FunctionDescriptor fd) {
        try {
            MethodType type = fd.toMethodType();
            MethodHandle h = MethodHandles.lookup().findVirtual(SlirpBackend.class, method, type).bindTo(this);
            return Linker.nativeLinker().upcallStub(h, fd, arena);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(method, e);
        }
    }

    private MemorySegment callbacks(Arena arena) {
        MemorySegment cb = arena.allocate(LibSlirp.CB_SIZE, 8);
        cb.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CB_SEND_PACKET, upcall(arena, "sendPacket", LibSlirp.SEND_PACKET));
        cb.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CB_GUEST_ERROR, upcall(arena, "guestError", LibSlirp.GUEST_ERROR));
        cb.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CB_CLOCK_GET_NS, upcall(arena, "clockGetNs", LibSlirp.CLOCK_GET_NS));
        cb.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CB_TIMER_FREE, upcall(arena, "timerFree", LibSlirp.TIMER_FREE));
        cb.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CB_TIMER_MOD, upcall(arena, "timerMod", LibSlirp.TIMER_MOD));
        cb.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CB_REGISTER_POLL_FD, upcall(arena, "registerPollFd", LibSlirp.FD_OPAQUE));
        cb.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CB_UNREGISTER_POLL_FD, upcall(arena, "unregisterPollFd", LibSlirp.FD_OPAQUE));
        cb.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CB_NOTIFY, upcall(arena, "notify", LibSlirp.OPAQUE));
        cb.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CB_INIT_COMPLETED, upcall(arena, "initCompleted", LibSlirp.INIT_COMPLETED));
        cb.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CB_TIMER_NEW_OPAQUE, upcall(arena, "timerNewOpaque", LibSlirp.TIMER_NEW_OPAQUE));
        return cb;
    }

    private MemorySegment slirpConfig(Arena arena) {
        MemorySegment c = arena.allocate(LibSlirp.CONFIG_SIZE, 8); // zeroed: NULL strings, no restrictions
        c.set(JAVA_INT, LibSlirp.CFG_VERSION, LibSlirp.CONFIG_VERSION);
        c.set(JAVA_BYTE, LibSlirp.CFG_IN_ENABLED, (byte) 1);
        putAddress(c, LibSlirp.CFG_VNETWORK, NetConfig.NETWORK_V4);
        putAddress(c, LibSlirp.CFG_VNETMASK, prefixMask(NetConfig.PREFIX_V4));
        putAddress(c, LibSlirp.CFG_VHOST, NetConfig.HOST_V4);
        putAddress(c, LibSlirp.CFG_VDHCP_START, NetConfig.GUEST_V4);
        putAddress(c, LibSlirp.CFG_VNAMESERVER, NetConfig.DNS_V4);
        c.set(JAVA_BYTE, LibSlirp.CFG_IN6_ENABLED, (byte) 1);
        putAddress(c, LibSlirp.CFG_VPREFIX_ADDR6, NetConfig.NETWORK_V6);
        c.set(JAVA_BYTE, LibSlirp.CFG_VPREFIX_LEN, (byte) NetConfig.PREFIX_V6);
        putAddress(c, LibSlirp.CFG_VHOST6, NetConfig.HOST_V6);
        putAddress(c, LibSlirp.CFG_VNAMESERVER6, NetConfig.DNS_V6);
        c.set(java.lang.foreign.ValueLayout.ADDRESS, LibSlirp.CFG_VHOSTNAME, arena.allocateFrom("jwsl"));
        c.set(JAVA_LONG, LibSlirp.CFG_IF_MTU, config.mtu());
        c.set(JAVA_LONG, LibSlirp.CFG_IF_MRU, config.mtu());
        return c;
    }

    private static void putAddress(MemorySegment c, long offset, InetAddress a) {
        MemorySegment.copy(a.getAddress(), 0, c, JAVA_BYTE, offset, a.getAddress().length);
    }

    private static InetAddress prefixMask(int bits) {
        int mask = bits == 0 ? 0 : -1 << (32 - bits);
        try {
            return InetAddress.getByAddress(new byte[] {(byte) (mask >>> 24), (byte) (mask >>> 16), (byte) (mask >>> 8), (byte) mask});
        } catch (java.net.UnknownHostException e) {
            throw new IllegalStateException(e);
        }
    }
}
