/* jwsl-ports: the guest side of localhost forwarding (ports_protocol.h).
 *
 * One process, one poll loop, no fork per connection (a fork costs many milliseconds of emulated
 * kernel time on a PVM host). It reports the TCP ports guest processes listen on to the host's
 * watcher, scanning with NETLINK_SOCK_DIAG, which dumps only listening sockets (cheap, unlike
 * /proc/net/tcp with every connection in it), and only while a watcher is connected; and it
 * relays each CONNECT stream to the guest listener with a bounded buffer per direction. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "portd.h"
#include "ports_protocol.h"
#include "vsock.h"

/* Netlink and inet_diag (linux/netlink.h, linux/inet_diag.h): not on musl-gcc's include path. */
#define JWSL_NETLINK_SOCK_DIAG 4
#define JWSL_SOCK_DIAG_BY_FAMILY 20
#define JWSL_NLM_F_REQUEST 0x1
#define JWSL_NLM_F_DUMP 0x300
#define JWSL_NLMSG_ERROR 2
#define JWSL_NLMSG_DONE 3
#define JWSL_TCP_LISTEN 10

struct jwsl_nlmsghdr {
    uint32_t len;
    uint16_t type, flags;
    uint32_t seq, pid;
};
struct jwsl_inet_diag_sockid {
    uint16_t sport, dport; /* network byte order */
    uint32_t src[4], dst[4];
    uint32_t ifindex, cookie[2];
};
struct jwsl_inet_diag_req_v2 {
    uint8_t family, protocol, ext, pad;
    uint32_t states;
    struct jwsl_inet_diag_sockid id;
};
struct jwsl_inet_diag_msg {
    uint8_t family, state, timer, retrans;
    struct jwsl_inet_diag_sockid id;
    uint32_t expires, rqueue, wqueue, uid, inode;
};

#define BUF_SIZE (32 * 1024)        /* per direction of a relay */
#define WATCH_QUEUE (64 * 1024)     /* events the watcher has not read yet; more: drop it */
#define REQUEST_TIMEOUT_MS 10000
#define MAX_CONNS (JWSL_PORTS_MAX_RELAYS + 16)

/* What listens on a port: loopback-reachable families, or a specific address. */
#define L_V4 1    /* 0.0.0.0 or 127.x */
#define L_V6 2    /* :: or ::1 */
#define L_SPEC4 4 /* a specific IPv4 address */
#define L_SPEC6 8 /* a specific IPv6 address */
static unsigned char listening[65536], reported[65536];
static struct in_addr spec4[65536];
static struct in6_addr spec6[65536];

enum state { REQUEST, CONNECTING, RELAY, WATCH };

struct pipe_buf {
    char *data;
    size_t off, len;
    int eof;  /* the reading side ended */
    int shut; /* and that was passed on */
};

struct conn {
    int host, guest;
    enum state state;
    unsigned char req[JWSL_PORTS_REQUEST_SIZE];
    size_t reqlen;
    long long deadline;
    uint16_t port;
    int attempt;                 /* the next target to try */
    int dead;                    /* dropped: freed after this round of the loop */
    struct pipe_buf to_guest, to_host;
};

static struct conn *conns[MAX_CONNS];
static int nconns, relays;
static struct conn *watcher;
static unsigned char watch_queue[WATCH_QUEUE];
static size_t watch_len;
static int diag_fd = -1;

