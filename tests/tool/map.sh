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
# Also: --what probabilities/embeddings (the embedding map's geotransform and a pixel
# against Model.embed, float16), --mask (a half-resolution cloud mask), --quicklook
# (colours against the colour table, embeddings' bands scaled), overviews, and the real
# Major-TOM scene in tests/data against Model.predict_mask.
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
# Without an S2 raster S2 is absent: the decoder reads S2's levels, so the map fails (the
# library's message) and leaves nothing; no raster at all is a usage error.
expect 1 "$mosaic" map --model seg.safetensors --s1 "$s1" --out x.tif --progress none
grep -q "no modality 's2'" err || fail "map without s2: $(cat err)"
expect 2 "$mosaic" map --model seg.safetensors --out x.tif
grep -q "no raster for any of the model's modalities" err || fail "map without rasters: $(cat err)"
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

# --what probabilities: the very file --probs writes.
expect 0 "$mosaic" map --model seg.safetensors --s1 "$s1" --s2 "$s2" --what probabilities \
  --out probs2.tif --stride 24 --batch 3 --progress none
cmp -s probs.tif probs2.tif || fail "--what probabilities differs from --probs"

# --what embeddings, stride 24: tiles at 0, 24, 48 ((100 − 32) / 24 + 1 = 3 a side), one
# pixel each, 24 input pixels wide, the grid's origin (32 − 24) / 2 = 4 pixels in.
expect 0 "$mosaic" map --model seg.safetensors --s1 "$s1" --s2 "$s2" --what embeddings \
  --out emb.tif --stride 24 --progress none --quicklook emb.png
grep -q "embeddings in emb.tif" out || fail "map embeddings: $(cat out)"
expect 0 "$mosaic" map --model seg.safetensors --s1 "$s1" --s2 "$s2" --what embeddings \
  --out emb16.tif --stride 24 --embedding-type float16 --progress none
gdalinfo -json emb.tif >emb.json 2>/dev/null || fail "gdalinfo emb.tif"
gdal_translate -q -of ENVI -co INTERLEAVE=BSQ -ot Float32 emb.tif emb.raw || fail "cut emb"
gdal_translate -q -of ENVI -co INTERLEAVE=BSQ -ot Float32 emb16.tif emb16.raw || fail "cut emb16"
gdal_translate -q -of ENVI -co INTERLEAVE=BSQ -ot Byte emb.png emb_png.raw || fail "cut emb.png"
cut "$s1" 48 24 s1_e.raw
cut "$s2" 48 24 s2_e.raw
/usr/bin/python3 - "$(basename "$s1").json" <<'PY' || fail "embedding map"
import json, sys
import numpy as np
import mosaic
src, e = json.load(open(sys.argv[1])), json.load(open("emb.json"))
m = mosaic.Model.load("seg.safetensors")
d = m.embedding_size()
bad = []
g, h = e["geoTransform"], src["geoTransform"]
want = [h[0] + 4 * h[1], 24 * h[1], 0, h[3] + 4 * h[5], 0, 24 * h[5]]
if e["size"] != [3, 3] or len(e["bands"]) != d or e["bands"][0]["type"] != "Float32":
    bad.append("size %s, %d bands" % (e["size"], len(e["bands"])))
if any(abs(a - b) > 1e-9 * max(1, abs(b)) for a, b in zip(g, want)):
    bad.append("geotransform %s, expected %s" % (g, want))
if 'ID["EPSG",4326]' not in e["coordinateSystem"]["wkt"]:
    bad.append("not EPSG:4326")
opts = m.options()
def floats(v):
    return np.array([float(t) for t in v.split(",")] if isinstance(v, str) else v, np.float32)
mean1, mean2 = floats(opts["modality.0.mean"]), floats(opts["modality.1.mean"])
s1 = np.fromfile("s1_e.raw", np.float32).reshape(2, 32, 32)
s2 = np.fromfile("s2_e.raw", np.float32).reshape(13, 32, 32)
valid = np.isfinite(s1).all(0) & np.isfinite(s2).all(0)
s1 = np.where(valid, s1, mean1[:, None, None]).astype(np.float32)
s2 = np.where(valid, s2, mean2[:, None, None]).astype(np.float32)
ref = m.embed(s1=s1[None], s2=s2[None])[0]
emb = np.fromfile("emb.raw", np.float32).reshape(d, 3, 3)
if not np.allclose(emb[:, 1, 2], ref, rtol=1e-5, atol=1e-5):
    bad.append("pixel (2, 1) differs from Model.embed by %g" % np.abs(emb[:, 1, 2] - ref).max())
e16 = np.fromfile("emb16.raw", np.float32).reshape(d, 3, 3)
if not (np.abs(e16 - emb) <= 6.2e-5 + np.abs(emb) / 2048).all():
    bad.append("float16 map off by %g" % np.abs(e16 - emb).max())
# The quicklook: bands 0, 1, 2 each scaled from its minimum to its maximum.
png = np.fromfile("emb_png.raw", np.uint8).reshape(3, 3, 3)
for b in range(3):
    x = emb[b]
    want = np.rint(255 * (x - x.min()) / (x.max() - x.min()))
    if np.abs(png[b].astype(int) - want).max() > 1:
        bad.append("quicklook band %d: %s vs %s" % (b, png[b].tolist(), want.tolist()))
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY

