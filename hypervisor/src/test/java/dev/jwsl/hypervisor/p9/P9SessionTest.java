package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The server against real host directories, driven by a raw 9P client in-process. */
class P9SessionTest {
    static final int RDONLY = 0, WRONLY = 1, RDWR = 2, O_CREAT = 0100, O_EXCL = 0200, O_TRUNC = 01000,
            O_APPEND = 02000, O_DIRECTORY = 0200000;
    static final int ROOT = 1;

    @TempDir
    Path dir;
    Path share;
    Served served;
    P9Server server;
    P9Session session;
    P9Client c;

    @BeforeEach
    void start() throws IOException {
        share = Files.createDirectory(dir.resolve("share"));
        Files.writeString(dir.resolve("secret"), "outside the share");
        served = Served.attached(share);
        server = served.server();
        session = served.session();
        c = served.client();
    }

    @AfterEach
    void stop() {
        served.close();
    }

    static int errno(Runnable r) {
        P9Error e = assertThrows(P9Error.class, r::run);
        return e.errno();
    }

    /**
     * A reply buffer belongs to the transport again once the session is closed (a virtio reset
     * hands the driver its memory back): a request still queued for a worker then writes nothing.
     */
    @Test
    void aRequestStillQueuedWhenTheSessionClosesWritesNothing() throws Exception {
        c.walk(ROOT, 2);
        c.lcreate(2, "f", RDWR | O_CREAT, 0600);
        java.util.concurrent.CountDownLatch blocker = new java.util.concurrent.CountDownLatch(1);
        server.workers().execute(() -> {
            try {
                blocker.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        byte[] read = c.request(P9Constants.TREAD).u32(2).u64(0).u32(100).encode();
        byte[] reply = new byte[4096];
        CompletableFuture<Integer> done = new CompletableFuture<>();
        session.submit(dev.jwsl.hypervisor.memory.Scatter.of(java.lang.foreign.MemorySegment.ofArray(read)),
                dev.jwsl.hypervisor.memory.Scatter.of(java.lang.foreign.MemorySegment.ofArray(reply)), done::complete);
        session.close();
        blocker.countDown();
        assertEquals(0, done.get(10, TimeUnit.SECONDS), "reply length after close");
        assertArrayEquals(new byte[reply.length], reply, "the closed session wrote into the reply buffer");
    }

    @Test
    void createWriteReadStatListRenameRemove() throws IOException {
        c.walk(ROOT, 2);
        c.lcreate(2, "a.txt", RDWR | O_CREAT | O_EXCL, 0640);
        assertEquals(5, c.write(2, 0, "hello".getBytes()));
        assertEquals(6, c.write(2, 5, " world".getBytes()));
        assertEquals("hello world", new String(c.read(2, 0, 100)));
        assertEquals("world", new String(c.read(2, 6, 5)));
        c.fsync(2);
        c.clunk(2);
        assertEquals("hello world", Files.readString(share.resolve("a.txt")));
        assertEquals("rw-r-----", PosixFilePermissions.toString(Files.getPosixFilePermissions(share.resolve("a.txt"))));

        c.walk(ROOT, 30, "a.txt");
        c.walk(30, 3); // a clone of a file fid, as the Linux client makes before every open
        c.clunk(30);
        P9Client.Attr a = c.getattr(3);
        assertEquals(11, a.size());
        assertEquals(0100640, a.mode());
        assertEquals(Files.getAttribute(share.resolve("a.txt"), "unix:ino"), a.qidPath());
        c.setattr(3, P9ConstantsView.ATTR_MODE | P9ConstantsView.ATTR_SIZE | P9ConstantsView.ATTR_MTIME
                | P9ConstantsView.ATTR_MTIME_SET, 0600, 0, 0, 5, 1_000_000_000L);
        assertEquals("hello", Files.readString(share.resolve("a.txt")));
        assertEquals(1_000_000_000_000L, Files.getLastModifiedTime(share.resolve("a.txt")).toMillis());
        c.clunk(3);

        c.mkdir(ROOT, "d", 0755);
        c.walk(ROOT, 4, "d");
        c.renameat(ROOT, "a.txt", 4, "b.txt");
        assertTrue(Files.exists(share.resolve("d/b.txt")));
        assertEquals(Errno.ENOTEMPTY, errno(() -> c.unlinkat(ROOT, "d", P9ConstantsView.AT_REMOVEDIR)));
        c.walk(4, 5, "b.txt");
        c.remove(5);
        assertFalse(Files.exists(share.resolve("d/b.txt")));
        c.unlinkat(ROOT, "d", P9ConstantsView.AT_REMOVEDIR);
        assertEquals(Errno.ENOENT, errno(() -> c.walk(ROOT, 6, "d")));
        c.clunk(4);
    }

    @Test
    void renameOverAnExistingFileAndAppend() throws IOException {
        Files.writeString(share.resolve("old"), "old");
        Files.writeString(share.resolve("new"), "new");
        c.renameat(ROOT, "new", ROOT, "old");
        assertEquals("new", Files.readString(share.resolve("old")));
        c.walk(ROOT, 2, "old");
        c.lopen(2, WRONLY | O_APPEND);
        c.write(2, 0, "+1".getBytes());
        c.clunk(2);
        assertEquals("new+1", Files.readString(share.resolve("old")));
    }

    @Test
    void symlinksHardlinksAndReadlink() throws IOException {
        c.symlink(ROOT, "abs", "/etc/passwd");
        c.symlink(ROOT, "rel", "../secret");
        assertEquals("/etc/passwd", Files.readSymbolicLink(share.resolve("abs")).toString());
        c.walk(ROOT, 2, "rel");
        assertEquals("../secret", c.readlink(2));
        assertEquals(Errno.ELOOP, errno(() -> c.lopen(2, RDONLY)), "the server never follows a symlink");
        Files.writeString(share.resolve("f"), "x");
        c.walk(ROOT, 3, "f");
        c.link(ROOT, 3, "f2");
        assertEquals(2, c.getattr(3).nlink());
        assertEquals(Files.getAttribute(share.resolve("f"), "unix:ino"), Files.getAttribute(share.resolve("f2"), "unix:ino"));
    }

    @Test
    void confinedToTheShare() throws IOException {
        long root = c.getattr(ROOT).qidPath();
        assertEquals(List.of(root, root), c.walk(ROOT, 2, "..", ".."), ".. at the root stays at the root");
        Files.createDirectories(share.resolve("a/b"));
        c.walk(ROOT, 3, "a", "b", "..", "..", "..", "..");
        assertEquals(root, c.getattr(3).qidPath());
        assertEquals(Errno.EINVAL, errno(() -> c.walk(ROOT, 4, "a/b")));
        assertEquals(Errno.EINVAL, errno(() -> c.walk(ROOT, 4, "")));
        // a symlink out of the share: walking through it fails, it is never followed
        Files.createSymbolicLink(share.resolve("out"), dir);
        Files.createSymbolicLink(share.resolve("up"), Path.of(".."));
        assertEquals(1, c.walk(ROOT, 4, "out", "secret").size(), "a partial walk stops at the symlink");
        assertEquals(Errno.EBADF, errno(() -> c.getattr(4)), "and makes no fid");
        assertEquals(1, c.walk(ROOT, 4, "up", "secret").size());
        c.walk(ROOT, 4, "out");
        assertEquals(Errno.ENOTDIR, errno(() -> c.walk(4, 5, "secret")));
        c.clunk(4);
        // creating through a symlink's name must not write outside
        Files.createSymbolicLink(share.resolve("trap"), dir.resolve("created-outside"));
        assertTrue(errno(() -> c.lcreate(ROOT, "trap", RDWR | O_CREAT, 0644)) != 0);
        assertFalse(Files.exists(dir.resolve("created-outside")));
        assertEquals(Errno.EINVAL, errno(() -> c.mkdir(ROOT, "..", 0755)));
        assertEquals(Errno.EINVAL, errno(() -> c.renameat(ROOT, "x", ROOT, "../escaped")));
        assertEquals(Errno.EINVAL, errno(() -> c.symlink(ROOT, "a/../../x", "t")));
        // a directory swapped for a symlink after the walk: the fid still holds the directory
        c.walk(ROOT, 5, "a");
        Files.move(share.resolve("a"), share.resolve("a.moved"));
        Files.createSymbolicLink(share.resolve("a"), dir);
        c.walk(5, 6, "b");
        assertEquals(Files.getAttribute(share.resolve("a.moved/b"), "unix:ino"), c.getattr(6).qidPath());
        assertEquals(Errno.ENOENT, errno(() -> c.walk(5, 7, "secret")));
    }

    @Test
    void errnosComeBackAsTheHostGivesThem() throws IOException {
        assertEquals(Errno.ENOENT, errno(() -> c.walk(ROOT, 2, "missing")));
        Files.createDirectory(share.resolve("d"));
        Files.writeString(share.resolve("d/x"), "");
        assertEquals(Errno.ENOTEMPTY, errno(() -> c.unlinkat(ROOT, "d", P9ConstantsView.AT_REMOVEDIR)));
        assertEquals(Errno.EEXIST, errno(() -> c.mkdir(ROOT, "d", 0755)));
        assertEquals(Errno.EBADF, errno(() -> c.getattr(99)));
        c.walk(ROOT, 2, "d", "x");
        assertEquals(Errno.ENOTDIR, errno(() -> c.walk(2, 3, "y")));
        assertEquals(Errno.EBADF, errno(() -> c.read(2, 0, 10)), "not opened");
        c.lopen(2, RDONLY);
        assertEquals(Errno.EBADF, errno(() -> c.write(2, 0, new byte[1])), "opened read-only");
    }

    @Test
    void crossDeviceRenameIsExdev() throws IOException {
        Path shm = Files.createTempDirectory(Path.of("/dev/shm"), "p9test");
        try (P9Server two = new P9Server(new LinkedHashMap<>(Map.of("a", share)), Executors.newSingleThreadExecutor(), 64, 1)) {
            Map<String, Path> m = new LinkedHashMap<>();
            m.put("disk", share);
            m.put("shm", shm);
            try (P9Server s = new P9Server(m, Executors.newSingleThreadExecutor(), 64, 1); P9Session ss = s.open()) {
                P9Client k = new P9Client(P9Client.direct(ss, 1 << 16));
                k.version(1 << 16);
                k.attach(1, "disk", 0);
                k.attach(2, "shm", 0);
                Files.writeString(share.resolve("f"), "x");
                assertEquals(Errno.EXDEV, errno(() -> k.renameat(1, "f", 2, "f")));
                assertEquals(Errno.ENOENT, errno(() -> k.attach(3, "nope", 0)));
            }
        } finally {
            try (var s = Files.walk(shm)) {
                s.sorted((a, b) -> b.compareTo(a)).forEach(p -> p.toFile().delete());
            }
        }
    }

    @Test
    void largeFilesBeyond4GiB() throws IOException {
        c.walk(ROOT, 2);
        c.lcreate(2, "big", RDWR | O_CREAT, 0644);
        long at = 5L << 30;
        c.write(2, at, "tail".getBytes());
        assertEquals("tail", new String(c.read(2, at, 10)));
        c.clunk(2);
        assertEquals(at + 4, Files.size(share.resolve("big")));
    }

    @Test
    void hundredThousandEntriesListCompletely() throws IOException {
        Path big = Files.createDirectory(share.resolve("big"));
        for (int i = 0; i < 100_000; i++) {
            Files.createFile(big.resolve("file-" + i));
        }
        c.walk(ROOT, 2, "big");
        c.lopen(2, RDONLY | O_DIRECTORY);
        List<P9Client.Entry> all = c.readdirAll(2, 8192);
        Set<String> names = all.stream().map(P9Client.Entry::name).collect(Collectors.toSet());
        assertEquals(100_002, all.size(), "every entry once, with . and ..");
        assertEquals(100_002, names.size());
        assertTrue(names.contains("file-99999") && names.contains(".") && names.contains(".."));
        // a tiny count still makes progress entry by entry
        Path small = Files.createDirectory(share.resolve("small"));
        for (int i = 0; i < 1000; i++) {
            Files.createFile(small.resolve("a-rather-long-file-name-" + i));
        }
        c.walk(ROOT, 3, "small");
        c.lopen(3, RDONLY | O_DIRECTORY);
        assertEquals(1002, new HashSet<>(c.readdirAll(3, 64).stream().map(P9Client.Entry::name).toList()).size());
    }

    @Test
    void locksConflictBetweenOpens() throws IOException {
        Files.writeString(share.resolve("l"), "x");
        c.walk(ROOT, 2, "l");
        c.lopen(2, RDWR);
        c.walk(ROOT, 3, "l");
        c.lopen(3, RDWR);
        assertEquals(0, c.lock(2, 1, 0, 0));
        assertEquals(1, c.lock(3, 1, 0, 0), "second writer is blocked");
        assertEquals(0, c.lock(2, 2, 0, 0));
        assertEquals(0, c.lock(3, 1, 0, 0));
    }

    @Test
    void xattrsRoundTrip() throws IOException {
        Files.writeString(share.resolve("x"), "");
        c.walk(ROOT, 2, "x");
        byte[] v = "value".getBytes(StandardCharsets.UTF_8);
        c.xattrcreate(2, "user.test", v.length, 0);
        c.write(2, 0, v);
        c.clunk(2);
        c.walk(ROOT, 3, "x");
        assertEquals(5, c.xattrwalk(3, 4, "user.test"));
        assertEquals("value", new String(c.read(4, 0, 100)));
        c.clunk(4);
        long n = c.xattrwalk(3, 5, "");
        assertTrue(new String(c.read(5, 0, (int) n)).contains("user.test"));
        assertEquals(Errno.ENODATA, errno(() -> c.xattrwalk(3, 6, "user.missing")));
        assertEquals(Errno.E2BIG, errno(() -> c.xattrcreate(3, "user.big", 1 << 20, 0)));
    }

    @Test
    void fidsAreBoundedPerConnection() {
        for (int i = 0; i < 63; i++) {
            c.walk(ROOT, 100 + i);
        }
        assertEquals(Errno.EMFILE, errno(() -> c.walk(ROOT, 999)));
        c.clunk(100);
        c.walk(ROOT, 999);
        assertEquals(Errno.EBADF, errno(() -> c.walk(ROOT, 999)), "fid in use");
        assertEquals(Errno.EINVAL, errno(() -> c.walk(ROOT, 1000, "a", "b", "c", "d", "e", "f", "g", "h", "i",
                "j", "k", "l", "m", "n", "o", "p", "q")));
    }

    @Test
    void theHostsProcAndSysAreNotOpened() throws IOException {
        try (P9Server s = new P9Server(Map.of("root", Path.of("/")), Executors.newSingleThreadExecutor(), 64, 1);
             P9Session ss = s.open()) {
            P9Client k = new P9Client(P9Client.direct(ss, 1 << 16));
            k.version(1 << 16);
            k.attach(1, "", 0);
            String pid = Long.toString(ProcessHandle.current().pid());
            assertEquals(2, k.walk(1, 2, "proc", "self", "mem").size(), "/proc/self is a symlink: the walk stops there");
            k.walk(1, 2, "proc", pid, "mem");
            assertEquals(Errno.EACCES, errno(() -> k.lopen(2, RDWR)), "the server's own memory");
            k.walk(1, 3, "proc", pid, "status");
            assertEquals(Errno.EACCES, errno(() -> k.lopen(3, RDONLY)));
            k.walk(1, 4, "proc", pid, "fd", "0");
            assertEquals(Errno.ELOOP, errno(() -> k.lopen(4, RDONLY)), "a descriptor's magic link is never followed");
            k.walk(1, 5, "sys", "kernel", "mm");
            k.walk(1, 6, "sys", "kernel", "uevent_seqnum");
            assertEquals(Errno.EACCES, errno(() -> k.lopen(6, WRONLY)));
            k.lopen(6, RDONLY);
            assertTrue(new String(k.read(6, 0, 64)).strip().matches("\\d+"));
        }
    }

    /** Tlcreate of a name that exists opens it: with the same refusals as Tlopen. */
    @Test
    void createOfAnExistingKernelFileIsRefused() {
        try (Served s = Served.shares(Map.of("root", Path.of("/")))) {
            P9Client k = s.client();
            k.attach(1, "", 0);
            k.walk(1, 2, "proc", Long.toString(ProcessHandle.current().pid()));
            assertEquals(Errno.EACCES, errno(() -> k.lcreate(2, "mem", RDWR, 0600)), "the server's own memory");
            k.walk(1, 3, "sys", "kernel");
            assertEquals(Errno.EACCES, errno(() -> k.lcreate(3, "uevent_seqnum", WRONLY, 0644)));
        }
    }

    /** An existing FIFO opened for reading would wait for a writer, holding the transport's thread. */
    @Test
    void createOfAnExistingFifoDoesNotWait() throws Exception {
        Path fifo = share.resolve("fifo");
        // No pipes to the child: the JVM closes them when it gets round to it, and until then they
        // count as descriptors this test leaked.
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD)
                .start().waitFor());
        CompletableFuture<Integer> created = CompletableFuture.supplyAsync(() -> errno(() -> c.lcreate(ROOT, "fifo", RDONLY, 0644)));
        try {
            assertEquals(Errno.EOPNOTSUPP, created.get(10, TimeUnit.SECONDS));
        } finally {
            if (!created.isDone()) {
                Files.newOutputStream(fifo).close(); // the writer the server's open waits for
                created.join();
            }
        }
    }

    @Test
    void exclusiveCreateOfAnExistingFileIsEexist() throws IOException {
        Files.writeString(share.resolve("there"), "kept");
        assertEquals(Errno.EEXIST, errno(() -> c.lcreate(ROOT, "there", RDWR | O_CREAT | O_EXCL | O_TRUNC, 0644)));
        assertEquals("kept", Files.readString(share.resolve("there")));
        c.symlink(ROOT, "sym", "there");
        assertEquals(Errno.ELOOP, errno(() -> c.lcreate(ROOT, "sym", RDWR | O_CREAT, 0644)), "a symlink is not followed");
        c.mkdir(ROOT, "dir", 0755);
        assertEquals(Errno.EISDIR, errno(() -> c.lcreate(ROOT, "dir", RDONLY | O_CREAT, 0644)));
    }

    /** Without O_EXCL, Tlcreate opens what is there; only what it makes is given to the creator. */
    @Test
    void createOfAnExistingFileKeepsItsOwner() throws IOException {
        assumeTrue((int) Files.getAttribute(share, "unix:uid") == 0, "needs a server that may chown");
        Files.writeString(share.resolve("there"), "kept");
        Files.setAttribute(share.resolve("there"), "unix:uid", 1234);
        c.walk(ROOT, 2);
        c.lcreate(2, "there", RDWR | O_CREAT, 0644);
        assertEquals("kept", new String(c.read(2, 0, 10)));
        assertEquals(1234, Files.getAttribute(share.resolve("there"), "unix:uid"));
    }

    @Test
    void versionResetsTheSession() {
        c.walk(ROOT, 2);
        c.version(8192);
        assertEquals(0, session.fidCount());
        assertEquals(Errno.EBADF, errno(() -> c.getattr(ROOT)));
    }
}
