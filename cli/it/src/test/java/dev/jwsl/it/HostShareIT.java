package dev.jwsl.it;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Host folders in a distro over 9P, end to end through the service's default configuration (the
 * host's "/" at /mnt/host over virtio-9p): what real tools need from the share, seen from inside
 * a busybox distro and checked on the host, wslpath, and the working directory. The raw-protocol
 * confinement and fuzz cases are P9SessionTest and P9FuzzTest (no VM needed).
 */
@ExtendWith(ServiceLogsOnFailure.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class HostShareIT {
    private static WslHarness h;
    private static Path work;
    private static String guestWork;

    @BeforeAll
    static void setUp() throws Exception {
        h = new WslHarness("jwsl-share-it", 600);
        Files.writeString(h.base.resolve("wslconfig"), "[wsl2]\nvmIdleTimeout=600000\ndefaultVhdSize=256MB\n");
        Path rootfs = h.base.resolve("rootfs");
        DistroIT.buildRootfs(rootfs);
        DistroIT.sh("""
                set -e
                r=%s
                mkdir -p $r/usr/bin
                for a in ln mkdir rm dd stat tar flock mv touch wc find truncate cmp head readlink chmod rmdir pwd printf cut; do
                  [ -e $r/bin/$a ] || ln -s busybox $r/bin/$a
                done
                musl-gcc -static -O2 -o $r/bin/fstool %s
                printf '[user]\\ndefault = alice\\n' > $r/etc/wsl.conf
                tar --numeric-owner -C $r -czf %s .
                """.formatted(rootfs, h.root.resolve("cli/it/src/test/c/fstool.c"), h.base.resolve("rootfs.tar.gz")));
        ok(h.wsl("", "--import", "share", h.base.resolve("share").toString(), h.base.resolve("rootfs.tar.gz").toString()));
        work = Files.createDirectory(h.base.resolve("work"));
        Files.setPosixFilePermissions(work, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
        guestWork = "/mnt/host" + work;
    }

    @AfterAll
    static void tearDown() throws Exception {
        try {
            h.assertNoGuestCrashes();
        } finally {
            h.wsl("", "--shutdown", "--force");
            h.killService();
            h.close();
        }
    }

    private static WslHarness.Result ok(WslHarness.Result r) {
        assertEquals(0, r.exit(), r.toString());
        return r;
    }

    /** A shell script in the distro as root, in the share's work directory. */
    private static String root(String script) throws Exception {
        return ok(h.wsl("", "-u", "root", "--cd", guestWork, "--", "sh", "-c", "set -e; " + script)).stdout();
    }

    @Test
    @Order(1)
    void changesOnEitherSideAreSeenOnTheOther() throws Exception {
        Files.writeString(work.resolve("from-host"), "one\n");
        assertEquals("one\n", root("cat from-host"));
        Files.writeString(work.resolve("from-host"), "two, longer\n");
        assertEquals("two, longer\n", root("cat from-host"), "no stale cache after a host write");
        root("echo from guest > from-guest; mkdir -p sub/deeper; echo x > sub/deeper/f");
        assertEquals("from guest\n", Files.readString(work.resolve("from-guest")));
        assertEquals("x\n", Files.readString(work.resolve("sub/deeper/f")));
        Files.delete(work.resolve("from-host"));
        assertTrue(h.wsl("", "-u", "root", "--", "cat", guestWork + "/from-host").stderr().contains("No such file"));
    }

    @Test
    @Order(2)
    void wslpathAndTheWorkingDirectoryFollowTheShare() throws Exception {
        assertEquals(guestWork + "\n", ok(h.wslIn(work, new byte[0], "--", "pwd")).stdout(), "wsl starts where it was run");
        assertEquals(guestWork + "/a b\n", ok(h.wsl("", "--", "wslpath", "-u", work + "/a b")).stdout());
        assertEquals(work + "/x\n", ok(h.wsl("", "--", "wslpath", "-w", guestWork + "/sub/../x")).stdout());
        assertEquals("/mnt/host\n", ok(h.wsl("", "--", "wslpath", "/")).stdout());
        WslHarness.Result off = h.wsl("", "--", "wslpath", "-w", "/etc/passwd");
        assertEquals(1, off.exit(), off.toString());
        // a host directory the distro cannot map (none here: "/" is shared) would start in home
        assertEquals("/home/alice\n", ok(h.wsl("", "--cd", "~", "--", "pwd")).stdout());
    }

    @Test
    @Order(3)
    void realToolSemantics() throws Exception {
        // rename over an existing file, O_APPEND, fsync, flock, a file past 4 GiB
        root("""
                echo old > target; echo new > source; mv source target
                echo a > log; echo b >> log; echo c >> log
                dd if=/dev/zero of=synced bs=4096 count=16 conv=fsync 2>/dev/null
                flock -n lockfile -c 'flock -n lockfile -c true' && exit 9 || true
                dd if=/dev/zero of=big bs=1 count=1 seek=5368709120 2>/dev/null
                """);
        assertEquals("new\n", Files.readString(work.resolve("target")));
        assertEquals("a\nb\nc\n", Files.readString(work.resolve("log")));
        assertEquals(65536, Files.size(work.resolve("synced")));
        assertEquals(5368709121L, Files.size(work.resolve("big")));
        assertEquals("5368709121\n", root("stat -c %s big"));

        // mmap reads through the share; a POSIX lock held by one process stops another
        assertEquals("a\nb\nc\n", root("fstool mmap log"));
        assertEquals("locked\nbusy\n", root("""
                touch lk; (fstool lock lk 8 &) ; sleep 3; fstool lock lk 0 || true"""));

        // tar x with symlinks and hardlinks, made on the host, unpacked in the guest
        Path src = Files.createDirectory(h.base.resolve("tar-src"));
        Files.writeString(src.resolve("file"), "content");
        Files.createLink(src.resolve("hard"), src.resolve("file"));
        Files.createSymbolicLink(src.resolve("rel"), Path.of("file"));
        Files.createSymbolicLink(src.resolve("abs"), Path.of("/etc/passwd"));
        DistroIT.sh("tar -C " + src + " -cf " + work.resolve("t.tar") + " .");
        root("mkdir x; tar -xf t.tar -C x");
        Path x = work.resolve("x");
        assertEquals(Files.getAttribute(x.resolve("file"), "unix:ino"), Files.getAttribute(x.resolve("hard"), "unix:ino"));
        assertEquals(Path.of("file"), Files.readSymbolicLink(x.resolve("rel")));
        assertEquals(Path.of("/etc/passwd"), Files.readSymbolicLink(x.resolve("abs")));
        // an absolute symlink resolves in the distro (the client follows links), never on the host
        assertTrue(root("cat x/abs").contains("alice"), "the distro's /etc/passwd");

        // modes, owners, sizes and times match what the host shows
        root("touch -d '2001-02-03 04:05:06' x/file; chmod 640 x/file");
        Map<String, Object> a = Files.readAttributes(x.resolve("file"), "unix:mode,uid,gid,size,lastModifiedTime",
                LinkOption.NOFOLLOW_LINKS);
        String guest = root("stat -c '%a %u %g %s %Y' x/file").strip();
        assertEquals(Integer.toOctalString((Integer) a.get("mode") & 07777) + " " + a.get("uid") + " " + a.get("gid") + " "
                + a.get("size") + " " + ((java.nio.file.attribute.FileTime) a.get("lastModifiedTime")).toMillis() / 1000, guest);

        // errno: ENOENT, ENOTEMPTY, ELOOP as the host gives them
        Files.createSymbolicLink(work.resolve("loop1"), Path.of("loop2"));
        Files.createSymbolicLink(work.resolve("loop2"), Path.of("loop1"));
        String errors = ok(h.wsl("", "-u", "root", "--cd", guestWork, "--", "sh", "-c",
                "cat missing 2>&1; rmdir x 2>&1; cat loop1 2>&1; true")).stdout();
        assertTrue(errors.contains("No such file or directory"), errors);
        assertTrue(errors.contains("Directory not empty"), errors);
        assertTrue(errors.contains("Symbolic link loop") || errors.contains("Too many levels"), errors);
    }

    @Test
    @Order(4)
    void largeDirectoriesListCompletely() throws Exception {
        Path big = Files.createDirectory(work.resolve("many"));
        // 100k entries are listed by P9SessionTest at full speed; here each guest stat costs
        // milliseconds of emulated kernel work, so the shell's glob (readdir only) counts them.
        int n = 20_000;
        for (int i = 0; i < n; i++) {
            Files.createFile(big.resolve("entry-" + i));
        }
        assertEquals(n + "\n", root("set -- many/entry-*; echo $#"));
    }

    @Test
    @Order(5)
    void aGuestUserCannotWriteWhatTheModeForbids() throws Exception {
        Files.writeString(work.resolve("roots"), "root's\n");
        Files.setPosixFilePermissions(work.resolve("roots"), java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        WslHarness.Result w = h.wsl("", "--cd", guestWork, "--", "sh", "-c", "echo x >> roots");
        assertTrue(w.exit() != 0 && w.stderr().contains("Permission denied"), w.toString());
        assertEquals("root's\n", Files.readString(work.resolve("roots")));
        ok(h.wsl("", "--cd", guestWork, "--", "sh", "-c", "echo mine > alices"));
        int hostUid = (Integer) Files.getAttribute(h.base, "unix:uid");
        assertEquals(hostUid == 0 ? 1000 : hostUid, Files.getAttribute(work.resolve("alices"), "unix:uid"),
                "a privileged server gives new files to their creator; an unprivileged one keeps the host user's");
        String s = new String(Files.readAllBytes(work.resolve("alices")), StandardCharsets.UTF_8);
        assertEquals("mine\n", s);
    }

    @Test
    @Order(6)
    void sharesOverVsockAsWslServesThem() throws Exception {
        Files.writeString(h.base.resolve("wslconfig"),
                "[wsl2]\nvmIdleTimeout=600000\ndefaultVhdSize=256MB\nshareTransport=vsock\n[shares]\nhost=/\nwork=" + work + "\n");
        ok(h.wsl("", "--shutdown"));
        h.killService(); // the next call starts a service that reads the new configuration
        Files.writeString(work.resolve("over-vsock"), "via hybrid vsock\n");
        assertEquals("via hybrid vsock\n", root("cat /mnt/work/over-vsock"));
        root("echo back > /mnt/work/from-vsock; cmp /mnt/work/from-vsock " + guestWork + "/from-vsock");
        assertEquals("back\n", Files.readString(work.resolve("from-vsock")));
        assertEquals("/mnt/work\n", ok(h.wslIn(work, new byte[0], "--", "pwd")).stdout(),
                "the share with the longest host prefix wins, as in wslpath -u");
    }
}
