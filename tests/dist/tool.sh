#!/usr/bin/env bash
# tool.sh MPIEXEC MOSAIC TEST_DIST — `mpirun -np 2 mosaic train` (docs/distributed.md):
#  - two ranks on the global batch of 8 train the model one process trains on it: the
#    weights agree to float32 tolerance (test_dist compare) and so do the logged losses;
#    the encoders are frozen (train.freeze_encoders), since local BatchNorm is the one
#    documented difference from a single process;
#  - one set of output files, written by rank 0 (no temporary file left), and every
#    line of output once (rank 1 prints nothing);
#  - a run stopped after 3 steps on 2 ranks resumes on 1 rank, and one stopped on 1
#    rank resumes on 2, with the uninterrupted run's weights;
#  - a global batch the ranks cannot share evenly is refused (exit 2, saying so);
#  - rank 0 failing alone (its step log, its checkpoint) ends the job at once, not after
#    --dist-timeout, with rank 1 reporting rank 0's reason (msc_dist_agree), and so does
#    one rank failing to read its share of a batch, the other reporting its reason.
# Skips (77) when libmosaic_mpi.so is missing.
set -u
mpiexec=$1 mosaic=$2 prog=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
fail() {
  echo "FAIL: $*"
  exit 1
}
mpi=("$mpiexec" --oversubscribe -np 2)
"$mosaic" synth data --n 40 >/dev/null || fail "mosaic synth"
mkdir init one two r21 r12
# 23 training samples: 2 steps of 8 per epoch; the schedule fixed at 4 steps, so that a
# run stopped early has the uninterrupted run's learning rates.
common=(--data data --encoder tiny --batch 8 --threads 1 --progress lines
        --set train.freeze_encoders=1 --set optim.total_steps=4 --set optim.warmup_steps=0)

"$mosaic" train "${common[@]}" --epochs 0 --out init/m.safetensors >/dev/null ||
  fail "the initial model"
"$mosaic" train "${common[@]}" --epochs 2 --out one/m.safetensors >one.log 2>&1 ||
  { cat one.log; fail "1 rank"; }
"${mpi[@]}" "$mosaic" train "${common[@]}" --epochs 2 --out two/m.safetensors >two.log 2>&1
rc=$?
cat two.log
if grep -q "dist engine mpi" two.log; then
  echo "SKIP: libmosaic_mpi.so is missing"
  exit 77
fi
[ $rc -eq 0 ] || fail "2 ranks: exit status $rc"

# One set of files, from rank 0; every line once; none from rank 1.
files=$(cd two && ls -A | tr '\n' ' ')
[ "$files" = "m.config.json m.history.json m.safetensors m.steps.jsonl " ] ||
  fail "2 ranks wrote: $files"
grep -q "data-parallel over 2 ranks (MPI): 4 samples of each batch per rank" two.log ||
  fail "no line about the 2 ranks"
for line in "^training " "^train epoch 1/2 " "^train epoch 2/2 " "^  validation " \
            "^model saved to "; do
  [ "$(grep -c "$line" two.log)" -eq "$(grep -c "$line" one.log)" ] ||
    fail "'$line' appears $(grep -c "$line" two.log) times with 2 ranks, $(grep -c "$line" one.log) with 1"
done
grep -q "rank 1" two.log && fail "rank 1 printed"

# The same training: weights and losses.
"$prog" compare one/m.safetensors two/m.safetensors 2e-4 || fail "2 ranks' weights differ"
"$prog" compare one/m.safetensors init/m.safetensors 2e-4 >/dev/null &&
  fail "training did not move the weights (the comparison could not fail)"
losses() { sed -E 's/.*"loss":([^,]*),.*/\1/' "$1"; }
[ "$(losses one/m.steps.jsonl | wc -l)" -eq 4 ] || fail "1 rank logged $(wc -l <one/m.steps.jsonl) steps"
paste <(losses one/m.steps.jsonl) <(losses two/m.steps.jsonl) |
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (NF != 2 || d > 1e-5 + 1e-5 * $1) bad = 1;
         print "step " NR ": loss " $1 " (1 rank) " $2 " (2 ranks)" } END { exit bad }' ||
  fail "the logged losses differ"

# Resuming with another number of ranks (the 4th step is in a resumed epoch: the
# sharded loader skips the batch already done).
"${mpi[@]}" "$mosaic" train "${common[@]}" --epochs 2 --max-steps 3 --out r21/m.safetensors \
  >r21.log 2>&1 || { cat r21.log; fail "2 ranks, 3 steps"; }
"$mosaic" train "${common[@]}" --epochs 2 --max-steps 4 --resume r21/m.safetensors \
  >>r21.log 2>&1 || { cat r21.log; fail "resumed on 1 rank"; }
