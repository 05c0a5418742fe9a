package dev.jwsl.service.distro;

import dev.jwsl.protocol.ServicePaths;

import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.TreeMap;

/**
 * The user's registered distributions and the default one, in one file in the user's data
 * directory ({@code $XDG_DATA_HOME/jwsl/distros.properties}). Every change rewrites the whole
 * file crash-safely: write a temporary file, fsync it, rename it over the old one, fsync the
 * directory. A crash leaves either the old or the new registry, never a mix.
 *
 * <p>Only the service writes it (one service per user); methods are synchronized for its threads.
 */
public final class DistroRegistry {
    private static final String PREFIX = "distro.";

    private final Path file;
    private final Map<String, Distro> distros = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
    private String defaultName = "";

    private DistroRegistry(Path file) {
        this.file = file;
    }

    /** The registry in the user's data directory. */
    public static DistroRegistry forCurrentUser() throws IOException {
        return open(ServicePaths.dataDir().resolve("distros.properties"));
    }

    /** Loads {@code file} (missing: empty registry). */
    public static DistroRegistry open(Path file) throws IOException {
        DistroRegistry r = new DistroRegistry(file);
        if (Files.exists(file)) {
            Properties p = new Properties();
            p.load(new StringReader(Files.readString(file, StandardCharsets.UTF_8)));
            Map<String, Map<String, String>> byName = new TreeMap<>();
            for (String key : p.stringPropertyNames()) {
                if (key.startsWith(PREFIX) && key.lastIndexOf('.') > PREFIX.length()) {
                    String name = key.substring(PREFIX.length(), key.lastIndexOf('.'));
                    byName.computeIfAbsent(name, k -> new TreeMap<>()).put(key.substring(key.lastIndexOf('.') + 1),
                            p.getProperty(key));
                }
            }
            for (var e : byName.entrySet()) {
                Map<String, String> f = e.getValue();
                try {
                    Distro d = new Distro(e.getKey(), f.getOrDefault("id", ""), Path.of(f.get("dir")),
                            Path.of(f.get("image")), f.getOrDefault("user", ""),
                            Integer.parseInt(f.getOrDefault("version", "2")));
                    r.distros.put(d.name(), d);
                } catch (RuntimeException bad) {
                    throw new IOException(file + ": broken entry for " + e.getKey() + ": " + bad.getMessage());
                }
            }
            r.defaultName = p.getProperty("default", "");
        }
        return r;
    }

    public synchronized List<Distro> list() {
        return new ArrayList<>(distros.values());
    }

    /** By name, ignoring case as WSL does. */
    public synchronized Optional<Distro> get(String name) {
        return Optional.ofNullable(distros.get(name));
    }

    /** The default distro: the one set, else none. */
    public synchronized Optional<Distro> defaultDistro() {
        return get(defaultName);
    }

    /** Whether another registered distro uses {@code image}. */
    public synchronized boolean imageInUse(Path image) {
        Path abs = image.toAbsolutePath().normalize();
        return distros.values().stream().anyMatch(d -> d.image().toAbsolutePath().normalize().equals(abs));
    }

    /** Adds {@code d}; the first distro becomes the default. */
    public synchronized void add(Distro d) throws IOException {
        if (distros.containsKey(d.name())) {
            throw new IllegalArgumentException("a distribution named " + d.name() + " already exists");
        }
        String oldDefault = defaultName;
        distros.put(d.name(), d);
        if (defaultDistro().isEmpty()) {
            defaultName = d.name();
        }
        try {
            save();
        } catch (IOException e) {
            distros.remove(d.name());
            defaultName = oldDefault;
            throw e;
        }
    }

    /** Replaces the entry of the same name. */
    public synchronized void update(Distro d) throws IOException {
        Distro old = distros.put(d.name(), d);
        try {
            save();
        } catch (IOException e) {
            distros.put(old.name(), old);
            throw e;
        }
    }

    /** Removes {@code name}; if it was the default, another distro (if any) becomes the default. */
    public synchronized void remove(String name) throws IOException {
        Distro old = distros.remove(name);
        String oldDefault = defaultName;
        if (old != null && old.name().equalsIgnoreCase(defaultName)) {
            defaultName = distros.isEmpty() ? "" : distros.keySet().iterator().next();
        }
        try {
            save();
        } catch (IOException e) {
            if (old != null) {
                distros.put(old.name(), old);
            }
            defaultName = oldDefault;
            throw e;
        }
    }

    public synchronized void setDefault(String name) throws IOException {
        Distro d = get(name).orElseThrow(() -> new IllegalArgumentException("there is no distribution named " + name));
        String old = defaultName;
        defaultName = d.name();
        try {
            save();
        } catch (IOException e) {
            defaultName = old;
            throw e;
        }
    }

    private void save() throws IOException {
        Properties p = new Properties();
        if (!defaultName.isEmpty()) {
            p.setProperty("default", defaultName);
        }
        for (Distro d : distros.values()) {
            String k = PREFIX + d.name() + ".";
            p.setProperty(k + "id", d.id());
            p.setProperty(k + "dir", d.installDir().toString());
            p.setProperty(k + "image", d.image().toString());
            p.setProperty(k + "user", d.defaultUser());
            p.setProperty(k + "version", Integer.toString(d.version()));
        }
        StringWriter w = new StringWriter();
        p.store(w, "jwsl distributions (written by the jwsl service)");
        writeAtomically(file, w.toString().getBytes(StandardCharsets.UTF_8));
    }

    /** Write, fsync, rename, fsync the directory: the file is either old or new after a crash. */
    public static void writeAtomically(Path target, byte[] content) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + target.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(java.nio.ByteBuffer.wrap(content));
            ch.force(true);
        }
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        fsyncDirectory(dir);
    }

    /** Makes a rename or create in {@code dir} durable. */
    public static void fsyncDirectory(Path dir) throws IOException {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        }
    }
}
