/*
 * bench_data.c — the "data" workload of docs/performance.md: BigEarthNet v2 patches read,
 * resampled, normalised and augmented per second per core.
 *
 *   bench_data [--patches 64] [--batch 16] [--iters 3] [--threads 1] [--views 2]
 *              [--dir DIR]
 *
 * Writes a synthetic BigEarthNet v2 dataset (msc_synth_write; uncompressed GeoTIFFs, 12
 * S2 bands at 120/60/20 px and S1 VV/VH) to a temporary directory (or DIR, kept), opens
 * it, then times:
 *   read      msc_dataset_fill_batch over every patch (decode + resample to 120×120)
 *   augment   normalisation with the BigEarthNet v2 statistics and `views` augmented
 *             views per sample and modality (msci_augment_view, the default aug.*)
 *   total     the two together
 * each the median of iters passes over all patches, with the CPU threads set to
 * --threads (omp_set_num_threads and OMP_NUM_THREADS, before anything starts): the read spreads the samples of a
 * batch over them (msc_dataset_fill_batch), and so does the augmentation, as the training
 * step's staging of views does. cpu_ms_per_patch is the process's CPU time of the stage
 * per patch (all threads): flat from 1 to N threads means no serial part and no
 * contention, whatever else runs on the machine. Prints one JSON line per stage;
 * patches_per_s_per_core = patches_per_s / threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
#include <unistd.h>

#include "train/augment.h"
#include "data/batch.h"
#include "bench_util.h"
#include "mosaic/mosaic.h"

/* docs/data.md's BigEarthNet v2 statistics by band name. Bands without published statistics
 * (B01, B09) use mean 0, std 1000. */
static void stats_for(const char *band, float *mean, float *std) {
  static const struct {
    const char *name;
    float mean, std;
  } t[] = {
      {"VV", -12.620f, 5.116f},    {"VH", -19.290f, 5.464f},    {"B02", 429.94f, 572.42f},
      {"B03", 614.22f, 582.88f},   {"B04", 590.24f, 675.89f},   {"B05", 950.68f, 729.90f},
      {"B06", 1792.46f, 1096.01f}, {"B07", 2075.47f, 1273.45f}, {"B08", 2218.95f, 1365.46f},
      {"B8A", 2266.46f, 1356.14f}, {"B11", 1594.43f, 1079.19f}, {"B12", 1009.33f, 818.87f}};
  for (size_t i = 0; i < sizeof t / sizeof *t; ++i)
    if (band && strcmp(band, t[i].name) == 0) {
      *mean = t[i].mean;
      *std = t[i].std;
      return;
    }
  *mean = 0.f;
  *std = 1000.f;
}

/* CPU seconds of the whole process (every thread): with other work on the machine the
 * wall time of a stage says little about scaling, its CPU time per patch does. */
static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void rm_rf(const char *dir) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "bench_data: could not remove %s\n", dir);
}

