#!/usr/bin/env python3
"""A host-side client of the command relay (guest-init/protocol/relay_protocol.h) and the tests
that guest-init/tests/test-relay.sh runs against `relayd --unix PATH`.

    relay_client.py SOCKET RELAYD_PID    run the tests, print 'N passed, N failed'
"""
import hashlib
import os
import re
import socket
import struct
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def _constants():
    """The #defines of relay_protocol.h, so that the client cannot drift from it."""
    values = {}
    with open(os.path.join(HERE, "..", "protocol", "relay_protocol.h")) as f:
        for m in re.finditer(r"^#define JWSL_RELAY_(\w+) (\d+)", f.read(), re.M):
            values[m.group(1)] = int(m.group(2))
    return values


K = _constants()
CREATE, STDIN, STDIN_EOF, RESIZE, SIGNAL = (K[n] for n in ("CREATE", "STDIN", "STDIN_EOF", "RESIZE", "SIGNAL"))
STARTED, ERROR, STDOUT, STDERR, EXIT = (K[n] for n in ("STARTED", "ERROR", "STDOUT", "STDERR", "EXIT"))
MAX_PAYLOAD = K["MAX_PAYLOAD"]


def create_payload(argv, user="", cwd="", distro="", env=(), tty=False, rows=24, cols=80):
    out = struct.pack("<HHHH", 1 if tty else 0, rows, cols, len(argv))
    for s in [user, cwd, distro, *argv, *env]:
        out += s.encode() + b"\0"
    return out


class Result:
    def __init__(self):
        self.pid = None
        self.stdout = b""
        self.stderr = b""
        self.exit = None
        self.error = None
        self.closed = False  # the guest closed the connection after EXIT/ERROR


class Session:
    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.lock = threading.Lock()

    def send(self, type_, payload=b""):
        with self.lock:
            self.sock.sendall(struct.pack("<HHI", type_, 0, len(payload)) + payload)

    def send_raw(self, data):
        self.sock.sendall(data)

    def create(self, argv, **kw):
        self.send(CREATE, create_payload(argv, **kw))

    def stdin(self, data):
        for i in range(0, len(data), MAX_PAYLOAD):
            self.send(STDIN, data[i:i + MAX_PAYLOAD])

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def frame(self):
        """The next frame as (type, payload), or None at end of stream."""
        h = self._read(8)
        if h is None:
            return None
        type_, flags, length = struct.unpack("<HHI", h)
        assert flags == 0 and length <= MAX_PAYLOAD, (type_, flags, length)
        payload = self._read(length) if length else b""
        assert payload is not None, "truncated frame"
        return type_, payload

    def collect(self, res=None, until=None):
        """Reads frames into a Result until EXIT/ERROR and end of stream, or until until(res)."""
        res = res or Result()
        while True:
            f = self.frame()
            if f is None:
                res.closed = True
                return res
            t, p = f
            if t == STARTED:
                assert res.pid is None, "two STARTED"
                res.pid = struct.unpack("<I", p)[0]
            elif t == STDOUT:
                res.stdout += p
            elif t == STDERR:
                res.stderr += p
            elif t == EXIT:
                res.exit = struct.unpack("<I", p)[0]
                res.closed = self.frame() is None
                return res
            elif t == ERROR:
                res.error = p.decode("utf-8", "replace")
                res.closed = self.frame() is None
                return res
            else:
                raise AssertionError(f"unexpected frame type {t}")
            if until and until(res):
                return res

    def close(self):
        self.sock.close()


def run(path, argv, stdin=None, eof=True, **kw):
    """Runs a command; stdin (bytes) is written by a thread while the output is read."""
    s = Session(path)
    try:
        s.create(argv, **kw)

        def feed():
            try:
                if stdin:
                    s.stdin(stdin)
                if eof:
                    s.send(STDIN_EOF)
            except OSError:
                pass
        t = threading.Thread(target=feed, daemon=True)
        t.start()
        res = s.collect()
        t.join(10)
        return res
    finally:
        s.close()


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append((int(d), fields[0]))
            except OSError:
                pass
    return out


