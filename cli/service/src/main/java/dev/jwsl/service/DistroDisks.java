package dev.jwsl.service;

import dev.jwsl.protocol.ByteSize;
import dev.jwsl.service.distro.Distro;
import dev.jwsl.service.distro.DistroRegistry;
import dev.jwsl.service.distro.RootfsArchive;
import org.tukaani.xz.LZMA2Options;
import org.tukaani.xz.XZOutputStream;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPOutputStream;

/**
 * The bytes of distro disks: the guest formats, unpacks, packs and resizes them with the tools
 * disk, the host checks and writes the files around them. Policy (names, locks, the registry) is
 * {@link DistroService}'s; this class only moves data.
 */
final class DistroDisks {
    private static final System.Logger LOG = System.getLogger(DistroDisks.class.getName());
    /** GNU tar's --totals line. */
    private static final Pattern TAR_TOTAL = Pattern.compile("Total bytes written: (\\d+)");
    /**
     * $1 target slot, $2 source slot, $3 name, $4 archive bytes, $5 tar's decompression flag,
     * $6 inodes the tree takes, $7 $8 $9 its blocks at 1, 2 and 4 KiB, ${10} tar's xattr and ACL
     * options.
     *
     * <p>After formatting, the tree's needs (the gate's count) are checked against what the new
     * file system has free: exit 4 and "nofit ..." on stdout if it cannot hold it. GNU tar then
     * runs in a mount namespace of its own, chrooted into a tmpfs that holds only the new disk
     * and the tools: it cannot see host shares or the utility VM's files whatever the archive
     * makes it do, and the disk is unmounted when the namespace's last process ends, however it
     * ends. Its messages pass through awk, which keeps the first lines and stops everything at
     * the first "No space left on device" (exit 3): tar itself would go on to the end.
     * A cancel drops the relay session: SIGHUP ends tar, and the scripts, which trap it, clean up.
     */
    private static final String IMPORT_SCRIPT = """
            tools
            t=$(disk "$1") || exit 1
            s=$(disk "$2") || exit 1
            $T/bin/mke2fs -q -F -t ext4 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard \\
              -L "$(echo "$3" | cut -c1-16)" "$t" || die "formatting the new disk failed"
            info=$($T/bin/dumpe2fs -h "$t" 2>/dev/null)
            field() { echo "$info" | sed -n "s/^$1: *//p"; }
            bs=$(field 'Block size') freeb=$(field 'Free blocks') freei=$(field 'Free inodes')
            case $bs in 1024) need=$7 ;; 2048) need=$8 ;; 4096) need=$9 ;; *) die "unexpected block size '$bs'" ;; esac
            if [ "$need" -gt "$freeb" ] || [ "$6" -gt "$freei" ]; then
              echo "nofit $need $freeb $bs $6 $freei"; exit 4
            fi
            r=/run/jwsl/import/$3
            mkdir -p "$r" || die "cannot create $r"
            trap 'cancelled=1' HUP INT TERM
            unshare -m --propagation private sh -c '
              trap "c=1" HUP INT TERM
              set -f
              r=$1 t=$2 s=$3 n=$4 T=$5 z=$6 x=$7
              mount -t tmpfs -o mode=0755,size=1m jwsl-import "$r" && mkdir "$r/target" "$r/tools" "$r/lib64" &&
                mount -t ext4 "$t" "$r/target" && mount --bind "$T" "$r/tools" &&
                ln -s /tools/lib64/ld-linux-x86-64.so.2 "$r/lib64/" || { echo "cannot mount the new disk"; exit 1; }
              head -c "$n" "$s" | PATH=/tools/bin LD_LIBRARY_PATH=/tools/lib chroot "$r" /tools/bin/tar -x -p \\
                --numeric-owner $x -C /target -f - $z
              st=$?
              umount "$r/target" || st=1
              exit $st
            ' jwsl-import "$r" "$t" "$s" "$4" "$T" "$5" "${10}" 2>&1 | awk '
              { n++; if (n <= 40) print }
              /No space left on device/ { full = 1; exit }
              END { if (n > 40) print "(" n - 40 " more lines)"; if (full) exit 3 }' >&2
            st=$?
            rmdir "$r"
            exit $st
            """;
    /** $1 distro slot, $2 scratch slot, $3 name. */
    private static final String EXPORT_SCRIPT = """
            tools
            d=$(disk "$1") || exit 1
            x=$(disk "$2") || exit 1
            m=/run/jwsl/export/$3
            mkdir -p "$m" && mount -t ext4 -o ro "$d" "$m" || die "cannot mount the disk of $3"
            cd "$m" && $T/bin/tar -c -p --xattrs --xattrs-include='*' --acls --numeric-owner --sparse --totals \\
              -f "$x" . 2>/tmp/export.err
            st=$?
            cd /
            umount "$m"; rmdir "$m"; sync
            cat /tmp/export.err >&2
            exit $st
            """;
    /** $1 slot, $2 name, $3 new size in KiB. */
    private static final String RESIZE_SCRIPT = """
            tools
            d=$(disk "$1") || exit 1
            $T/bin/e2fsck -f -p "$d" >&2; [ $? -le 1 ] || die "the file system of $2 has errors: repair it first"
            $T/bin/resize2fs "$d" "$3"K >/dev/null || die "resizing the file system of $2 failed"
            """;

