#!/usr/bin/env bash
# forecast.sh MOSAIC LIBMOSAIC WORKDIR — the PASTIS side of the `mosaic` tool on a small
# synthetic set: a tiny PIMC model trained for a few steps, then
#  - `mosaic eval --protocol forecast --horizon 2`: the table has the model and
#    persistence rows with finite numbers, and persistence's MAE (JSON) equals a NumPy
#    computation from msc_dataset_series values (check_forecast.py persistence);
#  - `mosaic rplot`: valid PNG files of the documented size whose pixels are the
#    documented 0–255 scaling of plots computed in NumPy from the same series
#    (check_forecast.py png).
set -uo pipefail
mosaic=$1
export MOSAIC_LIBRARY=$2
work=$3
here=$(cd "$(dirname "$0")" && pwd)
check=("/usr/bin/python3" "$here/check_forecast.py")
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMP_WAIT_POLICY=PASSIVE

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
run() { # run CMD...: must exit 0; stdout in out, stderr in err
  "$@" >out 2>err
  local got=$?
  if [ "$got" -ne 0 ]; then
    fail "'$*' exited $got"
    sed 's/^/  stderr: /' err | head -5 >&2
  fi
}

# 12 patches, 4 pixels each: folds 1-3 train (7 patches), fold 5 test (2 patches).
sits=(--set data.sits.pixels=4 --set data.sits.length=16 --set data.sits.patch=16)
run "$mosaic" synth data --format pastis --n 12 --seed 11
run "$mosaic" train --data data --format pastis --preset pimc --encoder tiny "${sits[@]}" \
  --epochs 1 --batch 8 --max-steps 2 --no-validate --out m.safetensors --progress none \
  --workers 1 --seed 3

# --- forecasting ---------------------------------------------------------------------
run "$mosaic" eval --model m.safetensors --data data --format pastis "${sits[@]}" \
  --protocol forecast --horizon 2 --progress none
cat out
for row in model persistence; do
  line=$(grep -E "^  $row " out)
  [ -n "$line" ] || fail "eval forecast: no '$row' row"
  # targets, MAE, RMSE, then MAE and RMSE of t+1 and t+2: 7 finite numbers.
  n=$(echo "$line" | awk '{c=0; for (i=2;i<=NF;i++) if ($i ~ /^[0-9]+(\.[0-9]+)?$/) c++; print c}')
  [ "$n" = 7 ] || fail "eval forecast: the $row row has $n finite numbers, expected 7: $line"
done
run "$mosaic" eval --model m.safetensors --data data --format pastis "${sits[@]}" \
  --protocol forecast --horizon 2 --progress none --json f.json
"${check[@]}" persistence data f.json 2 "${sits[@]}" || fail "persistence MAE differs from NumPy"

# --- recurrence plots as PNG -----------------------------------------------------------
mkdir -p png panels
"$mosaic" rplot --data data --first 1 --out png >out 2>err
if grep -q "built without libpng" err; then
  echo "rplot: this build has no libpng, its checks are skipped"
  rm -f png/*
  [ "$failures" -eq 0 ] && exit 0
  exit 1
fi
rm -f png/*
run "$mosaic" rplot --data data "${sits[@]}" --set data.sits.history=2 --split test \
  --sample 0 --sample 3 --upscale 3 --out png
[ "$(wc -l <out)" = 6 ] || fail "rplot: expected 6 files (2 samples x 3 indices), got: $(cat out)"
"${check[@]}" png data test png 3 "${sits[@]}" --set data.sits.history=2 --index 0 --index 3 ||
  fail "rplot PNG files"
run "$mosaic" rplot --data data "${sits[@]}" --split test --first 1 --panels --colormap viridis \
  --out panels
"${check[@]}" panel "$(cat out)" 48 16 ||
  fail "rplot --panels: not a 3 x 16 = 48 by 16 RGB PNG"
# Errors: an unknown sample, --sample with --first.
"$mosaic" rplot --data data --sample nosuch --out png >out 2>err
[ $? -eq 1 ] || fail "rplot --sample nosuch: expected exit 1"
"$mosaic" rplot --data data --sample 0 --first 2 >out 2>err
[ $? -eq 2 ] || fail "rplot --sample with --first: expected exit 2"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "forecast and rplot: all checks passed"
