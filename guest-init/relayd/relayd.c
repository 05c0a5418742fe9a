/* relayd: the guest side of the command relay (relay_protocol.h).
 *
 * The listener accepts connections and forks one session handler per connection; it reaps them
 * through a signalfd. A session handler reads CREATE, resolves the user from /etc/passwd (no
 * NSS), starts the command in a new session (on a pty, or with three pipes) and relays frames
 * with poll() until the command has exited and its output is drained; then it sends EXIT.
 *
 * Memory is bounded: one host frame and one outgoing frame at most. A STDIN frame is not read
 * until the previous one is written to the command, and the command's output is not read while
 * an outgoing frame is unsent, so a slow side stalls the other instead of filling a buffer.
 * Host frames are handled in order: a SIGNAL or RESIZE behind a STDIN frame that the command does
 * not read waits with it (the host can still hang up, which is noticed at once).
 *
 * If the host goes away first, the command's process group gets SIGHUP, and SIGKILL 5 s later
 * if it still has members. The session handler is a child subreaper, so that orphans of the
 * command are reaped at once and zombies do not count as members.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "protocol/relay_protocol.h"
#include "common/exec.h"
#include "relayd.h"
#include "common/sockets.h"
#include "wslpath/wslpath.h"
#include "distro/distro.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif


#define HDR JWSL_RELAY_HEADER_SIZE
#define MAX_PAYLOAD JWSL_RELAY_MAX_PAYLOAD
#define MAX_STRINGS 1024          /* argv entries, and env entries, in a CREATE */
/* No limit on the wait for the CREATE frame: a client on a loaded host can take minutes from
 * connecting to sending it (100 `wsl` calls at once on one emulated CPU: a 300 s limit here reset
 * a healthy call's connection, issue 29). A client that dies closes its connection, and the VMM
 * bounds how many connections the host holds open. Sending an ERROR frame is bounded: a host
 * that reads nothing must not keep the session process for ever. */
#define ERROR_SEND_TIMEOUT_S 60
#define HANGUP_GRACE_MS 5000      /* SIGHUP -> SIGKILL when the host goes away */
#define LINGER_MS 2000            /* reading the host's last frames before closing */
#define MAX_SIGNAL 64
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC 4
#endif

extern char **environ;

static void say(const char *fmt, const char *arg)
{
    dprintf(2, "relayd: ");
    dprintf(2, fmt, arg);
    dprintf(2, "\n");
}

/* ---- I/O helpers ---- */

/* Reads exactly len bytes; -1 on error or end of file (errno 0). */
static int read_full(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = 0;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    put_u16(p, v & 0xffff);
    put_u16(p + 2, v >> 16);
}

static unsigned get_u16(const unsigned char *p)
{
    return p[0] | (unsigned)p[1] << 8;
}

static uint32_t get_u32(const unsigned char *p)
{
    return get_u16(p) | (uint32_t)get_u16(p + 2) << 16;
}

static void put_header(unsigned char *p, unsigned type, size_t len)
{
    put_u16(p, type);
    put_u16(p + 2, 0);
    put_u32(p + 4, (uint32_t)len);
}

/* Sends ERROR on a blocking socket: one line, control characters replaced. */
static void send_error(int conn, const char *msg)
{
    unsigned char frame[HDR + 512];
    size_t len = strlen(msg);
    if (len > sizeof(frame) - HDR)
        len = sizeof(frame) - HDR;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        frame[HDR + i] = c < 0x20 || c == 0x7f ? '?' : c;
    }
    put_header(frame, JWSL_RELAY_ERROR, len);
    write_full(conn, frame, HDR + len);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* When the listener accepted this session's connection, and the stages since (STARTED's payload). */
static long long accepted_us;
static uint32_t stage_us[JWSL_RELAY_STAGES];
enum { STAGE_FORKED, STAGE_CREATE, STAGE_NAMESPACES, STAGE_USER, STAGE_EXEC };

