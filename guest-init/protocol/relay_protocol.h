/* The command relay protocol between a host client (`wsl`) and the guest init of the utility VM.
 *
 * Transport: one vsock stream per session. The guest init listens on JWSL_RELAY_PORT; a host
 * client reaches it through the VMM's hybrid-vsock Unix socket ("CONNECT <port>\n" -> "OK ...\n").
 * Every message is a frame: an 8-byte header, little-endian
 *     u16 type, u16 flags (0), u32 payload length
 * followed by the payload. Payloads larger than JWSL_RELAY_MAX_PAYLOAD are a protocol error: the
 * receiver closes the connection. The Java side is dev.jwsl.protocol.relay.RelayConstants;
 * RelayConstantsTest parses this file and checks the values agree.
 *
 * Session: the host sends CREATE first; the guest answers STARTED or ERROR. Then, in any order:
 * host -> guest STDIN, STDIN_EOF, RESIZE, SIGNAL; guest -> host STDOUT, STDERR. The guest ends
 * the session with EXIT and closes. If the host connection drops first, the guest sends SIGHUP
 * to the session's process group, and SIGKILL 5 s later if it is still alive.
 */
#ifndef JWSL_RELAY_PROTOCOL_H
#define JWSL_RELAY_PROTOCOL_H

#define JWSL_RELAY_PORT 50000
#define JWSL_RELAY_HEADER_SIZE 8
#define JWSL_RELAY_MAX_PAYLOAD 65536
#define JWSL_RELAY_HOST_CWD "host:"

/* host -> guest */
#define JWSL_RELAY_CREATE 1    /* payload: u16 tty (0/1), u16 rows, u16 cols, u16 argc, then NUL-terminated
                                  strings: user ("" = root), cwd ("" = the user's home; "host:PATH" =
                                  the host directory PATH, mapped through the distro's shares as
                                  wslpath -u does, else home), distro ("" = the
                                  utility VM itself; else the running distro whose namespaces the
                                  command runs in), argv[0..argc-1]
                                  (argc 0 = the user's login shell; arguments may be empty), then env
                                  "K=V" entries up to the end of the payload */
#define JWSL_RELAY_STDIN 2     /* payload: bytes for the process's stdin (or the pty) */
#define JWSL_RELAY_STDIN_EOF 3 /* no payload: close stdin (pty: send VEOF) */
#define JWSL_RELAY_RESIZE 4    /* payload: u16 rows, u16 cols */
#define JWSL_RELAY_SIGNAL 5    /* payload: u32 signal number, sent to the process group */

/* guest -> host */
#define JWSL_RELAY_STARTED 16  /* payload: u32 pid, then JWSL_RELAY_STAGES u32 microseconds since the
                                  guest accepted the connection, at which the session process
                                  started, read CREATE, entered the distro's namespaces, found
                                  the user and saw the command exec (for `JWSL_TIMING`; a host
                                  reads only what is there) */
#define JWSL_RELAY_STAGES 5
#define JWSL_RELAY_ERROR 17    /* payload: UTF-8 message; the session ends */
#define JWSL_RELAY_STDOUT 18   /* payload: bytes (pty sessions: the terminal's output) */
#define JWSL_RELAY_STDERR 19   /* payload: bytes (never in pty sessions) */
#define JWSL_RELAY_EXIT 20     /* payload: u32 exit status (128+N for death by signal N) */

#endif
