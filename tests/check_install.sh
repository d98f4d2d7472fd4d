#!/usr/bin/env bash
# check_install.sh BUILD_DIR EXAMPLES_DIR
#
# Installs the build in BUILD_DIR under a temporary prefix and uses it as a user would:
#   - the installed files are where they should be (header, libmosaic.so.0.1.0 and its
#     SONAME and development symlinks, mosaic.pc, the CMake package, the tool);
#   - pkg-config --modversion mosaic equals the header's version;
#   - EXAMPLES_DIR/hello.c compiles and links with `pkg-config --cflags --libs mosaic`
#     alone, and runs;
#   - EXAMPLES_DIR/embed_random.c (the README's model example) builds the same way and
#     runs: a tiny model embeds a random batch, is saved and loaded again;
#   - EXAMPLES_DIR/cmake-consumer configures with find_package(mosaic CONFIG REQUIRED)
#     from the prefix, builds (hello and the C++ embed example), and runs;
#   - EXAMPLES_DIR/bindings/embed.cpp (the C++ wrapper, <mosaic/mosaic.hpp>) builds with
#     pkg-config's flags as C++17 and embeds the real samples with that model;
#   - the installed `mosaic` tool runs without LD_LIBRARY_PATH; its man page and the
#     documentation its --help points at are installed (share/man/man1, share/doc/mosaic);
#   - the installed Python package imports and loads the installed library (no
#     LD_LIBRARY_PATH, no MOSAIC_LIBRARY).
# The temporary directory is removed at the end. Exit status 0 when all pass, 1 on the
# first failure (with a message saying what failed), 2 on bad usage.
set -euo pipefail

usage() { echo "usage: $0 BUILD_DIR EXAMPLES_DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
build=$(cd "$1" && pwd) || usage
examples=$(cd "$2" && pwd) || usage

die() { echo "check_install: FAIL: $*" >&2; exit 1; }
step() { echo "check_install: $*"; }
for tool in cmake pkg-config "${CC:-cc}" "${CXX:-c++}"; do
  command -v "$tool" >/dev/null 2>&1 || die "required tool not found: $tool"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mosaic-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

# --- install --------------------------------------------------------------------------
step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; die "cmake --install failed"; }

# The library directory is GNUInstallDirs' CMAKE_INSTALL_LIBDIR: "lib" for most
# prefixes, "lib/<multiarch>" for /usr on Debian. Find it through mosaic.pc.
pcfile=$(find "$prefix" -name mosaic.pc -path '*/pkgconfig/*' -print -quit)
[ -n "$pcfile" ] || die "mosaic.pc not installed under $prefix"
pcdir=$(dirname "$pcfile")
libdir=$(dirname "$pcdir")
step "library directory: ${libdir#"$prefix"/}"

# --- installed files ------------------------------------------------------------------
header=$prefix/include/mosaic/mosaic.h
[ -f "$header" ] || die "header not installed: include/mosaic/mosaic.h"
[ -f "$prefix/include/mosaic/mosaic.hpp" ] || die "header not installed: include/mosaic/mosaic.hpp"
ver() { awk -v k="$1" '$1 == "#define" && $2 == k { print $3; exit }' "$header"; }
major=$(ver MSC_VERSION_MAJOR)
version=$major.$(ver MSC_VERSION_MINOR).$(ver MSC_VERSION_PATCH)
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "cannot read the version from $header"

real=$libdir/libmosaic.so.$version
if [ ! -f "$real" ] || [ -L "$real" ]; then
  die "libmosaic.so.$version not installed (as a regular file) in $libdir"
fi
[ -L "$libdir/libmosaic.so.$major" ] || die "libmosaic.so.$major is not a symbolic link in $libdir"
[ "$(readlink -f "$libdir/libmosaic.so.$major")" = "$(readlink -f "$real")" ] ||
  die "libmosaic.so.$major does not point to libmosaic.so.$version"
[ -L "$libdir/libmosaic.so" ] || die "libmosaic.so (development link) missing in $libdir"
[ "$(readlink -f "$libdir/libmosaic.so")" = "$(readlink -f "$real")" ] ||
  die "libmosaic.so does not point to libmosaic.so.$version"
