#!/usr/bin/env bash
# map.sh MOSAIC LIBMOSAIC WORKDIR — `mosaic map` end to end (docs/scenes.md): a tiny
# segmentation model trained a few steps on 32-pixel synthetic Sen1Floods11 chips maps a
# 100 × 100 synthetic scene (georeferenced in EPSG:4326, with NaN S1 pixels). Checks:
#  - gdalinfo (GDAL, an independent GeoTIFF reader) sees the input's grid in the outputs:
#    the same size and origin and pixel size as gdalinfo reports for the S1 input,
#    EPSG:4326, 256 × 256 blocks, DEFLATE, nodata 255 / nan, a colour table, the class
#    names and band descriptions;
#  - tiled inference equals msc_predict_mask (through the Python bindings) on windows cut
#    by gdal_translate: an interior tile-aligned tile, and the last tile shifted inward;
#  - the nodata pixels of the class map are exactly the pixels with a NaN S1 value (as
#    gdal_translate reads them).
# Without gdalinfo/gdal_translate (Debian: gdal-bin; scripts/install-deps.sh installs it)
# the test is skipped (exit 77).
set -uo pipefail
mosaic=$1
export MOSAIC_LIBRARY=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$here/../../bindings/python${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY=PASSIVE
if ! command -v gdalinfo >/dev/null || ! command -v gdal_translate >/dev/null; then
  echo "SKIP: gdalinfo/gdal_translate not installed (apt-get install gdal-bin)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
expect() {
  local want=$1
  shift
  "$@" >out 2>err
  local got=$?
  if [ "$got" -ne "$want" ]; then
    fail "'$*' exited $got, expected $want"
    sed 's/^/  stderr: /' err | head -5 >&2
  fi
}

# A tiny segmentation model, a few steps on 32-pixel chips.
expect 0 "$mosaic" synth chips --format sen1floods11 --n 16 --seed 3 --set synth.size=32
expect 0 "$mosaic" train --data chips --format sen1floods11 --task segmentation \
  --encoder tiny --batch 8 --epochs 1 --lr 0.01 --stats computed --progress none \
  --out seg.safetensors
# The scene: one 100 × 100 chip (with NaN S1 pixels: a swath edge and scattered ones).
expect 0 "$mosaic" synth scene --format sen1floods11 --n 1 --seed 5 --set synth.size=100
s1=scene/S1Hand/Bolivia_100000_S1Hand.tif
s2=scene/S2Hand/Bolivia_100000_S2Hand.tif

expect 0 "$mosaic" map --model seg.safetensors --s1 "$s1" --input "s2=$s2" --out mask.tif \
  --probs probs.tif --stride 24 --batch 3 --progress none
grep -q "100 x 100 pixels mapped in 16 tiles" out || fail "map: $(cat out)"
# The same without --probs, with both given as --input, and refusals.
expect 0 "$mosaic" map --model seg.safetensors --input "s1=$s1" --input "s2=$s2" \
  --out mask2.tif --stride 24 --progress none
cmp -s mask.tif mask2.tif || fail "map: the class map depends on --probs or on --input"
expect 2 "$mosaic" map --model seg.safetensors --s1 "$s1" --out x.tif
grep -q "no raster for the model's modality 's2'" err || fail "map without s2: $(cat err)"
expect 1 "$mosaic" map --model seg.safetensors --s1 "$s2" --s2 "$s1" --out x.tif
grep -q "bands" err || fail "map with swapped rasters: $(cat err)"
[ ! -e x.tif ] || fail "map: a refused call left x.tif"

for f in "$s1" mask.tif probs.tif; do
  gdalinfo -json -stats "$f" >"$(basename "$f").json" 2>/dev/null || fail "gdalinfo $f"
done
/usr/bin/python3 - "$(basename "$s1").json" <<'PY' || fail "gdalinfo checks"
import json, sys
src = json.load(open(sys.argv[1]))
mask = json.load(open("mask.tif.json"))
probs = json.load(open("probs.tif.json"))
bad = []
def check(cond, what):
    if not cond:
        bad.append(what)
for name, d in (("mask", mask), ("probs", probs)):
    check(d["size"] == src["size"] == [100, 100], name + " size %s" % d["size"])
    # Same origin and pixel size as the input (ratio 1, window at 0, 0), EPSG:4326.
    for a, b in zip(d["geoTransform"], src["geoTransform"]):
        check(abs(a - b) <= 1e-12 * max(1.0, abs(b)), name + " geotransform %s vs %s"
              % (d["geoTransform"], src["geoTransform"]))
    check('ID["EPSG",4326]' in d["coordinateSystem"]["wkt"], name + " not EPSG:4326")
    check(d["cornerCoordinates"] == src["cornerCoordinates"], name + " corners")
    b0 = d["bands"][0]
    check(b0["block"] == [256, 256], name + " block %s" % b0["block"])
    check(d["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"] == "DEFLATE", name + " compression")
m = mask["bands"][0]
check(m["type"] == "Byte" and m["noDataValue"] == 255, "mask type/nodata")
check(m["colorInterpretation"] == "Palette" and len(m["colorTable"]["entries"]) == 256,
      "mask colour table")
check(m["description"] == "class", "mask band description %r" % m.get("description"))
check(m["minimum"] >= 0 and m["maximum"] <= 1, "mask values %s..%s" % (m["minimum"], m["maximum"]))
md = mask["metadata"][""]
check(md.get("CLASS_0") == "not water" and md.get("CLASS_1") == "water", "class names %s" % md)
p = probs["bands"]
check(len(p) == 2 and all(b["type"] == "Float32" for b in p), "probs bands")
check(p[0]["description"] == "not water" and p[1]["description"] == "water", "probs names")
check(all(str(b["noDataValue"]).lower() == "nan" for b in p), "probs nodata")
check(all(0 <= b["minimum"] and b["maximum"] <= 1 for b in p), "probs range")
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY

# Windows cut by GDAL: the tile at (24, 24) (interior, tile-aligned with stride 24) and the
# last one of a row, shifted inward to x = 100 − 32 = 68, as raw float32 (ENVI, BSQ).
cut() { # cut FILE X Y OUT
  gdal_translate -q -of ENVI -co INTERLEAVE=BSQ -ot Float32 -srcwin "$2" "$3" 32 32 "$1" "$4" ||
    fail "gdal_translate $1"
}
for xy in "24 24" "68 48"; do
  set -- $xy
  cut "$s1" "$1" "$2" "s1_$1_$2.raw"
  cut "$s2" "$1" "$2" "s2_$1_$2.raw"
  cut mask.tif "$1" "$2" "mask_$1_$2.raw"
  cut probs.tif "$1" "$2" "probs_$1_$2.raw"
done
gdal_translate -q -of ENVI -co INTERLEAVE=BSQ -ot Float32 "$s1" s1_full.raw || fail "gdal_translate s1"
gdal_translate -q -of ENVI -co INTERLEAVE=BSQ -ot Float32 mask.tif mask_full.raw || fail "gdal_translate mask"
/usr/bin/python3 - <<'PY' || fail "tiles against msc_predict_mask, nodata"
import sys
import numpy as np
import mosaic

m = mosaic.Model.load("seg.safetensors")
opts = m.options()  # the model's keys; a list of floats may come back as "a,b,..."
def floats(v):
    return np.array([float(t) for t in v.split(",")] if isinstance(v, str) else v, np.float32)
mean1, mean2 = floats(opts["modality.0.mean"]), floats(opts["modality.1.mean"])
bad = []
# Stride 24 over 100 pixels: origins 0, 24, 48, 68 (the last shifted inward). Centre crop:
# tile 24 owns [24, 48): (0+24+31)//2+1 = 28 .. (24+48+31)//2+1 = 52, i.e. [28, 52);
# tile 68 owns [(48+68+31)//2+1, 100) = [74, 100); tile row 48 owns rows [52, 74).
own = {24: (28, 52), 48: (52, 74), 68: (74, 100)}
for x, y in ((24, 24), (68, 48)):
    s1 = np.fromfile("s1_%d_%d.raw" % (x, y), np.float32).reshape(2, 32, 32)
    s2 = np.fromfile("s2_%d_%d.raw" % (x, y), np.float32).reshape(13, 32, 32)
    got = np.fromfile("mask_%d_%d.raw" % (x, y), np.float32).reshape(32, 32)
    gotp = np.fromfile("probs_%d_%d.raw" % (x, y), np.float32).reshape(2, 32, 32)
    valid = np.isfinite(s1).all(0) & np.isfinite(s2).all(0)
    s1 = np.where(valid, s1, mean1[:, None, None]).astype(np.float32)
    s2 = np.where(valid, s2, mean2[:, None, None]).astype(np.float32)
    cls, p = m.predict_mask(s1=s1[None], s2=s2[None], probs=True)
    cls, p = cls[0], p[0]
    ys, xs = slice(own[y][0] - y, own[y][1] - y), slice(own[x][0] - x, own[x][1] - x)
    v = valid[ys, xs]
    if not (got[ys, xs][~v] == 255).all():
        bad.append("tile %d,%d: a NaN input pixel is not nodata" % (x, y))
    if not np.isnan(gotp[:, ys, xs][:, ~v]).all():
        bad.append("tile %d,%d: a NaN input pixel has probabilities" % (x, y))
    dp = np.abs(gotp[:, ys, xs] - p[:, ys, xs])[:, v]
    if not dp.max() < 1e-5:
        bad.append("tile %d,%d: probabilities differ by %g" % (x, y, dp.max()))
    sure = v & (np.abs(p[0] - p[1])[ys, xs] > 1e-4)
    if not (got[ys, xs][sure] == cls[ys, xs][sure]).all():
        bad.append("tile %d,%d: classes differ" % (x, y))
    if v.sum() < 100:
        bad.append("tile %d,%d: only %d valid pixels checked" % (x, y, v.sum()))
s1 = np.fromfile("s1_full.raw", np.float32).reshape(2, 100, 100)
mask = np.fromfile("mask_full.raw", np.float32).reshape(100, 100)
nan = np.isnan(s1).any(0)
if not nan.any() or not ((mask == 255) == nan).all():
    bad.append("nodata pixels (%d) are not the NaN S1 pixels (%d)"
               % ((mask == 255).sum(), nan.sum()))
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "map: all checks passed"
