# shellcheck shell=bash
# Sourced by build.sh and tests/test-*.sh, so that the initramfs and the host tests compile the
# same files the same way. The guest init is one binary: every .c under guest-init/ but tests/,
# in one compiler call with guest-init/ on the include path (a folder's own headers are included
# by name, another folder's as "folder/name.h").
#
#   guest_init_dir      guest-init/, absolute
#   guest_init_sources  the .c files, sorted so that the link order does not depend on find
#   guest_init_cflags   warnings as errors, the include path; each caller adds -O and its compiler
guest_init_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mapfile -t guest_init_sources < <(find "$guest_init_dir" -path "$guest_init_dir/tests" -prune -o -name '*.c' -print \
  | LC_ALL=C sort)
guest_init_cflags=(-Wall -Wextra -Werror -I "$guest_init_dir")
