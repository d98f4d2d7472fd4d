#!/usr/bin/env bash
# gotool.sh MODE LIBDIR WORKDIR [ARGS...] — the Go binding's tests (tests/bindings/go.cmake).
#   test     `go test` of package mosaic (unit tests against the C API)
#   example  builds cmd/embed and runs it with ARGS (the parity test's command)
# Offline (GOPROXY=off, no module outside bindings/go), with Go's caches in WORKDIR; cgo
# finds the header in include/ and libmosaic in LIBDIR. Exit 77 (skipped, with the
# reason) when no go command is installed.
set -euo pipefail
mode=$1 libdir=$2 work=$3
shift 3
root=$(cd "$(dirname "$0")/../../.." && pwd)
gobin=${GO:-$(command -v go || true)}
if [ -z "$gobin" ]; then
  echo "gotool.sh: skipped: no go command (Debian: apt-get install golang-go; scripts/install-deps.sh)" >&2
  exit 77
fi
# (absolute: the script changes directory)
libdir=$(cd "$libdir" && pwd) work=$(mkdir -p "$work" && cd "$work" && pwd)
export GOPATH=$work/gopath GOCACHE=$work/gocache GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local
export CGO_ENABLED=1 CGO_CFLAGS="-I$root/include" CGO_LDFLAGS="-L$libdir"
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cd "$root/bindings/go"
case "$mode" in
  test) exec "$gobin" test -count=1 ./mosaic/ ;;
  example)
    "$gobin" build -o "$work/embed" ./cmd/embed
    exec "$work/embed" "$@" ;;
  *) echo "gotool.sh: unknown mode $mode" >&2; exit 2 ;;
esac
