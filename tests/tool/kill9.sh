#!/usr/bin/env bash
# kill9.sh MOSAIC WORKDIR — `mosaic train` killed with SIGKILL at random points, ten times
# (docs/training.md, "What survives a crash").
#
# A tiny run saves a checkpoint every epoch (one step of 8 samples: about every 2 s, the
# first after about 2 s); each round starts a run — a fresh one with another architecture
# and learning rate every third round, else --resume of the checkpoint — and kills it with
# SIGKILL after a random 0.5–4.5 s: before the first save, in a step or in a save. After every kill:
#  - m.safetensors, if it exists, loads (`mosaic info`, which runs msc_model_load: a torn
#    or truncated file is refused there);
#  - the configuration it carries (what --resume reads) describes it: the run
#    configuration's architecture is the checkpoint's, and its learning rate is the one
#    the checkpoint's training options hold;
#  - a --resume round never fails on its own before the kill.
# MSC_KILL_SEED repeats a sequence of kill times (the seed is printed).
set -uo pipefail
mosaic=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMP_WAIT_POLICY=PASSIVE
seed=${MSC_KILL_SEED:-$RANDOM}
RANDOM=$seed
echo "kill9: seed $seed"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

"$mosaic" synth data --n 16 --seed 3 >/dev/null || fail "synth"
common=(--data data --encoder tiny --batch 8 --epochs 1000 --progress none --workers 1
  --threads 1 --no-validate)
dims=(16 32)
lrs=(0.003 0.01)
saved=0
for round in $(seq 0 9); do
  if [ $((round % 3)) -eq 0 ] || [ ! -f m.safetensors ]; then
    k=$(((round / 3) % 2))
    args=("${common[@]}" --lr "${lrs[$k]}" --set "proj.dim=${dims[$k]}" --out m.safetensors)
    kind="fresh (proj.dim ${dims[$k]}, lr ${lrs[$k]})"
  else
    args=(--resume m.safetensors --epochs 1000 --progress none)
    kind="resume"
  fi
  "$mosaic" train "${args[@]}" >run.out 2>run.err &
  pid=$!
  delay=$(printf '%d.%02d' $((RANDOM % 4 + 0)) $((RANDOM % 100)))
  delay=$(python3 -c "print(round($delay + 0.5, 2))")
  sleep "$delay"
  if ! kill -KILL "$pid" 2>/dev/null; then
    wait "$pid"
    fail "round $round ($kind) ended on its own with status $? before the kill: $(head -3 run.err)"
    continue
  fi
  wait "$pid" 2>/dev/null
  [ -f m.safetensors ] || {
    echo "round $round: $kind killed after ${delay}s, no checkpoint yet"
    continue
  }
  if ! "$mosaic" info m.safetensors --json info.json >info.out 2>info.err; then
    fail "round $round ($kind, killed after ${delay}s): m.safetensors does not load: $(cat info.err)"
    continue
  fi
  saved=$((saved + 1))
  check=$(python3 -c "
import json
d = json.load(open('info.json'))
r, t, c = d['run_configuration'], d['training'], d['configuration']
bad = [k for k in ('proj.dim', 'classes', 'modality.1.bands') if r.get(k) != c.get(k)]
if r.get('optim.lr') != t.get('optim.lr'): bad.append('optim.lr')
print('ok' if not bad else 'mismatch ' + ','.join(bad), d['steps'], c['proj.dim'])" 2>&1)
  case "$check" in
    ok*) echo "round $round: $kind killed after ${delay}s; checkpoint at step $(echo "$check" | cut -d' ' -f2), proj.dim $(echo "$check" | cut -d' ' -f3)" ;;
    *) fail "round $round ($kind): the checkpoint's configuration does not describe it: $check" ;;
  esac
done
[ "$saved" -gt 0 ] || fail "no round left a checkpoint: the kills came too early"
# The last checkpoint still trains on: --resume reads its own configuration.
if [ -f m.safetensors ]; then
  step=$(python3 -c "import json; print(json.load(open('info.json'))['steps'])")
  "$mosaic" train --resume m.safetensors --max-steps $((step + 1)) --progress none \
    >final.out 2>final.err || fail "the last checkpoint does not resume: $(cat final.err)"
  grep -q "resuming after step $step" final.out || fail "resume did not continue after step $step"
fi
leftover=$(ls -A | grep -c '^\.m\.safetensors\.tmp' || true)
echo "kill9: $saved checkpoint(s) checked; $leftover temporary file(s) left by kills inside a save"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "kill9: all checks passed"
