package dev.jwsl.it;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Prints the tails of the harness service's log and the guest console when a test fails: a
 * nested run's temporary directories vanish with the L1, and a failure without them is a guess.
 */
final class ServiceLogsOnFailure implements TestWatcher {
    private static final int TAIL_LINES = 300;

    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
        for (WslHarness h : WslHarness.live()) {
            System.out.println("==== " + context.getDisplayName() + " failed: logs of " + h.base + " ====");
            tail(h.base.resolve("state/jwsl/service.log"));
            tail(h.base.resolve("state/jwsl/console.log"));
        }
    }

    private static void tail(Path file) {
        System.out.println("---- " + file);
        try {
            List<String> lines = Files.readAllLines(file, StandardCharsets.ISO_8859_1);
            lines.subList(Math.max(0, lines.size() - TAIL_LINES), lines.size()).forEach(System.out::println);
        } catch (IOException e) {
            System.out.println("(unreadable: " + e + ")");
        }
    }
}
