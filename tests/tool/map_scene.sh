#!/usr/bin/env bash
# map_scene.sh EXAMPLE MOSAIC WORKDIR — examples/map_scene.c on a 100 × 100 synthetic scene
# (tiles of 32: 4 rows of 4): with a distant deadline it maps the scene, printing the
# progress after each row (4, 8, 12, 16 tiles) and writing the same class map as
# `mosaic map`; with a deadline already past it cancels after the first row (exit 2) and
# leaves no file.
set -uo pipefail
example=$1
mosaic=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
"$mosaic" synth chips --format sen1floods11 --n 8 --seed 3 --set synth.size=32 >/dev/null ||
  fail "synth chips"
"$mosaic" train --data chips --format sen1floods11 --task segmentation --encoder tiny \
  --batch 8 --epochs 1 --stats computed --progress none --out seg.safetensors >/dev/null 2>&1 ||
  fail "train"
"$mosaic" synth scene --format sen1floods11 --n 1 --seed 5 --set synth.size=100 >/dev/null ||
  fail "synth scene"
s1=scene/S1Hand/Bolivia_100000_S1Hand.tif
s2=scene/S2Hand/Bolivia_100000_S2Hand.tif

"$example" seg.safetensors map.tif 3600 "$s1" "$s2" >out 2>err || fail "map_scene: $(cat err)"
for n in 4 8 12 16; do
  grep -q "^$n/16 tiles" out || fail "no progress line for $n tiles: $(cat out)"
done
grep -q "class map in map.tif" out || fail "map_scene: $(cat out)"
"$mosaic" map --model seg.safetensors --s1 "$s1" --s2 "$s2" --out ref.tif --progress none \
  >/dev/null || fail "mosaic map"
cmp -s map.tif ref.tif || fail "map_scene's map differs from mosaic map's"

"$example" seg.safetensors late.tif 0 "$s1" "$s2" >out 2>err
rc=$?
[ "$rc" -eq 2 ] || fail "a past deadline: exit $rc, expected 2 ($(cat out err))"
grep -q "^4/16 tiles" out && ! grep -q "^8/16" out || fail "cancelled late: $(cat out)"
[ -z "$(ls | grep late)" ] || fail "a cancelled map left $(ls | grep late)"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "map_scene: all checks passed"
