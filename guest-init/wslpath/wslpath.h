/* wslpath: host paths <-> distro paths through the host shares, see wslpath.c. */
#ifndef JWSL_WSLPATH_H
#define JWSL_WSLPATH_H

#define WSLPATH_NAME "wslpath"

/* wslpath [-a] [-u|-w|-m] PATH: prints the converted path; exit 1 if it cannot be mapped, 2 for a
 * usage error. */
int wslpath_main(int argc, char **argv);

/* The distro path of host path host (as "wslpath -u"), into out; -1 if it is on no share. */
int wslpath_host_to_guest(const char *host, char *out, size_t len);

#endif
