package dev.jwsl.service.distro;

import org.tukaani.xz.XZInputStream;

import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.function.LongConsumer;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * A rootfs tarball to import, checked on the host before any disk is made: the compression is
 * recognised by its magic bytes (not the file name), the whole stream is decompressed and every
 * tar header parsed (ustar, GNU long names, pax), so that a truncated or corrupt file, an absolute
 * or {@code ..} path, or a member that reaches through a symlink of the same archive is a one-line
 * error before the guest unpacks anything. The guest's GNU tar does the unpacking (owners, modes,
 * xattrs, ACLs, links, device nodes); this scan is the gate in front of it.
 */
public final class RootfsArchive {
    private static final int BLOCK = 512;

    /** How the tar stream is compressed; {@link #tarFlag()} is GNU tar's filter option. */
    public enum Compression {
        NONE(""), GZIP("-z"), XZ("-J");

        private final String tarFlag;

        Compression(String tarFlag) {
            this.tarFlag = tarFlag;
        }

        public String tarFlag() {
            return tarFlag;
        }
    }

    /**
     * What the scan found.
     *
     * @param compression   the stream's compression
     * @param entries       tar members (headers for long names and pax data not counted)
     * @param tarBytes      bytes of the uncompressed tar stream up to its end-of-archive marker
     * @param contentBytes  file data in it
     * @param inodes        inodes the unpacked tree takes (members other than hard links)
     * @param space         what the tree needs in file-system blocks, per block size
     */
    public record Scan(Compression compression, long entries, long tarBytes, long contentBytes, long inodes,
                       Space space) {
        /** An upper estimate of the blocks of size {@code blockSize} the unpacked tree takes. */
        public long blocks(int blockSize) {
            return space.blocks(blockSize);
        }

        /**
         * GNU tar's options for what the archive carries besides owners and modes: extended
         * attributes (file capabilities among them) and POSIX ACLs, each only if a member has
         * some. With --acls tar sets an ACL on every file, one more system call per member, which
         * an archive of small files pays for dearly where guest kernel work is emulated.
         */
        public String metadataFlags() {
            return ((space.xattrs ? "--xattrs --xattrs-include=* " : "") + (space.acls ? "--acls" : "")).strip();
        }
    }

    /**
     * The blocks an ext4 file system needs for the tree, counted while reading so that nothing
     * per member is kept: each file's data rounded up to whole blocks, a block for each symlink
     * too long for its inode, and for directories one block each plus all their entries
     * together (a directory's blocks are at most 1 + its entries' bytes / block size).
     */
    public static final class Space {
        private static final int[] SIZES = {1024, 2048, 4096};
        /** ext4 keeps a symlink target shorter than this in the inode itself. */
        private static final int FAST_SYMLINK = 60;
        private final long[] fileBlocks = new long[SIZES.length];
        private long longSymlinks;
        private long dirs;
        private long direntBytes;
        private boolean xattrs;
        private boolean acls;

        void file(long size) {
            for (int i = 0; i < SIZES.length; i++) {
                fileBlocks[i] += (size + SIZES[i] - 1) / SIZES[i];
            }
        }

        void symlink(int targetBytes) {
            if (targetBytes >= FAST_SYMLINK) {
                longSymlinks++;
            }
        }

        void directory() {
            dirs++;
        }

        /** An entry named {@code nameBytes} in its parent: ext4_dir_entry_2 is 8 bytes and the name, 4-aligned. */
        void entry(int nameBytes) {
            direntBytes += (8 + nameBytes + 3) & ~3;
        }

        long blocks(int blockSize) {
            for (int i = 0; i < SIZES.length; i++) {
                if (SIZES[i] == blockSize) {
                    return fileBlocks[i] + longSymlinks + dirs + direntBytes / blockSize;
                }
            }
            throw new IllegalArgumentException("block size " + blockSize);
        }
    }

    /**
     * Symlink paths the gate remembers to check later members against. A real root file system
     * has thousands; this bounds the service heap a hostile archive can take.
     */
    static final int MAX_SYMLINKS = 1_000_000;

    private RootfsArchive() {}

