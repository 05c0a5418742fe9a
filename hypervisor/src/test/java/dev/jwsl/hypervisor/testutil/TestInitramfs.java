package dev.jwsl.hypervisor.testutil;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The suite's initramfs with a test program added: a C source from {@code src/test/c}, built
 * static with musl-gcc and appended as a second cpio archive holding {@code /bin/NAME} (the
 * kernel unpacks both). Skips the calling test when musl-gcc or cpio is missing.
 */
public final class TestInitramfs {
    private TestInitramfs() {}

    /** {@code initrd} followed by {@code /bin/name} built from {@code hypervisor/src/test/c/source}. */
    public static Path withProgram(Path dir, Path initrd, String source, String name)
            throws IOException, InterruptedException {
        Path root = Path.of(System.getProperty("jwsl.root", "..")).toAbsolutePath().normalize();
        Path src = root.resolve("hypervisor/src/test/c").resolve(source);
        Path stage = Files.createDirectories(dir.resolve(name + ".stage/bin"));
        int cc = new ProcessBuilder("musl-gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread",
                "-o", stage.resolve(name).toString(), src.toString()).inheritIO().start().waitFor();
        assumeTrue(cc == 0, "musl-gcc could not build " + src);
        Path extra = dir.resolve(name + ".cpio");
        Process cpio = new ProcessBuilder("sh", "-c", "find bin | cpio --quiet -o -H newc -R 0:0")
                .directory(stage.getParent().toFile()).redirectOutput(extra.toFile()).start();
        assumeTrue(cpio.waitFor() == 0, "cpio failed");
        Path combined = dir.resolve(name + "-initramfs.cpio");
        try (OutputStream o = Files.newOutputStream(combined)) {
            Files.copy(initrd, o);
            Files.copy(extra, o);
        }
        return combined;
    }
}
