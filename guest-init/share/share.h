/* Host shares (9P) in the utility VM and in each distro: see share.c. */
#ifndef JWSL_SHARE_H
#define JWSL_SHARE_H

#include "wslconf/wslconf.h"

#define SHARE_NAME "jwsl-share"
#define SHARE_MAX 16

/* A share the VM has mounted, held open across a distro's chroot. */
struct vm_share {
    char name[40];
    char host[512];
    int fd; /* O_PATH of /run/jwsl/9p/NAME */
};

int share_main(int argc, char **argv);
/* Before a distro leaves the VM's view: opens every mounted share; returns how many. */
int share_open_all(struct vm_share *out, int max);
/* In the distro (after chroot, /proc and /run mounted): binds the shares where wsl.conf's
 * [automount] says, writes the wslpath table /run/jwsl/shares and closes the fds. */
void share_bind_all(struct vm_share *s, int n, const struct wslconf *conf);

#endif
