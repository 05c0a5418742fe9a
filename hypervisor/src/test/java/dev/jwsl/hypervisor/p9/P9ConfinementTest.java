package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.jwsl.hypervisor.p9.P9SessionTest.errno;
import static org.junit.jupiter.api.Assertions.*;

/**
 * One server serving two shares, as the service's vsock transport and {@code jwsl-9p --share}
 * do: a fid never leaves its own share, whether the guest moves things between shares or a host
 * process moves a directory the guest has walked into (issue 16, findings 2, 8 and 9).
 */
class P9ConfinementTest {
    static final int A = 1, B = 2;

    @TempDir
    Path dir;
    Path a, b;
    Served served;
    P9Client c;

    @BeforeEach
    void start() throws IOException {
        a = Files.createDirectory(dir.resolve("a"));
        b = Files.createDirectory(dir.resolve("b"));
        Files.writeString(dir.resolve("secret"), "outside every share");
        Map<String, Path> shares = new LinkedHashMap<>();
        shares.put("a", a);
        shares.put("b", b);
        served = Served.shares(shares);
        c = served.client();
        c.attach(A, "a", 0);
        c.attach(B, "b", 0);
    }

    @AfterEach
    void stop() throws IOException {
        served.close();
    }

    long qid(Path p) throws IOException {
        return (long) Files.getAttribute(p, "unix:ino");
    }

    /** The input: without the check, two ".." from a/D (now b/D) reach the shares' parent. */
    @Test
    void renameBetweenSharesIsExdev() throws IOException {
        c.mkdir(A, "D", 0755);
        c.walk(A, 3, "D");
        assertEquals(Errno.EXDEV, errno(() -> c.renameat(A, "D", B, "D")));
        assertTrue(Files.isDirectory(a.resolve("D")));
        assertFalse(Files.exists(b.resolve("D")));
        assertEquals(List.of(qid(a), qid(a)), c.walk(3, 4, "..", ".."));
    }

    @Test
    void oldRenameAndLinkBetweenSharesAreExdev() throws IOException {
        Files.writeString(a.resolve("f"), "a's");
        c.walk(A, 3, "f");
        assertEquals(Errno.EXDEV, errno(() -> c.rename(3, B, "f")));
        assertEquals(Errno.EXDEV, errno(() -> c.link(B, 3, "f")));
        assertFalse(Files.exists(b.resolve("f")));
        assertEquals("a's", Files.readString(a.resolve("f")));
    }

