#include <stdio.h>
#include <sys/stat.h>

#include "mkdirs.h"

void mkdirs(const char *path, mode_t mode)
{
    char buf[640];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, mode);
            *p = '/';
        }
    }
    mkdir(buf, mode);
}
