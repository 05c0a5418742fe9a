package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.nio.charset.StandardCharsets;

/**
 * Where a client's name becomes a host file. Every request that resolves a name from a fid,
 * walks {@code ..}, or finds a fid's file again by path comes through here, so the rules that
 * keep the guest inside its share are in one place.
 */
final class Confinement {
    private Confinement() {}

    /** A name the client may use inside a directory: one component, never "." or "..". */
    static String name(String name) {
        if (name.isEmpty() || name.equals(".") || name.equals("..") || name.indexOf('/') >= 0) {
            throw new P9Error(Errno.EINVAL, "bad name");
        }
        if (name.getBytes(StandardCharsets.UTF_8).length > 255) {
            throw new P9Error(Errno.ENAMETOOLONG);
        }
        return name;
    }

    /** A fid to make, remove or rename names in. */
    static Fid directory(Fid f) {
        if (f.pathFd < 0 || !f.isDirectory()) {
            throw new P9Error(Errno.ENOTDIR);
        }
        return f;
    }

    /** Opens {@code name} in {@code dirFd} as a new O_PATH descriptor; the name must stay beneath dirFd. */
    static int child(int dirFd, String name) {
        return HostFs.openat2(dirFd, name, HostFs.O_PATH | HostFs.O_NOFOLLOW | HostFs.O_CLOEXEC, 0,
                HostFs.RESOLVE_BENEATH | HostFs.RESOLVE_NO_MAGICLINKS);
    }

    /** One walk step from directory {@code dirFd}: a child, or the parent but never above the share. */
    static int step(P9Server.ShareRoot share, int dirFd, String name) {
        if (name.equals("..")) {
            HostFs.Stat st = HostFs.stat(dirFd);
            if (st.dev() == share.dev() && st.ino() == share.ino()) {
                return HostFs.dup(dirFd);
            }
            return HostFs.openat(dirFd, "..", HostFs.O_PATH | HostFs.O_DIRECTORY | HostFs.O_NOFOLLOW | HostFs.O_CLOEXEC, 0);
        }
        if (name.equals(".")) {
            return HostFs.dup(dirFd);
        }
        return child(dirFd, name(name));
    }

    /**
     * Where a fid's file is now, as its parent directory (an owned O_PATH descriptor, checked
     * to be inside the share) and its name: for the old fid-only Trename and Tremove.
     */
    record Located(int parentFd, String name) {}

    static Located locate(Fid f) {
        String host = HostFs.readlink(HostFs.AT_FDCWD, HostFs.procPath(f.pathFd));
        String root = f.share.path().toString();
        String prefix = root.endsWith("/") ? root : root + "/";
        if (!host.startsWith(prefix)) {
            throw new P9Error(Errno.EBUSY, "the share root or a file outside it");
        }
        String rel = host.substring(prefix.length());
        int slash = rel.lastIndexOf('/');
        String parent = slash < 0 ? "." : rel.substring(0, slash);
        String name = rel.substring(slash + 1);
        int parentFd = HostFs.openat2(f.share.fd(), parent, HostFs.O_PATH | HostFs.O_DIRECTORY | HostFs.O_CLOEXEC, 0,
                HostFs.RESOLVE_BENEATH | HostFs.RESOLVE_NO_MAGICLINKS);
        try {
            int check = child(parentFd, name(name));
            try {
                HostFs.Stat a = HostFs.stat(check), b = HostFs.stat(f.pathFd);
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
}
