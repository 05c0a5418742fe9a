package dev.jwsl.service.distro;

import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * One registered distribution.
 *
 * @param name        unique name ({@link #NAME})
 * @param id          stable id (a UUID), also the disk's file system label seed
 * @param installDir  where its files live (the disk image, normally)
 * @param image       its ext4 disk image
 * @param defaultUser user commands run as when none is given ("" = root, unless the distro's
 *                    /etc/wsl.conf names one)
 * @param version     WSL version: always 2
 */
public record Distro(String name, String id, Path installDir, Path image, String defaultUser, int version) {
    /** Valid names: what WSL accepts, minus anything a shell or a path would treat specially. */
    public static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    /** Valid user names (useradd's default NAME_REGEX, plus upper case). */
    public static final Pattern USER = Pattern.compile("[A-Za-z_][A-Za-z0-9_.-]{0,31}\\$?");

    public Distro {
        checkName(name);
        if (!defaultUser.isEmpty() && !USER.matcher(defaultUser).matches()) {
            throw new IllegalArgumentException("invalid user name: " + defaultUser);
        }
    }

    /** Throws a one-line error unless {@code name} is a valid distro name. */
    public static String checkName(String name) {
        if (name == null || !NAME.matcher(name).matches()) {
            String shown = name == null ? "" : shortName(name);
            throw new IllegalArgumentException("invalid distribution name '" + shown.replaceAll("\\p{Cntrl}", "?")
                    + "': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
        }
        return name;
    }

    /** A name someone typed, for a message: a valid one has at most 64 characters, anything longer is cut. */
    public static String shortName(String name) {
        return name.length() <= 64 ? name : name.substring(0, 60) + "...";
    }

    public Distro withDefaultUser(String user) {
        return new Distro(name, id, installDir, image, user, version);
    }
}
