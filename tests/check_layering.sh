#!/usr/bin/env bash
# check_layering.sh ROOT — the layering rules of docs/architecture.md, checked on the
# sources by their #include lines and by the names they call. Prints every breach and
# exits 1 if there is one.
#
#  1. tools/, examples/ and bindings/ use only the public header (mosaic/mosaic.h) and
#     their own files.
#  2. A backend (backends/<name>/) includes only its own files, the public header and
#     the backend contract (lib/contract/), and calls nothing of the core: the only
#     msci_ names it may use are those the contract defines.
#  3. lib/<layer>/ includes only the layers below it (table below); the one exception,
#     the model freeing and checkpointing the training state it owns, is named.
#  4. The backend frame (lib/backend/backend_call.c) is the only core code that calls a
#     backend's table; the registry (lib/backend/registry.c) may probe a table it loads.
set -uo pipefail
root=${1:-.}
cd "$root" || exit 2
fail=0
breach() {
  echo "layering: $*"
  fail=1
}

# Quoted includes of a file, one per line.
includes() { sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1"; }

# --- 1. tools, examples, bindings: the public header only ---------------------------------
while IFS= read -r f; do
  dir=$(dirname "$f")
  while IFS= read -r inc; do
    [ "$inc" = mosaic/mosaic.h ] && continue
    [ -f "$dir/$inc" ] && continue
    # The generator of docs/options.md reads the option schema; it is not installed.
    [ "$f" = tools/gen_options_doc.c ] && [ "$inc" = options/options.h ] && continue
    breach "$f includes \"$inc\" (tools, examples and bindings use only mosaic/mosaic.h)"
  done < <(includes "$f")
  if grep -qE '#[[:space:]]*include[[:space:]]*<(internal|backend|model|options|dataset|batch)\.h>' "$f"; then
    breach "$f includes a library header with <...>"
  fi
done < <(find tools examples bindings -name '*.c' -o -name '*.h' -o -name '*.cpp' | sort)

# --- 2. backends: own files + contract; no calls into the core -----------------------------
contract_names=$(grep -ohE '\bmsci_[A-Za-z0-9_]+' lib/contract/* | sort -u)
for b in backends/*/; do
  while IFS= read -r f; do
    while IFS= read -r inc; do
      [ "$inc" = mosaic/mosaic.h ] && continue
      [ -f "$b$inc" ] && continue
      [ -f "lib/contract/$inc" ] && continue
      breach "$f includes \"$inc\" (a backend sees only its own files and lib/contract)"
    done < <(includes "$f")
    for name in $(grep -ohE '\bmsci_[A-Za-z0-9_]+' "$f" | sort -u); do
      grep -qxF "$name" <<<"$contract_names" ||
        breach "$f uses $name, which is core code outside the contract"
    done
  done < <(find "$b" -name '*.c' -o -name '*.h' -o -name '*.cu' | sort)
done
# The contract itself includes only itself and the public header.
for f in lib/contract/*; do
  while IFS= read -r inc; do
    [ "$inc" = mosaic/mosaic.h ] && continue
    [ -f "lib/contract/$inc" ] && continue
    breach "$f includes \"$inc\" (the contract stands alone)"
  done < <(includes "$f")
done

# --- 3. lib/<layer>: only the layers below -------------------------------------------------
allowed() {
  case $1 in
  common) echo "common" ;;
  backend) echo "common contract backend" ;;
  options) echo "common options" ;;
  data) echo "common options data" ;;
  model) echo "common contract backend options data model" ;;
  train) echo "common contract backend options data model train" ;;
  eval) echo "common eval" ;;
  *) echo "" ;;
  esac
}
for dir in lib/*/; do
  layer=$(basename "$dir")
  [ "$layer" = contract ] && continue
  ok=$(allowed "$layer")
  [ -n "$ok" ] || breach "lib/$layer is not a known layer (add it to check_layers.sh and docs/architecture.md)"
  while IFS= read -r f; do
    while IFS= read -r inc; do
      [ "$inc" = mosaic/mosaic.h ] && continue
      to=${inc%%/*}
      [ "$to" = "$inc" ] && { breach "$f includes \"$inc\" without its layer (write \"<layer>/$inc\")"; continue; }
      [[ " $ok " == *" $to "* ]] && continue
      # The model owns its training state (freed with it, saved in checkpoints).
      [ "$f" = lib/model/model.c ] && [ "$inc" = train/train.h ] && continue
      breach "$f (layer $layer) includes \"$inc\" (layer $to); $layer may include: $ok"
    done < <(includes "$f")
  done < <(find "$dir" -name '*.c' -o -name '*.h' | sort)
done

# --- 4. the frame is the only caller of the vtable -----------------------------------------
# The table's functions, read from struct mbk_iface (so an entry added later is covered).
names=$(sed -n '/^typedef struct mbk_iface {/,/^} mbk_iface;/p' lib/contract/backend.h |
  sed -n 's/.*(\*\([a-z_0-9]*\))[[:space:]]*(.*/\1/p' | paste -sd'|' -)
[ -n "$names" ] || breach "no functions found in struct mbk_iface (lib/contract/backend.h)"
while IFS= read -r hit; do
  case $hit in
  lib/backend/backend_call.c:*) continue ;;
  lib/backend/registry.c:*'->probe'*) continue ;;
  esac
  breach "$(cut -d: -f1,2 <<<"$hit"): a backend table call outside the frame (lib/backend/backend_call.c)"
done < <(grep -nE -- "->($names)[[:space:]]*\(" $(find lib -name '*.c' -o -name '*.h'))

[ "$fail" -eq 0 ] && echo "layering: every rule holds"
exit "$fail"
