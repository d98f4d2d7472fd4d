#!/usr/bin/env bash
# precision.sh MOSAIC WORKDIR — `--precision` of the tool (docs/precision.md): a tiny model
# trained in bf16 and embedded in bf16 gives embeddings within bfloat16's error of the
# f32 embedding of the same model; an unknown value is refused before any work; with
# oneDNN limited to AVX2 (ONEDNN_MAX_CPU_ISA) bf16 is refused with a message and status 1;
# --precision int8 with --calibrate (embed, predict), refused for training and below AVX2.
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

# int8 (post-training quantisation): embed and predict calibrate on --calibrate batches
# first; the embeddings stay within 8-bit quantisation's error of f32 (tests/test_int8.c
# explains the bound). Training in int8 is refused; so is a CPU below AVX2.
"$mosaic" train "${common[@]}" --epochs 1 --batch 8 --out q.safetensors >tq.out 2>tq.err ||
  fail "train f32 for int8: $(cat tq.err)"
"$mosaic" embed --model q.safetensors --data data --out qf.npy --progress none \
  >/dev/null 2>qf.err || fail "embed f32: $(cat qf.err)"
"$mosaic" embed --model q.safetensors --data data --out q8.npy --progress none \
  --precision int8 --calibrate 2 --batch 8 -v >q8.out 2>q8.err || fail "embed int8: $(cat q8.err)"
grep -q "calibrated on 16 samples" q8.err || fail "int8: no calibration note: $(cat q8.err)"
"${PYTHON:-/usr/bin/python3}" - <<'PY' || fail "int8 embeddings not within 8-bit error of f32"
import numpy as np
f = np.load("qf.npy"); q = np.load("q8.npy")
assert f.shape == q.shape and q.dtype == np.float32, (f.shape, q.shape)
err = float(np.linalg.norm(q - f) / np.linalg.norm(f))
print("int8 vs f32 embeddings: relative L2 error %.3g" % err)
assert 1e-5 < err < 0.1, err
PY
"$mosaic" predict --model q.safetensors --data data --out q8.tsv --progress none \
  --precision int8 >/dev/null 2>p8.err || fail "predict int8: $(cat p8.err)"
[ -s q8.tsv ] || fail "predict int8 wrote nothing"
"$mosaic" train "${common[@]}" --epochs 1 --batch 8 --precision int8 --out t8.safetensors \
  >t8.out 2>t8.err
[ $? -ne 0 ] || fail "train --precision int8 accepted"
grep -q "inference only" t8.err || fail "train int8: no reason given: $(cat t8.err)"
"$mosaic" map --model q.safetensors --out m8.tif --precision int8 >map8.out 2>map8.err
[ $? -ne 0 ] || fail "map --precision int8 accepted"
grep -q "int8" map8.err || fail "map int8: no reason given: $(cat map8.err)"
ONEDNN_MAX_CPU_ISA=SSE41 "$mosaic" embed --model q.safetensors --data data --out s.npy \
  --progress none --precision int8 >sse.out 2>sse.err
rc=$?
[ "$rc" -eq 1 ] || fail "int8 on SSE4.1: status $rc, expected 1"
grep -q "AVX2" sse.err || fail "int8 on SSE4.1: no reason given: $(cat sse.err)"

[ "$failures" -eq 0 ] || exit 1
echo "precision.sh: all checks passed"
