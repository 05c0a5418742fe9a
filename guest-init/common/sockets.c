/* Listening sockets of the guest's servers: the vsock port they serve in the VM, or a Unix
 * socket when a test runs them on the host. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockets.h"
#include "vsock.h"

void open_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            int n = open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd) {
                dup2(n, fd);
                close(n);
            }
        }
    }
}

int bind_vsock(const char *who, unsigned port)
{
    struct jwsl_sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = JWSL_VMADDR_CID_ANY};
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        dprintf(2, "%s: cannot listen on vsock port %u: %s\n", who, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int bind_unix(const char *who, const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        dprintf(2, "%s: socket path too long: %s\n", who, path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        dprintf(2, "%s: cannot listen on %s: %s\n", who, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int applet_socket(const char *who, int argc, char **argv, unsigned vsock_port)
{
    if (argc == 1)
        return bind_vsock(who, vsock_port);
    if (argc != 3 || strcmp(argv[1], "--unix") != 0) {
        dprintf(2, "usage: %s [--unix PATH]\n", who);
        return -2;
    }
    return bind_unix(who, argv[2]);
}
