#!/usr/bin/env bash
# Builds the jwsl guest kernel from Debian's linux-source-6.12 package:
# tinyconfig + jwsl.fragment + patches/*.patch. The result (bzImage, vmlinux,
# .config) is cached outside the repo under a hash of source version, fragment,
# patches and this script, so an unchanged tree never rebuilds.
#
#   kernel-build/build.sh            build if needed, print the output dir
#   kernel-build/build.sh --print    print the output dir, fail if not built
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tarball=/usr/src/linux-source-6.12.tar.xz
cache_root=${JWSL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/jwsl}

die() { echo "kernel-build: $*" >&2; exit 1; }

[ -f "$tarball" ] || die "$tarball missing: run scripts/install-prereqs (apt-get install linux-source-6.12)"
src_version=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || stat -c %s "$tarball")

hash=$( { echo "$src_version"; cat "$here/jwsl.fragment" "$here/build.sh"; \
          for p in "$here"/patches/*.patch; do [ -e "$p" ] && cat "$p"; done; } \
        | sha256sum | cut -c1-16)
out=$cache_root/kernel/$hash

if [ "${1:-}" = "--print" ]; then
  [ -f "$out/vmlinux" ] || die "kernel not built: run kernel-build/build.sh"
  echo "$out"; exit 0
fi
if [ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ]; then
  echo "$out"; exit 0
fi

work=$cache_root/kernel-work/$hash
rm -rf "$work"; mkdir -p "$work"
echo "kernel-build: unpacking $tarball ($src_version) into $work" >&2
tar -xf "$tarball" -C "$work"
src=$(echo "$work"/linux-source-*)
for p in "$here"/patches/*.patch; do
  [ -e "$p" ] || continue
  echo "kernel-build: applying $(basename "$p")" >&2
  patch -d "$src" -p1 --quiet --forward < "$p" || die "patch $(basename "$p") does not apply"
done

cd "$src"
make -s tinyconfig >&2
KCONFIG_CONFIG=.config scripts/kconfig/merge_config.sh -m .config "$here/jwsl.fragment" >/dev/null
make -s olddefconfig >&2

# A fragment line Kconfig silently dropped is a bug in the fragment: fail.
missing=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=y) grep -qx "$line" .config || { echo "kernel-build: $line did not stick" >&2; missing=1; } ;;
    CONFIG_*=n) opt=${line%=n}; grep -q "^$opt=" .config && { echo "kernel-build: $line did not stick" >&2; missing=1; } ;;
  esac
done < "$here/jwsl.fragment"
[ "$missing" = 0 ] || die "fragment and Kconfig disagree (see above)"

echo "kernel-build: building with $(nproc) jobs" >&2
make -s -j"$(nproc)" bzImage >&2
mkdir -p "$out.tmp"
cp arch/x86/boot/bzImage "$out.tmp/bzImage"
cp vmlinux "$out.tmp/vmlinux"
cp .config "$out.tmp/config"
rm -rf "$out"; mv "$out.tmp" "$out"
rm -rf "$work"
echo "$out"
