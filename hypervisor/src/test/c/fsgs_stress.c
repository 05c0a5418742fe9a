/*
 * fsgs-stress: does a guest process keep its FS and GS bases? The guard for issue 14 (on PVM
 * hosts, guest processes segfaulted at start reading thread-local storage through %fs: the FS
 * base the process set with arch_prctl(ARCH_SET_FS) was gone on the way back to user mode).
 *
 *   fsgs-stress spawn N W   N short-lived processes (posix_spawn + exec of "fsgs-stress check",
 *                           which checks its TLS and exits 0), from W spawners at once
 *   fsgs-stress threads T M T threads, each with its own FS (TLS) and GS base, M rounds each of a
 *                           system call, a signal to itself, a yield and a move to another CPU,
 *                           checking both bases after every step
 *   fsgs-stress exec N      a chain of N execs: before each, GS base is set; after it, GS base
 *                           must be 0 again and TLS must work
 *   fsgs-stress broken      sets a wrong FS base and exits 3 if the check sees it (proves the check)
 *   fsgs-stress fault       reads address 2: the kernel's crash report (and, with pvm_compat, its
 *                           FS/GS base line) for a process that really faulted
 *
 * Each prints one summary line and exits 0 only if every check passed. Static, musl; built and
 * appended to the initramfs by GuestProcessStressIT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* <asm/prctl.h> (musl-gcc has no kernel headers) */
#define ARCH_SET_GS 0x1001
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

/* A static TLS variable: read through a negative offset from %fs, as the crashing code did. */
static __thread volatile uint64_t tls_canary = 0x6a77736c54534cULL;

static uint64_t fs_self(void)
{
    uint64_t v;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(v));
    return v;
}

static uint64_t gs_word(void)
{
    uint64_t v;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(v));
    return v;
}

static uint64_t get_base(int code)
{
    unsigned long base = 0;
    if (syscall(SYS_arch_prctl, code, &base) != 0)
        return ~0ULL;
    return base;
}

/*
 * 0 if the hardware's FS base is the one the kernel holds for this thread (musl keeps the TCB's
 * own address at %fs:0), equals `expect` unless that is 0, and static TLS reads as written.
 */
static int tls_ok(uint64_t expect)
{
    uint64_t base = get_base(ARCH_GET_FS);
    return fs_self() == base && (expect == 0 || base == expect) && tls_canary == 0x6a77736c54534cULL ? 0 : -1;
}

static int check_main(void)
{
    if (tls_ok(0) != 0) {
        fprintf(stderr, "fsgs-stress: check: FS base %#llx, %%fs:0 %#llx\n",
                (unsigned long long)get_base(ARCH_GET_FS), (unsigned long long)fs_self());
        return 3;
    }
    return 0;
}

