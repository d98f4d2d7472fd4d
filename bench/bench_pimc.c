/*
 * bench_pimc.c — one PIMC training step (docs/performance.md, "PIMC train step";
 * docs/pimc.md): a pixel's recurrence plots ("rp": NDVI, EVI, SAVI, 3 channels) and the
 * Sentinel-2 patch around it ("s2": 10 bands), both 32×32, one ResNet encoder each (the
 * rp encoder with a CIFAR-style stem: 3×3 stride-1 convolution, no max-pool), the
 * per-modality projection heads, preset pimc (symmetric InfoNCE between the two
 * projections, one view), every augmentation off, backward and AdamW (library defaults);
 * in samples per second, with the peak RSS.
 *
 *   bench_pimc [--encoder resnet18|resnet34|resnet50|tiny] [--batch 64] [--warmup 2]
 *              [--steps 5] [--threads 2] [--seed 1] [--backend cpu|cuda|auto]
 *              [--conv-algorithm auto|direct]
 *              [--save model.safetensors]
 *
 * Prints one JSON line. The warm-up steps (the first creates primitives and allocates)
 * are reported as warmup_s and excluded; the rate is the median over --steps timed steps
 * (best_samples_per_s: the fastest step, less disturbed by other load on a shared machine).
 * loss0 is the loss of the first step, before any update. Inputs are pseudo-random,
 * uniform in [0, 1), from --seed (rp) and --seed + 1 (s2) with bench_fill. --save writes
 * the freshly initialised model (before the first step), so that a transcription in
 * another framework can start from the same weights and check loss0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mosaic/mosaic.h"

int main(int argc, char **argv) {
  const char *encoder = bench_arg(argc, argv, "--encoder", "resnet18");
  const char *save = bench_arg(argc, argv, "--save", NULL);
  int64_t batch = atoll(bench_arg(argc, argv, "--batch", "64"));
  int warmup = atoi(bench_arg(argc, argv, "--warmup", "2"));
  int steps = atoi(bench_arg(argc, argv, "--steps", "5"));
  int64_t threads = atoll(bench_arg(argc, argv, "--threads", "2"));
  uint32_t seed = (uint32_t)strtoul(bench_arg(argc, argv, "--seed", "1"), NULL, 10);
  if (batch < 2 || warmup < 1 || warmup > 100 || steps < 1 || steps > 1000) {
    fprintf(stderr, "bench_pimc: bad --batch (>= 2), --warmup (1..100) or --steps (1..1000)\n");
    return 2;
  }
  const int64_t bands[2] = {3, 10}, size = 32;
  const char *names[2] = {"rp", "s2"}, *kinds[2] = {"plot", "optical"};
  msc_options *o = NULL;
  CHECK(msc_options_create(&o));
  CHECK(msc_options_set_string(o, "backend", bench_arg(argc, argv, "--backend", "cpu")));
  CHECK(msc_options_set_int(o, "threads", threads));
  CHECK(msc_options_set_string(o, "conv_algorithm",
                               bench_arg(argc, argv, "--conv-algorithm", "auto")));
  CHECK(msc_options_set_int(o, "modality.count", 2));
  for (int k = 0; k < 2; ++k) {
    char key[64];
#define KEY(suffix) (snprintf(key, sizeof key, "modality.%d.%s", k, suffix), key)
    CHECK(msc_options_set_string(o, KEY("name"), names[k]));
    CHECK(msc_options_set_int(o, KEY("bands"), bands[k]));
    CHECK(msc_options_set_int(o, KEY("size"), size));
    CHECK(msc_options_set_string(o, KEY("encoder"), encoder));
    CHECK(msc_options_set_string(o, KEY("kind"), kinds[k]));
#undef KEY
  }
  /* A 32×32 recurrence plot keeps its resolution through the stem (CIFAR-style). */
  CHECK(msc_options_set_int(o, "modality.0.stem_kernel", 3));
  CHECK(msc_options_set_int(o, "modality.0.stem_stride", 1));
  CHECK(msc_options_set_int(o, "modality.0.maxpool", 0));
  CHECK(msc_options_set_string(o, "train.preset", "pimc"));
  /* No augmentation: the transcription compared with this computes the same step. */
  static const char *aug_int[] = {"aug.crop", "aug.hflip", "aug.vflip", "aug.rot90"};
  static const char *aug_float[] = {"aug.noise_std", "aug.jitter_brightness",
                                    "aug.jitter_contrast", "aug.speckle"};
  for (int i = 0; i < 4; ++i) CHECK(msc_options_set_int(o, aug_int[i], 0));
  for (int i = 0; i < 4; ++i) CHECK(msc_options_set_float(o, aug_float[i], 0.0));
  msc_model *m = NULL;
  CHECK(msc_model_create(o, &m));
  if (save) CHECK(msc_model_save(m, save));
  msc_batch *b = NULL;
  CHECK(msc_batch_create(&b));
  for (int k = 0; k < 2; ++k) {
    int64_t n = batch * bands[k] * size * size;
    float *x = malloc((size_t)n * sizeof(float));
    if (!x) return 1;
    bench_fill(x, n, 0.f, 1.f, seed + (uint32_t)k);
    CHECK(msc_batch_set_modality(b, names[k], x, batch, bands[k], size, size));
    free(x);
  }
  msc_step_result r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  double t0 = bench_now();
  CHECK(msc_train_step(m, b, &r));
  double loss0 = r.loss;
  for (int i = 1; i < warmup; ++i) CHECK(msc_train_step(m, b, &r));
  double warmup_s = bench_now() - t0;
  double *rates = malloc((size_t)steps * sizeof(double));
  if (!rates) return 1;
  for (int i = 0; i < steps; ++i) {
    t0 = bench_now();
    CHECK(msc_train_step(m, b, &r));
    rates[i] = (double)batch / (bench_now() - t0);
  }
  double rate = bench_median(rates, steps), best = rates[steps - 1]; /* sorted ascending */
  printf("{\"workload\":\"pimc-train-step\",\"preset\":\"pimc\",\"encoder\":\"%s\","
         "\"batch\":%lld,\"size\":%lld,\"modalities\":{\"rp\":3,\"s2\":10},\"threads\":%lld,"
         "\"backend\":\"%s\",\"warmup\":%d,\"steps\":%d,\"warmup_s\":%.3f,"
         "\"samples_per_s\":%.2f,\"best_samples_per_s\":%.2f,\"loss0\":%.6f,\"loss\":%.6f,"
         "\"peak_rss_mib\":%.1f}\n",
         encoder, (long long)batch, (long long)size, (long long)threads, msc_model_backend(m),
         warmup, steps, warmup_s, rate, best, loss0, r.loss, bench_peak_rss_mib());
  free(rates);
  msc_batch_free(b);
  msc_model_free(m);
  msc_options_free(o);
  return 0;
}