    /** Recognises the compression from the first bytes of {@code file}. */
    public static Compression detect(Path file) throws IOException {
        byte[] magic = new byte[BLOCK];
        int n;
        try (InputStream in = Files.newInputStream(file)) {
            n = in.readNBytes(magic, 0, magic.length);
        }
        if (n >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b) {
            return Compression.GZIP;
        }
        if (n >= 6 && (magic[0] & 0xff) == 0xfd && magic[1] == '7' && magic[2] == 'z' && magic[3] == 'X'
                && magic[4] == 'Z' && magic[5] == 0) {
            return Compression.XZ;
        }
        if (n >= 3 && magic[0] == 'B' && magic[1] == 'Z' && magic[2] == 'h') {
            throw new ArchiveException("bzip2 tarballs are not supported: use tar, tar.gz or tar.xz");
        }
        if (n >= 4 && (magic[0] & 0xff) == 0x28 && (magic[1] & 0xff) == 0xb5 && (magic[2] & 0xff) == 0x2f
                && (magic[3] & 0xff) == 0xfd) {
            throw new ArchiveException("zstd tarballs are not supported: use tar, tar.gz or tar.xz");
        }
        if (n == 0) {
            throw new ArchiveException("the file is empty");
        }
        if (n < BLOCK || !checksumOk(magic)) {
            throw new ArchiveException("not a tar, tar.gz or tar.xz file");
        }
        return Compression.NONE;
    }

    /** Decompressing view of {@code file}. */
    public static InputStream open(Path file, Compression c) throws IOException {
        InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
        return switch (c) {
            case NONE -> raw;
            case GZIP -> new GZIPInputStream(raw, 1 << 16);
            case XZ -> new XZInputStream(raw);
        };
    }

    /**
     * Reads all of {@code file}, checking it as described above; {@code progress} gets the
     * compressed bytes consumed so far (for a progress bar).
     *
     * @throws ArchiveException with a one-line reason if the archive cannot be imported as is
     */
    public static Scan scan(Path file, LongConsumer progress) throws IOException {
        Compression c = detect(file);
        try (CountingInputStream counted = new CountingInputStream(Files.newInputStream(file), progress);
             InputStream in = switch (c) {
                 case NONE -> new BufferedInputStream(counted, 1 << 16);
                 case GZIP -> new GZIPInputStream(new BufferedInputStream(counted, 1 << 16), 1 << 16);
                 case XZ -> new XZInputStream(new BufferedInputStream(counted, 1 << 16));
             }) {
            Scan s = scanTar(in, c);
            // gzip and xz verify their checksums at the end of the stream: read it to the end.
            byte[] rest = new byte[1 << 16];
            while (in.read(rest) >= 0) {
                // trailing zero blocks or padding after the end-of-archive marker
            }
            return s;
        } catch (ZipException e) {
            throw new ArchiveException("corrupt compressed data: " + e.getMessage());
        } catch (EOFException e) {
            throw new ArchiveException("the archive is truncated");
        } catch (org.tukaani.xz.XZIOException e) {
            throw new ArchiveException("corrupt xz data: " + e.getMessage());
        }
    }

