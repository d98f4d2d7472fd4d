#!/usr/bin/env bash
# progress.sh MOSAIC WORKDIR — the progress display of `mosaic train` (docs/tool.md,
# "Conventions"): forced on as lines (a line per step) and as a bar (redrawn with '\r'),
# every line fits 80 columns, and the loss it shows is labelled as the running average
# it is ("loss(avg)"), apart from the epoch's mean on the summary line.
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
# fits FILE: every line (and every '\r'-separated redraw, without its erase sequence)
# is at most 80 characters.
fits() {
  tr '\r' '\n' <"$1" | sed 's/\x1b\[K//g' >"$1.lines"
  local long
  long=$(awk 'length($0) > 80 { print length($0) ": " $0 }' "$1.lines")
  [ -z "$long" ] || fail "$1: lines over 80 columns:
$long"
}

"$mosaic" synth data --n 24 --seed 3 >/dev/null || fail "synth"
# (15 training samples: 3 steps of 4 per epoch; 12 epochs widen the title)
args=(--data data --encoder tiny --batch 4 --epochs 12 --max-steps 6 --no-validate)

"$mosaic" train "${args[@]}" --progress lines --set tool.progress_interval=0.01 \
  --out l.safetensors >lines.out 2>lines.err || fail "train --progress lines: $(cat lines.err)"
fits lines.err
n=$(grep -c 'loss(avg) [0-9]' lines.err)
[ "$n" -ge 3 ] || fail "--progress lines: $n lines with 'loss(avg)' (expected one per step):
$(cat lines.err)"
# the summary on stdout is the epoch's mean, labelled plain "loss"
grep -q '^train epoch 1/12  step 3  loss [0-9]' lines.out || fail "no epoch summary: $(cat lines.out)"
grep -q 'loss(avg)' lines.out && fail "the epoch summary says loss(avg)"

"$mosaic" train "${args[@]}" --progress bar --out b.safetensors >bar.out 2>bar.err ||
  fail "train --progress bar: $(cat bar.err)"
fits bar.err
grep -q 'loss(avg) [0-9]' bar.err.lines || fail "--progress bar shows no 'loss(avg)':
$(cat bar.err.lines)"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "progress: all checks passed"
