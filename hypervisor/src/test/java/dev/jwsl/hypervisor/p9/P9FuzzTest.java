package dev.jwsl.hypervisor.p9;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Malformed and hostile 9P messages, generated from a fixed seed within a fixed budget: the
 * server answers each with a well-formed reply (Rlerror or a real answer) or drops the
 * connection; it never throws, leaks a host descriptor, or touches anything outside the share.
 */
class P9FuzzTest {
    static final int BUDGET = 200_000;
    static final int[] TYPES = {6, 8, 12, 14, 16, 18, 20, 22, 24, 26, 30, 32, 40, 50, 52, 54, 70, 72, 74, 76,
            100, 102, 104, 108, 110, 116, 118, 120, 122, 0, 255, 117, 101};
    static final String[] NAMES = {"a", "b", "..", ".", "", "/", "a/b", "../..", "x\0y", "dir", "link", "f",
            "\u00e9t\u00e9", "a".repeat(300), "/etc/passwd"};

    @TempDir
    Path dir;

    @Test
    void randomAndMutatedMessagesNeverCrashLeakOrEscape() throws IOException {
        Path share = Files.createDirectory(dir.resolve("share"));
        Files.createDirectory(share.resolve("dir"));
        Files.writeString(share.resolve("f"), "data");
        Files.createSymbolicLink(share.resolve("link"), dir);
        Path outside = Files.writeString(dir.resolve("outside"), "keep");
        long fdsBefore = P9SessionTest.openFds();
        Random rnd = new Random(0x9F00D);
        try (P9Server server = new P9Server(Map.of("s", share), Executors.newSingleThreadExecutor(), 256, 1)) {
            P9Session session = server.open();
            P9Client c = new P9Client(P9Client.direct(session, 1 << 16));
            int dropped = 0, errors = 0, answers = 0;
            boolean renegotiate = true;
            for (int i = 0; i < BUDGET; i++) {
                if (i % 5000 == 0 || renegotiate) {
                    renegotiate = false;
                    // a sane base to mutate from: a negotiated session with a few fids
                    Files.createDirectories(share.resolve("dir"));
                    if (!Files.exists(share.resolve("f"))) {
                        Files.writeString(share.resolve("f"), "data");
                    }
                    c.version(1 << 16);
                    c.attach(1, "", 0);
                    c.walk(1, 2, "dir");
                    c.walk(1, 3, "f");
                }
                byte[] m = message(rnd, c, NAMES);
                renegotiate = m.length > 4 && m[4] == P9Constants.TVERSION; // a bad one ends the session
                byte[] reply;
                try {
                    reply = c.raw(m);
                } catch (P9Error e) {
                    dropped++;
                    continue;
                }
                ByteBuffer r = ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN);
                assertTrue(reply.length >= 7, "reply too short");
                assertEquals(reply.length, r.getInt(0), "reply size field");
                assertEquals(m[5] & 0xff | (m[6] & 0xff) << 8, r.getShort(5) & 0xffff, "reply tag");
                int type = reply[4] & 0xff;
                if (type == 7) {
                    errors++;
                    int errno = r.getInt(7);
                    assertTrue(errno > 0 && errno < 200, "errno " + errno);
                } else {
                    answers++;
                    assertEquals((m[4] & 0xff) + 1, type, "reply type");
                }
            }
            assertEquals(0, server.internalErrors(), "no request may end in an unexpected exception");
            assertTrue(errors > BUDGET / 4 && answers > BUDGET / 100, "errors " + errors + " answers " + answers + " dropped " + dropped);
            session.close();
        }
        assertEquals(fdsBefore, P9SessionTest.openFds(), "host descriptors leaked");
        assertEquals("keep", Files.readString(outside));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of("outside", "share"), s.map(p -> p.getFileName().toString()).sorted().toList(),
                    "nothing created next to the share");
        }
    }

    /** One message: random bytes, or a real message type with random or boundary fields ({@code names} for strings). */
    static byte[] message(Random rnd, P9Client c, String[] names) {
        int mode = rnd.nextInt(10);
        if (mode == 0) {
            byte[] b = new byte[7 + rnd.nextInt(64)];
            rnd.nextBytes(b);
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(0, rnd.nextBoolean() ? b.length : rnd.nextInt());
            return b;
        }
        P9Client.Request r = c.request(TYPES[rnd.nextInt(TYPES.length)]);
        int fields = rnd.nextInt(12);
        for (int i = 0; i < fields; i++) {
            switch (rnd.nextInt(8)) {
                case 0 -> r.u32(rnd.nextInt(6)); // a plausible fid
                case 1 -> r.u32(rnd.nextInt());
                case 2 -> r.u64(rnd.nextBoolean() ? rnd.nextLong() : rnd.nextInt(1 << 20));
                case 3 -> r.str(names[rnd.nextInt(names.length)]);
                case 4 -> r.u16(rnd.nextInt(20)); // walk counts, up to 16+
                case 5 -> r.u8(rnd.nextInt(4));
                case 6 -> r.u32(-1);
                default -> r.u16(0xffff); // a string length far past the end
            }
        }
        byte[] m = r.encode();
        if (mode == 1 && m.length > 8) {
            m[7 + rnd.nextInt(m.length - 7)] ^= (byte) (1 << rnd.nextInt(8)); // flip a bit past the header
        }
        if (mode == 2) {
            m = java.util.Arrays.copyOf(m, Math.max(7, m.length - 1 - rnd.nextInt(4))); // truncated
            ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putInt(0, m.length);
        }
        return m;
    }
}