    /** Finding 9: a host process moves a directory the guest has walked into out of the share. */
    @Test
    void aDirectoryMovedOutOfTheShareIsNotAWayOut() throws IOException {
        Files.createDirectories(a.resolve("x/y/z"));
        Files.writeString(a.resolve("x/y/file"), "moved out");
        c.walk(A, 3, "x", "y");
        c.walk(3, 7, "file");
        Files.move(a.resolve("x"), dir.resolve("x"));
        assertEquals(Errno.ENOENT, errno(() -> c.walk(3, 4, "..")));
        assertEquals(Errno.ENOENT, errno(() -> c.walk(3, 4, "..", "..", "secret")));
        assertEquals(Errno.ENOENT, errno(() -> c.walk(3, 4, "z")), "nor into what is outside now");
        assertEquals(Errno.ENOENT, errno(() -> c.mkdir(3, "made", 0755)));
        assertEquals(Errno.ENOENT, errno(() -> c.lcreate(3, "made", P9SessionTest.RDWR | P9SessionTest.O_CREAT, 0644)));
        assertEquals(Errno.ENOENT, errno(() -> c.symlink(3, "made", "t")));
        assertEquals(Errno.ENOENT, errno(() -> c.unlinkat(3, "z", P9ConstantsView.AT_REMOVEDIR)));
        assertEquals(Errno.ENOENT, errno(() -> c.renameat(3, "z", A, "z")), "nor take a file in from outside");
        Files.writeString(a.resolve("f"), "inside");
        c.walk(A, 5, "f");
        assertEquals(Errno.ENOENT, errno(() -> c.link(3, 5, "f")));
        assertEquals(Errno.ENOENT, errno(() -> c.rename(5, 3, "f")), "nor put a file out there");
        // a file in it is neither opened nor changed, though its metadata can still be read
        assertEquals(Errno.ENOENT, errno(() -> c.lopen(7, P9SessionTest.RDWR)));
        assertEquals(Errno.ENOENT, errno(() -> c.setattr(7, P9ConstantsView.ATTR_SIZE, 0, 0, 0, 0, 0)));
        c.xattrcreate(7, "user.x", 0, 0);
        assertEquals(Errno.ENOENT, errno(() -> c.clunk(7)), "nor its attributes set");
        assertEquals(qid(dir.resolve("x/y")), c.getattr(3).qidPath());
        assertEquals("moved out", Files.readString(dir.resolve("x/y/file")));
        try (var s = Files.list(dir.resolve("x/y"))) {
            assertEquals(List.of("file", "z"), s.map(p -> p.getFileName().toString()).sorted().toList());
        }
        // moved back, the fid is in the share again
        Files.move(dir.resolve("x"), a.resolve("x"));
        assertEquals(List.of(qid(a.resolve("x")), qid(a)), c.walk(3, 4, "..", ".."));
        c.walk(3, 6, "z");
    }

