/*
 * bench_train.c — one MoSAiC training step (docs/performance.md workloads "train-step" and
 * "tiny train-step"): mosaic1 with two augmented views per modality, an S1 encoder (2
 * bands) and an S2 encoder (12 bands), 120×120 patches, every loss term, backward and
 * AdamW; in samples per second, with the peak RSS.
 *
 *   bench_train [--encoder resnet18|tiny] [--batch 32] [--iters 3] [--threads 0]
 *              [--backend cpu|cuda|auto] [--precision f32|bf16] [--conv-algorithm auto|direct]
 *
 * Prints one JSON line. The first step (primitive creation, allocation) is reported as
 * warmup_s and excluded; the rate is the median over iters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mosaic/mosaic.h"

int main(int argc, char **argv) {
  const char *encoder = bench_arg(argc, argv, "--encoder", "resnet18");
  int64_t batch = atoll(bench_arg(argc, argv, "--batch", "32"));
  int iters = atoi(bench_arg(argc, argv, "--iters", "3"));
  int64_t threads = atoll(bench_arg(argc, argv, "--threads", "0"));
  if (batch < 2 || iters < 1 || iters > 1000) {
    fprintf(stderr, "bench_train: bad --batch or --iters\n");
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
  CHECK(msc_options_set_string(o, "train.preset", "mosaic1"));
  msc_model *m = NULL;
  CHECK(msc_model_create(o, &m));
  const int64_t bands[2] = {2, 12}, size = 120, classes = 19;
  const char *names[2] = {"s1", "s2"};
  msc_batch *b = NULL;
  CHECK(msc_batch_create(&b));
  for (int k = 0; k < 2; ++k) {
    int64_t n = batch * bands[k] * size * size;
    float *x = malloc((size_t)n * sizeof(float));
    if (!x) return 1;
    bench_fill(x, n, k ? 0.f : -25.f, k ? 4000.f : 0.f, 23u + (uint32_t)k);
    CHECK(msc_batch_set_modality(b, names[k], x, batch, bands[k], size, size));
    free(x);
  }
  uint8_t *y = calloc((size_t)(batch * classes), 1);
  for (int64_t i = 0; i < batch; ++i)
    y[i * classes + (i * 7) % classes] = 1, y[i * classes + (i * 3 + 1) % classes] = 1;
  CHECK(msc_batch_set_labels(b, y, batch, classes));
  msc_step_result r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  double t0 = bench_now();
  CHECK(msc_train_step(m, b, &r));
  double warmup = bench_now() - t0;
  double *rates = malloc((size_t)iters * sizeof(double));
  for (int i = 0; i < iters; ++i) {
    t0 = bench_now();
    CHECK(msc_train_step(m, b, &r));
    rates[i] = (double)batch / (bench_now() - t0);
  }
  double rate = bench_median(rates, iters);
  printf(
      "{\"workload\":\"train-step\",\"preset\":\"mosaic1\",\"encoder\":\"%s\",\"batch\":%lld,"
      "\"size\":%lld,\"bands\":[2,12],\"threads\":%lld,\"backend\":\"%s\",\"precision\":\"%s\","
      "\"iters\":%d,"
      "\"warmup_s\":%.3f,\"samples_per_s\":%.2f,\"loss\":%.4f,\"peak_rss_mib\":%.1f}\n",
      encoder, (long long)batch, (long long)size, (long long)threads, msc_model_backend(m),
      precision, iters, warmup, rate, r.loss, bench_peak_rss_mib());
  free(rates);
  free(y);
  msc_batch_free(b);
  msc_model_free(m);
  msc_options_free(o);
  return 0;
}
