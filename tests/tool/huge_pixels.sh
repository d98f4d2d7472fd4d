#!/usr/bin/env bash
# huge_pixels.sh MOSAIC WORKDIR — `mosaic train` on finite but huge pixels (issue 19):
# S1 tiles of 1e19 to 1e25 make the first BatchNorm's batch variance overflow float32
# while the loss and the gradients stay finite. A run resumed from a good checkpoint on
# such data must skip those steps (one note each on stderr naming the running statistic),
# exit 0 and leave a checkpoint that loads and holds exactly the state it had (weights,
# running statistics, optimiser moments, step); the epoch line says no step was taken, and
# the history counts the skipped steps (its losses null)
# (docs/tool.md, "train"; docs/training.md, "Safety").
set -uo pipefail
mosaic=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
helper=("/usr/bin/python3" "$here/huge_pixels.py")
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMP_WAIT_POLICY=PASSIVE

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
expect() { # expect STATUS CMD...: stdout in out, stderr in err
  local want=$1
  shift
  "$@" >out 2>err
  local got=$?
  if [ "$got" -ne "$want" ]; then
    fail "'$*' exited $got, expected $want"
    sed 's/^/  stderr: /' err | head -5 >&2
  fi
}

common=(--encoder tiny --batch 8 --progress none --workers 1 --seed 5)
expect 0 "$mosaic" synth data --n 40 --seed 7
expect 0 "$mosaic" train --data data "${common[@]}" --epochs 1 --out good.safetensors
cp good.safetensors before.safetensors
cp -r data huge
find huge/BigEarthNet-S1 -name '*.tif' -print0 | xargs -0 "${helper[@]}" rewrite ||
  fail "could not rewrite the S1 tiles"

# Every step of the second epoch sees huge S1 pixels: each is skipped.
expect 0 "$mosaic" train --data huge "${common[@]}" --resume good.safetensors --epochs 2
cp err train.err
cp out train.out
grep -q 'epoch 2/2  step 6  no step taken  3 step(s) skipped' train.out ||
  fail "the epoch line does not say that every step was skipped: $(grep epoch train.out)"
grep -c '^mosaic: step [0-9]* skipped: running statistic enc\.s1\.bn1\.running_var is not finite' \
  train.err >count
[ "$(cat count)" -eq 3 ] || {
  fail "expected 3 'step N skipped: running statistic' notes, got $(cat count)"
  sed 's/^/  stderr: /' train.err >&2
}
expect 0 "$mosaic" info --model good.safetensors
"${helper[@]}" same-state before.safetensors good.safetensors >diff ||
  fail "the skipped steps changed the checkpoint: $(cat diff)"
/usr/bin/python3 -c "import json,sys; e=json.load(open(sys.argv[1]))[-1]; print(e['skipped_steps'], e['loss'])" \
  good.history.json >skips
[ "$(cat skips)" = "3 None" ] ||
  fail "history: skipped_steps and loss are '$(cat skips)', expected 3 and null"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "huge_pixels.sh: all checks passed"
