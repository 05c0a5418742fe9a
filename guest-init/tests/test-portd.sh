#!/usr/bin/env bash
# Tests the guest side of localhost forwarding (jwsl-ports, ports/portd.c) on the host, without a VM:
# builds the guest init with the host compiler, runs `jwsl-ports --unix SOCKET` and drives it with
# tests/ports_client.py. It scans this host's listeners (sock_diag), so the tests open their own
# ports on the loopback and only look at those. Needs python3 (and root for nothing in particular).
#
#   guest-init/tests/test-portd.sh [--musl] [TEST...]  all tests, or the named ones (e.g. t_watch);
#                                                      --musl: the static musl build, as in the guest
#   PORTD_CFLAGS="-fsanitize=address,undefined"        extra compiler flags (host gcc only)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../sources.sh"
work=$(mktemp -d /tmp/jwsl-portd-test.XXXXXX)
portd_pid=
cleanup() {
  if [ -n "$portd_pid" ]; then kill "$portd_pid" 2>/dev/null || true; wait "$portd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ "${1:-}" = "--musl" ]; then
  shift
  musl-gcc -static -Os "${guest_init_cflags[@]}" -o "$work/init" "${guest_init_sources[@]}"
else
  # shellcheck disable=SC2086
  gcc -O2 "${guest_init_cflags[@]}" ${PORTD_CFLAGS:-} -o "$work/init" "${guest_init_sources[@]}"
fi
ln -s init "$work/jwsl-ports"
# The descriptor limits a process of the guest starts with (the kernel's for init); the daemon
# raises the soft one for its relays.
(ulimit -Sn 1024 && ulimit -Hn 4096 && exec "$work/jwsl-ports" --unix "$work/ports.sock" 2>"$work/log") &
portd_pid=$!
for _ in $(seq 100); do [ -S "$work/ports.sock" ] && break; sleep 0.05; done
[ -S "$work/ports.sock" ] || { cat "$work/log"; echo "jwsl-ports did not start"; echo "0 passed, 1 failed"; exit 1; }

status=0
python3 "$here/ports_client.py" "$work/ports.sock" "$portd_pid" "$@" || status=$?
kill -0 "$portd_pid" 2>/dev/null || { echo "jwsl-ports died"; status=1; }
if [ -s "$work/log" ]; then echo "jwsl-ports stderr:"; cat "$work/log"; fi
exit $status
