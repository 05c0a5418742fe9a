package dev.jwsl.it;

import dev.jwsl.hypervisor.testutil.TinyGuest;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * End-to-end tests of {@code bin/jwsl-vmm} on the real kernel and init (scripts/test passes their
 * paths). Each boot is slow on an emulating KVM host, so one boot covers echo, stdin and the exit
 * status together; the error cases never boot a kernel.
 */
class JwslVmmIT {
    /** Generous: a boot takes about a minute when the guest kernel is emulated. */
    private static final long BOOT_TIMEOUT_S = 600;
    private static final long ERROR_TIMEOUT_S = 60;

    private static Path root;
    private static String kernel;
    private static String initrd;

    @TempDir
    static Path dir;

    record Result(int exit, String stdout, String stderr) {}

    @BeforeAll
    static void locateBuild() {
        root = Path.of(System.getProperty("jwsl.root", "../..")).toAbsolutePath().normalize();
        kernel = System.getProperty("jwsl.kernel", "");
        initrd = System.getProperty("jwsl.initrd", "");
        if (kernel.isEmpty() || initrd.isEmpty()) {
            fail("jwsl.kernel and jwsl.initrd are not set: run the suite with scripts/test");
        }
    }

    private static Result run(List<String> prefix, Map<String, String> env, String stdin, long timeoutS,
                              String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.add(root.resolve("bin/jwsl-vmm").toString());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("JWSL_KERNEL", kernel);
        pb.environment().put("JWSL_INITRD", initrd);
        pb.environment().putAll(env);
        Path out = Files.createTempFile(dir, "out", ".txt");
        Path err = Files.createTempFile(dir, "err", ".txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        try (var in = p.getOutputStream()) {
            in.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
        if (!p.waitFor(timeoutS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("jwsl-vmm hung: " + String.join(" ", args) + "\nstderr: " + Files.readString(err));
        }
        return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    private static Result run(String stdin, long timeoutS, String... args) throws IOException, InterruptedException {
        return run(List.of(), Map.of(), stdin, timeoutS, args);
    }

    private static void assertOneLineError(Result r, int exit, String... fragments) {
        assertEquals(exit, r.exit(), r.toString());
        String[] lines = r.stderr().strip().split("\n");
        assertEquals(1, lines.length, "one line on stderr: " + r.stderr());
        assertTrue(lines[0].startsWith("jwsl-vmm: "), lines[0]);
        for (String f : fragments) {
            assertTrue(lines[0].contains(f), "'" + f + "' in: " + lines[0]);
        }
    }

    @Test
    void runsACommandWithStdinAndReturnsItsExitStatus() throws Exception {
        Result r = run("world\n", BOOT_TIMEOUT_S, "--",
                "/bin/sh", "-c", "echo hello; read x; echo \"got $x\"; exit 7");
        assertEquals(7, r.exit(), r.toString());
        assertTrue(r.stdout().contains("hello\ngot world\n"), r.stdout());
    }

    @Test
    void guestPoweroffEndsTheVm() throws Exception {
        Result r = run("", BOOT_TIMEOUT_S, "--", "/bin/sh", "-c", "echo going down; poweroff; sleep 600");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.stdout().contains("going down"), r.stdout());
    }

    @Test
    void guestRebootEndsTheVm() throws Exception {
        Result r = run("", BOOT_TIMEOUT_S, "--", "/bin/sh", "-c", "reboot -f; sleep 600");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.stderr().contains("guest rebooted"), r.stderr());
    }

    @Test
    void aFileThatIsNotAKernelIsAOneLineError() throws Exception {
        Path notKernel = Files.writeString(dir.resolve("README"), "this is text\n".repeat(200));
        assertOneLineError(run("", ERROR_TIMEOUT_S, "--kernel", notKernel.toString(), "--", "true"),
                125, "is not a Linux kernel");
    }

    @Test
    void aMissingKvmDeviceIsAOneLineErrorNamingTheFix() throws Exception {
        assertOneLineError(run(List.of(), Map.of("JWSL_KVM_DEVICE", "/nonexistent/kvm"), "", ERROR_TIMEOUT_S,
                "--", "true"), 125, "/nonexistent/kvm does not exist", "kvm_intel");
    }

    @Test
    void noPermissionOnKvmIsAOneLineErrorNamingTheFix() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "needs root to drop to another user");
        Path d = Files.createDirectories(dir.resolve("world-readable"));
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setPosixFilePermissions(d, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path guest = TinyGuest.write(d, "guest", TinyGuest.TRIPLE_FAULT);
        Files.setPosixFilePermissions(guest, PosixFilePermissions.fromString("rw-r--r--"));
        Path device = Files.createFile(d.resolve("kvm"));
        Files.setPosixFilePermissions(device, PosixFilePermissions.fromString("rw-------"));
        Result r = run(List.of("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"),
                Map.of("JWSL_KVM_DEVICE", device.toString(), "JWSL_KERNEL", guest.toString(),
                        "JWSL_INITRD", "", "HOME", d.toString()),
                "", ERROR_TIMEOUT_S, "--", "true");
        assertOneLineError(r, 125, "no permission to open " + device, "usermod -aG");
    }

    @Test
    void moreMemoryThanTheHostHasIsAOneLineError() throws Exception {
        assertOneLineError(run("", ERROR_TIMEOUT_S, "--memory", "64T", "--", "true"), 125,
                "cannot give the VM 67108864 MiB");
    }

    @Test
    void aGuestTripleFaultIsAOneLineErrorWithRegisters() throws Exception {
        Path guest = TinyGuest.write(dir, "triple-fault", TinyGuest.TRIPLE_FAULT);
        Result r = run(List.of(), Map.of("JWSL_INITRD", ""), "", ERROR_TIMEOUT_S, "--kernel", guest.toString(),
                "--", "true");
        assertOneLineError(r, 125, "rip=");
    }

    @Test
    void anUnknownOptionIsAUsageError() throws Exception {
        Result r = run("", ERROR_TIMEOUT_S, "--bogus");
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.stderr().startsWith("jwsl-vmm: Unknown option: '--bogus'"), r.stderr());
    }
}
