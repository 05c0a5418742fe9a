package dev.jwsl.protocol;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A header of guest-init/protocol/, the C definition the Java constants must agree with. */
public record GuestHeader(String name, String text) {
    public static GuestHeader read(String name) throws IOException {
        Path file = Path.of(System.getProperty("jwsl.root", "../.."), "guest-init", "protocol", name);
        return new GuestHeader(name, Files.readString(file));
    }

    /** Each {@code #define PREFIXkey N} is there and N is the Java value. */
    public void assertDefines(String prefix, Map<String, Integer> expected) {
        for (var e : expected.entrySet()) {
            Matcher m = Pattern.compile("#define " + prefix + e.getKey() + " (\\d+)").matcher(text);
            assertTrue(m.find(), e.getKey() + " in " + name);
            assertEquals(e.getValue(), Integer.parseInt(m.group(1)), e.getKey());
        }
    }
}