grep -q "resuming after step 3" r21.log || { cat r21.log; fail "2 -> 1 did not resume at step 3"; }
"$prog" compare one/m.safetensors r21/m.safetensors 2e-4 || fail "2 ranks -> 1 rank differs"
"$mosaic" train "${common[@]}" --epochs 2 --max-steps 3 --out r12/m.safetensors \
  >r12.log 2>&1 || { cat r12.log; fail "1 rank, 3 steps"; }
"${mpi[@]}" "$mosaic" train "${common[@]}" --epochs 2 --max-steps 4 \
  --resume r12/m.safetensors >>r12.log 2>&1 || { cat r12.log; fail "resumed on 2 ranks"; }
grep -q "resuming after step 3" r12.log || { cat r12.log; fail "1 -> 2 did not resume at step 3"; }
"$prog" compare one/m.safetensors r12/m.safetensors 2e-4 || fail "1 rank -> 2 ranks differs"

# A global batch that 2 ranks cannot share evenly.
"${mpi[@]}" "$mosaic" train "${common[@]}" --batch 7 --out odd/m.safetensors >odd.log 2>&1
rc=$?
[ $rc -ne 0 ] || fail "--batch 7 on 2 ranks was accepted"
grep -q "must be divisible by the 2 ranks" odd.log || { cat odd.log; fail "no reason given"; }
[ -e odd ] && fail "the refused run wrote files"

# Rank 0 fails alone where it works alone: it cannot open its step log (the output
# folder is missing), then, in a second run, cannot save its checkpoint at the end of the
# first epoch (the checkpoint's path is a folder). The ranks agree on it (msc_dist_agree):
# rank 1 reports rank 0's reason instead of waiting out --dist-timeout (300 s) in its next
# collective, both end MPI, and no communication share is printed.
start=$SECONDS
"${mpi[@]}" "$mosaic" train "${common[@]}" --epochs 1 --out missing/dir/m.safetensors \
  >missing.log 2>&1
rc=$?
[ $rc -ne 0 ] || fail "training into a missing folder succeeded"
[ $((SECONDS - start)) -lt 60 ] || { cat missing.log; fail "the job took $((SECONDS - start)) s to end"; }
grep -q "^mosaic: error: cannot write missing/dir/" missing.log || { cat missing.log; fail "no reason given"; }
grep -q "^\[rank 1\] mosaic: error: train: rank 0 failed (input/output error): cannot write missing/dir/" \
  missing.log || { cat missing.log; fail "rank 1 did not report rank 0's failure"; }
grep -q "communication:" missing.log && { cat missing.log; fail "a failed run's communication share"; }
mkdir -p blocked/m.safetensors
start=$SECONDS
"${mpi[@]}" "$mosaic" train "${common[@]}" --epochs 2 --out blocked/m.safetensors \
  >blocked.log 2>&1
rc=$?
[ $rc -ne 0 ] || fail "saving onto a folder succeeded"
[ $((SECONDS - start)) -lt 60 ] || { cat blocked.log; fail "the job took $((SECONDS - start)) s to end"; }
grep -q "^\[rank 1\] mosaic: error: train: rank 0 failed (input/output error): cannot save blocked/m.safetensors" \
  blocked.log || { cat blocked.log; fail "rank 1 did not report rank 0's failed save"; }
grep -q "train epoch 2/2" blocked.log && { cat blocked.log; fail "training went on after the failed save"; }
# One rank fails where every rank works: a training sample's S2 band is cut short after
# the model was made (the statistics come from the checkpoint: --resume), so the rank
# whose share holds it fails to read it. The ranks agree after every read: the other
# reports its reason instead of waiting in the step's collectives (--dist-timeout 300 s)
# or being killed by mpirun, and both end MPI.
cp -r data bad
mkdir badrun
cp init/m.safetensors init/m.config.json badrun/
sample=$(awk -F'\t' 'NR > 1 && $4 == "train" { print $1; exit }' bad/metadata.tsv)
band=$(find bad/BigEarthNet-S2 -name "${sample}_B04.tif")
[ -f "$band" ] || fail "no S2 band of $sample"
head -c 300 "$band" >"$band.cut" && mv "$band.cut" "$band"
start=$SECONDS
"${mpi[@]}" "$mosaic" train --data bad "${common[@]:2}" --epochs 3 --resume badrun/m.safetensors \
  >bad.log 2>&1
rc=$?
[ $rc -ne 0 ] || { cat bad.log; fail "training on a cut raster succeeded"; }
[ $((SECONDS - start)) -lt 60 ] || { cat bad.log; fail "the job took $((SECONDS - start)) s to end"; }
grep -Eq "^(\[rank 1\] )?mosaic: error: reading data: .*$sample" bad.log ||
  { cat bad.log; fail "no rank reported the cut raster"; }
[ "$(grep -c "error: reading data: " bad.log)" -eq 1 ] || { cat bad.log; fail "both ranks read it"; }
grep -Eq "^(\[rank 1\] )?mosaic: error: train: rank [01] failed \(.*\): reading data: .*$sample" \
  bad.log || { cat bad.log; fail "the other rank did not report the failure"; }
echo "TOOL OK"
