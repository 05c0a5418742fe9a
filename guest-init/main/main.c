/* jwsl guest init: one static binary, applets chosen by argv[0]. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "applets.h"

struct applet {
    const char *name;
    int (*main)(int argc, char **argv);
};

static const struct applet applets[] = {
    {INIT_NAME, init_main},
    {RELAYD_NAME, relayd_main},
    {PORTD_NAME, portd_main},
    {DISTRO_NAME, distro_main},
    {SHARE_NAME, share_main},
    {WSLPATH_NAME, wslpath_main},
    {HOSTSYNC_NAME, hostsync_main},
};

int main(int argc, char **argv)
{
    const char *name = argc > 0 ? strrchr(argv[0], '/') : NULL;
    name = name ? name + 1 : (argc > 0 ? argv[0] : "");
    /* "/init APPLET ARGS..." from a shell: the initramfs has one binary and no links to it. */
    if (strcmp(name, INIT_NAME) == 0 && getpid() != 1 && argc > 1) {
        name = argv[1];
        argc--;
        argv++;
    }
    for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
        if (strcmp(name, applets[i].name) == 0)
            return applets[i].main(argc, argv);
    }
    fprintf(stderr, "jwsl-init: unknown applet '%s'\n", name);
    return 127;
}
