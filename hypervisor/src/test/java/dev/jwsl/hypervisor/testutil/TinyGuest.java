package dev.jwsl.hypervisor.testutil;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Hand-made x86-64 ELF "kernels" for tests: one PT_LOAD segment at 1 MiB holding {@code code},
 * entered in long mode by jwsl's ELF loader. The bytes are written here rather than assembled so
 * the tests need no toolchain; each fixture documents its instructions.
 */
public final class TinyGuest {
    /** {@code ud2}: with jwsl's empty boot IDT, #UD cannot be delivered, then #GP, #DF: a triple fault. */
    public static final byte[] TRIPLE_FAULT = {0x0f, 0x0b};

    public static final long LOAD_ADDRESS = 0x100000;
    private static final int EHDR = 64, PHDR = 56;

    private TinyGuest() {}

    /** An ELF64 executable for x86-64 whose single segment is {@code code} at {@link #LOAD_ADDRESS}. */
    public static byte[] elf(byte[] code) {
        ByteBuffer b = ByteBuffer.allocate(EHDR + PHDR + code.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1, 0}).put(new byte[8]);
        b.putShort((short) 2).putShort((short) 62).putInt(1)            // ET_EXEC, EM_X86_64, EV_CURRENT
                .putLong(LOAD_ADDRESS).putLong(EHDR).putLong(0)          // entry, phoff, shoff
                .putInt(0).putShort((short) EHDR).putShort((short) PHDR) // flags, ehsize, phentsize
                .putShort((short) 1).putShort((short) 64).putShort((short) 0).putShort((short) 0);
        b.putInt(1).putInt(5)                                            // PT_LOAD, R+X
                .putLong(EHDR + PHDR).putLong(LOAD_ADDRESS).putLong(LOAD_ADDRESS)
                .putLong(code.length).putLong(code.length).putLong(0x1000);
        b.put(code);
        return b.array();
    }

    /** Writes {@link #elf} of {@code code} to a file in {@code dir}. */
    public static Path write(Path dir, String name, byte[] code) throws IOException {
        return Files.write(dir.resolve(name), elf(code));
    }
}
