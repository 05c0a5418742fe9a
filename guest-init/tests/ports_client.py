#!/usr/bin/env python3
"""A host-side client of localhost forwarding (guest-init/protocol/ports_protocol.h) and the tests
that guest-init/tests/test-portd.sh runs against `jwsl-ports --unix PATH`. The daemon scans this
host's listeners, so the tests only look at ports they open themselves.

    ports_client.py SOCKET PORTD_PID [TEST...]   run the tests, print 'N passed, N failed'
"""
import errno
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
    """The #defines of ports_protocol.h, so that the client cannot drift from it."""
    values = {}
    with open(os.path.join(HERE, "..", "protocol", "ports_protocol.h")) as f:
        for m in re.finditer(r"^#define JWSL_PORTS_(\w+) (\d+)", f.read(), re.M):
            values[m.group(1)] = int(m.group(2))
    return values


K = _constants()
WATCH, CONNECT, LISTEN, CLOSED = K["WATCH"], K["CONNECT"], K["LISTEN"], K["CLOSED"]
EVENT_SIZE, MAX_RELAYS = K["EVENT_SIZE"], K["MAX_RELAYS"]
PATH = None
PID = None


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    check(got == want, f"{what}: got {got!r}, want {want!r}")


def request(kind, port, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(PATH)
    s.sendall(struct.pack("<HH", kind, port))
    return s


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_to_end(s):
    """Everything up to the end of the stream; a reset counts as the end."""
    out = []
    while True:
        try:
            chunk = s.recv(1 << 16)
        except ConnectionResetError:
            return b"".join(out)
        if not chunk:
            return b"".join(out)
        out.append(chunk)


def connect(port):
    """A CONNECT stream and its status byte (None: closed without one)."""
    s = request(CONNECT, port)
    b = read_exact(s, 1)
    return s, None if b is None else b[0]


def listener(host, backlog=128):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, 0))
    s.listen(backlog)
    return s


def serve(lsock, handler):
    """Accepts on lsock in a thread, one thread per connection running handler(conn)."""
    def conn_thread(c):
        with c:
            try:
                handler(c)
            except OSError:
                pass

    def accept_loop():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=conn_thread, args=(c,), daemon=True).start()
    threading.Thread(target=accept_loop, daemon=True).start()
    return lsock


def echo(c):
    while True:
        data = c.recv(1 << 16)
        if not data:
            break
        c.sendall(data)
    c.shutdown(socket.SHUT_WR)


def fds():
    return len(os.listdir(f"/proc/{PID}/fd"))


def settled_fds():
    """The daemon's descriptor count once streams that just ended are closed."""
    last, same = fds(), 0
    while same < 4:
        time.sleep(0.05)
        now = fds()
        same = same + 1 if now == last else 0
        last = now
    return last


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def alive():
    s, status = connect(1)  # port 1: nothing listens there on a sane host
    s.close()
    check(status is not None and status != 0, f"daemon answers CONNECT (status {status})")