static void stage(int i)
{
    stage_us[i] = (uint32_t)(now_us() - accepted_us);
}

/* ---- CREATE ---- */

struct create {
    int tty;
    unsigned short rows, cols;
    const char *user, *cwd, *distro;
    int argc, envc;
    char *argv[MAX_STRINGS + 1];
    char *env[MAX_STRINGS + 5]; /* + HOME, USER, LOGNAME, SHELL, NULL */
};

/* Takes the next NUL-terminated string of the payload; NULL if there is none. */
static char *next_string(char *p, size_t len, size_t *pos)
{
    char *s = p + *pos, *end;
    if (*pos >= len || !(end = memchr(s, '\0', len - *pos)))
        return NULL;
    *pos += (size_t)(end - s) + 1;
    return s;
}

/* Parses a CREATE payload in place; returns NULL or what is wrong with it. */
static const char *parse_create(char *p, size_t len, struct create *c)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t pos = 8;
    if (len < 8)
        return "CREATE payload too short";
    unsigned tty = get_u16(u);
    c->rows = (unsigned short)get_u16(u + 2);
    c->cols = (unsigned short)get_u16(u + 4);
    c->argc = (int)get_u16(u + 6);
    if (tty > 1)
        return "CREATE tty flag is not 0 or 1";
    c->tty = (int)tty;
    if (c->argc > MAX_STRINGS)
        return "CREATE has more than 1024 arguments";
    if (!(c->user = next_string(p, len, &pos)) || !(c->cwd = next_string(p, len, &pos)) ||
        !(c->distro = next_string(p, len, &pos)))
        return "CREATE user, cwd or distro missing or not NUL-terminated";
    for (int i = 0; i < c->argc; i++) {
        if (!(c->argv[i] = next_string(p, len, &pos)))
            return "CREATE argv missing or not NUL-terminated";
    }
    c->argv[c->argc] = NULL;
    c->envc = 0;
    while (pos < len) {
        char *e = next_string(p, len, &pos);
        if (!e)
            return "CREATE env entry not NUL-terminated";
        if (c->envc == MAX_STRINGS)
            return "CREATE has more than 1024 env entries";
        if (e[0] == '=' || !strchr(e, '='))
            return "CREATE env entry is not K=V";
        c->env[c->envc++] = e;
    }
    c->env[c->envc] = NULL;
    return NULL;
}

/* ---- users ---- */

struct user {
    char name[256], home[1024], shell[1024];
    uid_t uid;
    gid_t gid;
};

static int parse_id(const char *s, unsigned long *out)
{
    char *end;
    if (!*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return *end || errno || *out > 0xfffffffful ? -1 : 0;
}

/* Finds name in /etc/passwd ("" = root); root exists even without an entry. 0 if found. */
static int lookup_user(const char *name, struct user *u)
{
    char line[4096];
    int found = 0;
    if (!*name)
        name = "root";
    FILE *f = fopen("/etc/passwd", "re");
    while (f && !found && fgets(line, sizeof(line), f)) {
        char *field[7], *p = line;
        int n = 0;
        line[strcspn(line, "\n")] = '\0';
        while (n < 7) {
            field[n++] = p;
            p = strchr(p, ':');
            if (!p)
                break;
            *p++ = '\0';
        }
        unsigned long uid, gid;
        if (n < 7 || strcmp(field[0], name) != 0 || parse_id(field[2], &uid) || parse_id(field[3], &gid))
            continue;
        snprintf(u->name, sizeof(u->name), "%s", field[0]);
        snprintf(u->home, sizeof(u->home), "%s", *field[5] ? field[5] : "/");
        snprintf(u->shell, sizeof(u->shell), "%s", *field[6] ? field[6] : "/bin/sh");
        u->uid = (uid_t)uid;
        u->gid = (gid_t)gid;
        found = 1;
    }
    if (f)
        fclose(f);
    if (!found && strcmp(name, "root") == 0) {
        *u = (struct user){.name = "root", .home = "/root", .shell = "/bin/sh"};
        found = 1;
    }
    return found ? 0 : -1;
}

/* ---- the command ---- */

struct session {
    int conn, sfd;
    int tty, master;     /* master: the pty master, -1 for pipes */
    int in_fd;           /* the command's stdin (pipe or master); -1 once closed or broken */
    int out_fd[2];       /* its stdout and stderr (pty: master, -1); -1 at end of file */
    pid_t pid;
    int exited, status;  /* exited: reaped, status is its wait status */
    int exit_sent;
    /* host -> guest: the frame being received */
    unsigned char hdr[HDR];
    size_t hdr_len;
    unsigned type;
    size_t plen, pgot;
    unsigned char ctrl[4];
    unsigned char stdin_buf[MAX_PAYLOAD];
    size_t in_off, in_len; /* unwritten stdin: stdin_buf[in_off .. in_len) */
    int stdin_eof;         /* pipes: STDIN_EOF seen */
    /* guest -> host: one frame being sent */
    unsigned char out[HDR + MAX_PAYLOAD];
    size_t out_off, out_len;
    int next_out;
};

static struct session S;
static char create_buf[MAX_PAYLOAD + 1];
static struct create C;

static void __attribute__((noreturn)) child_fail(int errfd, const char *fmt, const char *a, int err)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), fmt, a, strerror(err));
    if (n > 0)
        write_full(errfd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    _exit(127);
}