    private final UtilityVm vm;

    DistroDisks(UtilityVm vm) {
        this.vm = vm;
    }

    /** Exit statuses of {@link #IMPORT_SCRIPT}. */
    private static final int EXIT_DISK_FULL = 3, EXIT_NO_FIT = 4;

    /**
     * Formats {@code image} ({@code diskBytes}) as ext4 in the guest and unpacks {@code archive}
     * onto it; {@code cancel} stops the guest's tar.
     *
     * @throws IllegalArgumentException if the tree does not fit the disk, or filled it
     * @throws IOException with the first error tar reported about a member
     */
    void unpack(String name, Path image, Path archive, long archiveBytes, RootfsArchive.Scan scan, long diskBytes,
                JwslService.Progress progress, Cancellation cancel) throws IOException, InterruptedException {
        try (UtilityVm.Hold hold = vm.hold()) {
            String target = vm.attach(image, false, hold.generation(), "import " + name);
            try {
                String source = vm.attach(archive, true, hold.generation(), "import source " + name);
                try {
                    progress.report("unpacking", 0, archiveBytes);
                    // The guest reads the archive from its disk: what it has read is how far it got.
                    Thread watcher = Thread.ofVirtual().start(() -> {
                        try {
                            while (true) {
                                Thread.sleep(200);
                                long done = Math.min(vm.bytesRead(source, hold.generation()), archiveBytes);
                                progress.report("unpacking", done, archiveBytes);
                            }
                        } catch (InterruptedException e) {
                            // the unpack finished
                        }
                    });
                    GuestShell.Result res;
                    try {
                        cancel.check();
                        res = hold.shell().run(IMPORT_SCRIPT, cancel, target, source, name, Long.toString(archiveBytes),
                                scan.compression().tarFlag(), Long.toString(scan.inodes()),
                                Long.toString(scan.blocks(1024)), Long.toString(scan.blocks(2048)),
                                Long.toString(scan.blocks(4096)), scan.metadataFlags());
                    } finally {
                        watcher.interrupt();
                        watcher.join();
                    }
                    cancel.check();
                    if (!res.ok()) {
                        throw unpackFailure(name, diskBytes, scan, res);
                    }
                    progress.report("unpacking", archiveBytes, archiveBytes);
                } finally {
                    vm.detach(source, hold.generation());
                }
            } finally {
                vm.detach(target, hold.generation());
            }
        }
    }

    private static RuntimeException unpackFailure(String name, long diskBytes, RootfsArchive.Scan scan,
                                                  GuestShell.Result res) {
        if (!res.stderr().isBlank()) {
            LOG.log(System.Logger.Level.WARNING, "importing {0} failed (exit {1}); the guest said:\n{2}", name,
                    res.exit(), res.stderr().strip());
        }
        String disk = ByteSize.format(diskBytes);
        if (res.exit() == EXIT_DISK_FULL) {
            return new IllegalArgumentException("the disk of " + name + " (" + disk
                    + ") is full: import it again with a larger --vhd-size");
        }
        Matcher m = NO_FIT.matcher(res.stdout());
        if (res.exit() == EXIT_NO_FIT && m.find()) {
            long need = Long.parseLong(m.group(1)), free = Long.parseLong(m.group(2)), bs = Long.parseLong(m.group(3));
            long inodes = Long.parseLong(m.group(4)), freeInodes = Long.parseLong(m.group(5));
            String what = need > free
                    ? "needs about " + ByteSize.format(need * bs) + " and a disk of " + disk + " has "
                        + ByteSize.format(free * bs) + " free"
                    : "has " + inodes + " files and a disk of " + disk + " holds " + freeInodes;
            return new IllegalArgumentException(name + " does not fit: it " + what + ": import it with a larger --vhd-size");
        }
        return new IllegalStateException("importing " + name + " failed: " + tarError(res));
    }

    /** "nofit NEED FREE BLOCKSIZE INODES FREEINODES" from {@link #IMPORT_SCRIPT}. */
    private static final Pattern NO_FIT = Pattern.compile("nofit (\\d+) (\\d+) (\\d+) (\\d+) (\\d+)");

    /**
     * The line that says what went wrong: GNU tar's first complaint about a member (its last
     * lines only sum up), else the script's last line.
     */
    static String tarError(GuestShell.Result res) {
        for (String line : res.stderr().split("\n")) {
            Matcher m = TAR_LINE.matcher(line.strip());
            if (m.matches() && !m.group(1).startsWith("Exiting with failure status")
                    && !m.group(1).startsWith("Error is not recoverable")) {
                return shorten("tar: " + m.group(1));
            }
        }
        return shorten(res.error());
    }

