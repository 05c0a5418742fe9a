/* PID 1 of a one-command jwsl VM.
 *
 * The VMM passes the command on the kernel command line (protocol.h). Init mounts /dev, /proc,
 * /sys and /tmp, runs the command with the serial console as its terminal (tty mode) or with a
 * framed pipe for stdin and the raw console for output (pipe mode), waits for it, drains the
 * console, and writes the exit status to the VMM's exit port. A signal death reports 128+N.
 * busybox poweroff/halt (SIGUSR2/SIGUSR1) end the VM with status 0; reboot (SIGTERM) and
 * ctrl-alt-del (SIGINT) reset it through the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/exec.h"
#include "hostsync/hostsync.h"
#include "init.h"
#include "net/net.h"
#include "ports/portd.h"
#include "relayd/relayd.h"
#include "protocol/protocol.h"

#define MAX_ARGS 256

static void say(const char *fmt, const char *arg)
{
    dprintf(2, "jwsl-init: ");
    dprintf(2, fmt, arg);
    dprintf(2, "\n");
}

static void mount_or_warn(const char *src, const char *dir, const char *type, unsigned long flags,
                          const char *data)
{
    mkdir(dir, 0755);
    if (mount(src, dir, type, flags, data) != 0 && errno != EBUSY)
        say("cannot mount %s", dir);
}

static int b64url_value(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decodes base64url (no padding) in place; returns the decoded length or -1. */
static long b64url_decode(char *s)
{
    size_t n = strlen(s), out = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            s[out++] = (char)((acc >> bits) & 0xff);
        }
    }
    s[out] = '\0';
    return (long)out;
}

/* Splits the decoded NUL-separated command into argv; returns argc or -1. */
static int parse_command(char *encoded, char **argv)
{
    long len = b64url_decode(encoded);
    int argc = 0;
    if (len <= 0)
        return -1;
    for (long i = 0; i < len && argc < MAX_ARGS; ) {
        argv[argc++] = encoded + i;
        i += (long)strlen(encoded + i) + 1;
    }
    argv[argc] = NULL;
    return argc;
}

static void setup_console(void)
{
    int fd;
    if (fcntl(0, F_GETFD) == 0 && fcntl(1, F_GETFD) == 0)
        return;
    fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return;
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2)
        close(fd);
}

/* Writes one byte to a register of the VMM's init port (protocol.h). */
static void init_port_write(int reg, unsigned char value)
{
    int fd = open("/dev/port", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        pwrite(fd, &value, 1, JWSL_INIT_PORT + reg);
        close(fd);
    }
}

/* Ends the VM: the VMM stops at the exit-port write; reset or power off if it does not. */
static void __attribute__((noreturn)) end_vm(int status, int cmd)
{
    kill(-1, SIGTERM);
    kill(-1, SIGKILL);
    tcdrain(1);
    sync();
    if (cmd == RB_POWER_OFF)
        init_port_write(JWSL_INIT_PORT_EXIT, (unsigned char)status);
    reboot(cmd);
    reboot(RB_AUTOBOOT);
    for (;;)
        pause();
}

/* busybox poweroff/halt signal PID 1 with SIGUSR2/SIGUSR1, reboot with SIGTERM, and the kernel
 * sends SIGINT for ctrl-alt-del. */
static void on_shutdown_signal(int signo)
{
    switch (signo) {
    case SIGUSR1:
    case SIGUSR2:
        end_vm(0, RB_POWER_OFF);
    case SIGTERM:
    case SIGINT:
        end_vm(0, RB_AUTOBOOT);
    default:
        break;
    }
}

static void relay_listening(void)
{
    init_port_write(JWSL_INIT_PORT_READY, 1);
    host_sync();
}

/* The forwarding relay of localhost forwarding (portd.c), in its own process. */
static pid_t start_portd(const sigset_t *blocked)
{
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_UNBLOCK, blocked, NULL);
        _exit(portd_serve());
    }
    return pid;
}

