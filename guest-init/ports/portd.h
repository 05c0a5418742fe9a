/* jwsl-ports: the guest side of localhost forwarding (ports_protocol.h). */
#ifndef JWSL_PORTD_H
#define JWSL_PORTD_H

#define PORTD_NAME "jwsl-ports"

/* Serves ports_protocol.h on vsock; returns only on a fatal error. */
int portd_serve(void);
/* The applet: no arguments (vsock), or --unix PATH for host-side tests. */
int portd_main(int argc, char **argv);

#endif
