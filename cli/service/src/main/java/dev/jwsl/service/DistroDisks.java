package dev.jwsl.service;

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
    /** GNU tar's --totals line. */
    private static final Pattern TAR_TOTAL = Pattern.compile("Total bytes written: (\\d+)");
    /** $1 target slot, $2 source slot, $3 name, $4 archive bytes, $5 tar's decompression flag. */
    private static final String IMPORT_SCRIPT = """
            tools
            t=$(disk "$1") || exit 1
            s=$(disk "$2") || exit 1
            $T/bin/mke2fs -q -F -t ext4 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard \\
              -L "$(echo "$3" | cut -c1-16)" "$t" || die "formatting the new disk failed"
            m=/run/jwsl/import/$3
            mkdir -p "$m" && mount -t ext4 "$t" "$m" || die "cannot mount the new disk"
            head -c "$4" "$s" | $T/bin/tar -x -p --xattrs --xattrs-include='*' --acls --numeric-owner -C "$m" -f - $5
            st=$?
            umount "$m" || st=1
            rmdir "$m"
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

    /** Formats {@code image} as ext4 in the guest and unpacks {@code archive} onto it. */
    void unpack(String name, Path image, Path archive, long archiveBytes, RootfsArchive.Scan scan,
                        JwslService.Progress progress) throws IOException, InterruptedException {
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
                        res = hold.shell().run(IMPORT_SCRIPT, target, source, name, Long.toString(archiveBytes),
                                scan.compression().tarFlag());
                    } finally {
                        watcher.interrupt();
                        watcher.join();
                    }
                    if (!res.ok()) {
                        throw new IOException("importing " + name + " failed: " + res.error());
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
