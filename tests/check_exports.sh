#!/usr/bin/env bash
# check_exports.sh LIB HEADER
#
# The exported interface of the shared library LIB is exactly the set of functions
# that HEADER declares with MSC_API:
#   - every MSC_API function of the header is exported (nm -D --defined-only);
#   - every exported symbol is declared in the header and starts with msc_
#     (the version node's own absolute symbol, e.g. MOSAIC_0 of type A, is ignored);
#   - the SONAME is libmosaic.so.<MSC_VERSION_MAJOR> (objdump -p);
#   - every exported symbol carries a version node MOSAIC_<MAJOR>[.<MINOR>] (objdump -T).
# Exits 0 when all hold; otherwise prints every difference and exits 1 (2 on bad usage
# or a missing tool).
set -euo pipefail

usage() { echo "usage: $0 LIB HEADER" >&2; exit 2; }
[ $# -eq 2 ] || usage
lib=$1
header=$2
[ -f "$lib" ] || { echo "check_exports: no such library: $lib" >&2; exit 2; }
[ -f "$header" ] || { echo "check_exports: no such header: $header" >&2; exit 2; }
for tool in nm objdump awk sort comm "${CC:-cc}"; do
  command -v "$tool" >/dev/null 2>&1 ||
    { echo "check_exports: required tool not found: $tool" >&2; exit 2; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# --- functions the header declares with MSC_API -----------------------------------------
# The compiler's preprocessor removes the comments without expanding any macro
# (-fpreprocessed); directives (with their continuation lines) are then dropped, the rest
# is cut into statements at ';', '{' and '}', and in each statement that contains the
# word MSC_API the function name is the first identifier followed by '(' that is not a
# keyword, a type name, a compiler attribute or an upper-case macro (so that
# "MSC_API void (*msc_get_hook(void))(int);" gives msc_get_hook).
"${CC:-cc}" -w -fpreprocessed -dD -E -P -x c "$header" >"$tmp/nocomments.h"
awk '
  BEGIN {
    split("void char short int long float double signed unsigned const volatile " \
          "struct union enum static extern inline restrict _Bool _Noreturn " \
          "sizeof typeof return", kw, " ")
    for (i in kw) skip[kw[i]] = 1
  }
  cont { cont = /\\[ \t]*$/; next }                 # continuation of a directive
  /^[ \t]*#/ { cont = /\\[ \t]*$/; next }           # a preprocessor directive
  { text = text " " $0 }
  END {
    n = split(text, stmts, /[;{}]/)
    for (s = 1; s <= n; s++) {
      st = stmts[s]
      if (st !~ /(^|[^A-Za-z0-9_])MSC_API([^A-Za-z0-9_]|$)/) continue
      name = ""
      rest = st
      while (match(rest, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
        id = substr(rest, RSTART, RLENGTH)
        sub(/[ \t]*\($/, "", id)
        rest = substr(rest, RSTART + RLENGTH)
        if (id in skip || id ~ /^__/ || id ~ /^[A-Z][A-Z0-9_]*$/) continue
        name = id
        break
      }
      if (name == "") {
        gsub(/[ \t]+/, " ", st)
        print "check_exports: cannot find the function name in:" st > "/dev/stderr"
        bad = 1
        continue
      }
      print name
    }
    exit bad
  }
' "$tmp/nocomments.h" | LC_ALL=C sort -u >"$tmp/declared" ||
  { echo "check_exports: could not parse $header" >&2; exit 1; }

if [ ! -s "$tmp/declared" ]; then
  fail "no MSC_API function found in $header (parser or header broken)"
fi

# --- symbols the library exports -------------------------------------------------------
# "ADDR TYPE NAME[@@VERSION]"; absolute symbols (type A) are the version nodes themselves.
nm -D --defined-only "$lib" >"$tmp/nm.txt"
awk 'NF >= 3 && $2 != "A" { sub(/@.*/, "", $3); print $3 }' "$tmp/nm.txt" |
  LC_ALL=C sort -u >"$tmp/exported"
awk 'NF >= 3 && $2 == "A" { sub(/@.*/, "", $3); print $3 }' "$tmp/nm.txt" |
  LC_ALL=C sort -u >"$tmp/absolute"

LC_ALL=C comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/missing"
LC_ALL=C comm -13 "$tmp/declared" "$tmp/exported" >"$tmp/extra"
if [ -s "$tmp/missing" ]; then
  fail "declared with MSC_API in $(basename "$header") but not exported by $(basename "$lib"):"
  sed 's/^/    /' "$tmp/missing"
fi
if [ -s "$tmp/extra" ]; then
  fail "exported by $(basename "$lib") but not declared with MSC_API in $(basename "$header"):"
  sed 's/^/    /' "$tmp/extra"
fi
if grep -v '^msc_' "$tmp/exported" >"$tmp/badprefix"; then
  fail "exported symbols not starting with msc_:"
  sed 's/^/    /' "$tmp/badprefix"
fi
if grep -v '^msc_' "$tmp/declared" >"$tmp/baddecl"; then
  fail "MSC_API functions not named msc_*:"
  sed 's/^/    /' "$tmp/baddecl"
fi

# --- SONAME carries the major version ---------------------------------------------------
major=$(awk '$1 == "#define" && $2 == "MSC_VERSION_MAJOR" { print $3; exit }' "$header")
if ! [[ "$major" =~ ^[0-9]+$ ]]; then
  fail "cannot read MSC_VERSION_MAJOR from $header"
  major=X
fi
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
if [ "$soname" != "libmosaic.so.$major" ]; then
  fail "SONAME is '${soname:-<none>}', expected 'libmosaic.so.$major'"
fi

# --- version nodes ----------------------------------------------------------------------
# objdump -T: "ADDR FLAGS SECTION SIZE VERSION NAME"; the version is the field before the
# name ("(NODE)" for a hidden, non-default version, "Base" or empty when unversioned).
# Every exported symbol must be bound to a node of this major version: MOSAIC_<MAJOR>
# or MOSAIC_<MAJOR>.<MINOR> for functions added later (docs/abi.md).
objdump -T "$lib" >"$tmp/objdump.txt"
while IFS= read -r sym; do
  ver=$(awk -v s="$sym" '$NF == s && $0 !~ /\*UND\*/ { print $(NF - 1); exit }' "$tmp/objdump.txt")
  if ! [[ "$ver" =~ ^MOSAIC_${major}(\.[0-9]+)?$ ]]; then
    fail "$sym has version '${ver:-<none>}', expected MOSAIC_$major or MOSAIC_$major.<minor>"
  fi
done <"$tmp/exported"
while IFS= read -r node; do
  if ! [[ "$node" =~ ^MOSAIC_${major}(\.[0-9]+)?$ ]]; then
    fail "unexpected absolute symbol / version node: $node"
  fi
done <"$tmp/absolute"

ndecl=$(wc -l <"$tmp/declared")
nexp=$(wc -l <"$tmp/exported")
if [ "$failed" -ne 0 ]; then
  echo "check_exports: FAILED ($ndecl declared, $nexp exported, SONAME ${soname:-<none>})"
  exit 1
fi
echo "check_exports: OK: $ndecl functions declared = exported, SONAME $soname," \
     "all bound to MOSAIC_${major}[.minor] version nodes"