class Watcher:
    """Reads events in a thread; state[port] is the last op seen, times[port, op] when."""
    def __init__(self):
        self.sock = request(WATCH, 0, timeout=None)
        self.state, self.times = {}, {}
        self.ended = threading.Event()
        self.cond = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                e = read_exact(self.sock, EVENT_SIZE)
            except OSError:
                e = None
            if e is None:
                self.ended.set()
                with self.cond:
                    self.cond.notify_all()
                return
            op, port = struct.unpack("<HH", e)
            with self.cond:
                check(op in (LISTEN, CLOSED), f"event op {op}")
                self.state[port] = op
                self.times[port, op] = time.monotonic()
                self.cond.notify_all()

    def wait(self, port, op, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.state.get(port) != op:
                left = deadline - time.monotonic()
                if left <= 0 or self.ended.is_set():
                    raise AssertionError(f"no {'LISTEN' if op == LISTEN else 'CLOSED'} for port {port} "
                                         f"within {timeout}s (last: {self.state.get(port)})")
                self.cond.wait(left)

    def close(self):
        self.sock.close()


# ---- tests ----

def t_watch():
    v4, v6, anyv4 = listener("127.0.0.1"), listener("::1"), listener("0.0.0.0")
    ports = [s.getsockname()[1] for s in (v4, v6, anyv4)]
    w = Watcher()
    try:
        for p in ports:
            w.wait(p, LISTEN, 2)
        t0 = time.monotonic()
        new = listener("::")
        w.wait(new.getsockname()[1], LISTEN, 1)
        t_new = time.monotonic() - t0
        t0 = time.monotonic()
        v6.close()
        w.wait(ports[1], CLOSED, 1)
        t_closed = time.monotonic() - t0
        for p in (ports[0], ports[2], new.getsockname()[1]):
            eq(w.state[p], LISTEN, f"port {p}")
        print(f"  new listener reported in {t_new * 1000:.0f} ms, closed one in {t_closed * 1000:.0f} ms")
        # A second watcher replaces the first and starts from the full picture.
        w2 = Watcher()
        try:
            w2.wait(new.getsockname()[1], LISTEN, 2)
            check(w.ended.wait(2), "the first watcher's stream ends")
            eq(w2.state.get(ports[1]), None, "the closed port in the second watcher's first picture")
        finally:
            w2.close()
        new.close()
    finally:
        w.close()
        for s in (v4, v6, anyv4):
            s.close()


def t_watch_same_port_both_families():
    """A port taken by IPv4 and IPv6 listeners stays LISTEN until both are gone."""
    a = listener("127.0.0.1")
    port = a.getsockname()[1]
    b = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    b.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    b.bind(("::1", port))
    b.listen(1)
    w = Watcher()
    try:
        w.wait(port, LISTEN, 2)
        a.close()
        time.sleep(3 * K["POLL_MS"] / 1000)
        eq(w.state[port], LISTEN, "still listening on ::1")
        b.close()
        w.wait(port, CLOSED, 1)
    finally:
        w.close()
        a.close()
        b.close()


def one_echo(port, data):
    s, status = connect(port)
    with s:
        eq(status, 0, "status")
        err = []

        def writer():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError as e:
                err.append(e)
        t = threading.Thread(target=writer)
        t.start()
        back = read_to_end(s)
        t.join()
        check(not err, f"writing: {err}")
        eq(len(back), len(data), "bytes echoed")
        eq(hashlib.sha256(back).hexdigest(), hashlib.sha256(data).hexdigest(), "sha256")


def t_concurrent_echo():
    srv = serve(listener("127.0.0.1", 512), echo)
    port = srv.getsockname()[1]
    one_echo(port, b"warm-up")  # the first CONNECT opens the sock_diag socket, kept for later scans
    fds_before = settled_fds()
    n, size = 100, 1 << 20
    blobs = [os.urandom(size) for _ in range(n)]
    errors = []

    def run(i):
        try:
            one_echo(port, blobs[i])
        except Exception as e:  # noqa: BLE001
            errors.append(f"{i}: {e!r}")
    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    elapsed = time.monotonic() - t0
    srv.close()
    check(not errors, f"{len(errors)} failed: {errors[:3]}")
    print(f"  {n} x {size >> 20} MiB echoed in {elapsed:.2f} s ({2 * n * size / elapsed / 1e6:.0f} MB/s both ways)")
    deadline = time.monotonic() + 5
    while fds() > fds_before and time.monotonic() < deadline:
        time.sleep(0.05)
    eq(fds(), fds_before, "daemon descriptors after the relays")


def t_connect_families():
    """A listener on ::1 only, and one on a specific address (127.0.0.2), are reached."""
    for host in ("::1", "127.0.0.2", "0.0.0.0", "::"):
        srv = serve(listener(host), echo)
        try:
            one_echo(srv.getsockname()[1], host.encode() * 1000)
        except AssertionError as e:
            raise AssertionError(f"{host}: {e}") from None
        finally:
            srv.close()


def t_connect_refused():
    gone = listener("127.0.0.1")
    port = gone.getsockname()[1]
    gone.close()
    s, status = connect(port)
    with s:
        eq(status, errno.ECONNREFUSED, "status")
        eq(read_to_end(s), b"", "after the status")


def t_guest_closes_first():
    """The guest server talks and closes; the host sees its bytes and the end, then may still
    send (the daemon passes the end on and closes when both directions are done)."""
    def hello(c):
        c.sendall(b"hello\n")
    srv = serve(listener("127.0.0.1"), hello)
    try:
        s, status = connect(srv.getsockname()[1])
        with s:
            eq(status, 0, "status")
            eq(read_to_end(s), b"hello\n", "greeting, then the end")
    finally:
        srv.close()


def t_guest_reset():
    """A guest server that resets the connection ends the host stream."""
    def rst(c):
        c.recv(10)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    srv = serve(listener("127.0.0.1"), rst)
    try:
        s, status = connect(srv.getsockname()[1])
        with s:
            eq(status, 0, "status")
            s.sendall(b"x")
            read_to_end(s)  # ends (EOF or reset) instead of hanging
    finally:
        srv.close()


def t_backpressure():
    """A host that does not read, against a guest that writes 64 MiB: the daemon's memory stays
    bounded, and everything arrives once the host reads."""
    size = 64 << 20
    chunk = os.urandom(1 << 20)

    def flood(c):
        for _ in range(size // len(chunk)):
            c.sendall(chunk)
        c.shutdown(socket.SHUT_WR)
        c.recv(1)
    srv = serve(listener("127.0.0.1"), flood)
    try:
        before = rss_kib()
        s, status = connect(srv.getsockname()[1])
        with s:
            eq(status, 0, "status")
            time.sleep(1)
            grown = rss_kib() - before
            check(grown < 4096, f"daemon RSS grew by {grown} KiB with a stalled reader")
            s.shutdown(socket.SHUT_WR)
            got, h = 0, hashlib.sha256()
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                got += len(d)
                h.update(d)
            eq(got, size, "bytes")
            want = hashlib.sha256(chunk * (size // len(chunk))).hexdigest()
            eq(h.hexdigest(), want, "sha256")
    finally:
        srv.close()


def cpu_ticks():
    with open(f"/proc/{PID}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def t_idle_no_spin():
    """Relays stalled in half-closed states cost no CPU: no busy loop on a hung-up side."""
    blob = os.urandom(1 << 20)

    def talk_and_close(c):
        c.sendall(blob)  # fits the loopback buffers: the end (FIN) follows at once

    def silent(c):
        c.recv(1)
    srv1, srv2 = serve(listener("127.0.0.1"), talk_and_close), serve(listener("127.0.0.1"), silent)
    try:
        a, status_a = connect(srv1.getsockname()[1])  # guest done and gone, host not reading
        b, status_b = connect(srv2.getsockname()[1])  # host done, guest silent
        eq((status_a, status_b), (0, 0), "status")
        a.shutdown(socket.SHUT_WR)
        b.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        t0 = cpu_ticks()
        time.sleep(1)
        used = cpu_ticks() - t0
        check(used <= 5, f"daemon used {used} ticks in 1 s while relays are stalled")
        with a:
            eq(hashlib.sha256(read_to_end(a)).hexdigest(), hashlib.sha256(blob).hexdigest(), "sha256")
        b.close()
    finally:
        srv1.close()
        srv2.close()


def t_garbage():
    for req in (struct.pack("<HH", 9, 9), struct.pack("<HH", WATCH, 80), struct.pack("<HH", CONNECT, 0),
                struct.pack("<HH", 0, 0), b"\xff" * 64):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(PATH)
        with s:
            s.sendall(req)
            try:
                eq(s.recv(16), b"", f"answer to {req!r}")
            except ConnectionResetError:
                pass
    # half a request, then gone
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(PATH)
    s.sendall(b"\x02")
    s.close()
    # a few hundred connections that vanish at once
    socks = []
    for _ in range(300):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(PATH)
        socks.append(s)
    for s in socks:
        s.close()
    alive()


def t_silent():
    """A client that sends no request is closed after 10 s; others are served meanwhile."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(PATH)
    with s:
        t0 = time.monotonic()
        alive()
        eq(s.recv(1), b"", "end of the stream")
        waited = time.monotonic() - t0
        check(9 <= waited <= 12, f"closed after {waited:.1f} s")


def t_max_relays():
    """Beyond JWSL_PORTS_MAX_RELAYS concurrent relays: EMFILE; and they all end cleanly."""
    srv = listener("127.0.0.1", 4096)  # never accepts: connections wait in the backlog
    port = srv.getsockname()[1]
    fds_before = settled_fds()
    streams = []
    try:
        for _ in range(MAX_RELAYS):
            s, status = connect(port)
            streams.append(s)
            eq(status, 0, "status within the limit")
        s, status = connect(port)
        s.close()
        eq(status, errno.EMFILE, "status beyond the limit")
    finally:
        for s in streams:
            s.close()
        srv.close()
    deadline = time.monotonic() + 5
    while fds() > fds_before and time.monotonic() < deadline:
        time.sleep(0.05)
    eq(fds(), fds_before, "daemon descriptors")
    alive()


TESTS = [t_watch, t_watch_same_port_both_families, t_concurrent_echo, t_connect_families,
         t_connect_refused, t_guest_closes_first, t_guest_reset, t_backpressure, t_idle_no_spin, t_garbage,
         t_max_relays, t_silent]


def main():
    global PATH, PID
    PATH, PID = sys.argv[1], int(sys.argv[2])
    only = sys.argv[3:]
    fds_start = fds()
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
            report(t.__name__[2:], t)

    def no_leaks():
        # + the sock_diag socket, kept open once a scan has made it
        deadline = time.monotonic() + 5
        while fds() > fds_start + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        check(fds() <= fds_start + 1, f"daemon descriptors: {fds()} at the end, {fds_start} at the start")
    report("no_leaks", no_leaks)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
