package dev.jwsl.service.distro;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DistroRegistryTest {
    @TempDir
    Path dir;

    private Distro distro(String name) {
        return new Distro(name, "id-" + name, dir.resolve(name), dir.resolve(name).resolve("ext4.img"), "", 2);
    }

    @Test
    void survivesReopeningAndKeepsTheDefault() throws IOException {
        Path file = dir.resolve("data/distros.properties");
        DistroRegistry r = DistroRegistry.open(file);
        r.add(distro("Debian"));
        r.add(distro("tiny.v1"));
        r.update(r.get("tiny.v1").orElseThrow().withDefaultUser("alice"));
        r.setDefault("TINY.V1"); // names are case-insensitive, as in WSL
        DistroRegistry again = DistroRegistry.open(file);
        assertEquals(2, again.list().size());
        assertEquals("tiny.v1", again.defaultDistro().orElseThrow().name());
        assertEquals("alice", again.get("tiny.v1").orElseThrow().defaultUser());
        assertTrue(again.imageInUse(dir.resolve("Debian/./ext4.img")));
        again.remove("tiny.v1");
        assertEquals("Debian", DistroRegistry.open(file).defaultDistro().orElseThrow().name());
        assertFalse(Files.exists(file.resolveSibling(".distros.properties.tmp")));
    }

    @Test
    void duplicatesAndBadNamesAreRefused() throws IOException {
        DistroRegistry r = DistroRegistry.open(dir.resolve("r"));
        r.add(distro("a"));
        assertThrows(IllegalArgumentException.class, () -> r.add(distro("A")));
        for (String bad : new String[] {"", "-x", ".x", "a/b", "a b", "x".repeat(65), "ü"}) {
            assertThrows(IllegalArgumentException.class, () -> distro(bad), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> distro("ok").withDefaultUser("no way"));
    }
}
