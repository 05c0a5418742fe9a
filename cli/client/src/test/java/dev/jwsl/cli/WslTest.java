package dev.jwsl.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WslTest {
    @Test
    void optionsStopAtTheCommandWhoseArgumentsStayIntact() {
        Wsl w = Wsl.parse("-u", "root", "--cd", "/tmp", "-e", "ls", "-l", "--system", "--", "x");
        assertEquals(List.of("ls", "-l", "--system", "--", "x"), w.command());
        assertTrue(w.has("--exec"));
        assertFalse(w.has("--system"));
        assertEquals("root", w.value("--user", ""));
        assertEquals("root", w.value("-u", ""), "any of an option's names");
        assertEquals("/tmp", w.value("--cd", null));
        assertEquals(List.of("true"), Wsl.parse("--system", "--", "true").command());
        assertEquals(List.of(), Wsl.parse("-d", "debian").command());
        assertEquals(List.of("echo", "@x", "@@y"), Wsl.parse("echo", "@x", "@@y").command(), "no @-file expansion");
    }

    @Test
    void valuedOptionsTakeTheirArityAndSizesTheirUnits() {
        Wsl w = Wsl.parse("--import", "deb", "/d", "-", "--vhd-size", "2GB", "--version", "2");
        assertEquals(List.of("deb", "/d", "-"), w.value("--import", null));
        assertEquals(2L << 30, (long) w.value("--vhd-size", 0L));
        assertEquals("2", w.value("--version", null));
        assertEquals("", Wsl.parse("--version").value("--version", null), "--version alone");
        assertEquals("Debian", Wsl.parse("--install").value("--install", null));
        assertEquals(List.of("a", "f.tar"), Wsl.parse("--export", "a", "f.tar", "--format", "tar.xz").value("--export", null));
    }

    @Test
    void badUsageIsAParameterExceptionWithTheMessageToShow() {
        assertEquals("Unknown option: '--bogus'",
                assertThrows(CommandLine.ParameterException.class, () -> Wsl.parse("--bogus")).getMessage());
        assertTrue(assertThrows(CommandLine.ParameterException.class, () -> Wsl.parse("--vhd-size", "12 parsecs"))
                .getMessage().contains("12 parsecs"));
        assertThrows(CommandLine.ParameterException.class, () -> Wsl.parse("--import", "only-a-name"));
        assertEquals("--force only goes with --shutdown",
                assertThrows(CommandLine.ParameterException.class, () -> Wsl.parse("--force").run()).getMessage());
        assertEquals("--system and --distribution exclude each other",
                assertThrows(CommandLine.ParameterException.class, () -> Wsl.parse("--system", "-d", "x", "true").run()).getMessage());
        assertEquals("--version takes a value only with --import",
                assertThrows(CommandLine.ParameterException.class, () -> Wsl.parse("--version", "2").run()).getMessage());
        assertEquals("--manage needs --resize SIZE or --set-default-user USER",
                assertThrows(CommandLine.ParameterException.class, () -> Wsl.parse("--manage", "x").run()).getMessage());
    }

    @Test
    void helpAndVersionPrintWithoutTheService() {
        String help = stdout(() -> assertEquals(0, Wsl.parse("--help").run()));
        assertTrue(help.startsWith("Usage: wsl "), help);
        for (String option : List.of("--import-in-place=NAME IMAGE", "--vhd-size=SIZE", "-u, --user=USER", "[CMD...]", "Exit status: ")) {
            assertTrue(help.contains(option), option + " in\n" + help);
        }
        String version = stdout(() -> assertEquals(0, Wsl.parse("--version").run()));
        assertTrue(version.startsWith("jwsl 0.1.0\nJava 25"), version);
    }

    private static String stdout(Runnable r) {
        PrintStream saved = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            r.run();
        } finally {
            System.setOut(saved);
        }
        return out.toString(StandardCharsets.UTF_8);
    }
}