static void say(const char *fmt, const char *arg)
{
    dprintf(2, "jwsl-ports: ");
    dprintf(2, fmt, arg);
    dprintf(2, "\n");
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- listener scan ---- */

static int scan_family(int family, unsigned char *seen)
{
    struct {
        struct jwsl_nlmsghdr nlh;
        struct jwsl_inet_diag_req_v2 req;
    } msg = {
        .nlh = {.len = sizeof(msg), .type = JWSL_SOCK_DIAG_BY_FAMILY, .flags = JWSL_NLM_F_REQUEST | JWSL_NLM_F_DUMP},
        .req = {.family = (uint8_t)family, .protocol = IPPROTO_TCP, .states = 1u << JWSL_TCP_LISTEN},
    };
    if (send(diag_fd, &msg, sizeof(msg), 0) != (ssize_t)sizeof(msg))
        return -1;
    static char buf[16384] __attribute__((aligned(4)));
    for (;;) {
        ssize_t n = recv(diag_fd, buf, sizeof(buf), 0);
        if (n < 0)
            return errno == EINTR ? 0 : -1;
        for (char *p = buf; p + sizeof(struct jwsl_nlmsghdr) <= buf + n;) {
            struct jwsl_nlmsghdr *h = (struct jwsl_nlmsghdr *)p;
            if (h->len < sizeof(*h) || p + h->len > buf + n)
                return -1;
            if (h->type == JWSL_NLMSG_DONE)
                return 0;
            if (h->type == JWSL_NLMSG_ERROR)
                return -1;
            if (h->type == JWSL_SOCK_DIAG_BY_FAMILY && h->len >= sizeof(*h) + sizeof(struct jwsl_inet_diag_msg)) {
                struct jwsl_inet_diag_msg *m = (struct jwsl_inet_diag_msg *)(p + sizeof(*h));
                uint16_t port = ntohs(m->id.sport);
                if (m->state == JWSL_TCP_LISTEN && port != 0) {
                    if (m->family == AF_INET) {
                        uint32_t a = ntohl(m->id.src[0]);
                        if (a == 0 || (a >> 24) == 127) {
                            seen[port] |= L_V4;
                        } else {
                            seen[port] |= L_SPEC4;
                            memcpy(&spec4[port], &m->id.src[0], 4);
                        }
                    } else if (m->family == AF_INET6) {
                        struct in6_addr a;
                        memcpy(&a, m->id.src, 16);
                        if (IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LOOPBACK(&a)) {
                            seen[port] |= L_V6;
                        } else if (IN6_IS_ADDR_V4MAPPED(&a)) {
                            seen[port] |= L_SPEC4;
                            memcpy(&spec4[port], &a.s6_addr[12], 4);
                        } else {
                            seen[port] |= L_SPEC6;
                            spec6[port] = a;
                        }
                    }
                }
            }
            p += (h->len + 3) & ~3u;
        }
    }
}

/* /proc/net/tcp{,6} when sock_diag is not there: "sl local_address rem_address st ...". */
static void scan_proc(const char *path, int family, unsigned char *seen)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[512], addr[64];
    unsigned port, state;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x %*s %x", addr, &port, &state) != 3 || state != JWSL_TCP_LISTEN ||
            port == 0 || port > 65535)
            continue;
        int any = strspn(addr, "0") == strlen(addr);
        if (family == AF_INET) {
            uint32_t a = (uint32_t)strtoul(addr, NULL, 16); /* the kernel prints the raw u32 */
            uint32_t host = ntohl(a);
            seen[port] |= any || (host >> 24) == 127 ? L_V4 : L_SPEC4;
            if (!any && (host >> 24) != 127)
                memcpy(&spec4[port], &a, 4);
        } else {
            struct in6_addr a;
            for (int i = 0; i < 4; i++) {
                char word[9];
                memcpy(word, addr + 8 * i, 8);
                word[8] = '\0';
                uint32_t w = (uint32_t)strtoul(word, NULL, 16);
                memcpy(&a.s6_addr[4 * i], &w, 4);
            }
            if (any || IN6_IS_ADDR_LOOPBACK(&a)) {
                seen[port] |= L_V6;
            } else {
                seen[port] |= L_SPEC6;
                spec6[port] = a;
            }
        }
    }
    fclose(f);
}

static void scan(void)
{
    static unsigned char seen[65536];
    memset(seen, 0, sizeof(seen));
    if (diag_fd < 0)
        diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, JWSL_NETLINK_SOCK_DIAG);
    if (diag_fd < 0 || scan_family(AF_INET, seen) != 0 || scan_family(AF_INET6, seen) != 0) {
        memset(seen, 0, sizeof(seen));
        scan_proc("/proc/net/tcp", AF_INET, seen);
        scan_proc("/proc/net/tcp6", AF_INET6, seen);
    }
    memcpy(listening, seen, sizeof(listening));
}

