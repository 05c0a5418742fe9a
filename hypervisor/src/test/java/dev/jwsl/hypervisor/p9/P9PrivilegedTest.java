package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;

import static dev.jwsl.hypervisor.p9.P9SessionTest.O_CREAT;
import static dev.jwsl.hypervisor.p9.P9SessionTest.RDONLY;
import static dev.jwsl.hypervisor.p9.P9SessionTest.RDWR;
import static dev.jwsl.hypervisor.p9.P9SessionTest.errno;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A server running as root (jwsl-9p is documented for root use) serves each request as the user
 * who attached, and makes no device node unless allowed (issue 16, finding 13). The tests attach
 * as nobody (65534), whom every Debian host has.
 */
class P9PrivilegedTest {
    static final int ROOT_FID = 1, NOBODY_FID = 2, NOBODY = 65534;
    static final int S_IFIFO = 0010000, S_IFCHR = 0020000, S_IFBLK = 0060000;

    @TempDir
    Path dir;
    Path share;
    Served served;
    P9Client c;

    @BeforeEach
    void start() throws IOException {
        assumeTrue(HostFs.geteuid() == 0, "needs a server running as root");
        share = Files.createDirectory(dir.resolve("share"));
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setPosixFilePermissions(share, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.writeString(share.resolve("secret"), "root's");
        Files.setPosixFilePermissions(share.resolve("secret"), PosixFilePermissions.fromString("rw-------"));
        Path pub = Files.createDirectory(share.resolve("pub"));
        Files.setPosixFilePermissions(pub, PosixFilePermissions.fromString("rwxrwxrwx"));
        served = Served.of(() -> new P9Server(Map.of("s", share), Executors.newFixedThreadPool(2), 64, 2));
        c = served.client();
        c.attach(ROOT_FID, "", 0);
        c.attach(NOBODY_FID, "", NOBODY);
    }

    @AfterEach
    void stop() throws IOException {
        if (served != null) {
            served.close();
        }
        assertEquals(List.of("0", "0", "0", "0"), ids("Uid"), "the thread is root again");
        assertEquals(List.of("0", "0", "0", "0"), ids("Gid"));
    }

    /** This thread's real, effective, saved and file-system ids (the Uid or Gid line of its status). */
    static List<String> ids(String which) throws IOException {
        String line = Files.readAllLines(Path.of("/proc/thread-self/status")).stream()
                .filter(l -> l.startsWith(which + ":")).findFirst().orElseThrow();
        return List.of(line.substring(which.length() + 1).strip().split("\\s+"));
    }

    @Test
    void nobodyCannotReadRootsPrivateFile() {
        c.walk(NOBODY_FID, 3, "secret");
        assertEquals(Errno.EACCES, errno(() -> c.lopen(3, RDONLY)));
        c.walk(ROOT_FID, 4, "secret");
        c.lopen(4, RDONLY);
        assertEquals("root's", new String(c.read(4, 0, 10)));
    }

    @Test
    void nobodyCannotWriteWhereOnlyRootMay() {
        assertEquals(Errno.EACCES, errno(() -> c.mkdir(NOBODY_FID, "made", 0755)));
        c.walk(NOBODY_FID, 3);
        assertEquals(Errno.EACCES, errno(() -> c.lcreate(3, "made", RDWR | O_CREAT, 0644)));
        assertFalse(Files.exists(share.resolve("made")));
        c.walk(NOBODY_FID, 4, "secret");
        assertEquals(Errno.EPERM, errno(() -> c.setattr(4, P9ConstantsView.ATTR_MODE, 0666, 0, 0, 0, 0)));
    }

    /** What nobody makes is nobody's, with a group nobody is in: never the gid 0 the client asked for. */
    @Test
    void whatAUserMakesIsTheirsWithTheirGroups() throws IOException {
        c.walk(NOBODY_FID, 3, "pub");
        c.lcreate(3, "f", RDWR | O_CREAT, 0644, 0);
        c.walk(NOBODY_FID, 4, "pub");
        c.mkdir(4, "d", 0755, 0);
        for (String name : List.of("f", "d")) {
            Path p = share.resolve("pub").resolve(name);
            assertEquals(NOBODY, Files.getAttribute(p, "unix:uid"), name);
            assertEquals(NOBODY, Files.getAttribute(p, "unix:gid"), name + ": nobody is not in group 0");
        }
        c.walk(ROOT_FID, 5, "pub");
        c.lcreate(5, "g", RDWR | O_CREAT, 0644, 100);
        assertEquals(0, Files.getAttribute(share.resolve("pub/g"), "unix:uid"));
        assertEquals(100, Files.getAttribute(share.resolve("pub/g"), "unix:gid"), "root may give any group");
    }

    @Test
    void deviceNodesAreRefusedUnlessAllowed() throws IOException {
        assertEquals(Errno.EPERM, errno(() -> c.mknod(ROOT_FID, "sda", S_IFBLK | 0666, 8, 0, -1)));
        assertEquals(Errno.EPERM, errno(() -> c.mknod(ROOT_FID, "null", S_IFCHR | 0666, 1, 3, -1)));
        c.walk(NOBODY_FID, 3, "pub");
        assertEquals(Errno.EPERM, errno(() -> c.mknod(3, "sda", S_IFBLK | 0666, 8, 0, -1)));
        assertFalse(Files.exists(share.resolve("sda")) || Files.exists(share.resolve("null"))
                || Files.exists(share.resolve("pub/sda")));
        c.mknod(ROOT_FID, "fifo", S_IFIFO | 0666, 0, 0, -1);
        assertTrue(Files.exists(share.resolve("fifo")));

        P9Server.Settings allowed = P9Server.Settings.DEFAULT.withDeviceNodes(true);
        try (Served s = Served.of(() -> new P9Server(Map.of("s", share), Executors.newSingleThreadExecutor(), allowed, 1))) {
            P9Client k = s.client();
            k.attach(1, "", 0);
            k.mknod(1, "null", S_IFCHR | 0600, 1, 3, -1);
            assertEquals(HostFs.makedev(1, 3), Files.getAttribute(share.resolve("null"), "unix:rdev"));
            k.attach(2, "", NOBODY);
            k.walk(2, 3, "pub");
            assertEquals(Errno.EPERM, errno(() -> k.mknod(3, "null2", S_IFCHR | 0600, 1, 3, -1)),
                    "allowed, the host still decides who may: nobody has no CAP_MKNOD");
            assertFalse(Files.exists(share.resolve("pub/null2")));
        }
    }

    /** Requests of two users at once, on the transport's thread and on the workers: neither borrows the other's rights. */
    @Test
    void concurrentRequestsKeepTheirOwnUser() throws Exception {
        c.walk(ROOT_FID, 3, "secret");
        c.lopen(3, RDONLY);
        P9Session other = served.server().open();
        P9Client k = new P9Client(P9Client.direct(other, 1 << 16));
        k.version(1 << 16);
        k.attach(1, "", NOBODY);
        try {
            CompletableFuture<Void> nobody = CompletableFuture.runAsync(() -> {
                for (int i = 0; i < 2000; i++) {
                    k.walk(1, 2, "secret");
                    assertEquals(Errno.EACCES, errno(() -> k.lopen(2, RDONLY)), "round " + i);
                    k.clunk(2);
                }
            });
            for (int i = 0; i < 2000 && !nobody.isDone(); i++) {
                assertEquals("root's", new String(c.read(3, 0, 10)));
                c.walk(ROOT_FID, 4, "secret");
                c.lopen(4, RDONLY);
                c.clunk(4);
            }
            nobody.get();
        } finally {
            other.close();
        }
    }

    /** An attach without a uid, or with one the host does not know, gets no group by the number. */
    @Test
    void unknownUsersAreNobody() {
        HostUser none = HostUser.lookup(HostUser.NO_UID);
        assertEquals(NOBODY, none.uid());
        assertEquals(NOBODY, none.gid());
        HostUser unknown = HostUser.lookup(54321);
        assertEquals(54321, unknown.uid());
        assertEquals(NOBODY, unknown.gid());
        assertEquals(0, unknown.groups().length);
        HostUser root = HostUser.lookup(0);
        assertEquals(0, root.gid());
    }
}
