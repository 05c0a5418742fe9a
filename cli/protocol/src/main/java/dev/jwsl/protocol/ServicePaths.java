package dev.jwsl.protocol;


import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.Set;

/**
 * Where a user's service lives: sockets in a private runtime directory ({@code
 * $XDG_RUNTIME_DIR/jwsl}, else {@code /tmp/jwsl-$USER}, mode 0700), the log in the state directory
 * ({@code $XDG_STATE_HOME/jwsl}, else {@code ~/.local/state/jwsl}).
 */
public record ServicePaths(Path runtimeDir, Path stateDir) {
    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rwx------");

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

    /**
     * Where the utility VM's snapshot lives ({@code $JWSL_SNAPSHOT_DIR}, else
     * {@code $XDG_CACHE_HOME/jwsl/snapshot}, else {@code ~/.cache/jwsl/snapshot}): a cache, a boot
     * can always make it again.
     */
    public static Path snapshotDir() {
        String own = System.getenv("JWSL_SNAPSHOT_DIR");
        if (own != null && !own.isBlank()) {
            return Path.of(own);
        }
        String cache = System.getenv("XDG_CACHE_HOME");
        return (cache != null && !cache.isBlank() ? Path.of(cache, "jwsl")
                : Path.of(System.getProperty("user.home"), ".cache", "jwsl")).resolve("snapshot");
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

    /** Held by the client that starts the service, so that calls finding none start one, not one each. */
    public Path startLockFile() {
        return runtimeDir.resolve("start.lock");
    }

    public Path logFile() {
        return stateDir.resolve("service.log");
    }

    /**
     * Creates the directories, or checks the runtime directory that is there. It holds the
     * service's sockets, so it must be this user's alone: under {@code /tmp} another user can make
     * it first, to keep the service from starting or to plant a socket the client would talk to.
     * The client calls this before it connects, the service before it listens.
     *
     * @throws IOException with a one-line message naming the directory and what is wrong with it
     */
    public void create() throws IOException {
        Path parent = runtimeDir.toAbsolutePath().getParent();
        if (parent != null) {
            createDirectories(parent);
        }
        if (!Files.exists(runtimeDir, LinkOption.NOFOLLOW_LINKS)) {
            try {
                Files.createDirectory(runtimeDir, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
            } catch (FileAlreadyExistsException there) {
                // someone made it meanwhile, maybe not us: checked below
            }
        }
        requireOwnDirectory(runtimeDir);
        createDirectories(stateDir);
    }

    /**
     * As {@link Files#createDirectories}, which throws and catches an exception for a directory
     * that exists: every {@code wsl} call paid for three (issue 29).
     */
    private static void createDirectories(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            Files.createDirectories(dir);
        }
    }

    /**
     * Accepts only a directory (not a symbolic link to one) that this user owns, and takes away
     * group and other access if it has any. Another user's directory is refused, not repaired: root
     * could chmod it, but its owner could still put sockets in it.
     */
    private static void requireOwnDirectory(Path dir) throws IOException {
        Map<String, Object> st = Files.readAttributes(dir, "unix:uid,mode,isDirectory,isSymbolicLink",
                LinkOption.NOFOLLOW_LINKS);
        if ((Boolean) st.get("isSymbolicLink")) {
            throw unsafe(dir, "is a symbolic link");
        }
        if (!(Boolean) st.get("isDirectory")) {
            throw unsafe(dir, "is not a directory");
        }
        long me = uid();
        int owner = (Integer) st.get("uid");
        if (owner != me) {
            throw unsafe(dir, "is owned by uid " + owner + ", not by you (uid " + me + ")");
        }
        if (((Integer) st.get("mode") & 077) != 0) {
            Files.setPosixFilePermissions(dir, OWNER_ONLY);
        }
    }

    /**
     * This process's real uid, from {@code /proc/self/status}: JAAS's {@code UnixSystem} loads a
     * native library for it, ~10 ms of every {@code wsl} start on the host (issue 29).
     */
    static long uid() throws IOException {
        String status = Files.readString(Path.of("/proc/self/status"));
        int at = status.indexOf("\nUid:");
        if (at < 0) {
            throw new IOException("/proc/self/status has no Uid line");
        }
        String[] ids = status.substring(at + 5, status.indexOf('\n', at + 1)).strip().split("\\s+");
        try {
            return Long.parseLong(ids[0]);
        } catch (NumberFormatException e) {
            throw new IOException("/proc/self/status has a malformed Uid line", e);
        }
    }

    private static IOException unsafe(Path dir, String what) {
        return new IOException(dir + " " + what + ": refusing it as the jwsl runtime directory"
                + " (remove it, or set XDG_RUNTIME_DIR)");
    }
}
