#ifndef JWSL_INIT_H
#define JWSL_INIT_H

#define INIT_NAME "init"

/* PID 1 of a one-command VM: mounts the basic filesystems, runs the command from the
 * kernel command line on the console, reports its exit status and ends the VM. */
int init_main(int argc, char **argv);

#endif
