#!/usr/bin/env bash
# java.sh MODE LIBMOSAIC WORKDIR [ARGS...] — the Java binding's tests (tests/bindings/java.cmake).
#   test     compiles the binding and tests/bindings/java/TestMosaic.java, runs it
#   example  compiles the binding and bindings/java/examples/Embed.java, runs it with ARGS
# Classes go to WORKDIR; JNA is Debian's /usr/share/java/jna.jar (or $JNA_JAR); the
# library is LIBMOSAIC ($MOSAIC_LIBRARY for the generated interface). Exit 77 (skipped,
# with the reason) without javac/java or JNA.
set -euo pipefail
mode=$1 lib=$2 work=$3
shift 3
root=$(cd "$(dirname "$0")/../../.." && pwd)
jna=${JNA_JAR:-/usr/share/java/jna.jar}
for tool in javac java; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "java.sh: skipped: no $tool (Debian: apt-get install default-jdk-headless)" >&2
    exit 77
  fi
done
if [ ! -f "$jna" ]; then
  echo "java.sh: skipped: no JNA at $jna (Debian: apt-get install libjna-java)" >&2
  exit 77
fi
mkdir -p "$work/classes"
case "$mode" in
  test) main=TestMosaic src=$root/tests/bindings/java/TestMosaic.java ;;
  example) main=Embed src=$root/bindings/java/examples/Embed.java ;;
  *) echo "java.sh: unknown mode $mode" >&2; exit 2 ;;
esac
javac -Xlint:all -Werror -encoding UTF-8 -cp "$jna" -d "$work/classes" \
  "$root"/bindings/java/src/org/libmosaic/*.java "$src"
export MOSAIC_LIBRARY=$lib
exec java -cp "$work/classes:$jna" "$main" "$@"
