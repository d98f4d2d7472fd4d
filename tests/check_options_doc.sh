#!/usr/bin/env bash
# check_options_doc.sh GEN DOC
#
# docs/options.md is generated from the option schema (lib/options/options_schema.c) by
# tools/gen_options_doc.c. This check runs the generator GEN and compares its output
# with the committed file DOC, byte for byte. Exits 0 when they are equal; 1 when they
# differ (printing the diff, generated output on the '+' side, and the command that
# regenerates DOC) or when the generator fails; 2 on bad usage or a missing tool.
set -euo pipefail

usage() { echo "usage: $0 GEN DOC" >&2; exit 2; }
[ $# -eq 2 ] || usage
gen=$1
doc=$2
[ -x "$gen" ] || { echo "check_options_doc: no such program: $gen" >&2; exit 2; }
[ -f "$doc" ] || { echo "check_options_doc: no such file: $doc" >&2; exit 2; }
command -v diff >/dev/null 2>&1 ||
  { echo "check_options_doc: required tool not found: diff" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mosaic-optdoc.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The output must not depend on the environment: run in the C locale.
if ! LC_ALL=C "$gen" >"$tmp/options.md" 2>"$tmp/gen.err"; then
  cat "$tmp/gen.err" >&2
  echo "check_options_doc: FAIL: $gen exited with an error" >&2
  exit 1
fi

if ! diff -u --label "$doc (committed)" --label "$gen (generated)" \
        "$doc" "$tmp/options.md" >"$tmp/diff"; then
  cat "$tmp/diff"
  echo "check_options_doc: FAIL: $doc is out of date with the option schema." >&2
  echo "check_options_doc: regenerate it with:" >&2
  echo "  $gen > $doc" >&2
  exit 1
fi
echo "check_options_doc: $doc matches the option schema ($(grep -c '^| `' "$doc") keys)"
