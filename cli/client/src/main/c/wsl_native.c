/* wsl-native: the warm path of `wsl`, without a JVM.
 *
 * bin/wsl runs it first, as   wsl-native LAUNCHER USER-ARGS...
 * It serves what users run all day once the service runs: `wsl [-e] [-u USER] [-d NAME | --system]
 * [--cd DIR] [--] [CMD...]`, `wsl --status` and `wsl --version`. For anything else (other
 * options, bad usage, no service answering, a runtime directory it would not trust) it runs
 * LAUNCHER (bin/wsl) again with JWSL_NO_NATIVE=1 and the same arguments: the JVM client does
 * everything, starts the service and says what is wrong. A JVM client starts in ~130 ms on the
 * host and ~1 s under emulation; this in ~1 ms (issue 29).
 *
 * The protocols are the service's (cli/protocol/src/main/c/service_protocol.h) and the guest
 * relay's (guest-init/protocol/relay_protocol.h); the behaviour is the JVM client's
 * (WslClient.run, RelaySession): byte-exact stdio, the command's exit status, one-line errors
 * with status 1, 141 when our stdout's reader is gone, a terminal in raw mode with its size
 * forwarded. A signal that kills this process closes its connections: the service ends the
 * session's lease and the guest hangs up the command, as for a killed JVM client.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "relay_protocol.h"
#include "service_protocol.h"

#define EXIT_JWSL_FAILURE 1
#define EXIT_BROKEN_PIPE 141
/* Wsl.java prints the same. */
#define JWSL_VERSION "0.1.0"

static const char *const FORWARDED_ENV[] = {"TERM", "LANG", "LC_ALL", "COLORTERM"};
#define GUEST_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- the JVM client, for everything this does not serve ---- */

static char *launcher;
static char **user_args;
static int user_argc;

static long long now_micros(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Runs the launcher again for the JVM client, with the user's arguments; does not return. */
__attribute__((noreturn)) static void exec_jvm_client(void) {
    char **argv = calloc((size_t)user_argc + 2, sizeof *argv);
    if (argv == NULL) {
        fputs("wsl: out of memory\n", stderr);
        exit(EXIT_JWSL_FAILURE);
    }
    argv[0] = launcher;
    memcpy(argv + 1, user_args, (size_t)user_argc * sizeof *argv);
    setenv("JWSL_NO_NATIVE", "1", 1);
    signal(SIGPIPE, SIG_DFL);
    execv(launcher, argv);
    if (errno == EACCES || errno == ENOEXEC) { /* a launcher run as `bash bin/wsl`, without its exec bit */
        char **with_bash = calloc((size_t)user_argc + 3, sizeof *argv);
        if (with_bash != NULL) {
            with_bash[0] = "bash";
            memcpy(with_bash + 1, argv, ((size_t)user_argc + 1) * sizeof *argv);
            execvp("bash", with_bash);
        }
    }
    fprintf(stderr, "wsl: cannot run %s: %s\n", launcher, strerror(errno));
    exit(EXIT_JWSL_FAILURE);
}

/* ---- JWSL_TIMING: the stages, as the JVM client prints them (Timing.java) ---- */

#define MAX_STAGES 16
static int timing;
static long long origin_us;
static const char *stage_name[MAX_STAGES];
static long long stage_at[MAX_STAGES];
static int stages;
static uint32_t guest_us[JWSL_RELAY_STAGES];
static int guest_stages;
static const char *const GUEST_STAGE_NAMES[JWSL_RELAY_STAGES] = {"forked", "create", "namespaces", "user", "exec"};

static long long env_micros(const char *name) {
    const char *s = getenv(name);
    if (s == NULL || *s == '\0' || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s)) {
        return -1;
    }
    return atoll(s);
}

static void mark_at(const char *stage, long long at) {
    if (timing && stages < MAX_STAGES) {
        stage_name[stages] = stage;
        stage_at[stages++] = at;
    }
}

static void mark(const char *stage) {
    if (timing) {
        mark_at(stage, now_micros());
    }
}

