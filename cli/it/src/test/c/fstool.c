/* fstool: file-system calls busybox has no applet for, for HostShareIT (built static with musl-gcc
 * into the test distro).
 *   fstool mmap FILE          print FILE's bytes through a read-only shared mapping
 *   fstool lock FILE SECONDS  take a POSIX write lock on all of FILE (F_SETLK), print "locked",
 *                             hold it SECONDS, exit 0; exit 11 with "busy" if another holds it */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "mmap") == 0) {
        int fd = open(argv[2], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0)
            return perror(argv[2]), 1;
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
            return perror("mmap"), 1;
        return fwrite(p, 1, (size_t)st.st_size, stdout) == (size_t)st.st_size ? 0 : 1;
    }
    if (argc == 4 && strcmp(argv[1], "lock") == 0) {
        int fd = open(argv[2], O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0)
            return perror(argv[2]), 1;
        if (fcntl(fd, F_SETLK, &fl) != 0)
            return puts("busy"), 11;
        puts("locked");
        fflush(stdout);
        sleep((unsigned)atoi(argv[3]));
        return 0;
    }
    fputs("usage: fstool mmap FILE | lock FILE SECONDS\n", stderr);
    return 2;
}
