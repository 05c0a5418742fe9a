#ifndef JWSL_EXEC_H
#define JWSL_EXEC_H

/* The initramfs carries busybox without its applet links (each link costs boot time when the
 * guest kernel is emulated): a command name that PATH does not resolve runs as a busybox applet. */
#define BUSYBOX "/bin/busybox"

/* execvp(file, argv), then busybox for a bare name not found; returns the first errno. */
int exec_command(const char *file, char **argv);

#endif
