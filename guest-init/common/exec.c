#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"

int exec_command(const char *file, char **argv)
{
    execvp(file, argv);
    int err = errno;
    if (err == ENOENT && !strchr(file, '/'))
        execv(BUSYBOX, argv); /* busybox picks the applet from argv[0] */
    return err;
}
