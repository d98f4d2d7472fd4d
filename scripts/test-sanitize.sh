#!/usr/bin/env bash
# test-sanitize.sh — the sanitizer stage of scripts/test.sh (docs/testing.md): with clang,
#   1. an AddressSanitizer + UBSan build (build-san: -DMSC_SANITIZE=address,undefined,
#      -DMSC_FUZZ=ON) and every unit test in it (ctest; the exclusions are below),
#   2. each libFuzzer target for $MSC_FUZZ_RUNS runs (default 20000, at most
#      $MSC_FUZZ_SECONDS seconds each, default 15) from its corpus (scripts/fuzz-long.sh),
#   3. a ThreadSanitizer build (build-tsan: -DMSC_SANITIZE=thread) of the tests that run
#      the library on several threads, run with OMP_NUM_THREADS=1.
# Suppressions: tests/sanitizers/*.supp, each entry with its reason. Prints the time of
# each stage; the exit status is 1 if any stage failed (every stage runs regardless).
#
#   bash scripts/test-sanitize.sh        (after scripts/install-deps.sh)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
san=${MSC_SAN_BUILD_DIR:-build-san}
tsan=${MSC_TSAN_BUILD_DIR:-build-tsan}
jobs=$(nproc)
status=0
timings=()

stage() { # name command...: runs the command, records its time and failure
  local name=$1 t0=$SECONDS
  shift
  echo "=== sanitizers: $name"
  if "$@"; then
    timings+=("$(printf '%-34s %4d s  ok' "$name" $((SECONDS - t0)))")
  else
    status=1
    timings+=("$(printf '%-34s %4d s  FAILED' "$name" $((SECONDS - t0)))")
  fi
}

if ! command -v clang >/dev/null; then
  echo "test-sanitize: clang is missing (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
[ -x "$symbolizer" ] || symbolizer=$(command -v llvm-symbolizer || true)
export ASAN_SYMBOLIZER_PATH=$symbolizer TSAN_SYMBOLIZER_PATH=$symbolizer
sup=$root/tests/sanitizers
# Leaks are checked (LeakSanitizer, part of ASan); a UBSan report aborts the test.
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$sup/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$sup/ubsan.supp"
# The tests run 2-5 times slower: Check's per-test timeouts are stretched to match.
export CK_TIMEOUT_MULTIPLIER=4

configure() { # dir sanitizers extra-cmake-args...
  local dir=$1 s=$2
  shift 2
  if [ -f "$dir/CMakeCache.txt" ] &&
     ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$root" "$dir/CMakeCache.txt"; then
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
  fi
  CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMSC_SANITIZE="$s" -DMOSAIC_CUDA=OFF -DMSC_MEMCHECK=OFF -DMSC_BUILD_BENCH=OFF \
    -DMSC_BUILD_TOOLS=OFF "$@" >/dev/null
}

# --- 1. ASan + UBSan -----------------------------------------------------------------
asan_build() {
  configure "$san" address,undefined -DMSC_FUZZ=ON &&
    cmake --build "$san" --parallel "$jobs" >"$san/build.log" 2>&1 || { tail -40 "$san/build.log"; return 1; }
}
# Left out: the Python tests, test_dist_python among them (an uninstrumented python3 cannot load a sanitized
# libmosaic.so), the install test and the ABI/export checks (they build and inspect the
# shared library for users, not sanitized code), and memcheck_* (valgrind; the build has
# MSC_MEMCHECK=OFF anyway), test_alloc and test_nomem (they count or fail calls through
# their own malloc, which ASan's replaces, as valgrind's does). The tool's tests need MSC_BUILD_TOOLS, off here:
# the tool is a user of the library, whose code the unit tests cover. Inside the unit
# tests, the test cases tagged "learning" (training until a model has learnt, minutes
# each under ASan) are left out for time.
asan_tests() {
  (cd "$san" && CK_EXCLUDE_TAGS=learning ctest --output-on-failure -j "$jobs" \
     -E '^(python_bindings|python_bindings_drift|test_dist_python|test_install|test_abi|test_exports|test_alloc|test_nomem|memcheck_.*)$')
}
stage "ASan+UBSan build" asan_build
stage "ASan+UBSan unit tests" asan_tests

# --- 2. libFuzzer, short -------------------------------------------------------------
fuzz_short() {
  MSC_FUZZ_BUILD_DIR=$san MSC_FUZZ_WORK=$san/fuzz-work MSC_FUZZ_MAX_SECONDS=${MSC_FUZZ_SECONDS:-15} \
    bash scripts/fuzz-long.sh "${MSC_FUZZ_RUNS:-20000}" 1
}
stage "libFuzzer targets" fuzz_short

# --- 3. ThreadSanitizer --------------------------------------------------------------
# The tests with threads of their own: concurrent msc_embed/msc_predict on one model
# (test_model), the threaded data loader (test_loader), thread-local errors and the log
# callback under concurrent changes (test_status). The OpenMP runtime (clang's libomp) and
# oneDNN are not instrumented: OpenMP regions run on one thread (OMP_NUM_THREADS=1) where a
# test does not set its own team, and ignore_noninstrumented_modules=1 keeps TSan from
# reporting the runtime's own memory handling (its allocator's memset of a block that
# another thread's team used, synchronised inside the uninstrumented library: seen with the
# loader's thread-count test, tests/test_loader.c, and concurrent first calls of oneDNN);
# libmosaic's code stays fully checked. tsan.supp says what remains.
tsan_targets=(test_model test_loader test_status)
tsan_build() {
  configure "$tsan" thread &&
    cmake --build "$tsan" --parallel "$jobs" --target "${tsan_targets[@]}" >"$tsan/build.log" 2>&1 ||
    { tail -40 "$tsan/build.log"; return 1; }
}
tsan_tests() {
  local t rc=0
  for t in "${tsan_targets[@]}"; do
    echo "--- $t (ThreadSanitizer)"
    # CK_FORK=no: Check would run each test in a fork of a process that already has
    # TSan's background thread, which the child lacks (TSan does not support fork in a
    # multi-threaded process: spurious crashes, thread counts off by one).
    CK_FORK=no OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE \
      TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:suppressions=$sup/tsan.supp" \
      "$tsan/tests/$t" || rc=1
  done
  return $rc
}
stage "TSan build" tsan_build
stage "TSan threaded tests" tsan_tests

echo "=== sanitizers: stage times"
printf '  %s\n' "${timings[@]}"
exit "$status"
