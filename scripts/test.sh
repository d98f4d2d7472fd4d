#!/usr/bin/env bash
# test.sh — builds libmosaic and runs the whole test suite (the CI command).
#
#   bash scripts/test.sh          (as root on a fresh Debian 12, or with sudo)
#
# Installs missing Debian packages, configures a RelWithDebInfo build (optimised, with
# the debug info the ABI check needs) in ./build or $MSC_BUILD_DIR, builds it on every
# core and runs ctest. The exit status is ctest's.
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

cd "$build"
status=0
ctest --output-on-failure -j "$(nproc)" || status=$?
exit "$status"
