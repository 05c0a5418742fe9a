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
    }

    @Test
    void badValuesNameTheKey() throws IOException {
        Path f = Files.writeString(dir.resolve(".wslconfig"), "[wsl2]\nvmIdleTimeout=soon\n");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> WslConfig.load(f));
        assertTrue(e.getMessage().contains("vmIdleTimeout=soon"), e.getMessage());
    }
}