# ---------------------------------------------------------------- tests

def check(cond, what):
    if not cond:
        raise AssertionError(what)


def eq(got, want, what=""):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def t_exit_codes(P):
    for argv, code in ((["true"], 0), (["false"], 1), (["sh", "-c", "exit 7"], 7)):
        r = run(P, argv)
        eq(r.exit, code, " ".join(argv))
        check(r.pid and r.closed and r.error is None, f"{argv}: started and closed")


def t_sigkill(P):
    eq(run(P, ["sh", "-c", "kill -9 $$"]).exit, 137, "kill -9")


def t_signal_frame(P):
    s = Session(P)
    s.create(["sh", "-c", "echo ready; exec sleep 100"])
    r = s.collect(until=lambda r: b"ready" in r.stdout)
    s.send(SIGNAL, struct.pack("<I", 0))    # invalid: ignored
    s.send(SIGNAL, struct.pack("<I", 99))   # invalid: ignored
    s.send(SIGNAL, struct.pack("<I", 15))
    r = s.collect(r)
    eq(r.exit, 143, "SIGTERM through SIGNAL")
    s.close()


def t_stdout_stderr(P):
    r = run(P, ["sh", "-c", "echo out; echo err >&2; echo out2"])
    eq(r.stdout, b"out\nout2\n", "stdout")
    eq(r.stderr, b"err\n", "stderr")
    eq(r.exit, 0, "exit")


def t_stdin_sha256(P):
    data = os.urandom(1 << 20)
    r = run(P, ["sha256sum"], stdin=data)
    eq(r.stdout.split()[0].decode(), hashlib.sha256(data).hexdigest(), "sha256 of 1 MiB")
    eq(r.exit, 0, "exit")


def t_cat_roundtrip(P):
    data = os.urandom(4 << 20)
    r = run(P, ["cat"], stdin=data)
    check(r.stdout == data, f"cat: {len(r.stdout)} bytes back of {len(data)}, equal={r.stdout == data}")
    eq(r.exit, 0, "exit")


def t_large_output_slow_reader(P):
    s = Session(P)
    s.create(["sh", "-c", "head -c 16777216 /dev/zero; echo done >&2"])
    s.send(STDIN_EOF)
    time.sleep(1.0)  # not reading: the command must block, relayd must not buffer
    r = s.collect()
    eq(len(r.stdout), 16 << 20, "output length")
    eq(r.stderr, b"done\n", "stderr")
    eq(r.exit, 0, "exit")
    s.close()


def t_stdin_ignored(P):
    # The command never reads stdin and exits: the relay must not hang on the unread input.
    r = run(P, ["sh", "-c", "exec 0<&-; sleep 0.3; exit 3"], stdin=os.urandom(1 << 20))
    eq(r.exit, 3, "exit")


def t_tty_ctrl_c(P):
    s = Session(P)
    s.create(["sh", "-c", "echo ready; exec sleep 100"], tty=True)
    r = s.collect(until=lambda r: b"ready" in r.stdout)
    s.send(STDIN, b"\x03")
    r = s.collect(r)
    eq(r.exit, 130, "sleep after ^C")
    s.close()


def t_tty_ctrl_c_trap(P):
    s = Session(P)
    s.create(["sh", "-c", 'trap "exit 42" INT; sleep 100 & echo ready; wait'], tty=True)
    r = s.collect(until=lambda r: b"ready" in r.stdout)
    s.send(STDIN, b"\x03")
    r = s.collect(r)
    eq(r.exit, 42, "trap INT")
    s.close()


def t_tty_resize(P):
    r = run(P, ["stty", "size"], tty=True, rows=24, cols=80, eof=False)
    eq(r.stdout.strip(), b"24 80", "initial size")
    s = Session(P)
    s.create(["sh", "-c", "echo ready; read x; stty size"], tty=True, rows=24, cols=80)
    r = s.collect(until=lambda r: b"ready" in r.stdout)
    s.send(RESIZE, struct.pack("<HH", 50, 132))
    s.send(STDIN, b"go\n")
    r = s.collect(r)
    check(b"50 132" in r.stdout, f"stty size after RESIZE: {r.stdout!r}")
    eq(r.exit, 0, "exit")
    s.close()


