#!/usr/bin/env bash
# compare_seg.sh MOSAIC WORKDIR — `mosaic compare --task segmentation` (the dual-encoder
# paper's experiment, docs/segmentation.md "Comparing pre-training") on synthetic
# Sen1Floods11 chips with tiny encoders and a few steps: compare.json has the three arms
# (dual, simclr, scratch); each arm's pixel accuracy, mIoU and per-class IoUs equal
# `mosaic eval` of that arm's saved model; mIoU is the mean of the class IoUs; the dual
# and scratch arms' models are bit for bit what `mosaic train --task segmentation` (with
# and without --init from the saved pre-trained model, on --fraction = the labelled
# share) trains from the same configuration; bad arm names are refused.
set -uo pipefail
mosaic=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMP_WAIT_POLICY=PASSIVE
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
run() {
  "$@" >out 2>err || { fail "'$*' exited $?"; sed 's/^/  stderr: /' err | head -5 >&2; }
}
json() { # json FILE PYTHON-EXPRESSION-ON-d
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

run "$mosaic" synth floods --format sen1floods11 --n 60 --seed 11 --set synth.size=32
common=(--data floods --format sen1floods11 --encoder tiny --batch 8 --lr 0.01
        --stats computed --progress none --set threads=2)
run "$mosaic" compare "${common[@]}" --task segmentation --epochs 1 --probe-epochs 2 \
  --labeled-fraction 0.5 --probe-lr 0.01 --out-dir cmp
cp out compare.log
for a in dual simclr scratch; do
  grep -q "^$a " compare.log || fail "compare printed no table row for $a"
done
json cmp/compare.json '[r["preset"] for r in d["results"]]' |
  grep -qxF "['dual', 'simclr', 'scratch']" || fail "compare.json lacks the three arms"
json cmp/compare.json '[r["pretrained"] for r in d["results"]]' |
  grep -qxF "[True, True, False]" || fail "compare.json: pretrained flags"
json cmp/compare.json 'd["labeled_samples"] == round(0.5 * d["pretrain_samples"])' |
  grep -qx True || fail "compare.json: the labelled share is not half the training chips"
for a in dual simclr; do
  [ -f "cmp/$a.pretrain.safetensors" ] || fail "no pre-trained model for $a"
done
[ -f cmp/scratch.pretrain.safetensors ] && fail "scratch has a pre-trained model"

# Every arm against `mosaic eval` of its saved model, and mIoU = mean of the class IoUs.
for a in dual simclr scratch; do
  run "$mosaic" eval --model "cmp/$a.safetensors" --data floods --format sen1floods11 \
    --json "eval_$a.json" --progress none --set threads=2
  python3 - "$a" <<'PY' || fail "arm $1: compare's scores differ from mosaic eval"
import json, sys
arm = sys.argv[1]
c = [r for r in json.load(open("cmp/compare.json"))["results"] if r["preset"] == arm][0]
e = json.load(open(f"eval_{arm}.json"))
for k in ("pixels", "pixel_accuracy", "miou", "macro_f1"):
    assert c[k] == e[k], (arm, k, c[k], e[k])
assert [x["iou"] for x in c["classes"]] == [x["iou"] for x in e["classes"]], arm
iou = [x["iou"] for x in c["classes"]]
assert abs(c["miou"] - sum(iou) / len(iou)) < 1e-12, (c["miou"], iou)
assert 0 < c["miou"] <= 1 and c["pixels"] > 0
PY
done

# The dual and scratch arms are `mosaic train --task segmentation` on the labelled share
# (--fraction 0.5 draws the same chips), from the saved configuration: same tensors.
run "$mosaic" train --config cmp/compare.config.json --task segmentation --fraction 0.5 \
  --epochs 2 --init cmp/dual.pretrain.safetensors --out t_dual.safetensors
run "$mosaic" train --config cmp/compare.config.json --task segmentation --fraction 0.5 \
  --epochs 2 --out t_scratch.safetensors
for a in dual scratch; do
  python3 - "$a" <<'PY' || fail "arm $1: compare's model is not what mosaic train trains"
import json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    return h, b[8 + n:]
ha, da = tensors(f"cmp/{sys.argv[1]}.safetensors")
hb, db = tensors(f"t_{sys.argv[1]}.safetensors")
assert ha == hb and da == db
PY
done

run "$mosaic" compare --help
grep -q -- "--task segmentation" out || fail "compare --help does not describe --task"
"$mosaic" compare "${common[@]}" --task segmentation --presets dual,nope >out 2>err
[ $? -eq 2 ] || fail "an unknown arm is not a usage error"
grep -q "'nope' is not a preset or scratch" err || fail "the refusal does not name the arm"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all compare --task segmentation checks passed"
