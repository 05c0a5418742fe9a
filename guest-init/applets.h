/* Applets of the jwsl guest init binary, dispatched on argv[0] by main.c. */
#ifndef JWSL_APPLETS_H
#define JWSL_APPLETS_H

#include "init.h"
#include "portd.h"
#include "relayd.h"
#include "distro.h"
#include "share.h"
#include "wslpath.h"

#endif