static void timing_start(void) {
    timing = getenv("JWSL_TIMING") != NULL;
    if (!timing) {
        return;
    }
    long long now = now_micros();
    origin_us = env_micros("JWSL_T0");
    if (origin_us < 0) {
        origin_us = now;
    } else {
        mark_at("bin-wsl", origin_us);
        long long t1 = env_micros("JWSL_T1");
        if (t1 >= 0) {
            mark_at("native-exec", t1);
        }
    }
    mark_at("native-main", now);
}

static void timing_report(void) {
    if (!timing) {
        return;
    }
    mark("exit");
    for (int i = 0; i < stages; i++) {
        fprintf(stderr, "wsl-timing: %-20s %9.1f\n", stage_name[i], (stage_at[i] - origin_us) / 1e3);
    }
    for (int i = 0; i < guest_stages; i++) {
        char name[32];
        snprintf(name, sizeof name, "guest-%s", GUEST_STAGE_NAMES[i]);
        fprintf(stderr, "wsl-timing: %-20s %9.1f\n", name, guest_us[i] / 1e3);
    }
    fflush(stderr);
}

/* ---- the host terminal while the guest owns it ---- */

static struct termios saved_termios;
static int terminal_raw;

static void restore_terminal(void) {
    if (terminal_raw) {
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
        terminal_raw = 0;
    }
}

/* A signal that ends us leaves the terminal as it was, then ends us as it would have. */
static void on_fatal_signal(int sig) {
    if (terminal_raw) {
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void make_terminal_raw(void) {
    if (tcgetattr(STDIN_FILENO, &saved_termios) != 0) {
        return;
    }
    static const int fatal[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        struct sigaction sa = {.sa_handler = on_fatal_signal};
        sigaction(fatal[i], &sa, NULL);
    }
    struct termios raw = saved_termios;
    cfmakeraw(&raw);
    terminal_raw = 1; /* first: a signal right after the change restores it */
    if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) != 0) {
        terminal_raw = 0;
    }
}

static void window_size(int *rows, int *cols) {
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0) {
        *rows = 24;
        *cols = 80;
        return;
    }
    *rows = ws.ws_row;
    *cols = ws.ws_col;
}

/* ---- ending ---- */

