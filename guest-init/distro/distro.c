/* jwsl-distro: runs distributions inside the utility VM, each on its own ext4 disk and in its own
 * mount, PID, UTS and IPC namespaces. The host service calls it through the relay:
 *
 *   /init jwsl-distro start NAME DEVICE   mount DEVICE (a virtio serial, or a /dev path) and start
 *                                         the distro's init; prints pid=, default_user=, hostname=
 *   /init jwsl-distro stop NAME           kill the distro's namespace and unmount its disk
 *
 * Exit status 0, 1 with one line on stderr, 3 for "already running" / "not running".
 * The distro's init (PID 1 of its namespace) moves the disk over "/" and chroots into it, mounts /proc, /sys, a
 * private /dev (tmpfs with the usual nodes and its own devpts), /dev/shm, /run and /tmp, sets the
 * hostname, binds the host shares (share.c) and wslpath, honours /etc/wsl.conf and then reaps
 * orphans until it is killed. relayd enters those
 * namespaces for commands (distro_enter). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mkdirs.h"
#include "distro.h"
#include "net/net.h"
#include "share/share.h"
#include "wslconf/wslconf.h"

#define RUN_DIR "/run/jwsl/distros"

int distro_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.' || name[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static int fail(const char *fmt, const char *a, int err)
{
    fprintf(stderr, "jwsl-distro: ");
    fprintf(stderr, fmt, a, err ? strerror(err) : "");
    fputc('\n', stderr);
    return 1;
}

static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* A whole small text file into buf (NUL-terminated); "" if it cannot be read. */
static void read_text(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
}

static int write_small(const char *path, const char *text, mode_t mode)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int ok = n == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* The running distro's init pid, or 0. */
pid_t distro_pid(const char *name)
{
    char path[256], buf[32], stat[64];
    snprintf(path, sizeof(path), RUN_DIR "/%s/pid", name);
    if (read_small(path, buf, sizeof(buf)) != 0)
        return 0;
    pid_t pid = (pid_t)atoi(buf);
    snprintf(stat, sizeof(stat), "/proc/%d/stat", (int)pid);
    char st[512];
    if (pid <= 1 || read_small(stat, st, sizeof(st)) != 0)
        return 0;
    char *r = strrchr(st, ')');
    return r && r[1] == ' ' && r[2] != 'Z' ? pid : 0;
}

/* DEVICE: a /dev path, or the virtio serial of a disk with a medium. */
static int find_device(const char *device, char *out, size_t len)
{
    if (strncmp(device, "/dev/", 5) == 0) {
        snprintf(out, len, "%s", device);
        return 0;
    }
    for (char c = 'a'; c <= 'z'; c++) {
        char path[64], serial[64], size[32], dev[32];
        snprintf(path, sizeof(path), "/sys/block/vd%c/serial", c);
        if (read_small(path, serial, sizeof(serial)) != 0 || strcmp(serial, device) != 0)
            continue;
        snprintf(path, sizeof(path), "/sys/block/vd%c/size", c);
        if (read_small(path, size, sizeof(size)) != 0 || strcmp(size, "0") == 0)
            return -1;
        snprintf(path, sizeof(path), "/sys/block/vd%c/dev", c);
        unsigned maj, min;
        if (read_small(path, dev, sizeof(dev)) != 0 || sscanf(dev, "%u:%u", &maj, &min) != 2)
            return -1;
        snprintf(out, len, "/dev/vd%c", c);
        struct stat st;
        if (stat(out, &st) != 0 && mknod(out, S_IFBLK | 0600, makedev(maj, min)) != 0)
            return -1;
        return 0;
    }
    return -1;
}

