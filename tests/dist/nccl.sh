#!/usr/bin/env bash
# nccl.sh — data-parallel training over the NCCL module (docs/distributed.md, "GPU with
# NCCL") on two ranks of this machine:
#   nccl.sh MPIEXEC TEST_DIST TEST_NCCL
# 1. test_nccl under mpirun -np 2: every collective against the values it computes;
# 2. test_dist equiv with MSC_TEST_DIST_ENGINE=nccl: two distributed steps against one
#    process on the global batch (as test_dist_equiv over MPI);
# 3. failure.sh wedge with nccl: rank 1 stops, rank 0's step must return MSC_E_COMM
#    within its timeout (ncclCommAbort), and the next call must fail at once.
# Without a CUDA device it exits 77 (skipped) saying so. With one GPU for both ranks,
# NCCL refuses two ranks on one device ("Duplicate GPU detected"); the ranks are then
# made to look like two hosts (NCCL_HOSTID per rank, sockets over the loopback, no
# peer-to-peer or shared memory), a test-only arrangement that time-slices the GPU
# between the two processes: slow, but the same collectives.
set -u
mpiexec=$1 test_dist=$2 test_nccl=$3
here=$(cd "$(dirname "$0")" && pwd)
n=$("$test_nccl" count 2>/dev/null) || n=0
if [ "${n:-0}" -lt 1 ]; then
  echo "SKIP: no CUDA device here (cudaGetDeviceCount): the NCCL module needs a GPU per rank"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
share=""
if [ "$n" -lt 2 ]; then
  echo "one CUDA device for two ranks: each rank poses as its own host (NCCL_HOSTID)"
  share='export NCCL_HOSTID=mosaic-test-${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}} NCCL_SOCKET_IFNAME=lo NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1'
fi
for p in "$test_dist" "$test_nccl"; do
  printf '#!/bin/sh\n%s\nexec "%s" "$@"\n' "$share" "$p" >"$dir/$(basename "$p")"
  chmod +x "$dir/$(basename "$p")"
done
export MSC_TEST_DIST_ENGINE=nccl
mpi=("$mpiexec" --oversubscribe -np 2)
echo "== collectives (test_nccl, 2 ranks)"
"${mpi[@]}" "$dir/$(basename "$test_nccl")" || { echo "FAIL: test_nccl on 2 ranks"; exit 1; }
echo "== equivalence (test_dist equiv, 2 ranks)"
out=$("${mpi[@]}" "$dir/$(basename "$test_dist")" equiv 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: test_dist equiv over nccl exited $rc"; exit 1; }
grep -q "^SKIP" <<<"$out" && { echo "FAIL: the equivalence test skipped with a device present"; exit 1; }
echo "== timeout (failure.sh wedge)"
"$here/failure.sh" wedge "$mpiexec" "$dir/$(basename "$test_dist")" ||
  { echo "FAIL: the wedge test over nccl"; exit 1; }
echo "NCCL OK"
