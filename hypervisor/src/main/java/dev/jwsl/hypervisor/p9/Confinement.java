package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.util.Arrays;

/**
 * Where a client's name becomes a host file. Every request that resolves a name from a fid,
 * walks {@code ..}, or finds a fid's file again by path comes through here, so the rules that
 * keep the guest inside its share are in one place:
 * <ul>
 * <li>A name is one component, opened beneath its directory ({@code RESOLVE_BENEATH}, no
 *     symlink followed).
 * <li>A fid's descriptor follows its file wherever it moves, so "inside the share" is checked
 *     against where the file is now: the kernel's name for it must lie under the share root's.
 *     A file a host process moved out of the share (or that a guest move through an enclosing
 *     share took out of a nested one) is then {@code ENOENT}, like a stale handle.
 * <li>{@code ..} is never asked of the file system relative to the directory: the parent is
 *     found again from the share root beneath it, so it cannot climb above the root whatever
 *     moved.
 * <li>Two fids of one request must belong to the same share ({@code EXDEV} otherwise): one
 *     server serves several shares, and a directory moved into another share would take the
 *     fids under it out of theirs.
 * </ul>
 * The check applies where a request makes or changes a name, resolves one, or opens or changes a
 * fid's file. Reading a fid's metadata (getattr, statfs, xattrs, readlink) and I/O on a
 * descriptor opened while inside are not checked again: an open file stays open, as it would for
 * a host process.
 */
final class Confinement {
    private Confinement() {}

    private static final byte[] DOTDOT = {'.', '.'};

    /** A name the client may use inside a directory: one component, never "." or "..". */
    static byte[] name(byte[] name) {
        if (name.length == 0 || Arrays.equals(name, HostFs.DOT) || Arrays.equals(name, DOTDOT) || indexOf(name, '/') >= 0) {
            throw new P9Error(Errno.EINVAL, "bad name");
        }
        if (name.length > 255) {
            throw new P9Error(Errno.ENAMETOOLONG);
        }
        return name;
    }

    private static int indexOf(byte[] s, char c) {
        for (int i = 0; i < s.length; i++) {
            if (s[i] == c) {
                return i;
            }
        }
        return -1;
    }

    /** A fid to make, remove or rename names in: a directory still inside its share. */
    static Fid directory(Fid f) {
        if (f.pathFd < 0 || !f.isDirectory()) {
            throw new P9Error(Errno.ENOTDIR);
        }
        return inside(f);
    }

    /** {@code f}, once its file is checked to be inside its share now. */
    static Fid inside(Fid f) {
        relative(f.share, f.pathFd);
        return f;
    }

    /** Refuses a request whose two fids belong to different shares, as a move between mounts is. */
    static void sameShare(Fid a, Fid b) {
        if (a.share != b.share) { // the server holds one ShareRoot per share
            throw new P9Error(Errno.EXDEV, "between shares " + a.share.name() + " and " + b.share.name());
        }
    }

    /** Opens {@code name} in {@code dirFd} as a new O_PATH descriptor; the name must stay beneath dirFd. */
    static int child(int dirFd, byte[] name) {
        return HostFs.openat2(dirFd, name, HostFs.O_PATH | HostFs.O_NOFOLLOW | HostFs.O_CLOEXEC, 0,
                HostFs.RESOLVE_BENEATH | HostFs.RESOLVE_NO_MAGICLINKS);
    }

    /** One walk step from directory {@code dirFd}: a child or the parent, inside the share. */
    static int step(P9Server.ShareRoot share, int dirFd, byte[] name) {
        if (Arrays.equals(name, DOTDOT)) {
            return parent(share, dirFd);
        }
        if (Arrays.equals(name, HostFs.DOT)) {
            return HostFs.dup(dirFd);
        }
        int fd = child(dirFd, name(name));
        try {
            relative(share, fd);
            return fd;
        } catch (P9Error e) {
            HostFs.close(fd);
            throw e;
        }
    }

    /** The parent of {@code dirFd}, opened again from the share root; the root is its own parent. */
    private static int parent(P9Server.ShareRoot share, int dirFd) {
        HostFs.Stat st = HostFs.stat(dirFd);
        if (st.dev() == share.dev() && st.ino() == share.ino()) {
            return HostFs.dup(dirFd);
        }
        Located at = locate(share, dirFd);
        if (at == null) {
            throw new P9Error(Errno.ENOENT, "share root replaced");
        }
        return at.parentFd();
    }

    /**
     * Where a fid's file is now, as its parent directory (an owned O_PATH descriptor opened
     * beneath the share root) and its name: for {@code ..} and the old fid-only Trename and
     * Tremove.
     */
    record Located(int parentFd, byte[] name) {}

    /** The file {@code fd} is, found again from the share root; null for the root itself. */
    static Located locate(P9Server.ShareRoot share, int fd) {
        byte[] rel = relative(share, fd);
        if (rel.length == 0) {
            return null;
        }
        int slash = rel.length - 1;
        while (slash >= 0 && rel[slash] != '/') {
            slash--;
        }
        byte[] parent = slash < 0 ? HostFs.DOT : Arrays.copyOf(rel, slash);
        byte[] name = Arrays.copyOfRange(rel, slash + 1, rel.length);
        int parentFd = HostFs.openat2(share.fd(), parent, HostFs.O_PATH | HostFs.O_DIRECTORY | HostFs.O_CLOEXEC, 0,
                HostFs.RESOLVE_BENEATH | HostFs.RESOLVE_NO_MAGICLINKS);
        try {
            // the path was read before the open: a rename in between must not name another file
            int check = child(parentFd, name(name));
            try {
                HostFs.Stat a = HostFs.stat(check), b = HostFs.stat(fd);
                if (a.dev() != b.dev() || a.ino() != b.ino()) {
                    throw new P9Error(Errno.ENOENT, "file moved");
                }
            } finally {
                HostFs.close(check);
            }
            return new Located(parentFd, name);
        } catch (P9Error e) {
            HostFs.close(parentFd);
            throw e;
        }
    }

    /**
     * The path of {@code fd}'s file below the share root ("" for the root), as the kernel names
     * it; ENOENT if the file is not below the root. The root's name is the one it had at start
     * (a readlink less on every check), or the one it has now if the host has renamed it since.
     * A host path longer than readlink's 4 KiB is ENAMETOOLONG: deeper files are not served.
     */
    private static byte[] relative(P9Server.ShareRoot share, int fd) {
        byte[] host = HostFs.pathOf(fd);
        byte[] rel = below(host, share.realPath());
        if (rel == null) {
            rel = below(host, HostFs.pathOf(share.fd()));
        }
        if (rel == null) {
            throw new P9Error(Errno.ENOENT, "not inside share " + share.name() + " now");
        }
        return rel;
    }

    /** {@code path} relative to {@code root} ("" for the root itself), or null if not below it. */
    private static byte[] below(byte[] path, byte[] root) {
        if (Arrays.equals(path, root)) {
            return new byte[0];
        }
        int prefix = root.length > 0 && root[root.length - 1] == '/' ? root.length : root.length + 1;
        if (path.length <= prefix || Arrays.mismatch(path, 0, root.length, root, 0, root.length) != -1
                || path[prefix - 1] != '/') {
            return null;
        }
        return Arrays.copyOfRange(path, prefix, path.length);
    }
}
