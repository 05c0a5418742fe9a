package dev.jwsl.hypervisor.snapshot;

import dev.jwsl.hypervisor.devices.legacy.Uart8250;
import dev.jwsl.hypervisor.kvm.Msr;
import dev.jwsl.hypervisor.kvm.VcpuState;
import dev.jwsl.hypervisor.kvm.VmState;
import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.virtio.QueueState;
import dev.jwsl.hypervisor.virtio.TransportState;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The snapshot files without KVM: the format, its checks, crash-safe writing and the lazy RAM mapping. */
class SnapshotFilesTest {
    private static final List<long[]> RAM = List.of(new long[] {0, 1 << 20}, new long[] {4L << 20, 2 << 20});

    @TempDir
    Path dir;
    private final MmapGuestMemory memory = MmapGuestMemory.create(RAM);

    @AfterEach
    void close() {
        memory.close();
    }

    private static byte[] bytes(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (seed + i * 7);
        }
        return b;
    }

    static VmSnapshot snapshot(String key) {
        VcpuState vcpu = new VcpuState(0, bytes(4, 1), bytes(144, 2), bytes(312, 3), bytes(4096, 4), bytes(392, 5),
                bytes(128, 6), bytes(1024, 7), List.of(new Msr(0x10, 123456789L), new Msr(0xc0000080, 0xd01)), bytes(64, 8));
        VmState vm = new VmState(bytes(520, 9), bytes(520, 10), bytes(520, 11), bytes(112, 12), bytes(48, 13));
        Uart8250.State uart = new Uart8250.State(1, 3, 0xb, 0, 0xc1, 1, 0, true, false, new byte[] {'x'});
        TransportState device = new TransportState(19, 0xf, 0x1_0000_0000L, 1, 2,
                List.of(new QueueState(128, true, 0x1000, 0x2000, 0x3000, 7, 5, 5, true),
                        new QueueState(128, false, 0, 0, 0, 0, 0, 0, false)));
        return new VmSnapshot(key, RAM, vm, List.of(vcpu), uart, List.of(device));
    }

    @Test
    void theStateFileRoundTrips() {
        VmSnapshot s = snapshot("k1");
        byte[] id = bytes(16, 99);
        SnapshotCodec.Decoded d = SnapshotCodec.decode(SnapshotCodec.encode(s, id));
        assertArrayEquals(id, d.id());
        VmSnapshot r = d.snapshot();
        assertEquals("k1", r.key());
        assertArrayEquals(s.vcpus().getFirst().xsave(), r.vcpus().getFirst().xsave());
        assertEquals(s.vcpus().getFirst().msrs(), r.vcpus().getFirst().msrs());
        assertArrayEquals(s.vm().clock(), r.vm().clock());
        assertEquals(s.devices(), r.devices());
        assertArrayEquals(s.console().rx(), r.console().rx());
        assertEquals(s.console().fcr(), r.console().fcr());
        assertEquals(RAM.get(1)[1], r.ram().get(1)[1]);
    }

    @Test
    void everyFlippedByteOfTheStateFileIsCaught() {
        byte[] file = SnapshotCodec.encode(snapshot("k"), bytes(16, 1));
        for (int i = 0; i < file.length; i += 97) {
            byte[] bad = file.clone();
            bad[i] ^= 0x20;
            assertThrows(SnapshotException.class, () -> SnapshotCodec.decode(bad), "byte " + i);
        }
        for (int n : new int[] {0, 7, 12, 100, file.length - 1}) {
            byte[] cut = java.util.Arrays.copyOf(file, n);
            assertThrows(SnapshotException.class, () -> SnapshotCodec.decode(cut), "truncated to " + n);
        }
    }

    @Test
    void writesSparseFilesOnlyTheOwnerReadsAndMapsThemBack() throws Exception {
        memory.slice(0x1000, 5).copyFrom(java.lang.foreign.MemorySegment.ofArray("hello".getBytes()));
        memory.writeLong((4L << 20) + (1 << 20) + 8, 0x1122334455667788L);
        long stored = SnapshotFiles.write(dir, snapshot("key"), memory);
        assertEquals(2 * SnapshotFiles.PAGE, stored, "only the two pages that are not zero");
        Path mem = dir.resolve(SnapshotFiles.MEMORY);
        assertEquals((3L << 20) + SnapshotFiles.PAGE, Files.size(mem));
        Process stat = new ProcessBuilder("stat", "--format=%b", mem.toString()).start();
        long allocated = Long.parseLong(new String(stat.getInputStream().readAllBytes()).strip()) * 512;
        assertTrue(allocated < 1 << 20, "sparse: " + allocated + " bytes allocated");
        for (String f : List.of(SnapshotFiles.MEMORY, SnapshotFiles.STATE)) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(f))));
        }
        assertFalse(Files.exists(dir.resolve(SnapshotFiles.STATE + ".tmp")));

        SnapshotFiles.Loaded loaded = SnapshotFiles.read(dir, "key");
        try (MmapGuestMemory restored = MmapGuestMemory.mapFile(loaded.memoryFile(), loaded.snapshot().ram())) {
            assertEquals('h', restored.readByte(0x1000));
            assertEquals(0x1122334455667788L, restored.readLong((4L << 20) + (1 << 20) + 8));
            assertEquals(0, restored.readLong(0x2000));
            restored.writeLong(0x2000, 42); // private: the file does not change
            assertEquals(42, restored.readLong(0x2000));
        }
        try (MmapGuestMemory again = MmapGuestMemory.mapFile(mem, RAM)) {
            assertEquals(0, again.readLong(0x2000));
        }
    }

    @Test
    void aSnapshotOfSomethingElseOrDamagedIsRefusedWithOneLine() throws Exception {
        SnapshotFiles.write(dir, snapshot("key"), memory);
        assertEquals("the snapshot was taken of another kernel, initramfs, jwsl or VM configuration",
                assertThrows(SnapshotException.class, () -> SnapshotFiles.read(dir, "other")).getMessage());

        Path state = dir.resolve(SnapshotFiles.STATE);
        byte[] good = Files.readAllBytes(state);
        byte[] flipped = good.clone();
        flipped[good.length / 2] ^= 1;
        Files.write(state, flipped);
        assertTrue(assertThrows(SnapshotException.class, () -> SnapshotFiles.read(dir, "key")).getMessage()
                .contains("corrupt or truncated"));
        Files.write(state, good);
        SnapshotFiles.read(dir, "key");

        try (RandomAccessFile f = new RandomAccessFile(dir.resolve(SnapshotFiles.MEMORY).toFile(), "rw")) {
            f.setLength(f.length() - 4096);
        }
        assertTrue(assertThrows(SnapshotException.class, () -> SnapshotFiles.read(dir, "key")).getMessage()
                .contains("memory file is"));

        Path other = Files.createDirectory(dir.resolve("other"));
        SnapshotFiles.write(other, snapshot("key"), memory);
        Files.copy(other.resolve(SnapshotFiles.MEMORY), dir.resolve(SnapshotFiles.MEMORY),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertEquals("the snapshot's memory file belongs to another snapshot",
                assertThrows(SnapshotException.class, () -> SnapshotFiles.read(dir, "key")).getMessage());

        Files.delete(state);
        assertTrue(assertThrows(SnapshotException.class, () -> SnapshotFiles.read(dir, "key")).getMessage()
                .startsWith("no snapshot in "));
    }

    @Test
    void theKeyFollowsEveryInputAndAFileRewrittenInPlace() throws Exception {
        Path kernel = Files.writeString(dir.resolve("vmlinux"), "one");
        String a = new SnapshotKey().addFile("kernel", kernel).add("memory", 512).key();
        assertEquals(a, new SnapshotKey().addFile("kernel", kernel).add("memory", 512).key());
        assertFalse(a.equals(new SnapshotKey().addFile("kernel", kernel).add("memory", 1024).key()));
        Files.setLastModifiedTime(kernel, java.nio.file.attribute.FileTime.fromMillis(1_000_000));
        assertFalse(a.equals(new SnapshotKey().addFile("kernel", kernel).add("memory", 512).key()));
    }
}
