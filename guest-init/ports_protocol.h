/* Localhost forwarding between the host's service and the guest's jwsl-ports (portd.c).
 *
 * Transport: vsock streams to JWSL_PORTS_PORT (the host reaches it through the VMM's hybrid
 * vsock, "CONNECT <port>\n" -> "OK ...\n"). Each connection starts with a request from the host,
 * JWSL_PORTS_REQUEST_SIZE bytes, little-endian: u16 kind, u16 port. The Java side is
 * dev.jwsl.service.net.PortsConstants; PortsConstantsTest parses this file and checks the values.
 *
 * WATCH (port 0): the guest streams events of JWSL_PORTS_EVENT_SIZE bytes, u16 op, u16 port: first
 * LISTEN for every TCP port some socket listens on (IPv4 or IPv6, any address), then LISTEN and
 * CLOSED as listeners come and go (scanned every JWSL_PORTS_POLL_MS). One watcher at a time: a new
 * WATCH replaces the old one.
 *
 * CONNECT port P: the guest connects to its listener on P (127.0.0.1 or ::1 for a wildcard or
 * loopback listener, else the address it is bound to) and answers one status byte: 0, then the
 * stream carries the connection's bytes both ways (a half-close is passed on); or an errno value
 * (1..255), and the stream ends. At most JWSL_PORTS_MAX_RELAYS at once: more get EMFILE. */
#ifndef JWSL_PORTS_PROTOCOL_H
#define JWSL_PORTS_PROTOCOL_H

#define JWSL_PORTS_PORT 50001
#define JWSL_PORTS_REQUEST_SIZE 4
#define JWSL_PORTS_WATCH 1
#define JWSL_PORTS_CONNECT 2
#define JWSL_PORTS_EVENT_SIZE 4
#define JWSL_PORTS_LISTEN 1
#define JWSL_PORTS_CLOSED 2
#define JWSL_PORTS_POLL_MS 200
#define JWSL_PORTS_MAX_RELAYS 1024

#endif
