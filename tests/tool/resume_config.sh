#!/usr/bin/env bash
# resume_config.sh MOSAIC WORKDIR — a checkpoint is never paired with another run's
# configuration (docs/training.md, "What survives a crash").
#
# Run A trains m.safetensors (lr 0.003, proj.dim 16). Run B is started against the same
# --out with another configuration (lr 0.02, proj.dim 32) and killed with SIGKILL after it
# has started training but before its first save, so m.safetensors is still A's, byte for
# byte. `mosaic train --resume m.safetensors` must then continue A's run: the resumed
# checkpoint's learning rate is A's, and the configuration file written next to it
# describes the architecture the checkpoint holds. (Before 0.5 the tool wrote
# m.config.json when B started, and --resume read B's configuration for A's weights.)
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
meta() { # meta FILE PYTHON-EXPRESSION-ON-m (the __metadata__) and t (its mosaic.train)
  python3 -c "
import json, struct, sys
b = open(sys.argv[1], 'rb'); n = struct.unpack('<Q', b.read(8))[0]
m = json.loads(b.read(n))['__metadata__']; t = json.loads(m['mosaic.train'])
c = json.loads(m['mosaic.config'])
print($2)" "$1"
}

"$mosaic" synth data --n 60 --seed 7 >/dev/null || fail "synth"
common=(--data data --encoder tiny --progress none --workers 1 --threads 1 --no-validate)
"$mosaic" train "${common[@]}" --batch 16 --epochs 1 --lr 0.003 --set proj.dim=16 \
  --out m.safetensors >a.out 2>a.err || fail "run A: $(cat a.err)"
cp m.safetensors a.safetensors
cp m.config.json a.config.json

# Run B: batch 2 gives 19 steps before the first checkpoint (at the end of epoch 1).
"$mosaic" train "${common[@]}" --batch 2 --epochs 1000 --lr 0.02 --set proj.dim=32 \
  --out m.safetensors >b.out 2>b.err &
pid=$!
for _ in $(seq 1 600); do
  grep -q '^training ' b.out 2>/dev/null && break
  sleep 0.05
done
kill -KILL "$pid"
wait "$pid" 2>/dev/null
grep -q '^training ' b.out || fail "run B never started training: $(cat b.err)"
cmp -s m.safetensors a.safetensors ||
  fail "run B saved before it was killed (the test needs a slower first epoch)"
[ -n "$(ls .m.safetensors.tmp* 2>/dev/null)" ] && echo "note: B left a temporary file"

step=$(meta m.safetensors 'm["mosaic.step"]')
"$mosaic" train --resume m.safetensors --max-steps $((step + 1)) >r.out 2>r.err ||
  fail "resume: $(cat r.err)"
grep -q "resuming after step $step" r.out || fail "resume did not continue after step $step"
lr=$(meta m.safetensors 't["optim.lr"]')
[ "$lr" = "0.003" ] || fail "the resumed run trained with lr $lr, not run A's 0.003"
dim=$(meta m.safetensors 'c["proj.dim"]')
[ "$dim" = "16" ] || fail "the checkpoint's proj.dim is $dim, expected 16"
side=$(python3 -c "import json; print(json.load(open('m.config.json'))['proj.dim'])")
[ "$side" = "$dim" ] || fail "m.config.json says proj.dim $side, the checkpoint holds $dim"
side_lr=$(python3 -c "import json; print(json.load(open('m.config.json'))['optim.lr'])")
[ "$side_lr" = "0.003" ] || fail "m.config.json says lr $side_lr, the checkpoint's run 0.003"
# The checkpoint's own copy is what `mosaic info --json` shows as run_configuration.
"$mosaic" info m.safetensors --json info.json >/dev/null 2>info.err || fail "info: $(cat info.err)"
python3 -c "
import json; d = json.load(open('info.json')); r = d['run_configuration']
assert r['proj.dim'] == 16 and r['optim.lr'] == 0.003, r
assert 'train.run_config' not in d['training']" || fail "info: run_configuration"

# A copied checkpoint resumes into itself (--out defaults to CKPT), never into the file
# its run first saved to.
cp m.safetensors moved.safetensors
cp m.safetensors before_move.safetensors
step=$(meta moved.safetensors 'm["mosaic.step"]')
"$mosaic" train --resume moved.safetensors --epochs 2 --max-steps $((step + 1)) \
  >mv.out 2>mv.err ||
  fail "resume of a copy: $(cat mv.err)"
cmp -s m.safetensors before_move.safetensors || fail "resuming a copy overwrote m.safetensors"
[ "$(meta moved.safetensors 'm["mosaic.step"]')" = $((step + 1)) ] ||
  fail "the copy did not advance to step $((step + 1))"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "resume_config: all checks passed"