# A cloud mask at half resolution (50 × 50, factor 2): its upper-left 25 × 25 pixels set,
# the scene's [0, 50)² masked: the whole tile (0, 0) (tiles of 32 at the default stride)
# is not run, its 2 neighbours are (50 − 32) · 32 / 32² = 56 % masked, over 0.5, so not
# run either; tile (32, 32): 18² / 32² = 32 % masked, runs. Outside [0, 64)² the map
# equals the map without a mask; [0, 64)² \ [0, 50)² only in tile (32, 32). Written as
# ENVI bytes and converted by GDAL.
/usr/bin/python3 -c "
import numpy as np
m = np.zeros((50, 50), np.uint8); m[:25, :25] = 1; m.tofile('clouds.raw')
open('clouds.hdr', 'w').write('ENVI\nsamples = 50\nlines = 50\nbands = 1\nheader offset = 0\n'
                              'data type = 1\ninterleave = bsq\nbyte order = 0\n')
m = np.zeros((30, 30), np.uint8); m.tofile('bad.raw')
open('bad.hdr', 'w').write('ENVI\nsamples = 30\nlines = 30\nbands = 1\nheader offset = 0\n'
                           'data type = 1\ninterleave = bsq\nbyte order = 0\n')
" || fail "mask files"
gdal_translate -q -of GTiff clouds.raw clouds.tif || fail "clouds.tif"
gdal_translate -q -of GTiff bad.raw bad.tif || fail "bad.tif"
expect 0 "$mosaic" map --model seg.safetensors --s1 "$s1" --s2 "$s2" --out plain.tif \
  --progress none --quicklook plain.png
expect 0 "$mosaic" map --model seg.safetensors --s1 "$s1" --s2 "$s2" --out clouds_map.tif \
  --mask clouds.tif --progress none
expect 1 "$mosaic" map --model seg.safetensors --s1 "$s1" --s2 "$s2" --out x.tif --mask bad.tif
grep -q "mask bad.tif is 30 x 30" err || fail "a mask of another size: $(cat err)"
for f in plain clouds_map; do
  gdal_translate -q -of ENVI -ot Float32 $f.tif $f.raw || fail "cut $f"
done
gdal_translate -q -of ENVI -ot Byte -co INTERLEAVE=BSQ plain.png plain_png.raw || fail "cut plain.png"
gdalinfo -json plain.tif >plain.json 2>/dev/null || fail "gdalinfo plain.tif"
/usr/bin/python3 - <<'PY' || fail "cloud mask, class quicklook"
import json, sys
import numpy as np
a = np.fromfile("plain.raw", np.float32).reshape(100, 100)
b = np.fromfile("clouds_map.raw", np.float32).reshape(100, 100)
bad = []
if not (b[:50, :50] == 255).all():
    bad.append("masked pixels are not nodata")
if not (b[:32, 32:64] == 255).all() or not (b[32:64, :32] == 255).all():
    bad.append("the 56 %-masked tiles ran")
outside = np.ones((100, 100), bool); outside[:64, :64] = False
if not (a[outside] == b[outside]).all():
    bad.append("unmasked tiles differ from the map without a mask")
ring = np.zeros((100, 100), bool); ring[32:64, 32:64] = True; ring[:50, :50] = False
if (b[ring] == 255).all():
    bad.append("tile (32, 32) did not run")
# The class quicklook: every pixel in its class's colour from the map's colour table.
table = np.array([e[:3] for e in json.load(open("plain.json"))["bands"][0]["colorTable"]["entries"]])
png = np.fromfile("plain_png.raw", np.uint8).reshape(3, 100, 100)
want = table[a.astype(int)].transpose(2, 0, 1)
if not (png == want).all():
    bad.append("class quicklook colours differ from the colour table")
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY

# The real Major-TOM S2 L2A cell (tests/data, tests/data/SOURCES.md): B04 (1068 × 1068,
# 10 m) and B8A (534 × 534, 20 m: factor 2, nearest) with its cloud mask, mapped by an
# untrained two-modality model with 128-pixel tiles. gdalinfo: the same CRS (EPSG:32633)
# and geotransform as B04, overviews 534, 267, 134; a window's classes against
# Model.predict_mask on the same window cut by GDAL (B8A upsampled by repetition).
real=$here/../data/major-tom-s2-scene/S2L2A/0U/0U_199R/S2A_MSIL2A_20220706T085611_N0400_R007_T33NZA_20220706T153419
if [ -f "$real/B04.tif" ]; then
  /usr/bin/python3 -c "
import mosaic
cfg = {'modality.count': 2, 'modality.0.name': 'b04', 'modality.0.bands': 1,
       'modality.0.encoder': 'tiny', 'modality.0.size': 128, 'modality.1.name': 'b8a',
       'modality.1.bands': 1, 'modality.1.encoder': 'tiny', 'modality.1.size': 128,
       'classes': 3, 'class_names': 'a;b;c', 'proj.dim': 8, 'seed': 1,
       'task': 'segmentation', 'labels': 'single', 'modality.0.mean': [1000.0],
       'modality.0.std': [1000.0], 'modality.1.mean': [2000.0], 'modality.1.std': [1000.0]}