static int has_var(char **env, int n, const char *key)
{
    size_t k = strlen(key);
    for (int i = 0; i < n; i++) {
        if (strncmp(env[i], key, k) == 0 && env[i][k] == '=')
            return 1;
    }
    return 0;
}

static void add_var(char **env, int *n, const char *key, const char *value)
{
    if (has_var(env, *n, key))
        return;
    size_t len = strlen(key) + strlen(value) + 2;
    char *s = malloc(len);
    if (!s)
        return;
    snprintf(s, len, "%s=%s", key, value);
    env[(*n)++] = s;
    env[*n] = NULL;
}

/* In the forked child: becomes the command. Failures go to errfd as one line. */
static void __attribute__((noreturn)) child_exec(struct create *c, struct user *u, int slave,
                                                 const int fds[3], int errfd)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int i = 1; i < NSIG; i++) {
        if (i != SIGKILL && i != SIGSTOP)
            signal(i, SIG_DFL);
    }
    if (setsid() < 0)
        child_fail(errfd, "%ssetsid: %s", "", errno);
    if (slave >= 0) {
        if (ioctl(slave, TIOCSCTTY, 0) < 0)
            child_fail(errfd, "%scannot set the controlling terminal: %s", "", errno);
        for (int i = 0; i < 3; i++)
            dup2(slave, i);
    } else {
        for (int i = 0; i < 3; i++)
            dup2(fds[i], i);
    }
    /* Everything else is close-on-exec. */
    if (geteuid() == 0 || getuid() != u->uid || getgid() != u->gid) {
        if (setgroups(1, &u->gid) != 0 || setgid(u->gid) != 0 || setuid(u->uid) != 0)
            child_fail(errfd, "cannot switch to user %s: %s", u->name, errno);
    }
    char mapped[4096];
    if (strncmp(c->cwd, JWSL_RELAY_HOST_CWD, strlen(JWSL_RELAY_HOST_CWD)) == 0) {
        /* The host directory wsl ran in: its place on the shares, else home, as WSL does with
         * a Windows directory it cannot translate. */
        if (wslpath_host_to_guest(c->cwd + strlen(JWSL_RELAY_HOST_CWD), mapped, sizeof(mapped)) != 0 || chdir(mapped) != 0) {
            if (chdir(u->home) != 0 && chdir("/") != 0)
                child_fail(errfd, "cannot change directory to %s: %s", "/", errno);
        }
    } else if (*c->cwd) {
        if (chdir(c->cwd) != 0)
            child_fail(errfd, "cannot change directory to %s: %s", c->cwd, errno);
    } else if (chdir(u->home) != 0 && chdir("/") != 0) {
        child_fail(errfd, "cannot change directory to %s: %s", "/", errno);
    }
    add_var(c->env, &c->envc, "HOME", u->home);
    add_var(c->env, &c->envc, "USER", u->name);
    add_var(c->env, &c->envc, "LOGNAME", u->name);
    add_var(c->env, &c->envc, "SHELL", u->shell);
    environ = c->env;

    const char *file = c->argv[0];
    char login[1100];
    if (c->argc == 0) {
        const char *base = strrchr(u->shell, '/');
        snprintf(login, sizeof(login), "-%s", base ? base + 1 : u->shell);
        c->argv[0] = login;
        c->argv[1] = NULL;
        file = u->shell;
    }
    int err = exec_command(file, c->argv);
    if (err == ENOENT && !strchr(file, '/'))
        child_fail(errfd, "%s: command not found", file, 0);
    child_fail(errfd, "%s: %s", file, err);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Starts the command; returns its pid, or -1 with msg set. */
