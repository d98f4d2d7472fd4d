/*
 * bench_embed.c — inference throughput of fused embeddings (docs/performance.md workloads
 * "embed" and "tiny embed"): an S1 encoder (2 bands) and an S2 encoder (12 bands),
 * 120×120 patches, in samples per second, with the peak RSS.
 *
 *   bench_embed [--encoder resnet18|tiny] [--batch 64] [--iters 5] [--threads 0]
 *              [--backend cpu|cuda|auto] [--precision f32|bf16|int8]
 *
 * int8 calibrates on the benchmark's batch first (msc_model_calibrate, not timed).
 * Prints one JSON line. The first call (primitive creation, allocation) is reported
 * separately as warmup_s and excluded from the rate, which is the median over iters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mosaic/mosaic.h"

int main(int argc, char **argv) {
  const char *encoder = bench_arg(argc, argv, "--encoder", "resnet18");
  int64_t batch = atoll(bench_arg(argc, argv, "--batch", "64"));
  int iters = atoi(bench_arg(argc, argv, "--iters", "5"));
  int64_t threads = atoll(bench_arg(argc, argv, "--threads", "0"));
  if (batch < 1 || iters < 1 || iters > 1000) {
    fprintf(stderr, "bench_embed: bad --batch or --iters\n");
    return 2;
  }
  msc_options *o = NULL;
  CHECK(msc_options_create(&o));
  CHECK(msc_options_set_string(o, "modality.0.encoder", encoder));
  CHECK(msc_options_set_string(o, "modality.1.encoder", encoder));
  CHECK(msc_options_set_string(o, "backend", bench_arg(argc, argv, "--backend", "cpu")));
  CHECK(msc_options_set_int(o, "threads", threads));
  const char *precision = bench_arg(argc, argv, "--precision", "f32");
  CHECK(msc_options_set_string(o, "precision", precision));
  CHECK(msc_options_set_string(o, "conv_algorithm",
                               bench_arg(argc, argv, "--conv-algorithm", "auto")));
  msc_model *m = NULL;
  CHECK(msc_model_create(o, &m));
  const int64_t bands[2] = {2, 12}, size = 120;
  const char *names[2] = {"s1", "s2"};
  msc_batch *b = NULL;
  CHECK(msc_batch_create(&b));
  for (int k = 0; k < 2; ++k) {
    int64_t n = batch * bands[k] * size * size;
    float *x = malloc((size_t)n * sizeof(float));
    if (!x) return 1;
    bench_fill(x, n, k ? 0.f : -25.f, k ? 4000.f : 0.f, 17u + (uint32_t)k);
    CHECK(msc_batch_set_modality(b, names[k], x, batch, bands[k], size, size));
    free(x);
  }
  int64_t dim = 0;
  CHECK(msc_model_embedding_size(m, MSC_EMBED_FUSED, &dim));
  float *out = malloc((size_t)(batch * dim) * sizeof(float));
  if (!out) return 1;
  if (strcmp(precision, "int8") == 0) CHECK(msc_model_calibrate(m, b));
  double t0 = bench_now();
  CHECK(msc_embed(m, b, MSC_EMBED_FUSED, out, (size_t)(batch * dim)));
  double warmup = bench_now() - t0;
  double *rates = malloc((size_t)iters * sizeof(double));
  for (int i = 0; i < iters; ++i) {
    t0 = bench_now();
    CHECK(msc_embed(m, b, MSC_EMBED_FUSED, out, (size_t)(batch * dim)));
    rates[i] = (double)batch / (bench_now() - t0);
  }
  double rate = bench_median(rates, iters);
  printf("{\"workload\":\"embed\",\"encoder\":\"%s\",\"batch\":%lld,\"size\":%lld,"
         "\"bands\":[2,12],\"threads\":%lld,\"backend\":\"%s\",\"precision\":\"%s\","
         "\"iters\":%d,"
         "\"warmup_s\":%.3f,\"samples_per_s\":%.2f,\"peak_rss_mib\":%.1f}\n",
         encoder, (long long)batch, (long long)size, (long long)threads, msc_model_backend(m),
         precision, iters, warmup, rate, bench_peak_rss_mib());
  free(rates);
  free(out);
  msc_batch_free(b);
  msc_model_free(m);
  msc_options_free(o);
  return 0;
}
