package dev.jwsl.hypervisor.testutil;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The guest kernel and initramfs the suite built, as scripts/test passes them ({@code jwsl.kernel}, {@code jwsl.initrd}). */
public record SuiteBuild(Path kernel, Path initrd) {
    /**
     * The suite's build. N.B. skips the calling test rather than failing it when the properties
     * are not set, so {@code mvn verify -pl hypervisor} stays usable without a kernel build;
     * scripts/test always sets both.
     */
    public static SuiteBuild require() {
        String kernel = System.getProperty("jwsl.kernel", "");
        String initrd = System.getProperty("jwsl.initrd", "");
        assumeTrue(!kernel.isEmpty() && !initrd.isEmpty(), "jwsl.kernel and jwsl.initrd are not set: run scripts/test");
        return new SuiteBuild(Path.of(kernel), Path.of(initrd));
    }
}
