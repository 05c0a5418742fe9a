package dev.jwsl.hypervisor.p9;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Malformed and hostile 9P messages, generated from a fixed seed within a fixed budget: the
 * server answers each with a well-formed reply (Rlerror or a real answer) or drops the
 * connection; it never throws, leaks a host descriptor, or touches anything outside the share.
 * The second run does the same against several shares (one nested in another) while a host
 * thread keeps moving directories out of them, between them and back.
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
        long fdsBefore = Served.openFds();
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
        assertEquals(fdsBefore, Served.openFds(), "host descriptors leaked");
        assertEquals("keep", Files.readString(outside));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of("outside", "share"), s.map(p -> p.getFileName().toString()).sorted().toList(),
                    "nothing created next to the share");
        }
    }

    static final int SHARES_BUDGET = 200_000;
    static final String[] SHARE_NAMES = {"x", "y", "z", "f", "n", "m", "k", "w", "..", ".", "", "/", "a", "b",
            "x/..", "parked", "decoy", "secret", "\u00e9"};
    static final String[] ANAMES = {"a", "b", "n", "", "/", "nope", "..", "a/.."};

    /**
     * Shares a, b and n (n inside a), a fuzzing client, and a host thread moving a/x out of the
     * shares, a/x into b, a/n/m out of n into a, and a/x/y out, and back each time. Besides the
     * first run's checks: no walk answers the qid of anything outside the shares, and nothing
     * outside is changed. The mover's timing is the scheduler's, so only the client's messages
     * repeat from run to run.
     */
    @Test
    void severalSharesWhileTheHostMovesDirectories() throws Exception {
        Files.createDirectories(dir.resolve("a/n/m/k"));
        Files.createDirectories(dir.resolve("b/w"));
        Path a = dir.resolve("a"), b = dir.resolve("b");
        Files.createDirectories(a.resolve("x/y/z"));
        Files.writeString(a.resolve("x/f"), "f");
        Path parked = Files.createDirectory(dir.resolve("parked"));
        Path decoy = Files.createDirectory(dir.resolve("decoy"));
        Files.writeString(decoy.resolve("secret"), "keep");
        Files.writeString(dir.resolve("outside"), "keep");
        Set<Long> forbidden = new HashSet<>();
        for (Path p : List.of(dir, dir.getParent(), parked, decoy, decoy.resolve("secret"), dir.resolve("outside"))) {
            forbidden.add((Long) Files.getAttribute(p, "unix:ino"));
        }
        List<Path[]> moves = List.of(
                new Path[] {a.resolve("x"), parked.resolve("x")},
                new Path[] {a.resolve("x"), b.resolve("x")},
                new Path[] {a.resolve("n/m"), a.resolve("m")},
                new Path[] {a.resolve("x/y"), parked.resolve("y")});
        long fdsBefore = Served.openFds();
        Map<String, Path> shares = new LinkedHashMap<>();
        shares.put("a", a);
        shares.put("b", b);
        shares.put("n", a.resolve("n"));
        AtomicBoolean done = new AtomicBoolean();
        AtomicInteger moved = new AtomicInteger();
        Thread mover = new Thread(() -> {
            Random r = new Random(16);
            while (!done.get()) {
                Path[] m = moves.get(r.nextInt(moves.size()));
                try {
                    Files.move(m[0], m[1]);
                    Files.move(m[1], m[0]);
                    moved.incrementAndGet();
                } catch (IOException e) {
                    // the guest removed, renamed or filled in a name the move needs
                }
            }
        }, "host-mover");
        Random rnd = new Random(0x5EA5);
        int walks = 0, fullWalks = 0;
        try (P9Server server = new P9Server(shares, Executors.newSingleThreadExecutor(), 256, 1)) {
            P9Session session = server.open();
            P9Client c = new P9Client(P9Client.direct(session, 1 << 16));
            mover.start();
            boolean renegotiate = true;
            for (int i = 0; i < SHARES_BUDGET; i++) {
                if (i % 2000 == 0 || renegotiate) {
                    renegotiate = false;
                    base(c);
                }
                byte[] m = rnd.nextBoolean() ? plausible(rnd, c) : message(rnd, c, SHARE_NAMES);
                renegotiate = m.length > 4 && m[4] == P9Constants.TVERSION;
                byte[] reply;
                try {
                    reply = c.raw(m);
                } catch (P9Error e) {
                    continue; // dropped: not a 9P message
                }
                ByteBuffer r = ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN);
                assertEquals(reply.length, r.getInt(0), "reply size field");
                if ((reply[4] & 0xff) == P9Constants.TWALK + 1) {
                    walks++;
                    int n = r.getShort(7) & 0xffff;
                    fullWalks += n > 0 ? 1 : 0;
                    for (int q = 0; q < n; q++) {
                        long path = r.getLong(9 + q * P9Constants.QID_SIZE + 5) & ((1L << 48) - 1);
                        assertFalse(forbidden.contains(path), "message " + i + " walked outside the shares");
                    }
                }
            }
            done.set(true);
            mover.join();
            assertEquals(0, server.internalErrors(), "no request may end in an unexpected exception");
            session.close();
            assertEquals(0, session.xattrBytes());
        } finally {
            done.set(true);
            mover.join();
        }
        String stats = SHARES_BUDGET + " messages, host moves " + moved + ", walks " + walks + ", walks with qids " + fullWalks;
        System.out.println("P9FuzzTest several shares: " + stats);
        assertTrue(moved.get() > 100 && walks > SHARES_BUDGET / 10 && fullWalks > 1000, stats);
        assertEquals(fdsBefore, Served.openFds(), "host descriptors leaked");
        assertEquals("keep", Files.readString(dir.resolve("outside")));
        try (Stream<Path> s = Files.list(decoy)) {
            assertEquals(List.of("secret"), s.map(p -> p.getFileName().toString()).toList());
        }
        assertEquals("keep", Files.readString(decoy.resolve("secret")));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of("a", "b", "decoy", "outside", "parked"),
                    s.map(p -> p.getFileName().toString()).sorted().toList(), "nothing created next to the shares");
        }
    }

    /** A negotiated session with fids 1-3 at the share roots and 4-7 inside; moved names may be missing. */
    private static void base(P9Client c) {
        c.version(1 << 16);
        c.attach(1, "a", 0);
        c.attach(2, "b", HostUser.NOBODY);
        c.attach(3, "n", 0);
        String[][] walks = {{"1", "4", "x"}, {"4", "5", "y"}, {"3", "6", "m"}, {"2", "7", "w"}};
        for (String[] w : walks) {
            try {
                c.walk(Integer.parseInt(w[0]), Integer.parseInt(w[1]), w[2]);
            } catch (P9Error e) {
                // moved away right now
            }
        }
    }

    /** A well-formed walk, attach or clunk, with names and fids that exist more often than not. */
    static byte[] plausible(Random rnd, P9Client c) {
        int kind = rnd.nextInt(8);
        if (kind == 0) {
            int[] uids = {0, HostUser.NOBODY, 1000, -1, rnd.nextInt()};
            return c.request(P9Constants.TATTACH).u32(1 + rnd.nextInt(12)).u32(-1).str("u")
                    .str(ANAMES[rnd.nextInt(ANAMES.length)]).u32(uids[rnd.nextInt(uids.length)]).encode();
        }
        if (kind == 1) {
            return c.request(P9Constants.TCLUNK).u32(8 + rnd.nextInt(5)).encode();
        }
        int fid = 1 + rnd.nextInt(8), n = rnd.nextInt(5);
        int newfid = rnd.nextBoolean() ? fid : 8 + rnd.nextInt(5); // in place, or a clone a clunk frees again
        P9Client.Request r = c.request(P9Constants.TWALK).u32(fid).u32(newfid).u16(n);
        for (int i = 0; i < n; i++) {
            r.str(rnd.nextInt(3) == 0 ? ".." : SHARE_NAMES[rnd.nextInt(8)]);
        }
        return r.encode();
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
