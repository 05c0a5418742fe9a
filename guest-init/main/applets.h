/* Applets of the jwsl guest init binary, dispatched on argv[0] by main.c. */
#ifndef JWSL_APPLETS_H
#define JWSL_APPLETS_H

#include "init/init.h"
#include "ports/portd.h"
#include "relayd/relayd.h"
#include "distro/distro.h"
#include "hostsync/hostsync.h"
#include "share/share.h"
#include "wslpath/wslpath.h"

#endif