/* A private /dev: tmpfs with the standard nodes, its own devpts, /dev/shm. */
static int make_dev(void)
{
    static const struct {
        const char *name;
        unsigned maj, min;
        mode_t mode;
    } nodes[] = {{"null", 1, 3, 0666}, {"zero", 1, 5, 0666}, {"full", 1, 7, 0666}, {"random", 1, 8, 0666},
                 {"urandom", 1, 9, 0666}, {"tty", 5, 0, 0666}, {"kmsg", 1, 11, 0644}};
    mkdir("/dev", 0755);
    if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k") != 0)
        return -1;
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/dev/%s", nodes[i].name);
        mknod(path, S_IFCHR | nodes[i].mode, makedev(nodes[i].maj, nodes[i].min));
        chmod(path, nodes[i].mode);
    }
    mkdir("/dev/pts", 0755);
    mkdir("/dev/shm", 01777);
    if (mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5") != 0)
        return -1;
    symlink("pts/ptmx", "/dev/ptmx");
    symlink("/proc/self/fd", "/dev/fd");
    symlink("/proc/self/fd/0", "/dev/stdin");
    symlink("/proc/self/fd/1", "/dev/stdout");
    symlink("/proc/self/fd/2", "/dev/stderr");
    return mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
}

/* Hostname from wsl.conf or the distro name, reduced to what a hostname may hold. */
static void hostname_for(const struct wslconf *conf, const char *name, char *out, size_t len)
{
    const char *src = conf->hostname[0] ? conf->hostname : name;
    size_t j = 0;
    for (size_t i = 0; src[i] && j + 1 < len && j < 63; i++) {
        char c = src[i];
        out[j++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') ? c : '-';
    }
    out[j] = '\0';
    if (j == 0)
        snprintf(out, len, "localhost");
}

/* wslpath in the distro, as WSL has it: the init binary bound over /usr/bin/wslpath (an empty
 * file is made there the first time, like WSL's /init). */
static void bind_wslpath(int initfd)
{
    struct stat st;
    if (initfd < 0)
        return;
    if (stat("/usr/bin", &st) == 0 && S_ISDIR(st.st_mode)) {
        int fd = open("/usr/bin/wslpath", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
        if (fd >= 0)
            close(fd);
        if (lstat("/usr/bin/wslpath", &st) == 0 && S_ISREG(st.st_mode)) {
            char src[64];
            snprintf(src, sizeof(src), "/proc/self/fd/%d", initfd);
            if (mount(src, "/usr/bin/wslpath", NULL, MS_BIND, NULL) == 0)
                mount(NULL, "/usr/bin/wslpath", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
        }
    }
    close(initfd);
}

/* [automount] mountFsTab: "mount -a" when /etc/fstab holds an entry (a fork and exec cost
 * seconds of emulated kernel time here; Debian's stock fstab has only comments). */
static void mount_fstab(void)
{
    FILE *f = fopen("/etc/fstab", "re");
    if (!f)
        return;
    char line[512];
    int any = 0;
    while (!any && fgets(line, sizeof(line), f)) {
        char *p = line + strspn(line, " \t");
        any = *p && *p != '#' && *p != '\n';
    }
    fclose(f);
    if (!any)
        return;
    pid_t m = fork();
    if (m == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execl("/bin/sh", "sh", "-c", "mount -a", (char *)NULL);
        _exit(127);
    }
    if (m > 0)
        waitpid(m, NULL, 0);
}

/* In the new namespaces: become the distro's init. Reports "ok\n<key=value lines>" or an error
 * line on report, then never returns. */
static void __attribute__((noreturn)) distro_init(const char *name, const char *root, int report)
{
    char msg[1024], host[64];
    struct wslconf conf;
    setsid();
    /* What must be reached from the VM's side of the mount tree, held open across the chroot. */
    struct vm_share shares[SHARE_MAX];
    int nshares = share_open_all(shares, SHARE_MAX);
    int initfd = open("/init", O_PATH | O_CLOEXEC);
    char resolv[512], net_hosts[256];
    read_text(JWSL_NET_RESOLV, resolv, sizeof(resolv));
    read_text(JWSL_NET_HOSTS, net_hosts, sizeof(net_hosts));
    /* The utility VM's root is the initramfs (rootfs), which pivot_root cannot move away from:
     * move the distro's mount over "/" and chroot, as switch_root does. setns() into this mount
     * namespace lands on the top mount of "/", the distro (the kernel looks up "/" with
     * LOOKUP_DOWN). */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 || chdir(root) != 0 ||
        mount(root, "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0 || chdir("/") != 0) {
        snprintf(msg, sizeof(msg), "cannot enter the root file system: %s", strerror(errno));
        goto fail;
    }
    mkdir("/proc", 0555);
    mkdir("/sys", 0555);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0 ||
        mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0 || make_dev() != 0) {
        snprintf(msg, sizeof(msg), "cannot mount /proc, /sys or /dev: %s", strerror(errno));
        goto fail;
    }
    mkdir("/run", 0755);
    mkdir("/tmp", 01777);
    if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") != 0 ||
        mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
        snprintf(msg, sizeof(msg), "cannot mount /run or /tmp: %s", strerror(errno));
        goto fail;
    }
    mkdir("/run/lock", 01777);
    wslconf_load("/etc/wsl.conf", &conf);
    share_bind_all(shares, nshares, &conf);
    bind_wslpath(initfd);
    if (conf.mount_fstab)
        mount_fstab();
    hostname_for(&conf, name, host, sizeof(host));
    sethostname(host, strlen(host));
    if (conf.generate_hosts) {
        char hosts[1024];
        snprintf(hosts, sizeof(hosts),
                 "# Generated by jwsl at distro start ([network] generateHosts = false in /etc/wsl.conf stops it)\n"
                 "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n%s",
                 host, net_hosts);
        write_small("/etc/hosts", hosts, 0644);
    }
    /* Replaces a symlink too (systemd-resolved's stub), as WSL does. */
    if (conf.generate_resolv_conf && resolv[0])
        write_small("/etc/resolv.conf", resolv, 0644);
    if (conf.boot_command[0]) {
        pid_t b = fork();
        if (b == 0) {
            int null = open("/dev/null", O_RDWR);
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            setsid();
            execl("/bin/sh", "sh", "-c", conf.boot_command, (char *)NULL);
            _exit(127);
        }
    }
    int n = snprintf(msg, sizeof(msg), "ok\ndefault_user=%s\nhostname=%s\n", conf.default_user, host);
    write(report, msg, (size_t)n);
    close(report);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    for (int i = 3; i < 1024; i++)
        close(i);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL); /* PID 1 of the namespace: only SIGKILL from outside ends it */
    for (;;) {
        if (wait(NULL) < 0 && errno == ECHILD)
            pause();
    }
fail:
    write(report, msg, strlen(msg));
    _exit(1);
}

