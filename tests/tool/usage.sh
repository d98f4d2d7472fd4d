#!/usr/bin/env bash
# usage.sh MOSAIC WORKDIR README — the tool's answers to mistyped names (docs/tool.md, "Exit
# status" and "Did you mean"): every usage error exits 2 with one "mosaic: error:" line,
# a close valid name is suggested ("did you mean '--epochs'?"), runtime failures exit 1;
# and --which takes the kinds of Python's Model.embed (s2, s2_projection,
# fused_projection), each giving the same embeddings as the older spelling of that kind;
# a BigEarthNet v2 folder with only metadata.parquet says how to convert it (README's
# command).
set -uo pipefail
mosaic=$1
work=$2
readme=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMP_WAIT_POLICY=PASSIVE

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# expect_error STATUS CMD...: CMD must exit STATUS with exactly one "mosaic: error:" line
# on stderr (kept in err).
expect_error() {
  local want=$1
  shift
  "$@" >out 2>err
  local got=$?
  [ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want"
  if [ "$(wc -l <err)" -ne 1 ] || ! grep -q '^mosaic: error: ' err; then
    fail "'$*': stderr is not one 'mosaic: error:' line:"
    sed 's/^/  /' err | head -5 >&2
  fi
}
# suggests TEXT: the last error line contains TEXT (fixed string).
suggests() {
  grep -qF -- "$1" err || fail "no \"$1\" in: $(cat err)"
}
# no_suggestion: the last error suggests nothing.
no_suggestion() {
  ! grep -q 'did you mean' err || fail "an unexpected suggestion: $(cat err)"
}

"$mosaic" synth data --n 24 --seed 3 >/dev/null || fail "synth"

# --- did you mean: options, commands, values, keys -------------------------------------------
expect_error 2 "$mosaic" trian --data data
suggests "unknown command 'trian'; did you mean 'train'?"
expect_error 2 "$mosaic" help evl
suggests "did you mean 'eval'?"
expect_error 2 "$mosaic" --verbos train
suggests "did you mean '--verbose'?"
expect_error 2 "$mosaic" train --data data --epoch 3
suggests "unknown option '--epoch'; did you mean '--epochs'?"
expect_error 2 "$mosaic" train --data data -epochs 3
suggests "did you mean '--epochs'?"
expect_error 2 "$mosaic" eval --data data --protocl knn
suggests "did you mean '--protocol'?"
# an option of another command says so; a word far from every option suggests nothing
expect_error 2 "$mosaic" embed --data data --epochs 3
suggests "'--epochs' is not an option of 'mosaic embed'"
expect_error 2 "$mosaic" train --data data --frobnicate 1
no_suggestion
# values: a preset (library option train.preset), an encoder, a format, a tool choice
expect_error 2 "$mosaic" train --data data --preset mosiac2
suggests "did you mean 'mosaic2'?"
expect_error 2 "$mosaic" train --data data --encoder resnet81
suggests "did you mean 'resnet18'?"
expect_error 2 "$mosaic" train --data data --encoder vgg16
no_suggestion
expect_error 2 "$mosaic" train --data data --format bigearthnet-v3
suggests "did you mean 'bigearthnet-v2' or 'bigearthnet-v1'?"
expect_error 2 "$mosaic" predict --model none.safetensors --data data --format eurosta
suggests "did you mean 'eurosat'?"
expect_error 2 "$mosaic" synth s --format pastsi
suggests "did you mean 'pastis'?"
expect_error 2 "$mosaic" train --data data --progress line
suggests "did you mean 'lines'?"
expect_error 2 "$mosaic" eval --model none.safetensors --data data --protocol lineer
suggests "did you mean 'linear'?"
# --set keys: library keys (the library's own table), tool keys, a tool key without "tool."
expect_error 2 "$mosaic" train --data data --set optim.rl=0.1
suggests "unknown option 'optim.rl'; did you mean 'optim.lr'?"
expect_error 2 "$mosaic" train --data data --set modality.1.encodr=tiny
suggests "did you mean 'modality.1.encoder'?"
expect_error 2 "$mosaic" train --data data --set tool.epoch=3
suggests "did you mean 'tool.epochs'?"
expect_error 2 "$mosaic" train --data data --set epochs=3
suggests "did you mean 'tool.epochs'?"
expect_error 2 "$mosaic" train --data data --set no.such.thing=3
no_suggestion
echo '{"optim": {"lrr": 0.1}}' >typo.json
expect_error 2 "$mosaic" train --data data --config typo.json
suggests "did you mean 'optim.lr'?"

# --- exit status: usage 2 in every command, runtime failures 1 --------------------------------
for c in train eval embed predict compare map info synth rplot backends version; do
  expect_error 2 "$mosaic" "$c" --no-such-option
done
expect_error 2 "$mosaic" compare --data data --presets mosaic1,mosiac2
suggests "did you mean 'mosaic2'?"
expect_error 2 "$mosaic" embed --model m.safetensors --data data # no --out
expect_error 1 "$mosaic" train --data no-such-dir --encoder tiny
expect_error 1 "$mosaic" info no-such-model.safetensors

# --- --which: the names of Python's Model.embed ------------------------------------------------
"$mosaic" train --data data --encoder tiny --batch 8 --epochs 1 --max-steps 1 --no-validate \
  --progress none --out m.safetensors >/dev/null 2>&1 || fail "train"
embed() { # embed WHICH OUT
  "$mosaic" embed --model m.safetensors --data data --which "$1" --out "$2" --progress none \
    >/dev/null 2>emb.err || fail "embed --which $1: $(cat emb.err)"
}
while read -r new old; do
  embed "$new" new.npy
  embed "$old" old.npy
  cmp -s new.npy old.npy || fail "--which $new differs from --which $old"
done <<'PAIRS'
s2 modality:s2
s1 modality:s1
s2_projection modality-projection:s2
fused_projection fused-projection
features:s1 modality:s1
projection:s2 modality-projection:s2
PAIRS
# the projection is a different embedding than the features (a real choice was made)
embed s2 a.npy
embed s2_projection b.npy
cmp -s a.npy b.npy && fail "--which s2 and s2_projection gave the same output"
expect_error 2 "$mosaic" embed --model m.safetensors --data data --which s3 --out x.npy
suggests "did you mean 's1' or 's2'?"
suggests "(see 'mosaic embed --help')"
expect_error 2 "$mosaic" embed --model m.safetensors --data data --which fused_projectoin --out x.npy
suggests "did you mean 'fused_projection'?"
expect_error 2 "$mosaic" embed --model m.safetensors --data data --which features --out x.npy
expect_error 2 "$mosaic" embed --model m.safetensors --data data --modalities s3 --which fused \
  --out x.npy
suggests "did you mean 's1' or 's2'?"

# --- BigEarthNet v2 with only the official metadata.parquet (docs/data.md) --------------------
# A runtime error (1) that says how to convert the table: the very command of README.md
# ("Training on the real BigEarthNet v2") with the dataset's paths, valid Python.
# (MSC_DATA_DIR: an empty folder, so that a converted table installed on this machine is
# not found: lib/data/dataset_ben2.c)
export MSC_DATA_DIR="$PWD/no-installed-table"
mkdir -p pq
cp -r data/BigEarthNet-S1 data/BigEarthNet-S2 pq/
: >pq/metadata.parquet
expect_error 1 "$mosaic" train --data pq --encoder tiny
suggests "it has metadata.parquet"
python3 - err "$readme" <<'PY' || fail "the conversion command differs from README.md's"
import ast, re, sys
msg = open(sys.argv[1]).read()
code = re.search(r'python3 -c "(.*?)"', msg).group(1)
ast.parse(code)  # runnable Python
readme = re.search(r'python3 -c "(import pandas.*?)"', open(sys.argv[2]).read()).group(1)
assert code.replace("pq/", "") == readme, (code, readme)
PY
rm pq/metadata.parquet
expect_error 1 "$mosaic" train --data pq --encoder tiny
suggests "the official metadata.parquet converted to TSV"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "usage: all checks passed"
