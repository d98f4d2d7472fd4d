/*
 * test_nccl.c — the NCCL communicator module (backends/nccl/comm_nccl.c) by itself,
 * built where the module is. It asks the CUDA runtime for the devices on its own and:
 *
 *   without a CUDA device: msc_dist_create("nccl", …) must fail with
 *     MSC_E_BACKEND_UNAVAILABLE, a message saying "no CUDA device" with the CUDA
 *     runtime's own reason, and leave *out untouched; the refusal must not touch MPI, so
 *     msc_dist_create("mpi", …) still works afterwards (when that module is built);
 *   with one: msc_dist_create("nccl", …) must succeed, and every collective must give
 *     the values computed here from the rank count — sums of F32 and F64 (exact in
 *     floating point: small integers and halves), all-gather in rank order, broadcast
 *     from the last rank, barrier — for a buffer larger than the first (the staging
 *     buffer grows) and a small one after it. The caller's current device is kept.
 *     The non-blocking all-reduce (API 2): three started at once (F32, F32, F64), an
 *     all-gather while two are in flight, test until the first is done, wait for all;
 *     sums as above, for a large set, a small one (pooled requests reused) and a larger
 *     one (a free request grown).
 *     Alone it is one rank (MPI singleton); tests/dist/nccl.sh runs it under mpirun too.
 *
 *   test_nccl count   prints the number of CUDA devices (0 when the runtime has none).
 */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaic/mosaic.h"
#include "train/dist.h"

static int g_fail;
#define CHECK(cond, ...)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                     \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fprintf(stderr, " (last error: %s)\n", msc_last_error());                                \
      g_fail = 1;                                                                              \
    }                                                                                          \
  } while (0)

static void no_device(cudaError_t e) {
  const char *reason = e != cudaSuccess ? cudaGetErrorString(e) : "0 devices";
  printf("no CUDA device (%s): checking the refusal\n", reason);
  msc_dist *d = (msc_dist *)0x1; /* must stay as it is */
  msc_status st = msc_dist_create("nccl", NULL, &d);
  const char *msg = msc_last_error();
  printf("msc_dist_create(\"nccl\"): %s: %s\n", msc_status_string(st), msg);
  CHECK(st == MSC_E_BACKEND_UNAVAILABLE, "status %s", msc_status_string(st));
  CHECK(strstr(msg, "no CUDA device") != NULL, "the message does not say 'no CUDA device'");
  CHECK(strstr(msg, reason) != NULL, "the message does not give the runtime's reason '%s'",
        reason);
  CHECK(d == (msc_dist *)0x1, "*out was changed on error");
  d = NULL;
  st = msc_dist_create("mpi", NULL, &d);
  if (st == MSC_E_BACKEND_UNAVAILABLE) {
    printf("the mpi module is not built: not checked that MPI is still usable\n");
  } else {
    CHECK(st == MSC_OK, "msc_dist_create(\"mpi\") after the refusal: %s",
          msc_status_string(st));
    CHECK(msc_dist_size(d) == 1, "a singleton has %d ranks", (int)msc_dist_size(d));
    msc_dist_free(d);
  }
}

static void collectives(msc_dist *d, size_t n) {
  const int R = msc_dist_size(d), r = msc_dist_rank(d);
  float *f = malloc(n * sizeof *f);
  double *g = malloc(n * sizeof *g);
  unsigned char *mine = malloc(n), *all = malloc(n * (size_t)R);
  if (!f || !g || !mine || !all) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < n; ++i) {
    f[i] = (float)r + 0.5f * (float)(i % 64);        /* sum: R·(i%64)/2 + R(R−1)/2 */
    g[i] = (double)(r + 1) * (double)(i % 1000 + 1); /* sum: (i%1000+1)·R(R+1)/2 */
    mine[i] = (unsigned char)(r * 37 + i * 11);
  }
  CHECK(msci_dist_all_reduce(d, f, n, 0 /* MCM_F32 */) == MSC_OK, "all_reduce F32 of %zu", n);
  CHECK(msci_dist_all_reduce(d, g, n, 1 /* MCM_F64 */) == MSC_OK, "all_reduce F64 of %zu", n);
  size_t bad_f = 0, bad_g = 0, bad_a = 0;
  for (size_t i = 0; i < n; ++i) {
    bad_f += f[i] != 0.5f * (float)R * (float)(i % 64) + (float)(R * (R - 1) / 2);
    bad_g += g[i] != (double)(i % 1000 + 1) * (double)(R * (R + 1) / 2);
  }
  CHECK(bad_f == 0, "all_reduce F32: %zu of %zu sums wrong (f[1] = %g)", bad_f, n, f[1]);
  CHECK(bad_g == 0, "all_reduce F64: %zu of %zu sums wrong (g[1] = %g)", bad_g, n, g[1]);
  CHECK(msci_dist_all_gather(d, mine, all, n) == MSC_OK, "all_gather of %zu bytes", n);
  for (int q = 0; q < R; ++q)
    for (size_t i = 0; i < n; ++i)
      bad_a += all[(size_t)q * n + i] != (unsigned char)(q * 37 + i * 11);
  CHECK(bad_a == 0, "all_gather: %zu of %zu bytes wrong", bad_a, n * (size_t)R);
  for (size_t i = 0; i < n; ++i) mine[i] = r == R - 1 ? (unsigned char)(i * 7 + 3) : 0;
  CHECK(msci_dist_broadcast(d, mine, n, R - 1) == MSC_OK, "broadcast of %zu bytes", n);
  size_t bad_b = 0;
  for (size_t i = 0; i < n; ++i) bad_b += mine[i] != (unsigned char)(i * 7 + 3);
  CHECK(bad_b == 0, "broadcast: %zu of %zu bytes wrong", bad_b, n);
  CHECK(msc_dist_barrier(d) == MSC_OK, "barrier");
  free(f), free(g), free(mine), free(all);
}

