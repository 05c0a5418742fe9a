/* wslpath: converts paths like WSL's wslpath, where the "Windows" side is the Linux host's file
 * system, which appears in the distro under the mount points of the host shares.
 *
 *   wslpath [-a] [-u|-w|-m] PATH
 *     -u  host path -> distro path (the default)
 *     -w  distro path -> host path
 *     -m  the same as -w: WSL's -m only writes '/' where -w writes '\', and host paths use '/'
 *     -a  resolve a relative PATH against the current directory first; without -a a relative
 *         PATH is printed unchanged, as WSL does
 *   Flags may be separate or combined (-aw). A PATH starting with '-' needs "--" before it.
 *
 * The shares are read from /run/jwsl/shares, one "NAME HOSTPATH GUESTPATH" a line, split on the
 * first two spaces (so only GUESTPATH may contain spaces); lines starting with '#', malformed lines
 * and relative paths are skipped. Without the file the host's "/" is at /mnt/host. The share with
 * the longest prefix of PATH (whole components only) wins; on a tie, the first in the file.
 * Absolute paths are normalised lexically ("//", ".", ".."). Output has no trailing '/' but "/".
 * Exit 0, 1 with one line on stderr if PATH cannot be mapped, 2 for a usage error. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wslpath.h"

#define SHARES_FILE "/run/jwsl/shares"
#define MAX_SHARES 64

struct share {
    char *host, *guest; /* absolute, normalised */
};

static struct share shares[MAX_SHARES];
static size_t nshares;

static int quiet; /* set for relayd, whose stderr is the user's command's */

static int fail(const char *path, const char *msg)
{
    if (!quiet)
        fprintf(stderr, "wslpath: %s: %s\n", path, msg);
    return 1;
}

static int usage(void)
{
    fputs("usage: wslpath [-a] [-u|-w|-m] PATH\n", stderr);
    return 2;
}

static int emit(const char *a, const char *b)
{
    if (printf("%s%s\n", a, b) < 0 || fflush(stdout) != 0)
        return fail("stdout", strerror(errno));
    return 0;
}

/* Normalises the absolute path in into out without looking at the file system. ".." at "/" stays
 * at "/", as the kernel does. -1 if out is too small. */
static int normalise(const char *in, char *out, size_t len)
{
    size_t n = 0;
    for (;;) {
        while (*in == '/')
            in++;
        size_t c = strcspn(in, "/");
        if (c == 0)
            break;
        if (c == 2 && in[0] == '.' && in[1] == '.') {
            while (n > 0 && out[--n] != '/')
                ;
        } else if (!(c == 1 && in[0] == '.')) {
            if (n + 1 + c >= len)
                return -1;
            out[n++] = '/';
            memcpy(out + n, in, c);
            n += c;
        }
        in += c;
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return 0;
}

static int add_share(const char *host, const char *guest)
{
    char h[PATH_MAX], g[PATH_MAX];
    if (nshares == MAX_SHARES || normalise(host, h, sizeof(h)) || normalise(guest, g, sizeof(g)))
        return 0; /* an entry we cannot hold is skipped like a malformed one */
    struct share *s = &shares[nshares];
    s->host = strdup(h);
    s->guest = strdup(g);
    if (!s->host || !s->guest)
        return -1;
    nshares++;
    return 0;
}

/* JWSL_SHARES_FILE is for tests only (tests/test-wslpath.sh runs this on the host, where
 * /run/jwsl/shares does not exist); the table only changes what this process prints, so honouring
 * it in a distro gives a user nothing they could not do with sed. */
static int load_shares(void)
{
    const char *file = getenv("JWSL_SHARES_FILE");
    if (!file || !*file)
        file = SHARES_FILE;
    FILE *f = fopen(file, "re");
    if (!f) {
        if (errno != ENOENT)
            return fail(file, strerror(errno));
        /* no table: the VM shares only the host's root, where wsl.conf's automount puts it */
        return add_share("/", "/mnt/host") ? fail(file, strerror(ENOMEM)) : 0;
    }
    char line[2 * PATH_MAX + 256];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        char *nl = strchr(line, '\n');
        if (!nl && !feof(f)) { /* too long for any usable share: skip the rest of it */
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                ;
            continue;
        }
        if (nl)
            *nl = '\0';
        char *host = strchr(line, ' '), *guest = host ? strchr(host + 1, ' ') : NULL;
        if (line[0] == '#' || !guest || host == line)
            continue;
        *host++ = '\0';
        *guest++ = '\0';
        if (host[0] == '/' && guest[0] == '/' && add_share(host, guest))
            rc = fail(file, strerror(ENOMEM));
    }
    if (rc == 0 && ferror(f))
        rc = fail(file, strerror(errno));
    fclose(f);
    return rc;
}