static pid_t spawn(struct session *s, struct create *c, struct user *u, char *msg, size_t msglen)
{
    int errp[2], in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, slave = -1;
    pid_t pid = -1;

    if (pipe2(errp, O_CLOEXEC) != 0) {
        snprintf(msg, msglen, "pipe: %s", strerror(errno));
        return -1;
    }
    if (c->tty) {
        int unlock = 0;
        struct winsize ws = {.ws_row = c->rows, .ws_col = c->cols};
        s->master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s->master < 0 || ioctl(s->master, TIOCSPTLCK, &unlock) != 0) {
            snprintf(msg, msglen, "cannot open a pty: %s", strerror(errno));
            goto out;
        }
        slave = ioctl(s->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0) { /* kernel < 4.13 */
            unsigned n;
            char path[64];
            if (ioctl(s->master, TIOCGPTN, &n) == 0) {
                snprintf(path, sizeof(path), "/dev/pts/%u", n);
                slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
            }
        }
        if (slave < 0) {
            snprintf(msg, msglen, "cannot open the pty slave: %s", strerror(errno));
            goto out;
        }
        if (fchown(slave, u->uid, (gid_t)-1) != 0 || fchmod(slave, 0620) != 0) {
            /* not fatal: the command has its descriptors already */
        }
        ioctl(s->master, TIOCSWINSZ, &ws);
        fcntl(s->master, F_SETFL, O_NONBLOCK);
        s->in_fd = s->out_fd[0] = s->master;
    } else {
        if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
            snprintf(msg, msglen, "pipe: %s", strerror(errno));
            goto out;
        }
        fcntl(in[1], F_SETFL, O_NONBLOCK);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(err[0], F_SETFL, O_NONBLOCK);
    }

    pid = fork();
    if (pid == 0) {
        const int fds[3] = {in[0], out[1], err[1]};
        close(errp[0]);
        child_exec(c, u, slave, fds, errp[1]);
    }
    if (pid < 0) {
        snprintf(msg, msglen, "fork: %s", strerror(errno));
        goto out;
    }
    close_fd(&errp[1]);
    /* The command writes a message here if it cannot exec; end of file means it did. */
    size_t got = 0;
    for (;;) {
        ssize_t n = read(errp[0], msg + got, msglen - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (got += (size_t)n) == msglen - 1)
            break;
    }
    msg[got] = '\0';
    if (got > 0) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        pid = -1;
    }
out:
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&slave);
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    if (pid > 0) {
        if (!c->tty) {
            s->in_fd = in[1];
            s->out_fd[0] = out[0];
            s->out_fd[1] = err[0];
        }
        return pid;
    }
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&err[0]);
    close_fd(&s->master);
    s->in_fd = s->out_fd[0] = -1;
    return -1;
}

/* ---- relaying ---- */

