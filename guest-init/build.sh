#!/usr/bin/env bash
# Builds the guest init (static, musl) and the initramfs: /init, busybox (with /bin/sh and
# /usr/bin/env links) and the empty mount points init uses, as an uncompressed cpio (measured
# in kernel-build/README.md, "Boot time"). Cached outside the repo under a hash of the busybox
# version and of every file here but tests/ (the sources in all folders, this script, sources.sh).
#
#   guest-init/build.sh          build if needed, print the initramfs path
#   guest-init/build.sh --print  print the path, fail if not built
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/sources.sh"
cache_root=${JWSL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/jwsl}
busybox=/bin/busybox

die() { echo "guest-init: $*" >&2; exit 1; }
command -v musl-gcc >/dev/null || die "musl-gcc missing: run scripts/install-prereqs"
[ -x "$busybox" ] && "$busybox" --list >/dev/null 2>&1 || die "$busybox missing: run scripts/install-prereqs"
file "$busybox" 2>/dev/null | grep -q 'statically linked' || die "$busybox is not static (install busybox-static)"

# With paths relative to here: includes resolve by path, so a move can change the binary; where
# the checkout is cannot.
hash=$( { "$busybox" 2>&1 | head -1
          cd "$here" && find . -path ./tests -prune -o -type f -print | LC_ALL=C sort | xargs -d '\n' sha256sum; } \
  | sha256sum | cut -c1-16)
out=$cache_root/initramfs/$hash

if [ "${1:-}" = "--print" ]; then
  [ -f "$out/initramfs.cpio" ] || die "initramfs not built: run guest-init/build.sh"
  echo "$out/initramfs.cpio"; exit 0
fi
if [ -f "$out/initramfs.cpio" ]; then echo "$out/initramfs.cpio"; exit 0; fi

stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
musl-gcc -static -Os "${guest_init_cflags[@]}" -o "$stage/init" "${guest_init_sources[@]}"
strip "$stage/init"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc}
cp "$busybox" "$stage/bin/busybox"
# Only the links scripts name by absolute path: every initramfs entry costs ~20 ms of emulated
# kernel time here. busybox's shell runs its applets without links (FEATURE_SH_STANDALONE), and
# init falls back to busybox for a command it cannot find.
ln -s busybox "$stage/bin/sh"
ln -s ../../bin/busybox "$stage/usr/bin/env"
echo "root:x:0:0:root:/root:/bin/sh" > "$stage/etc/passwd"
echo "root:x:0:" > "$stage/etc/group"
mkdir -p "$out.tmp"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) \
  > "$out.tmp/initramfs.cpio"
cp "$stage/init" "$out.tmp/init"
rm -rf "$out"; mv "$out.tmp" "$out"
echo "$out/initramfs.cpio"
