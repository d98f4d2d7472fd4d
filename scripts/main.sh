#!/usr/bin/env bash
# main.sh — the project's main job: the whole chain of the `mosaic` tool.
#
#   bash scripts/main.sh          (as root on a fresh Debian 12, or with sudo)
#
#  1. installs the missing Debian packages (scripts/install-deps.sh);
#  2. makes a Release build in ./build-release (or $MSC_RELEASE_DIR; extra CMake
#     arguments in $MSC_CMAKE_ARGS);
#  3. writes a synthetic BigEarthNet v2 dataset (`mosaic synth`);
#  4. trains a mosaic1 model with tiny encoders on it, with a progress display,
#     validation after every epoch and a checkpoint (`mosaic train`);
#  5. evaluates it on the test split: the model's classifier and kNN on embeddings
#     (`mosaic eval`: macro/micro AP and F1, Hamming loss, Brier score, per class), and
#     writes the HTML report (`mosaic report`: curves, PR, confusion, quicklooks);
#  6. embeds and predicts the real BigEarthNet v2 samples in examples/data
#     (`mosaic embed`, `mosaic predict`);
#  6b. PIMC on synthetic satellite image time series (PASTIS layout): pre-training, pixel
#     classification by linear probes (pre-trained vs random encoders), forecasting,
#     recurrence plots as PNG (`mosaic synth --format pastis`, `train --preset pimc`,
#     `eval --protocol linear|forecast`, `rplot`);
#  7. installs the library, the tool and the Python package under /usr/local
#     ($MSC_MAIN_PREFIX; MSC_MAIN_INSTALL=0 skips it), so that `mosaic`, pkg-config's
#     mosaic and `import mosaic` work from anywhere, and runs the README's Python
#     example, as written, on the model just trained;
#  8. prints where the model and the results are ($MSC_MAIN_OUT, default ./main-out).
#
# About 5 minutes on 2 cores after the build. Environment: MSC_MAIN_PATCHES (synthetic
# patches, default 1200), MSC_MAIN_EPOCHS (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

bash scripts/install-deps.sh

build=${MSC_RELEASE_DIR:-build-release}
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$PWD" "$build/CMakeCache.txt"; then
  echo "main.sh: $build was configured for another source tree; starting it afresh"
  rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
fi

# shellcheck disable=SC2086  # MSC_CMAKE_ARGS is a list of arguments
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMSC_BUILD_TESTS=OFF \
  -DMSC_BUILD_BENCH=OFF ${MSC_CMAKE_ARGS:-}
cmake --build "$build" --parallel "$(nproc)"
built=$SECONDS

mosaic=$build/tools/mosaic
"$mosaic" version
"$mosaic" backends
echo

out=${MSC_MAIN_OUT:-main-out}
mkdir -p "$out"
data=$out/synthetic
real=examples/data/bigearthnet-v2
# OpenMP threads sleep instead of spinning while they wait (the data loader shares the
# cores); this is faster on small machines.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

step() { printf '\n=== %s\n' "$*"; }

step "1/7 synthetic dataset"
"$mosaic" synth "$data" --n "${MSC_MAIN_PATCHES:-1200}" --seed 42

# The training configuration: tiny encoders (two stages, 16 and 32 channels) with a
# stride-2 stem and a max-pool (30×30 feature maps: a few minutes on 2 cores), mosaic1,
# AdamW with warm-up and cosine decay.
cat >"$out/train.json" <<EOF
{
  "tool": {"data": "$data", "format": "bigearthnet-v2", "encoder": "tiny",
           "epochs": ${MSC_MAIN_EPOCHS:-10}, "batch": 32, "workers": 1},
  "train": {"preset": "mosaic1"},
  "optim": {"lr": 0.01},
  "seed": 42,
  "modality": [{"stem_stride": 2, "maxpool": 1, "widths": [16, 32]},
               {"stem_stride": 2, "maxpool": 1, "widths": [16, 32]}]
}
EOF

step "2/7 training mosaic1 (configuration $out/train.json)"
"$mosaic" train --config "$out/train.json" --out "$out/model.safetensors"

step "3/7 evaluation on the synthetic test split"
"$mosaic" eval --model "$out/model.safetensors" --data "$data" --split test \
  --json "$out/eval-test.json"
echo
"$mosaic" eval --model "$out/model.safetensors" --data "$data" --split test \
  --protocol knn --k 10 --json "$out/eval-test-knn.json" | sed -n '1,9p'

echo
# One HTML file to look at: curves from model.steps.jsonl and model.history.json, per-class
# AP/F1, precision-recall, confusion, quicklooks (docs/tool.md, "report"; about a second).
"$mosaic" report --model "$out/model.safetensors" --data "$data" --split test \
  --progress none --out "$out/report.html"

