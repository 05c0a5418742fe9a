package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

import java.util.List;

import static dev.jwsl.hypervisor.p9.P9Constants.AT_REMOVEDIR;

/** What changes a directory's entries for existing files: Tlink, Trename, Trenameat, Tunlinkat, Tremove. */
record LinkRequests(FidTable fids) {
    void link(P9Reader in, List<Fid> held) {
        Fid dir = Confinement.directory(fids.use(in.u32(), held));
        Fid target = fids.use(in.u32(), held);
        byte[] name = Confinement.name(in.name());
        if (target.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        if (target.isDirectory()) {
            throw new P9Error(Errno.EPERM);
        }
        Confinement.sameShare(dir, target);
        Confinement.inside(target);
        try {
            HostFs.linkat(target.pathFd, "", dir.pathFd, name, HostFs.AT_EMPTY_PATH);
        } catch (P9Error e) {
            if (e.errno() != Errno.ENOENT && e.errno() != Errno.EPERM || target.isSymlink()) {
                throw e;
            }
            // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc link is the unprivileged way
            HostFs.linkat(HostFs.AT_FDCWD, HostFs.procPath(target.pathFd), dir.pathFd, name, HostFs.AT_SYMLINK_FOLLOW);
        }
    }

    /** The old fid-only rename: the fid's file is found again by its path. */
    void rename(P9Reader in, List<Fid> held) {
        Fid f = fids.use(in.u32(), held);
        Fid to = Confinement.directory(fids.use(in.u32(), held));
        byte[] name = Confinement.name(in.name());
        if (f.pathFd < 0) {
            throw new P9Error(Errno.EBADF);
        }
        Confinement.sameShare(f, to);
        Confinement.Located at = located(f);
        try {
            HostFs.renameat(at.parentFd(), at.name(), to.pathFd, name);
        } finally {
            HostFs.close(at.parentFd());
        }
    }

    void renameat(P9Reader in, List<Fid> held) {
        Fid from = Confinement.directory(fids.use(in.u32(), held));
        byte[] oldName = Confinement.name(in.name());
        Fid to = Confinement.directory(fids.use(in.u32(), held));
        byte[] newName = Confinement.name(in.name());
        Confinement.sameShare(from, to);
        HostFs.renameat(from.pathFd, oldName, to.pathFd, newName);
    }

    void unlinkat(P9Reader in, List<Fid> held) {
        Fid dir = Confinement.directory(fids.use(in.u32(), held));
        byte[] name = Confinement.name(in.name());
        int flags = in.u32();
        HostFs.unlinkat(dir.pathFd, name, flags & AT_REMOVEDIR);
    }

    void remove(P9Reader in) {
        Fid f = fids.remove(in.u32());
        try {
            if (f.pathFd < 0) {
                throw new P9Error(Errno.EBADF);
            }
            Confinement.Located at = located(f);
            try {
                HostFs.unlinkat(at.parentFd(), at.name(), f.isDirectory() ? AT_REMOVEDIR : 0);
            } finally {
                HostFs.close(at.parentFd());
            }
        } finally {
            f.release(); // Tremove clunks the fid even when the removal fails
        }
    }

    /** Where a fid's file is, to rename or remove it by name; the share root has no name to change. */
    private static Confinement.Located located(Fid f) {
        Confinement.Located at = Confinement.locate(f.share, f.pathFd);
        if (at == null) {
            throw new P9Error(Errno.EBUSY, "the share root");
        }
        return at;
    }
}