static void nonblocking(msc_dist *d, size_t n) {
  const int R = msc_dist_size(d), r = msc_dist_rank(d);
  const size_t nb = n / 2 + 7;
  float *a = malloc(n * sizeof *a), *b = malloc(nb * sizeof *b);
  double *c = malloc(n * sizeof *c);
  int64_t *ranks = malloc((size_t)R * sizeof *ranks), mine = r;
  if (!a || !b || !c || !ranks) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < n; ++i) {
    a[i] = (float)r + 0.5f * (float)(i % 64);        /* sum: R·(i%64)/2 + R(R−1)/2 */
    c[i] = (double)(r + 1) * (double)(i % 1000 + 1); /* sum: (i%1000+1)·R(R+1)/2 */
  }
  for (size_t i = 0; i < nb; ++i) b[i] = (float)(2 * r) + (float)(i % 8); /* R·(i%8) + R(R−1) */
  mcm_request *qa = NULL, *qb = NULL, *qc = NULL;
  CHECK(msci_dist_reduce_start(d, a, n, MCM_F32, &qa) == MSC_OK, "start F32 of %zu", n);
  CHECK(msci_dist_reduce_start(d, b, nb, MCM_F32, &qb) == MSC_OK, "start F32 of %zu", nb);
  /* A blocking collective while two are in flight: it waits for them first. */
  CHECK(msci_dist_all_gather(d, &mine, ranks, sizeof mine) == MSC_OK, "all_gather in flight");
  for (int q = 0; q < R; ++q)
    CHECK(ranks[q] == q, "all_gather in flight: [%d] = %lld", q, (long long)ranks[q]);
  CHECK(msci_dist_reduce_start(d, c, n, MCM_F64, &qc) == MSC_OK, "start F64 of %zu", n);
  int32_t done = 0;
  for (long i = 0; qa && !done && i < 60000000L; ++i)
    if (msci_dist_reduce_test(d, qa, &done) != MSC_OK) break;
  CHECK(done == 1, "test never reported the first all-reduce done");
  if (qa) CHECK(msci_dist_reduce_wait(d, qa) == MSC_OK, "wait F32 of %zu", n);
  if (qb) CHECK(msci_dist_reduce_wait(d, qb) == MSC_OK, "wait F32 of %zu", nb);
  if (qc) CHECK(msci_dist_reduce_wait(d, qc) == MSC_OK, "wait F64 of %zu", n);
  size_t bad_a = 0, bad_b = 0, bad_c = 0;
  for (size_t i = 0; i < n; ++i) {
    bad_a += a[i] != 0.5f * (float)R * (float)(i % 64) + (float)(R * (R - 1) / 2);
    bad_c += c[i] != (double)(i % 1000 + 1) * (double)(R * (R + 1) / 2);
  }
  for (size_t i = 0; i < nb; ++i)
    bad_b += b[i] != (float)R * (float)(i % 8) + (float)(R * (R - 1));
  CHECK(bad_a == 0, "started F32: %zu of %zu sums wrong (a[1] = %g)", bad_a, n, a[1]);
  CHECK(bad_b == 0, "started F32: %zu of %zu sums wrong (b[1] = %g)", bad_b, nb, b[1]);
  CHECK(bad_c == 0, "started F64: %zu of %zu sums wrong (c[1] = %g)", bad_c, n, c[1]);
  free(a), free(b), free(c), free(ranks);
}

int main(int argc, char **argv) {
  int ndev = 0;
  cudaError_t e = cudaGetDeviceCount(&ndev);
  if (e != cudaSuccess) ndev = 0;
  if (argc > 1 && strcmp(argv[1], "count") == 0) {
    printf("%d\n", ndev);
    return 0;
  }
  if (ndev == 0) {
    no_device(e);
    return g_fail;
  }
  /* The caller's device (the last one) must be current again after every call. */
  if (cudaSetDevice(ndev - 1) != cudaSuccess) {
    fprintf(stderr, "FAIL: cudaSetDevice(%d)\n", ndev - 1);
    return 1;
  }
  msc_dist *d = NULL;
  msc_status st = msc_dist_create("nccl", NULL, &d);
  if (st != MSC_OK) {
    fprintf(stderr, "FAIL: msc_dist_create(\"nccl\") with %d devices: %s: %s\n", ndev,
            msc_status_string(st), msc_last_error());
    return 1;
  }
  CHECK(msc_dist_set_timeout(d, 60) == MSC_OK, "set_timeout");
  collectives(d, (size_t)3 << 20 | 5); /* 12 MiB of F32: the staging buffer grows */
  collectives(d, 1000);
  nonblocking(d, (size_t)3 << 20 | 5);
  nonblocking(d, 1000);
  nonblocking(d, (size_t)5 << 20);
  int cur = -1;
  cudaGetDevice(&cur);
  CHECK(cur == ndev - 1, "the current device is %d after the collectives, was %d", cur,
        ndev - 1);
  printf("rank %d of %d, %d CUDA devices: collectives %s\n", (int)msc_dist_rank(d),
         (int)msc_dist_size(d), ndev, g_fail ? "FAILED" : "OK");
  msc_dist_free(d);
  return g_fail;
}