mosaic.Model.create(cfg).save('real.safetensors')
" || fail "real: model"
  expect 0 "$mosaic" map --model real.safetensors --input "b04=$real/B04.tif" \
    --input "b8a=$real/B8A.tif" --mask "$real/cloud_mask.tif" --resample nearest \
    --out real.tif --quicklook real.png --progress none
  grep -q "1068 x 1068 pixels mapped in 81 tiles" out || fail "real: $(cat out)"
  gdalinfo -json "$real/B04.tif" >b04.json 2>/dev/null || fail "gdalinfo B04"
  gdalinfo -json real.tif >real.json 2>/dev/null || fail "gdalinfo real.tif"
  gdalinfo real.tif >real.txt 2>/dev/null # (a file: grep -q would SIGPIPE gdalinfo)
  grep -q "Overviews: 534x534, 267x267, 134x134" real.txt || fail "real: overviews"
  gdal_translate -q -of ENVI -ot Float32 -srcwin 256 384 128 128 "$real/B04.tif" r_b04.raw
  gdal_translate -q -of ENVI -ot Float32 -srcwin 128 192 64 64 "$real/B8A.tif" r_b8a.raw
  gdal_translate -q -of ENVI -ot Float32 -srcwin 256 384 128 128 real.tif r_map.raw
  /usr/bin/python3 - <<'PY' || fail "real scene"
import json, sys
import numpy as np
import mosaic
src, out = json.load(open("b04.json")), json.load(open("real.json"))
bad = []
if out["size"] != [1068, 1068] or out["geoTransform"] != src["geoTransform"]:
    bad.append("grid %s %s vs %s" % (out["size"], out["geoTransform"], src["geoTransform"]))
if 'ID["EPSG",32633]' not in out["coordinateSystem"]["wkt"]:
    bad.append("CRS is not EPSG:32633")
m = mosaic.Model.load("real.safetensors")
b04 = np.fromfile("r_b04.raw", np.float32).reshape(1, 1, 128, 128)
b8a = np.fromfile("r_b8a.raw", np.float32).reshape(64, 64).repeat(2, 0).repeat(2, 1)
cls, p = m.predict_mask(b04=b04, b8a=b8a.reshape(1, 1, 128, 128), probs=True)
got = np.fromfile("r_map.raw", np.float32).reshape(128, 128)
top = np.sort(p[0], axis=0)
sure = top[-1] - top[-2] > 1e-4
if sure.sum() < 1000 or not (got[sure] == cls[0][sure]).all():
    bad.append("window (256, 384): %d of %d sure pixels differ"
               % ((got[sure] != cls[0][sure]).sum(), sure.sum()))
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY
else
  echo "note: $real absent: the real-scene checks are skipped"
fi

# Overviews appear once a map is larger than one 256-pixel tile (the 100-pixel maps above
# have none): gdalinfo lists the halved level.
expect 0 "$mosaic" synth big --format sen1floods11 --n 1 --seed 5 --set synth.size=288
expect 0 "$mosaic" map --model seg.safetensors --s1 big/S1Hand/Bolivia_100000_S1Hand.tif \
  --s2 big/S2Hand/Bolivia_100000_S2Hand.tif --out big.tif --probs bigp.tif --progress none
for f in big bigp; do # through a file: grep -q would SIGPIPE gdalinfo under pipefail
  gdalinfo $f.tif >$f.txt 2>/dev/null
  grep -q "Overviews: 144x144" $f.txt || fail "no overview in $f.tif"
done
expect 0 "$mosaic" map --model seg.safetensors --s1 big/S1Hand/Bolivia_100000_S1Hand.tif \
  --s2 big/S2Hand/Bolivia_100000_S2Hand.tif --out big0.tif --overviews 0 --progress none
gdalinfo big0.tif >big0.txt 2>/dev/null
grep -q "Overviews" big0.txt && fail "--overviews 0 wrote overviews"
# Cloud-Optimised layout (docs/scenes.md): GDAL reports LAYOUT=COG for a file whose ghost
# area declares IFDs before the data with block leaders and trailers, and GDAL's own
# validator checks the offsets (IFDs first, smallest overview's tiles first, row-major,
# every leader and trailer with --full-check) where its Python modules are installed.
for f in big bigp big0; do
  grep -q "LAYOUT=COG" $f.txt || fail "gdalinfo does not report LAYOUT=COG for $f.tif"
done
validator=osgeo_utils.samples.validate_cloud_optimized_geotiff
if /usr/bin/python3 -c "import $validator" 2>/dev/null; then
  for f in big bigp big0; do
    /usr/bin/python3 -m $validator --full-check=yes $f.tif >cog_$f.txt 2>&1 ||
      fail "$f.tif is not a valid COG: $(head -5 cog_$f.txt)"
  done
else
  echo "note: GDAL's Python modules absent: the COG validator is skipped"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "map: all checks passed"
