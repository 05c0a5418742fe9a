/*
 * Guest side of VirtioVsockIT (built by the test with musl-gcc -static, appended to the
 * initramfs as /bin/vsock-probe). Kept tiny: guest kernel time is precious on an emulating host.
 *
 *   1. connect to the host (CID 2) port 1234, send "hello from guest\n", half-close, print the
 *      reply as "guest got: ...";
 *   2. listen on port 52, accept one connection and echo it until end of stream.
 *
 * struct sockaddr_vm is spelled out (include/uapi/linux/vm_sockets.h) because musl's headers do
 * not include the kernel's.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#define VMADDR_CID_ANY 0xffffffffu
#define VMADDR_CID_HOST 2

struct sockaddr_vm {
    sa_family_t svm_family;
    unsigned short svm_reserved1;
    unsigned int svm_port;
    unsigned int svm_cid;
    unsigned char svm_zero[sizeof(struct sockaddr) - sizeof(sa_family_t) - sizeof(unsigned short)
                           - 2 * sizeof(unsigned int)];
};

static int fail(const char *what) {
    perror(what);
    return 1;
}

int main(void) {
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_port = 1234, .svm_cid = VMADDR_CID_HOST};
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) return fail("connect");
    const char *hello = "hello from guest\n";
    if (write(s, hello, strlen(hello)) != (ssize_t)strlen(hello)) return fail("write");
    shutdown(s, SHUT_WR);
    char buf[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(s, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)n;
    buf[got] = 0;
    printf("guest got: %s", buf);
    fflush(stdout);
    close(s);

    struct sockaddr_vm l = {.svm_family = AF_VSOCK, .svm_port = 52, .svm_cid = VMADDR_CID_ANY};
    int ls = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (ls < 0 || bind(ls, (struct sockaddr *)&l, sizeof l) < 0 || listen(ls, 1) < 0) return fail("listen");
    printf("listening\n");
    fflush(stdout);
    int c = accept(ls, NULL, NULL);
    if (c < 0) return fail("accept");
    while ((n = read(c, buf, sizeof buf)) > 0) {
        if (write(c, buf, (size_t)n) != n) return fail("echo");
    }
    close(c);
    printf("echo done\n");
    return 0;
}
