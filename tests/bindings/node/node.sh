#!/usr/bin/env bash
# node.sh MODE LIBMOSAIC WORKDIR [ARGS...] — the Node binding's tests (tests/bindings/node.cmake).
#   test     node's test runner on tests/bindings/node/mosaic.test.js
#   example  bindings/node/examples/embed.js with ARGS (the parity test's command)
# The package is copied to WORKDIR/pkg and koffi installed there with `npm ci` from the
# committed package-lock.json (never into the source tree). Exit 77 (skipped, with the
# reason) without node/npm, or when npm cannot fetch koffi (no registry).
set -euo pipefail
mode=$1 lib=$2 work=$3
shift 3
root=$(cd "$(dirname "$0")/../../.." && pwd)
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "node.sh: skipped: no $tool (Debian: apt-get install nodejs npm; scripts/install-deps.sh)" >&2
    exit 77
  fi
done
pkg=$work/pkg
mkdir -p "$pkg"
cp -r "$root/bindings/node/package.json" "$root/bindings/node/package-lock.json" \
  "$root/bindings/node/lib" "$root/bindings/node/examples" "$pkg/"
if ! cmp -s "$pkg/package-lock.json" "$pkg/node_modules/.package-lock.json.installed" 2>/dev/null; then
  # (from npm's cache when it holds koffi; short retries: without a registry npm's
  # defaults wait more than a minute before failing, in each of the two tests)
  if ! (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error --prefer-offline \
        --fetch-retries=2 --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=5000 \
        >"$work/npm.log" 2>&1); then
    echo "node.sh: skipped: npm could not install koffi from the registry (see $work/npm.log):" >&2
    grep -m2 -E "error (code|network request)" "$work/npm.log" >&2 || tail -3 "$work/npm.log" >&2
    exit 77
  fi
  cp "$pkg/package-lock.json" "$pkg/node_modules/.package-lock.json.installed"
fi
export MOSAIC_LIBRARY=$lib MOSAIC_NODE_PACKAGE=$pkg/lib
case "$mode" in
  test) exec node --test "$root/tests/bindings/node/mosaic.test.js" ;;
  example) exec node "$pkg/examples/embed.js" "$@" ;;
  *) echo "node.sh: unknown mode $mode" >&2; exit 2 ;;
esac
