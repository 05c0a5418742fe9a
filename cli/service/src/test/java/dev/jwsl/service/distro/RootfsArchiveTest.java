package dev.jwsl.service.distro;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The host-side gate in front of the guest's tar: archives built here, byte by byte. */
public class RootfsArchiveTest {
    @TempDir
    Path dir;

    /** A ustar header for {@code name} (type {@code type}, {@code size} data bytes, link target). */
    public static byte[] header(String name, char type, long size, String link) {
        byte[] h = new byte[512];
        put(h, 0, name);
        put(h, 100, "0000644");
        put(h, 108, "0000000");
        put(h, 116, "0000000");
        put(h, 124, String.format("%011o", size));
        put(h, 136, "00000000000");
        h[156] = (byte) type;
        put(h, 157, link);
        put(h, 257, "ustar");
        h[262] = 0;
        put(h, 263, "00");
        Arrays.fill(h, 148, 156, (byte) ' ');
        long sum = 0;
        for (byte b : h) {
            sum += b & 0xff;
        }
        put(h, 148, String.format("%06o", sum));
        h[154] = 0;
        return h;
    }

    private static void put(byte[] h, int off, String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        System.arraycopy(b, 0, h, off, b.length);
    }

    /** Members: name, type, content (or link target for links). */
    public static byte[] tar(String... members) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < members.length; i += 3) {
            char type = members[i + 1].charAt(0);
            boolean link = type == '1' || type == '2';
            byte[] data = link ? new byte[0] : members[i + 2].getBytes(StandardCharsets.UTF_8);
            out.write(header(members[i], type, data.length, link ? members[i + 2] : ""));
            out.write(data);
            out.write(new byte[(512 - data.length % 512) % 512]);
        }
        out.write(new byte[1024]);
        return out.toByteArray();
    }

    private Path file(String name, byte[] content) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, content);
        return p;
    }

    private static byte[] gzip(byte[] b) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream z = new GZIPOutputStream(out)) {
            z.write(b);
        }
        return out.toByteArray();
    }

    private static byte[] xz(byte[] b) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (OutputStream z = new XZOutputStream(out, new LZMA2Options(1))) {
            z.write(b);
        }
        return out.toByteArray();
    }

    private static final String[] GOOD = {"./", "5", "", "./etc/", "5", "", "./etc/passwd", "0", "root:x:0:0\n",
            "./bin", "2", "usr/bin", "./etc/hosts", "1", "etc/passwd", "./lib", "2", "/usr/lib"};

    @Test
    void plainGzipAndXzAreRecognisedAndCounted() throws IOException {
        byte[] t = tar(GOOD);
        for (var c : new Object[][] {{"a.tar", t, RootfsArchive.Compression.NONE},
                {"a.tgz", gzip(t), RootfsArchive.Compression.GZIP}, {"a.txz", xz(t), RootfsArchive.Compression.XZ}}) {
            Path p = file((String) c[0], (byte[]) c[1]);
            long[] progress = {0};
            RootfsArchive.Scan s = RootfsArchive.scan(p, n -> progress[0] = n);
            assertEquals(c[2], s.compression());
            assertEquals(6, s.entries());
            assertEquals(11, s.contentBytes());
            assertEquals(Files.size(p), progress[0]);
        }
    }

    @Test
    void unsafePathsAreRefused() throws IOException {
        assertMessage("absolute path", tar("/etc/passwd", "0", "x"));
        assertMessage("'..'", tar("etc/../../x", "0", "x"));
        assertMessage("'..'", tar("a", "1", "../../etc/shadow"));
        assertMessage("goes through the symlink 'up'", tar("up", "2", "/", "up/etc/passwd", "0", "x"));
        assertMessage("goes through the symlink 'a/up'", tar("a/up", "2", "../..", "./a/up/x/y", "0", "x"));
    }

    /** Issue 17: a hard link to a symlink is that symlink, and a member under it goes where the link points. */
    @Test
    void aHardLinkToASymlinkIsASymlink() throws IOException {
        assertMessage("member 'b/tmp/evil' goes through the symlink 'b'",
                tar("a", "2", "/", "b", "1", "a", "b/tmp/evil", "0", "x"));
        assertMessage("member 'c/x' goes through the symlink 'c'",
                tar("a", "2", "/", "b", "1", "a", "c", "1", "b", "c/x", "0", "x"));
        // a member that replaces a symlink does not make the path safe: tar may keep a directory symlink
        assertMessage("member 'a/x' goes through the symlink 'a'", tar("a", "2", "/", "a", "5", "", "a/x", "0", "x"));
    }

    /** Issue 17: an error about a hard link names the member, not only its target. */
    @Test
    void hardLinkErrorsNameTheMember() throws IOException {
        assertMessage("hard link 'h' to 'up/etc/passwd' goes through the symlink 'up'",
                tar("up", "2", "/", "h", "1", "up/etc/passwd"));
        assertMessage("hard link 'h' to '../x' reaches outside the root with '..'", tar("h", "1", "../x"));
    }

    /** Issue 17: tar is asked for xattrs and ACLs only when the archive has some (each costs a system call per file). */
    @Test
    void xattrAndAclOptionsOnlyWhenTheArchiveHasThem() throws IOException {
        assertEquals("", RootfsArchive.scan(file("plain.tar", tar(GOOD)), n -> { }).metadataFlags());
        assertEquals("--xattrs --xattrs-include=*", scanWithPax("29 SCHILY.xattr.user.a=value\n").metadataFlags());
        assertEquals("--acls", scanWithPax("31 SCHILY.acl.access=user::rw-\n").metadataFlags());
    }

    private RootfsArchive.Scan scanWithPax(String record) throws IOException {
        byte[] pax = record.getBytes(StandardCharsets.UTF_8);
        assertEquals(Integer.parseInt(record.substring(0, record.indexOf(' '))), pax.length);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(header("PaxHeaders/f", 'x', pax.length, ""));
        out.write(Arrays.copyOf(pax, 512));
        out.write(header("f", '0', 0, ""));
        out.write(new byte[1024]);
        return RootfsArchive.scan(file("pax" + System.nanoTime() + ".tar", out.toByteArray()), n -> { });
    }

    /** Issue 17: the gate counts what the unpacked tree needs, for the fit check before the guest fills a disk. */
    @Test
    void theSpaceATreeNeedsIsCounted() throws IOException {
        RootfsArchive.Scan s = RootfsArchive.scan(file("n.tar", tar("d/", "5", "", "d/a", "0", "x".repeat(5000),
                "d/b", "0", "", "d/l", "2", "t".repeat(80), "d/s", "2", "short", "d/h", "1", "d/a")), n -> { });
        assertEquals(6, s.entries());
        assertEquals(5, s.inodes(), "a hard link takes no inode");
        // 4 KiB blocks: d (1) + a (2) + b (0) + l (1: too long to live in the inode) + s (0)
        assertEquals(4L, s.blocks(4096));
        // 1 KiB blocks: d (1) + a (5) + l (1)
        assertEquals(7L, s.blocks(1024));
    }

    @Test
    void truncatedCorruptAndForeignFilesAreRefused() throws IOException {
        byte[] t = tar(GOOD);
        assertMessage("truncated", Arrays.copyOf(t, 1024));
        byte[] gz = gzip(t);
        assertMessage("truncated", Arrays.copyOf(gz, gz.length - 10));
        byte[] bad = t.clone();
        bad[512 + 10] ^= 1; // second header's name: checksum no longer matches
        assertMessage("corrupt tar header", bad);
        byte[] badGz = gz.clone();
        badGz[badGz.length - 6] ^= 0x55; // gzip CRC
        assertMessage("corrupt", badGz);
        assertMessage("not a tar", new byte[4096]);
        assertMessage("empty", new byte[0]);
        assertMessage("bzip2", "BZh91AY&SY".getBytes(StandardCharsets.US_ASCII));
    }

    private void assertMessage(String expected, byte[] content) throws IOException {
        Path p = file("x" + System.nanoTime(), content);
        ArchiveException e = assertThrows(ArchiveException.class, () -> RootfsArchive.scan(p, n -> { }));
        assertTrue(e.getMessage().contains(expected), "expected '" + expected + "' in: " + e.getMessage());
    }

    @Test
    void paxAndGnuLongNamesAreFollowed() throws IOException {
        String longName = "d/" + "x".repeat(150);
        byte[] pax = ("30 path=" + "/abs/" + "y".repeat(16) + "\n").getBytes(StandardCharsets.UTF_8);
        assertEquals(30, pax.length);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(header("././@LongLink", 'L', longName.length() + 1, ""));
        out.write(Arrays.copyOf(longName.getBytes(StandardCharsets.UTF_8), 512));
        out.write(header("short", '0', 0, ""));
        out.write(header("PaxHeaders/x", 'x', pax.length, ""));
        out.write(Arrays.copyOf(pax, 512));
        out.write(header("innocent", '0', 0, ""));
        out.write(new byte[1024]);
        assertMessage("'/abs/yyyyyyyyyyyyyyyy' has an absolute path", out.toByteArray());
    }
}
