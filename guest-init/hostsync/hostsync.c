/* Host time and entropy for the guest.
 *
 * The VMM's init port latches 48 bytes of host data when its HOST_DATA register is written:
 * "JWSL", the host's wall clock (le64 seconds, le32 nanoseconds) and 32 random bytes, then hands
 * them out a byte per read. Two moments need them:
 *   - right after init's READY, where a VM restored from a snapshot resumes: the wall clock stood
 *     still while the snapshot waited, and every restore must have its own random numbers;
 *   - after the host slept: the guest's clocks stop with the host's CLOCK_MONOTONIC, so the wall
 *     clock comes back behind (WSL #10006); the service runs "/init host-sync" then.
 * Only CLOCK_REALTIME is stepped; CLOCK_MONOTONIC never goes back. Reseeding (RNDADDENTROPY, then
 * RNDRESEEDCRNG) takes effect at once for every reader; the guest has no ACPI for VMGENID.
 * Without the VMM's answer (QEMU) nothing happens.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "hostsync.h"
#include "protocol/protocol.h"

/* <linux/random.h>'s ioctls (musl has no kernel headers): _IOW('R', 3, int[2]) and _IO('R', 7). */
#define RNDADDENTROPY 0x40085203
#define RNDRESEEDCRNG 0x5207

static unsigned long long le_bytes(const unsigned char *p, int n)
{
    unsigned long long v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int read_host_data(unsigned char d[JWSL_HOST_DATA_SIZE])
{
    unsigned char latch = 0;
    int fd = open("/dev/port", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int ok = pwrite(fd, &latch, 1, JWSL_INIT_PORT + JWSL_INIT_PORT_HOST_DATA) == 1;
    for (int i = 0; ok && i < JWSL_HOST_DATA_SIZE; i++)
        ok = pread(fd, &d[i], 1, JWSL_INIT_PORT + JWSL_INIT_PORT_HOST_DATA) == 1;
    close(fd);
    return ok && memcmp(d, "JWSL", 4) == 0 ? 0 : -1;
}

int host_sync(void)
{
    unsigned char d[JWSL_HOST_DATA_SIZE];
    if (read_host_data(d) != 0) {
        explicit_bzero(d, sizeof d);
        return -2;
    }
    int rc = 0;
    struct timespec now = {.tv_sec = (time_t)le_bytes(d + 4, 8), .tv_nsec = (long)le_bytes(d + 12, 4)};
    if (now.tv_nsec >= 1000000000L || clock_settime(CLOCK_REALTIME, &now) != 0) {
        dprintf(2, "jwsl-init: cannot set the clock: %s\n", now.tv_nsec >= 1000000000L ? "bad host time" : strerror(errno));
        rc = -1;
    }
    struct {
        int entropy_count;
        int buf_size;
        unsigned char buf[32];
    } seed = {.entropy_count = 256, .buf_size = 32};
    memcpy(seed.buf, d + 16, 32);
    explicit_bzero(d, sizeof d);
    int r = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    if (r < 0 || ioctl(r, RNDADDENTROPY, &seed) != 0 || ioctl(r, RNDRESEEDCRNG) != 0) {
        dprintf(2, "jwsl-init: cannot reseed the RNG: %s\n", strerror(errno));
        rc = -1;
    }
    if (r >= 0)
        close(r);
    explicit_bzero(&seed, sizeof seed);
    return rc;
}

int hostsync_main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        dprintf(2, "usage: host-sync\n");
        return 2;
    }
    int rc = host_sync();
    if (rc == -2)
        dprintf(2, "host-sync: no host data from the VMM\n");
    return rc == 0 ? 0 : 1;
}