static void queue_frame(struct session *s, unsigned type, const void *payload, size_t len)
{
    put_header(s->out, type, len);
    if (len)
        memcpy(s->out + HDR, payload, len);
    s->out_off = 0;
    s->out_len = HDR + len;
}

static void close_stdin(struct session *s)
{
    if (s->in_fd >= 0 && s->in_fd != s->master)
        close(s->in_fd);
    s->in_fd = -1;
    s->in_len = s->in_off = 0;
}

static void close_output(struct session *s, int i)
{
    if (s->out_fd[i] >= 0 && s->out_fd[i] != s->master)
        close(s->out_fd[i]);
    s->out_fd[i] = -1;
    if (s->tty) /* the slave side is gone: nothing more can be written either */
        close_stdin(s);
}

static void handle_frame(struct session *s)
{
    switch (s->type) {
    case JWSL_RELAY_STDIN:
        if (s->in_fd >= 0 && !s->stdin_eof) {
            s->in_off = 0;
            s->in_len = s->plen;
        }
        break;
    case JWSL_RELAY_STDIN_EOF:
        if (s->tty) {
            struct termios t;
            if (s->in_fd >= 0) {
                s->stdin_buf[0] = tcgetattr(s->master, &t) == 0 ? t.c_cc[VEOF] : 4;
                s->in_off = 0;
                s->in_len = 1;
            }
        } else {
            s->stdin_eof = 1;
            close_stdin(s);
        }
        break;
    case JWSL_RELAY_RESIZE:
        if (s->tty) {
            struct winsize ws = {.ws_row = (unsigned short)get_u16(s->ctrl),
                                 .ws_col = (unsigned short)get_u16(s->ctrl + 2)};
            ioctl(s->master, TIOCSWINSZ, &ws);
        }
        break;
    case JWSL_RELAY_SIGNAL: {
        uint32_t sig = get_u32(s->ctrl);
        if (sig >= 1 && sig <= MAX_SIGNAL)
            kill(-s->pid, (int)sig);
        break;
    }
    }
}

/* Why the session ends without its command's exit status, for the console: -1. */
static int host_gone(const char *why)
{
    say("a session ends before its command did: %s", why);
    return -1;
}

/* Reads and handles host frames until the socket would block or STDIN must wait for the
 * command. Returns -1 when the host is gone or breaks the protocol. */
static int pump_host(struct session *s)
{
    for (;;) {
        ssize_t n;
        if (s->hdr_len < HDR) {
            n = read(s->conn, s->hdr + s->hdr_len, HDR - s->hdr_len);
            if (n == 0)
                return host_gone("the host closed the connection");
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : host_gone(strerror(errno));
            s->hdr_len += (size_t)n;
            if (s->hdr_len < HDR)
                continue;
            s->type = get_u16(s->hdr);
            s->plen = get_u32(s->hdr + 4);
            s->pgot = 0;
            if (s->plen > MAX_PAYLOAD)
                return host_gone("a frame over the payload limit");
            switch (s->type) {
            case JWSL_RELAY_STDIN:
                break;
            case JWSL_RELAY_STDIN_EOF:
                if (s->plen != 0)
                    return host_gone("a malformed STDIN_EOF frame");
                break;
            case JWSL_RELAY_RESIZE:
            case JWSL_RELAY_SIGNAL:
                if (s->plen != 4)
                    return host_gone("a malformed RESIZE or SIGNAL frame");
                break;
            default:
                return host_gone("a frame of an unknown type");
            }
        }
        int data = s->type == JWSL_RELAY_STDIN || s->type == JWSL_RELAY_STDIN_EOF;
        if (data && s->in_len > s->in_off)
            return 0; /* the previous STDIN is not written yet */
        if (s->pgot < s->plen) {
            unsigned char *dst = s->type == JWSL_RELAY_STDIN ? s->stdin_buf : s->ctrl;
            n = read(s->conn, dst + s->pgot, s->plen - s->pgot);
            if (n == 0)
                return host_gone("the host closed the connection in a frame");
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : host_gone(strerror(errno));
            s->pgot += (size_t)n;
            if (s->pgot < s->plen)
                continue;
        }
        handle_frame(s);
        s->hdr_len = 0;
    }
}

