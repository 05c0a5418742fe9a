/* wslpath: host paths <-> distro paths through the host shares, see wslpath.c. */
#ifndef JWSL_WSLPATH_H
#define JWSL_WSLPATH_H

#define WSLPATH_NAME "wslpath"

/* wslpath [-a] [-u|-w|-m] PATH: prints the converted path; exit 1 if it cannot be mapped, 2 for a
 * usage error. */
int wslpath_main(int argc, char **argv);

#endif
