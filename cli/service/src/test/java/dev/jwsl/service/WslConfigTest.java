package dev.jwsl.service;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WslConfigTest {
    @TempDir
    Path dir;

    @Test
    void readsTheWsl2SectionLikeWsl() throws IOException {
        Path f = Files.writeString(dir.resolve(".wslconfig"), """
                # comment
                [other]
                memory=1GB
                [wsl2]
                memory = 2GB
                processors=4
                kernelCommandLine = loglevel=7 foo=bar
                vmIdleTimeout=5000
                swap=0
                """);
        WslConfig c = WslConfig.load(f);
        assertEquals(2L << 30, c.memoryBytes());
        assertEquals(4, c.processors());
        assertEquals("loglevel=7 foo=bar", c.extraCmdline());
        assertEquals(5000, c.idleTimeoutMs());
        assertNull(c.kernel());
    }

    @Test
    void missingFileGivesDefaults() throws IOException {
        WslConfig c = WslConfig.load(dir.resolve("none"));
        assertEquals(WslConfig.DEFAULT_MEMORY, c.memoryBytes());
        assertEquals(WslConfig.DEFAULT_IDLE_TIMEOUT_MS, c.idleTimeoutMs());
        assertEquals(java.util.Map.of("host", Path.of("/")), c.shares());
        assertEquals(WslConfig.ShareTransport.VIRTIO, c.shareTransport());
        assertEquals(WslConfig.DEFAULT_SHARE_MOUNT_OPTIONS, c.shareMountOptions());
        assertTrue(c.networking() && c.localhostForwarding() && !c.forwardOnAllInterfaces(),
                "NAT with loopback-only forwarding by default");
    }

    @Test
    void networkingIsConfigurable() throws IOException {
        Path f = Files.writeString(dir.resolve(".wslconfig"), """
                [wsl2]
                localhostForwarding = false
                localhostForwardingAllInterfaces = true
                """);
        WslConfig c = WslConfig.load(f);
        assertTrue(c.networking() && !c.localhostForwarding() && c.forwardOnAllInterfaces());
        assertTrue(!WslConfig.load(Files.writeString(dir.resolve("none"), "[wsl2]\nnetworkingMode=None\n")).networking());
        for (String bad : new String[] {"[wsl2]\nnetworkingMode=bridged\n", "[wsl2]\nlocalhostForwarding=maybe\n"}) {
            Path b = Files.writeString(dir.resolve("bad"), bad);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> WslConfig.load(b), bad);
            assertTrue(e.getMessage().contains(bad.substring(7, bad.indexOf('='))), e.getMessage());
        }
    }

    @Test
    void sharesAreConfigurable() throws IOException {
        Path f = Files.writeString(dir.resolve(".wslconfig"), """
                [wsl2]
                shareTransport = vsock
                shareMountOptions = msize=65536,cache=none
                [shares]
                proj = /home/me/proj/
                data=/srv/data
                """);
        WslConfig c = WslConfig.load(f);
        assertEquals(java.util.List.of("proj", "data"), java.util.List.copyOf(c.shares().keySet()));
        assertEquals(Path.of("/home/me/proj"), c.shares().get("proj"));
        assertEquals(WslConfig.ShareTransport.VSOCK, c.shareTransport());
        assertEquals("msize=65536,cache=none", c.shareMountOptions());
        Path empty = Files.writeString(dir.resolve("empty"), "[shares]\n");
        assertTrue(WslConfig.load(empty).shares().isEmpty(), "an empty [shares] section shares nothing");
        for (String bad : new String[] {"[shares]\nHost=/\n", "[shares]\nx=relative\n", "[shares]\nx=/a b\n",
                "[wsl2]\nshareTransport=smb\n", "[wsl2]\nshareMountOptions=a;b\n"}) {
            Path b = Files.writeString(dir.resolve("bad"), bad);
            assertThrows(IllegalArgumentException.class, () -> WslConfig.load(b), bad);
        }
    }

    @Test
    void badValuesNameTheKey() throws IOException {
        Path f = Files.writeString(dir.resolve(".wslconfig"), "[wsl2]\nvmIdleTimeout=soon\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> WslConfig.load(f));
        assertTrue(e.getMessage().contains("vmIdleTimeout=soon"), e.getMessage());
    }
}
