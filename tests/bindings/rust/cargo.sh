#!/usr/bin/env bash
# cargo.sh MODE LIBDIR TARGETDIR [ARGS...] — the Rust binding's tests (tests/bindings/rust.cmake).
#   test     `cargo test` of bindings/rust/mosaic (unit tests against the C API) and of
#            mosaic-sys (its structs laid out as the C compiler lays them out: layout.c)
#   example  builds the example `embed` and runs it with ARGS (the parity test's command)
# CARGO=/usr/bin/cargo picks a toolchain (e.g. Debian's 1.63 next to rustup's).
# Offline, with Cargo's home and the target directory in the build tree. Exit 77 (skipped,
# with the reason) when no cargo is installed.
set -euo pipefail
mode=$1 libdir=$2 target=$3
shift 3
# (absolute: the script changes directory)
libdir=$(cd "$libdir" && pwd) target=$(mkdir -p "$target" && cd "$target" && pwd)
crate=$(cd "$(dirname "$0")/../../../bindings/rust/mosaic" && pwd)
cargo=${CARGO:-$(command -v cargo || true)}
if [ -z "$cargo" ]; then
  echo "cargo.sh: skipped: no cargo (Debian: apt-get install cargo; scripts/install-deps.sh)" >&2
  exit 77
fi
# rustc and rustdoc of the same toolchain as that cargo (CARGO=/usr/bin/cargo next to a
# rustup toolchain on PATH would otherwise mix two compilers' metadata)
dir=$(dirname "$cargo")
[ -z "${RUSTC:-}" ] && [ -x "$dir/rustc" ] && export RUSTC=$dir/rustc
[ -z "${RUSTDOC:-}" ] && [ -x "$dir/rustdoc" ] && export RUSTDOC=$dir/rustdoc
export CARGO_TARGET_DIR=$target CARGO_HOME=$target/cargo-home MOSAIC_LIB_DIR=$libdir
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cd "$crate"
case "$mode" in
  test)
    # the C compiler's struct layouts, for mosaic-sys's layout test (bindings/gen_rust.py)
    root=$(cd "$crate/../../.." && pwd)
    ${CC:-cc} -std=c11 -I"$root/include" -o "$target/layout" "$crate/../mosaic-sys/layout.c"
    "$target/layout" > "$target/layout.txt"
    export MSC_C_LAYOUT=$target/layout.txt
    exec "$cargo" test --offline --quiet -p mosaic-sys -p mosaic ;;
  example)
    "$cargo" build --offline --quiet --example embed
    exec "$target/debug/examples/embed" "$@" ;;
  *) echo "cargo.sh: unknown mode $mode" >&2; exit 2 ;;
esac
