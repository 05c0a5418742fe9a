package dev.jwsl.hypervisor.boot.loader;

import dev.jwsl.hypervisor.boot.BootException;
import dev.jwsl.hypervisor.memory.MmapGuestMemory;
import dev.jwsl.hypervisor.testutil.TinyGuest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class KernelLoaderTest {
    @TempDir
    Path dir;

    private static MmapGuestMemory memory() {
        return MmapGuestMemory.create(List.<long[]>of(new long[] {0, 32 << 20}));
    }

    @Test
    void loadsAnElfSegmentAtItsPhysicalAddress() throws IOException {
        Path k = TinyGuest.write(dir, "k", new byte[] {(byte) 0xf4, (byte) 0xeb, (byte) 0xfd});
        try (MmapGuestMemory m = memory(); Arena arena = Arena.ofConfined()) {
            LoadedKernel lk = KernelLoader.load(k, m, arena);
            assertEquals(0x100000, lk.entry());
            assertEquals(0x100003, lk.end());
            assertArrayEquals(new byte[] {(byte) 0xf4, (byte) 0xeb, (byte) 0xfd}, m.read(0x100000, 3));
            assertEquals((byte) 0xff, lk.bootParams().typeOfLoader());
        }
    }

    @Test
    void rejectsFilesThatAreNotKernels() throws IOException {
        Path text = Files.writeString(dir.resolve("notes.txt"), "hello, not a kernel\n".repeat(100));
        Path empty = Files.write(dir.resolve("empty"), new byte[0]);
        try (MmapGuestMemory m = memory(); Arena arena = Arena.ofConfined()) {
            for (Path p : List.of(text, empty)) {
                BootException e = assertThrows(BootException.class, () -> KernelLoader.load(p, m, arena));
                assertEquals(BootException.Reason.NOT_A_KERNEL, e.reason());
            }
            BootException missing = assertThrows(BootException.class,
                    () -> KernelLoader.load(dir.resolve("nope"), m, arena));
            assertEquals(BootException.Reason.READ_FAILED, missing.reason());
        }
    }

    @Test
    void rejectsElfSegmentsThatPointOutsideTheFileOrMemory() throws IOException {
        byte[] elf = TinyGuest.elf(new byte[] {(byte) 0xf4});
        ByteBuffer b = ByteBuffer.wrap(elf.clone()).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(64 + 32, 1 << 20); // p_filesz far past the end of the file
        Path corrupt = Files.write(dir.resolve("corrupt"), b.array());
        ByteBuffer high = ByteBuffer.wrap(elf.clone()).order(ByteOrder.LITTLE_ENDIAN);
        high.putLong(64 + 24, 1L << 40).putLong(24, 1L << 40); // paddr and entry beyond guest RAM
        Path beyond = Files.write(dir.resolve("beyond"), high.array());
        try (MmapGuestMemory m = memory(); Arena arena = Arena.ofConfined()) {
            assertEquals(BootException.Reason.NOT_A_KERNEL,
                    assertThrows(BootException.class, () -> KernelLoader.load(corrupt, m, arena)).reason());
            assertEquals(BootException.Reason.DOES_NOT_FIT,
                    assertThrows(BootException.class, () -> KernelLoader.load(beyond, m, arena)).reason());
        }
    }

    @Test
    void rejectsABzImageWithoutTheSixtyFourBitEntry() throws IOException {
        byte[] img = new byte[0x4000];
        ByteBuffer b = ByteBuffer.wrap(img).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0x1f1, (byte) 4).putShort(0x1fe, (short) 0xaa55).putInt(0x202, 0x53726448)
                .put(0x201, (byte) 0x66).putShort(0x206, (short) 0x020b); // protocol 2.11: too old
        Path old = Files.write(dir.resolve("old-bzImage"), img);
        try (MmapGuestMemory m = memory(); Arena arena = Arena.ofConfined()) {
            assertEquals(BootException.Reason.UNSUPPORTED_KERNEL,
                    assertThrows(BootException.class, () -> KernelLoader.load(old, m, arena)).reason());
        }
    }

    @Test
    void loadsTheRealBzImageWhenBuilt() {
        String bz = System.getProperty("jwsl.bzimage", "");
        org.junit.jupiter.api.Assumptions.assumeFalse(bz.isEmpty(), "kernel not built (scripts/test builds it)");
        try (MmapGuestMemory m = MmapGuestMemory.create(List.<long[]>of(new long[] {0, 256 << 20}));
             Arena arena = Arena.ofConfined()) {
            LoadedKernel lk = KernelLoader.load(Path.of(bz), m, arena);
            assertEquals(0x100200, lk.entry());
            assertEquals(0x53726448, lk.bootParams().headerMagic());
        }
    }
}