int main(int argc, char **argv) {
  const int64_t patches = atoll(bench_arg(argc, argv, "--patches", "64"));
  const int64_t batch = atoll(bench_arg(argc, argv, "--batch", "16"));
  const int iters = atoi(bench_arg(argc, argv, "--iters", "3"));
  const char *threads_s = bench_arg(argc, argv, "--threads", "1");
  const int threads = atoi(threads_s);
  const int views = atoi(bench_arg(argc, argv, "--views", "2"));
  const char *user_dir = bench_arg(argc, argv, "--dir", NULL);
  if (patches < 1 || batch < 1 || iters < 1 || iters > 100 || threads < 1 || views < 1 ||
      views > 2) {
    fprintf(stderr, "bench_data: bad arguments\n");
    return 2;
  }
  setenv("OMP_NUM_THREADS", threads_s, 1);
  /* The OpenMP runtime read its environment when it was loaded, before main: the
   * variable above reaches only threads started later (oneDNN's); set the team here. */
  omp_set_num_threads(threads);

  char dir[4096];
  if (user_dir) {
    snprintf(dir, sizeof dir, "%s", user_dir);
  } else {
    snprintf(dir, sizeof dir, "/tmp/msc-bench-data-XXXXXX");
    if (!mkdtemp(dir)) {
      perror("bench_data: mkdtemp");
      return 1;
    }
  }
  double t0 = bench_now();
  CHECK(msc_synth_write(dir, "bigearthnet-v2", patches, 1, NULL));
  const double synth_s = bench_now() - t0;

  msc_options *o = NULL;
  CHECK(msc_options_create(&o));
  CHECK(msc_options_set_string(o, "data.split", "all"));
  CHECK(msc_options_set_int(o, "threads", threads));
  msc_dataset *ds = NULL;
  CHECK(msc_dataset_open(dir, "bigearthnet-v2", o, &ds));
  const int64_t n = msc_dataset_size(ds);

  msci_aug_cfg cfg;
  CHECK(msci_aug_cfg_parse(o, &cfg));

  int64_t *idx = malloc((size_t)batch * sizeof(int64_t));
  double *t_read = calloc((size_t)iters, sizeof(double));
  double *t_aug = calloc((size_t)iters, sizeof(double));
  double *t_tot = calloc((size_t)iters, sizeof(double));
  double cpu_read = 0, cpu_aug = 0; /* summed over all passes */
  if (!idx || !t_read || !t_aug || !t_tot) return 1;
  msc_batch *b = NULL;
  CHECK(msc_batch_create(&b));
  /* As the training step stages its views (lib/train/train.c, stage_views): samples
   * spread over the OpenMP threads, each thread normalising into its own buffer and
   * augmenting from it with its own scratch, the views written to one batch-sized
   * array (view v of sample s at row v·n + s). */
  float *work = NULL, *stage = NULL;
  size_t work_cap = 0, stage_cap = 0;
  const int team = omp_get_max_threads();
  int norm_set = 0;

  for (int it = 0; it < iters; ++it) {
    for (int64_t start = 0; start < n; start += batch) {
      const int64_t m = n - start < batch ? n - start : batch;
      for (int64_t i = 0; i < m; ++i) idx[i] = start + i;
      double a = bench_now(), ca = cpu_now();
      CHECK(msc_dataset_fill_batch(ds, idx, m, b));
      double r = bench_now(), cr = cpu_now();
      t_read[it] += r - a;
      cpu_read += cr - ca;

      for (int32_t k = 0; k < b->n_mod; ++k) {
        const msci_batch_modality *bm = &b->mod[k];
        const size_t per = (size_t)(bm->c * bm->h * bm->w);
        if ((size_t)team * 2 * per > work_cap) {
          free(work);
          work_cap = (size_t)team * 2 * per;
          work = malloc(work_cap * sizeof(float));
          if (!work) return 1;
        }
        if ((size_t)views * (size_t)b->n * per > stage_cap) {
          free(stage);
          stage_cap = (size_t)views * (size_t)b->n * per;
          stage = malloc(stage_cap * sizeof(float));
          if (!stage) return 1;
        }
        const int32_t kind = strcmp(bm->name, "s1") == 0   ? MSCI_KIND_SAR
                             : strcmp(bm->name, "s2") == 0 ? MSCI_KIND_OPTICAL
                                                           : MSCI_KIND_OTHER;
        float mean[MSCI_AUG_MAX_BANDS], std[MSCI_AUG_MAX_BANDS];
        const int32_t c = (int32_t)(bm->c < MSCI_AUG_MAX_BANDS ? bm->c : MSCI_AUG_MAX_BANDS);
        for (int32_t j = 0; j < c; ++j) {
          const char *band = kind == MSCI_KIND_SAR ? (j == 0 ? "VV" : "VH") : NULL;
          static const char *const s2[12] = {"B01", "B02", "B03", "B04", "B05", "B06",
                                             "B07", "B08", "B8A", "B09", "B11", "B12"};
          if (kind == MSCI_KIND_OPTICAL && c == 12) band = s2[j];
          stats_for(band, &mean[j], &std[j]);
        }
        if (norm_set < b->n_mod) {
          CHECK(msci_aug_cfg_set_norm(&cfg, k, c, mean, std));
          ++norm_set;
        }
        const size_t plane = (size_t)(bm->h * bm->w);
        int failed = 0;
#pragma omp parallel for schedule(dynamic) reduction(| : failed)
        for (int64_t s = 0; s < b->n; ++s) {
          float *normed = work + (size_t)omp_get_thread_num() * 2 * per,
                *scratch = normed + per;
          const float *src = bm->data + (size_t)s * per;
          /* msci_model_normalise's arithmetic: (x - mean) · (1 / std). */
          for (int32_t j = 0; j < c; ++j) {
            const float mu = mean[j], inv = 1.0f / std[j];
            for (size_t p = 0; p < plane; ++p)
              normed[j * plane + p] = (src[j * plane + p] - mu) * inv;
          }
          for (int v = 0; v < views; ++v)
            failed |=
                msci_augment_view(&cfg, 1, start + s, v, k, kind, normed, bm->c, bm->h, bm->w,
                                  stage + ((size_t)v * (size_t)b->n + (size_t)s) * per,
                                  scratch) != MSC_OK;
        }
        if (failed) {
          fprintf(stderr, "bench_data: augmentation failed: %s\n", msc_last_error());
          return 1;
        }
      }
      t_aug[it] += bench_now() - r;
      cpu_aug += cpu_now() - cr;
    }
    t_tot[it] = t_read[it] + t_aug[it];
  }
  const double read_s = bench_median(t_read, iters), aug_s = bench_median(t_aug, iters),
               tot_s = bench_median(t_tot, iters);
  const char *stages[3] = {"read_resample", "normalise_augment", "total"};
  const double secs[3] = {read_s, aug_s, tot_s};
  const double cpu[3] = {cpu_read, cpu_aug, cpu_read + cpu_aug};
  for (int s = 0; s < 3; ++s)
    printf("{\"workload\":\"data\",\"stage\":\"%s\",\"dataset\":\"bigearthnet-v2-synthetic\","
           "\"patches\":%lld,\"batch\":%lld,\"views\":%d,\"threads\":%d,\"iters\":%d,"
           "\"synth_write_s\":%.3f,\"patches_per_s\":%.1f,\"patches_per_s_per_core\":%.1f,"
           "\"cpu_ms_per_patch\":%.3f,\"peak_rss_mib\":%.1f}\n",
           stages[s], (long long)n, (long long)batch, views, threads, iters, synth_s,
           (double)n / secs[s], (double)n / secs[s] / threads,
           1e3 * cpu[s] / ((double)n * (double)iters), bench_peak_rss_mib());

  free(work), free(stage);
  free(idx), free(t_read), free(t_aug), free(t_tot);
  msc_batch_free(b);
  msc_dataset_free(ds);
  msc_options_free(o);
  if (!user_dir) rm_rf(dir);
  return 0;
}
