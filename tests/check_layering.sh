#!/bin/sh
# check_layering.sh SRC_DIR — the layers of the backend frame, checked on the sources:
#  1. a backend (backends/<name>/) includes, of the project, only the backend contract
#     and the headers of its own folder;
#  2. the contract's files (CONTRACT below: the files lib/backend.h names) include only
#     mosaic/mosaic.h and each other;
#  3. in the core (lib/), only the frame (backend_call.c) calls a backend table's
#     functions; registry.c may probe a table it accepts.
# Exit 0 when all hold; otherwise each offending line is printed and the exit is 1.
set -u
src=${1:?usage: check_layering.sh SRC_DIR}
CONTRACT_H="backend.h backend_op.h loss_core.h loss_rows.h optim_core.h"
CONTRACT_C="backend_op.c loss_rows.c op_desc.c"
fail=0

# included "file" names of a source (quoted includes only: system headers are free).
quoted() { sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1"; }
member() { for m in $2; do [ "$1" = "$m" ] && return 0; done; return 1; }

for dir in "$src"/backends/*/; do
  for f in "$dir"*.c "$dir"*.h "$dir"*.cu; do
    [ -f "$f" ] || continue
    for inc in $(quoted "$f"); do
      member "$inc" "$CONTRACT_H" && continue
      [ "$inc" = "mosaic/mosaic.h" ] && continue
      [ -f "$dir$inc" ] && [ "${inc#*/}" = "$inc" ] && continue
      echo "layering: ${f#$src/} includes \"$inc\" (not the backend contract)"
      fail=1
    done
  done
done

for name in $CONTRACT_H $CONTRACT_C; do
  f="$src/lib/$name"
  [ -f "$f" ] || { echo "layering: contract file lib/$name is missing"; fail=1; continue; }
  for inc in $(quoted "$f"); do
    member "$inc" "$CONTRACT_H" && continue
    [ "$inc" = "mosaic/mosaic.h" ] && continue
    echo "layering: contract file lib/$name includes \"$inc\""
    fail=1
  done
  if grep -n '#[[:space:]]*include[[:space:]]*<mosaic/' "$f" | grep -v 'mosaic/mosaic.h' >/dev/null; then
    echo "layering: contract file lib/$name includes a core header"
    fail=1
  fi
done

# The table's functions, read from struct mbk_iface in backend.h (so an entry added
# later is covered too); probe is the registry's.
names=$(sed -n '/^typedef struct mbk_iface {/,/^} mbk_iface;/p' "$src/lib/backend.h" |
  sed -n 's/.*(\*\([a-z_0-9]*\))[[:space:]]*(.*/\1/p' | grep -vx probe | paste -sd'|' -)
[ -n "$names" ] || { echo "layering: no functions found in struct mbk_iface"; exit 1; }
calls="->($names)[[:space:]]*\\("
for f in "$src"/lib/*.c "$src"/lib/*.h; do
  case "$f" in */backend_call.c) continue ;; esac
  if grep -nE -- "$calls" "$f" >/dev/null; then
    grep -nE -- "$calls" "$f" | sed "s|^|layering: ${f#$src/}:|; s|\$| (a table call outside the frame, backend_call.c)|"
    fail=1
  fi
done
if grep -nE -- '->probe[[:space:]]*\(' "$src"/lib/*.c | grep -v '/registry.c:' >/dev/null; then
  grep -nE -- '->probe[[:space:]]*\(' "$src"/lib/*.c | grep -v '/registry.c:'
  fail=1
fi

[ $fail -eq 0 ] && echo "layering: ok"
exit $fail
