#!/usr/bin/env bash
# run.sh MOSAIC WORKDIR EUROSAT — PIMC learns (issue "PIMC end to end", docs/pimc.md): on a
# synthetic PASTIS layout (crop classes with distinct NDVI phenology, noise, cloudy dates),
# PIMC pre-training of tiny encoders (recurrence plots ↔ image patches, no labels), then a
# linear probe for pixel classification on the pre-trained encoders must beat the same probe
# on randomly initialised encoders (the same architecture and seed, --epochs 0), and a
# ridge forecast of NDVI from the PIMC embedding must beat persistence at horizon 4.
# Seeds are fixed, so the numbers are the same on every run of one build; both are printed.
# Then the PIMC image encoder ("s2", 10 bands) under a EuroSAT classifier (--init with the
# real EuroSAT sample EUROSAT, its bands in PASTIS's order): the copy and a probe run.
set -euo pipefail
mosaic=$1
work=$2
eurosat=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export OMP_WAIT_POLICY=PASSIVE

"$mosaic" synth sits --format pastis --n 60 --seed 5 >/dev/null
data=(--data sits --format pastis --set data.sits.cloud_blue=0.25 --set data.sits.length=24
      --set data.sits.patch=16 --set threads=2)
"$mosaic" train "${data[@]}" --preset pimc --encoder tiny --batch 64 --epochs 3 --lr 0.005 \
  --seed 3 --no-validate --progress none --out pimc.safetensors >train.log
"$mosaic" train "${data[@]}" --preset pimc --encoder tiny --epochs 0 --seed 3 \
  --no-validate --progress none --out random.safetensors >/dev/null
for m in pimc random; do
  "$mosaic" eval --model "$m.safetensors" "${data[@]}" --split test --protocol linear \
    --probe-epochs 3 --seed 3 --progress none --json "eval-$m.json" >"eval-$m.txt"
done
python3 - <<'PY'
import json
# Pixel classes are single-label: accuracy, macro F1 and mIoU of the arg max (void pixels
# are never samples, so never counted).
keys = ("accuracy", "macro_f1", "miou")
res = {m: json.load(open(f"eval-{m}.json"))["single_label"] for m in ("pimc", "random")}
for m, r in res.items():
    print(f"{m:7s} " + "  ".join(f"{k} {r[k]:.4f}" for k in keys))
key = "macro_f1"
p, r = res["pimc"][key], res["random"][key]
assert p > r + 0.02, f"PIMC pre-training does not beat random encoders: {key} {p:.4f} vs {r:.4f}"
print(f"PIMC {key} {p:.4f} > random {r:.4f}: ok")
PY

# Forecasting: the next 4 NDVI values from the rp embedding and the recent history, by a
# ridge regression, must beat persistence (docs/pimc.md, "Forecasting").
"$mosaic" eval --model pimc.safetensors "${data[@]}" --split test --protocol forecast \
  --horizon 4 --progress none --json forecast.json >forecast.txt
python3 - <<'PY'
import json
m = json.load(open("forecast.json"))["methods"]
a, p = m["model"]["mae"], m["persistence"]["mae"]
print(f"forecast h=4: model MAE {a:.4f} RMSE {m['model']['rmse']:.4f}, "
      f"persistence MAE {p:.4f} RMSE {m['persistence']['rmse']:.4f}")
assert a < p, f"forecasting does not beat persistence: MAE {a:.4f} vs {p:.4f}"
PY

# EuroSAT land cover from the PIMC image encoder: a frozen copy, a fresh classifier.
bands=B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12
"$mosaic" train --data "$eurosat" --format eurosat --set data.split=all --set data.s2_bands=$bands \
  --preset supervised --encoder tiny --init pimc.safetensors --init-prefix enc.s2. \
  --set train.freeze_encoders=1 --epochs 3 --batch 3 --no-validate --progress none \
  --out eurosat.safetensors >eurosat.log
grep -q '^initialised [1-9][0-9]* tensors (enc.s2.\*) from pimc.safetensors' eurosat.log || {
  echo "FAIL: --init copied nothing:" >&2
  cat eurosat.log >&2
  exit 1
}
"$mosaic" eval --model eurosat.safetensors --data "$eurosat" --format eurosat --split all \
  --set data.s2_bands=$bands --progress none | sed -n '1,6p'
