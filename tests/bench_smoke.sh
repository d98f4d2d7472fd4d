#!/usr/bin/env bash
# bench_smoke.sh BENCH_DIR PYTHON — the benchmark programs of bench/ still run (they are
# never timed here: docs/performance.md), and the PyTorch transcriptions they are compared
# with build the same models.
#  - every bench_* program runs a minimal case, exits 0 and prints JSON lines with a
#    positive rate (bench_pimc had refused its own model since the "plot" modality kind
#    landed, unnoticed until 2026-12-05, because nothing ran it);
#  - where PyTorch and the baseline's mosaic_ref.py are found (MOSAIC_TORCH_DIR, else
#    ../shared/bench beside the repository), bench/seg_torch.py --check loads the
#    weights `bench_seg --dump` wrote (tiny and ResNet-18 U-Nets) and must give the same
#    eval-mode probabilities (max |difference| < 1e-4) and first training loss (relative
#    2e-5), bench/pimc_torch.py --load the first PIMC loss of `bench_pimc --save`, and
#    bench/map_torch.py the class map of `bench_scene` (overlapping tiles; at least 99.9 %
#    of the pixels, for near ties): an independent implementation of the segmentation,
#    PIMC and scene steps. Without them that part is skipped, and says so.
set -u
bench=$1 py=$2
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}
# json_field FILE KEY: KEY of the last JSON line of FILE.
json_field() {
  "$py" -c 'import json,sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(d[sys.argv[2]])' "$1" "$2"
}
# run NAME ARGS...: the program ends with 0 and its last line has samples_per_s or a
# rate > 0.
run() {
  local name=$1
  shift
  "$bench/$name" "$@" >"$dir/$name.out" 2>"$dir/$name.err" ||
    { cat "$dir/$name.err"; fail "$name $* exited $?"; }
  "$py" - "$dir/$name.out" <<'EOF' || { cat "$dir/$name.out" "$dir/$name.err"; fail "$name: output"; }
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert rows, "no JSON line"
for r in rows:
    rates = [v for k, v in r.items() if k.endswith("per_s") and isinstance(v, (int, float))]
    assert rates and all(v > 0 for v in rates), "no positive rate in %s" % r
EOF
  echo "ok: $name $*"
}
export OMP_NUM_THREADS=1
run bench_embed --encoder tiny --batch 2 --iters 1 --threads 1
run bench_train --encoder tiny --batch 4 --iters 1 --threads 1
run bench_pimc --encoder tiny --batch 4 --warmup 1 --steps 1 --threads 1 \
  --save "$dir/pimc.safetensors"
run bench_seg --encoder tiny --batch 2 --infer-batch 2 --iters 1 --threads 1 --size 32 \
  --dump "$dir"
run bench_loss --n 16 --d 8 --c 4 --iters 1 --threads 1
[ -x "$bench/bench_data" ] && run bench_data --patches 4 --batch 2 --iters 1 --dir "$dir/data"
run bench_rplot --pixels 16 --iters 1
run bench_scene --size 256 --encoder tiny --tile 128 --stride 100 --batch 2 --threads 1 \
  --dir "$dir/scene" --npy 1 --save "$dir/scene.safetensors"

torch_dir=${MOSAIC_TORCH_DIR:-$here/../shared/bench}
if [ ! -f "$torch_dir/mosaic_ref.py" ] || ! "$py" -c "import torch" 2>/dev/null; then
  echo "SKIPPED (no PyTorch or no $torch_dir/mosaic_ref.py): the transcription checks"
  exit 0
fi
tol() { # tol A B REL: |A - B| <= REL |B|
  "$py" -c 'import sys; a, b, r = map(float, sys.argv[1:]); sys.exit(abs(a - b) > r * abs(b))' \
    "$1" "$2" "$3"
}
# seg_torch --check ENCODER SIZE: against the dump in $dir/ENCODER.
seg_check() {
  local enc=$1 size=$2 d=$dir/seg-$1
  mkdir -p "$d"
  "$bench/bench_seg" --encoder "$enc" --batch 2 --iters 1 --threads 1 --mode train \
    --size "$size" --dump "$d" >"$d/lib.out" || fail "bench_seg --dump ($enc)"
  "$py" "$here/bench/seg_torch.py" --torch-dir "$torch_dir" --encoder "$enc" --size "$size" \
    --threads 1 --check "$d" >"$d/torch.out" || fail "seg_torch.py --check ($enc)"
  cat "$d/torch.out"
  local diff lib tor
  diff=$(json_field "$d/torch.out" max_abs_diff)
  lib=$(json_field "$d/lib.out" loss0)
  tor=$(json_field "$d/torch.out" loss0)
  "$py" -c 'import sys; sys.exit(not float(sys.argv[1]) < 1e-4)' "$diff" ||
    fail "$enc U-Net: probabilities differ from PyTorch's by $diff"
  tol "$tor" "$lib" 2e-5 || fail "$enc U-Net: first loss $lib, PyTorch's $tor"
  echo "ok: $enc U-Net = PyTorch (max |diff| $diff, loss $lib / $tor)"
}
seg_check tiny 32
seg_check resnet18 64
"$py" "$here/bench/pimc_torch.py" --torch-dir "$torch_dir" --encoder tiny --batch 4 \
  --warmup 1 --steps 1 --threads 1 --load "$dir/pimc.safetensors" >"$dir/pimc.torch" ||
  fail "pimc_torch.py --load"
lib=$(json_field "$dir/bench_pimc.out" loss0)
tor=$(json_field "$dir/pimc.torch" loss0)
tol "$tor" "$lib" 2e-5 || fail "PIMC first loss $lib, PyTorch's $tor"
echo "ok: PIMC step = PyTorch (loss $lib / $tor)"
# The scene: bench/map_torch.py's sliding window (overlapping tiles, the centre rule) with
# the same weights, against msc_scene_write's class map (a near tie may differ).
"$py" "$here/bench/map_torch.py" --torch-dir "$torch_dir" --dir "$dir/scene" --size 256 \
  --encoder tiny --tile 128 --stride 100 --batch 2 --threads 1 \
  --load "$dir/scene.safetensors" --out "$dir/scene/torch.npy" >"$dir/map.torch" ||
  fail "map_torch.py"
"$bench/bench_scene" --size 256 --encoder tiny --tile 128 --stride 100 --batch 2 --threads 1 \
  --dir "$dir/scene" --compare "$dir/scene/torch.npy" >"$dir/map.cmp" || fail "bench_scene --compare"
agree=$(json_field "$dir/map.cmp" agreement)
"$py" -c 'import sys; sys.exit(not float(sys.argv[1]) >= 0.999)' "$agree" ||
  fail "the scene maps agree on $agree of the pixels"
echo "ok: scene map = PyTorch sliding window on $agree of the pixels"
# The checks can fail: another model's weights give another loss.
"$py" "$here/bench/pimc_torch.py" --torch-dir "$torch_dir" --encoder tiny --batch 4 \
  --warmup 1 --steps 1 --threads 1 --seed 2 --load "$dir/pimc.safetensors" >"$dir/pimc2.torch" ||
  fail "pimc_torch.py --seed 2"
tol "$(json_field "$dir/pimc2.torch" loss0)" "$lib" 2e-5 &&
  fail "PIMC: other inputs gave the same loss (the comparison could not fail)"
exit 0
