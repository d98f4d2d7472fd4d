#!/usr/bin/env bash
# main.sh — the project's main job.
#
#   bash scripts/main.sh          (as root on a fresh Debian 12, or with sudo)
#
# Installs missing Debian packages, makes a Release build in ./build-release (or
# $MSC_RELEASE_DIR) and runs the `mosaic` tool. For now the job only reports the
# library's version and its compute backends: training a model on the data set, with
# the `mosaic train` command, becomes the main job in a later issue.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

build=${MSC_RELEASE_DIR:-build-release}
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$PWD" "$build/CMakeCache.txt"; then
  echo "main.sh: $build was configured for another source tree; starting it afresh"
  rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMSC_BUILD_TESTS=OFF
cmake --build "$build" --parallel "$(nproc)"

mosaic=$build/tools/mosaic
"$mosaic" version
"$mosaic" backends
