#!/usr/bin/env bash
# device-check.sh — the CUDA backend's checks and benchmarks on a GPU machine, prepared
# here and run there in one command (docs/cuda.md, "Checking on a GPU machine").
#
#   bash scripts/device-check.sh prepare     on the development machine (Debian 12 with
#                                            the CUDA toolkit in /usr/local/cuda)
#   bash scripts/device-check.sh run         on the GPU machine, in a copy of the
#                                            repository that carries .device/
#
# Why two halves: the GPU machines this project is lent start bare and reach no package
# registry, so nothing can be installed there. `prepare` builds libmosaic, the CUDA module,
# the cross-backend op tests and the benchmarks here (Release, CUDA on), and packs them
# with the Debian libraries they load that a GPU image lacks (oneDNN, libtiff, jansson and
# their dependencies; never glibc, libstdc++ or the CUDA libraries) into
# .device/bundle.tar.gz (about 15 MB; ignored by git through .git/info/exclude). `run`
# unpacks it, finds cuBLAS and cuDNN on the machine (the CUDA toolkit's lib64 or the
# nvidia-* Python wheels), and runs, each step under its own time limit:
#   1. nvidia-smi and `mosaic backends`-style probe (test_cuda_module, cuda required);
#   2. test_backend_ops: every op, loss term and optimiser update, CUDA against CPU;
#      test_inplace_ops: the ops of contract API 14 in place against themselves;
#   3. the NCCL module (docs/distributed.md, "GPU with NCCL"): test_nccl on one rank and
#      tests/dist/nccl.sh on two (collectives, test_dist equiv and the wedge over "nccl"),
#      with the machine's own libnccl.so.2 and Open MPI (mpiexec), which the bundle does
#      not carry (NCCL is 200 MB; Open MPI's launcher must match its libraries): without
#      them the step says so and is skipped, not failed;
#   4. benchmarks, CPU (all cores) and CUDA side by side: bench_embed and bench_train with
#      tiny and ResNet-18 encoders, bench_seg (train and infer).
# Output: a log and one JSON line per benchmark result in $OUT (or ./device-results),
# and a summary table at the end. The whole run takes about 5 minutes on an H200
# machine; MSC_DEVICE_QUICK=1 runs the tests and one benchmark of each kind only.
# Exit status: 0 when every step passed, 77 when there is no usable GPU (nothing run),
# 1 when a step failed (the log says which).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bundle=.device/bundle.tar.gz

