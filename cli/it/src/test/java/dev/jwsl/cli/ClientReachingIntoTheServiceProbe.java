package dev.jwsl.cli;

import dev.jwsl.service.distro.DistroRegistry;

import java.io.IOException;

/** Breaks a rule on purpose (test sources only): ArchitectureTest must reject it. */
public final class ClientReachingIntoTheServiceProbe {
    private ClientReachingIntoTheServiceProbe() {}

    static int distros() throws IOException {
        return DistroRegistry.forCurrentUser().toString().length();
    }
}
