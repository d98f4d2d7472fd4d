/*
 * bench_seg.c — segmentation (docs/segmentation.md): one training step of the U-Net
 * (task segmentation, per-pixel softmax cross-entropy, backward, AdamW) and inference
 * (msc_predict_mask, classes only), an S1 encoder (2 bands) and an S2 encoder (12 bands)
 * at 128×128 (divisible by ResNet-18's total stride 32), C classes (2: Sen1Floods11); in
 * samples per second, with the peak RSS and the parameter count.
 *
 *   bench_seg [--encoder resnet18|tiny] [--size 128] [--classes 2] [--batch 16]
 *             [--infer-batch 32] [--iters 3] [--threads 0] [--mode both|train|infer]
 *             [--conv-algorithm auto|direct]
 *             [--backend cpu|cuda|auto] [--upsample bilinear|deconv] [--dump DIR]
 *
 * Prints one JSON line per mode. The first call (primitive creation, allocation) is
 * reported as warmup_s and excluded; the rate is the median over iters. The inputs are
 * bench_fill patterns in [-1, 1) (seeds 31 and 32; no normalisation: mean 0, std 1) and
 * the mask is (i + 3y + 7x) mod C for sample i, row y, column x, so that another
 * implementation can rebuild the batch. --dump DIR writes, before anything trains, the
 * freshly initialised model (DIR/init.safetensors), the training batch's inputs
 * (DIR/s1.f32, DIR/s2.f32: raw little-endian float32, N×C×H×W) and the softmax of
 * msc_predict_mask on them (DIR/probs.f32, N×C×H×W, eval-mode BatchNorm); the JSON line
 * of the training step then has loss0, the first step's loss (train-mode BatchNorm,
 * before the update): the PyTorch transcription checks its architecture against these.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mosaic/mosaic.h"

/* The batch of n samples: inputs and mask as the header comment says. */
static msc_batch *make_batch(int64_t n, int64_t size, int64_t classes) {
  const int64_t bands[2] = {2, 12};
  const char *names[2] = {"s1", "s2"};
  msc_batch *b = NULL;
  CHECK(msc_batch_create(&b));
  for (int k = 0; k < 2; ++k) {
    int64_t len = n * bands[k] * size * size;
    float *x = malloc((size_t)len * sizeof(float));
    if (!x) exit(1);
    bench_fill(x, len, -1.f, 1.f, 31u + (uint32_t)k);
    CHECK(msc_batch_set_modality(b, names[k], x, n, bands[k], size, size));
    free(x);
  }
  int32_t *mask = malloc((size_t)(n * size * size) * sizeof(int32_t));
  if (!mask) exit(1);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x)
        mask[(i * size + y) * size + x] = (int32_t)((i + 3 * y + 7 * x) % classes);
  CHECK(msc_batch_set_mask(b, mask, n, size, size));
  free(mask);
  return b;
}

static void write_raw(const char *dir, const char *name, const float *x, int64_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(x, sizeof(float), (size_t)n, f) != (size_t)n || fclose(f) != 0) {
    fprintf(stderr, "bench_seg: cannot write %s\n", path);
    exit(1);
  }
}

/* --dump DIR: the initial model, the training batch and its eval-mode probabilities. */
static void dump(const char *dir, msc_model *m, msc_batch *b, int64_t n, int64_t size,
                 int64_t classes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/init.safetensors", dir);
  CHECK(msc_model_save(m, path));
  const int64_t bands[2] = {2, 12};
  const char *names[2] = {"s1", "s2"};
  for (int k = 0; k < 2; ++k) {
    int64_t len = n * bands[k] * size * size;
    float *x = malloc((size_t)len * sizeof(float));
    if (!x) exit(1);
    bench_fill(x, len, -1.f, 1.f, 31u + (uint32_t)k);
    snprintf(path, sizeof path, "%s.f32", names[k]);
    write_raw(dir, path, x, len);
    free(x);
  }
  int64_t px = n * size * size;
  int32_t *cls = malloc((size_t)px * sizeof(int32_t));
  float *probs = malloc((size_t)(px * classes) * sizeof(float));
  if (!cls || !probs) exit(1);
  CHECK(msc_predict_mask(m, b, cls, (size_t)px, probs, (size_t)(px * classes)));
  write_raw(dir, "probs.f32", probs, px * classes);
  free(cls);
  free(probs);
}