static void queue_event(unsigned op, unsigned port)
{
    if (!watcher)
        return;
    if (watch_len + JWSL_PORTS_EVENT_SIZE > WATCH_QUEUE) {
        watch_len = WATCH_QUEUE + 1; /* marks the watcher as too slow: dropped by the loop */
        return;
    }
    unsigned char *e = watch_queue + watch_len;
    e[0] = (unsigned char)op;
    e[1] = (unsigned char)(op >> 8);
    e[2] = (unsigned char)port;
    e[3] = (unsigned char)(port >> 8);
    watch_len += JWSL_PORTS_EVENT_SIZE;
}

/* Tells the watcher what changed since the last scan. */
static void report_changes(void)
{
    for (unsigned p = 1; p < 65536; p++) {
        int now = listening[p] != 0;
        if (now != reported[p]) {
            queue_event(now ? JWSL_PORTS_LISTEN : JWSL_PORTS_CLOSED, p);
            reported[p] = (unsigned char)now;
        }
    }
}

/* ---- connections ---- */

/* Closes a connection now; its memory goes when the loop's round is over (reap). */
static void drop(struct conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    if (c->host >= 0)
        close(c->host);
    if (c->guest >= 0)
        close(c->guest);
    c->host = c->guest = -1;
    if (c->state == CONNECTING || c->state == RELAY)
        relays--;
    if (c == watcher) {
        watcher = NULL;
        watch_len = 0;
    }
}

static void reap(void)
{
    for (int i = 0; i < nconns;) {
        struct conn *c = conns[i];
        if (!c->dead) {
            i++;
            continue;
        }
        free(c->to_guest.data);
        free(c->to_host.data);
        free(c);
        conns[i] = conns[--nconns];
    }
}

static void send_status(struct conn *c, int err)
{
    unsigned char b = (unsigned char)(err <= 0 ? EIO : err > 255 ? 255 : err);
    if (write(c->host, &b, 1) < 0) {
        /* the host is gone too */
    }
}

/* Starts a nonblocking connect to the next candidate address of c->port; 0 when one is under way. */
static int connect_next(struct conn *c)
{
    unsigned char l = listening[c->port];
    for (; c->attempt < 4; c->attempt++) {
        struct sockaddr_storage ss = {0};
        socklen_t len;
        int family;
        switch (c->attempt) {
        case 0: /* the loopback of a wildcard/loopback listener; 127.0.0.1 when nothing is known */
            if (!(l & L_V4) && l != 0)
                continue;
            family = AF_INET;
            ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            break;
        case 1:
            if (!(l & L_V6) && l != 0)
                continue;
            family = AF_INET6;
            ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
            break;
        case 2:
            if (!(l & L_SPEC4))
                continue;
            family = AF_INET;
            ((struct sockaddr_in *)&ss)->sin_addr = spec4[c->port];
            break;
        default:
            if (!(l & L_SPEC6))
                continue;
            family = AF_INET6;
            ((struct sockaddr_in6 *)&ss)->sin6_addr = spec6[c->port];
            break;
        }
        if (family == AF_INET) {
            ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
            ((struct sockaddr_in *)&ss)->sin_port = htons(c->port);
            len = sizeof(struct sockaddr_in);
        } else {
            ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(c->port);
            len = sizeof(struct sockaddr_in6);
        }
        if (c->guest >= 0)
            close(c->guest);
        c->guest = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->guest < 0)
            return -1;
        int one = 1;
        setsockopt(c->guest, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->guest, (struct sockaddr *)&ss, len) == 0 || errno == EINPROGRESS) {
            c->attempt++;
            return 0;
        }
    }
    return -1;
}

