/*
 * bench_loss.c — the MoSAiC loss terms on the host (lib/train/loss.c), forward and backward,
 * at the sizes of a training step: N samples, projections of size D, C classes.
 *
 *   bench_loss [--n 256] [--d 128] [--c 19] [--iters 20] [--threads 0]
 *
 * Terms: NT-Xent over the 2N views of one modality, InfoNCE between two modalities
 * (N pairs), MulSupCon over K = 2N labelled embeddings (random labels, ~3 positives per
 * row), BCE on 2N × C logits. Prints one JSON line per term with the median time of
 * iters calls (after one warm-up call) in ms and the rate in batch samples (N) per
 * second. --threads > 0 sets the OpenMP thread count; 0 keeps the OpenMP default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_util.h"
#include "train/loss.h"
#include "mosaic/mosaic.h"

typedef struct inputs {
  int64_t n, d, c;
  float *za, *zb, *ga, *gb, *logits, *glog;
  uint8_t *y;
} inputs;

static void run_term(const inputs *in, int term) {
  double loss;
  const int64_t n = in->n, d = in->d, c = in->c;
  switch (term) {
  case 0: CHECK(msci_loss_ntxent(in->za, in->zb, n, d, 0.1f, &loss, in->ga, in->gb)); break;
  case 1: CHECK(msci_loss_infonce(in->za, in->zb, n, d, 0.1f, &loss, in->ga, in->gb)); break;
  case 2: CHECK(msci_loss_mulsupcon(in->za, in->y, 2 * n, d, c, 0.1f, 0, &loss, in->ga)); break;
  default: CHECK(msci_loss_bce(in->logits, in->y, 2 * n, c, NULL, &loss, in->glog)); break;
  }
}

int main(int argc, char **argv) {
  int64_t n = atoll(bench_arg(argc, argv, "--n", "256"));
  int64_t d = atoll(bench_arg(argc, argv, "--d", "128"));
  int64_t c = atoll(bench_arg(argc, argv, "--c", "19"));
  int iters = atoi(bench_arg(argc, argv, "--iters", "20"));
  int threads = atoi(bench_arg(argc, argv, "--threads", "0"));
  if (n < 2 || d < 1 || c < 1 || iters < 1 || iters > 10000 || threads < 0) {
    fprintf(stderr, "bench_loss: bad --n, --d, --c, --iters or --threads\n");
    return 2;
  }
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads(threads);
  int used = omp_get_max_threads();
#else
  int used = 1;
#endif
  inputs in = {.n = n, .d = d, .c = c};
  /* za holds 2N rows so that MulSupCon can run over K = 2N embeddings. */
  in.za = malloc((size_t)(2 * n * d) * sizeof(float));
  in.zb = in.za + n * d;
  in.ga = malloc((size_t)(2 * n * d) * sizeof(float));
  in.gb = in.ga + n * d;
  in.logits = malloc((size_t)(2 * n * c) * sizeof(float));
  in.glog = malloc((size_t)(2 * n * c) * sizeof(float));
  in.y = malloc((size_t)(2 * n * c));
  float *u = malloc((size_t)(2 * n * c) * sizeof(float));
  if (!in.za || !in.ga || !in.logits || !in.glog || !in.y || !u) return 1;
  bench_fill(in.za, 2 * n * d, -1.f, 1.f, 11u);
  bench_fill(in.logits, 2 * n * c, -4.f, 4.f, 12u);
  bench_fill(u, 2 * n * c, 0.f, 1.f, 13u);
  for (int64_t i = 0; i < 2 * n * c; ++i) in.y[i] = u[i] < 3.0f / (float)c; /* ~3 per row */
  free(u);

  static const char *names[4] = {"ntxent", "infonce", "mulsupcon", "bce"};
  double *ms = malloc((size_t)iters * sizeof(double));
  for (int term = 0; term < 4; ++term) {
    run_term(&in, term); /* warm-up: first touch of the scratch, thread pool start */
    for (int i = 0; i < iters; ++i) {
      double t0 = bench_now();
      run_term(&in, term);
      ms[i] = 1e3 * (bench_now() - t0);
    }
    double med = bench_median(ms, iters);
    int64_t rows = term == 1 ? n : 2 * n;
    printf("{\"workload\":\"loss\",\"term\":\"%s\",\"n\":%lld,\"rows\":%lld,\"d\":%lld,"
           "\"c\":%lld,\"threads\":%d,\"iters\":%d,\"median_ms\":%.4f,"
           "\"samples_per_s\":%.1f}\n",
           names[term], (long long)n, (long long)rows, (long long)d, (long long)c, used, iters,
           med, (double)n / (med * 1e-3));
  }
  free(ms);
  free(in.za), free(in.ga), free(in.logits), free(in.glog), free(in.y);
  return 0;
}
