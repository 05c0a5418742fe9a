package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.jwsl.hypervisor.p9.P9SessionTest.O_CREAT;
import static dev.jwsl.hypervisor.p9.P9SessionTest.O_DIRECTORY;
import static dev.jwsl.hypervisor.p9.P9SessionTest.RDONLY;
import static dev.jwsl.hypervisor.p9.P9SessionTest.RDWR;
import static dev.jwsl.hypervisor.p9.P9SessionTest.errno;
import static org.junit.jupiter.api.Assertions.*;

/** What 9P2000.L and Linux say a request answers, where the server answered otherwise (issue 16, finding 14). */
class P9ProtocolTest {
    static final int ROOT = 1;
    /** "café" in Latin-1 and a name with a byte that no UTF-8 has. */
    static final byte[] LATIN1 = {'c', 'a', 'f', (byte) 0xe9}, INVALID = {'x', (byte) 0xff};

    @TempDir
    Path dir;
    Path share;
    Served served;
    P9Client c;

    @BeforeEach
    void start() throws IOException {
        share = Files.createDirectory(dir.resolve("share"));
        served = Served.attached(share);
        c = served.client();
    }

    @AfterEach
    void stop() throws IOException {
        served.close();
    }

    @Test
    void readlinkOfAFileIsEinval() throws IOException {
        Files.writeString(share.resolve("f"), "x");
        c.walk(ROOT, 2, "f");
        assertEquals(Errno.EINVAL, errno(() -> c.readlink(2)));
        assertEquals(Errno.EINVAL, errno(() -> c.readlink(ROOT)));
    }

    @Test
    void readOfADirectoryIsEisdir() {
        c.walk(ROOT, 2);
        c.lopen(2, RDONLY | O_DIRECTORY);
        assertEquals(Errno.EISDIR, errno(() -> c.read(2, 0, 100)));
    }

    /** Found against diod: a second Tlopen of a directory fid answered the open's EISDIR, not "already open". */
    @Test
    void aSecondOpenIsEinvalWhateverItsFlags() {
        c.walk(ROOT, 2);
        c.lopen(2, RDONLY);
        assertEquals(Errno.EINVAL, errno(() -> c.lopen(2, RDWR)));
    }

    @Test
    void exclusiveCreateOfAnExistingFileIsEexist() throws IOException {
        Files.writeString(share.resolve("there"), "kept");
        assertEquals(Errno.EEXIST, errno(() -> c.lcreate(ROOT, "there", RDWR | O_CREAT | P9SessionTest.O_EXCL, 0644)));
    }

    /** Linux names are bytes: a name that is not UTF-8 is listed, walked, made, renamed and removed as it is. */
    @Test
    void namesThatAreNotUtf8StayBytes() throws Exception {
        assertEquals(0, sh("printf x > \"$(printf 'caf\\351')\""));
        c.walk(ROOT, 2);
        c.lopen(2, RDONLY | O_DIRECTORY);
        List<byte[]> names = c.readdirAll(2, 8192).stream().map(P9Client.Entry::rawName).toList();
        assertTrue(names.stream().anyMatch(n -> Arrays.equals(n, LATIN1)), "listed as its bytes");

        assertEquals(1, walk(ROOT, 3, LATIN1).size(), "walked by its bytes");
        c.lopen(3, RDONLY);
        assertEquals("x", new String(c.read(3, 0, 10)));

        c.walk(ROOT, 4);
        c.send(c.request(P9Constants.TLCREATE).u32(4).str(INVALID).u32(RDWR | O_CREAT).u32(0644).u32(-1));
        assertEquals(0, sh("test -f \"$(printf 'x\\377')\""), "made with exactly those bytes");
        c.send(c.request(P9Constants.TMKDIR).u32(ROOT).str(new byte[] {'d', (byte) 0x80}).u32(0755).u32(-1));
        assertEquals(0, sh("test -d \"$(printf 'd\\200')\""));
        c.send(c.request(P9Constants.TSYMLINK).u32(ROOT).str("l").str(INVALID).u32(-1));
        assertEquals(0, sh("test \"$(readlink l)\" = \"$(printf 'x\\377')\""), "a symlink's target is bytes too");
        c.walk(ROOT, 5, "l");
        assertArrayEquals(INVALID, readlink(5));
        c.send(c.request(P9Constants.TRENAMEAT).u32(ROOT).str(INVALID).u32(ROOT).str(LATIN1));
        assertEquals(0, sh("test ! -e \"$(printf 'x\\377')\" && test -f \"$(printf 'caf\\351')\""));
        c.send(c.request(P9Constants.TUNLINKAT).u32(ROOT).str(LATIN1).u32(0));
        assertEquals(0, sh("test ! -e \"$(printf 'caf\\351')\""));
        // ".." spelled in bytes is still "..", and a name that only decodes to "/" is one byte, not a path
        assertEquals(Errno.EINVAL, errno(() -> c.send(c.request(P9Constants.TMKDIR).u32(ROOT).str(new byte[] {'.', '.'}).u32(0755).u32(-1))));
        assertEquals(Errno.EINVAL, errno(() -> c.send(c.request(P9Constants.TMKDIR).u32(ROOT).str(new byte[] {'a', '/', 'b'}).u32(0755).u32(-1))));
    }

