#!/usr/bin/env bash
# failure.sh — the failure bounds of data-parallel training (docs/distributed.md).
#   failure.sh wedge MPIEXEC TEST_DIST   rank 1 stops stepping: rank 0's step must end with
#                                         MSC_E_COMM within its timeout (test_dist wedge)
#   failure.sh kill MPIEXEC TEST_DIST     rank 1 is killed (SIGKILL) mid-run: the job must
#                                         end with an error within 30 s and the last
#                                         checkpoint rank 0 wrote must load
set -u
mode=$1 mpiexec=$2 prog=$3
mpi=("$mpiexec" --oversubscribe -np 2)
case $mode in
wedge)
  out=$("${mpi[@]}" "$prog" wedge 3 2>&1)
  echo "$out"
  grep -q "^SKIP" <<<"$out" && exit 77
  grep -q "WEDGE OK" <<<"$out" || { echo "FAIL: rank 0 did not report the timeout"; exit 1; }
  ;;
kill)
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  "${mpi[@]}" "$prog" kill "$dir" >"$dir/log" 2>&1 &
  job=$!
  for _ in $(seq 1 600); do
    [ -s "$dir/ckpt.safetensors" ] && [ -s "$dir/rank1.pid" ] && break
    grep -q "^SKIP" "$dir/log" && { cat "$dir/log"; exit 77; }
    sleep 0.1
  done
  [ -s "$dir/ckpt.safetensors" ] || { cat "$dir/log"; echo "FAIL: no checkpoint"; kill $job; exit 1; }
  sleep 1 # a few more steps and checkpoints
  kill -9 "$(cat "$dir/rank1.pid")"
  t0=$(date +%s)
  rc=0
  for _ in $(seq 1 300); do
    kill -0 $job 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 $job 2>/dev/null; then
    cat "$dir/log"; echo "FAIL: the job still runs 30 s after rank 1 died"
    kill -9 $job; exit 1
  fi
  wait $job || rc=$?
  echo "job ended $(( $(date +%s) - t0 )) s after the kill, exit status $rc"
  [ "$rc" -ne 0 ] || { cat "$dir/log"; echo "FAIL: the job exited 0"; exit 1; }
  ls "$dir" | grep -v -e '^ckpt.safetensors$' -e '^rank[01].pid$' -e '^log$' &&
    { echo "FAIL: a temporary file was left"; exit 1; }
  "$prog" load "$dir/ckpt.safetensors" || { echo "FAIL: the checkpoint does not load"; exit 1; }
  ;;
*) echo "usage: failure.sh wedge|kill MPIEXEC TEST_DIST"; exit 2 ;;
esac
