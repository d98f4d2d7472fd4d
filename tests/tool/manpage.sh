#!/usr/bin/env bash
# manpage.sh MOSAIC MANPAGE — docs/mosaic.1 (installed as share/man/man1/mosaic.1):
# it renders without a warning (man, else groff; skipped when neither is installed),
# it has the sections a manual page needs, and it names every command that
# `mosaic --help` lists (each in a section of its own) and every option that
# `mosaic COMMAND --help` lists; and every --help ends by pointing at the man page and
# the installed documentation.
set -uo pipefail
mosaic=$1
page=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/mosaic-manpage.XXXXXX")
trap 'rm -rf "$work"' EXIT

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# --- renders without warnings -------------------------------------------------------------
if command -v man >/dev/null 2>&1; then
  MANWIDTH=80 man --warnings -l "$page" >"$work/page.txt" 2>"$work/warn" ||
    fail "man -l $page failed: $(cat "$work/warn")"
  [ ! -s "$work/warn" ] || fail "man -l $page warns: $(cat "$work/warn")"
elif command -v groff >/dev/null 2>&1; then
  groff -man -Tutf8 -ww -z "$page" 2>"$work/warn" || fail "groff failed: $(cat "$work/warn")"
  [ ! -s "$work/warn" ] || fail "groff warns: $(cat "$work/warn")"
else
  echo "manpage: neither man nor groff: not rendered (the checks below still run)"
fi

# The source with roff's escaped hyphens plain: "\-\-epochs" is "--epochs".
sed 's/\\-/-/g' "$page" >"$work/src"
for s in NAME SYNOPSIS DESCRIPTION COMMANDS "EXIT STATUS" ENVIRONMENT FILES "SEE ALSO"; do
  grep -q "^\.SH $s\$" "$work/src" || fail "no section $s"
done

# --- every command, every option -----------------------------------------------------------
"$mosaic" --help >"$work/help" || fail "mosaic --help"
# the command list: the lines of "Commands:" up to the blank line after it
commands=$(awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }' \
  "$work/help")
[ "$(echo "$commands" | wc -w)" -ge 10 ] || fail "cannot read the commands of mosaic --help"
for c in $commands; do
  grep -q "^\.SS $c\$" "$work/src" || { fail "no section for command '$c'"; continue; }
  [ "$c" = help ] && continue
  "$mosaic" "$c" --help >"$work/$c.help" || fail "mosaic $c --help"
  # the command's section: from its .SS to the next .SS or .SH
  awk -v c="$c" '$0 == ".SS " c { on = 1; next } on && /^\.S[SH] / { exit } on' "$work/src" \
    >"$work/$c.sec"
  for o in $(grep -o -- '--[a-z][a-z0-9-]*' "$work/$c.help" | sort -u); do
    case $o in --config | --set | --help) continue ;; esac # global, in GLOBAL OPTIONS
    grep -q -- "$o\\b" "$work/$c.sec" || fail "mosaic $c: '$o' is not in its man page section"
  done
  grep -q "Manual: 'man mosaic'" "$work/$c.help" ||
    fail "mosaic $c --help does not point at the man page"
done
for o in --config --set --help --verbose; do
  grep -q -- "$o\\b" "$work/src" || fail "global option $o is not in the man page"
done
grep -q "^installed in /.*/share/doc/mosaic\.\$" "$work/help" ||
  fail "mosaic --help does not name <prefix>/share/doc/mosaic: $(tail -2 "$work/help")"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "manpage: all checks passed"
