#!/usr/bin/env bash
# install-deps.sh — installs the Debian 12 packages needed to build and test libmosaic,
# only those that are missing. Safe to run again: with everything installed it does
# nothing (no apt-get update, no network). Runs as root, or through sudo.
set -euo pipefail

packages=(
  build-essential cmake pkg-config   # compiler, binutils (nm, objdump), build system
  libdnnl-dev ocl-icd-opencl-dev     # oneDNN 2.x for the CPU backend (its CMake files need OpenCL)
  libtiff-dev libzstd-dev libjansson-dev
  libpng-dev                         # the tool's `mosaic rplot` (optional: built without it)
  check                              # C unit tests
  libopenmpi-dev openmpi-bin         # libmosaic_mpi.so and the distributed tests (mpirun)
  abigail-tools                      # abidw/abidiff: ABI check against abi/libmosaic.abi
  python3 python3-numpy python3-pytest python3-pycparser
  python3-pip python3-setuptools python3-wheel   # the offline `pip install` tests of the bindings:
  python3-venv                       # with the system's pip, and in fresh venvs
  python3-torch                      # test_weights.py: torchvision-layout ResNet weights in
  python3-onnx                       # mosaic.export (ONNX) and test_export.py
  python3-sklearn                    # cluster metrics and projections checked against scikit-learn
  golang-go                          # the Go binding's tests (docs/bindings.md)
  default-jdk-headless libjna-java   # the Java binding (JNA) and its tests
  valgrind
  clang-format                       # test_format: sources laid out as .clang-format says
  gdal-bin                           # test_tool_map: gdalinfo/gdal_translate read the maps
  chromium                           # test_tool_report renders `mosaic report` headless
                                     # (optional: the check is skipped without it)
  clang libclang-rt-14-dev llvm-14   # sanitizer stage: clang, its ASan/UBSan/TSan and libFuzzer
                                     # runtimes, llvm-symbolizer for the reports (docs/testing.md)
)

# Toolchains of the language bindings (docs/bindings.md) that a machine may already have
# from elsewhere (rustup's cargo): Debian's package only when the command is missing, so
# that an existing toolchain is neither shadowed nor fought by apt.
command -v cargo >/dev/null 2>&1 || packages+=(cargo)   # the Rust binding's tests
# the Node binding's tests (npm then fetches koffi from the registry: docs/bindings.md);
# Debian's npm would conflict with a nodejs that bundles its own (NodeSource's)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root, or install sudo, or install them yourself:" >&2
  echo "  apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
apt_get() {
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q "$@"
}

# A fresh image has no package lists; refresh them first then. Otherwise try with the
# lists there are, and refresh only if that fails (lists too old for the mirror).
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  apt_get update
  apt_get install --no-install-recommends "${missing[@]}"
elif ! apt_get install --no-install-recommends "${missing[@]}"; then
  echo "install-deps: retrying after apt-get update" >&2
  apt_get update
  apt_get install --no-install-recommends "${missing[@]}"
fi
echo "install-deps: done"
