#!/usr/bin/env bash
# test.sh — builds libmosaic and runs the whole test suite (the CI command).
#
#   bash scripts/test.sh          (as root on a fresh Debian 12, or with sudo)
#
# Installs missing Debian packages, configures a RelWithDebInfo build (optimised, with
# the debug info the ABI check needs) in ./build or $MSC_BUILD_DIR, builds it on every
# core and runs ctest. Then the sanitizer stage, scripts/test-sanitize.sh: the unit
# tests built with ASan + UBSan, each libFuzzer target for a short run, the threaded
# tests under TSan (docs/testing.md; MSC_TEST_SANITIZE=0 leaves it out). The exit status
# is 0 only if every stage passed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

build=${MSC_BUILD_DIR:-build}
# A build directory configured for another checkout (a copied tree) cannot be reused.
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$PWD" "$build/CMakeCache.txt"; then
  echo "test.sh: $build was configured for another source tree; starting it afresh"
  rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" --parallel "$(nproc)"

status=0
t0=$SECONDS
(cd "$build" && ctest --output-on-failure -j "$(nproc)") || status=$?
echo "test.sh: main ctest took $((SECONDS - t0)) s (exit $status)"

if [ "${MSC_TEST_SANITIZE:-1}" != 0 ]; then
  t0=$SECONDS
  san=0
  bash scripts/test-sanitize.sh || san=$?
  echo "test.sh: sanitizer stage took $((SECONDS - t0)) s (exit $san)"
  [ "$san" -eq 0 ] || [ "$status" -ne 0 ] || status=$san
fi
exit "$status"