    static Scan scanTar(InputStream in, Compression c) throws IOException {
        byte[] h = new byte[BLOCK];
        Set<String> symlinks = new HashSet<>();
        Space space = new Space();
        String longName = null, longLink = null, paxPath = null, paxLink = null;
        long paxSize = -1;
        long entries = 0, inodes = 0, offset = 0, content = 0;
        while (true) {
            if (in.readNBytes(h, 0, BLOCK) != BLOCK) {
                throw new ArchiveException(offset == 0 ? "not a tar archive (empty)" : "the archive is truncated");
            }
            offset += BLOCK;
            if (allZero(h)) {
                return new Scan(c, entries, offset + BLOCK, content, inodes, space); // the second zero block may be absent
            }
            if (!checksumOk(h)) {
                throw new ArchiveException("corrupt tar header at byte " + (offset - BLOCK));
            }
            char type = (char) h[156];
            long size = paxSize >= 0 && type != 'x' && type != 'g' ? paxSize : size(h, offset - BLOCK);
            switch (type) {
                case 'L', 'K', 'x', 'g' -> {
                    if (size > 1 << 20) {
                        throw new ArchiveException("tar extension header of " + size + " bytes at byte " + (offset - BLOCK));
                    }
                    byte[] data = readData(in, (int) size);
                    offset += padded(size);
                    switch (type) {
                        case 'L' -> longName = cString(data, 0, data.length);
                        case 'K' -> longLink = cString(data, 0, data.length);
                        case 'x' -> {
                            for (var kv : Pax.parse(data, offset).entrySet()) {
                                switch (kv.getKey()) {
                                    case "path" -> paxPath = kv.getValue();
                                    case String k when k.startsWith("SCHILY.xattr.") -> space.xattrs = true;
                                    case String k when k.startsWith("SCHILY.acl.") -> space.acls = true;
                                    case "linkpath" -> paxLink = kv.getValue();
                                    case "size" -> paxSize = parseLong(kv.getValue(), offset);
                                    default -> { }
                                }
                            }
                        }
                        default -> { } // global pax header: nothing path-related applies to all members
                    }
                    continue;
                }
                default -> { }
            }
            String name = paxPath != null ? paxPath : longName != null ? longName : ustarName(h);
            String link = paxLink != null ? paxLink : longLink != null ? longLink : cString(h, 157, 100);
            longName = longLink = paxPath = paxLink = null;
            paxSize = -1;
            String path = checkPath(name);
            checkNotThroughSymlink("member", path, path, symlinks);
            switch (type) {
                case '2' -> remember(path, symlinks);
                case '1' -> {
                    String target = checkPath("hard link " + printable(path) + " to", link);
                    checkNotThroughSymlink("hard link " + printable(path) + " to", link, target, symlinks);
                    if (symlinks.contains(target)) {
                        remember(path, symlinks); // a hard link to a symlink is one more name of that symlink
                    }
                }
                default -> { }
            }
            entries++;
            // Links, directories, devices and fifos carry no data whatever the size field says.
            long data = switch (type) {
                case '1', '2', '3', '4', '5', '6' -> 0;
                default -> size;
            };
            if (!path.isEmpty()) { // the root directory is the file system's own
                space.entry(path.length() - path.lastIndexOf('/') - 1);
                switch (type) {
                    case '1' -> { }
                    case '2' -> space.symlink(link.length());
                    case '5' -> space.directory();
                    default -> space.file(data);
                }
                if (type != '1') {
                    inodes++;
                }
            }
            skipFully(in, padded(data));
            offset += padded(data);
            content += data;
        }
    }

    /** Normalises a member path ("./a/b/" → "a/b") and rejects absolute paths and ".." components. */
    static String checkPath(String name) {
        return checkPath("member", name);
    }

    /** {@link #checkPath(String)}; errors start with {@code what} and the name. */
    private static String checkPath(String what, String name) {
        if (name.isEmpty()) {
            throw new ArchiveException(what.equals("member") ? "a member has an empty name" : what + " an empty name");
        }
        if (name.startsWith("/")) {
            throw new ArchiveException(what + " " + printable(name) + " has an absolute path");
        }
        StringBuilder out = new StringBuilder();
        for (String part : name.split("/")) {
            if (part.isEmpty() || part.equals(".")) {
                continue;
            }
            if (part.equals("..")) {
                throw new ArchiveException(what + " " + printable(name) + " reaches outside the root with '..'");
            }
            if (!out.isEmpty()) {
                out.append('/');
            }
            out.append(part);
        }
        return out.toString();
    }

    /**
     * A member under a symlink of this archive would be written wherever the link points.
     * Errors say {@code what} and {@code shown} (as the archive names it).
     */
    private static void checkNotThroughSymlink(String what, String shown, String path, Set<String> symlinks) {
        for (int i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
            String parent = path.substring(0, i);
            if (symlinks.contains(parent)) {
                throw new ArchiveException(what + " " + printable(shown) + " goes through the symlink " + printable(parent));
            }
        }
    }

    private static void remember(String symlink, Set<String> symlinks) {
        if (symlinks.size() >= MAX_SYMLINKS) {
            throw new ArchiveException("the archive has more than " + MAX_SYMLINKS + " symbolic links");
        }
        symlinks.add(symlink);
    }

    /** A name for a one-line message: as UTF-8 if it is, control characters as '?', at most 100 characters. */
    static String printable(String bytes) {
        String s = new String(bytes.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8);
        String t = s.length() > 100 ? s.substring(0, 60) + "..." + s.substring(s.length() - 30) : s;
        return "'" + t.replaceAll("\\p{Cntrl}", "?") + "'";
    }

    private static String ustarName(byte[] h) {
        String name = cString(h, 0, 100);
        boolean ustar = h[257] == 'u' && h[258] == 's' && h[259] == 't' && h[260] == 'a' && h[261] == 'r';
        String prefix = ustar && h[262] == 0 ? cString(h, 345, 155) : ""; // POSIX ustar, not GNU's old format
        return prefix.isEmpty() ? name : prefix + "/" + name;
    }