step "4/7 the real BigEarthNet v2 samples ($real)"
"$mosaic" embed --model "$out/model.safetensors" --data "$real" --split all \
  --out "$out/real-embeddings.npy"
"$mosaic" predict --model "$out/model.safetensors" --data "$real" --split all \
  --out "$out/real-predictions.tsv"

step "5/7 the model"
"$mosaic" info "$out/model.safetensors" | sed -n '1,10p'

step "6/7 PIMC on synthetic satellite image time series (docs/pimc.md)"
# Pixel samples of a synthetic PASTIS layout: recurrence plots of NDVI/EVI/SAVI ("rp")
# aligned with the median image around each pixel ("s2"); then pixel classification by a
# linear probe on the pre-trained encoders and, as the baseline, on random ones.
sits=$out/sits
"$mosaic" synth "$sits" --format pastis --n "${MSC_MAIN_SITS_PATCHES:-120}" --seed 42
sitsopt=(--data "$sits" --format pastis --set data.sits.cloud_blue=0.25
         --set data.sits.length=24 --set data.sits.patch=16)
pimc=("${sitsopt[@]}" --encoder tiny --batch 64 --workers 2)
"$mosaic" train "${pimc[@]}" --preset pimc --epochs "${MSC_MAIN_SITS_EPOCHS:-4}" \
  --lr 0.005 --no-validate --progress lines --out "$out/pimc.safetensors"
"$mosaic" train "${pimc[@]}" --preset pimc --epochs 0 --no-validate --progress none \
  --out "$out/pimc-random.safetensors" >/dev/null
for m in pimc pimc-random; do
  echo "--- linear probe, pixel classification, encoders of $m"
  "$mosaic" eval --model "$out/$m.safetensors" "${sitsopt[@]}" --split test \
    --protocol linear --probe-epochs 3 --progress none --json "$out/eval-$m.json" \
    | sed -n '1,8p'
done
echo "--- forecasting the next 4 NDVI values of each test pixel (ridge on the embedding)"
"$mosaic" eval --model "$out/pimc.safetensors" "${sitsopt[@]}" --split test \
  --protocol forecast --horizon 4 --progress none --json "$out/eval-pimc-forecast.json" \
  | cut -c1-100
"$mosaic" rplot "${sitsopt[@]}" --split test --first 3 --panels --colormap viridis \
  --upscale 4 --out "$out/plots"

step "7/7 installing to ${MSC_MAIN_PREFIX:-/usr/local}; the README's Python example"
installed=no
if [ "${MSC_MAIN_INSTALL:-1}" != 0 ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  if "${as_root[@]}" cmake --install "$build" --prefix "${MSC_MAIN_PREFIX:-/usr/local}" >"$out/install.log"; then
    "${as_root[@]}" ldconfig || true
    installed=yes
    echo "installed (list: $build/install_manifest.txt)"
  else
    echo "main.sh: the install failed (see $out/install.log); continuing with the build tree" >&2
  fi
fi
# Without the install, the package and library come from the tree.
if [ "$installed" = no ]; then
  export PYTHONPATH=$PWD/bindings/python${PYTHONPATH:+:$PYTHONPATH}
  export MOSAIC_LIBRARY=$(cd "$build" && pwd)/libmosaic.so.0
fi
/usr/bin/python3 -c "import mosaic; print('python3: import mosaic ->', mosaic.version(), 'from', mosaic.library_path())"
# The first python block of README.md, run as a user would paste it, in the
# repository root (it reads main-out/model.safetensors and examples/data).
if [ "$out" = main-out ]; then
  awk '/^```python/ { on = 1; next } /^```/ { if (on) exit } on' README.md >"$out/readme_example.py"
  /usr/bin/python3 "$out/readme_example.py"
fi

cat <<EOF

=== done in $((SECONDS - start)) s (build $((built - start)) s, mosaic $((SECONDS - built)) s)
  model            $out/model.safetensors  (checkpoint; configuration $out/model.config.json,
                   losses and validation metrics per epoch $out/model.history.json,
                   per step $out/model.steps.jsonl)
  test metrics     $out/eval-test.json, $out/eval-test-knn.json
  report           $out/report.html  (open it in a browser: curves, PR, confusion, samples)
  real samples     $out/real-embeddings.npy (+ .ids.txt), $out/real-predictions.tsv
  synthetic data   $data
  PIMC             $out/pimc.safetensors, $out/eval-pimc*.json, recurrence plots in $out/plots
  the tool         $mosaic --help    (docs/tool.md); installed: $installed
EOF
