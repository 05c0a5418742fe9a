package dev.jwsl.hypervisor.devices.virtio.rng;

import dev.jwsl.hypervisor.vmm.GuestCommand;
import dev.jwsl.hypervisor.vmm.KernelCmdline;
import dev.jwsl.hypervisor.testutil.OneCommandVm;
import dev.jwsl.hypervisor.testutil.SuiteBuild;
import dev.jwsl.hypervisor.vmm.StopReason;
import dev.jwsl.hypervisor.vmm.VmConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * virtio-rng end to end on the real kernel and init (scripts/test passes {@code jwsl.kernel} and
 * {@code jwsl.initrd}): the guest finds the device through {@code virtio_mmio.device=}, selects it
 * as its hardware RNG and reads 64 bytes from it. One boot, as a boot is slow on an emulating host.
 * Skipped when the two properties are not set.
 */
class VirtioRngIT {
    @Test
    @Timeout(600)
    void theGuestReadsEntropyFromTheDevice() throws Exception {
        SuiteBuild build = SuiteBuild.require();
        String script = "head -c 64 /dev/hwrng | wc -c; cat /sys/class/misc/hw_random/rng_current";
        String cmdline = KernelCmdline.build("", GuestCommand.kernelParams(List.of("/bin/sh", "-c", script), false, null));
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        VmConfig config = new VmConfig(build.kernel(), build.initrd(), cmdline, 256L << 20, 1, console);
        StopReason reason = OneCommandVm.run(config);
        String out = console.toString(StandardCharsets.UTF_8);
        System.out.println("guest console:\n" + out);
        assertEquals(new StopReason.GuestExit(0), reason, out);
        List<String> lines = out.lines().map(String::strip).toList();
        assertTrue(lines.contains("64"), out);
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("virtio_rng")), out);
    }
}