/* Utility-VM mode: relayd serves commands over vsock and jwsl-ports localhost forwarding; PID 1
 * reaps orphans and handles shutdown. The VM is ready for the host once relayd listens. */
static void __attribute__((noreturn)) serve_relay(int sfd, const sigset_t *blocked)
{
    pid_t relayd = fork();
    if (relayd == 0) {
        sigprocmask(SIG_UNBLOCK, blocked, NULL);
        _exit(relayd_serve(relay_listening));
    }
    pid_t portd = start_portd(blocked);
    time_t portd_started = time(NULL);
    for (;;) {
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof(si)) != sizeof(si))
            continue;
        if (si.ssi_signo != SIGCHLD) {
            on_shutdown_signal(si.ssi_signo);
            continue;
        }
        int wstatus;
        pid_t pid;
        while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
            if (pid == relayd) {
                say("the command relay stopped (%s): ending the VM", WIFSIGNALED(wstatus) ? "killed" : "exited");
                end_vm(125, RB_POWER_OFF);
            }
            if (pid == portd) {
                /* Forwarding is not worth the VM: start it again, at most once a second. */
                say("localhost forwarding stopped (%s): restarting it", WIFSIGNALED(wstatus) ? "killed" : "exited");
                if (time(NULL) - portd_started < 1)
                    sleep(1);
                portd = start_portd(blocked);
                portd_started = time(NULL);
            }
        }
    }
}

static int exit_status(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 255;
}

static pid_t spawn(char **argv, int stdin_fd, int tty, const sigset_t *blocked)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sigprocmask(SIG_UNBLOCK, blocked, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    if (tty) {
        ioctl(0, TIOCSCTTY, 1);
    } else {
        dup2(stdin_fd, 0);
        close(stdin_fd);
    }
    int err = exec_command(argv[0], argv);
    say(err == ENOENT ? "%s: command not found" : "%s: cannot execute", argv[0]);
    _exit(err == ENOENT ? 127 : 126);
}

/* Pipe mode: decoded console input waiting to be written to the command's stdin. */
struct relay {
    int console;
    int pipe_w;      /* -1 once closed */
    int escape;      /* previous byte was JWSL_INPUT_ESCAPE */
    int eof;         /* end of input seen: close pipe_w when pending is empty */
    unsigned char pending[4096];
    size_t len;
};

static void relay_read(struct relay *r)
{
    unsigned char buf[1024];
    size_t room = sizeof(r->pending) - r->len; /* each input byte yields at most one */
    ssize_t n = read(r->console, buf, room < sizeof(buf) ? room : sizeof(buf));
    for (ssize_t i = 0; i < n && !r->eof; i++) {
        if (r->escape) {
            r->escape = 0;
            if (buf[i] == JWSL_INPUT_EOF)
                r->eof = 1;
            else
                r->pending[r->len++] = buf[i];
        } else if (buf[i] == JWSL_INPUT_ESCAPE) {
            r->escape = 1;
        } else {
            r->pending[r->len++] = buf[i];
        }
    }
}

static void relay_write(struct relay *r)
{
    if (r->pipe_w >= 0 && r->len > 0) {
        ssize_t w = write(r->pipe_w, r->pending, r->len);
        if (w > 0) {
            memmove(r->pending, r->pending + w, r->len - (size_t)w);
            r->len -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN) {
            close(r->pipe_w); /* the command closed its stdin: drop the rest */
            r->pipe_w = -1;
        }
    }
    if (r->pipe_w < 0)
        r->len = 0;
    if (r->eof && r->len == 0 && r->pipe_w >= 0) {
        close(r->pipe_w);
        r->pipe_w = -1;
    }
}

