package dev.jwsl.service.net;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The guest's {@code jwsl-ports}, the very binary in the initramfs, run on the host on a Unix
 * socket instead of vsock ({@code --unix}). Its listener scans see the sockets of its network
 * namespace: this host's, or (as root) a new one with only loopback, which plays the guest's.
 */
final class GuestPortsDaemon implements AutoCloseable {
    final Path dir;
    final Path socket;
    final Process process;

    GuestPortsDaemon() throws IOException, InterruptedException {
        this(false);
    }

    GuestPortsDaemon(boolean ownNetwork) throws IOException, InterruptedException {
        String initrd = System.getProperty("jwsl.initrd", "");
        Path init = initrd.isEmpty() ? null : Path.of(initrd).resolveSibling("init");
        if (init == null || !Files.isExecutable(init)) {
            fail("jwsl.initrd is not set (or has no init next to it): run the suite with scripts/test");
        }
        dir = Files.createTempDirectory("jwsl-ports-test");
        socket = dir.resolve("ports.sock");
        java.util.List<String> cmd = ownNetwork
                ? java.util.List.of("unshare", "--net", "sh", "-c", "busybox ip link set lo up && exec \"$0\" jwsl-ports --unix \"$1\"",
                        init.toString(), socket.toString())
                : java.util.List.of(init.toString(), "jwsl-ports", "--unix", socket.toString());
        process = new ProcessBuilder(cmd)
                .redirectErrorStream(true).redirectOutput(dir.resolve("log").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!Files.exists(socket)) {
            assertTrue(process.isAlive() && System.nanoTime() < deadline, "jwsl-ports did not start");
            Thread.sleep(10);
        }
    }

    /** Starts {@code script} (busybox sh) in the daemon's network namespace. */
    Process inNetwork(String script) throws IOException {
        return new ProcessBuilder("nsenter", "--net=/proc/" + process.pid() + "/ns/net", "busybox", "sh", "-c", script)
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    }

    /** The daemon's open descriptors now. */
    long fds() throws IOException {
        try (var s = Files.list(Path.of("/proc", Long.toString(process.pid()), "fd"))) {
            return s.count();
        }
    }

    @Override
    public void close() throws Exception {
        process.destroyForcibly().waitFor();
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                Files.delete(f);
            }
        }
        Files.delete(dir);
    }
}
