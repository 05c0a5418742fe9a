package dev.jwsl.it;

import dev.jwsl.hypervisor.testutil.GuestKernelLog;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs {@code bin/wsl} for an integration test against a private service: its own runtime,
 * state and data directories and .wslconfig under one temporary directory, the kernel and
 * initramfs the suite built. {@link #killService()} kills only this harness's service.
 */
final class WslHarness implements AutoCloseable {
    record Result(int exit, String stdout, String stderr) {}

    final Path root;
    final Path base;
    private final String kernel;
    private final String initrd;
    private final long timeoutS;
    /** Harnesses of the running test classes, for {@link ServiceLogsOnFailure}. */
    private static final List<WslHarness> LIVE = new java.util.concurrent.CopyOnWriteArrayList<>();

    WslHarness(String name, long timeoutS) throws IOException {
        root = Path.of(System.getProperty("jwsl.root", "../..")).toAbsolutePath().normalize();
        kernel = System.getProperty("jwsl.kernel", "");
        initrd = System.getProperty("jwsl.initrd", "");
        if (kernel.isEmpty() || initrd.isEmpty()) {
            fail("jwsl.kernel and jwsl.initrd are not set: run the suite with scripts/test");
        }
        base = Files.createTempDirectory(name);
        Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.writeString(base.resolve("wslconfig"), "[wsl2]\nvmIdleTimeout=600000\n");
        this.timeoutS = timeoutS;
        LIVE.add(this);
    }

    static List<WslHarness> live() {
        return LIVE;
    }

    /** The test class is done: its logs are no longer printed on failures. */
    @Override
    public void close() {
        LIVE.remove(this);
    }

    ProcessBuilder builder(List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(root.resolve("bin/wsl").toString());
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("XDG_RUNTIME_DIR", base.resolve("run").toString());
        pb.environment().put("XDG_STATE_HOME", base.resolve("state").toString());
        pb.environment().put("XDG_DATA_HOME", base.resolve("data").toString());
        pb.environment().put("JWSL_SNAPSHOT_DIR", base.resolve("snapshot").toString());
        pb.environment().put("JWSL_WSLCONFIG", base.resolve("wslconfig").toString());
        pb.environment().put("JWSL_TEST_HOST_SLEEP", hostSleepFile().toString());
        pb.environment().put("JWSL_KERNEL", kernel);
        pb.environment().put("JWSL_INITRD", initrd);
        String tools = System.getProperty("jwsl.tools", "");
        if (!tools.isEmpty()) {
            pb.environment().put("JWSL_TOOLS", tools);
        }
        return pb;
    }

    /**
     * Seconds written here count, for this harness's service, as time the host slept: the tests
     * cannot suspend the host (see the service's HostSleepWatch).
     */
    Path hostSleepFile() {
        return base.resolve("host-sleep");
    }

    Result wsl(byte[] stdin, String... args) throws Exception {
        return wslIn(null, stdin, args);
    }

    /** wsl run from host directory {@code cwd} (null: this JVM's). */
    Result wslIn(Path cwd, byte[] stdin, String... args) throws Exception {
        return wslWith(cwd, java.util.Map.of(), stdin, args);
    }

    /** wsl run from host directory {@code cwd} (null: this JVM's) with {@code env} added to its environment. */
    Result wslWith(Path cwd, java.util.Map<String, String> env, byte[] stdin, String... args) throws Exception {
        Path out = Files.createTempFile(base, "out", "");
        Path err = Files.createTempFile(base, "err", "");
        ProcessBuilder pb = builder(List.of(args));
        pb.environment().putAll(env);
        if (cwd != null) {
            pb.directory(cwd.toFile());
        }
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        CompletableFuture.runAsync(() -> {
            try (var in = p.getOutputStream()) {
                in.write(stdin);
            } catch (IOException ignored) {
                // the command did not read all of it
            }
        });
        if (!p.waitFor(timeoutS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("wsl hung: " + String.join(" ", args) + hangClues());
        }
        Result r = new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        Files.delete(out);
        Files.delete(err);
        return r;
    }

    /**
     * What the service and the guest said before a hang, in the failure message itself: CI shows
     * only the end of a run's output, where the failure summary is, not the logs printed earlier.
     */
    private String hangClues() {
        StringBuilder b = new StringBuilder();
        clues(b, "service", base.resolve("state/jwsl/service.log"), l -> l.contains(" WARNING ") || l.contains(" SEVERE "), 6);
        clues(b, "console", base.resolve("state/jwsl/console.log"), l -> !l.isBlank(), 6);
        return b.toString();
    }

    private static void clues(StringBuilder b, String what, Path log, java.util.function.Predicate<String> keep, int max) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.ISO_8859_1).stream().filter(keep).toList();
            for (String l : lines.subList(Math.max(0, lines.size() - max), lines.size())) {
                b.append("\n  ").append(what).append(": ").append(l.length() > 240 ? l.substring(0, 240) + "..." : l);
            }
        } catch (IOException e) {
            b.append("\n  ").append(what).append(": (unreadable: ").append(e).append(')');
        }
    }

    Result wsl(String stdin, String... args) throws Exception {
        return wsl(stdin.getBytes(StandardCharsets.UTF_8), args);
    }

    /**
     * Fails if the running utility VM's kernel log reports a user process killed by a fault
     * (issue 14), so a crash fails the suite even where a test's own command survived it. Does
     * nothing when no VM runs.
     */
    void assertNoGuestCrashes() throws Exception {
        if (!wsl("", "--status").stdout().contains("VM: running")) {
            return;
        }
        Result log = wsl("", "--system", "--", "dmesg");
        assertEquals(0, log.exit(), log.toString());
        List<String> crashes = GuestKernelLog.crashes(log.stdout());
        assertTrue(crashes.isEmpty(), "guest processes crashed:\n" + String.join("\n", crashes));
    }

    /** Kills this harness's service with SIGKILL (and the VM it runs). */
    void killService() throws Exception {
        for (ProcessHandle p : services()) {
            p.destroyForcibly();
            p.onExit().get(10, TimeUnit.SECONDS);
        }
    }

    /** This harness's running service. */
    ProcessHandle service() {
        List<ProcessHandle> s = services();
        assertEquals(1, s.size(), "services running for " + base + ": " + s);
        return s.get(0);
    }

    private List<ProcessHandle> services() {
        return ProcessHandle.allProcesses().filter(p -> p.info().commandLine().orElse("")
                .contains("dev.jwsl.service.ServiceMain") && environ(p).contains(base.toString())).toList();
    }

    /** What {@code process}'s open descriptors point at, one entry each. */
    static List<String> descriptors(ProcessHandle process) throws IOException {
        List<String> targets = new ArrayList<>();
        try (var fds = Files.list(Path.of("/proc", Long.toString(process.pid()), "fd"))) {
            for (Path fd : fds.toList()) {
                try {
                    targets.add(Files.readSymbolicLink(fd).toString());
                } catch (IOException closedMeanwhile) {
                    // gone between the listing and the read
                }
            }
        }
        return targets;
    }

    private static String environ(ProcessHandle p) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(p.pid()), "environ"));
        } catch (IOException e) {
            return "";
        }
    }
}
