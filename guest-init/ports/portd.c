/* jwsl-ports: the guest side of localhost forwarding (ports_protocol.h).
 *
 * One process, one poll loop, no fork per connection (a fork costs many milliseconds of emulated
 * kernel time). It reports the TCP ports guest processes listen on to the host's watcher,
 * scanning with NETLINK_SOCK_DIAG, which dumps only listening sockets (cheap, unlike
 * /proc/net/tcp with every connection in it), and only while a watcher is connected; and it
 * relays each CONNECT stream to the guest listener.
 *
 * Memory is bounded: a relay has one buffer per direction and a side is not read while the
 * buffer it fills is full, so a slow reader stalls its writer; the watcher's unsent events are
 * capped (a watcher that does not read is dropped); connections are capped (MAX_CONNS). */
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "portd.h"
#include "protocol/ports_protocol.h"
#include "common/sockets.h"

/* Netlink and inet_diag (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h): not on
 * musl-gcc's include path. */
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

#define BUF_SIZE (64 * 1024)         /* per direction of a relay */
/* Unsent events; more and the watcher is dropped. Room for LISTEN on every port, so that the
 * first picture always fits. */
#define WATCH_QUEUE (65536 * JWSL_PORTS_EVENT_SIZE)
#define REQUEST_TIMEOUT_MS 10000     /* for the request */
#define LINGER_MS 2000               /* after an error status, for the host to read it */
#define MAX_CONNS (JWSL_PORTS_MAX_RELAYS + 256) /* relays, requests and lingering errors */
#define ACCEPT_BURST 64

/* What listens on a port. */
#define L_V4 1    /* 0.0.0.0 or 127.0.0.1: reached at 127.0.0.1 */
#define L_V6 2    /* :: or ::1: reached at ::1 */
#define L_SPEC4 4 /* another IPv4 address, kept in spec4 */
#define L_SPEC6 8 /* another IPv6 address, kept in spec6 */
static unsigned char listening[65536], reported[65536];
static struct in_addr spec4[65536];
static struct in6_addr spec6[65536];

enum state {
    REQUEST,    /* reading the request */
    CONNECTING, /* connecting to the guest listener */
    RELAY,      /* status 0 queued, bytes both ways */
    LINGER,     /* error status sent: reading until the host closes (closing with unread
                   bytes could reset the stream before the host reads the status) */
    WATCH,      /* the watcher */
};

enum { HOST, GUEST };

struct pipe_buf {
    char *data;
    size_t off, len;
    int eof;  /* its side has ended its input */
    int shut; /* and that was passed on, after the bytes before it */
};

struct conn {
    enum state state;
    int fd[2];               /* HOST, GUEST */
    struct pipe_buf in[2];   /* in[s]: bytes read from side s, for the other side */
    int hup[2];              /* side s reported POLLHUP: it takes no more bytes */
    unsigned char req[JWSL_PORTS_REQUEST_SIZE];
    size_t reqlen;
    long long deadline;      /* REQUEST, LINGER */
    uint16_t port;
    int attempt;             /* CONNECTING: the next address to try */
    int dead;                /* closed; freed after this round of the loop */
};

static struct conn *conns[MAX_CONNS];
static int nconns, relays;
static struct conn *watcher;
static unsigned char watch_queue[WATCH_QUEUE];
static size_t watch_len;
static int watch_overflow;
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

static void put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static unsigned get_u16(const unsigned char *p)
{
    return p[0] | (unsigned)p[1] << 8;
}

/* ---- listener scan ---- */

/* Records a listener on port bound to addr (4 or 16 bytes, network order). */
static void note(unsigned char *seen, unsigned port, int family, const void *addr)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct in6_addr a6;
    uint32_t a4;
    if (port == 0 || port > 65535)
        return;
    if (family == AF_INET6) {
        memcpy(&a6, addr, 16);
        if (memcmp(&a6, v4mapped, 12) != 0) {
            if (IN6_IS_ADDR_UNSPECIFIED(&a6) || IN6_IS_ADDR_LOOPBACK(&a6)) {
                seen[port] |= L_V6;
            } else {
                seen[port] |= L_SPEC6;
                spec6[port] = a6;
            }
            return;
        }
        addr = &a6.s6_addr[12]; /* ::ffff:a.b.c.d is an IPv4 address */
    }
    memcpy(&a4, addr, 4);
    if (a4 == htonl(INADDR_ANY) || a4 == htonl(INADDR_LOOPBACK)) {
        seen[port] |= L_V4;
    } else {
        seen[port] |= L_SPEC4;
        spec4[port].s_addr = a4;
    }
}