for f in cmake/mosaic/mosaicConfig.cmake cmake/mosaic/mosaicConfigVersion.cmake \
         cmake/mosaic/mosaicTargets.cmake; do
  [ -f "$libdir/$f" ] || die "CMake package file not installed: ${libdir#"$prefix"/}/$f"
done
# oneDNN is a private dependency of the shared library: consumers of the CMake package
# must not need oneDNN's CMake files.
if grep -n 'DNNL' "$libdir/cmake/mosaic/mosaicTargets.cmake" "$libdir/cmake/mosaic/mosaicConfig.cmake"; then
  die "the CMake package refers to oneDNN (DNNL::dnnl), a private dependency"
fi
# Nothing of the build tree may leak into the installed package files.
if grep -n -F "$build" "$pcfile" "$libdir"/cmake/mosaic/*.cmake; then
  die "installed package files refer to the build directory $build"
fi
step "installed files OK (libmosaic $version)"

# --- pkg-config -------------------------------------------------------------------------
export PKG_CONFIG_PATH=$pcdir
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR || true
pcver=$(pkg-config --modversion mosaic) || die "pkg-config cannot read $pcfile"
[ "$pcver" = "$version" ] || die "pkg-config --modversion mosaic is '$pcver', the header says '$version'"
pkg-config --print-errors --validate mosaic || die "mosaic.pc is not valid"
pcflags=$(pkg-config --cflags --libs mosaic)
step "pkg-config: mosaic $pcver: $pcflags"
case "$pcflags" in
  *"-I$prefix/include"*) ;;
  *) die "pkg-config --cflags does not name $prefix/include: the .pc file has the wrong prefix" ;;
esac

# --- (a) hello.c with pkg-config ----------------------------------------------------------
# shellcheck disable=SC2086 # pcflags is a list of flags
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -o "$tmp/hello-pc" "$examples/hello.c" $pcflags ||
  die "examples/hello.c does not build with pkg-config's flags ($pcflags)"
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$tmp/hello-pc" >"$tmp/hello-pc.out" 2>&1 ||
  { cat "$tmp/hello-pc.out" >&2; die "hello (built with pkg-config) failed"; }
grep -q "libmosaic $version" "$tmp/hello-pc.out" ||
  { cat "$tmp/hello-pc.out" >&2; die "hello (pkg-config) did not print the version $version"; }
# The program must have run against the installed copy, not the build tree's.
LD_LIBRARY_PATH=$libdir ldd "$tmp/hello-pc" | grep -F "$libdir/libmosaic.so.$major" >/dev/null ||
  die "hello (pkg-config) does not resolve libmosaic.so.$major from $libdir"
step "hello.c via pkg-config: OK"
sed 's/^/    /' "$tmp/hello-pc.out"

# The README's model example: create a tiny model, msc_embed a random batch, save it and
# load it again. It writes tiny.safetensors into its working directory: run it in $tmp.
# shellcheck disable=SC2086 # pcflags is a list of flags
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -o "$tmp/embed-pc" "$examples/embed_random.c" $pcflags ||
  die "examples/embed_random.c does not build with pkg-config's flags ($pcflags)"
(cd "$tmp" && LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ./embed-pc) \
    >"$tmp/embed-pc.out" 2>&1 ||
  { cat "$tmp/embed-pc.out" >&2; die "embed_random (built with pkg-config) failed"; }
if ! grep -q "saved and loaded tiny.safetensors" "$tmp/embed-pc.out" ||
   [ ! -s "$tmp/tiny.safetensors" ]; then
  cat "$tmp/embed-pc.out" >&2; die "embed_random did not embed, save and load a model"
fi
step "embed_random.c via pkg-config: OK"
sed 's/^/    /' "$tmp/embed-pc.out"

# The README's C example: classify the real samples with the model embed_random saved;
# each sample's top class must be the argmax of the installed tool's `mosaic predict`.
data=$examples/data/bigearthnet-v2
# shellcheck disable=SC2086 # pcflags is a list of flags
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -o "$tmp/classify-pc" "$examples/classify.c" $pcflags ||
  die "examples/classify.c does not build with pkg-config's flags ($pcflags)"
(cd "$tmp" && LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ./classify-pc tiny.safetensors "$data") \
    >"$tmp/classify.out" 2>&1 || { cat "$tmp/classify.out" >&2; die "classify failed"; }
if [ -x "$prefix/bin/mosaic" ] && command -v python3 >/dev/null 2>&1; then
  "$prefix/bin/mosaic" predict --model "$tmp/tiny.safetensors" --data "$data" --split all \
    --out "$tmp/predict.tsv" --progress none >/dev/null 2>&1 || die "mosaic predict failed"
  python3 - "$tmp/predict.tsv" "$tmp/classify.out" <<'EOF' || { cat "$tmp/classify.out" >&2; die "classify and mosaic predict disagree"; }
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
names = rows[0][1:-1]
want = ["sample %d: %s (%.2f)" % (i, names[max(range(len(names)), key=lambda k: float(r[1 + k]))],
        max(float(x) for x in r[1:-1])) for i, r in enumerate(rows[1:])]
got = open(sys.argv[2]).read().splitlines()
assert got == want, (got, want)
EOF
fi
step "classify.c via pkg-config: OK"
sed 's/^/    /' "$tmp/classify.out"

# The C++ wrapper, installed next to mosaic.h: the parity example embeds the real samples
# with the model embed_random saved.
# shellcheck disable=SC2086 # pcflags is a list of flags
"${CXX:-c++}" -std=c++17 -Wall -Wextra -Werror -o "$tmp/embed-cpp" "$examples/bindings/embed.cpp" \
    $pcflags || die "examples/bindings/embed.cpp does not build with pkg-config's flags ($pcflags)"
(cd "$tmp" && LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ./embed-cpp tiny.safetensors "$data" emb.f32) \
    >"$tmp/embed-cpp.out" 2>&1 || { cat "$tmp/embed-cpp.out" >&2; die "embed.cpp failed"; }
[ -s "$tmp/emb.f32" ] || die "embed.cpp wrote no embeddings"
step "examples/bindings/embed.cpp (mosaic.hpp) via pkg-config: OK"
sed 's/^/    /' "$tmp/embed-cpp.out"

# The training example: five msc_train_step calls and a checkpoint.
# shellcheck disable=SC2086 # pcflags is a list of flags
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -o "$tmp/train-pc" "$examples/train_random.c" $pcflags ||
  die "examples/train_random.c does not build with pkg-config's flags ($pcflags)"
(cd "$tmp" && LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ./train-pc ckpt.safetensors) \
    >"$tmp/train-pc.out" 2>&1 ||
  { cat "$tmp/train-pc.out" >&2; die "train_random (built with pkg-config) failed"; }
if ! grep -q "^step 5 " "$tmp/train-pc.out" || [ ! -s "$tmp/ckpt.safetensors" ]; then
  cat "$tmp/train-pc.out" >&2; die "train_random did not train five steps and save"
fi
step "train_random.c via pkg-config: OK"
sed 's/^/    /' "$tmp/train-pc.out"

# --- (b) the CMake consumer -----------------------------------------------------------------
consumer=$examples/cmake-consumer
[ -f "$consumer/CMakeLists.txt" ] || die "no CMake consumer project in $consumer"
# Only the prefix is given: the package must be found there, without oneDNN's package
# (CMAKE_DISABLE_FIND_PACKAGE_dnnl makes any find_package(dnnl) in it fail).
cmake -S "$consumer" -B "$tmp/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_DISABLE_FIND_PACKAGE_dnnl=ON \
      -DCMAKE_BUILD_TYPE=Release >"$tmp/consumer.log" 2>&1 ||
  { cat "$tmp/consumer.log" >&2; die "the CMake consumer does not configure (find_package(mosaic))"; }
grep -q "mosaic_DIR:PATH=$libdir/cmake/mosaic" "$tmp/consumer-build/CMakeCache.txt" ||
  { grep mosaic_DIR "$tmp/consumer-build/CMakeCache.txt" >&2 || true
    die "find_package(mosaic) did not use the package installed in $prefix"; }
cmake --build "$tmp/consumer-build" >>"$tmp/consumer.log" 2>&1 ||
  { cat "$tmp/consumer.log" >&2; die "the CMake consumer does not build"; }
# CMake records the library's directory as the build RPATH, so no LD_LIBRARY_PATH.
"$tmp/consumer-build/hello" >"$tmp/hello-cmake.out" 2>&1 ||
  { cat "$tmp/hello-cmake.out" >&2; die "hello (built with CMake) failed"; }
grep -q "libmosaic $version" "$tmp/hello-cmake.out" ||
  { cat "$tmp/hello-cmake.out" >&2; die "hello (CMake) did not print the version $version"; }
[ -x "$tmp/consumer-build/embed_cpp" ] || die "the CMake consumer did not build embed_cpp (mosaic.hpp)"
step "cmake-consumer via find_package(mosaic): OK"

# --- the tool -----------------------------------------------------------------------------
if [ -e "$prefix/bin/mosaic" ]; then
  (unset LD_LIBRARY_PATH; "$prefix/bin/mosaic" version) >"$tmp/tool.out" 2>&1 ||
    { cat "$tmp/tool.out" >&2; die "the installed mosaic tool does not run"; }
  grep -q "libmosaic $version" "$tmp/tool.out" ||
    { cat "$tmp/tool.out" >&2; die "'mosaic version' did not print $version"; }
  step "installed bin/mosaic: OK"
  # Its manual page and the documents its --help points at (share/man/man1,
  # share/doc/mosaic under the prefix).
  [ -f "$prefix/share/man/man1/mosaic.1" ] || die "share/man/man1/mosaic.1 not installed"
  # BigEarthNet v2's converted metadata table (docs/data.md: a folder with only
  # metadata.parquet opens through it)
  [ -f "$prefix/share/mosaic/bigearthnet-v2-metadata.tsv.zst" ] ||
    die "share/mosaic/bigearthnet-v2-metadata.tsv.zst not installed"
  for f in tool.md options.md data.md README.md; do
    [ -f "$prefix/share/doc/mosaic/$f" ] || die "share/doc/mosaic/$f not installed"
  done
  "$prefix/bin/mosaic" --help >"$tmp/help.out" 2>&1 || die "mosaic --help failed"
  grep -q "man mosaic" "$tmp/help.out" && grep -q "/share/doc/mosaic" "$tmp/help.out" ||
    { cat "$tmp/help.out" >&2; die "mosaic --help does not point at the man page and share/doc/mosaic"; }
  if command -v man >/dev/null 2>&1; then
    MANPATH=$prefix/share/man man -w mosaic >/dev/null 2>&1 ||
      die "man -w mosaic does not find the installed page under $prefix/share/man"
  fi
  step "installed man page and documentation: OK"
fi

# --- the Python package ------------------------------------------------------------------
pyinit=$(find "$prefix" -path '*/mosaic/__init__.py' -print -quit)
if [ -n "$pyinit" ] && command -v python3 >/dev/null 2>&1; then
  pysite=$(dirname "$(dirname "$pyinit")")
  [ -f "$pysite/mosaic/_ffi.py" ] || die "the Python package lacks _ffi.py"
  # Found from the package's place in the prefix: no LD_LIBRARY_PATH, no MOSAIC_LIBRARY.
  (cd "$tmp" && unset LD_LIBRARY_PATH MOSAIC_LIBRARY &&
   PYTHONPATH=$pysite python3 -c "import mosaic; print(mosaic.version(), mosaic.library_path())") \
    >"$tmp/py.out" 2>&1 || { cat "$tmp/py.out" >&2; die "the installed Python package does not import"; }
  read -r pyver pylib <"$tmp/py.out"
  [ "$pyver" = "$version" ] || die "mosaic.version() is '$pyver', expected $version"
  [ "$(readlink -f "$pylib")" = "$(readlink -f "$real")" ] ||
    die "the Python package loaded $pylib, not the installed $real"
  step "installed Python package (${pysite#"$prefix"/}/mosaic): OK"
fi

step "all checks passed"