__attribute__((noreturn)) static void finish(int status) {
    restore_terminal();
    timing_report();
    exit(status);
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...) {
    restore_terminal(); /* before the message, so that it is not printed in raw mode */
    va_list ap;
    va_start(ap, fmt);
    fputs("wsl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    finish(EXIT_JWSL_FAILURE);
}

/* ---- byte buffers and little-endian fields ---- */

struct buf {
    unsigned char *data;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more) {
    if (b->len + more <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more) {
        cap *= 2;
    }
    unsigned char *d = realloc(b->data, cap);
    if (d == NULL) {
        fail("out of memory");
    }
    b->data = d;
    b->cap = cap;
}

static void put_bytes(struct buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_u8(struct buf *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    put_bytes(b, &c, 1);
}

static void put_u16(struct buf *b, unsigned v) {
    unsigned char c[2] = {v & 0xff, (v >> 8) & 0xff};
    put_bytes(b, c, 2);
}

static void put_u32(struct buf *b, uint32_t v) {
    unsigned char c[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
    put_bytes(b, c, 4);
}

static void put_u64(struct buf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

/* A service protocol string: u32 length, bytes. */
static void put_string(struct buf *b, const char *s) {
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    put_bytes(b, s, n);
}

/* A CREATE string: the bytes and a NUL. */
static void put_cstring(struct buf *b, const char *s) {
    put_bytes(b, s, strlen(s) + 1);
}

static uint32_t get_u32(const unsigned char *p) {
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
    return get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* A reader over one received payload; a field past its end is the peer's error. */
struct reader {
    const unsigned char *p;
    size_t left;
    int bad;
};

static const unsigned char *take(struct reader *r, size_t n) {
    if (r->bad || n > r->left) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *at = r->p;
    r->p += n;
    r->left -= n;
    return at;
}

static uint32_t read_u32(struct reader *r) {
    const unsigned char *p = take(r, 4);
    return p ? get_u32(p) : 0;
}

static uint64_t read_u64(struct reader *r) {
    const unsigned char *p = take(r, 8);
    return p ? get_u64(p) : 0;
}

/* A service protocol string, as a NUL-terminated copy (a NUL inside is refused). */
static char *read_string(struct reader *r) {
    uint32_t n = read_u32(r);
    const unsigned char *p = take(r, n);
    if (p == NULL || memchr(p, 0, n) != NULL) {
        r->bad = 1;
        return strdup("");
    }
    char *s = malloc((size_t)n + 1);
    if (s == NULL) {
        fail("out of memory");
    }
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ---- sockets ---- */

/* Connects to the Unix socket at path; -1 with errno set when it cannot. */
static int connect_unix(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Writes all of p to a blocking descriptor; 0, or -1 with errno set. */
static int write_all(int fd, const void *p, size_t n) {
    const unsigned char *at = p;
    while (n > 0) {
        ssize_t w = write(fd, at, n); /* SIGPIPE is ignored: a reader gone is EPIPE */
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) { /* a descriptor someone made non-blocking: wait until it takes more */
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                poll(&pfd, 1, -1);
                continue;
            }
            return -1;
        }
        at += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes; 1 when done, 0 at end of stream first, -1 on an error (errno set). */
static int read_exact(int fd, void *p, size_t n) {
    unsigned char *at = p;
    while (n > 0) {
        ssize_t r = read(fd, at, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return (int)r;
        }
        at += r;
        n -= (size_t)r;
    }
    return 1;
}

/* ---- the service ---- */

static char runtime_dir[4096];
static int service_fd = -1;

/*
 * $XDG_RUNTIME_DIR/jwsl, else /tmp/jwsl-USER (ServicePaths.forCurrentUser). Only a directory that
 * is ours alone is used (ServicePaths.create would refuse or repair anything else): 0 if it is.
 */
static int find_runtime_dir(void) {
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (xdg != NULL && xdg[strspn(xdg, " \t\n\r\f\v")] != '\0') {
        n = snprintf(runtime_dir, sizeof runtime_dir, "%s/jwsl", xdg);
    } else {
        struct passwd *pw = getpwuid(getuid());
        if (pw == NULL) {
            return -1;
        }
        n = snprintf(runtime_dir, sizeof runtime_dir, "/tmp/jwsl-%s", pw->pw_name);
    }
    struct stat st;
    if (n < 0 || (size_t)n >= sizeof runtime_dir) {
        return -1;
    }
    /* As Path.of writes it (the service names its sockets so): no repeated or trailing '/'. */
    char *to = runtime_dir;
    for (const char *from = runtime_dir; *from; from++) {
        if (!(*from == '/' && to > runtime_dir && to[-1] == '/')) {
            *to++ = *from;
        }
    }
    *to = '\0';
    if (lstat(runtime_dir, &st) != 0) {
        return -1;
    }
    return S_ISDIR(st.st_mode) && st.st_uid == getuid() && (st.st_mode & 077) == 0 ? 0 : -1;
}

static int connect_in_runtime_dir(const char *name) {
    char path[sizeof runtime_dir + 32];
    snprintf(path, sizeof path, "%s/%s", runtime_dir, name);
    return connect_unix(path);
}

static uint64_t next_transaction = 1;

/* Sends a request frame of this type and payload; returns its transaction id. */
static uint64_t service_send(unsigned type, const struct buf *payload) {
    struct buf f = {0};
    uint64_t tx = next_transaction++;
    put_u16(&f, type);
    put_u16(&f, 0);
    put_u32(&f, (uint32_t)payload->len);
    put_u64(&f, tx);
    put_bytes(&f, payload->data, payload->len);
    if (write_all(service_fd, f.data, f.len) != 0) {
        fail("the jwsl service closed the connection");
    }
    free(f.data);
    return tx;
}

/* The final response to transaction tx (PROGRESS frames skipped): its type; payload in *out. */
static unsigned service_receive(uint64_t tx, struct buf *out) {
    for (;;) {
        unsigned char h[JWSL_SERVICE_HEADER_SIZE];
        if (read_exact(service_fd, h, sizeof h) != 1) {
            fail("the jwsl service closed the connection");
        }
        unsigned type = h[0] | h[1] << 8;
        uint32_t len = get_u32(h + 4);
        if (len > JWSL_SERVICE_MAX_PAYLOAD) {
            fail("frame payload of %u bytes", len);
        }
        out->len = 0;
        buf_reserve(out, len);
        if (read_exact(service_fd, out->data, len) != 1) {
            fail("the jwsl service closed the connection");
        }
        out->len = len;
        if (get_u64(h + 8) != tx) {
            fail("the jwsl service sent an unexpected reply (transaction %llu)", (unsigned long long)get_u64(h + 8));
        }
        if (type != JWSL_SERVICE_PROGRESS) {
            return type;
        }
    }
}

/* An ERROR response's message, or the unexpected type's name. */
static void fail_response(unsigned type, const struct buf *payload) {
    if (type == JWSL_SERVICE_ERROR) {
        struct reader r = {payload->data, payload->len, 0};
        char *message = read_string(&r);
        if (!r.bad && r.left == 0) {
            fail("%s", message);
        }
    }
    fail("the jwsl service sent an unexpected reply (message type %u)", type);
}

/*
 * Sends a request and reads its final response, which must be of type `expect` (else its
 * one-line error, or what was unexpected, ends the call): a reader over that response's payload.
 */
static struct reader service_call(unsigned type, const struct buf *payload, unsigned expect) {
    static struct buf reply;
    unsigned got = service_receive(service_send(type, payload), &reply);
    if (got != expect) {
        fail_response(got, &reply);
    }
    return (struct reader){reply.data, reply.len, 0};
}

/* A response whose fields ran past its end, or that has bytes after them, is the service's error. */
static void read_all(const struct reader *r, unsigned type) {
    if (r->bad || r->left != 0) {
        fail("truncated message type %u", type);
    }
}

/* ---- wsl --status ---- */

__attribute__((noreturn)) static void status(void) {
    struct buf empty = {0};
    struct reader r = service_call(JWSL_SERVICE_STATUS, &empty, JWSL_SERVICE_STATUS_REPLY);
    char *vm = read_string(&r);
    uint32_t sessions = read_u32(&r);
    uint64_t uptime = read_u64(&r);
    uint64_t idle = read_u64(&r);
    char *kernel = read_string(&r);
    read_all(&r, JWSL_SERVICE_STATUS_REPLY);
    /* WslClient.status prints the same. */
    printf("VM: %s\nSessions: %d\nUptime: %lld s\nIdle timeout: %lld s\nKernel: %s\n", vm, (int32_t)sessions,
           (long long)uptime / 1000, (long long)idle / 1000, kernel);
    fflush(stdout);
    finish(0);
}

/* ---- wsl --version ---- */

/* The JDK's runtime version from its release file ("unknown" without one): what the JVM client prints. */
__attribute__((noreturn)) static void version(void) {
    const char *home = getenv("JAVA_HOME");
    char path[4096], line[512], runtime[128] = "unknown";
    snprintf(path, sizeof path, "%s/release", home ? home : "");
    FILE *f = fopen(path, "re");
    static const char key[] = "JAVA_RUNTIME_VERSION=\"";
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, sizeof key - 1) == 0) {
            char *v = line + sizeof key - 1;
            v[strcspn(v, "\"\n")] = '\0';
            snprintf(runtime, sizeof runtime, "%.100s", v);
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    printf("jwsl " JWSL_VERSION "\nJava %s\n", runtime);
    fflush(stdout);
    finish(0);
}

/* ---- wsl [options] [--] CMD: the command relay ---- */

struct run_options {
    int exec;
    int system;
    const char *cd;     /* NULL: this directory through the host share */
    const char *user;   /* NULL: the distro's default user */
    const char *distro; /* NULL: the default distro */
    char **command;
    int command_len;
};

/*
 * The options this serves, as picocli parses them for Wsl.java (options stop at the first
 * argument that is not one; "--" ends them); 0 when args are exactly those, -1 for anything else
 * (the JVM client then parses them and says what is wrong).
 */
static int parse_run(char **args, int n, struct run_options *o) {
    int i = 0;
    for (; i < n; i++) {
        const char *a = args[i];
        const char **value = NULL;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-') {
            break;
        }
        if (a[1] == '\0') {
            return -1; /* "-": left to picocli */
        }
        if (strcmp(a, "-e") == 0 || strcmp(a, "--exec") == 0) {
            if (o->exec++) {
                return -1;
            }
            continue;
        }
        if (strcmp(a, "--system") == 0) {
            if (o->system++) {
                return -1;
            }
            continue;
        }
        const char *name = a, *inline_value = NULL;
        char head[32];
        const char *eq = strchr(a, '=');
        if (a[1] == '-' && eq != NULL && (size_t)(eq - a) < sizeof head) {
            memcpy(head, a, (size_t)(eq - a));
            head[eq - a] = '\0';
            name = head;
            inline_value = eq + 1;
        }
        if (strcmp(name, "--cd") == 0) {
            value = &o->cd;
        } else if (strcmp(name, "-u") == 0 || strcmp(name, "--user") == 0) {
            value = &o->user;
        } else if (strcmp(name, "-d") == 0 || strcmp(name, "--distribution") == 0) {
            value = &o->distro;
        } else {
            return -1;
        }
        if (*value != NULL) {
            return -1; /* picocli: given twice */
        }
        if (inline_value == NULL) {
            if (i + 1 >= n) {
                return -1;
            }
            inline_value = args[++i];
        }
        if (inline_value[0] == '-') {
            return -1; /* picocli may take it for an option */
        }
        *value = inline_value;
    }
    if (o->system && o->distro != NULL) {
        return -1;
    }
    o->command = args + i;
    o->command_len = n - i;
    return 0;
}

/* The command line as CREATE's argv: as given with -e, else through the shell, each argument quoted. */
static void put_argv(struct buf *b, const struct run_options *o, unsigned *argc) {
    if (o->exec || o->command_len == 0) {
        for (int i = 0; i < o->command_len; i++) {
            put_cstring(b, o->command[i]);
        }
        *argc = (unsigned)o->command_len;
        return;
    }
    put_cstring(b, "/bin/sh");
    put_cstring(b, "-c");
    for (int i = 0; i < o->command_len; i++) {
        if (i > 0) {
            put_u8(b, ' ');
        }
        put_u8(b, '\'');
        for (const char *c = o->command[i]; *c; c++) {
            if (*c == '\'') {
                put_bytes(b, "'\\''", 4);
            } else {
                put_u8(b, (unsigned char)*c);
            }
        }
        put_u8(b, '\'');
    }
    put_u8(b, 0);
    *argc = 3;
}

/* "CONNECT <port>\n" on a new connection to the VMM's hybrid-vsock socket; -1 (errno) if none. */
static int vsock_start(const char *socket_path, unsigned port) {
    int fd = connect_unix(socket_path);
    if (fd < 0) {
        return -1;
    }
    char line[32];
    int n = snprintf(line, sizeof line, "CONNECT %u\n", port);
    if (write_all(fd, line, (size_t)n) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/*
 * Reads the VMM's answer to vsock_start: 0 for "OK ...". Else -1 and *why says what went wrong
 * (NULL: the connection ended, the VM is gone).
 */
static int vsock_finish(int fd, unsigned port, char *why, size_t why_len) {
    char line[65];
    size_t n = 0;
    for (;;) {
        char c;
        if (n == 64) { /* HybridVsock's limit */
            snprintf(why, why_len, "malformed vsock handshake reply");
            return -1;
        }
        if (read_exact(fd, &c, 1) != 1) {
            snprintf(why, why_len, "the VM did not accept the connection to port %u", port);
            return -1;
        }
        if (c == '\n') {
            break;
        }
        line[n++] = c;
    }
    line[n] = '\0';
    if (strncmp(line, "OK ", 3) != 0) {
        snprintf(why, why_len, "the VM refused the connection to port %u: %s", port, line);
        return -1;
    }
    return 0;
}

static volatile sig_atomic_t window_changed;
/* The signal mask while the relay waits: SIGWINCH, blocked elsewhere, is delivered only there. */
static sigset_t relay_wait_mask;

static void on_winch(int sig) {
    (void)sig;
    window_changed = 1;
}

/* Before the first size is read, so that no change after it is missed. */
static void watch_window_size(void) {
    struct sigaction sa = {.sa_handler = on_winch};
    sigaction(SIGWINCH, &sa, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGWINCH);
    sigprocmask(SIG_BLOCK, &block, &relay_wait_mask);
    sigdelset(&relay_wait_mask, SIGWINCH);
}

/* A relay frame appended to the outgoing buffer. */
static void put_frame(struct buf *b, unsigned type, const void *payload, size_t len) {
    put_u16(b, type);
    put_u16(b, 0);
    put_u32(b, (uint32_t)len);
    put_bytes(b, payload, len);
}

/* Guest output to our stdout or stderr; a reader gone is 141, quietly, as SIGPIPE would be. */
static void output(int fd, const unsigned char *p, size_t n) {
    if (write_all(fd, p, n) != 0) {
        if (errno == EPIPE) {
            finish(EXIT_BROKEN_PIPE); /* restores the terminal */
        }
        fail("%s", strerror(errno));
    }
}

#define VM_STOPPED "the VM stopped during the command"

/* Relays stdio with the guest until EXIT; returns the command's status. */
static int relay(int fd, int tty) {
    struct buf out = {0};           /* frames for the guest, not yet written */
    static unsigned char in[JWSL_RELAY_HEADER_SIZE + JWSL_RELAY_MAX_PAYLOAD];
    size_t have = 0;                /* bytes of the current guest frame in `in` */
    int stdin_open = 1, can_write = 1, output_seen = 0;
    static unsigned char chunk[JWSL_RELAY_MAX_PAYLOAD / 2];

    if (!tty) {
        sigprocmask(SIG_BLOCK, NULL, &relay_wait_mask);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    for (;;) {
        if (window_changed) {
            window_changed = 0;
            int rows, cols;
            window_size(&rows, &cols);
            unsigned char p[4] = {rows & 0xff, (rows >> 8) & 0xff, cols & 0xff, (cols >> 8) & 0xff};
            if (can_write) {
                put_frame(&out, JWSL_RELAY_RESIZE, p, sizeof p);
            }
        }
        struct pollfd pfd[2] = {
            {.fd = fd, .events = POLLIN | (out.len > 0 && can_write ? POLLOUT : 0)},
            /* more input only once what we have is sent: the guest's pace is ours */
            {.fd = stdin_open && out.len == 0 && can_write ? STDIN_FILENO : -1, .events = POLLIN},
        };
        if (ppoll(pfd, 2, NULL, &relay_wait_mask) < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("poll: %s", strerror(errno));
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(fd, in + have, sizeof in - have);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                r = -2;
            }
            if (r == 0 || r == -1) {
                fail(VM_STOPPED);
            }
            if (r > 0) {
                have += (size_t)r;
            }
            while (have >= JWSL_RELAY_HEADER_SIZE) {
                unsigned type = in[0] | in[1] << 8;
                uint32_t len = get_u32(in + 4);
                if (len > JWSL_RELAY_MAX_PAYLOAD) {
                    fail("the guest sent a frame of %u bytes", len);
                }
                if (have < JWSL_RELAY_HEADER_SIZE + len) {
                    break;
                }
                const unsigned char *p = in + JWSL_RELAY_HEADER_SIZE;
                switch (type) {
                case JWSL_RELAY_STARTED:
                    mark("started");
                    for (guest_stages = 0; guest_stages < JWSL_RELAY_STAGES && 4 + 4 * (guest_stages + 1) <= (int)len;
                         guest_stages++) {
                        guest_us[guest_stages] = get_u32(p + 4 + 4 * guest_stages);
                    }
                    break;
                case JWSL_RELAY_STDOUT:
                case JWSL_RELAY_STDERR:
                    if (!output_seen) {
                        output_seen = 1;
                        mark("first-output");
                    }
                    output(type == JWSL_RELAY_STDOUT ? STDOUT_FILENO : STDERR_FILENO, p, len);
                    break;
                case JWSL_RELAY_EXIT:
                    if (len != 4) {
                        fail("malformed exit frame from the guest");
                    }
                    mark("exit-frame");
                    return (int)get_u32(p);
                case JWSL_RELAY_ERROR: {
                    size_t n = len;
                    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\r' || p[n - 1] == '\t')) {
                        n--;
                    }
                    size_t skip = 0;
                    while (skip < n && (p[skip] == ' ' || p[skip] == '\n' || p[skip] == '\t' || p[skip] == '\r')) {
                        skip++;
                    }
                    fail("%.*s", (int)(n - skip), (const char *)p + skip);
                }
                default:
                    fail("the guest sent an unknown frame type %u", type);
                }
                size_t used = JWSL_RELAY_HEADER_SIZE + len;
                memmove(in, in + used, have - used);
                have -= used;
            }
        }
        if (pfd[0].revents & POLLOUT) {
            ssize_t w = write(fd, out.data, out.len);
            if (w > 0) {
                memmove(out.data, out.data + w, out.len - (size_t)w);
                out.len -= (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                /* the guest closed its side: what it sent before (EXIT, or the end) is read above */
                can_write = 0;
                out.len = 0;
            }
        }
        if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            ssize_t r = pfd[1].revents & POLLNVAL ? 0 : read(STDIN_FILENO, chunk, sizeof chunk);
            if (r > 0) {
                put_frame(&out, JWSL_RELAY_STDIN, chunk, (size_t)r);
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                stdin_open = 0; /* end of input, or input we cannot read: the command sees its end */
                if (!tty) {
                    put_frame(&out, JWSL_RELAY_STDIN_EOF, NULL, 0);
                }
            }
        }
    }
}

static void run(const struct run_options *o) {
    int tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    char cwd[4096 + sizeof JWSL_RELAY_HOST_CWD];
    if (o->cd == NULL) {
        strcpy(cwd, JWSL_RELAY_HOST_CWD);
        if (getcwd(cwd + strlen(cwd), sizeof cwd - strlen(cwd)) == NULL) {
            exec_jvm_client(); /* it says what is wrong with this directory */
        }
    } else {
        if ((size_t)snprintf(cwd, sizeof cwd, "%s", strcmp(o->cd, "~") == 0 ? "" : o->cd) >= sizeof cwd) {
            exec_jvm_client(); /* longer than any path: the JVM client passes it on, the guest refuses it */
        }
    }

    /* The relay connection opens while the service answers (WslClient.startRelay). */
    char vsock_path[sizeof runtime_dir + 32];
    snprintf(vsock_path, sizeof vsock_path, "%s/vsock.sock", runtime_dir);
    int early = vsock_start(vsock_path, JWSL_RELAY_PORT);

    struct buf req = {0};
    put_string(&req, o->distro ? o->distro : "");
    put_u8(&req, o->system ? 1 : 0);
    struct reader r = service_call(JWSL_SERVICE_ENSURE_VM, &req, JWSL_SERVICE_VM_READY);
    char *ready_socket = read_string(&r);
    uint32_t port = read_u32(&r);
    char *distro = read_string(&r);
    char *default_user = read_string(&r);
    read_all(&r, JWSL_SERVICE_VM_READY);
    mark("vm-ready");

    /* The early connection if it reached the VM the service vouches for, else a new one. */
    char why[160];
    int fd = -1;
    if (early >= 0) {
        if (strcmp(ready_socket, vsock_path) == 0 && port == JWSL_RELAY_PORT &&
            vsock_finish(early, port, why, sizeof why) == 0) {
            fd = early;
        } else {
            close(early); /* nothing was sent on it: a new connection is not a retry */
        }
    }
    if (fd < 0) {
        fd = vsock_start(ready_socket, port);
        if (fd < 0) {
            fail("%s: %s", strerror(errno), ready_socket);
        }
        if (vsock_finish(fd, port, why, sizeof why) != 0) {
            fail("%s", why);
        }
    }
    mark("relay-connected");

    int rows = 0, cols = 0;
    if (tty) {
        watch_window_size();
        window_size(&rows, &cols);
    }
    struct buf create = {0}, args = {0};
    unsigned argc = 0;
    put_argv(&args, o, &argc);
    if (argc > 0xffff) {
        fail("too many arguments");
    }
    put_u16(&create, (unsigned)tty);
    put_u16(&create, (unsigned)rows);
    put_u16(&create, (unsigned)cols);
    put_u16(&create, argc);
    put_cstring(&create, o->user != NULL && *o->user ? o->user : default_user); /* -u "": the default, as picocli gives Java */
    put_cstring(&create, cwd);
    put_cstring(&create, distro);
    put_bytes(&create, args.data, args.len);
    for (size_t i = 0; i < sizeof FORWARDED_ENV / sizeof FORWARDED_ENV[0]; i++) {
        const char *v = getenv(FORWARDED_ENV[i]);
        if (v != NULL) {
            put_bytes(&create, FORWARDED_ENV[i], strlen(FORWARDED_ENV[i]));
            put_u8(&create, '=');
            put_cstring(&create, v);
        }
    }
    put_cstring(&create, GUEST_PATH);
    if (create.len > JWSL_RELAY_MAX_PAYLOAD) {
        fail("command and environment exceed %d bytes", JWSL_RELAY_MAX_PAYLOAD);
    }
    struct buf frame = {0};
    put_frame(&frame, JWSL_RELAY_CREATE, create.data, create.len);
    if (write_all(fd, frame.data, frame.len) != 0) {
        fail(VM_STOPPED);
    }
    mark("create-sent");
    if (tty) {
        make_terminal_raw();
    }
    finish(relay(fd, tty));
}

/*
 * Descriptors 0-2 that are not open become /dev/null: else the first socket opened would take
 * one, and the command's stdio would be read from or written into a protocol stream.
 */
static void open_standard_descriptors(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (null >= 0 && null != fd) {
                dup2(null, fd);
                close(null);
            }
        }
    }
}

int main(int argc, char **argv) {
    timing_start();
    open_standard_descriptors();
    signal(SIGPIPE, SIG_IGN); /* a reader gone is an error from write, handled where it happens */
    if (argc < 2 || argv[1][0] != '/') {
        fputs("wsl-native: run it through bin/wsl\n", stderr);
        return EXIT_JWSL_FAILURE;
    }
    launcher = argv[1];
    user_args = argv + 2;
    user_argc = argc - 2;

    struct run_options o = {0};
    int version_only = user_argc == 1 && strcmp(user_args[0], "--version") == 0;
    int status_only = user_argc == 1 && strcmp(user_args[0], "--status") == 0;
    if (version_only) {
        version();
    }
    if (!status_only && parse_run(user_args, user_argc, &o) != 0) {
        exec_jvm_client();
    }
    if (find_runtime_dir() != 0 || (service_fd = connect_in_runtime_dir("service.sock")) < 0) {
        exec_jvm_client(); /* no service (the JVM client starts one), or a directory to refuse or repair */
    }
    mark("service-connected");
    if (status_only) {
        status();
    }
    run(&o);
    return 0;
}
