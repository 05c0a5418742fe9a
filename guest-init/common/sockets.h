/* Listening sockets of the guest's servers (relayd, jwsl-ports). */
#ifndef JWSL_SOCKETS_H
#define JWSL_SOCKETS_H

/* Opens /dev/null on any of descriptors 0-2 that is closed, so that no socket or pipe of a
 * server lands there (stderr carries its log lines). */
void open_std_fds(void);

/* A stream socket bound to vsock port `port` (any CID), or -1 (said on stderr, as `who`). */
int bind_vsock(const char *who, unsigned port);

/* A stream socket bound to the Unix socket `path` (replacing a stale one), or -1 (said). */
int bind_unix(const char *who, const char *path);

/* The socket of a server applet's command line: vsock port `vsock_port` without arguments, or
 * "--unix PATH" (tests on the host). -1 on failure, -2 on bad usage (both said on stderr). */
int applet_socket(const char *who, int argc, char **argv, unsigned vsock_port);

#endif
