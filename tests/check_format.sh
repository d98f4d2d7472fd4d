#!/usr/bin/env bash
# check_format.sh CLANG_FORMAT ROOT — every C, C++ and CUDA source of the repository is
# laid out as .clang-format says (docs/conventions.md, "Source style"). Prints the
# files that are not, and how to fix them; exits 1 if there is one.
set -uo pipefail
cf=$1
cd "$2" || exit 2
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cu' '*.cpp' 2>/dev/null ||
  find include lib backends tools tests bench examples bindings \
    \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cpp' \))
bad=()
for f in "${files[@]}"; do
  case $f in tests/data/* | examples/data/*) continue ;; esac
  "$cf" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf 'not formatted: %s\n' "${bad[@]}"
  echo "fix with: clang-format -i ${bad[*]}"
  exit 1
fi
echo "format: ${#files[@]} files as .clang-format says"