static void write_stdin(struct session *s)
{
    ssize_t n = write(s->in_fd, s->stdin_buf + s->in_off, s->in_len - s->in_off);
    if (n > 0) {
        s->in_off += (size_t)n;
        if (s->in_off == s->in_len)
            s->in_off = s->in_len = 0;
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        close_stdin(s); /* the command closed its stdin: drop what it will never read */
    }
}

/* Reads the command's output: into an outgoing frame, or into nothing once the host is gone. */
static void read_output(struct session *s, int i, int discard)
{
    ssize_t n = read(s->out_fd[i], s->out + HDR, MAX_PAYLOAD);
    if (n > 0 && !discard) {
        put_header(s->out, i == 0 ? JWSL_RELAY_STDOUT : JWSL_RELAY_STDERR, (size_t)n);
        s->out_off = 0;
        s->out_len = HDR + (size_t)n;
        s->next_out = !i;
    } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close_output(s, i); /* pipes: end of file; pty: EIO once the slave is closed */
    }
}

/* Reaps the command (waiting for it if block), and any orphan of its that was reparented here. */
static void reap(struct session *s, int block)
{
    int status;
    pid_t r;
    if (block && !s->exited) {
        while ((r = waitpid(s->pid, &status, 0)) < 0 && errno == EINTR)
            ;
        if (r == s->pid) {
            s->exited = 1;
            s->status = status;
        }
    }
    while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
        if (r == s->pid) {
            s->exited = 1;
            s->status = status;
        }
    }
}

static void drain_signalfd(struct session *s)
{
    struct signalfd_siginfo si;
    while (read(s->sfd, &si, sizeof(si)) == sizeof(si))
        ;
}

/* Whether the process group has members left (the command itself may be reaped already). */
static int group_alive(pid_t pgid)
{
    return kill(-pgid, 0) == 0 || errno != ESRCH;
}

/* The host is gone: SIGHUP (and SIGCONT, as a terminal hangup does) to the process group, and
 * SIGKILL if it still has members after the grace period. A command that has exited and closed
 * its output is left alone, as it would be had EXIT been sent. */
static void hang_up(struct session *s)
{
    shutdown(s->conn, SHUT_WR); /* a host that broke the protocol sees the end at once */
    if (s->exited && s->out_fd[0] < 0 && s->out_fd[1] < 0)
        return;
    kill(-s->pid, SIGHUP);
    kill(-s->pid, SIGCONT);
    if (!s->tty)
        close_stdin(s);
    long long deadline = now_ms() + HANGUP_GRACE_MS;
    while (!s->exited || group_alive(s->pid)) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            kill(-s->pid, SIGKILL);
            reap(s, 1);
            break;
        }
        /* Keep reading the output so that a command writing on its way out does not block.
         * Members other than the command are not our children: poll for them. */
        struct pollfd p[3] = {{.fd = s->sfd, .events = POLLIN},
                              {.fd = s->out_fd[0], .events = POLLIN},
                              {.fd = s->out_fd[1], .events = POLLIN}};
        if (poll(p, 3, s->exited && left > 100 ? 100 : (int)left) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            if (s->out_fd[i] >= 0 && p[i + 1].revents)
                read_output(s, i, 1);
        }
        if (p[0].revents) {
            drain_signalfd(s);
            reap(s, 0);
        }
    }
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

