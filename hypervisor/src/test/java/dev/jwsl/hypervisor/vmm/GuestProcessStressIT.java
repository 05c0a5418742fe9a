package dev.jwsl.hypervisor.vmm;

import dev.jwsl.hypervisor.testutil.GuestKernelLog;
import dev.jwsl.hypervisor.testutil.OneCommandVm;
import dev.jwsl.hypervisor.testutil.SuiteBuild;
import dev.jwsl.hypervisor.testutil.TestInitramfs;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Guest processes keep their FS and GS bases (issue 14: on PVM hosts, processes crashed at start
 * reading TLS through a lost FS base). One VM with two vCPUs runs {@code fsgs-stress}
 * (src/test/c/fsgs_stress.c) while a host thread keeps the other core busy: 2,000 short-lived
 * static processes, four threads moving between the vCPUs through system calls, signals and
 * yields, a chain of execs; then the guest's kernel log must hold no crash report. A crash is a
 * failure: nothing is retried.
 */
class GuestProcessStressIT {
    @TempDir
    Path dir;

    @Test
    @Timeout(3600)
    void fsAndGsBasesSurviveProcessesThreadsSignalsAndExec() throws Exception {
        SuiteBuild build = SuiteBuild.require();
        Path initramfs = TestInitramfs.withProgram(dir, build.initrd(), "fsgs_stress.c", "fsgs-stress");

        String script = String.join("; ",
                "S=/bin/fsgs-stress",
                "$S broken; echo \"fsgs-stress broken: exit $?\"",
                "$S spawn 2000 2; echo \"spawn: exit $?\"",
                "$S threads 4 4000; echo \"threads: exit $?\"",
                "$S exec 200; echo \"exec: exit $?\"",
                "echo '--- dmesg'; dmesg; echo '--- end'");
        String cmdline = KernelCmdline.build("", GuestCommand.kernelParams(List.of("/bin/sh", "-c", script), false, null));
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        VmConfig config = new VmConfig(build.kernel(), initramfs, cmdline, 256L << 20, 2, console);

        AtomicBoolean done = new AtomicBoolean();
        Thread hog = Thread.ofPlatform().daemon().name("cpu-hog").start(() -> {
            long x = 0;
            while (!done.get()) {
                x = x * 6364136223846793005L + 1442695040888963407L;
            }
            if (x == 42) {
                System.out.print(""); // keeps the loop from being optimised away
            }
        });
        long start = System.nanoTime();
        StopReason reason;
        try {
            reason = OneCommandVm.run(config);
        } finally {
            done.set(true);
            hog.join();
        }
        String out = console.toString(StandardCharsets.UTF_8);
        System.out.printf("guest console (%d s):%n%s%n", (System.nanoTime() - start) / 1_000_000_000L, out);
        assertEquals(new StopReason.GuestExit(0), reason, out);
        assertTrue(out.contains("fsgs-stress broken: exit 3"), "the check must see a wrong FS base:\n" + out);
        assertTrue(out.contains("fsgs-stress spawn: 2000 runs, 0 failed"), out);
        assertTrue(out.contains("spawn: exit 0"), out);
        assertTrue(out.contains("fsgs-stress threads: 4 threads x 4000 rounds on 2 CPUs, 0 failed"), out);
        assertTrue(out.contains("fsgs-stress exec: 200 execs, 0 failed"), out);
        int log = out.indexOf("--- dmesg");
        int end = out.indexOf("--- end", Math.max(log, 0));
        if (log < 0 || end < 0) {
            fail("no guest kernel log:\n" + out);
        }
        String dmesg = out.substring(log, end);
        assertTrue(dmesg.contains("Linux version"), "dmesg printed the kernel log:\n" + dmesg);
        assertEquals(List.of(), GuestKernelLog.crashes(dmesg), "a guest process crashed:\n" + dmesg);
        assertEquals(List.of(), GuestKernelLog.platformComplaints(dmesg), "the guest kernel complains of its platform:\n" + dmesg);
    }
}
