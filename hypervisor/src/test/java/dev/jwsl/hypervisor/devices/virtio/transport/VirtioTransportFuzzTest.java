package dev.jwsl.hypervisor.devices.virtio.transport;

import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.testutil.HostResources;
import dev.jwsl.hypervisor.testutil.MockQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Issue 16: the guest is untrusted. Every device type behind its virtio-mmio transport, driven by
 * a hostile driver ({@link TransportFuzzer}) for {@link #STEPS} steps from a fixed seed. Every
 * {@link #CHECKPOINT} steps a well-behaved driver resets the device, brings it up again and
 * checks that it works; then the process's descriptors and heap are measured. Nothing may
 * escape a device (into the vCPU thread, or out of a thread of its own), and neither
 * descriptors nor heap may grow from one checkpoint to the next.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class VirtioTransportFuzzTest {
    static final int STEPS = 100_000;
    static final int CHECKPOINT = 10_000;
    /** Descriptors a checkpoint may hold above the first: the JVM opens a few of its own now and then. */
    static final long FD_SLACK = 8;
    /** Heap a checkpoint may hold above the second (the first comes before any caches warmed up). */
    static final long HEAP_SLACK = 8L << 20;
    private static final long RAM = 16L << 20;

    @TempDir
    Path dir;

    private final MmapGuestMemory memory = MockQueue.memory();
    private final List<Throwable> uncaught = new CopyOnWriteArrayList<>();
    private Thread.UncaughtExceptionHandler previousHandler;
    private LogCounter log;

    /**
     * The JDK keeps a descriptor of its own from the first socket on (sun.nio.ch's pre-close
     * socket pair): it is opened here, before anything is counted.
     */
    @BeforeAll
    static void openWhatTheJdkKeeps() throws IOException {
        SocketChannel.open().close();
    }

    @BeforeEach
    void watch() {
        previousHandler = Thread.getDefaultUncaughtExceptionHandler();
        Thread.setDefaultUncaughtExceptionHandler((thread, e) -> uncaught.add(e));
        log = new LogCounter();
    }

    @AfterEach
    void restore() {
        log.close();
        Thread.setDefaultUncaughtExceptionHandler(previousHandler);
        memory.close();
    }

    @Test
    void rng() {
        fuzz("rng", RngTarget::new, 0x1604);
    }

    @Test
    void block() {
        fuzz("block", () -> BlockTarget.in(dir), 0x1602);
    }

    @Test
    void p9() {
        fuzz("9p", () -> P9Target.in(dir), 0x1609);
    }

    @Test
    void vsock() {
        fuzz("vsock", () -> VsockTarget.in(dir), 0x1613);
    }

    @Test
    void net() {
        fuzz("net", NetTarget::new, 0x1601);
    }

    private void fuzz(String name, Supplier<FuzzTarget> create, long seed) {
        long fdsBefore = HostResources.openFds();
        List<Long> fds = new ArrayList<>();
        List<Long> heap = new ArrayList<>();
        long start = System.nanoTime();
        TransportFuzzer fuzzer;
        try (FuzzTarget target = create.get();
             VirtioDriver driver = new VirtioDriver(new MmioTransport(target.device(), memory, () -> { }))) {
            fuzzer = new TransportFuzzer(seed, driver, target, memory, RAM);
            for (int step = 0; step < STEPS; step++) {
                if (step % CHECKPOINT == 0) {
                    checkpoint(fuzzer, driver, target, fds, heap);
                }
                try {
                    fuzzer.step();
                } catch (Throwable e) {
                    fail(name + ": step " + step + " of seed " + seed + " threw", e);
                }
                assertNothingEscaped(name, target, step);
            }
            checkpoint(fuzzer, driver, target, fds, heap);
        }
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        System.out.printf("virtio fuzz %s: %d steps in %d ms, %d with the device running (not failed), %d buffers used; descriptors %s;"
                + " heap MiB %s%n", name, STEPS, millis, fuzzer.activeSteps(), fuzzer.used(), fds,
                heap.stream().map(h -> h >> 20).toList());
        log.counts().forEach((kind, n) -> System.out.printf("  %7d  %s%n", n, kind));
        for (int i = 1; i < fds.size(); i++) {
            assertTrue(fds.get(i) <= fds.getFirst() + FD_SLACK, name + ": descriptors grew: " + fds);
        }
        for (int i = 2; i < heap.size(); i++) {
            assertTrue(heap.get(i) <= heap.get(1) + HEAP_SLACK, name + ": heap grew (bytes): " + heap);
        }
        assertEquals(fdsBefore, settledFds(fdsBefore), () -> name + ": descriptors left open after close: " + HostResources.fdTargets());
    }

    /** A well-behaved driver resets, starts over and is served; then what the process holds is measured. */
    private void checkpoint(TransportFuzzer fuzzer, VirtioDriver driver, FuzzTarget target, List<Long> fds, List<Long> heap) {
        driver.reset(); // first: until then the device may still write into the rings about to be cleared
        List<MockQueue> rings = fuzzer.freshRings();
        driver.bringUp(target.device().availableFeatures(), rings);
        target.checkWorks(driver, rings);
        driver.reset();
        fds.add(settledFds(fds.isEmpty() ? Long.MAX_VALUE : fds.getFirst()));
        heap.add(HostResources.heapUsedAfterGc());
    }

    private void assertNothingEscaped(String name, FuzzTarget target, int step) {
        if (!uncaught.isEmpty() || !target.escaped().isEmpty()) {
            List<Throwable> all = new ArrayList<>(uncaught);
            all.addAll(target.escaped());
            AssertionError e = new AssertionError(name + ": by step " + step + ", " + all.size() + " exceptions escaped the device");
            all.forEach(e::addSuppressed);
            throw e;
        }
    }

    /** Open descriptors, once sockets closed on other threads are gone (waits up to 5 s to see no more than {@code limit}). */
    private static long settledFds(long limit) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        long n = HostResources.openFds();
        while (n > limit && System.nanoTime() < deadline) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
            n = HostResources.openFds();
        }
        return n;
    }
}