int init_main(int argc, char **argv)
{
    char *cmd_argv[MAX_ARGS + 1];
    char *shell_argv[] = {"-sh", NULL};
    char **run = shell_argv;
    sigset_t blocked;
    struct relay relay = {.console = 0, .pipe_w = -1};
    int tty, sfd, pipefd[2] = {-1, -1};
    pid_t child;
    (void)argc;
    (void)argv;

    mount_or_warn("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    setup_console();
    mount_or_warn("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_or_warn("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_or_warn("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    mount_or_warn("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");

    net_setup(getenv(JWSL_NET_PARAM));

    char *cmd = getenv(JWSL_CMD_PARAM);
    char *mode = getenv(JWSL_STDIN_PARAM);
    char *term = getenv(JWSL_TERM_PARAM);
    char *winsize = getenv(JWSL_WINSIZE_PARAM);
    char *vm_mode = getenv(JWSL_MODE_PARAM);
    int relay_mode = vm_mode && strcmp(vm_mode, JWSL_MODE_RELAY) == 0;
    tty = !(mode && strcmp(mode, "pipe") == 0);
    if (cmd && *cmd) {
        if (parse_command(cmd, cmd_argv) <= 0) {
            say("malformed %s", JWSL_CMD_PARAM);
            end_vm(125, RB_POWER_OFF);
        }
        run = cmd_argv;
    }
    clearenv();
    setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
    setenv("HOME", "/root", 1);
    setenv("TERM", tty && term ? term : (tty ? "linux" : "dumb"), 1);
    if (chdir("/root") != 0 && chdir("/") != 0)
        say("cannot chdir to %s", "/");

    sigemptyset(&blocked);
    sigaddset(&blocked, SIGCHLD);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGUSR1);
    sigaddset(&blocked, SIGUSR2);
    sigaddset(&blocked, SIGHUP);
    sigprocmask(SIG_BLOCK, &blocked, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &blocked, SFD_CLOEXEC);

    if (relay_mode)
        serve_relay(sfd, &blocked);
    if (tty && winsize) {
        struct winsize ws = {0};
        if (sscanf(winsize, "%hux%hu", &ws.ws_row, &ws.ws_col) == 2)
            ioctl(0, TIOCSWINSZ, &ws);
    }
    if (!tty) {
        struct termios t;
        if (tcgetattr(0, &t) == 0) {
            cfmakeraw(&t);
            tcsetattr(0, TCSANOW, &t);
        }
        if (pipe2(pipefd, O_CLOEXEC) != 0)
            end_vm(125, RB_POWER_OFF);
        fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
        relay.pipe_w = pipefd[1];
    }
    /* READY before the command starts: a snapshot taken at READY (jwsl-vmm --snapshot) then
     * restores to a command that has not run yet, with the clock and RNG synced before it does.
     * Host input that comes early waits in the pipe or the console's input queue. */
    init_port_write(JWSL_INIT_PORT_READY, 1);
    host_sync();
    child = spawn(run, pipefd[0], tty, &blocked);
    if (pipefd[0] >= 0)
        close(pipefd[0]);

    for (;;) {
        struct pollfd fds[3] = {{.fd = sfd, .events = POLLIN}, {.fd = -1}, {.fd = -1}};
        if (!tty && !relay.eof && relay.len < sizeof(relay.pending) / 2)
            fds[1] = (struct pollfd){.fd = relay.console, .events = POLLIN};
        if (!tty && relay.pipe_w >= 0 && relay.len > 0)
            fds[2] = (struct pollfd){.fd = relay.pipe_w, .events = POLLOUT};
        if (poll(fds, 3, -1) < 0 && errno != EINTR)
            end_vm(125, RB_POWER_OFF);
        if (fds[1].revents & (POLLIN | POLLHUP))
            relay_read(&relay);
        if (!tty)
            relay_write(&relay);
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) != sizeof(si))
                continue;
            switch (si.ssi_signo) {
            case SIGCHLD: {
                int wstatus;
                pid_t pid;
                while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
                    if (pid == child)
                        end_vm(exit_status(wstatus), RB_POWER_OFF);
                }
                break;
            }
            default:
                on_shutdown_signal(si.ssi_signo);
                break;
            }
        }
    }
}
