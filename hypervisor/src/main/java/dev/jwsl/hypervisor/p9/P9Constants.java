package dev.jwsl.hypervisor.p9;

/** Message types and wire constants of 9P2000.L (include/net/9p/9p.h in Linux). */
final class P9Constants {
    private P9Constants() {}

    static final String VERSION = "9P2000.L";
    /** size[4] type[1] tag[2]. */
    static final int HEADER = 7;
    /** Rread/Rreaddir: header + count[4]; where the data starts in the reply. */
    static final int IO_HEADER = HEADER + 4;
    /** Twrite: header + fid[4] offset[8] count[4]; where the data starts in the request. */
    static final int WRITE_HEADER = HEADER + 16;
    static final int NOTAG = 0xffff;
    static final int NOFID = 0xffffffff;
    /** Most names in one Twalk (MAXWELEM). */
    static final int MAX_WALK = 16;
    static final int QID_SIZE = 13;

    static final int TLERROR = 6, RLERROR = 7, TSTATFS = 8, TLOPEN = 12, TLCREATE = 14, TSYMLINK = 16,
            TMKNOD = 18, TRENAME = 20, TREADLINK = 22, TGETATTR = 24, TSETATTR = 26, TXATTRWALK = 30,
            TXATTRCREATE = 32, TREADDIR = 40, TFSYNC = 50, TLOCK = 52, TGETLOCK = 54, TLINK = 70,
            TMKDIR = 72, TRENAMEAT = 74, TUNLINKAT = 76, TVERSION = 100, TAUTH = 102, TATTACH = 104,
            TFLUSH = 108, TWALK = 110, TREAD = 116, TWRITE = 118, TCLUNK = 120, TREMOVE = 122;

    // qid types
    static final byte QTDIR = (byte) 0x80, QTSYMLINK = 0x02, QTFILE = 0;

    /** Rgetattr valid mask for the basic fields plus btime (P9_STATS_BASIC | P9_STATS_BTIME). */
    static final long GETATTR_VALID = 0x000007ffL | 0x00000800L;

    // Tsetattr valid bits (P9_ATTR_*)
    static final int ATTR_MODE = 1, ATTR_UID = 2, ATTR_GID = 4, ATTR_SIZE = 8, ATTR_ATIME = 16,
            ATTR_MTIME = 32, ATTR_CTIME = 64, ATTR_ATIME_SET = 128, ATTR_MTIME_SET = 256;

    // Tlock
    static final byte LOCK_SUCCESS = 0, LOCK_BLOCKED = 1, LOCK_ERROR = 2;

    /** Tunlinkat flag: remove a directory (AT_REMOVEDIR). */
    static final int AT_REMOVEDIR = 0x200;
}
