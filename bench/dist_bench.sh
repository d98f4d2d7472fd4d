#!/usr/bin/env bash
# dist_bench.sh BUILD [ENCODER] [STEPS] [BUCKET] — data-parallel training on one machine
# (docs/distributed.md): samples/s of `mosaic train` as 1 rank × 2 threads and as
# 2 ranks × 1 thread (mpirun) on the same global batch, the latter with the gradient
# all-reduce overlapping the backward pass (train.dist_overlap = 1, the default) and
# after it (0), and the share of each 2-rank run's time spent in collectives
# (msc_dist_comm_seconds, printed by the tool). BUCKET sets train.dist_bucket (values
# per gradient bucket; default the library's 4 Mi: a small model then has one bucket,
# which is ready only at the end of the pass, so overlap has little to hide).
# Synthetic data (mosaic synth, 200 patches), batch 32, validation off. Not a ctest:
# run it by hand on an otherwise idle machine.
set -euo pipefail
build=$(cd "$1" && pwd)
encoder=${2:-tiny}
steps=${3:-8}
bucket=${4:-}
mosaic=$build/tools/mosaic
export MSC_BACKEND_PATH=$build
# Open MPI refuses root unless told (docs/distributed.md, "Running").
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$mosaic" synth "$dir/data" --n 200 >/dev/null
common=(train --data "$dir/data" --encoder "$encoder" --batch 32 --max-steps "$steps"
        --epochs 1 --no-validate --progress none)
if [ -n "$bucket" ]; then common+=(--set "train.dist_bucket=$bucket"); fi
rate() { sed -nE 's/.* ([0-9.]+) samples\/s .*/\1/p' "$1" | tail -1; }
comm() { sed -nE 's/^ *communication: (.*)$/\1/p' "$1"; }

OMP_NUM_THREADS=2 "$mosaic" "${common[@]}" --threads 2 --out "$dir/one.safetensors" \
  >"$dir/one.log" 2>&1 || { cat "$dir/one.log"; exit 1; }
for overlap in 1 0; do
  mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS=1 -x MSC_BACKEND_PATH \
    "$mosaic" "${common[@]}" --threads 1 --set "train.dist_overlap=$overlap" \
    --out "$dir/two$overlap.safetensors" >"$dir/two$overlap.log" 2>&1 ||
    { cat "$dir/two$overlap.log"; exit 1; }
done
echo "machine: $(lscpu | sed -nE 's/^Model name: *//p'), $(nproc) cores, load average" \
  "$(cut -d' ' -f1-3 /proc/loadavg);" \
  "$(date -u +%Y-%m-%d); encoder $encoder, global batch 32, $steps steps," \
  "bucket ${bucket:-default (4194304)} values"
echo "1 rank x 2 threads:                 $(rate "$dir/one.log") samples/s"
echo "2 ranks x 1 thread, overlap on:     $(rate "$dir/two1.log") samples/s;" \
  "communication $(comm "$dir/two1.log")"
echo "2 ranks x 1 thread, overlap off:    $(rate "$dir/two0.log") samples/s;" \
  "communication $(comm "$dir/two0.log")"
