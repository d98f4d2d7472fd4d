#!/usr/bin/env bash
# eurosat.sh MOSAIC EUROSAT_DIR WORKDIR — single-label classification end to end on the
# real EuroSAT sample (tests/data/eurosat-ms, 3 images of 3 classes): the dataset makes
# the model single-label (labels = single in the written configuration), training uses
# softmax cross-entropy (about log 10 at the start, where BCE would be about log 2),
# `mosaic predict` writes softmax rows (each sums to 1), and `mosaic eval` prints
# accuracy and macro F1 whose JSON values equal the arg-max accuracy and macro F1
# computed here from predict's probabilities (macro F1 over the classes present in the
# truth or the predictions, as scikit-learn) — for an early model that still gets some
# images wrong and for a trained one that must get all three right.
set -uo pipefail
mosaic=$1
data=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMP_WAIT_POLICY=PASSIVE
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
run() {
  "$@" >out 2>err || { fail "'$*' exited $?"; sed 's/^/  stderr: /' err | head -5 >&2; }
}
common=(--data "$data" --format eurosat --progress none)

# An early model (4 epochs: some samples still wrong, so that the comparison below is
# not between two perfect scores) and a trained one (25 epochs: the 3 images learnt).
for e in 4 25; do
  run "$mosaic" train "${common[@]}" --set data.split=all --no-validate --preset supervised \
    --encoder tiny --batch 3 --epochs $e --lr 0.01 --out m$e.safetensors
done
python3 - <<'PY' || fail "the EuroSAT model is not single-label, or its first loss is not softmax CE"
import json, math
c = json.load(open("m4.config.json"))
assert c["labels"] == "single", c.get("labels")
h = json.load(open("m4.history.json"))
first = h[0]["loss_bce"]  # softmax CE starts near log 10; BCE would be near log 2
assert abs(first - math.log(10)) < 0.8, first
PY

for e in 4 25; do
  run "$mosaic" predict --model m$e.safetensors "${common[@]}" --split all --out p$e.tsv
  run "$mosaic" eval --model m$e.safetensors "${common[@]}" --split all --json e$e.json
  cp out eval$e.out
  grep -q '^  accuracy ' eval$e.out || fail "eval printed no accuracy for a single-label model"
  grep -q 'F1 argmax' eval$e.out || fail "eval printed no per-class arg-max F1"
  python3 - p$e.tsv e$e.json <<'PY' || fail "eval's single-label metrics differ from predict's arg max ($e epochs)"
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter="\t"))
names = rows[0][1:-1]
pred, truth = [], []
for r in rows[1:]:
    p = [float(v) for v in r[1:-1]]
    assert abs(sum(p) - 1) < 1e-5, ("not a softmax row", sum(p))
    pred.append(max(range(len(p)), key=lambda k: (p[k], -k)))
    truth.append(names.index(r[-1]))
acc = sum(a == b for a, b in zip(pred, truth)) / len(truth)
f1 = []
for k in sorted(set(pred) | set(truth)):
    tp = sum(a == k and b == k for a, b in zip(pred, truth))
    f1.append(2 * tp / (pred.count(k) + truth.count(k)))
e = json.load(open(sys.argv[2]))["single_label"]
assert abs(e["accuracy"] - acc) < 1e-12, (e["accuracy"], acc)
assert abs(e["macro_f1"] - sum(f1) / len(f1)) < 1e-12, (e["macro_f1"], f1)
assert e["counted"] == 3
print("%s: accuracy %.4f, macro F1 %.4f" % (sys.argv[1], acc, sum(f1) / len(f1)))
PY
done
python3 -c 'import json; a = json.load(open("e25.json"))["single_label"]["accuracy"]; assert a == 1.0, a' ||
  fail "25 epochs did not learn the 3 EuroSAT images"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "eurosat single-label tool test OK"
