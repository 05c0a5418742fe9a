/* jwsl-share: host folders served by the host's 9P server, mounted once in the utility VM and
 * bound into every distro.
 *
 *   /init jwsl-share mount NAME HOSTPATH virtio:TAG|vsock:PORT [OPTIONS]
 *
 * mounts the share at /run/jwsl/9p/NAME (nothing to do if it is mounted already) and records
 * "NAME HOSTPATH" in /run/jwsl/shares.conf. virtio: the virtio-9p device with mount tag TAG.
 * vsock: a VM socket to the host's port PORT, given to the kernel's 9P client as trans=fd (what
 * WSL does with its hvsocket). OPTIONS are more 9P mount options (msize, cache, ...).
 * A distro's init binds each share at [automount] root + NAME (default /mnt/NAME) with the
 * [automount] options it can apply to a bind mount (ro, noexec, nosuid, nodev), and writes the
 * table wslpath reads. Exit 0, or 1 with one line on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mkdirs.h"
#include "common/vsock.h"
#include "share.h"

#define SHARES_DIR "/run/jwsl/9p" /* not /run/jwsl/shares: that is the distro's wslpath table */
#define SHARES_CONF "/run/jwsl/shares.conf"

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "jwsl-share: %s: %s\n", what, detail);
    return 1;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

static int text_ok(const char *s, int allow_slash)
{
    for (; *s; s++)
        if (*s == ' ' || *s == '\n' || *s == '\t' || (*s == '/' && !allow_slash))
            return 0;
    return 1;
}

static int is_mountpoint(const char *path)
{
    struct stat a, b;
    return stat(path, &a) == 0 && stat(SHARES_DIR, &b) == 0 && a.st_dev != b.st_dev;
}

static int mount_share(const char *name, const char *host, const char *source, const char *extra)
{
    char target[128], opts[1024];
    if (!name_ok(name) || host[0] != '/' || !text_ok(host, 1) || !text_ok(extra, 0) || strlen(host) >= 512)
        return fail(name, "bad share name, host path or options");
    snprintf(target, sizeof(target), SHARES_DIR "/%s", name);
    mkdirs(target, 0755);
    if (is_mountpoint(target))
        return 0;
    /* access=user: each guest user attaches as itself, so a privileged server can give new files
     * to their creator */
    int sock = -1;
    if (strncmp(source, "virtio:", 7) == 0) {
        snprintf(opts, sizeof(opts), "trans=virtio,version=9p2000.L,access=user%s%s", *extra ? "," : "", extra);
        if (mount(source + 7, target, "9p", MS_NOSUID | MS_NODEV, opts) != 0)
            return fail(target, strerror(errno));
    } else if (strncmp(source, "vsock:", 6) == 0) {
        struct jwsl_sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = JWSL_VMADDR_CID_HOST,
                                   .svm_port = (unsigned)atoi(source + 6)};
        sock = socket(AF_VSOCK, SOCK_STREAM, 0);
        if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof(addr)) != 0)
            return fail(source, strerror(errno));
        snprintf(opts, sizeof(opts), "trans=fd,rfdno=%d,wfdno=%d,version=9p2000.L,access=user,aname=%s%s%s", sock,
                 sock, name, *extra ? "," : "", extra);
        int rc = mount(name, target, "9p", MS_NOSUID | MS_NODEV, opts);
        int e = errno;
        close(sock); /* the mount holds its own reference to the socket */
        if (rc != 0)
            return fail(target, strerror(e));
    } else {
        return fail(source, "expected virtio:TAG or vsock:PORT");
    }
    FILE *f = fopen(SHARES_CONF, "ae");
    if (!f || fprintf(f, "%s %s\n", name, host) < 0 || fclose(f) != 0)
        return fail(SHARES_CONF, strerror(errno));
    return 0;
}

int share_main(int argc, char **argv)
{
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "mount") == 0)
        return mount_share(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : "");
    fprintf(stderr, "usage: jwsl-share mount NAME HOSTPATH virtio:TAG|vsock:PORT [OPTIONS]\n");
    return 2;
}

int share_open_all(struct vm_share *out, int max)
{
    FILE *f = fopen(SHARES_CONF, "re");
    if (!f)
        return 0;
    char line[640];
    int n = 0;
    while (n < max && fgets(line, sizeof(line), f)) {
        char *sp = strchr(line, ' '), *nl = strchr(line, '\n');
        if (!sp || !nl)
            continue;
        *sp = *nl = '\0';
        if (!name_ok(line) || strlen(sp + 1) >= sizeof(out[n].host))
            continue;
        char path[128];
        snprintf(path, sizeof(path), SHARES_DIR "/%.32s", line);
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            continue;
        snprintf(out[n].name, sizeof(out[n].name), "%.32s", line);
        snprintf(out[n].host, sizeof(out[n].host), "%s", sp + 1);
        out[n++].fd = fd;
    }
    fclose(f);
    return n;
}

/* The bind-mount flags among [automount] options; the rest (drvfs's uid=, metadata, ...) do not
 * apply to a 9P share. */
static unsigned long bind_flags(const char *options)
{
    unsigned long flags = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", options);
    for (char *save, *o = strtok_r(buf, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        if (strcmp(o, "ro") == 0)
            flags |= MS_RDONLY;
        else if (strcmp(o, "rw") == 0)
            flags &= ~(unsigned long)MS_RDONLY;
        else if (strcmp(o, "noexec") == 0)
            flags |= MS_NOEXEC;
        else if (strcmp(o, "nosuid") == 0)
            flags |= MS_NOSUID;
        else if (strcmp(o, "nodev") == 0)
            flags |= MS_NODEV;
    }
    return flags;
}

void share_bind_all(struct vm_share *s, int n, const struct wslconf *conf)
{
    mkdir("/run/jwsl", 0755);
    FILE *table = fopen("/run/jwsl/shares", "we");
    const char *root = conf->automount_root[0] == '/' ? conf->automount_root : "/mnt/";
    const char *slash = root[strlen(root) - 1] == '/' ? "" : "/";
    unsigned long flags = bind_flags(conf->automount_options);
    for (int i = 0; i < n; i++) {
        char target[600], src[64];
        snprintf(target, sizeof(target), "%s%s%s", root, slash, s[i].name);
        snprintf(src, sizeof(src), "/proc/self/fd/%d", s[i].fd);
        if (conf->automount_enabled) {
            mkdirs(target, 0755);
            if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) == 0) {
                /* always nosuid, nodev: host files must not become guest privileges */
                mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | flags, NULL);
                if (table)
                    fprintf(table, "%s %s %s\n", s[i].name, s[i].host, target);
            }
        }
        close(s[i].fd);
    }
    if (table)
        fclose(table);
}
