package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Errno;

/**
 * What a request that made a file (Tlcreate, Tmkdir, Tmknod, Tsymlink) does once the host has
 * made it: the group the client asked for, and exactly the mode it asked.
 *
 * <p>The mode: the client has applied its own umask already, and the server's must not be
 * applied again (a server started with umask 022 would make 0620 into 0600). umask(2) is the
 * whole process's, not the serving thread's: setting it to 0 would widen every file the rest of
 * the service makes, and the requests run on threads the server does not own. So the file is
 * made with the mode (the umask can only take bits away, never add any), then set to the mode
 * by chmod where it differs. A directory keeps the setgid bit it inherits from a setgid parent,
 * as mkdir(2) keeps it.
 *
 * <p>The group: chown, where the host allows it (an unprivileged server, or a root server acting
 * as a user, gives a file only a group that user is in; otherwise it keeps the group the host
 * gave it). A chown clears the setuid and setgid bits of a file, so the mode is set after it.
 * The kernel then decides again whether the user may have the setgid bit, as for chmod(2).
 */
final class NewFile {
    private NewFile() {}

    /** A mode for a symlink, whose mode is not the client's to set. */
    static final int NO_MODE = -1;

    /** Gives the new file {@code fd} (an O_PATH descriptor) group {@code gid} and {@code mode}; returns its stat. */
    static HostFs.Stat settle(int fd, int gid, int mode) {
        HostFs.Stat st = HostFs.stat(fd);
        boolean chowned = false;
        if (gid != -1 && gid != st.gid()) {
            try {
                HostFs.chown(fd, -1, gid);
                chowned = true;
            } catch (P9Error e) {
                if (e.errno() != Errno.EPERM) {
                    throw e;
                }
            }
        }
        if (mode != NO_MODE && st.type() != HostFs.S_IFLNK) {
            int want = st.isDirectory() ? mode | (st.mode() & HostFs.S_ISGID) : mode;
            boolean cleared = chowned && (want & (HostFs.S_ISUID | HostFs.S_ISGID)) != 0;
            if (cleared || (st.mode() & 07777) != want) {
                HostFs.chmod(HostFs.procPath(fd), want);
            }
        }
        return st;
    }
}
