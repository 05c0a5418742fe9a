#!/usr/bin/env bash
# Builds the utility VM's tools disk: a small read-only ext4 image with the host's e2fsprogs
# (mke2fs, e2fsck, resize2fs), GNU tar (xattrs, ACLs) and its gzip/xz filters, plus the shared
# libraries they load. The VM mounts it only when it manages distro disks, so the initramfs that
# every boot unpacks stays tiny (each initramfs byte and entry costs emulated kernel time here).
# Cached outside the repo under a hash of the binaries and this script.
#
# Inside the VM (mounted at /run/jwsl/tools): /run/jwsl/tools/env sets PATH, LD_LIBRARY_PATH and
# MKE2FS_CONFIG; the binaries use the standard ELF interpreter path, so the guest links
# /lib64 -> /run/jwsl/tools/lib64 before running them.
#
#   guest-init/build-tools.sh          build if needed, print the image path
#   guest-init/build-tools.sh --print  print the path, fail if not built
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache_root=${JWSL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/jwsl}
programs=(/usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/resize2fs /usr/sbin/dumpe2fs /usr/bin/tar /usr/bin/gzip /usr/bin/xz)

die() { echo "build-tools: $*" >&2; exit 1; }
for p in "${programs[@]}"; do [ -x "$p" ] || die "$p missing: run scripts/install-prereqs"; done

libs() { for f in "$@"; do ldd "$f"; done | awk '$3 ~ /^\// {print $3} $1 ~ /^\/.*[^:]$/ {print $1}' | sort -u; }
hash=$( { cat "$0"; for f in "${programs[@]}" $(libs "${programs[@]}"); do sha256sum "$(readlink -f "$f")"; done; } \
  | sha256sum | cut -c1-16)
out=$cache_root/tools/$hash

if [ "${1:-}" = "--print" ]; then
  [ -f "$out/tools.img" ] || die "tools image not built: run guest-init/build-tools.sh"
  echo "$out/tools.img"; exit 0
fi
if [ -f "$out/tools.img" ]; then echo "$out/tools.img"; exit 0; fi

stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,lib,lib64,etc}
for p in "${programs[@]}"; do cp -L "$p" "$stage/bin/"; done
for l in $(libs "${programs[@]}"); do
  case $l in
    */ld-linux-x86-64.so.2) cp -L "$l" "$stage/lib64/" ;;
    *) cp -L "$l" "$stage/lib/" ;;
  esac
done
cp /etc/mke2fs.conf "$stage/etc/"
cat > "$stage/env" <<'SH'
# Sourced by the utility VM's disk scripts.
T=/run/jwsl/tools
[ -e /lib64/ld-linux-x86-64.so.2 ] || { mkdir -p /lib64 && ln -sf $T/lib64/ld-linux-x86-64.so.2 /lib64/; }
export PATH=$T/bin:$PATH LD_LIBRARY_PATH=$T/lib MKE2FS_CONFIG=$T/etc/mke2fs.conf
SH
kib=$(( $(du -sk "$stage" | cut -f1) * 5 / 4 + 1024 ))
mkdir -p "$out.tmp"
mke2fs -q -t ext4 -O ^has_journal -L jwsl-tools -E root_owner=0:0 -d "$stage" "$out.tmp/tools.img" "${kib}k"
rm -rf "$out"; mv "$out.tmp" "$out"
echo "$out/tools.img"