/* The share whose host (to_guest) or guest path is the longest prefix of the normalised path, and
 * in *rest what follows that prefix ("" or "/..."); NULL if none. */
static const struct share *find(const char *path, int to_guest, const char **rest)
{
    const struct share *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; i < nshares; i++) {
        const char *from = to_guest ? shares[i].host : shares[i].guest;
        size_t n = strlen(from);
        if (n == 1)
            n = 0; /* "/" holds every path, and what follows it keeps its leading '/' */
        if (strncmp(path, from, n) == 0 && (path[n] == '\0' || path[n] == '/') && (!best || n > best_n)) {
            best = &shares[i];
            best_n = n;
        }
    }
    *rest = path + best_n;
    return best;
}

static int loaded;

int wslpath_host_to_guest(const char *host, char *out, size_t len)
{
    char lex[PATH_MAX];
    const char *rest;
    if (host[0] != '/' || normalise(host, lex, sizeof(lex)))
        return -1;
    if (!loaded) {
        quiet = 1;
        if (load_shares())
            return -1;
        loaded = 1;
    }
    const struct share *s = find(lex, 1, &rest);
    if (!s)
        return -1;
    const char *to = s->guest;
    if (strcmp(rest, "/") == 0)
        rest = "";
    else if (*rest && strcmp(to, "/") == 0)
        to = "";
    return snprintf(out, len, "%s%s", to, rest) >= (int)len ? -1 : 0;
}

static int emit_mapped(const struct share *s, int to_guest, const char *rest)
{
    const char *to = to_guest ? s->guest : s->host;
    if (strcmp(rest, "/") == 0) /* the path was "/" and so is the share's prefix */
        rest = "";
    else if (*rest && strcmp(to, "/") == 0)
        to = "";
    return emit(to, rest);
}

int wslpath_main(int argc, char **argv)
{
    int absolute = 0, to_guest = -1;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        for (const char *f = argv[i] + 1; *f; f++) {
            if (*f == 'a') {
                absolute = 1;
            } else if (*f == 'u' || *f == 'w' || *f == 'm') {
                int g = *f == 'u';
                if (to_guest >= 0 && to_guest != g) /* -w and -m agree; -u with either cannot */
                    return usage();
                to_guest = g;
            } else {
                return usage();
            }
        }
    }
    if (argc - i != 1 || argv[i][0] == '\0')
        return usage();
    to_guest = to_guest != 0; /* -u is the default, as in WSL */
    const char *path = argv[i];
    if (path[0] != '/' && !absolute)
        return emit(path, "");
    if (load_shares())
        return 1;

    char abs[PATH_MAX], lex[PATH_MAX];
    if (path[0] == '/') {
        if (strlen(path) >= sizeof(abs))
            return fail(path, strerror(ENAMETOOLONG));
        strcpy(abs, path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return fail(path, strerror(errno));
        if (snprintf(abs, sizeof(abs), "%s/%s", cwd, path) >= (int)sizeof(abs))
            return fail(path, strerror(ENAMETOOLONG));
    }
    if (normalise(abs, lex, sizeof(lex)))
        return fail(path, strerror(ENAMETOOLONG));
    /* A relative host path made absolute against our (distro) directory is a distro path already. */
    if (to_guest && path[0] != '/')
        return emit(lex, "");

    const char *rest;
    const struct share *s = NULL;
    char real[PATH_MAX];
    /* An existing distro path may lead into a share through a symlink (or "link/.."), which only
     * the file system knows about, as in WSL. But a host symlink inside a share with an absolute
     * target resolves against the distro's root here, not the host's: when that leads off the
     * shares, the lexical path still names the file on the host. */
    if (!to_guest && realpath(abs, real))
        s = find(real, 0, &rest);
    if (!s)
        s = find(lex, to_guest, &rest);
    if (!s)
        return fail(path, "not on a host share");
    return emit_mapped(s, to_guest, rest);
}