    /** msize is unsigned: 2^31 and more is a large msize (clamped to the server's), not a negative one. */
    @Test
    void anMsizeOf2To31IsLarge() {
        assertEquals(P9Server.MAX_MSIZE, c.version(0x8000_0000));
        assertEquals(P9Server.MAX_MSIZE, c.version(-1));
        c.attach(ROOT, "", 0);
    }

    @Test
    void nothingIsServedBeforeTversion() {
        try (P9Session fresh = served.server().open()) {
            P9Client k = new P9Client(P9Client.direct(fresh, 1 << 16));
            assertEquals(Errno.EPROTO, errno(() -> k.attach(ROOT, "", 0)));
            assertEquals(Errno.EPROTO, errno(() -> k.walk(ROOT, 2)));
            assertEquals(0, fresh.fidCount());
            k.version(8192);
            k.attach(ROOT, "", 0);
        }
    }

    /** version(5): a version the server does not speak is answered "unknown", and the session stays closed. */
    @Test
    void anUnknownVersionLeavesTheSessionUnusable() {
        ByteBuffer r = c.send(c.request(P9Constants.TVERSION).u32(8192).str("9P2000"));
        r.getInt();
        byte[] v = new byte[r.getShort()];
        r.get(v);
        assertEquals("unknown", new String(v));
        assertEquals(Errno.EPROTO, errno(() -> c.attach(ROOT, "", 0)));
    }

    /** A message larger than the msize the client agreed to is refused, whatever its type. */
    @Test
    void aWriteLargerThanMsizeIsRefused() throws IOException {
        c.version(8192);
        c.attach(ROOT, "", 0);
        c.walk(ROOT, 2);
        c.lcreate(2, "f", RDWR | O_CREAT, 0644);
        assertEquals(Errno.EMSGSIZE, errno(() -> c.write(2, 0, new byte[100_000])));
        assertEquals(0, Files.size(share.resolve("f")));
        assertEquals(8000, c.write(2, 0, new byte[8000]), "a write that fits is taken");
        assertEquals(8000, Files.size(share.resolve("f")));
    }

    private List<Long> walk(int fid, int newfid, byte[] name) {
        ByteBuffer b = c.send(c.request(P9Constants.TWALK).u32(fid).u32(newfid).u16(1).str(name));
        int n = b.getShort();
        List<Long> qids = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            b.get();
            b.getInt();
            qids.add(b.getLong());
        }
        return qids;
    }

    private byte[] readlink(int fid) {
        ByteBuffer b = c.send(c.request(P9Constants.TREADLINK).u32(fid));
        byte[] v = new byte[b.getShort()];
        b.get(v);
        return v;
    }

    private int sh(String script) throws Exception {
        return new ProcessBuilder("sh", "-c", script).directory(share.toFile()).inheritIO().start().waitFor();
    }
}
