#!/usr/bin/env bash
# precision.sh MOSAIC WORKDIR — `--precision` of the tool (docs/precision.md): a tiny model
# trained in bf16 and embedded in bf16 gives embeddings within bfloat16's error of the
# f32 embedding of the same model; an unknown value is refused before any work; with
# oneDNN limited to AVX2 (ONEDNN_MAX_CPU_ISA) bf16 is refused with a message and status 1.
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

"$mosaic" synth data --n 40 --seed 3 >/dev/null || fail "synth"
common=(--data data --encoder tiny --progress none --workers 1 --threads 1 --no-validate)

# An unknown value: refused by the option's validation (usage error or error, not 0).
"$mosaic" train "${common[@]}" --epochs 1 --batch 8 --precision fp16 --out x.safetensors \
  >bad.out 2>bad.err
rc=$?
[ "$rc" -ne 0 ] || fail "--precision fp16 accepted"
grep -q "precision" bad.err || fail "no message naming precision: $(cat bad.err)"
[ -e x.safetensors ] && fail "--precision fp16 still trained"

# AVX2 only: bf16 refused with the reason.
ONEDNN_MAX_CPU_ISA=AVX2 "$mosaic" train "${common[@]}" --epochs 1 --batch 8 --precision bf16 \
  --out y.safetensors >avx2.out 2>avx2.err
rc=$?
[ "$rc" -eq 1 ] || fail "bf16 on AVX2: status $rc, expected 1"
grep -q "AVX-512" avx2.err || fail "bf16 on AVX2: no reason given: $(cat avx2.err)"

# Where bf16 runs: train and embed in bf16, compare with f32 embeddings of the same model.
if "$mosaic" train "${common[@]}" --epochs 1 --batch 8 --precision bf16 --out m.safetensors \
  >train.out 2>train.err; then
  "$mosaic" embed --model m.safetensors --data data --out f.npy --progress none \
    >/dev/null 2>ef.err || fail "embed f32: $(cat ef.err)"
  "$mosaic" embed --model m.safetensors --data data --out b.npy --progress none \
    --precision bf16 >/dev/null 2>eb.err || fail "embed bf16: $(cat eb.err)"
  "${PYTHON:-/usr/bin/python3}" - <<'PY' || fail "bf16 embeddings not within bfloat16's error of f32"
import numpy as np
f = np.load("f.npy"); b = np.load("b.npy")
assert f.shape == b.shape and f.dtype == b.dtype == np.float32, (f.shape, b.shape)
err = float(np.linalg.norm(b - f) / np.linalg.norm(f))
print("bf16 vs f32 embeddings: relative L2 error %.3g" % err)
assert 1e-5 < err < 3e-2, err  # tests/test_precision.c explains the bounds
PY
elif grep -q "AVX-512" train.err; then
  echo "SKIPPED bf16 runs: $(cat train.err)"
else
  fail "train bf16: $(cat train.err)"
fi

[ "$failures" -eq 0 ] || exit 1
echo "precision.sh: all checks passed"
