package dev.jwsl.hypervisor.snapshot;

import dev.jwsl.hypervisor.memory.GuestMemory;
import dev.jwsl.hypervisor.memory.MemoryRegion;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Set;

/**
 * A snapshot's two files in one directory, both 0600 in a 0700 directory:
 * <ul>
 *   <li>{@value #MEMORY}: guest RAM, the regions one after the other, sparse (a page of zeros is a
 *       hole), then one page of trailer with the snapshot's id. A restore maps it
 *       {@code MAP_PRIVATE}, so nothing is read before the guest touches it.</li>
 *   <li>{@value #STATE}: everything else ({@link SnapshotCodec}).</li>
 * </ul>
 * Writing is crash-safe: the old state file goes first, each new file is written under a
 * temporary name, fsynced and renamed, the state file last, then the directory is fsynced. A
 * crash leaves either no state file (no snapshot) or a state file whose id the memory file
 * must repeat.
 */
public final class SnapshotFiles {
    public static final String STATE = "state";
    public static final String MEMORY = "memory";
    static final int PAGE = 4096;
    private static final byte[] TRAILER_MAGIC = "JWSLRAM1".getBytes(StandardCharsets.US_ASCII);
    private static final int ID_BYTES = 16;

    private SnapshotFiles() {}

    /** A snapshot found valid on disk: its state, and the memory file to map. */
    public record Loaded(VmSnapshot snapshot, Path memoryFile) {}

    /**
     * Writes {@code snapshot} and the guest RAM it describes into {@code dir}, replacing what is
     * there. The vCPUs must be stopped while RAM is read.
     *
     * @return bytes of RAM stored (pages that are not all zeros)
     * @throws SnapshotException with one line if the files cannot be written (nothing valid is left half-written)
     */
    public static long write(Path dir, VmSnapshot snapshot, GuestMemory memory) {
        byte[] id = new byte[ID_BYTES];
        new SecureRandom().nextBytes(id);
        try {
            Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            Files.deleteIfExists(dir.resolve(STATE));
            Path memTmp = dir.resolve(MEMORY + ".tmp");
            long stored = writeMemory(memTmp, snapshot, memory, id);
            move(memTmp, dir.resolve(MEMORY));
            Path stateTmp = dir.resolve(STATE + ".tmp");
            try (FileChannel ch = create(stateTmp)) {
                ByteBuffer b = ByteBuffer.wrap(SnapshotCodec.encode(snapshot, id));
                while (b.hasRemaining()) {
                    ch.write(b);
                }
                ch.force(true);
            }
            move(stateTmp, dir.resolve(STATE));
            try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
                d.force(true);
            }
            return stored;
        } catch (IOException e) {
            throw new SnapshotException("cannot write the snapshot in " + dir + ": " + e.getMessage(), e);
        }
    }

    private static long writeMemory(Path file, VmSnapshot snapshot, GuestMemory memory, byte[] id) throws IOException {
        MemorySegment zero = MemorySegment.ofArray(new byte[PAGE]);
        long stored = 0;
        try (FileChannel ch = create(file)) {
            long offset = 0;
            for (long[] range : snapshot.ram()) {
                MemorySegment ram = region(memory, range);
                for (long at = 0; at < range[1]; at += PAGE) {
                    MemorySegment page = ram.asSlice(at, PAGE);
                    if (page.mismatch(zero) < 0) {
                        continue; // a hole reads as zeros
                    }
                    ByteBuffer b = page.asByteBuffer();
                    while (b.hasRemaining()) {
                        ch.write(b, offset + at + b.position());
                    }
                    stored += PAGE;
                }
                offset += range[1];
            }
            ByteBuffer trailer = ByteBuffer.allocate(PAGE);
            trailer.put(TRAILER_MAGIC).put(id).flip();
            trailer.limit(PAGE);
            while (trailer.hasRemaining()) {
                ch.write(trailer, offset + trailer.position());
            }
            ch.force(true);
        }
        return stored;
    }

    private static MemorySegment region(GuestMemory memory, long[] range) {
        for (MemoryRegion r : memory.regions()) {
            if (r.guestBase() == range[0] && r.size() == range[1]) {
                return memory.slice(range[0], range[1]);
            }
        }
        throw new SnapshotException("guest RAM has no region 0x%x+0x%x".formatted(range[0], range[1]));
    }

    /**
     * Reads and checks the snapshot in {@code dir}: its format and checksum, that it was taken of
     * a VM with {@code key}, and that the memory file is whole and belongs to it.
     *
     * @throws SnapshotException with one line saying why it cannot be restored
     */
    public static Loaded read(Path dir, String key) {
        Path state = dir.resolve(STATE);
        Path mem = dir.resolve(MEMORY);
        try {
            long size = Files.size(state);
            if (size > SnapshotCodec.MAX_FILE) {
                throw new SnapshotException("the snapshot's state file is " + size + " bytes, too large to be one");
            }
            SnapshotCodec.Decoded d = SnapshotCodec.decode(Files.readAllBytes(state));
            if (!d.snapshot().key().equals(key)) {
                throw new SnapshotException("the snapshot was taken of another kernel, initramfs, jwsl or VM configuration");
            }
            long ram = d.snapshot().ramBytes();
            long memSize = Files.size(mem);
            if (memSize != ram + PAGE) {
                throw new SnapshotException("the snapshot's memory file is " + memSize + " bytes, not " + (ram + PAGE));
            }
            ByteBuffer trailer = ByteBuffer.allocate(TRAILER_MAGIC.length + ID_BYTES);
            try (FileChannel ch = FileChannel.open(mem, StandardOpenOption.READ)) {
                while (trailer.hasRemaining() && ch.read(trailer, ram + trailer.position()) > 0) {
                    // reads the trailer's head
                }
            }
            byte[] t = trailer.array();
            if (!Arrays.equals(t, 0, TRAILER_MAGIC.length, TRAILER_MAGIC, 0, TRAILER_MAGIC.length)
                    || !Arrays.equals(t, TRAILER_MAGIC.length, t.length, d.id(), 0, d.id().length)) {
                throw new SnapshotException("the snapshot's memory file belongs to another snapshot");
            }
            return new Loaded(d.snapshot(), mem);
        } catch (NoSuchFileException e) {
            throw new SnapshotException("no snapshot in " + dir);
        } catch (IOException e) {
            throw new SnapshotException("cannot read the snapshot in " + dir + ": " + e.getMessage(), e);
        }
    }

    private static FileChannel create(Path file) throws IOException {
        Files.deleteIfExists(file);
        return FileChannel.open(file, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            throw new IOException("cannot rename " + from + " atomically", e);
        }
    }
}