def t_tty_sigwinch(P):
    s = Session(P)
    s.create(["sh", "-c", 'trap "echo winch; exit 5" WINCH; echo ready; while :; do sleep 0.05; done'], tty=True)
    r = s.collect(until=lambda r: b"ready" in r.stdout)
    s.send(RESIZE, struct.pack("<HH", 30, 100))
    r = s.collect(r)
    check(b"winch" in r.stdout, f"SIGWINCH: {r.stdout!r}")
    eq(r.exit, 5, "exit")
    s.close()


def t_tty_stderr_and_eof(P):
    r = run(P, ["sh", "-c", "echo err >&2; tty"], tty=True, eof=False)
    check(b"err" in r.stdout and b"/dev/pts/" in r.stdout and r.stderr == b"", f"tty output {r!r}")
    r = run(P, ["cat"], stdin=b"abc\n", tty=True)   # STDIN_EOF -> VEOF -> cat sees end of file
    check(b"abc" in r.stdout, f"cat output {r.stdout!r}")
    eq(r.exit, 0, "cat exit after VEOF")


def t_tty_output_complete(P):
    # Output written just before the exit is read before the pty reports EIO.
    r = run(P, ["sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' a; exit 4"], tty=True, eof=False)
    check(r.stdout == b"a" * 1000000, f"tty output: {len(r.stdout)} bytes")
    eq(r.exit, 4, "exit")


def t_unknown_user(P):
    r = run(P, ["true"], user="nosuchuser")
    eq(r.error, "user nosuchuser not found", "error")
    check(r.closed and r.pid is None, "closed, not started")


def t_other_user(P):
    r = run(P, ["sh", "-c", 'id -u; id -G; echo "$HOME $USER $LOGNAME $SHELL"; pwd'], user="nobody")
    eq(r.stdout.decode().split("\n")[:4], ["65534", "65534", "/nonexistent nobody nobody /usr/sbin/nologin", "/"],
       "nobody")
    r = run(P, ["sh", "-c", "id -u; pwd"], user="root")
    eq(r.stdout, b"0\n/root\n", "root")


def t_command_not_found(P):
    r = run(P, ["nosuchcmd-xyz", "a"])
    eq(r.error, "nosuchcmd-xyz: command not found", "error")
    check(r.closed and r.exit is None, "closed, no EXIT")
    r = run(P, ["/etc/passwd"])
    eq(r.error, "/etc/passwd: Permission denied", "error")


def t_cwd(P):
    eq(run(P, ["pwd"], cwd="/tmp").stdout, b"/tmp\n", "cwd")
    r = run(P, ["pwd"], cwd="/nonexistent-dir")
    eq(r.error, "cannot change directory to /nonexistent-dir: No such file or directory", "bad cwd")


def t_env(P):
    r = run(P, ["env"], env=["FOO=bar baz", "PATH=/usr/bin:/bin", "HOME=/custom"])
    got = sorted(r.stdout.decode().splitlines())
    want = sorted(["FOO=bar baz", "PATH=/usr/bin:/bin", "HOME=/custom", "USER=root", "LOGNAME=root",
                   "SHELL=" + root_shell()])
    eq(got, want, "environment")


def root_shell():
    with open("/etc/passwd") as f:
        for line in f:
            p = line.rstrip("\n").split(":")
            if p[0] == "root":
                return p[6] or "/bin/sh"
    return "/bin/sh"


def t_login_shell(P):
    r = run(P, [], stdin=b'echo "argv0=$0"; exit 3\n', env=["PATH=/usr/bin:/bin"])
    want = "argv0=-" + os.path.basename(root_shell())
    check(want.encode() in r.stdout, f"login shell: {r.stdout!r} {r.stderr!r}")
    eq(r.exit, 3, "exit")


