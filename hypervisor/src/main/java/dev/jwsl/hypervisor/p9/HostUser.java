package dev.jwsl.hypervisor.p9;

import dev.jwsl.hypervisor.sys.Downcall;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A host user a server running as root acts as: the uid a client attached as, with the primary
 * group and supplementary groups the host's user database gives it (as diod does: access is the
 * host's to decide, so it decides with the host's groups).
 */
record HostUser(int uid, int gid, int[] groups) {
    @Override
    public boolean equals(Object o) {
        return o instanceof HostUser u && u.uid == uid && u.gid == gid && Arrays.equals(u.groups, groups);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * uid + gid) + Arrays.hashCode(groups);
    }

    /** overflowuid and overflowgid: who an attach without a uid, or a uid the host has no group for, is. */
    static final int NOBODY = 65534;
    /** n_uname when the client gave none. */
    static final int NO_UID = -1;

    private static final MethodHandle GETPWUID_R = Downcall.plain("getpwuid_r",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
    private static final MethodHandle GETGROUPLIST = Downcall.plain("getgrouplist",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
    /** struct passwd (x86_64): pw_name, pw_passwd, pw_uid, pw_gid, ... */
    private static final int PASSWD_SIZE = 48, PW_NAME = 0, PW_GID = 20;

    /**
     * The user {@code uid} is on this host. A uid the user database does not know acts as itself
     * with group nobody and no others: its number alone may match a group (uid 6 is group disk
     * on Debian), which must not give it that group's files.
     */
    static HostUser lookup(int uid) {
        if (uid == NO_UID) {
            return new HostUser(NOBODY, NOBODY, new int[0]);
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment pw = a.allocate(PASSWD_SIZE, 8);
            MemorySegment result = a.allocate(ADDRESS);
            for (long size = 16384; ; size *= 4) {
                MemorySegment buf = a.allocate(size);
                int err = (int) GETPWUID_R.invokeExact(uid, pw, buf, size, result);
                if (err == 34 /* ERANGE */ && size < (1 << 24)) {
                    continue;
                }
                if (err != 0 || result.get(ADDRESS, 0).address() == 0) {
                    return new HostUser(uid, NOBODY, new int[0]);
                }
                break;
            }
            int gid = pw.get(JAVA_INT, PW_GID);
            MemorySegment name = pw.get(ADDRESS, PW_NAME);
            return new HostUser(uid, gid, groups(a, name, gid));
        } catch (Throwable t) {
            throw Downcall.rethrow(t);
        }
    }

    private static int[] groups(Arena a, MemorySegment name, int gid) throws Throwable {
        MemorySegment count = a.allocate(JAVA_INT);
        for (int n = 64; ; ) {
            MemorySegment list = a.allocate(JAVA_INT, n);
            count.set(JAVA_INT, 0, n);
            int got = (int) GETGROUPLIST.invokeExact(name, gid, list, count);
            int needed = count.get(JAVA_INT, 0);
            if (got >= 0) {
                return list.asSlice(0, (long) needed * 4).toArray(JAVA_INT);
            }
            if (needed <= n || needed > 65536) { // NGROUPS_MAX: more is a broken database
                return new int[] {gid};
            }
            n = needed;
        }
    }
}
