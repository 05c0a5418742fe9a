/* netbench: the guest's half of scripts/bench-net (static, musl). Times are the guest's own
 * (CLOCK_MONOTONIC); the host's half is dev.jwsl.bench.NetBench, which speaks the same protocol.
 *
 *   netbench serve PORT             serve connections, many at once: the first byte says what
 *                                   to do: 'u' read until EOF, answer the count (u64 LE);
 *                                   'd' + u64 LE n: send n bytes of pattern(), close; 'p': answer
 *                                   'p', close; 'q': exit
 *   netbench send HOST PORT MIB     upload MIB MiB to a server ('u'), print MB/s
 *   netbench recv HOST PORT MIB     download MIB MiB ('d'), print MB/s
 *   netbench ping HOST PORT N       N connections in a row ('p'), print ms per connection */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int dial(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "netbench: cannot resolve %s\n", host);
        exit(2);
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        perror("netbench: connect");
        exit(1);
    }
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p = (char *)p + r;
        n -= (size_t)r;
    }
    return 0;
}

static uint64_t drain(int fd)
{
    uint64_t total = 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        total += (uint64_t)r;
    return total;
}

/* The bytes a download carries: a function of the offset, so the receiver can check every one. */
static void pattern(char *p, uint64_t offset, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t x = offset + i;
        p[i] = (char)(x ^ (x >> 8) ^ (x >> 16) ^ 0x5a);
    }
}

static void blast(int fd, uint64_t n)
{
    while (n > 0) {
        size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
        if (write_all(fd, buf, k) != 0)
            return;
        n -= k;
    }
}

/* One connection of the server: what it was asked, how far it got. */
struct client {
    int fd;
    char cmd;          /* 0 until the first byte arrives */
    unsigned char arg[8];
    size_t arglen;
    uint64_t count;    /* 'u': bytes read; 'd': bytes still to send */
    uint64_t sent;     /* 'd': bytes sent, for the pattern's offset */
};

#define MAX_CLIENTS 1024

/* Serves many connections at once from one process (a fork per connection is costly in an
 * emulated guest kernel), with a backlog that takes a burst of 100 connections. */
static int serve(const char *port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port))};
    int l = socket(AF_INET6, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, MAX_CLIENTS) != 0) {
        perror("netbench: listen");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    static struct client cl[MAX_CLIENTS];
    static struct pollfd pfd[MAX_CLIENTS + 1];
    int n = 0;
    for (;;) {
        pfd[0] = (struct pollfd){.fd = l, .events = n < MAX_CLIENTS ? POLLIN : 0};
        for (int i = 0; i < n; i++)
            pfd[i + 1] = (struct pollfd){.fd = cl[i].fd, .events = cl[i].cmd == 'd' && cl[i].arglen == 8 ? POLLOUT : POLLIN};
        if (poll(pfd, (nfds_t)n + 1, -1) < 0)
            continue;
        for (int i = n - 1; i >= 0; i--) {
            struct client *c = &cl[i];
            int done = 0;
            if (!pfd[i + 1].revents)
                continue;
            if (!c->cmd) {
                if (read(c->fd, &c->cmd, 1) != 1)
                    done = 1;
                else if (c->cmd == 'p') {
                    write_all(c->fd, "p", 1);
                    done = 1;
                }
                else if (c->cmd == 'q')
                    return 0;
                else if (c->cmd != 'u' && c->cmd != 'd')
                    done = 1;
            } else if (c->cmd == 'u') {
                ssize_t r = read(c->fd, buf, sizeof(buf));
                if (r > 0)
                    c->count += (uint64_t)r;
                else {
                    write_all(c->fd, &c->count, sizeof(c->count));
                    done = 1;
                }
            } else if (c->arglen < 8) {
                ssize_t r = read(c->fd, c->arg + c->arglen, 8 - c->arglen);
                if (r <= 0)
                    done = 1;
                else if ((c->arglen += (size_t)r) == 8)
                    memcpy(&c->count, c->arg, 8);
            } else {
                size_t k = c->count < sizeof(buf) ? (size_t)c->count : sizeof(buf);
                pattern(buf, c->sent, k);
                ssize_t w = write(c->fd, buf, k);
                if (w > 0) {
                    c->count -= (uint64_t)w;
                    c->sent += (uint64_t)w;
                }
                done = w <= 0 || c->count == 0;
            }
            if (done) {
                close(c->fd);
                cl[i] = cl[--n];
            }
        }
        if (pfd[0].revents & POLLIN) {
            int c = accept(l, NULL, NULL);
            if (c >= 0) {
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                cl[n++] = (struct client){.fd = c};
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "serve") == 0)
        return serve(argv[2]);
    if (argc != 5) {
        fprintf(stderr, "usage: netbench serve PORT | send|recv HOST PORT MIB | ping HOST PORT N\n");
        return 2;
    }
    long arg = atol(argv[4]);
    uint64_t bytes = (uint64_t)arg << 20;
    double t0 = now();
    if (strcmp(argv[1], "send") == 0) {
        int fd = dial(argv[2], argv[3]);
        uint64_t got = 0;
        write_all(fd, "u", 1);
        blast(fd, bytes);
        shutdown(fd, SHUT_WR);
        if (read_all(fd, &got, sizeof(got)) != 0 || got != bytes) {
            fprintf(stderr, "netbench: the server got %llu of %llu bytes\n", (unsigned long long)got, (unsigned long long)bytes);
            return 1;
        }
        printf("%.3f\n", bytes / 1e6 / (now() - t0));
    } else if (strcmp(argv[1], "recv") == 0) {
        int fd = dial(argv[2], argv[3]);
        write_all(fd, "d", 1);
        write_all(fd, &bytes, sizeof(bytes));
        uint64_t got = drain(fd);
        if (got != bytes) {
            fprintf(stderr, "netbench: received %llu of %llu bytes\n", (unsigned long long)got, (unsigned long long)bytes);
            return 1;
        }
        printf("%.3f\n", bytes / 1e6 / (now() - t0));
    } else if (strcmp(argv[1], "ping") == 0) {
        for (long i = 0; i < arg; i++) {
            int fd = dial(argv[2], argv[3]);
            char c;
            if (write_all(fd, "p", 1) != 0 || read_all(fd, &c, 1) != 0) {
                fprintf(stderr, "netbench: ping %ld failed\n", i);
                return 1;
            }
            close(fd);
        }
        printf("%.3f\n", (now() - t0) * 1000 / arg);
    } else {
        fprintf(stderr, "netbench: unknown mode %s\n", argv[1]);
        return 2;
    }
    return 0;
}