def t_fds(P):
    r = run(P, ["sh", "-c", "ls /proc/$$/fd"])
    eq(sorted(r.stdout.split()), [b"0", b"1", b"2"], "descriptors of the command")
    r = run(P, ["sh", "-c", "ls /proc/$$/fd"], tty=True, eof=False)
    eq(sorted(r.stdout.split()), [b"0", b"1", b"2"], "descriptors of the command (tty)")


def t_malformed(P):
    def payload_case(name, payload, type_=CREATE):
        s = Session(P)
        s.send(type_, payload)
        r = s.collect()
        s.close()
        check(r.error and r.closed and r.pid is None, f"{name}: {r.__dict__}")

    ok = create_payload(["true"])
    payload_case("STDIN first", b"abc", STDIN)
    payload_case("short", b"\0\0\0")
    payload_case("tty flag 5", struct.pack("<HHHH", 5, 24, 80, 0) + b"\0\0")
    payload_case("argc 2000", struct.pack("<HHHH", 0, 24, 80, 2000) + b"\0\0" + b"x\0" * 2000)
    payload_case("argc beyond payload", struct.pack("<HHHH", 0, 24, 80, 3) + b"\0\0a\0")
    payload_case("unterminated", ok[:-1])
    payload_case("no cwd", struct.pack("<HHHH", 0, 24, 80, 0) + b"\0")
    payload_case("env without =", ok + b"NOEQUALS\0")
    payload_case("env =x", ok + b"=x\0")
    payload_case("1025 env", ok + b"A=1\0" * 1025)
    # Oversized: only the header is sent; the guest must answer without waiting for the payload.
    s = Session(P)
    s.send_raw(struct.pack("<HHI", CREATE, 0, MAX_PAYLOAD + 1))
    r = s.collect()
    s.close()
    check(r.error and r.closed, f"oversized: {r.__dict__}")
    # And 1024 env entries are fine.
    r = run(P, ["true"], env=[f"A{i}=1" for i in range(1024)])
    eq(r.exit, 0, "1024 env entries")


# A background sleep, announced once it runs: a signal that came between fork and exec would be lost.
BG_SLEEP = 'sleep 100 & p=$!; while [ "$(cat /proc/$p/comm 2>/dev/null)" != sleep ]; do :; done; echo ready; wait'


def t_protocol_error_mid_session(P):
    s = Session(P)
    s.create(["sh", "-c", 'trap "echo hup > /tmp/relay-hup2" HUP; ' + BG_SLEEP])
    r = s.collect(until=lambda r: b"ready" in r.stdout)
    try:
        os.unlink("/tmp/relay-hup2")
    except FileNotFoundError:
        pass
    s.send(99, b"")
    r = s.collect(r)
    check(r.closed and r.exit is None, "connection closed on an unknown frame type")
    check(wait_for(lambda: os.path.exists("/tmp/relay-hup2"), 5), "process got SIGHUP")
    check(wait_for(lambda: not pid_alive(r.pid), 5), "process gone")
    s.close()


def t_disconnect_hup(P):
    try:
        os.unlink("/tmp/relay-hup")
    except FileNotFoundError:
        pass
    s = Session(P)
    s.create(["sh", "-c", 'trap "echo hup > /tmp/relay-hup" HUP; ' + BG_SLEEP])
    r = s.collect(until=lambda r: b"ready" in r.stdout)
    s.close()
    check(wait_for(lambda: os.path.exists("/tmp/relay-hup"), 5), "/tmp/relay-hup written")
    with open("/tmp/relay-hup") as f:
        eq(f.read(), "hup\n", "trap output")
    check(wait_for(lambda: not pid_alive(r.pid), 5), "process gone")


def t_disconnect_tty(P):
    s = Session(P)
    s.create(["sh", "-c", "echo ready; exec sleep 100"], tty=True)
    r = s.collect(until=lambda r: b"ready" in r.stdout)
    s.close()
    check(wait_for(lambda: not pid_alive(r.pid), 5), "tty process gone after disconnect")