/* Dumps the listening TCP sockets of one family; -1 if sock_diag does not answer properly. */
static int scan_diag(int family, unsigned char *seen)
{
    static uint32_t seq;
    struct {
        struct jwsl_nlmsghdr nlh;
        struct jwsl_inet_diag_req_v2 req;
    } msg = {
        .nlh = {.len = sizeof(msg), .type = JWSL_SOCK_DIAG_BY_FAMILY,
                .flags = JWSL_NLM_F_REQUEST | JWSL_NLM_F_DUMP, .seq = ++seq},
        .req = {.family = (uint8_t)family, .protocol = IPPROTO_TCP, .states = 1u << JWSL_TCP_LISTEN},
    };
    static char buf[32768] __attribute__((aligned(8)));
    if (send(diag_fd, &msg, sizeof(msg), 0) != (ssize_t)sizeof(msg))
        return -1;
    for (;;) {
        /* MSG_TRUNC: the length of the datagram even if it did not fit. */
        ssize_t n = recv(diag_fd, buf, sizeof(buf), MSG_TRUNC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (size_t)n > sizeof(buf))
            return -1;
        char *end = buf + n;
        for (char *p = buf; p + sizeof(struct jwsl_nlmsghdr) <= end;) {
            struct jwsl_nlmsghdr h;
            memcpy(&h, p, sizeof(h));
            if (h.len < sizeof(h) || h.len > (size_t)(end - p))
                return -1;
            if (h.seq != seq) {
                /* left over from a dump we gave up on: skip */
            } else if (h.type == JWSL_NLMSG_DONE) {
                return 0;
            } else if (h.type == JWSL_NLMSG_ERROR) {
                return -1;
            } else if (h.type == JWSL_SOCK_DIAG_BY_FAMILY && h.len >= sizeof(h) + sizeof(struct jwsl_inet_diag_msg)) {
                struct jwsl_inet_diag_msg m;
                memcpy(&m, p + sizeof(h), sizeof(m));
                if (m.state == JWSL_TCP_LISTEN && m.family == family)
                    note(seen, ntohs(m.id.sport), family, m.id.src);
            }
            p += (h.len + 3) & ~3u;
        }
    }
}

/* /proc/net/tcp{,6}, when sock_diag is not there: "sl local_address rem_address st ...". The
 * kernel prints addresses as the 32-bit words in memory, in hex. */
static void scan_proc(const char *path, int family, unsigned char *seen)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[512], hex[33];
    unsigned port, state;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, " %*d: %32[0-9A-Fa-f]:%x %*s %x", hex, &port, &state) != 3 || state != JWSL_TCP_LISTEN ||
            strlen(hex) != (family == AF_INET ? 8u : 32u))
            continue;
        uint32_t addr[4];
        for (size_t i = 0; i < strlen(hex) / 8; i++) {
            char word[9];
            memcpy(word, hex + 8 * i, 8);
            word[8] = '\0';
            addr[i] = (uint32_t)strtoul(word, NULL, 16);
        }
        note(seen, port, family, addr);
    }
    fclose(f);
}

/* Fills listening[] with what listens now. */
static void scan(void)
{
    static unsigned char seen[65536];
    memset(seen, 0, sizeof(seen));
    if (diag_fd < 0)
        diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, JWSL_NETLINK_SOCK_DIAG);
    if (diag_fd < 0 || scan_diag(AF_INET, seen) != 0 || scan_diag(AF_INET6, seen) != 0) {
        /* A failed dump may leave messages behind: the next scan starts on a fresh socket. */
        if (diag_fd >= 0)
            close(diag_fd);
        diag_fd = -1;
        memset(seen, 0, sizeof(seen));
        scan_proc("/proc/net/tcp", AF_INET, seen);
        scan_proc("/proc/net/tcp6", AF_INET6, seen);
    }
    memcpy(listening, seen, sizeof(listening));
}

