#!/usr/bin/env bash
# parity_selftest.sh — parity.sh passes for an example that computes the same bytes and
# fails for one whose output differs by one byte (tests/bindings/CMakeLists.txt).
set -uo pipefail
ref=$1 data=$2 work=$3
here=$(dirname "$0")
same=$(mktemp) flip=$(mktemp)
trap 'rm -f "$same" "$flip"' EXIT
printf '#!/bin/sh\nexec "%s" embed "$1" "$2" "$3"\n' "$ref" >"$same"
printf '#!/bin/sh\n"%s" embed "$1" "$2" "$3" >/dev/null && printf "\\001" | dd of="$3" bs=1 seek=5 conv=notrunc 2>/dev/null\n' "$ref" >"$flip"
bash "$here/parity.sh" "$ref" "$data" "$work/same" sh "$same" || { echo "FAIL: identical output rejected"; exit 1; }
if bash "$here/parity.sh" "$ref" "$data" "$work/flip" sh "$flip" 2>/dev/null; then
  echo "FAIL: a changed byte was not noticed"; exit 1
fi
echo "parity harness: identical accepted, one changed byte refused"