/* The check must see a wrong FS base: point FS at a fake TCB whose self word is wrong. */
static int broken_main(void)
{
    static uint64_t fake[1024];
    fake[512] = 0x5ca1ab1e;
    /* A raw system call: a libc wrapper with a stack protector would read its canary through
     * the new FS base on return and abort. */
    long rc;
    __asm__ volatile("syscall" : "=a"(rc) : "0"((long)SYS_arch_prctl), "D"(0x1002L /* ARCH_SET_FS */), "S"(&fake[512])
                     : "rcx", "r11", "memory");
    if (rc != 0)
        return 2;
    int detected = tls_ok(0) != 0;
    syscall(SYS_exit_group, detected ? 3 : 0); /* no libc: its TLS is gone */
    return 2;
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* ---- spawn ---- */

struct spawn_result { long runs, bad_exit, signalled, spawn_errors; };

static void spawn_loop(const char *self, long n, struct spawn_result *r)
{
    char *argv[] = {(char *)self, "check", NULL};
    for (long i = 0; i < n; i++) {
        pid_t pid;
        int err = posix_spawn(&pid, self, NULL, NULL, argv, environ);
        if (err != 0) {
            r->spawn_errors++;
            continue;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        r->runs++;
        if (WIFSIGNALED(st)) {
            r->signalled++;
            fprintf(stderr, "fsgs-stress: spawn: run %ld killed by signal %d\n", i, WTERMSIG(st));
        } else if (WEXITSTATUS(st) != 0) {
            r->bad_exit++;
            fprintf(stderr, "fsgs-stress: spawn: run %ld exited %d\n", i, WEXITSTATUS(st));
        }
    }
}

static int spawn_main(const char *self, long n, int workers)
{
    struct spawn_result total = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int fds[64][2];
    pid_t pids[64];
    if (workers < 1 || workers > 64)
        return 2;
    for (int w = 0; w < workers; w++) {
        if (pipe(fds[w]) != 0)
            return 2;
        pids[w] = fork();
        if (pids[w] == 0) {
            struct spawn_result r = {0};
            spawn_loop(self, n / workers + (w < n % workers), &r);
            ssize_t wr = write(fds[w][1], &r, sizeof r);
            _exit(wr == (ssize_t)sizeof r ? 0 : 1);
        }
        close(fds[w][1]);
    }
    int lost = 0;
    for (int w = 0; w < workers; w++) {
        struct spawn_result r = {0};
        if (read(fds[w][0], &r, sizeof r) != (ssize_t)sizeof r)
            lost++;
        int st;
        waitpid(pids[w], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            lost++;
        total.runs += r.runs;
        total.bad_exit += r.bad_exit;
        total.signalled += r.signalled;
        total.spawn_errors += r.spawn_errors;
    }
    long failed = total.bad_exit + total.signalled + total.spawn_errors + lost;
    printf("fsgs-stress spawn: %ld runs, %ld failed (%ld bad exits, %ld signalled, %ld spawn errors, %d workers lost), %ld ms\n",
           total.runs, failed, total.bad_exit, total.signalled, total.spawn_errors, lost, elapsed_ms(&t0));
    return failed == 0 && total.runs == n ? 0 : 1;
}

/* ---- threads ---- */

struct gs_slot { uint64_t self; uint64_t pad[7]; };

static _Atomic long thread_failures;
static long rounds;
static int ncpus;

/* The handler runs on the interrupted thread: both bases must be that thread's there too. */
static __thread struct gs_slot *my_slot;
static __thread uint64_t my_tcb; /* FS base as clone() set it */
static void on_signal(int sig)
{
    (void)sig;
    if (tls_ok(my_tcb) != 0 || my_slot == NULL || gs_word() != my_slot->self)
        thread_failures++;
}

static void *thread_main(void *arg)
{
    struct gs_slot *slot = arg;
    slot->self = (uint64_t)(uintptr_t)slot;
    if (syscall(SYS_arch_prctl, ARCH_SET_GS, slot) != 0) {
        thread_failures++;
        return NULL;
    }
    my_slot = slot;
    my_tcb = fs_self();
    for (long i = 0; i < rounds; i++) {
        int cpu = (int)(i % ncpus);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        switch (i % 4) {
        case 0: syscall(SYS_getppid); break;
        case 1: raise(SIGUSR1); break;
        case 2: sched_yield(); break;
        case 3: sched_setaffinity(0, sizeof set, &set); break;
        }
        if (tls_ok(my_tcb) != 0 || gs_word() != slot->self || get_base(ARCH_GET_GS) != slot->self) {
            thread_failures++;
            fprintf(stderr, "fsgs-stress: threads: round %ld: FS %#llx (thread %p), GS %#llx (slot %p)\n", i,
                    (unsigned long long)get_base(ARCH_GET_FS), (void *)pthread_self(),
                    (unsigned long long)get_base(ARCH_GET_GS), (void *)slot);
        }
    }
    return NULL;
}

static int threads_main(int nthreads, long m)
{
    pthread_t t[64];
    static struct gs_slot slots[64];
    if (nthreads < 1 || nthreads > 64)
        return 2;
    rounds = m;
    ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpus < 1)
        ncpus = 1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, thread_main, &slots[i]) != 0)
            return 2;
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    printf("fsgs-stress threads: %d threads x %ld rounds on %d CPUs, %ld failed, %ld ms\n", nthreads, m, ncpus,
           (long)thread_failures, elapsed_ms(&t0));
    return thread_failures == 0 ? 0 : 1;
}

/* ---- exec ---- */

static int exec_main(const char *self, long left, long total)
{
    /* After an exec the kernel gives the new image a GS base of 0 and musl sets FS anew. */
    if (left < total && (get_base(ARCH_GET_GS) != 0 || tls_ok(0) != 0)) {
        printf("fsgs-stress exec: after exec %ld: GS base %#llx, TLS %s: failed\n", total - left,
               (unsigned long long)get_base(ARCH_GET_GS), tls_ok(0) == 0 ? "ok" : "broken");
        return 1;
    }
    if (left == 0) {
        printf("fsgs-stress exec: %ld execs, 0 failed\n", total);
        return 0;
    }
    static struct gs_slot slot;
    slot.self = (uint64_t)(uintptr_t)&slot;
    if (syscall(SYS_arch_prctl, ARCH_SET_GS, &slot) != 0 || gs_word() != slot.self) {
        printf("fsgs-stress exec: GS base not set before exec %ld: failed\n", total - left + 1);
        return 1;
    }
    char l[24], t[24];
    snprintf(l, sizeof l, "%ld", left - 1);
    snprintf(t, sizeof t, "%ld", total);
    char *argv[] = {(char *)self, "exec-next", l, t, NULL};
    execve(self, argv, environ);
    printf("fsgs-stress exec: execve: %s\n", strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *self = "/proc/self/exe";
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return check_main();
    if (argc >= 2 && strcmp(argv[1], "broken") == 0)
        return broken_main();
    if (argc >= 2 && strcmp(argv[1], "fault") == 0)
        return *(volatile int *)(uintptr_t)argc; /* a real page fault: shows what the kernel logs */
    if (check_main() != 0)
        return 3;
    if (argc == 4 && strcmp(argv[1], "spawn") == 0)
        return spawn_main(argv[0][0] == '/' ? argv[0] : self, atol(argv[2]), atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "threads") == 0)
        return threads_main(atoi(argv[2]), atol(argv[3]));
    if (argc == 3 && strcmp(argv[1], "exec") == 0)
        return exec_main(argv[0][0] == '/' ? argv[0] : self, atol(argv[2]), atol(argv[2]));
    if (argc == 4 && strcmp(argv[1], "exec-next") == 0)
        return exec_main(argv[0], atol(argv[2]), atol(argv[3]));
    fprintf(stderr, "usage: fsgs-stress spawn N WORKERS | threads T ROUNDS | exec N\n");
    return 2;
}