static void queue_event(unsigned op, unsigned port)
{
    if (watch_len + JWSL_PORTS_EVENT_SIZE > WATCH_QUEUE) {
        watch_overflow = 1; /* the loop drops the watcher */
        return;
    }
    put_u16(watch_queue + watch_len, op);
    put_u16(watch_queue + watch_len + 2, port);
    watch_len += JWSL_PORTS_EVENT_SIZE;
}

/* Tells the watcher what changed since the last report. */
static void report_changes(void)
{
    for (unsigned p = 1; p < 65536; p++) {
        unsigned char now = listening[p] != 0;
        if (now != reported[p]) {
            queue_event(now ? JWSL_PORTS_LISTEN : JWSL_PORTS_CLOSED, p);
            reported[p] = now;
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
    for (int s = HOST; s <= GUEST; s++) {
        if (c->fd[s] >= 0)
            close(c->fd[s]);
        c->fd[s] = -1;
    }
    if (c->state == CONNECTING || c->state == RELAY)
        relays--;
    if (c == watcher) {
        watcher = NULL;
        watch_len = 0;
        watch_overflow = 0;
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
        free(c->in[HOST].data);
        free(c->in[GUEST].data);
        free(c);
        conns[i] = conns[--nconns];
    }
}

/* An error status (errno, 1..255), then the end of the stream. */
static void fail(struct conn *c, int err)
{
    unsigned char b = (unsigned char)(err <= 0 ? EIO : err > 255 ? 255 : err);
    if (c->fd[GUEST] >= 0)
        close(c->fd[GUEST]);
    c->fd[GUEST] = -1;
    if (c->state == CONNECTING || c->state == RELAY)
        relays--;
    c->state = LINGER;
    c->deadline = now_ms() + LINGER_MS;
    /* Nothing was sent on the stream yet: one byte does not block. */
    if (write(c->fd[HOST], &b, 1) != 1 || shutdown(c->fd[HOST], SHUT_WR) != 0)
        drop(c);
}

/* Starts a nonblocking connect to the next address of c->port: 127.0.0.1 for an IPv4 wildcard
 * or loopback listener (and when nothing is known), ::1 likewise, then specific addresses.
 * 0 when one is under way, else -1 with errno set. */
static int connect_next(struct conn *c)
{
    unsigned char l = listening[c->port];
    int err = ECONNREFUSED;
    for (; c->attempt < 4; c->attempt++) {
        struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(c->port)};
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(c->port)};
        int v6 = c->attempt & 1;
        switch (c->attempt) {
        case 0:
            if (l && !(l & L_V4))
                continue;
            in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            break;
        case 1:
            if (l && !(l & L_V6))
                continue;
            in6.sin6_addr = in6addr_loopback;
            break;
        case 2:
            if (!(l & L_SPEC4))
                continue;
            in4.sin_addr = spec4[c->port];
            break;
        default:
            if (!(l & L_SPEC6))
                continue;
            in6.sin6_addr = spec6[c->port];
            break;
        }
        if (c->fd[GUEST] >= 0)
            close(c->fd[GUEST]);
        c->fd[GUEST] = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd[GUEST] < 0)
            return -1;
        int one = 1; /* the host's writes are already coalesced; do not delay them again */
        setsockopt(c->fd[GUEST], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int r = v6 ? connect(c->fd[GUEST], (struct sockaddr *)&in6, sizeof(in6))
                   : connect(c->fd[GUEST], (struct sockaddr *)&in4, sizeof(in4));
        if (r == 0 || errno == EINPROGRESS) {
            c->attempt++;
            return 0;
        }
        err = errno;
    }
    errno = err;
    return -1;
}

static void start_watch(struct conn *c)
{
    if (watcher)
        drop(watcher); /* the host reconnected: the old stream is stale */
    watcher = c;
    c->state = WATCH;
    watch_len = 0;
    watch_overflow = 0;
    memset(reported, 0, sizeof(reported));
    scan();
    report_changes();
}