def t_disconnect_kill(P):
    s = Session(P)
    s.create(["sh", "-c", 'trap "" HUP; echo ready; exec sleep 100'])
    r = s.collect(until=lambda r: b"ready" in r.stdout)
    t0 = time.time()
    s.close()
    time.sleep(1)
    check(pid_alive(r.pid), "HUP-ignoring process still alive after 1 s")
    check(wait_for(lambda: not pid_alive(r.pid), 8), "process killed")
    dt = time.time() - t0
    check(4.5 < dt < 7.5, f"killed after {dt:.1f} s, want about 5 s")


def t_disconnect_straggler(P):
    # The command exits, a HUP-ignoring background job keeps its stdout open: no EXIT yet; on
    # disconnect the process group gets SIGHUP, then SIGKILL.
    s = Session(P)
    s.create(["sh", "-c", 'trap "" HUP; sleep 100 & echo "bg $!"; exit 0'])
    r = s.collect(until=lambda r: b"\n" in r.stdout)
    bg = int(r.stdout.split()[1])
    time.sleep(0.3)
    check(pid_alive(bg) and not pid_alive(r.pid), "command exited, background job alive")
    t0 = time.time()
    s.close()
    check(wait_for(lambda: not pid_alive(bg), 8), "background job killed")
    check(4.5 < time.time() - t0 < 7.5, "killed after about 5 s")


def t_disconnect_while_stdin_stalled(P):
    s = Session(P)
    s.create(["sh", "-c", "echo ready; exec sleep 100"])
    r = s.collect(until=lambda r: b"ready" in r.stdout)
    s.sock.settimeout(2)
    try:
        s.stdin(os.urandom(4 << 20))  # the command never reads: the relay stalls, then so do we
    except (socket.timeout, OSError):
        pass
    check(pid_alive(r.pid), "still running while stalled")
    s.close()
    check(wait_for(lambda: not pid_alive(r.pid), 3), "SIGHUP on disconnect while stalled")


def t_concurrent(P):
    results = {}

    def one(i):
        try:
            results[i] = run(P, ["sh", "-c", 'sleep 0.2; echo "session $N"; echo "err $N" >&2; exit $((N % 7))'],
                             env=[f"N={i}"])
        except Exception as e:  # noqa: BLE001
            results[i] = e
    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in range(50):
        r = results.get(i)
        check(isinstance(r, Result), f"session {i}: {r!r}")
        eq((r.stdout, r.stderr, r.exit), (f"session {i}\n".encode(), f"err {i}\n".encode(), i % 7), f"session {i}")


TESTS = [t_exit_codes, t_sigkill, t_signal_frame, t_stdout_stderr, t_stdin_sha256, t_cat_roundtrip,
         t_large_output_slow_reader, t_stdin_ignored, t_tty_ctrl_c, t_tty_ctrl_c_trap, t_tty_resize,
         t_tty_sigwinch, t_tty_stderr_and_eof, t_tty_output_complete, t_unknown_user, t_other_user, t_command_not_found, t_cwd,
         t_env, t_login_shell, t_fds, t_malformed, t_protocol_error_mid_session, t_disconnect_hup,
         t_disconnect_tty, t_disconnect_kill, t_disconnect_straggler, t_disconnect_while_stdin_stalled,
         t_concurrent]


def main():
    path, relayd = sys.argv[1], int(sys.argv[2])
    only = sys.argv[3:]
    fds_before = len(os.listdir(f"/proc/{relayd}/fd"))
    passed = failed = 0

    def report(name, fn):
        nonlocal passed, failed
        t0 = time.time()
        try:
            fn()
            passed += 1
            print(f"PASS {name} ({time.time() - t0:.1f}s)", flush=True)
        except Exception:  # noqa: BLE001
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc(limit=3)

    for t in TESTS:
        if not only or t.__name__ in only:
            report(t.__name__[2:], lambda t=t: t(path))

    def no_leaks():
        check(wait_for(lambda: children(relayd) == [], 10), f"session handlers left: {children(relayd)}")
        eq(len(os.listdir(f"/proc/{relayd}/fd")), fds_before, "relayd descriptors")
    report("no_leaks", no_leaks)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
