#!/usr/bin/env bash
# fuzz-long.sh — runs every libFuzzer target of tests/fuzz, one after the other, each
# with `jobs` parallel processes, and prints the runs each one made (docs/testing.md).
#
#   bash scripts/fuzz-long.sh [LIMIT] [JOBS]
#
# LIMIT is the budget of each target: "600s" (seconds, the default) or "200000" (runs;
# with JOBS > 1, runs per process; MSC_FUZZ_MAX_SECONDS caps them in time too). JOBS
# defaults to 1. The targets are built in
# ./build-fuzz (or $MSC_FUZZ_BUILD_DIR) with clang and -DMSC_FUZZ=ON; MSC_FUZZ_TARGETS
# (space-separated names, e.g. "tiff manifest") restricts the list. Each target's corpus
# is tests/fuzz/corpus/<target> plus a working corpus in $MSC_FUZZ_WORK (default
# build-fuzz/fuzz-work/<target>) that keeps what the fuzzer found between runs; crashes
# land in that folder as crash-* files. The exit status is 1 if any target failed.
# A crash found belongs in tests/fuzz/corpus/<target> together with its fix.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=${1:-600s}
jobs=${2:-1}
build=${MSC_FUZZ_BUILD_DIR:-build-fuzz}
work=${MSC_FUZZ_WORK:-$build/fuzz-work}
targets=${MSC_FUZZ_TARGETS:-"safetensors options_json npy tiff lines ben2_metadata ben1_labels manifest pastis series sen12ms floods"}

case "$limit" in
  *s) budget=(-max_total_time="${limit%s}") ;;
  *) budget=(-runs="$limit") ;;
esac
# MSC_FUZZ_MAX_SECONDS caps a run budget in time as well (CI: whichever comes first).
if [ -n "${MSC_FUZZ_MAX_SECONDS:-}" ]; then budget+=(-max_total_time="$MSC_FUZZ_MAX_SECONDS"); fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMSC_FUZZ=ON \
    -DMOSAIC_CUDA=OFF -DMSC_BUILD_BENCH=OFF -DMSC_BUILD_TOOLS=OFF -DMSC_MEMCHECK=OFF >/dev/null
fi
cmake --build "$build" --target fuzz_all --parallel "$(nproc)" >/dev/null
mkdir -p "$work"
work=$(realpath "$work")
bindir=$(realpath "$build/tests/fuzz")
corpus=$PWD/tests/fuzz/corpus

# OpenMP threads would only compete with the fuzzer processes.
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# Huge pages for ASan's shadow memory: a zstd window of up to 128 MiB (lines, and the
# tables read through it) has 16 MiB of shadow that ASan poisons on every malloc and free;
# with 4 KiB pages the page faults of that shadow were most of a run (perf, docs/testing.md).
# It changes how the shadow is mapped, not what ASan detects. (The kernel must allow
# transparent huge pages: /sys/kernel/mm/transparent_hugepage/enabled "always".)
export ASAN_OPTIONS="no_huge_pages_for_shadow=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

status=0
summary=()
for t in $targets; do
  bin="$bindir/fuzz_$t"
  mkdir -p "$work/$t"
  log="$work/$t.log"
  # -malloc_limit_mb: an allocation sized by a claim of the input rather than by the input
  # fails (a GeoTIFF may legitimately decode to 64 MiB + 65536 × its bytes: raster.h).
  malloc=64
  # (lines, and the targets whose tables go through it: a zstd frame header makes the
  # decoder allocate its window, up to 128 MiB: lib/data/lines.h)
  case "$t" in tiff) malloc=1024 ;; lines | manifest | ben2_metadata | series | sen12ms | floods) malloc=160 ;; esac
  start=$(date +%s)
  args=("${budget[@]}" -max_len=8192 -malloc_limit_mb="$malloc" -rss_limit_mb=2048 -timeout=30
        -artifact_prefix="$work/$t/" -print_final_stats=1)
  rc=0
  if [ "$jobs" -gt 1 ]; then
    # (-jobs writes each process's output to fuzz-<n>.log in the current folder)
    (cd "$work" && "$bin" "${args[@]}" -jobs="$jobs" -workers="$jobs" "$work/$t" \
       "$corpus/$t") >"$log" 2>&1 || rc=$?
    # The runs are counted from the jobs' own logs: libFuzzer 14 also echoes them into the
    # parent's output, so counting "$log" would count every run twice.
    runs=$(cat "$work"/fuzz-*.log 2>/dev/null | grep -h 'stat::number_of_executed_units' |
      awk '{s += $2} END {print s + 0}')
    rm -f "$work"/fuzz-*.log
  else
    "$bin" "${args[@]}" "$work/$t" "$corpus/$t" >"$log" 2>&1 || rc=$?
    runs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
  fi
  secs=$(($(date +%s) - start))
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "fuzz-long: fuzz_$t FAILED (exit $rc); see $log and $work/$t/crash-*" >&2
    tail -30 "$log" >&2
  fi
  summary+=("$(printf '%-16s %10s runs %6s s %8s runs/s %s' "$t" "$runs" "$secs" \
    "$((runs / (secs > 0 ? secs : 1)))" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)")")
done
echo "fuzz-long: runs per target (limit $limit, $jobs job(s) each)"
printf '  %s\n' "${summary[@]}"
exit "$status"