static void start_request(struct conn *c)
{
    unsigned kind = c->req[0] | c->req[1] << 8;
    unsigned port = c->req[2] | c->req[3] << 8;
    if (kind == JWSL_PORTS_WATCH && port == 0) {
        if (watcher)
            drop(watcher); /* the host reconnected: the old stream is stale */
        watcher = c;
        c->state = WATCH;
        watch_len = 0;
        memset(reported, 0, sizeof(reported));
        scan();
        report_changes();
        return;
    }
    if (kind != JWSL_PORTS_CONNECT || port == 0) {
        drop(c);
        return;
    }
    if (relays >= JWSL_PORTS_MAX_RELAYS) {
        send_status(c, EMFILE);
        drop(c);
        return;
    }
    c->port = (uint16_t)port;
    c->to_guest.data = malloc(BUF_SIZE);
    c->to_host.data = malloc(BUF_SIZE);
    if (!c->to_guest.data || !c->to_host.data) {
        send_status(c, ENOMEM);
        drop(c);
        return;
    }
    c->state = CONNECTING;
    relays++;
    if (!listening[port])
        scan(); /* no watcher keeps the table fresh: look now */
    if (connect_next(c) != 0) {
        send_status(c, errno ? errno : ECONNREFUSED);
        drop(c);
    }
}

static void on_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->guest, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        if (connect_next(c) != 0) {
            send_status(c, err);
            drop(c);
        }
        return;
    }
    c->state = RELAY;
    c->to_host.data[0] = 0; /* status: connected; the first byte the host reads */
    c->to_host.len = 1;
}

/* Moves bytes from fd into b; 0 ok, -1 error. */
static int fill(int fd, struct pipe_buf *b)
{
    if (b->len == 0)
        b->off = 0;
    if (b->off + b->len == BUF_SIZE && b->off > 0) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
    size_t room = BUF_SIZE - b->off - b->len;
    if (room == 0)
        return 0;
    ssize_t n = read(fd, b->data + b->off + b->len, room);
    if (n > 0)
        b->len += (size_t)n;
    else if (n == 0)
        b->eof = 1;
    else if (errno != EAGAIN && errno != EINTR)
        return -1;
    return 0;
}

/* Moves bytes from b to fd, and passes an end of input on once b is empty. */
static int flush(int fd, struct pipe_buf *b)
{
    if (b->len > 0) {
        ssize_t n = write(fd, b->data + b->off, b->len);
        if (n > 0) {
            b->off += (size_t)n;
            b->len -= (size_t)n;
            if (b->len == 0)
                b->off = 0;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        }
    }
    if (b->len == 0 && b->eof && !b->shut) {
        shutdown(fd, SHUT_WR);
        b->shut = 1;
    }
    return 0;
}

static void relay(struct conn *c, short host_ev, short guest_ev)
{
    int bad = 0;
    if ((host_ev & (POLLIN | POLLHUP | POLLERR)) && !c->to_guest.eof)
        bad |= fill(c->host, &c->to_guest);
    if ((guest_ev & (POLLIN | POLLHUP | POLLERR)) && !c->to_host.eof)
        bad |= fill(c->guest, &c->to_host);
    bad |= flush(c->guest, &c->to_guest);
    bad |= flush(c->host, &c->to_host);
    if (bad || (c->to_guest.shut && c->to_host.shut))
        drop(c);
}

static void accept_one(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            usleep(100 * 1000);
        return;
    }
    struct conn *c = nconns < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        close(fd);
        return;
    }
    c->host = fd;
    c->guest = -1;
    c->state = REQUEST;
    c->deadline = now_ms() + REQUEST_TIMEOUT_MS;
    conns[nconns++] = c;
}

static void read_request(struct conn *c)
{
    ssize_t n = read(c->host, c->req + c->reqlen, sizeof(c->req) - c->reqlen);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            drop(c);
        return;
    }
    c->reqlen += (size_t)n;
    if (c->reqlen == sizeof(c->req))
        start_request(c);
}

static void serve_watcher(struct conn *c, short ev)
{
    if (watch_len > WATCH_QUEUE) {
        say("the watcher does not read: %s", "dropped");
        drop(c);
        return;
    }
    if (ev & POLLIN) { /* the host never sends after WATCH: data or EOF ends it */
        char junk[64];
        ssize_t n = read(c->host, junk, sizeof(junk));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            drop(c);
            return;
        }
    }
    if (watch_len > 0) {
        ssize_t n = write(c->host, watch_queue, watch_len);
        if (n > 0) {
            memmove(watch_queue, watch_queue + n, watch_len - (size_t)n);
            watch_len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            drop(c);
        }
    }
}

