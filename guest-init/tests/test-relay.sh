#!/usr/bin/env bash
# Tests the guest side of the command relay (relayd) on the host, without a VM: builds the guest
# init with the host compiler, runs `relayd --unix SOCKET` and drives it with
# tests/relay_client.py. Needs root (a session for another user) and python3.
#
#   guest-init/tests/test-relay.sh [--musl] [TEST...]  all tests, or the named ones (e.g. t_concurrent);
#                                                      --musl: the static musl build, as in the guest
#   RELAY_CFLAGS="-fsanitize=address,undefined"        extra compiler flags (host gcc only)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../sources.sh"
work=$(mktemp -d /tmp/jwsl-relay-test.XXXXXX)
relayd_pid=
cleanup() {
  if [ -n "$relayd_pid" ]; then kill "$relayd_pid" 2>/dev/null || true; wait "$relayd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ "${1:-}" = "--musl" ]; then
  shift
  musl-gcc -static -Os "${guest_init_cflags[@]}" -o "$work/init" "${guest_init_sources[@]}"
else
  # shellcheck disable=SC2086
  gcc -O2 "${guest_init_cflags[@]}" ${RELAY_CFLAGS:-} -o "$work/init" "${guest_init_sources[@]}"
fi
ln -s init "$work/relayd"
"$work/relayd" --unix "$work/relay.sock" &
relayd_pid=$!
for _ in $(seq 100); do [ -S "$work/relay.sock" ] && break; sleep 0.05; done
[ -S "$work/relay.sock" ] || { echo "relayd did not start"; echo "0 passed, 1 failed"; exit 1; }

status=0
python3 "$here/relay_client.py" "$work/relay.sock" "$relayd_pid" "$@" || status=$?
kill -0 "$relayd_pid" 2>/dev/null || { echo "relayd died"; status=1; }
exit $status