static int start(const char *name, const char *device)
{
    char dir[256], root[300], dev[64], pidfile[300];
    if (distro_pid(name))
        return fprintf(stderr, "jwsl-distro: %s is already running\n", name), 3;
    if (find_device(device, dev, sizeof(dev)) != 0)
        return fail("no disk %s in the utility VM%s", device, 0);
    snprintf(dir, sizeof(dir), RUN_DIR "/%s", name);
    snprintf(root, sizeof(root), "%s/root", dir);
    mkdirs(root, 0700);
    if (mount(dev, root, "ext4", MS_NOATIME, NULL) != 0) {
        int e = errno;
        rmdir(root);
        return fail(e == EINVAL ? "%s does not hold an ext4 file system%s" : "cannot mount %s: %s", dev,
                    e == EINVAL ? 0 : e);
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return fail("pipe%s: %s", "", errno);
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) {
        close(p[0]);
        distro_init(name, root, p[1]);
    }
    close(p[1]);
    char buf[1024];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(buf) - 1 && ((n = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
        got += n > 0 ? (size_t)n : 0;
    buf[got] = '\0';
    close(p[0]);
    if (pid < 0 || strncmp(buf, "ok\n", 3) != 0) {
        int e = errno;
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        umount2(root, 0);
        rmdir(root);
        return fail("%s", pid < 0 ? strerror(e) : buf, 0);
    }
    char text[32];
    snprintf(text, sizeof(text), "%d\n", (int)pid);
    snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
    if (write_small(pidfile, text, 0600) != 0) {
        kill(pid, SIGKILL);
        return fail("cannot record %s: %s", pidfile, errno);
    }
    printf("pid=%d\n%s", (int)pid, buf + 3);
    return 0;
}

static int stop(const char *name)
{
    char root[300], pidfile[300];
    pid_t pid = distro_pid(name);
    snprintf(root, sizeof(root), RUN_DIR "/%s/root", name);
    snprintf(pidfile, sizeof(pidfile), RUN_DIR "/%s/pid", name);
    if (pid)
        kill(pid, SIGKILL);
    /* PID 1 of the VM reaps it; until then it is a zombie, which distro_pid counts as gone. */
    for (int i = 0; i < 500 && distro_pid(name); i++)
        usleep(10000);
    unlink(pidfile);
    sync();
    int rc = -1;
    for (int i = 0; i < 100 && (rc = umount2(root, 0)) != 0 && errno == EBUSY; i++)
        usleep(50000); /* the namespace's mounts go when its last process is gone */
    if (rc != 0 && errno == EBUSY)
        rc = umount2(root, MNT_DETACH);
    int err = errno;
    rmdir(root);
    char dir[256];
    snprintf(dir, sizeof(dir), RUN_DIR "/%s", name);
    rmdir(dir);
    if (!pid && rc != 0)
        return fprintf(stderr, "jwsl-distro: %s is not running\n", name), 3;
    if (rc != 0)
        return fail("cannot unmount %s: %s", root, err);
    return 0;
}

int distro_main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "start") == 0 && distro_name_ok(argv[2]))
        return start(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "stop") == 0 && distro_name_ok(argv[2]))
        return stop(argv[2]);
    if (argc == 3 && strcmp(argv[1], "wslconf") == 0) {
        struct wslconf c;
        wslconf_load(argv[2], &c);
        printf("default_user=%s\nboot_command=%s\nhostname=%s\ngenerate_hosts=%d\ngenerate_resolv_conf=%d\n"
               "automount_enabled=%d\nautomount_root=%s\nautomount_options=%s\nmount_fstab=%d\n",
               c.default_user, c.boot_command, c.hostname, c.generate_hosts, c.generate_resolv_conf,
               c.automount_enabled, c.automount_root, c.automount_options, c.mount_fstab);
        return 0;
    }
    fprintf(stderr, "usage: jwsl-distro start NAME DEVICE | stop NAME | wslconf FILE (NAME: [A-Za-z0-9._-], 1-64)\n");
    return 2;
}

/* relayd: moves the calling (single-threaded) process into NAME's namespaces; its next child is
 * inside the distro's PID namespace. Returns 0, or -1 with msg set. */
int distro_enter(const char *name, char *msg, size_t len)
{
    static const char *kinds[] = {"ipc", "uts", "pid", "mnt"};
    int fds[4];
    pid_t pid;
    if (!distro_name_ok(name) || !(pid = distro_pid(name))) {
        snprintf(msg, len, "distribution %s is not running", name);
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, kinds[i]);
        if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            snprintf(msg, len, "cannot enter %s: %s", name, strerror(errno));
            while (i-- > 0)
                close(fds[i]);
            return -1;
        }
    }
    int rc = 0;
    for (int i = 0; i < 4; i++) {
        if (rc == 0 && setns(fds[i], 0) != 0) {
            snprintf(msg, len, "cannot enter %s (%s namespace): %s", name, kinds[i], strerror(errno));
            rc = -1;
        }
        close(fds[i]);
    }
    return rc;
}
