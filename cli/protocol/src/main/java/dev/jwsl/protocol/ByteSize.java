package dev.jwsl.protocol;

/** Sizes as users write them: {@code 512M}, {@code 2G}, {@code 1GiB}, {@code 1048576} (bytes). */
public final class ByteSize {
    private ByteSize() {}

    /** Bytes in {@code value}; throws {@link IllegalArgumentException} with a message for the user. */
    public static long parse(String value) {
        String v = value.trim().toUpperCase();
        long unit = 1;
        if (v.endsWith("IB")) {
            v = v.substring(0, v.length() - 2);
        } else if (v.endsWith("B")) {
            v = v.substring(0, v.length() - 1);
        }
        if (!v.isEmpty()) {
            switch (v.charAt(v.length() - 1)) {
                case 'K' -> unit = 1L << 10;
                case 'M' -> unit = 1L << 20;
                case 'G' -> unit = 1L << 30;
                case 'T' -> unit = 1L << 40;
                default -> unit = 1;
            }
            if (unit != 1) {
                v = v.substring(0, v.length() - 1);
            }
        }
        long n;
        try {
            n = Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not a size: '" + value + "' (use e.g. 512M or 2G)");
        }
        if (n <= 0 || n > Long.MAX_VALUE / unit) {
            throw new IllegalArgumentException("size out of range: " + value);
        }
        return n * unit;
    }

    /** {@code bytes} for a message: "64 MiB", "1.5 GiB", "1 TiB", "900 bytes". */
    public static String format(long bytes) {
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        if (bytes < 1024) {
            return bytes + " bytes";
        }
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        String n = v >= 100 || v == Math.rint(v) ? Long.toString(Math.round(v)) : String.format(java.util.Locale.ROOT, "%.1f", v);
        return n + " " + units[u];
    }
}
