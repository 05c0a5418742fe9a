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
            default -> null;
        };
        return name != null ? name : "errno " + errno;
    }
}
