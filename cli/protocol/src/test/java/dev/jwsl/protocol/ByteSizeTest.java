package dev.jwsl.protocol;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ByteSizeTest {
    @Test
    void sizesAreParsedAsUsersWriteThem() {
        assertEquals(512L << 20, ByteSize.parse("512M"));
        assertEquals(2L << 30, ByteSize.parse("2GiB"));
        assertEquals(1L << 40, ByteSize.parse("1TB"));
        assertEquals(4096, ByteSize.parse("4096"));
        assertThrows(IllegalArgumentException.class, () -> ByteSize.parse("lots"));
        assertThrows(IllegalArgumentException.class, () -> ByteSize.parse("0"));
    }

    @Test
    void sizesAreFormattedForMessages() {
        assertEquals("900 bytes", ByteSize.format(900));
        assertEquals("64 MiB", ByteSize.format(64L << 20));
        assertEquals("1.5 GiB", ByteSize.format(3L << 29));
        assertEquals("1 TiB", ByteSize.format(1L << 40));
        assertEquals("117 MiB", ByteSize.format(122_880_000));
    }
}