static void start_connect(struct conn *c, unsigned port)
{
    if (relays >= JWSL_PORTS_MAX_RELAYS) {
        fail(c, EMFILE);
        return;
    }
    c->in[HOST].data = malloc(BUF_SIZE);
    c->in[GUEST].data = malloc(BUF_SIZE);
    if (!c->in[HOST].data || !c->in[GUEST].data) {
        fail(c, ENOMEM);
        return;
    }
    c->state = CONNECTING;
    c->port = (uint16_t)port;
    relays++;
    if (!listening[port])
        scan(); /* no watcher keeps the table fresh, or the listener is new: look now */
    if (connect_next(c) != 0)
        fail(c, errno);
}

static void read_request(struct conn *c)
{
    ssize_t n = read(c->fd[HOST], c->req + c->reqlen, sizeof(c->req) - c->reqlen);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            drop(c);
        return;
    }
    c->reqlen += (size_t)n;
    if (c->reqlen < sizeof(c->req))
        return;
    unsigned kind = get_u16(c->req), port = get_u16(c->req + 2);
    if (kind == JWSL_PORTS_WATCH && port == 0)
        start_watch(c);
    else if (kind == JWSL_PORTS_CONNECT && port != 0)
        start_connect(c, port);
    else
        drop(c); /* not this protocol */
}

static void on_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd[GUEST], SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        if (connect_next(c) != 0)
            fail(c, err);
        return;
    }
    c->state = RELAY;
    c->in[GUEST].data[0] = 0; /* status: connected, the first byte the host reads */
    c->in[GUEST].len = 1;
}

