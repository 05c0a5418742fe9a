package dev.jwsl.hypervisor.devices.virtio.p9;

import dev.jwsl.hypervisor.devices.virtio.transport.MmioTransport;
import dev.jwsl.hypervisor.devices.virtio.transport.VirtioDriver;
import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.p9.P9Client;
import dev.jwsl.hypervisor.p9.P9Error;
import dev.jwsl.hypervisor.testutil.HostResources;
import dev.jwsl.hypervisor.testutil.MockQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** virtio-9p behind its transport: a session lives from DRIVER_OK to reset, and no longer. */
@Timeout(60)
class P9DeviceTest {
    private static final int FIDS = 20;

    @TempDir
    Path dir;

    private final MmapGuestMemory memory = MockQueue.memory();
    private P9Device device;
    private VirtioDriver driver;

    @BeforeEach
    void create() throws IOException {
        Files.writeString(dir.resolve("f"), "data");
        device = P9Device.forDirectory("share", dir);
        driver = new VirtioDriver(new MmioTransport(device, memory, () -> { }));
    }

    @AfterEach
    void close() {
        driver.transport().close();
        driver.close();
        memory.close();
    }

    /** A driver up on a fresh ring, attached as fid 1. */
    private P9Client mount() {
        MockQueue ring = new MockQueue(memory, 64);
        driver.bringUp(device.availableFeatures(), List.of(ring));
        P9Client c = new P9Client(new VirtqueueP9Transport(driver, ring, 8192));
        c.version(8192);
        c.attach(1, "", 0);
        return c;
    }

    /** Mounted, with FIDS more fids each holding an open file (two descriptors). */
    private P9Client mountAndOpen() {
        P9Client c = mount();
        for (int fid = 2; fid < 2 + FIDS; fid++) {
            c.walk(1, fid, "f");
            c.lopen(fid, 0);
        }
        return c;
    }

    @Test
    void resetClosesTheSession() {
        long before = HostResources.openFds();
        mountAndOpen();
        assertTrue(HostResources.openFds() >= before + 2 * FIDS);
        driver.reset();
        assertEquals(before, HostResources.openFds());
        P9Client again = mount();
        assertThrows(P9Error.class, () -> again.walk(2, 99), "fids do not outlive the reset");
    }

    /** Finding 1: DRIVER_OK cleared and set again activated twice, and the first session leaked. */
    @Test
    void driverOkAgainCannotLeakTheSession() {
        long before = HostResources.openFds();
        mountAndOpen();
        driver.writeStatus(MmioTransport.ACKNOWLEDGE | MmioTransport.DRIVER | MmioTransport.FEATURES_OK);
        driver.driverOk();
        driver.reset();
        assertEquals(before, HostResources.openFds(), "host descriptors leaked");
    }
}
