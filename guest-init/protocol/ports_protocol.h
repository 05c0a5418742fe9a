/* The localhost forwarding protocol between the host's service (PortForwarder) and the guest
 * init's jwsl-ports (ports/portd.c).
 *
 * Transport: one vsock stream per request. The guest listens on JWSL_PORTS_PORT; the host reaches
 * it through the VMM's hybrid-vsock Unix socket ("CONNECT <port>\n" -> "OK ...\n"). Every stream
 * starts with a request from the host, JWSL_PORTS_REQUEST_SIZE bytes, little-endian:
 *     u16 kind, u16 port
 * A request of another kind (or WATCH with a port, or CONNECT to port 0), or none within 10 s,
 * ends the stream. The Java side is dev.jwsl.protocol.ports.PortsConstants; PortsConstantsTest
 * parses this file and checks the values agree.
 *
 * WATCH (port 0): the guest streams events of JWSL_PORTS_EVENT_SIZE bytes, little-endian
 *     u16 op, u16 port
 * first LISTEN for every TCP port some socket listens on now (IPv4 or IPv6, any address), then
 * LISTEN and CLOSED as listeners come and go (scanned every JWSL_PORTS_POLL_MS). The host sends
 * nothing more; closing the stream ends the watch. One watcher at a time: a new WATCH ends the
 * old one's stream. A watcher that does not read its events is dropped.
 *
 * CONNECT (port P): the guest connects to its listener on TCP port P (at 127.0.0.1 or ::1 for a
 * wildcard or loopback listener, 127.0.0.1 first; else at the address it is bound to) and sends
 * one status byte:
 *   0: connected; the stream then carries the connection's bytes both ways. The end of input of
 *      one side is passed on to the other (shutdown SHUT_WR) after the bytes before it; the guest
 *      closes the stream when both directions have ended, or at once on an error (reset).
 *   else: the errno of the failure (1..255, e.g. 111 ECONNREFUSED), and the stream ends.
 * At most JWSL_PORTS_MAX_RELAYS CONNECT streams at once: more get EMFILE.
 */
#ifndef JWSL_PORTS_PROTOCOL_H
#define JWSL_PORTS_PROTOCOL_H

#define JWSL_PORTS_PORT 50001        /* vsock port the guest listens on */
#define JWSL_PORTS_REQUEST_SIZE 4    /* host -> guest, first bytes of every stream: u16 kind, u16 port */
#define JWSL_PORTS_WATCH 1           /* kind: port 0; the guest then streams events */
#define JWSL_PORTS_CONNECT 2         /* kind: connect to the guest listener on TCP port `port` */
#define JWSL_PORTS_EVENT_SIZE 4      /* guest -> host event: u16 op, u16 port */
#define JWSL_PORTS_LISTEN 1          /* op: some socket listens on TCP port `port` (any address, v4 or v6) */
#define JWSL_PORTS_CLOSED 2          /* op: nothing listens on `port` any more */
#define JWSL_PORTS_POLL_MS 200       /* how often listeners are scanned while a watcher is connected */
#define JWSL_PORTS_MAX_RELAYS 1024   /* concurrent CONNECT streams; beyond: status EMFILE */

#endif