static int serve(int lfd)
{
    signal(SIGPIPE, SIG_IGN);
    if (nonblock(lfd) != 0 || listen(lfd, 128) != 0) {
        say("listen: %s", strerror(errno));
        return 1;
    }
    static struct pollfd pfd[1 + 2 * MAX_CONNS];
    static struct conn *owner[1 + 2 * MAX_CONNS];
    long long next_scan = 0;
    for (;;) {
        long long now = now_ms();
        if (watcher && now >= next_scan) {
            scan();
            report_changes();
            next_scan = now + JWSL_PORTS_POLL_MS;
        }
        int timeout = watcher ? (int)(next_scan - now) : -1;
        int n = 0;
        pfd[n] = (struct pollfd){.fd = lfd, .events = nconns < MAX_CONNS ? POLLIN : 0};
        owner[n++] = NULL;
        for (int i = 0; i < nconns; i++) {
            struct conn *c = conns[i];
            short hev = 0, gev = 0;
            switch (c->state) {
            case REQUEST:
                hev = POLLIN;
                if (timeout < 0 || c->deadline - now < timeout)
                    timeout = c->deadline > now ? (int)(c->deadline - now) : 0;
                break;
            case WATCH:
                hev = (short)(POLLIN | (watch_len ? POLLOUT : 0));
                break;
            case CONNECTING:
                gev = POLLOUT;
                break;
            case RELAY:
                if (!c->to_guest.eof && c->to_guest.len < BUF_SIZE)
                    hev |= POLLIN;
                if (c->to_host.len)
                    hev |= POLLOUT;
                if (!c->to_host.eof && c->to_host.len < BUF_SIZE)
                    gev |= POLLIN;
                if (c->to_guest.len)
                    gev |= POLLOUT;
                break;
            }
            pfd[n] = (struct pollfd){.fd = c->host, .events = hev};
            owner[n++] = c;
            pfd[n] = (struct pollfd){.fd = c->state == CONNECTING || c->state == RELAY ? c->guest : -1, .events = gev};
            owner[n++] = c;
        }
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
            return 1;
        now = now_ms();
        for (int i = 1; i + 1 < n; i += 2) {
            struct conn *c = owner[i];
            if (c->dead)
                continue;
            short hr = pfd[i].revents, gr = pfd[i + 1].revents;
            switch (c->state) {
            case REQUEST:
                if (hr)
                    read_request(c);
                else if (now >= c->deadline)
                    drop(c);
                break;
            case WATCH:
                if (hr || watch_len > WATCH_QUEUE)
                    serve_watcher(c, hr);
                break;
            case CONNECTING:
                if (gr)
                    on_connected(c);
                else if (hr & (POLLHUP | POLLERR))
                    drop(c);
                break;
            case RELAY:
                if (hr || gr)
                    relay(c, hr, gr);
                break;
            }
        }
        reap();
        if (pfd[0].revents & POLLIN)
            accept_one(lfd);
    }
}

int portd_serve(void)
{
    struct jwsl_sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_port = JWSL_PORTS_PORT, .svm_cid = JWSL_VMADDR_CID_ANY};
    int lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        say("cannot listen on vsock: %s", strerror(errno));
        return 1;
    }
    return serve(lfd);
}

int portd_main(int argc, char **argv)
{
    if (argc == 1)
        return portd_serve();
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (argc != 3 || strcmp(argv[1], "--unix") != 0 || strlen(argv[2]) >= sizeof(addr.sun_path)) {
        dprintf(2, "usage: jwsl-ports [--unix PATH]\n");
        return 2;
    }
    strcpy(addr.sun_path, argv[2]);
    unlink(argv[2]);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        say("cannot listen on %s", argv[2]);
        return 1;
    }
    return serve(lfd);
}
