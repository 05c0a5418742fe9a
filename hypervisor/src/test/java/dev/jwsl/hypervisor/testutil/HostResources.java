package dev.jwsl.hypervisor.testutil;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/** What a guest could make the VMM process hold: host descriptors and heap. */
public final class HostResources {
    private HostResources() {}

    /**
     * Descriptors this process has open now, but for the JDK's epoll instances: it opens its
     * virtual-thread I/O pollers lazily, once, and nothing in the hypervisor uses epoll itself.
     */
    public static long openFds() {
        return fdTargets().stream().filter(t -> !t.endsWith("anon_inode:[eventpoll]")).count();
    }

    /** What each open descriptor is (for a message about a leak). */
    public static List<String> fdTargets() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.map(fd -> {
                try {
                    return fd.getFileName() + " -> " + Files.readSymbolicLink(fd);
                } catch (IOException e) {
                    return fd.getFileName() + " (closed)";
                }
            }).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Heap in use after a full collection: what is still reachable, give or take. */
    public static long heapUsedAfterGc() {
        System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }
}