static void relay(struct session *s)
{
    for (;;) {
        if (s->exited && s->out_fd[0] < 0 && s->out_fd[1] < 0 && s->out_len == 0) {
            if (s->exit_sent)
                return;
            unsigned char code[4];
            put_u32(code, (uint32_t)exit_code(s->status));
            queue_frame(s, JWSL_RELAY_EXIT, code, 4);
            s->exit_sent = 1;
        }
        int want_host = s->hdr_len < HDR || s->in_len == s->in_off ||
                        !(s->type == JWSL_RELAY_STDIN || s->type == JWSL_RELAY_STDIN_EOF);
        struct pollfd p[5] = {
            {.fd = s->sfd, .events = POLLIN},
            {.fd = s->conn, .events = (short)((want_host ? POLLIN : 0) | (s->out_len ? POLLOUT : 0))},
            {.fd = s->in_len > s->in_off ? s->in_fd : -1, .events = POLLOUT},
            {.fd = s->out_len ? -1 : s->out_fd[0], .events = POLLIN},
            {.fd = s->out_len ? -1 : s->out_fd[1], .events = POLLIN},
        };
        if (poll(p, 5, -1) < 0) {
            if (errno == EINTR)
                continue;
            say("poll: %s", strerror(errno));
            hang_up(s);
            return;
        }
        if (p[0].revents) {
            drain_signalfd(s);
            reap(s, 0);
        }
        if (p[1].revents & POLLOUT) {
            ssize_t n = write(s->conn, s->out + s->out_off, s->out_len - s->out_off);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                host_gone(strerror(errno));
                hang_up(s);
                return;
            }
            if (n > 0 && (s->out_off += (size_t)n) == s->out_len)
                s->out_off = s->out_len = 0;
        }
        if (p[2].revents)
            write_stdin(s);
        /* Host frames; or a frame that waited for the previous STDIN to be written. */
        int host_ready = p[1].revents & (POLLIN | POLLHUP | POLLERR);
        if ((host_ready && want_host) || (s->hdr_len == HDR && s->in_len == 0)) {
            if (pump_host(s) < 0) {
                hang_up(s);
                return;
            }
        } else if (p[1].revents & (POLLHUP | POLLERR)) {
            host_gone(p[1].revents & POLLERR ? "connection error" : "connection hung up");
            hang_up(s);
            return;
        }
        if (s->exit_sent && s->out_len == 0)
            return;
        for (int k = 0; k < 2 && s->out_len == 0; k++) {
            int i = (s->next_out + k) & 1;
            if (s->out_fd[i] >= 0 && p[3 + i].revents)
                read_output(s, i, 0);
        }
    }
}

/* One connection, in its own process. */
static void session(int conn)
{
    struct session *s = &S;
    unsigned char hdr[HDR];
    char msg[512];
    struct user user;
    struct timeval tv = {.tv_sec = ERROR_SEND_TIMEOUT_S};
    sigset_t chld;

    *s = (struct session){.conn = conn, .master = -1, .in_fd = -1, .out_fd = {-1, -1}, .sfd = -1};
    stage(STAGE_FORKED);
    setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (read_full(conn, hdr, HDR) != 0) {
        if (errno != 0) /* N.B. a clean end is a client that gave up this connection unused */
            say("no command on a connection: %s", strerror(errno));
        return;
    }
    size_t len = get_u32(hdr + 4);
    if (get_u16(hdr) != JWSL_RELAY_CREATE) {
        send_error(conn, "expected a CREATE frame");
        return;
    }
    if (len > MAX_PAYLOAD) {
        send_error(conn, "CREATE payload too large");
        return;
    }
    if (read_full(conn, create_buf, len) != 0)
        return;
    create_buf[len] = '\0';
    const char *bad = parse_create(create_buf, len, &C);
    if (bad) {
        send_error(conn, bad);
        return;
    }
    stage(STAGE_CREATE);
    /* A distro's command runs in its namespaces: its /etc/passwd, its /dev/pts, its PID 1. */
    if (*C.distro && distro_enter(C.distro, msg, sizeof(msg)) != 0) {
        send_error(conn, msg);
        return;
    }
    stage(STAGE_NAMESPACES);
    if (lookup_user(C.user, &user) != 0) {
        if (*C.distro)
            snprintf(msg, sizeof(msg), "user %s not found in %s", C.user, C.distro);
        else
            snprintf(msg, sizeof(msg), "user %s not found", C.user);
        send_error(conn, msg);
        return;
    }
    stage(STAGE_USER);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    s->sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sfd < 0) {
        snprintf(msg, sizeof(msg), "signalfd: %s", strerror(errno));
        send_error(conn, msg);
        return;
    }
    /* Orphans of the command come here: reaped at once, and counted as alive only while they are. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    s->tty = C.tty;
    s->pid = spawn(s, &C, &user, msg, sizeof(msg));
    if (s->pid < 0) {
        send_error(conn, msg);
        return;
    }
    stage(STAGE_EXEC);
    fcntl(conn, F_SETFL, O_NONBLOCK);
    unsigned char started[4 + 4 * JWSL_RELAY_STAGES];
    put_u32(started, (uint32_t)s->pid);
    for (int i = 0; i < JWSL_RELAY_STAGES; i++)
        put_u32(started + 4 + 4 * i, stage_us[i]);
    queue_frame(s, JWSL_RELAY_STARTED, started, sizeof(started));
    relay(s);
}

/* Ends the session without resetting the connection: closing a socket with unread data (frames
 * the host sent before it saw ERROR or EXIT) could make the host lose our last frames. */
