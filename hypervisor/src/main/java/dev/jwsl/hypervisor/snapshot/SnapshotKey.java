package dev.jwsl.hypervisor.snapshot;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.Map;

/**
 * What a snapshot is a snapshot of, as one hash: the format version and every input that shapes
 * the booted guest, added by the VM builder (kernel, initramfs, disks, command line, memory,
 * vCPUs, device layout, the host CPU KVM describes, jwsl's own code). A file is named by what
 * identifies its contents without reading them all: path, size, modification time and inode,
 * so that any rebuild or replacement makes a new key.
 */
public final class SnapshotKey {
    private final StringBuilder text = new StringBuilder("jwsl-snapshot-format=" + SnapshotCodec.FORMAT_VERSION + "\n");

    /** Adds {@code name=value}. */
    public SnapshotKey add(String name, Object value) {
        text.append(name).append('=').append(value).append('\n');
        return this;
    }

    /** Adds the identity of {@code file} (null: none). */
    public SnapshotKey addFile(String name, Path file) {
        if (file == null) {
            return add(name, "none");
        }
        try {
            Path real = file.toRealPath();
            Map<String, Object> a = Files.readAttributes(real, "unix:size,lastModifiedTime,ino,dev", LinkOption.NOFOLLOW_LINKS);
            return add(name, real + " size " + a.get("size") + " mtime " + a.get("lastModifiedTime")
                    + " inode " + a.get("dev") + ":" + a.get("ino"));
        } catch (IOException | UnsupportedOperationException e) {
            throw new SnapshotException("cannot identify " + file + " for the snapshot key: " + e.getMessage(), e);
        }
    }

    /** The key: a SHA-256 of everything added, in hex. */
    public String key() {
        return HexFormat.of().formatHex(SnapshotCodec.sha256(text.toString().getBytes(StandardCharsets.UTF_8)));
    }

    /** What went into the key, for diagnostics. */
    @Override
    public String toString() {
        return text.toString();
    }
}
