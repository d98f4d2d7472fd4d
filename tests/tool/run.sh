#!/usr/bin/env bash
# run.sh MOSAIC CHECK_PREDICTIONS WORKDIR — the `mosaic` tool end to end on tiny
# synthetic data: synth → train (1 epoch, tiny encoders) → eval --json (its macro AP must
# equal msc_metrics_compute on the `mosaic predict` output of the same model and split)
# → the kNN and linear-probe protocols → embed (.npy header, ids) → info → resume and
# Ctrl-C → a run from the written configuration repeats the same losses; then bad
# arguments and missing files: one line on stderr and the documented exit status
# (2 bad usage, 1 runtime error, 130 interrupted).
set -uo pipefail
mosaic=$1
check=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMP_WAIT_POLICY=PASSIVE

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# expect STATUS CMD...: runs CMD, checks its exit status, keeps stdout/stderr in out/err.
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
# expect_error STATUS CMD...: as expect, and stderr must be exactly one "mosaic: error:" line.
expect_error() {
  expect "$@"
  local lines
  lines=$(wc -l <err)
  if [ "$lines" -ne 1 ] || ! grep -q '^mosaic: error: ' err; then
    fail "'${*:2}': stderr is not one 'mosaic: error:' line:"
    sed 's/^/  /' err | head -5 >&2
  fi
}
json() { # json FILE PYTHON-EXPRESSION-ON-d
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

common=(--encoder tiny --batch 16 --progress lines --workers 1)

# --- help and version ----------------------------------------------------------------
for c in train eval embed predict compare info synth backends version; do
  expect 0 "$mosaic" "$c" --help
  grep -q '^usage: mosaic' out || fail "mosaic $c --help prints no usage"
done
expect 0 "$mosaic" --help
expect 0 "$mosaic" version
grep -q '^libmosaic ' out || fail "mosaic version"

# --- synth, train, eval, predict ------------------------------------------------------
expect 0 "$mosaic" synth data --n 60 --seed 7
[ -f data/metadata.tsv ] || fail "synth wrote no metadata.tsv"

expect 0 "$mosaic" train --data data "${common[@]}" --epochs 1 --lr 0.003 --out m.safetensors
cp out train.out
[ -f m.safetensors ] || fail "train wrote no model"
json m.config.json 'd["tool"]["epochs"], d["modality.0.encoder"]' | grep -q "1 tiny" ||
  fail "m.config.json lacks the effective keys"
json m.history.json 'len(d)' | grep -qx 1 || fail "m.history.json should have one epoch"
grep -q 'validation (' train.out || fail "train printed no validation metrics"

expect 0 "$mosaic" eval --model m.safetensors --data data --split test --json e.json --progress none
grep -q 'macro AP' out || fail "eval printed no table"
python3 -c "import json; json.load(open('e.json'))" || fail "e.json does not parse"
[ -f e.config.json ] || fail "eval wrote no configuration"

expect 0 "$mosaic" predict --model m.safetensors --data data --split test --out p.tsv --progress none
expect 0 "$check" p.tsv
read -r ap_helper micro_helper f1_helper < <(tr '\n' ' ' <out)
ap_json=$(json e.json 'repr(d["metrics"]["macro_ap"])')
f1_json=$(json e.json 'repr(d["metrics"]["macro_f1"])')
python3 - "$ap_helper" "$ap_json" "$f1_helper" "$f1_json" <<'EOF' || fail "eval --json and msc_metrics_compute on predict's output differ"
import sys
a, b, c, d = map(float, sys.argv[1:])
assert abs(a - b) <= 1e-12 and abs(c - d) <= 1e-12, (a, b, c, d)
EOF

# --- the other protocols ----------------------------------------------------------------
expect 0 "$mosaic" eval --model m.safetensors --data data --protocol knn --k 3 --json k.json --progress none
json k.json 'd["protocol"]' | grep -qx knn || fail "knn protocol"
expect 0 "$mosaic" eval --model m.safetensors --data data --protocol linear --probe-epochs 1 \
  --batch 16 --fraction 0.5 --json l.json --progress none
json l.json 'd["protocol"]' | grep -qx linear || fail "linear protocol"
# Fine-tuning trains every weight: the same epochs, batch, subset and seed as the linear
# probe above, but a different result (the encoders moved).
expect 0 "$mosaic" eval --model m.safetensors --data data --protocol finetune --probe-epochs 1 \
  --batch 16 --fraction 0.5 --json ft.json --progress none
json ft.json 'd["protocol"]' | grep -qx finetune || fail "finetune protocol"
[ "$(json ft.json 'repr(d["metrics"]["brier"])')" != "$(json l.json 'repr(d["metrics"]["brier"])')" ] ||
  fail "fine-tuning scored exactly as the linear probe: were the encoders frozen?"
# The low-label subset is a function of the seed: the same seed, the same probe.
expect 0 "$mosaic" eval --model m.safetensors --data data --protocol linear --probe-epochs 1 \
  --batch 16 --fraction 0.5 --json l2.json --progress none
[ "$(json l.json 'repr(d["metrics"]["macro_ap"])')" = "$(json l2.json 'repr(d["metrics"]["macro_ap"])')" ] ||
  fail "two linear probes on the same fraction and seed differ"
# The probe starts from a fresh head (seeded), not the trained one: without training,
# --keep-classifier scores exactly as the model's own classifier, the default does not.
expect 0 "$mosaic" eval --model m.safetensors --data data --protocol linear --probe-epochs 0 \
  --keep-classifier --json l0k.json --progress none
expect 0 "$mosaic" eval --model m.safetensors --data data --protocol linear --probe-epochs 0 \
  --json l0.json --progress none
[ "$(json l0k.json 'repr(d["metrics"])')" = "$(json e.json 'repr(d["metrics"])')" ] ||
  fail "--keep-classifier without probe epochs should score as the model"
[ "$(json l0.json 'repr(d["metrics"]["brier"])')" != "$(json e.json 'repr(d["metrics"]["brier"])')" ] ||
  fail "the linear probe did not start from a fresh classifier"

# --- embed and info -----------------------------------------------------------------------
expect 0 "$mosaic" embed --model m.safetensors --data data --out emb.npy --progress none
python3 - <<'EOF' || fail "emb.npy is not a valid .npy of 60 rows matching emb.ids.txt"
import ast, struct
b = open("emb.npy", "rb").read()
assert b[:8] == b"\x93NUMPY\x01\x00"
hl = struct.unpack("<H", b[8:10])[0]
assert (10 + hl) % 64 == 0
h = ast.literal_eval(b[10:10 + hl].decode())
assert h["descr"] == "<f4" and h["fortran_order"] is False
n, d = h["shape"]
assert n == 60 and d == 32 and len(b) == 10 + hl + 4 * n * d, (n, d)
ids = open("emb.ids.txt").read().splitlines()
assert len(ids) == n and len(set(ids)) == n
# The preview on stdout: the first rows' ids and first values, as in the files.
rows = [l.split() for l in open("out").read().splitlines()[1:6]]
assert len(rows) == 5, rows
vals = struct.unpack("<%df" % (5 * d), b[10 + hl:10 + hl + 20 * d])
for i, r in enumerate(rows):
    assert r[0] == ids[i] and r[-1] == "...", r
    assert all(abs(float(x) - v) <= 5.001e-5 for x, v in zip(r[1:7], vals[i * d:i * d + 6])), r
EOF
# Without S2 (--modalities s1): h_f is S1's features times n_mod / n_present = 2, then
# zeros (docs/model.md, "Missing modalities"); predict runs on the same fused features.
expect 0 "$mosaic" embed --model m.safetensors --data data --out e1.npy --which modality:s1 --progress none
expect 0 "$mosaic" embed --model m.safetensors --data data --out ef.npy --modalities s1 --progress none
python3 - <<'EOF' || fail "embed --modalities s1 is not [2 h_s1, 0]"
import ast, struct
def load(p):
    b = open(p, "rb").read()
    hl = struct.unpack("<H", b[8:10])[0]
    n, d = ast.literal_eval(b[10:10 + hl].decode())["shape"]
    v = struct.unpack("<%df" % (n * d), b[10 + hl:])
    return [v[i * d:(i + 1) * d] for i in range(n)]
h1, hf = load("e1.npy"), load("ef.npy")
assert len(hf) == 60 and len(hf[0]) == 32 and len(h1[0]) == 16
for a, f in zip(h1, hf):
    assert all(abs(2 * x - y) <= 1e-5 * max(1, abs(y)) for x, y in zip(a, f[:16])), (a, f)
    assert all(y == 0 for y in f[16:]), f
EOF
expect 0 "$mosaic" predict --model m.safetensors --data data --modalities s2 --out p2.tsv --progress none
[ "$(wc -l <p2.tsv)" -eq 61 ] || fail "predict --modalities s2 wrote $(wc -l <p2.tsv) lines"
# (a modality the dataset does not have is a mistyped name: usage, exit 2)
expect_error 2 "$mosaic" predict --model m.safetensors --data data --modalities s3 --progress none
expect 0 "$mosaic" info m.safetensors
grep -q 'classes *19' out || fail "info shows no classes"
expect 0 "$mosaic" info m.safetensors --json i.json
json i.json 'd["modalities"][1]["bands"]' | grep -qx 12 || fail "info --json"
# The expected inputs: BigEarthNet v2's bands in the synthetic data's order (S1 VV, VH in
# dB; S2 digital numbers = reflectance × 10000), the normalisation as in the configuration.
python3 - i.json <<'EOF' || fail "info --json: the modalities' inputs"
import json, sys
d = json.load(open(sys.argv[1]))
s1, s2 = d["modalities"]
want = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
assert [e["name"] for e in s2["inputs"]] == want, s2["inputs"]
assert [e["name"] for e in s1["inputs"]] == ["VV", "VH"], s1["inputs"]
assert all(abs(e["scale"] - 1e-4) < 1e-10 and e["offset"] == 0 for e in s2["inputs"])
assert all(e["scale"] == 1 and e["offset"] == 0 for e in s1["inputs"])
mean = [float(v) for v in d["configuration"]["modality.1.mean"].split(",")]
std = [float(v) for v in d["configuration"]["modality.1.std"].split(",")]
for e, m, s in zip(s2["inputs"], mean, std):
    assert abs(e["mean"] - m) <= 1e-6 * abs(m) and abs(e["std"] - s) <= 1e-6 * s, (e, m, s)
assert d["configuration"]["modality.1.band_names"] == ",".join(want)
EOF
expect 0 "$mosaic" info m.safetensors
grep -Eq '^ +8 +B8A +0.0001 +0 ' out || fail "info prints no input table (band 8 of s2: B8A)"
grep -Eq '^ +1 +VH +1 +0 ' out || fail "info prints no input table (band 1 of s1: VH)"

# --- compare: two presets, same data, one table ----------------------------------------------
expect 0 "$mosaic" compare --data data "${common[@]}" --presets supervised,dual --max-steps 1 \
  --protocol knn --k 3 --out-dir cmp
grep -q '^dual ' out || fail "compare printed no table row for dual"
json cmp/compare.json '[r["preset"] for r in d["results"]]' | grep -qF "['supervised', 'dual']" ||
  fail "cmp/compare.json lacks the presets"
[ -f cmp/dual.safetensors ] || fail "compare saved no model"

# --- reproducible from the written configuration ------------------------------------------
expect 0 "$mosaic" train --config m.config.json --out m_again.safetensors
loss1=$(json m.history.json 'd[0]["loss"]')
loss2=$(json m_again.history.json 'd[0]["loss"]')
[ "$loss1" = "$loss2" ] || fail "the same configuration gave another loss ($loss1, $loss2)"

# --- Ctrl-C saves a checkpoint; --resume continues it ------------------------------------
"$mosaic" train --data data "${common[@]}" --epochs 1000 --out int.safetensors >int.out 2>int.err &
pid=$!
for _ in $(seq 1 200); do
  grep -q '^training ' int.out 2>/dev/null && break
  sleep 0.05
done
sleep 1
kill -INT "$pid"
wait "$pid"
status=$?
[ "$status" -eq 130 ] || fail "train after SIGINT exited $status, expected 130"
grep -q 'checkpoint saved to int.safetensors' int.err || fail "no checkpoint message after SIGINT"
[ -f int.safetensors ] || fail "no checkpoint after SIGINT"
step=$(python3 -c "
import json, struct
b = open('int.safetensors', 'rb'); n = struct.unpack('<Q', b.read(8))[0]
print(json.loads(b.read(n))['__metadata__']['mosaic.step'])")
expect 0 "$mosaic" train --resume int.safetensors --max-steps $((step + 1)) --progress none
grep -q "resuming after step $step" out || fail "resume did not continue after step $step"

# --- guards: terms the data cannot feed are refused, never trained at loss 0 ------------------
"$mosaic" synth floods --format sen1floods11 --n 4 --set synth.size=32 >/dev/null ||
  fail "synth sen1floods11"
expect_error 1 "$mosaic" train --data floods --format sen1floods11 --encoder tiny --epochs 1 \
  --batch 2 --no-validate --progress none --out g.safetensors
grep -q "lambda.fused > 0 (a supervised term of preset mosaic1) needs labels" err ||
  fail "no labels: the refusal does not name the term"
expect_error 1 "$mosaic" train --data data --encoder tiny --epochs 1 --batch 2 --no-validate \
  --progress none --out g.safetensors --set data.s1_bands=none
grep -q "lambda.inter > 0 .* needs two modalities" err ||
  fail "one modality: the refusal does not name the term"
expect_error 1 "$mosaic" train --data data --encoder tiny --epochs 1 --batch 2 --no-validate \
  --progress none --out g.safetensors --preset supervised --set lambda.bce=0
grep -q "every loss term has weight 0" err || fail "all-zero objective accepted"

# --- errors: one line, documented exit status ------------------------------------------------
expect_error 2 "$mosaic" frobnicate
expect_error 2 "$mosaic" train
expect_error 2 "$mosaic" train --data data --bogus
expect_error 2 "$mosaic" train --data data --epochs abc
expect_error 2 "$mosaic" train --data data --epochs -1
# --epochs 0 saves the initialised model (a random-encoder baseline) and trains nothing.
expect 0 "$mosaic" train --data data --encoder tiny --epochs 0 --no-validate --progress none \
  --out init.safetensors
[ -s init.safetensors ] || fail "--epochs 0 wrote no model"
# (through a file: grep -q stops reading early, and under pipefail info's SIGPIPE fails)
"$mosaic" info init.safetensors >init.info
grep -q '^trained  *0 steps' init.info ||
  fail "--epochs 0: the model is not at step 0"
expect_error 2 "$mosaic" train --data data --set optim.lr=-1
expect_error 2 "$mosaic" train --data data --set no.such.key=1
expect_error 2 "$mosaic" train --config missing.json
expect_error 2 "$mosaic" eval --model m.safetensors --data data --protocol nope
expect_error 2 "$mosaic" eval --data data
expect_error 2 "$mosaic" info
expect_error 2 "$mosaic" info a b
expect_error 2 "$mosaic" embed --model m.safetensors --data data
expect_error 2 "$mosaic" compare --data data --presets mosaic1,nope
echo '{"tool": {"epochs": "three"}}' >bad.json
expect_error 2 "$mosaic" train --data data --config bad.json
expect_error 1 "$mosaic" train --data no-such-dir "${common[@]}"
expect_error 1 "$mosaic" eval --model missing.safetensors --data data
expect_error 1 "$mosaic" info missing.safetensors
expect_error 1 "$mosaic" info data/metadata.tsv
expect_error 2 "$mosaic" predict --model m.safetensors --data data --format no-such-format
mkdir -p notempty && touch notempty/x
expect_error 1 "$mosaic" synth notempty --n 5
expect_error 1 "$mosaic" synth notempty --n 5 --format pastis
expect 0 "$mosaic" synth pastis --format pastis --n 2 --seed 3
for f in metadata.geojson DATA_S2/S2_1.npy ANNOTATIONS/TARGET_1.npy INSTANCE_ANNOTATIONS/INSTANCES_1.npy; do
  [ -f "pastis/$f" ] || fail "synth --format pastis wrote no $f"
done
json pastis/metadata.geojson 'len(d["features"])' | grep -qx 2 || fail "pastis metadata.geojson"

# --- segmentation (docs/segmentation.md): train on Sen1Floods11 masks, eval per pixel ----
expect 0 "$mosaic" synth floods --format sen1floods11 --n 60 --seed 11 --set synth.size=32
expect 0 "$mosaic" train --data floods --format sen1floods11 --task segmentation \
  --encoder tiny --batch 8 --epochs 6 --lr 0.01 --stats computed --progress none \
  --out seg.safetensors
json seg.config.json 'd["task"]' | grep -qx segmentation || fail "train --task: config"
# The validation pass per pixel: every epoch has its metrics in the history and a line
# on stdout; the saved model is the last epoch's, so `mosaic eval` on the validation
# split (same batch size) reports exactly the last entry's numbers.
grep -q '^  validation (.*pixels): pixel accuracy .* mIoU ' out ||
  fail "train --task segmentation prints no validation line"
json seg.history.json 'len(d) == 6 and all(0 < e["validation"]["miou"] <= 1 and
  0 < e["validation"]["pixel_accuracy"] <= 1 and len(e["validation"]["iou"]) == 2 and
  e["loss_bce"] == 0 and e["loss_seg"] > 0 for e in d)' | grep -qx True ||
  fail "segmentation history: no per-epoch validation metrics"
expect 0 "$mosaic" eval --model seg.safetensors --data floods --format sen1floods11 \
  --split validation --batch 8 --json segval.json --progress none
python3 - seg.history.json segval.json <<'PY' || fail "segmentation validation != eval"
import json, sys
h = json.load(open(sys.argv[1]))
v = json.load(open(sys.argv[2]))
last = h[-1]["validation"]
best = max(range(len(h)), key=lambda e: h[e]["validation"]["miou"])
print("validation mIoU per epoch:", [round(e["validation"]["miou"], 4) for e in h],
      "best epoch", best + 1, "eval of the saved (last) model", round(v["miou"], 4))
for k in ("miou", "pixel_accuracy", "macro_f1"):
    assert last[k] == v[k], (k, last[k], v[k])
assert last["pixels"] == v["pixels"] and last["samples"] == 13
assert [c["iou"] for c in v["classes"]] == last["iou"]
if best == len(h) - 1:  # the saved model is the best epoch's: its score is the best
    assert v["miou"] == max(e["validation"]["miou"] for e in h)
PY
expect 0 "$mosaic" eval --model seg.safetensors --data floods --format sen1floods11 \
  --json seg.json --progress none
grep -q 'mIoU' out || fail "eval of a segmentation model prints no mIoU"
# mIoU is the mean of the per-class IoUs; water (class 1) far above all-land's 0.
json seg.json 'abs(d["miou"] - sum(c["iou"] for c in d["classes"]) / 2) < 1e-9' |
  grep -qx True || fail "segmentation eval: mIoU is not the mean of the class IoUs"
json seg.json 'd["classes"][1]["iou"] > 0.5' | grep -qx True ||
  fail "segmentation eval: water IoU $(json seg.json 'd["classes"][1]["iou"]') <= 0.5"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all tool checks passed"
