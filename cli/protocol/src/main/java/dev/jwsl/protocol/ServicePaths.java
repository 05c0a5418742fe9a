package dev.jwsl.protocol;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Where a user's service lives: sockets in a private runtime directory ({@code
 * $XDG_RUNTIME_DIR/jwsl}, else {@code /tmp/jwsl-$USER}, mode 0700), the log in the state directory
 * ({@code $XDG_STATE_HOME/jwsl}, else {@code ~/.local/state/jwsl}).
 */
public record ServicePaths(Path runtimeDir, Path stateDir) {
    public static ServicePaths forCurrentUser() {
        String runtime = System.getenv("XDG_RUNTIME_DIR");
        Path rt = runtime != null && !runtime.isBlank() ? Path.of(runtime, "jwsl")
                : Path.of("/tmp", "jwsl-" + System.getProperty("user.name"));
        String state = System.getenv("XDG_STATE_HOME");
        Path st = state != null && !state.isBlank() ? Path.of(state, "jwsl")
                : Path.of(System.getProperty("user.home"), ".local", "state", "jwsl");
        return new ServicePaths(rt, st);
    }

    /** Where distros are registered and their disks live by default ({@code $XDG_DATA_HOME/jwsl}). */
    public static Path dataDir() {
        String data = System.getenv("XDG_DATA_HOME");
        return data != null && !data.isBlank() ? Path.of(data, "jwsl")
                : Path.of(System.getProperty("user.home"), ".local", "share", "jwsl");
    }

    /** The service's own socket (mode 0600). */
    public Path serviceSocket() {
        return runtimeDir.resolve("service.sock");
    }

    /** The utility VM's hybrid-vsock socket. */
    public Path vsockSocket() {
        return runtimeDir.resolve("vsock.sock");
    }

    /** Held by the running service: one service per user. */
    public Path lockFile() {
        return runtimeDir.resolve("service.lock");
    }

    public Path logFile() {
        return stateDir.resolve("service.log");
    }

    /** Creates the directories; the runtime directory is private to the user. */
    public void create() throws IOException {
        Files.createDirectories(runtimeDir);
        Files.setPosixFilePermissions(runtimeDir, PosixFilePermissions.fromString("rwx------"));
        Files.createDirectories(stateDir);
    }
}
