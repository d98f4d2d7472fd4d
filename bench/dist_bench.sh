#!/usr/bin/env bash
# dist_bench.sh BUILD [ENCODER] [STEPS] — data-parallel training on one machine
# (docs/distributed.md): samples/s of `mosaic train` as 1 rank × 2 threads and as
# 2 ranks × 1 thread (mpirun) on the same global batch, and the share of the 2-rank
# run's time spent in collectives (msc_dist_comm_seconds, printed by the tool).
# Synthetic data (mosaic synth, 200 patches), batch 32, validation off. Not a ctest:
# run it by hand on an otherwise idle machine.
set -euo pipefail
build=$(cd "$1" && pwd)
encoder=${2:-tiny}
steps=${3:-8}
mosaic=$build/tools/mosaic
export MSC_BACKEND_PATH=$build
# Open MPI refuses root unless told (docs/distributed.md, "Running").
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$mosaic" synth "$dir/data" --n 200 >/dev/null
common=(train --data "$dir/data" --encoder "$encoder" --batch 32 --max-steps "$steps"
        --epochs 1 --no-validate --progress none)
rate() { sed -nE 's/.* ([0-9.]+) samples\/s .*/\1/p' "$1" | tail -1; }

OMP_NUM_THREADS=2 "$mosaic" "${common[@]}" --threads 2 --out "$dir/one.safetensors" \
  >"$dir/one.log" 2>&1 || { cat "$dir/one.log"; exit 1; }
mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS=1 -x MSC_BACKEND_PATH \
  "$mosaic" "${common[@]}" --threads 1 --out "$dir/two.safetensors" \
  >"$dir/two.log" 2>&1 || { cat "$dir/two.log"; exit 1; }
echo "machine: $(lscpu | sed -nE 's/^Model name: *//p'), $(nproc) cores;" \
  "$(date -u +%Y-%m-%d); encoder $encoder, global batch 32, $steps steps"
echo "1 rank x 2 threads:  $(rate "$dir/one.log") samples/s"
echo "2 ranks x 1 thread:  $(rate "$dir/two.log") samples/s"
grep "communication:" "$dir/two.log" | sed 's/^ */2 ranks /'
