package dev.jwsl.hypervisor.sys;

/** The errno values jwsl reacts to or names in errors (asm-generic/errno-base.h, errno.h). */
public final class Errno {
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int EINTR = 4;
    public static final int EIO = 5;
    public static final int EBADF = 9;
    public static final int EAGAIN = 11;
    public static final int ENOMEM = 12;
    public static final int EACCES = 13;
    public static final int EFAULT = 14;
    public static final int EBUSY = 16;
    public static final int EEXIST = 17;
    public static final int ENODEV = 19;
    public static final int EINVAL = 22;
    public static final int ENOTTY = 25;
    public static final int ENOSPC = 28;
    public static final int E2BIG = 7;
    public static final int ENXIO = 6;
    public static final int EOPNOTSUPP = 95;
    public static final int EXDEV = 18;
    public static final int ENOTDIR = 20;
    public static final int EISDIR = 21;
    public static final int EMFILE = 24;
    public static final int EFBIG = 27;
    public static final int ERANGE = 34;
    public static final int ENAMETOOLONG = 36;
    public static final int ENOSYS = 38;
    public static final int ENOTEMPTY = 39;
    public static final int ELOOP = 40;
    public static final int ENODATA = 61;
    public static final int EPROTO = 71;
    public static final int EMSGSIZE = 90;

    private Errno() {}

    /** The symbolic name and message of {@code errno}, e.g. {@code "EACCES (permission denied)"}. */
    public static String describe(int errno) {
        String name = switch (errno) {
            case EPERM -> "EPERM (operation not permitted)";
            case ENOENT -> "ENOENT (no such file or directory)";
            case EINTR -> "EINTR (interrupted)";
            case EIO -> "EIO (I/O error)";
            case ENXIO -> "ENXIO (no such device or address)";
            case E2BIG -> "E2BIG (argument list too long)";
            case EBADF -> "EBADF (bad file descriptor)";
            case EAGAIN -> "EAGAIN (try again)";
            case ENOMEM -> "ENOMEM (out of memory)";
            case EACCES -> "EACCES (permission denied)";
            case EFAULT -> "EFAULT (bad address)";
            case EBUSY -> "EBUSY (device or resource busy)";
            case EEXIST -> "EEXIST (file exists)";
            case ENODEV -> "ENODEV (no such device)";
            case EINVAL -> "EINVAL (invalid argument)";
            case ENOTTY -> "ENOTTY (inappropriate ioctl)";
            case ENOSPC -> "ENOSPC (no space left)";
            case EOPNOTSUPP -> "EOPNOTSUPP (operation not supported)";
            case EXDEV -> "EXDEV (cross-device link)";
            case ENOTDIR -> "ENOTDIR (not a directory)";
            case EISDIR -> "EISDIR (is a directory)";
            case EMFILE -> "EMFILE (too many open files)";
            case EFBIG -> "EFBIG (file too large)";
            case ERANGE -> "ERANGE (result out of range)";
            case ENAMETOOLONG -> "ENAMETOOLONG (file name too long)";
            case ENOSYS -> "ENOSYS (function not implemented)";
            case ENOTEMPTY -> "ENOTEMPTY (directory not empty)";
            case ELOOP -> "ELOOP (too many levels of symbolic links)";
            case ENODATA -> "ENODATA (no data available)";
            case EPROTO -> "EPROTO (protocol error)";
            case EMSGSIZE -> "EMSGSIZE (message too long)";
            default -> null;
        };
        return name != null ? name : "errno " + errno;
    }
}