prepare() {
  set -e
  local build=${MSC_DEVICE_BUILD:-build-device}
  if [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "device-check: no CUDA toolkit in /usr/local/cuda: the CUDA module cannot be built here" >&2
    exit 77
  fi
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMOSAIC_CUDA=ON \
    -DCUDAToolkit_ROOT=/usr/local/cuda -DMSC_BUILD_BENCH=ON -DMSC_MEMCHECK=OFF \
    ${CMAKE_C_COMPILER_LAUNCHER:+-DCMAKE_C_COMPILER_LAUNCHER=$CMAKE_C_COMPILER_LAUNCHER}
  cmake --build "$build" --parallel "$(nproc)" --target mosaic mosaic_cuda test_backend_ops \
    test_inplace_ops test_cuda_module bench_embed bench_train bench_seg
  local nccl=0
  if cmake --build "$build" --target help | grep -q ' mosaic_nccl$'; then
    cmake --build "$build" --parallel "$(nproc)" --target mosaic_nccl test_nccl test_dist_prog && nccl=1
  fi
  local stage
  stage=$(mktemp -d)
  mkdir -p "$stage/bin" "$stage/lib"
  cp "$build"/tests/test_backend_ops "$build"/tests/test_inplace_ops \
    "$build"/tests/test_cuda_module "$stage/bin/"
  cp "$build"/bench/bench_embed "$build"/bench/bench_train "$build"/bench/bench_seg "$stage/bin/"
  cp -P "$build"/libmosaic.so* "$stage/lib/"
  cp "$build"/backends/cuda/libmosaic-cuda.so "$stage/lib/"
  if [ "$nccl" = 1 ]; then
    cp "$build"/tests/test_nccl "$build"/tests/test_dist_prog "$stage/bin/"
    cp "$build"/libmosaic_nccl.so "$stage/lib/"
    cp tests/dist/nccl.sh tests/dist/failure.sh "$stage/bin/"
  fi
  # The Debian libraries the programs load, less those every Linux has (glibc, the GCC
  # runtime) and the CUDA ones the GPU machine provides in its own versions.
  local f
  for f in "$stage"/bin/* "$stage"/lib/libmosaic-cuda.so "$stage"/lib/libmosaic_nccl.so \
    "$build"/libmosaic.so.0; do
    case $f in *.sh) continue ;; esac
    [ -f "$f" ] || continue
    ldd "$f" | awk '$3 ~ /^\// {print $3}'
  done | sort -u | while read -r lib; do
    case $(basename "$lib") in
      libc.so* | libm.so* | libdl.so* | librt.so* | libpthread.so* | ld-linux* | libgcc_s.so* | \
        libstdc++.so* | libcuda.so* | libcudart* | libcublas* | libcudnn* | libnvrtc* | \
        libnccl* | libmpi.so* | libopen-rte* | libopen-pal* | libmosaic*) ;;
      *) cp -L "$lib" "$stage/lib/" ;;
    esac
  done
  strip --strip-unneeded "$stage"/bin/* "$stage"/lib/*.so* 2>/dev/null || true # not the .sh
  git -C "$root" rev-parse HEAD >"$stage/commit" 2>/dev/null || echo unknown >"$stage/commit"
  mkdir -p .device
  grep -qxF '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >>.git/info/exclude
  tar -C "$stage" -czf "$bundle" .
  rm -rf "$stage"
  echo "device-check: wrote $bundle ($(du -h "$bundle" | cut -f1)); on the GPU machine:"
  echo "  bash scripts/device-check.sh run      (carry .device)"
}

# The directories holding cuBLAS and cuDNN on the GPU machine: the toolkit's, or the
# nvidia-* wheels of its Python (PyTorch images install them there).
cuda_lib_dirs() {
  local d
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && echo "$d"
  done
  [ -e /usr/local/cuda/lib/libnccl.so.2 ] && echo /usr/local/cuda/lib
  find / -xdev \( -name 'libcudnn.so.*' -o -name 'libcublas.so.*' -o -name 'libnccl.so.*' \) -path '*nvidia*' \
    2>/dev/null | xargs -r -n1 dirname | sort -u
}

run() {
  local out=${OUT:-$root/device-results}
  mkdir -p "$out"
  local log=$out/device-check.log results=$out/results.jsonl
  : >"$log"
  : >"$results"
  say() { echo "$*" | tee -a "$log"; }
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    say "device-check: no usable NVIDIA GPU here (nvidia-smi absent or failing): nothing run"
    return 77
  fi
  if [ ! -f "$bundle" ]; then
    say "device-check: $bundle is missing: run 'bash scripts/device-check.sh prepare' first and carry .device"
    return 1
  fi
  local dir
  dir=$(mktemp -d)
  tar -C "$dir" -xzf "$bundle"
  local libs="$dir/lib"
  local d
  for d in $(cuda_lib_dirs); do libs="$libs:$d"; done
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export MSC_BACKEND_PATH="$dir/lib" OMP_WAIT_POLICY=PASSIVE
  local ncpu
  ncpu=$(nproc)
  say "device-check: bundle of commit $(cat "$dir/commit"), $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv 2>&1 |
    tee -a "$log"
  say "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $ncpu cores"
  local failed=0
  step() { # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    say "== $name"
    local t0=$SECONDS rc=0
    timeout "$limit" "$@" >>"$log" 2>&1 || rc=$?
    say "   $name: rc $rc, $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || failed=1
    return "$rc"
  }
  # Benchmarks print JSON lines: keep them in results.jsonl as well as in the log.
  bench() { # bench NAME LIMIT_S PROGRAM ARGS...
    local name=$1 limit=$2 prog=$3
    shift 3
    say "== $name"
    local t0=$SECONDS rc=0 tmp
    tmp=$(mktemp)
    timeout "$limit" "$dir/bin/$prog" "$@" >"$tmp" 2>>"$log" || rc=$?
    cat "$tmp" >>"$log"
    grep '^{' "$tmp" | sed "s/^{/{\"run\":\"$name\",/" >>"$results"
    rm -f "$tmp"
    say "   $name: rc $rc, $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || failed=1
  }
  MSC_TEST_EXPECT_CUDA=1 step "probe (test_cuda_module)" 120 "$dir/bin/test_cuda_module"
  MSC_TEST_EXPECT_CUDA=1 step "ops (test_backend_ops)" 300 "$dir/bin/test_backend_ops"
  MSC_TEST_EXPECT_CUDA=1 step "ops in place (test_inplace_ops)" 120 "$dir/bin/test_inplace_ops"
  if [ ! -x "$dir/bin/test_nccl" ]; then
    say "== nccl: skipped (the bundle has no NCCL module: NCCL or MPI missing where it was prepared)"
  elif ! command -v mpiexec >/dev/null 2>&1; then
    say "== nccl: skipped (no mpiexec on this machine: the NCCL module starts its ranks with MPI)"
  elif ! ldd "$dir/lib/libmosaic_nccl.so" | grep -q 'not found'; then
    MSC_TEST_DIST_ENGINE=nccl OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
      step "nccl: 1 rank (test_nccl)" 120 "$dir/bin/test_nccl"
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=2 \
      step "nccl: 2 ranks (tests/dist/nccl.sh)" 280 "$dir/bin/nccl.sh" "$(command -v mpiexec)" \
      "$dir/bin/test_dist_prog" "$dir/bin/test_nccl"
  else
    say "== nccl: skipped (libmosaic_nccl.so misses libraries here:" \
      "$(ldd "$dir/lib/libmosaic_nccl.so" | grep 'not found' | awk '{print $1}' | tr '\n' ' '))"
  fi
  local b
  for b in cpu cuda; do
    local th=$ncpu
    bench "embed tiny $b" 60 bench_embed --encoder tiny --batch 64 --iters 5 --threads "$th" --backend "$b"
    bench "train tiny $b" 60 bench_train --encoder tiny --batch 32 --iters 5 --threads "$th" --backend "$b"
    [ "${MSC_DEVICE_QUICK:-0}" = 1 ] && continue
    bench "embed resnet18 $b" 90 bench_embed --encoder resnet18 --batch 64 --iters 5 --threads "$th" --backend "$b"
    bench "train resnet18 $b" 120 bench_train --encoder resnet18 --batch 32 --iters 3 --threads "$th" --backend "$b"
    bench "seg resnet18 $b" 120 bench_seg --encoder resnet18 --batch 16 --infer-batch 32 --iters 3 --threads "$th" --backend "$b"
  done
  say "== summary (results.jsonl: one line per benchmark result)"
  /usr/bin/env python3 - "$results" <<'EOF' 2>&1 | tee -a "$log" || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    keys = [k for k in r if k.endswith("per_s") or k in ("peak_rss_mib", "backend", "workload")]
    print("%-22s %s" % (r.get("run"), "  ".join("%s=%s" % (k, r[k]) for k in keys)))
EOF
  rm -rf "$dir"
  return "$failed"
}

case "${1:-}" in
  prepare) prepare ;;
  run)
    run
    exit $?
    ;;
  *)
    echo "usage: bash scripts/device-check.sh prepare|run" >&2
    exit 2
    ;;
esac