    /** A GNU tar message, its program name as invoked (a path in the import's chroot) or not. */
    private static final Pattern TAR_LINE = Pattern.compile("(?:\\S*/)?tar: (.*)");

    /** One line of at most 200 characters: a 4 KiB member name is not a message. */
    static String shorten(String line) {
        return line.length() <= 200 ? line : line.substring(0, 120) + "..." + line.substring(line.length() - 60);
    }

    /** Writes {@code d}'s file system as a tar to {@code scratch} in the guest; returns the tar's length. */
    long pack(Distro d, Path scratch) throws IOException, InterruptedException {
        try (UtilityVm.Hold hold = vm.hold()) {
            String disk = vm.attach(d.image(), false, hold.generation(), "export " + d.name());
            try {
                String target = vm.attach(scratch, false, hold.generation(), "export scratch " + d.name());
                try {
                    GuestShell.Result res = hold.shell().run(EXPORT_SCRIPT, disk, target, d.name());
                    Matcher m = TAR_TOTAL.matcher(res.stderr());
                    if (!res.ok() || !m.find()) {
                        throw new IOException("exporting " + d.name() + " failed: " + res.error());
                    }
                    return Long.parseLong(m.group(1));
                } finally {
                    vm.detach(target, hold.generation());
                }
            } finally {
                vm.detach(disk, hold.generation());
            }
        }
    }

    /** Checks {@code d}'s file system and resizes it to {@code bytes} in the guest (the image is sized by the caller). */
    void resizeFileSystem(Distro d, long bytes) throws IOException, InterruptedException {
        try (UtilityVm.Hold hold = vm.hold()) {
            String serial = vm.attach(d.image(), false, hold.generation(), "resize " + d.name());
            try {
                GuestShell.Result res = hold.shell().run(RESIZE_SCRIPT, serial, d.name(), Long.toString(bytes >> 10));
                if (!res.ok()) {
                    throw new IOException(res.error());
                }
            } finally {
                vm.detach(serial, hold.generation());
            }
        }
    }

    /** The ext2/3/4 superblock magic 0xEF53 at byte 1080, and a size the block device can use. */
    static void checkExt4(Path image) throws IOException {
        long size = Files.size(image);
        byte[] magic = new byte[2];
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(magic);
            ch.read(b, 1080);
        }
        if (size < 2048 || (magic[0] & 0xff) != 0x53 || (magic[1] & 0xff) != 0xef) {
            throw new IllegalArgumentException(image + " is not an ext4 image");
        }
        if (size % 512 != 0) {
            throw new IllegalArgumentException(image + " is not a whole number of 512-byte sectors");
        }
    }

    /** Copies the first {@code tarBytes} of {@code scratch} to {@code out}, compressed, crash-safely. */
    static void writeExport(Path scratch, long tarBytes, Path out, String format, JwslService.Progress progress)
            throws IOException {
        Path tmp = out.resolveSibling("." + out.getFileName() + ".partial");
        try {
            try (FileChannel dst = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                try (InputStream in = Channels.newInputStream(FileChannel.open(scratch, StandardOpenOption.READ));
                     OutputStream raw = new BufferedOutputStream(Channels.newOutputStream(dst), 1 << 16);
                     OutputStream z = switch (format) {
                         case "tar.gz" -> new GZIPOutputStream(raw, 1 << 16);
                         case "tar.xz" -> new XZOutputStream(raw, new LZMA2Options(6));
                         default -> raw;
                     }) {
                    byte[] buf = new byte[1 << 16];
                    long left = tarBytes;
                    while (left > 0) {
                        int n = in.read(buf, 0, (int) Math.min(buf.length, left));
                        if (n < 0) {
                            throw new IOException("the export was cut short");
                        }
                        z.write(buf, 0, n);
                        left -= n;
                        progress.report("writing", tarBytes - left, tarBytes);
                    }
                    z.flush();
                    if (z instanceof GZIPOutputStream g) {
                        g.finish();
                    } else if (z instanceof XZOutputStream x) {
                        x.finish();
                    }
                    raw.flush();
                    dst.force(true);
                }
            }
            Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            DistroRegistry.fsyncDirectory(out.getParent());
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Bytes the (sparse) image occupies on the host: an upper bound of what its file system holds. */
    static long allocatedBytes(Path image) throws IOException {
        try {
            Process p = new ProcessBuilder("stat", "-c", "%b %B", image.toString()).redirectErrorStream(true).start();
            String[] out = new String(p.getInputStream().readAllBytes()).strip().split(" ");
            if (p.waitFor() == 0 && out.length == 2) {
                return Long.parseLong(out[0]) * Long.parseLong(out[1]);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (NumberFormatException ignored) {
            // fall back to the apparent size
        }
        return Files.size(image);
    }
}
