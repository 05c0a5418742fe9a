/* Distributions in the utility VM: see distro.c. */
#ifndef JWSL_DISTRO_H
#define JWSL_DISTRO_H

#include <stddef.h>
#include <sys/types.h>

#define DISTRO_NAME "jwsl-distro"

int distro_main(int argc, char **argv);
/* 1 if name is a valid distro name ([A-Za-z0-9._-], 1-64, not starting with '.' or '-'). */
int distro_name_ok(const char *name);
/* The running distro's init pid (in the utility VM's PID namespace), or 0. */
pid_t distro_pid(const char *name);
/* Moves the calling single-threaded process into the distro's namespaces; -1 and msg on error. */
int distro_enter(const char *name, char *msg, size_t len);

#endif
