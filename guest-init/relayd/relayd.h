#ifndef JWSL_RELAYD_H
#define JWSL_RELAYD_H

#define RELAYD_NAME "relayd"

/* The guest side of the command relay (relay_protocol.h): accepts sessions and runs one command
 * per session.
 *   relayd              listen on vsock port JWSL_RELAY_PORT
 *   relayd --unix PATH  listen on a Unix socket instead (testing on the host) */
int relayd_main(int argc, char **argv);

/* Listens on vsock port JWSL_RELAY_PORT and serves sessions; returns 1 only if it cannot listen.
 * Calls listening() (if not NULL) once connections are accepted. Call it in a process of its own
 * (fork it from PID 1): it blocks SIGCHLD, ignores SIGPIPE and reaps every child of the calling
 * process. */
int relayd_serve(void (*listening)(void));

#endif