    /**
     * A host process keeps moving a directory out of share a and back while the guest walks
     * ".." from inside it, makes names in it and moves it to share b: whatever the timing, no
     * walk reaches the file next to the shares, and nothing appears outside them.
     */
    @Test
    void hostMovesRacingGuestWalksNeverLeaveTheShare() throws Exception {
        Files.createDirectories(a.resolve("x/y"));
        Path in = a.resolve("x"), out = dir.resolve("x");
        AtomicBoolean done = new AtomicBoolean();
        AtomicInteger moves = new AtomicInteger();
        Thread mover = new Thread(() -> {
            while (!done.get()) {
                try {
                    Files.move(in, out);
                    Files.move(out, in);
                    moves.incrementAndGet();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
        });
        mover.start();
        Set<Long> outside = Set.of(qid(dir), qid(dir.getParent()));
        Random rnd = new Random(16);
        int reachedParent = 0;
        try {
            for (int i = 0; i < 20_000; i++) {
                try {
                    switch (rnd.nextInt(5)) {
                        case 0 -> c.walk(A, 3, "x", "y");
                        case 1 -> assertTrue(c.walk(3, 4, "..", "..", "..", "secret").size() < 4,
                                "walked to the file outside");
                        case 2 -> {
                            List<Long> q = c.walk(3, 4, "..", "..", "..");
                            assertTrue(q.stream().noneMatch(outside::contains), "walked above the share: " + q);
                            if (q.size() == 3) { // a partial walk makes no fid
                                reachedParent++;
                                c.clunk(4);
                            }
                        }
                        case 3 -> c.mkdir(3, "m", 0755);
                        default -> c.renameat(A, "x", B, "x");
                    }
                } catch (P9Error e) {
                    assertTrue(Set.of(Errno.ENOENT, Errno.EEXIST, Errno.EXDEV, Errno.EBADF).contains(e.errno()),
                            "unexpected " + e.getMessage());
                }
            }
        } finally {
            done.set(true);
            mover.join();
        }
        assertTrue(moves.get() > 0 && reachedParent > 0, "moves " + moves + ", full walks up " + reachedParent);
        try (var s = Files.list(dir)) {
            assertEquals(List.of("a", "b", "secret"), s.map(p -> p.getFileName().toString()).sorted().toList());
        }
        assertEquals("outside every share", Files.readString(dir.resolve("secret")));
        assertFalse(Files.exists(b.resolve("x")));
    }

    /** The guest's own version: with one share inside another, a move through the outer one. */
    @Test
    void dotDotStopsAtTheFidsOwnShareWhenSharesNest() throws IOException {
        Files.createDirectories(a.resolve("inner/d/e"));
        Map<String, Path> shares = new LinkedHashMap<>();
        shares.put("outer", a);
        shares.put("inner", a.resolve("inner"));
        try (Served s = Served.shares(shares)) {
            P9Client k = s.client();
            k.attach(A, "outer", 0);
            k.attach(B, "inner", 0);
            k.walk(B, 3, "d", "e");
            k.walk(A, 5, "inner");
            k.renameat(5, "d", A, "d"); // out of inner, but within outer: allowed
            assertEquals(Errno.ENOENT, errno(() -> k.walk(3, 4, "..")), "e is no longer in the inner share");
            assertEquals(Errno.ENOENT, errno(() -> k.mkdir(3, "made", 0755)));
            k.renameat(A, "d", 5, "d");
            assertEquals(List.of(qid(a.resolve("inner/d")), qid(a.resolve("inner")), qid(a.resolve("inner"))),
                    k.walk(3, 4, "..", "..", ".."));
        }
    }

    /** A C string ends at NUL: "..\0x" would reach the syscalls as "..". */
    @Test
    void namesWithNulAreRefused() throws IOException {
        Files.writeString(a.resolve("f"), "x");
        assertEquals(Errno.EINVAL, errno(() -> c.walk(A, 3, "f\0ignored")));
        assertEquals(Errno.EINVAL, errno(() -> c.walk(A, 3, "..\0")));
        assertEquals(Errno.EINVAL, errno(() -> c.mkdir(A, "d\0", 0755)));
        assertEquals(Errno.EINVAL, errno(() -> c.renameat(A, "f\0", A, "g")));
        assertFalse(Files.exists(a.resolve("d")));
    }

    /** Finding 8: a share named through a symlink still finds its files (Tremove, Trename, ".."). */
    @Test
    void aShareReachedThroughASymlinkWorks() throws IOException {
        Path link = Files.createSymbolicLink(dir.resolve("link"), a);
        Files.createDirectories(a.resolve("x/y"));
        Files.writeString(a.resolve("x/f"), "x");
        try (Served s = Served.shares(Map.of("l", link))) {
            P9Client k = s.client();
            k.attach(A, "l", 0);
            assertEquals(List.of(qid(a.resolve("x")), qid(a.resolve("x/y")), qid(a.resolve("x")), qid(a), qid(a)),
                    k.walk(A, 3, "x", "y", "..", "..", ".."));
            k.walk(A, 4, "x", "f");
            k.walk(A, 5, "x", "y");
            k.rename(4, 5, "g");
            assertTrue(Files.exists(a.resolve("x/y/g")));
            k.remove(4);
            assertFalse(Files.exists(a.resolve("x/y/g")));
            assertEquals(Errno.EBUSY, errno(() -> k.remove(A)), "the share root itself is not removed");
            assertTrue(Files.isDirectory(a));
        }
    }

    /** The share keeps working when the host renames its root: the fids follow the directory. */
    @Test
    void aShareRootRenamedOnTheHostKeepsServing() throws IOException {
        Files.createDirectories(a.resolve("x/y"));
        Files.writeString(a.resolve("x/f"), "x");
        c.walk(A, 3, "x", "y");
        c.walk(A, 4, "x", "f");
        Path renamed = Files.move(a, dir.resolve("a2"));
        assertEquals(List.of(qid(renamed.resolve("x")), qid(renamed)), c.walk(3, 5, "..", ".."));
        c.mkdir(3, "made", 0755);
        assertTrue(Files.isDirectory(renamed.resolve("x/y/made")));
        c.remove(4);
        assertFalse(Files.exists(renamed.resolve("x/f")));
    }
}
