#!/usr/bin/env bash
# check_abi.sh LIB BASELINE HEADERDIR           compare LIB's ABI with the baseline
# check_abi.sh --update LIB BASELINE HEADERDIR  rewrite the baseline from LIB
#
# The ABI of libmosaic.so (exported functions, their parameter and return types, the
# public types they reach, symbol versions, SONAME) is recorded with libabigail's abidw
# in abi/libmosaic.abi and compared with abidiff on every test run (docs/abi.md).
#
# LIB must carry DWARF debug info (CMAKE_BUILD_TYPE RelWithDebInfo or Debug): abidw
# reads the types from it, not from the header. HEADERDIR (include/mosaic) tells abidw
# which types are public; only interfaces exported from LIB are considered.
#
# Exit status of a check:
#   0   no change, or only additions (new functions or variables; the report is
#       printed so that the baseline can be updated);
#   1   any other change (a function removed, a parameter, return or public type
#       changed, a symbol moved to another version node, a new SONAME), or
#       abidiff/abidw failed; the report is printed;
#   2   bad usage or a missing tool;
#   77  skipped (ctest SKIP_RETURN_CODE): LIB has no debug info, or the baseline was
#       recorded for another architecture. With CI=true a missing debug info is an
#       error instead, so a misconfigured CI cannot skip the check silently.
set -euo pipefail

usage() {
  echo "usage: $0 [--update] LIB BASELINE HEADERDIR" >&2
  exit 2
}
update=0
if [ "${1:-}" = "--update" ]; then
  update=1
  shift
fi
[ $# -eq 3 ] || usage
lib=$1
baseline=$2
headers=$3
[ -f "$lib" ] || { echo "check_abi: no such library: $lib" >&2; exit 2; }
[ -d "$headers" ] || { echo "check_abi: no such header directory: $headers" >&2; exit 2; }
for tool in abidw abidiff readelf; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "check_abi: required tool not found: $tool (Debian: apt-get install abigail-tools binutils)" >&2
    exit 2
  }
done

# Without DWARF abidw sees symbol names only, and every comparison would be empty.
if ! readelf -S --wide "$lib" | grep -q '[[:space:]]\.debug_info[[:space:]]'; then
  msg="check_abi: $lib has no debug info; the ABI check needs a build with -g"
  msg="$msg (cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo, as scripts/test.sh does)"
  if [ "$update" -eq 1 ] || [ "${CI:-}" = "true" ]; then
    echo "$msg" >&2
    exit 1
  fi
  echo "$msg: SKIPPED" >&2
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The options keep the file free of anything that depends on the machine or the build
# directory: no corpus path, no compilation directory, no source locations, no
# DT_NEEDED list (dependencies are not part of the ABI users see), type ids that are
# hashes of the types (stable when functions are added). The translation units' own
# paths, which abidw always writes, are cut down to their file names.
dump() { # dump LIB OUT
  abidw --headers-dir "$headers" \
        --exported-interfaces-only --drop-private-types --drop-undefined-syms \
        --no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed \
        --type-id-style hash \
        --out-file "$2.raw" "$1"
  sed -E "s|(<abi-instr [^>]*path=')[^']*/([^'/]*')|\\1\\2|" "$2.raw" >"$2"
  rm -f "$2.raw"
}

if [ "$update" -eq 1 ]; then
  dump "$lib" "$tmp/new.abi"
  if ! grep -q '<function-decl ' "$tmp/new.abi"; then
    echo "check_abi: abidw found no exported function with types in $lib; baseline not written" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$baseline")"
  cp "$tmp/new.abi" "$baseline"
  echo "check_abi: wrote $baseline ($(grep -c '<function-decl ' "$baseline") functions)"
  exit 0
fi

[ -f "$baseline" ] || {
  echo "check_abi: no baseline $baseline; create it with: $0 --update $lib $baseline $headers" >&2
  exit 1
}

dump "$lib" "$tmp/current.abi"

arch_of() { sed -n "s/.*<abi-corpus [^>]*architecture='\([^']*\)'.*/\1/p" "$1" | head -n 1; }
base_arch=$(arch_of "$baseline")
cur_arch=$(arch_of "$tmp/current.abi")
if [ "$base_arch" != "$cur_arch" ]; then
  echo "check_abi: the baseline was recorded on '$base_arch', this library is '$cur_arch': SKIPPED" >&2
  exit 77
fi

set +e
abidiff "$baseline" "$tmp/current.abi" >"$tmp/report.txt" 2>&1
rc=$?
set -e

# abidiff's status is a bit field: 1 error, 2 usage error, 4 ABI change, 8 incompatible
# ABI change. libabigail sets bit 8 only for removed functions and variables: a changed
# parameter or return type (int32_t -> int64_t, a struct that grew) gives 4 alone, as
# additions do. So bit 4 passes only when the report shows nothing but additions:
# every "N Removed" and "N Changed" of its summaries is 0 and neither the SONAME nor
# the architecture changed.
if [ $((rc & 3)) -ne 0 ]; then
  echo "check_abi: abidiff failed (status $rc):"
  cat "$tmp/report.txt"
  exit 1
fi
incompatible=0
if [ $((rc & 8)) -ne 0 ]; then
  incompatible=1
elif [ $((rc & 4)) -ne 0 ]; then
  if grep -Eq '(^|[^0-9])[1-9][0-9]* (Removed|Changed)' "$tmp/report.txt" ||
     grep -Eq '^[[:space:]]*ELF (SONAME|architecture) changed' "$tmp/report.txt"; then
    incompatible=1
  fi
fi
if [ "$incompatible" -ne 0 ]; then
  echo "check_abi: INCOMPATIBLE ABI change against $baseline (abidiff status $rc):"
  cat "$tmp/report.txt"
  major=$(sed -n "s/.*soname='libmosaic\.so\.\([0-9]*\)'.*/\1/p" "$baseline" | head -n 1)
  echo "check_abi: removing or changing a public function or type breaks programs built"
  echo "check_abi: against libmosaic.so.${major:-?}; see docs/abi.md: only additions are"
  echo "check_abi: allowed within a major version (this needs a new major, not a new baseline)."
  exit 1
fi
if [ $((rc & 4)) -ne 0 ]; then
  echo "check_abi: compatible ABI additions against $baseline (abidiff status $rc):"
  cat "$tmp/report.txt"
  echo "check_abi: OK; record them with: $0 --update LIB BASELINE HEADERDIR (docs/abi.md)"
  exit 0
fi
echo "check_abi: OK: ABI identical to $baseline"
