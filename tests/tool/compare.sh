#!/usr/bin/env bash
# compare.sh MOSAIC WORKDIR — the arms of `mosaic compare` (docs/compare.md):
#  - PRESET@ENCODER arms: bad syntax, an unknown preset or encoder and an arm given twice
#    are usage errors (exit 2, one line) before anything runs;
#  - a ConvNeXt arm (small custom widths) runs beside a ResNet one: its row and its
#    compare.json entry name the encoder, and its saved model is a ConvNeXt;
#  - skipped with a reason, not failed: arms aligning two modalities on a dataset of one
#    (data.s1_bands = none), and a ConvNeXt arm whose stages do not fit the patches —
#    where `mosaic train` with the same options indeed fails, while one stage fewer runs;
#    a run where every arm is skipped is an error (exit 1);
#  - --fusion xattn reaches every arm's saved model (its mosaic.config), and train takes it.
set -uo pipefail
mosaic=$1
work=$2
py=/usr/bin/python3
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
expect_usage() { # expect_usage PATTERN CMD...: exit 2, one error line matching PATTERN
  local pat=$1
  shift
  expect 2 "$@"
  [ "$(wc -l <err)" -eq 1 ] && grep -q "^mosaic: error: compare: .*$pat" err ||
    fail "'$*': stderr is not one error line with '$pat': $(cat err)"
}
# config MODEL KEY: the option KEY of a saved model's configuration (mosaic.config), or
# "default" when the model keeps the key's default (the configuration omits it).
config() {
  $py - "$1" "$2" <<'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(json.loads(b[8:8 + n])["__metadata__"]["mosaic.config"]).get(sys.argv[2], "default"))
EOF
}
json() { # json FILE PYTHON-EXPRESSION-ON-d
  $py -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

expect 0 "$mosaic" synth data --n 60 --seed 7
common=(--data data --encoder tiny --batch 8 --max-steps 1 --progress none --workers 1
  --protocol knn --k 3)
# widths × depths for every modality: "w,w,..." with n stages
stages() {
  local n=$1 w d
  w=$(printf '8,%.0s' $(seq "$n"))
  d=$(printf '1,%.0s' $(seq "$n"))
  echo --set "modality.0.widths=${w%,}" --set "modality.1.widths=${w%,}" \
    --set "modality.0.depths=${d%,}" --set "modality.1.depths=${d%,}"
}

# --- arm specs: usage errors --------------------------------------------------------------
expect_usage "arm 'supervised@' is not PRESET or PRESET@ENCODER" \
  "$mosaic" compare --data data --presets supervised@
expect_usage "arm '@tiny' is not PRESET" "$mosaic" compare --data data --presets dual,@tiny
expect_usage "arm 'supervised@tiny@tiny' is not PRESET" \
  "$mosaic" compare --data data --presets supervised@tiny@tiny
expect_usage "arm 'supervised@convnext2_atto': option 'modality.0.encoder'" \
  "$mosaic" compare --data data --presets supervised@convnext2_atto
grep -q "did you mean 'convnextv2_atto'" err || fail "no suggestion for convnext2_atto: $(cat err)"
expect_usage "arm 'superviced@tiny': option 'train.preset'" \
  "$mosaic" compare --data data --presets superviced@tiny
expect_usage "has an empty arm" "$mosaic" compare --data data --presets supervised,,dual
expect_usage "arm 'dual@tiny' is given twice" "$mosaic" compare --data data --presets dual@tiny,dual@tiny
expect_usage "option 'fusion'" "$mosaic" compare --data data --fusion sum
[ -e compare ] && fail "a usage error left the folder compare"

# --- a ConvNeXt arm beside a ResNet one ------------------------------------------------------
# shellcheck disable=SC2046
expect 0 "$mosaic" compare "${common[@]}" --presets supervised,supervised@convnextv2_atto \
  --out-dir cx $(stages 2)
grep -q '^supervised (tiny) ' out || fail "no row 'supervised (tiny)': $(cat out)"
grep -q '^supervised (convnextv2_atto) ' out || fail "no row 'supervised (convnextv2_atto)'"
[ "$(json cx/compare.json '[(r["arm"], r["row"], r["encoder"]) for r in d["results"]]')" = \
  "[('supervised', 'supervised (tiny)', 'tiny'), ('supervised@convnextv2_atto', 'supervised (convnextv2_atto)', 'convnextv2_atto')]" ] ||
  fail "cx/compare.json: arms $(json cx/compare.json '[r.get("arm") for r in d["results"]]')"
[ "$(config cx/supervised@convnextv2_atto.safetensors modality.0.block)" = convnext ] ||
  fail "the ConvNeXt arm's model is not a ConvNeXt"
[ "$(config cx/supervised.safetensors modality.1.block)" = basic ] ||
  fail "the plain arm's model is not the --encoder's"
[ -s cx/supervised@convnextv2_atto.projection.svg ] || fail "the ConvNeXt arm has no projection"

# --- skipped where the data does not allow --------------------------------------------------
# one modality: the arms aligning two are skipped with the reason; supervised runs
expect 0 "$mosaic" compare "${common[@]}" --set data.s1_bands=none --presets supervised,iai,mosaic2 \
  --out-dir one
for p in iai mosaic2; do
  grep -q "^  $p (tiny): skipped: $p aligns two modalities (lambda.inter > 0); the dataset has one (s2)$" out ||
    fail "$p not skipped on one modality: $(cat out)"
done
[ "$(json one/compare.json '[r["arm"] for r in d["results"]], [s["arm"] for s in d["skipped"]]')" = \
  "['supervised'] ['iai', 'mosaic2']" ] || fail "one/compare.json: results and skipped"
[ -e one/iai.safetensors ] && fail "a skipped arm saved a model"
# every arm skipped: an error
expect 1 "$mosaic" compare "${common[@]}" --set data.s1_bands=none --presets dual --out-dir none
grep -q "no arm of --presets can run on this data" err || fail "all skipped: $(cat err)"

# ConvNeXt stages that do not fit: 6 stages stride 4 · 2^5 = 128 > 120 pixels; 5 fit (64).
# shellcheck disable=SC2046
expect 0 "$mosaic" compare "${common[@]}" --presets supervised@convnextv2_atto,supervised \
  --out-dir deep $(stages 6)
grep -q "^  supervised (convnextv2_atto): skipped: the s1 patches are 120 x 120 pixels, smaller than the ConvNeXt encoder's total stride 128$" out ||
  fail "the deep ConvNeXt arm is not skipped: $(cat out)"
grep -q '^supervised (tiny) ' out || fail "the ResNet arm beside the skipped one did not run"
# The rule agrees with the library: training that ConvNeXt fails, one stage fewer runs.
# shellcheck disable=SC2046
expect 1 "$mosaic" train --data data --encoder convnextv2_atto --preset supervised --batch 8 \
  --max-steps 1 --no-validate --progress none --out deep6.safetensors $(stages 6)
# shellcheck disable=SC2046
expect 0 "$mosaic" train --data data --encoder convnextv2_atto --preset supervised --batch 8 \
  --max-steps 1 --no-validate --progress none --out deep5.safetensors $(stages 5)
# shellcheck disable=SC2046
expect 0 "$mosaic" compare "${common[@]}" --presets supervised@convnextv2_atto \
  --out-dir deep5 $(stages 5)
grep -q '^supervised (convnextv2_atto) ' out || fail "the 5-stage ConvNeXt arm did not run"

# --- --fusion reaches every arm's model, and train ------------------------------------------
# (stem stride 8: few tokens for the attention)
fx=(--fusion xattn --set fusion.dim=16 --set fusion.heads=2
  --set modality.0.stem_stride=8 --set modality.1.stem_stride=8)
expect 0 "$mosaic" compare "${common[@]}" --presets supervised,dual "${fx[@]}" --out-dir fx
for p in supervised dual; do
  [ "$(config fx/$p.safetensors fusion)" = xattn ] || fail "fx/$p.safetensors: fusion is not xattn"
  [ "$(config fx/$p.safetensors fusion.dim)" = 16 ] || fail "fx/$p.safetensors: fusion.dim"
done
[ "$(json fx/compare.json 'd["fusion"]')" = xattn ] || fail "fx/compare.json: fusion"
case $(config cx/supervised.safetensors fusion) in concat | default) ;;
*) fail "the default fusion is not concat" ;; esac
expect 0 "$mosaic" train --data data --encoder tiny --batch 8 --max-steps 1 --no-validate \
  --progress none "${fx[@]}" --out fx.safetensors
[ "$(config fx.safetensors fusion)" = xattn ] || fail "train --fusion xattn: not in the model"

if [ "$failures" -gt 0 ]; then
  echo "compare.sh: $failures failure(s)" >&2
  exit 1
fi
echo "compare.sh: all passed"
