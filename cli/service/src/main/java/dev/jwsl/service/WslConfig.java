package dev.jwsl.service;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Settings from {@code ~/.wslconfig}, INI format as in WSL: section {@code [wsl2]} with
 * {@code memory}, {@code processors}, {@code kernel}, {@code kernelCommandLine} and
 * {@code vmIdleTimeout} (milliseconds). Unknown keys are ignored, as WSL does; bad values are
 * errors naming the key.
 *
 * <p>jwsl's own: section {@code [shares]} lists the host directories every distro sees (mounted
 * at {@code /mnt/NAME}, or under wsl.conf's {@code [automount] root}), one {@code NAME = DIR}
 * per line, default {@code host = /}; {@code [wsl2] shareTransport} is {@code virtio} (a
 * virtio-9p device per share, the default) or {@code vsock} (9P over a VM socket, as WSL does).
 * Measured on a PVM host (issue 5 notes): virtio does metadata twice as fast (find over 792
 * entries 43 s vs 85 s, stat of each 75 s vs 167 s), vsock moves bulk data faster (dd 0.63 vs
 * 0.39 MB/s write, 0.61 vs 0.50 read); tools mostly walk and stat, so virtio is the default.
 * {@code [wsl2] shareMountOptions} are the guest's 9P mount options.
 *
 * <p>Networking: {@code [wsl2] networkingMode} is {@code nat} (default: a virtio-net device on
 * libslirp user networking) or {@code none}; {@code localhostForwarding} (default true, as in
 * WSL) makes every TCP port a guest process listens on reachable at the host's 127.0.0.1 and
 * ::1; jwsl's {@code localhostForwardingAllInterfaces = true} binds those ports on all host
 * interfaces instead (0.0.0.0 and ::), which exposes them to the LAN.
 *
 * @param memoryBytes    guest RAM
 * @param processors     vCPUs
 * @param kernel         kernel image, or null for jwsl's own
 * @param extraCmdline   appended kernel parameters
 * @param idleTimeoutMs  how long an unused VM stays up
 * @param defaultVhdBytes largest size of a new distro's (sparse) disk, {@code defaultVhdSize}
 * @param shares         share name to host directory, in order
 * @param shareTransport how the guest reaches the 9P server
 * @param shareMountOptions the 9P mount options besides transport and version
 * @param networking     a network device (networkingMode=nat)
 * @param localhostForwarding forward guest TCP listeners to the host
 * @param instantStart   restore the utility VM from a snapshot of its booted state instead of
 *                       booting it ({@code [wsl2] instantStart}, jwsl's own, default true; issue 19)
 * @param forwardOnAllInterfaces forwarded ports listen on every host interface, not only loopback
 */
public record WslConfig(long memoryBytes, int processors, Path kernel, String extraCmdline, long idleTimeoutMs,
                        long defaultVhdBytes, Map<String, Path> shares, ShareTransport shareTransport,
                        String shareMountOptions, boolean networking, boolean localhostForwarding,
                        boolean forwardOnAllInterfaces, boolean instantStart) {
    /** How a share reaches the guest. */
    public enum ShareTransport { VIRTIO, VSOCK }

    /**
     * 9P mount options by measurement (scripts/bench-9p): 512 KiB messages (the virtio transport's
     * limit is ~500 KiB); cache=mmap keeps host changes visible at once (no dentry or attribute
     * cache: every lookup asks the server) while mmap works.
     */
    public static final String DEFAULT_SHARE_MOUNT_OPTIONS = "msize=524288,cache=mmap";
    private static final java.util.regex.Pattern SHARE_NAME = java.util.regex.Pattern.compile("[a-z0-9][a-z0-9_-]{0,31}");

    public WslConfig {
        shares = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(shares));
    }
    public static final long DEFAULT_MEMORY = 512L << 20;
    public static final int DEFAULT_PROCESSORS = 2;
    public static final long DEFAULT_IDLE_TIMEOUT_MS = 60_000;
    /** WSL's default: 1 TB, sparse. */
    public static final long DEFAULT_VHD_BYTES = 1L << 40;

    /** Reads {@code file}; a missing file gives the defaults. */
    public static WslConfig load(Path file) throws IOException {
        Map<String, String> wsl2 = new HashMap<>();
        Map<String, Path> shares = new java.util.LinkedHashMap<>();
        boolean sharesSection = false;
        if (Files.exists(file)) {
            String section = "";
            for (String raw : Files.readAllLines(file)) {
                String line = raw.strip();
                if (line.isEmpty() || line.startsWith("#") || line.startsWith(";")) {
                    continue;
                }
                if (line.startsWith("[") && line.endsWith("]")) {
                    section = line.substring(1, line.length() - 1).strip().toLowerCase(Locale.ROOT);
                    sharesSection |= section.equals("shares");
                } else if (section.equals("wsl2") && line.contains("=")) {
                    int eq = line.indexOf('=');
                    wsl2.put(line.substring(0, eq).strip().toLowerCase(Locale.ROOT), line.substring(eq + 1).strip());
                } else if (section.equals("shares") && line.contains("=")) {
                    int eq = line.indexOf('=');
                    String name = line.substring(0, eq).strip();
                    String dir = line.substring(eq + 1).strip();
                    if (!SHARE_NAME.matcher(name).matches()) {
                        throw new IllegalArgumentException(file + ": share name '" + name + "' must be 1-32 of a-z 0-9 _ -");
                    }
                    if (!dir.startsWith("/") || dir.chars().anyMatch(Character::isWhitespace)) {
                        throw new IllegalArgumentException(file + ": share " + name + " needs an absolute directory without spaces, got '" + dir + "'");
                    }
                    shares.put(name, Path.of(dir).normalize());
                }
            }
        }
        if (!sharesSection) {
            shares.put("host", Path.of("/"));
        }
        String transport = wsl2.getOrDefault("sharetransport", "virtio").toLowerCase(Locale.ROOT);
        if (!transport.equals("virtio") && !transport.equals("vsock")) {
            throw new IllegalArgumentException(file + ": shareTransport=" + transport + " is not virtio or vsock");
        }
        String mountOptions = wsl2.getOrDefault("sharemountoptions", DEFAULT_SHARE_MOUNT_OPTIONS);
        if (!mountOptions.matches("[A-Za-z0-9_=,.]*")) {
            throw new IllegalArgumentException(file + ": shareMountOptions=" + mountOptions + " holds characters other than letters, digits, _ = , .");
        }
        String networkingMode = wsl2.getOrDefault("networkingmode", "nat").toLowerCase(Locale.ROOT);
        if (!networkingMode.equals("nat") && !networkingMode.equals("none")) {
            throw new IllegalArgumentException(file + ": networkingMode=" + networkingMode + " is not nat or none");
        }
        return new WslConfig(
                wsl2.containsKey("memory") ? size(file, "memory", wsl2.get("memory")) : DEFAULT_MEMORY,
                wsl2.containsKey("processors") ? positive(file, "processors", wsl2.get("processors")) : DEFAULT_PROCESSORS,
                wsl2.containsKey("kernel") ? Path.of(wsl2.get("kernel")) : null,
                wsl2.getOrDefault("kernelcommandline", ""),
                wsl2.containsKey("vmidletimeout") ? positive(file, "vmIdleTimeout", wsl2.get("vmidletimeout"))
                        : DEFAULT_IDLE_TIMEOUT_MS,
                wsl2.containsKey("defaultvhdsize") ? size(file, "defaultVhdSize", wsl2.get("defaultvhdsize"))
                        : DEFAULT_VHD_BYTES,
                shares, ShareTransport.valueOf(transport.toUpperCase(Locale.ROOT)), mountOptions,
                networkingMode.equals("nat"),
                bool(file, "localhostForwarding", wsl2.getOrDefault("localhostforwarding", "true")),
                bool(file, "localhostForwardingAllInterfaces", wsl2.getOrDefault("localhostforwardingallinterfaces", "false")),
                bool(file, "instantStart", wsl2.getOrDefault("instantstart", "true")));
    }

    private static boolean bool(Path file, String key, String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "true", "yes", "1" -> true;
            case "false", "no", "0" -> false;
            default -> throw new IllegalArgumentException(file + ": " + key + "=" + value + " is not true or false");
        };
    }

    private static int positive(Path file, String key, String value) {
        try {
            int n = Integer.parseInt(value);
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException(file + ": " + key + "=" + value + " is not a positive number");
    }

    private static long size(Path file, String key, String value) {
        String v = value.toUpperCase(Locale.ROOT).replace("IB", "").replace("B", "");
        long unit = switch (v.isEmpty() ? ' ' : v.charAt(v.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            case 'T' -> 1L << 40;
            default -> 1;
        };
        try {
            long n = Long.parseLong(unit == 1 ? v : v.substring(0, v.length() - 1));
            if (n > 0) {
                return n * unit;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException(file + ": " + key + "=" + value + " is not a size like 2GB");
    }
}