    private static long size(byte[] h, long at) {
        if ((h[124] & 0x80) != 0) { // GNU base-256 for sizes of 8 GiB and more
            long v = 0;
            for (int i = 125; i < 136; i++) {
                if (v > (Long.MAX_VALUE >> 8)) {
                    throw new ArchiveException("member size overflows at byte " + at);
                }
                v = (v << 8) | (h[i] & 0xff);
            }
            return v;
        }
        return octal(h, 124, 12, at);
    }

    private static long octal(byte[] h, int off, int len, long at) {
        long v = 0;
        int i = off;
        while (i < off + len && h[i] == ' ') {
            i++;
        }
        for (; i < off + len && h[i] >= '0' && h[i] <= '7'; i++) {
            v = v * 8 + (h[i] - '0');
        }
        if (i < off + len && h[i] != 0 && h[i] != ' ') {
            throw new ArchiveException("corrupt tar header at byte " + at);
        }
        return v;
    }

    static boolean checksumOk(byte[] h) {
        long stored;
        try {
            stored = octal(h, 148, 8, 0);
        } catch (ArchiveException e) {
            return false;
        }
        long unsigned = 0;
        for (int i = 0; i < BLOCK; i++) {
            unsigned += (i >= 148 && i < 156) ? ' ' : (h[i] & 0xff);
        }
        return stored == unsigned;
    }

    private static boolean allZero(byte[] b) {
        for (byte x : b) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }

    private static long padded(long n) {
        return (n + BLOCK - 1) / BLOCK * BLOCK;
    }

    private static byte[] readData(InputStream in, int size) throws IOException {
        byte[] data = in.readNBytes(size);
        if (data.length != size) {
            throw new ArchiveException("the archive is truncated");
        }
        skipFully(in, padded(size) - size);
        return data;
    }

    private static void skipFully(InputStream in, long n) throws IOException {
        byte[] buf = new byte[(int) Math.min(n, 1 << 16)];
        while (n > 0) {
            int r = in.read(buf, 0, (int) Math.min(buf.length, n));
            if (r < 0) {
                throw new ArchiveException("the archive is truncated");
            }
            n -= r;
        }
    }

    private static String cString(byte[] b, int off, int len) {
        int end = off;
        while (end < off + len && b[end] != 0) {
            end++;
        }
        return new String(b, off, end - off, StandardCharsets.ISO_8859_1); // a byte per char: names are bytes
    }

    private static long parseLong(String v, long at) {
        try {
            long n = Long.parseLong(v.strip());
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // below
        }
        throw new ArchiveException("corrupt pax header before byte " + at);
    }

    /** pax extended header records: "LEN key=value\n" (POSIX.1-2001 pax format). */
    static final class Pax {
        static java.util.Map<String, String> parse(byte[] data, long at) {
            java.util.Map<String, String> out = new java.util.HashMap<>();
            int i = 0;
            while (i < data.length) {
                int sp = i;
                while (sp < data.length && data[sp] >= '0' && data[sp] <= '9') {
                    sp++;
                }
                if (sp == i || sp >= data.length || data[sp] != ' ') {
                    throw new ArchiveException("corrupt pax header before byte " + at);
                }
                int len = Integer.parseInt(new String(data, i, sp - i, StandardCharsets.US_ASCII));
                if (len <= sp - i + 1 || i + len > data.length || data[i + len - 1] != '\n') {
                    throw new ArchiveException("corrupt pax header before byte " + at);
                }
                // values as bytes, as the ustar fields: paths from both must compare equal byte for byte
                String rec = new String(data, sp + 1, i + len - sp - 2, StandardCharsets.ISO_8859_1);
                int eq = rec.indexOf('=');
                if (eq <= 0) {
                    throw new ArchiveException("corrupt pax header before byte " + at);
                }
                out.put(rec.substring(0, eq), rec.substring(eq + 1));
                i += len;
            }
            return out;
        }
    }

    /** Counts the bytes read from the underlying file, for progress. */
    private static final class CountingInputStream extends java.io.FilterInputStream {
        private final LongConsumer progress;
        private long count;

        CountingInputStream(InputStream in, LongConsumer progress) {
            super(in);
            this.progress = progress;
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) {
                progress.accept(++count);
            }
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = super.read(b, off, len);
            if (n > 0) {
                count += n;
                progress.accept(count);
            }
            return n;
        }
    }
}
