/* Steps the guest's wall clock to the host's and reseeds its RNG, see hostsync.c. */
#ifndef JWSL_HOSTSYNC_H
#define JWSL_HOSTSYNC_H

#define HOSTSYNC_NAME "host-sync"

/* Reads the VMM's host data (time and entropy) and applies it: CLOCK_REALTIME is set to the
 * host's, the kernel RNG reseeded. Returns 0; -1 if either failed (said on stderr); -2, silently,
 * if the VMM gave no host data (not jwsl's VMM). */
int host_sync(void);

/* "host-sync": host_sync() as a command, run by the service through the relay after the host
 * resumed from a suspend. Exit 0 when the clock was stepped, 1 otherwise. */
int hostsync_main(int argc, char **argv);

#endif