int main(int argc, char **argv) {
  const char *encoder = bench_arg(argc, argv, "--encoder", "resnet18");
  const char *mode = bench_arg(argc, argv, "--mode", "both");
  const char *dump_dir = bench_arg(argc, argv, "--dump", NULL);
  int64_t size = atoll(bench_arg(argc, argv, "--size", "128"));
  int64_t classes = atoll(bench_arg(argc, argv, "--classes", "2"));
  int64_t batch = atoll(bench_arg(argc, argv, "--batch", "16"));
  int64_t ibatch = atoll(bench_arg(argc, argv, "--infer-batch", "32"));
  int iters = atoi(bench_arg(argc, argv, "--iters", "3"));
  int64_t threads = atoll(bench_arg(argc, argv, "--threads", "0"));
  const int do_train = strcmp(mode, "infer") != 0, do_infer = strcmp(mode, "train") != 0;
  if (batch < 2 || ibatch < 1 || iters < 1 || iters > 1000 || size < 8 || classes < 2 ||
      classes > 1000) {
    fprintf(stderr, "bench_seg: bad --batch, --infer-batch, --iters, --size or --classes\n");
    return 2;
  }
  msc_options *o = NULL;
  CHECK(msc_options_create(&o));
  CHECK(msc_options_set_string(o, "task", "segmentation"));
  CHECK(msc_options_set_string(o, "seg.upsample",
                               bench_arg(argc, argv, "--upsample", "bilinear")));
  CHECK(msc_options_set_int(o, "classes", classes));
  for (int k = 0; k < 2; ++k) {
    char key[32];
    snprintf(key, sizeof key, "modality.%d.encoder", k);
    CHECK(msc_options_set_string(o, key, encoder));
    snprintf(key, sizeof key, "modality.%d.size", k);
    CHECK(msc_options_set_int(o, key, size));
  }
  CHECK(msc_options_set_string(o, "backend", bench_arg(argc, argv, "--backend", "cpu")));
  CHECK(msc_options_set_int(o, "threads", threads));
  CHECK(msc_options_set_string(o, "conv_algorithm",
                               bench_arg(argc, argv, "--conv-algorithm", "auto")));
  msc_model *m = NULL;
  CHECK(msc_model_create(o, &m));
  const long long params = (long long)msc_model_parameter_count(m);
  msc_batch *b = make_batch(batch, size, classes);
  if (dump_dir) dump(dump_dir, m, b, batch, size, classes);
  double *rates = malloc((size_t)iters * sizeof(double));
  if (!rates) return 1;
  if (do_train) {
    msc_step_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    double t0 = bench_now();
    CHECK(msc_train_step(m, b, &r));
    double warmup = bench_now() - t0, loss0 = r.loss;
    for (int i = 0; i < iters; ++i) {
      t0 = bench_now();
      CHECK(msc_train_step(m, b, &r));
      rates[i] = (double)batch / (bench_now() - t0);
    }
    printf("{\"workload\":\"seg-train-step\",\"encoder\":\"%s\",\"batch\":%lld,\"size\":%lld,"
           "\"bands\":[2,12],\"classes\":%lld,\"threads\":%lld,\"backend\":\"%s\","
           "\"parameters\":%lld,\"iters\":%d,\"warmup_s\":%.3f,\"samples_per_s\":%.2f,"
           "\"loss0\":%.6f,\"loss\":%.4f,\"peak_rss_mib\":%.1f}\n",
           encoder, (long long)batch, (long long)size, (long long)classes, (long long)threads,
           msc_model_backend(m), params, iters, warmup, bench_median(rates, iters), loss0,
           r.loss, bench_peak_rss_mib());
    fflush(stdout);
  }
  if (do_infer) {
    msc_batch_free(b);
    b = make_batch(ibatch, size, classes);
    size_t px = (size_t)(ibatch * size * size);
    int32_t *cls = malloc(px * sizeof(int32_t));
    if (!cls) return 1;
    double t0 = bench_now();
    CHECK(msc_predict_mask(m, b, cls, px, NULL, 0));
    double warmup = bench_now() - t0;
    for (int i = 0; i < iters; ++i) {
      t0 = bench_now();
      CHECK(msc_predict_mask(m, b, cls, px, NULL, 0));
      rates[i] = (double)ibatch / (bench_now() - t0);
    }
    printf("{\"workload\":\"seg-infer\",\"encoder\":\"%s\",\"batch\":%lld,\"size\":%lld,"
           "\"bands\":[2,12],\"classes\":%lld,\"threads\":%lld,\"backend\":\"%s\","
           "\"parameters\":%lld,\"iters\":%d,\"warmup_s\":%.3f,\"samples_per_s\":%.2f,"
           "\"peak_rss_mib\":%.1f}\n",
           encoder, (long long)ibatch, (long long)size, (long long)classes, (long long)threads,
           msc_model_backend(m), params, iters, warmup, bench_median(rates, iters),
           bench_peak_rss_mib());
    free(cls);
  }
  free(rates);
  msc_batch_free(b);
  msc_model_free(m);
  msc_options_free(o);
  return 0;
}