static void linger_close(int conn)
{
    static unsigned char scratch[4096];
    long long deadline = now_ms() + LINGER_MS;
    shutdown(conn, SHUT_WR);
    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p = {.fd = conn, .events = POLLIN};
        if (left <= 0 || (poll(&p, 1, (int)left) < 0 && errno != EINTR))
            break;
        if (p.revents) {
            ssize_t n = recv(conn, scratch, sizeof(scratch), MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
        }
    }
    close(conn);
}

/* ---- listening ---- */

/* Descriptors 0-2 open (the command's pipes must not land there), everything inherited above them
 * close-on-exec (commands must not inherit it). */
static void ensure_std_fds(void)
{
    if (syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC) != 0) { /* kernel < 5.11 */
        for (int fd = 3; fd < 1024; fd++) {
            int flags = fcntl(fd, F_GETFD);
            if (flags >= 0)
                fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
    }
    open_std_fds();
}

static int serve(int lfd, void (*listening)(void))
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        say("signalfd: %s", strerror(errno));
        return 1;
    }
    /* A deep queue: the guest kernel resets a connection that finds the queue full, and a
     * starved guest (100 `wsl` calls at once on one CPU, each opening its relay connection early)
     * fell behind 128 and failed a call with "did not accept" (issue 29). The kernel caps this
     * at net.core.somaxconn (4096 by default); the VMM caps connections at 1024. */
    if (listen(lfd, 4096) != 0) {
        say("listen: %s", strerror(errno));
        return 1;
    }
    if (listening)
        listening();
    for (;;) {
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return 1;
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si))
                ;
            int st;
            while (waitpid(-1, &st, WNOHANG) > 0)
                if (WIFSIGNALED(st)) /* a session's own death: its host sees the stream end without EXIT */
                    say("a session process died: %s", strsignal(WTERMSIG(st)));
        }
        if (!p[0].revents)
            continue;
        int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        accepted_us = now_us();
        if (conn < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                usleep(100 * 1000);
            continue;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            close(sfd);
            session(conn);
            linger_close(conn);
            _exit(0);
        }
        if (pid < 0)
            say("fork: %s", strerror(errno));
        close(conn);
    }
}

int relayd_serve(void (*listening)(void))
{
    ensure_std_fds();
    int lfd = bind_vsock("relayd", JWSL_RELAY_PORT);
    return lfd < 0 ? 1 : serve(lfd, listening);
}

int relayd_main(int argc, char **argv)
{
    ensure_std_fds();
    int lfd = applet_socket("relayd", argc, argv, JWSL_RELAY_PORT);
    if (lfd < 0)
        return lfd == -2 ? 2 : 1;
    return serve(lfd, NULL);
}
