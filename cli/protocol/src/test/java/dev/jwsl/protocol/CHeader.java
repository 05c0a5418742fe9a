package dev.jwsl.protocol;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A C header that defines a protocol, the definition the Java constants must agree with. */
public record CHeader(String name, String text) {
    /** A header of guest-init/protocol/ (the guest's protocols). */
    public static CHeader read(String name) throws IOException {
        return at("guest-init/protocol/" + name);
    }

    /** The header at {@code path} in the checkout. */
    public static CHeader at(String path) throws IOException {
        Path file = Path.of(System.getProperty("jwsl.root", "../.."), path);
        return new CHeader(file.getFileName().toString(), Files.readString(file));
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
