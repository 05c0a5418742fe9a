/* mkdir -p, for the mount points of distros and of shares. */
#ifndef JWSL_MKDIRS_H
#define JWSL_MKDIRS_H

#include <sys/types.h>

/* Errors are ignored: the caller finds out when it uses the path. */
void mkdirs(const char *path, mode_t mode);

#endif
