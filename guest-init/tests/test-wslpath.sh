#!/usr/bin/env bash
# Tests the wslpath applet on the host, without a VM: builds the guest init as build.sh does,
# links wslpath to it and runs it against share tables written here (JWSL_SHARES_FILE), with
# shares and symlinks in a temp dir where the tests need real files.
#
#   guest-init/tests/test-wslpath.sh [--gcc]        --gcc: host gcc instead of the static musl build
#   WSLPATH_CFLAGS="-fsanitize=address,undefined"  extra compiler flags (host gcc only)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../sources.sh"
work=$(mktemp -d /tmp/jwsl-wslpath-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
work=$(cd "$work" && pwd -P) # getcwd and realpath give physical paths

if [ "${1:-}" = "--gcc" ]; then
  # shellcheck disable=SC2086
  gcc -O2 "${guest_init_cflags[@]}" ${WSLPATH_CFLAGS:-} -o "$work/init" "${guest_init_sources[@]}"
else
  musl-gcc -static -Os "${guest_init_cflags[@]}" -o "$work/init" "${guest_init_sources[@]}"
fi
ln -s init "$work/wslpath"

usage="usage: wslpath [-a] [-u|-w|-m] PATH"
n=0 failed=0
table=$work/missing # JWSL_SHARES_FILE for the checks that follow
dir=$work           # the directory they run in

# check NAME STATUS STDOUT STDERR -- ARGS...: runs wslpath ARGS; stdout must be STDOUT and a newline
# (nothing if STDOUT is empty), stderr must be STDERR (and a newline).
check() {
  local name=$1 want_rc=$2 want_out=$3 want_err=$4 rc=0
  shift 5
  (cd "$dir" && JWSL_SHARES_FILE=$table exec "$work/wslpath" "$@") >"$work/out" 2>"$work/err" || rc=$?
  if [ -n "$want_out" ]; then printf '%s\n' "$want_out" >"$work/want_out"; else : >"$work/want_out"; fi
  if [ -n "$want_err" ]; then printf '%s\n' "$want_err" >"$work/want_err"; else : >"$work/want_err"; fi
  n=$((n + 1))
  if [ "$rc" = "$want_rc" ] && cmp -s "$work/out" "$work/want_out" && cmp -s "$work/err" "$work/want_err"; then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    echo "#   wslpath $*"
    echo "#   got:  status $rc, stdout '$(cat "$work/out")', stderr '$(cat "$work/err")'"
    echo "#   want: status $want_rc, stdout '$want_out', stderr '$want_err'"
    failed=$((failed + 1))
  fi
}
# ok NAME STDOUT -- ARGS...: succeeds with STDOUT and nothing on stderr
ok() { local name=$1 out=$2; shift 3; check "$name" 0 "$out" "" -- "$@"; }
# unshared NAME -- ARGS...: fails with "not on a host share" for the last argument
unshared() { local name=$1; shift 2; check "$name" 1 "" "wslpath: ${*: -1}: not on a host share" -- "$@"; }
# bad NAME -- ARGS...: a usage error
bad() { local name=$1; shift 2; check "$name" 2 "" "$usage" -- "$@"; }

# --- no table: the host's / at /mnt/host
ok "default table, default -u" /mnt/host/home/me/x -- /home/me/x
ok "default table, -u" /mnt/host/home/me/x -- -u /home/me/x
ok "-u / is the share's root" /mnt/host -- -u /
ok "-w of the share's root is /" / -- -w /mnt/host
ok "-w of the share's root with a trailing /" / -- -w /mnt/host/
ok "-w of a missing path" /home/me/x -- -w /mnt/host/home/me/x
ok "-m == -w" /home/me/x -- -m /mnt/host/home/me/x
ok "-m == -w for the root" / -- -m /mnt/host
ok "-w -m together" /x -- -w -m /mnt/host/x
ok "-u drops a trailing /" /mnt/host/home/me -- -u /home/me/
ok "-u normalises //, . and .." /mnt/host/home/you/x -- -u //home/./me/../you//x/
ok "-u .. at / stays at /" /mnt/host/etc -- -u /../../etc
ok "-w normalises .." /b -- -w /mnt/host/a/../b
ok "-w .. at / stays at /" /x -- -w /../mnt/host/./x
unshared "-w .. out of the share" -- -w /mnt/host/../etc/passwd
unshared "-w off the shares" -- -w /etc/passwd
unshared "-m off the shares" -- -m /etc/passwd
unshared "-w: /mnt/hostile is not under /mnt/host" -- -w /mnt/hostile/x
unshared "-w / is off the shares" -- -w /
ok "-a with an absolute path" /mnt/host/home/me -- -a /home/me
ok "-a -w with an absolute path" /home/me -- -a -w /mnt/host/home/me

# --- relative paths
ok "-u keeps a relative path" foo/../bar/ -- -u foo/../bar/
ok "default mode keeps a relative path" ./foo -- ./foo
ok "-w keeps a relative path" foo/../bar/ -- -w foo/../bar/
ok "-m keeps a relative path" ../x -- -m ../x
ok "-w keeps ." . -- -w .
mkdir -p "$work/cwd"
dir=$work/cwd
ok "-a -u resolves against the current directory" "$work/cwd/bar" -- -a -u foo/../bar/
ok "-au" "$work/cwd/bar" -- -au foo/../bar
ok "-a alone is -a -u" "$work/cwd" -- -a .
unshared "-a -w off the shares" -- -a -w foo
ok "-- ends the options" -foo -- -- -foo
ok "-a -- -foo" "$work/cwd/-foo" -- -a -- -foo

# --- a table: nested host and guest paths, a guest path with a space, a share on real files
cat >"$work/shares" <<EOF
host / /mnt/host
me /home/me /mnt/me
proj /home/me/proj/ /mnt/proj
data /srv/data /mnt/host/data
sp /srv/sp /mnt/with space
files /hostdir $work/share
EOF
table=$work/shares
dir=$work
ok "-u: longest host prefix" /mnt/proj/a -- -u /home/me/proj/a
ok "-u: longer host prefix" /mnt/me/x -- -u /home/me/x
ok "-u: a share's host root" /mnt/me -- -u /home/me
ok "-u: /home/me does not hold /home/meg" /mnt/host/home/meg/x -- -u /home/meg/x
ok "-u: /home/me/proj does not hold /home/me/projects" /mnt/me/projects -- -u /home/me/projects
ok "-u: .. leaves a share" /mnt/host/home/x -- -u /home/me/proj/../../x
ok "-w: longest guest prefix" /srv/data/f -- -w /mnt/host/data/f
ok "-w: /mnt/host/data does not hold /mnt/host/database" /database -- -w /mnt/host/database
ok "-w: a share's guest root" /home/me/proj -- -w /mnt/proj
ok "-w: a share inside another's mount point" /home/me/proj/a -- -w /mnt/me/proj/a
ok "-u: a guest path with a space" "/mnt/with space/a" -- -u /srv/sp/a
ok "-w: a guest path with a space" /srv/sp/a -- -w "/mnt/with space/a"
ok "-w: .. in a share" /home/me/b -- -w /mnt/me/a/../b

# --- symlinks: the "files" share is $work/share, the distro's own files are in $work/distro
mkdir -p "$work/share/sub" "$work/distro"
touch "$work/share/sub/file" "$work/share/top"
ln -s "$work/share/sub" "$work/distro/link"
ln -s /etc "$work/share/etc-link"
ok "-w of an existing path in a share" /hostdir/sub/file -- -w "$work/share/sub/file"
ok "-w through a distro symlink into a share" /hostdir/sub/file -- -w "$work/distro/link/file"
ok "-w of a distro symlink into a share" /hostdir/sub -- -w "$work/distro/link"
ok "-w: .. after a symlink goes up from its target" /hostdir/top -- -w "$work/distro/link/../top"
unshared "-w: a missing path is not resolved through symlinks" -- -w "$work/distro/link/missing"
ok "-w: a host symlink in a share with an absolute target" /hostdir/etc-link -- -w "$work/share/etc-link"
ok "-u leaves symlinks alone" "$work/share/sub" -- -u /hostdir/sub
dir=$work/distro/link
ok "-a -w in a symlinked directory" /hostdir/sub/file -- -a -w file
ok "-aw" /hostdir/top -- -aw ../top
ok "-wa" /hostdir/sub -- -wa .
ok "-am" /hostdir/sub/x -- -am x
dir=$work

# --- a table without a / share; comments, blank, malformed and relative lines are skipped
cat >"$work/shares2" <<'EOF'
# NAME HOSTPATH GUESTPATH

bad-line
rel home/x /mnt/x
proj /home/me/proj /mnt/proj/
EOF
table=$work/shares2
ok "a share with trailing slashes" /mnt/proj/a -- -u /home/me/proj/a
unshared "-u off the shares" -- -u /etc/passwd
unshared "-u: /home/me/proj does not hold /home/me/projx" -- -u /home/me/projx
unshared "-u / off the shares" -- -u /
unshared "a relative share is skipped" -- -w /mnt/x/a
: >"$work/empty"
table=$work/empty
unshared "an empty table has no shares" -- /
table=$work/missing

# --- usage errors
bad "no arguments" --
bad "only options" -- -a
bad "two paths" -- /a /b
bad "an unknown option" -- -x /a
bad "an unknown option among known ones" -- -ax /a
bad "-u with -w" -- -u -w /a
bad "-uw" -- -uw /a
bad "-m with -u" -- -m -u /a
bad "an empty path" -- ""
bad "an option after the path" -- /a -w

echo "$((n - failed)) passed, $failed failed"
[ "$failed" = 0 ]
