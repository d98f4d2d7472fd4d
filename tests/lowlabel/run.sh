#!/usr/bin/env bash
# run.sh MOSAIC WORKDIR — MoSAiC's low-label experiment on synthetic BigEarthNet v2
# (docs/data.md, "Low-label training"): with 10 % of the training split labelled,
#   A  mosaic1 with the other 90 % in the run as unlabelled samples (--labeled-fraction 0.1)
#   B  mosaic1 on the 10 % alone (--fraction 0.1)
#   C  supervised on the 10 % alone (--fraction 0.1)
# A must beat B and C in macro AP on the test split (the paper's ordering). Tiny encoders
# with a stride-2 stem and max-pool (as the main job), the same epochs and seeds for all.
set -euo pipefail
mosaic=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export OMP_WAIT_POLICY=PASSIVE

"$mosaic" synth ben --n 600 --seed 7 >/dev/null
common=(--data ben --encoder tiny --batch 32 --epochs 8 --seed 3 --lr 0.01 --no-validate
        --progress none --set threads=2
        --set modality.0.stem_stride=2 --set modality.0.maxpool=1
        --set modality.1.stem_stride=2 --set modality.1.maxpool=1)
"$mosaic" train "${common[@]}" --preset mosaic1 --labeled-fraction 0.1 --out a.safetensors >a.log
"$mosaic" train "${common[@]}" --preset mosaic1 --fraction 0.1 --out b.safetensors >b.log
"$mosaic" train "${common[@]}" --preset supervised --fraction 0.1 --out c.safetensors >c.log
grep -q "labelled)" a.log && grep -Eq " (3[5-9]|4[0-9]) labelled\)" a.log ||
  { echo "FAIL: run A does not say it has about 10 % labelled:" >&2; head -2 a.log >&2; exit 1; }
for m in a b c; do
  "$mosaic" eval --model "$m.safetensors" --data ben --split test --progress none \
    --json "$m.json" >/dev/null
done
python3 - <<'PY'
import json
ap = {m: json.load(open(f"{m}.json"))["metrics"]["macro_ap"] for m in "abc"}
print(f"macro AP at 10 % labels: mosaic1 + unlabelled {ap['a']:.4f}, "
      f"mosaic1 on the 10 % {ap['b']:.4f}, supervised on the 10 % {ap['c']:.4f}")
assert ap["a"] > ap["b"] and ap["a"] > ap["c"], "the paper's ordering does not hold"
print("ok")
PY