/* Reads from fd into b; -1 on an error. */
static int fill(int fd, struct pipe_buf *b)
{
    if (b->len == 0)
        b->off = 0;
    else if (b->off + b->len == BUF_SIZE) {
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

/* Writes b to fd, and passes the end of input on once b is empty; -1 on an error. */
static int flush(int fd, struct pipe_buf *b)
{
    if (b->len > 0) {
        ssize_t n = write(fd, b->data + b->off, b->len);
        if (n > 0) {
            b->off += (size_t)n;
            b->len -= (size_t)n;
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

/* What a relay waits for on side s. */
static short relay_events(const struct conn *c, int s)
{
    short ev = 0;
    if (!c->in[s].eof && c->in[s].len < BUF_SIZE) /* fill() makes room at the end */
        ev |= POLLIN;
    if (c->in[!s].len > 0)
        ev |= POLLOUT;
    return ev;
}

static void relay(struct conn *c, const short rev[2])
{
    for (int s = HOST; s <= GUEST; s++) {
        if (rev[s] & POLLERR) { /* reset: the stream is broken both ways */
            drop(c);
            return;
        }
        if (rev[s] & POLLHUP)
            c->hup[s] = 1;
    }
    for (int s = HOST; s <= GUEST; s++) {
        if ((rev[s] & (POLLIN | POLLHUP)) && !c->in[s].eof && fill(c->fd[s], &c->in[s]) != 0) {
            drop(c);
            return;
        }
    }
    for (int s = HOST; s <= GUEST; s++) {
        if (flush(c->fd[!s], &c->in[s]) == 0)
            continue;
        if (!(c->hup[!s] && errno == EPIPE)) {
            drop(c);
            return;
        }
        /* The other side has gone and takes nothing more; what it sent may still be passed on. */
        c->in[s].len = 0;
        c->in[s].eof = c->in[s].shut = 1;
    }
    /* Done when both directions have ended; or when a side that hung up (it takes nothing
     * more) has had all it sent passed on. */
    if ((c->in[HOST].shut && c->in[GUEST].shut) || (c->hup[HOST] && c->in[HOST].shut) ||
        (c->hup[GUEST] && c->in[GUEST].shut))
        drop(c);
}

/* The host sends nothing after WATCH: bytes are ignored, its end of the stream ends the watch. */
static void serve_watcher(struct conn *c, short rev)
{
    if (rev & (POLLIN | POLLHUP | POLLERR)) {
        char junk[256];
        ssize_t n = read(c->fd[HOST], junk, sizeof(junk));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            drop(c);
            return;
        }
    }
    if (watch_len > 0 && (rev & POLLOUT)) {
        ssize_t n = write(c->fd[HOST], watch_queue, watch_len);
        if (n > 0) {
            memmove(watch_queue, watch_queue + n, watch_len - (size_t)n);
            watch_len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            drop(c);
        }
    }
}

static void linger(struct conn *c, short rev)
{
    char junk[4096];
    if (rev) {
        ssize_t n = read(c->fd[HOST], junk, sizeof(junk));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            drop(c);
    }
}

static void accept_some(int lfd)
{
    for (int i = 0; i < ACCEPT_BURST && nconns < MAX_CONNS; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                usleep(100 * 1000);
            return;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        c->fd[HOST] = fd;
        c->fd[GUEST] = -1;
        c->state = REQUEST;
        c->deadline = now_ms() + REQUEST_TIMEOUT_MS;
        conns[nconns++] = c;
    }
}

static int serve(int lfd)
{
    static struct pollfd pfd[1 + 2 * MAX_CONNS];
    static struct conn *owner[1 + 2 * MAX_CONNS];
    long long next_scan = 0;

    signal(SIGPIPE, SIG_IGN);
    if (fcntl(lfd, F_SETFL, O_NONBLOCK) != 0 || listen(lfd, 128) != 0) {
        say("listen: %s", strerror(errno));
        return 1;
    }
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
            short ev[2] = {0, 0};
            switch (c->state) {
            case REQUEST:
            case LINGER:
                ev[HOST] = POLLIN;
                if (timeout < 0 || c->deadline - now < timeout)
                    timeout = c->deadline > now ? (int)(c->deadline - now) : 0;
                break;
            case WATCH:
                ev[HOST] = (short)(POLLIN | (watch_len ? POLLOUT : 0));
                break;
            case CONNECTING:
                ev[GUEST] = POLLOUT;
                break;
            case RELAY:
                ev[HOST] = relay_events(c, HOST);
                ev[GUEST] = relay_events(c, GUEST);
                break;
            }
            for (int s = HOST; s <= GUEST; s++) {
                /* A side that hung up reports POLLHUP for ever: polled only when it is wanted. */
                int fd = ev[s] == 0 && c->hup[s] ? -1 : c->fd[s];
                pfd[n] = (struct pollfd){.fd = fd, .events = ev[s]};
                owner[n++] = c;
            }
        }
        if (poll(pfd, (nfds_t)n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOMEM) {
                usleep(100 * 1000);
                continue;
            }
            say("poll: %s", strerror(errno));
            return 1;
        }
        now = now_ms();
        for (int i = 1; i + 1 < n; i += 2) {
            struct conn *c = owner[i];
            short rev[2] = {pfd[i].revents, pfd[i + 1].revents};
            if (c->dead)
                continue;
            switch (c->state) {
            case REQUEST:
                if (rev[HOST])
                    read_request(c);
                else if (now >= c->deadline)
                    drop(c);
                break;
            case LINGER:
                linger(c, rev[HOST]);
                if (!c->dead && now >= c->deadline)
                    drop(c);
                break;
            case WATCH:
                if (rev[HOST])
                    serve_watcher(c, rev[HOST]);
                break;
            case CONNECTING:
                if (rev[HOST] & (POLLHUP | POLLERR))
                    drop(c); /* the host gave up */
                else if (rev[GUEST])
                    on_connected(c);
                break;
            case RELAY:
                if (rev[HOST] || rev[GUEST])
                    relay(c, rev);
                break;
            }
        }
        if (watcher && watch_overflow) {
            say("the host does not read port events: %s", "dropping the watch");
            drop(watcher);
        }
        reap();
        if (pfd[0].revents & POLLIN)
            accept_some(lfd);
    }
}

/* Descriptors 0-2 open, so that no socket lands there (stderr carries our log lines), and room
 * for every connection: two descriptors per relay. */
static void prepare(void)
{
    open_std_fds();
    struct rlimit rl;
    rlim_t want = 2 * MAX_CONNS + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        struct rlimit more = {.rlim_cur = want, .rlim_max = rl.rlim_max < want ? want : rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &more) != 0) { /* not root: as far as allowed */
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
}

int portd_serve(void)
{
    prepare();
    int lfd = bind_vsock(PORTD_NAME, JWSL_PORTS_PORT);
    return lfd < 0 ? 1 : serve(lfd);
}

int portd_main(int argc, char **argv)
{
    prepare();
    int lfd = applet_socket(PORTD_NAME, argc, argv, JWSL_PORTS_PORT);
    if (lfd < 0)
        return lfd == -2 ? 2 : 1;
    return serve(lfd);
}
