/*
 * bench_rplot.c — per-pixel recurrence plots of a PASTIS-like series (lib/data/sits.h,
 * docs/pimc.md): indices NDVI, EVI, SAVI of each pixel's T dates, then one T × T plot per
 * index, resized to S × S.
 *
 *   bench_rplot [--pixels 2048] [--iters 5] [--binary 0] [--percentile 20]
 *
 * The series is T × 10 × 64 × 64 (pseudo-random digital numbers in [0, 5000), 5 % of
 * dates NaN); the pixels are the first --pixels of the patch in row-major order. For
 * T = 48 and 61, S = T and 64, 1 and 2 threads, prints one JSON line with the median time
 * of iters calls (after one warm-up call; scratch given, so no allocation in the call) in
 * ms and the rate in pixels per second. --binary 1 makes binary plots with ε the
 * --percentile of each plot's distances.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_util.h"
#include "data/sits.h"
#include "mosaic/mosaic.h"

enum { C = 10, H = 64, W = 64 };

int main(int argc, char **argv) {
  int64_t n = atoll(bench_arg(argc, argv, "--pixels", "2048"));
  int iters = atoi(bench_arg(argc, argv, "--iters", "5"));
  int binary = atoi(bench_arg(argc, argv, "--binary", "0"));
  double pct = atof(bench_arg(argc, argv, "--percentile", "20"));
  if (n < 1 || n > H * W || iters < 1 || iters > 1000 || pct < 0 || pct > 100) {
    fprintf(stderr, "bench_rplot: bad --pixels (1..%d), --iters or --percentile\n", H * W);
    return 2;
  }
  int64_t *yx = malloc((size_t)(2 * n) * sizeof(int64_t));
  double *ms = malloc((size_t)iters * sizeof(double));
  if (!yx || !ms) return 1;
  for (int64_t i = 0; i < n; ++i) yx[2 * i] = i / W, yx[2 * i + 1] = i % W;
  msci_vi_bands b = msci_vi_bands_pastis();
  const int64_t ts[2] = {48, 61};
  for (int ti = 0; ti < 2; ++ti) {
    const int64_t t = ts[ti];
    float *x = malloc((size_t)(t * C * H * W) * sizeof(float));
    if (!x) return 1;
    bench_fill(x, t * C * H * W, 0.f, 5000.f, 21u + (uint32_t)t);
    for (int64_t i = 0; i < t * C * H * W; i += 20) x[i] = NAN;
    const int64_t sizes[2] = {t, 64};
    for (int si = 0; si < 2; ++si) {
      msci_rp_cfg cfg = msci_rp_cfg_default();
      cfg.size = sizes[si];
      cfg.binary = binary != 0, cfg.eps_is_percentile = 1, cfg.eps = pct;
      const int64_t s = sizes[si];
      size_t per = msci_rp_scratch_floats(t, &cfg);
      float *scratch = malloc(2 * per * sizeof(float));
      float *out = malloc((size_t)(n * 3 * s * s) * sizeof(float));
      if (!scratch || !out) return 1;
      for (int threads = 1; threads <= 2; ++threads) {
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        CHECK(msci_rp_pixels(x, t, C, H, W, &b, &cfg, yx, n, out, NULL, scratch, 2 * per));
        for (int i = 0; i < iters; ++i) {
          double t0 = bench_now();
          CHECK(msci_rp_pixels(x, t, C, H, W, &b, &cfg, yx, n, out, NULL, scratch, 2 * per));
          ms[i] = 1e3 * (bench_now() - t0);
        }
        double med = bench_median(ms, iters);
        printf("{\"workload\":\"rplot\",\"t\":%lld,\"s\":%lld,\"channels\":3,\"binary\":%d,"
               "\"pixels\":%lld,\"threads\":%d,\"iters\":%d,\"median_ms\":%.3f,"
               "\"pixels_per_s\":%.0f}\n",
               (long long)t, (long long)s, binary != 0, (long long)n, threads, iters, med,
               (double)n / (med * 1e-3));
        fflush(stdout);
      }
      free(scratch), free(out);
    }
    free(x);
  }
  free(yx), free(ms);
  return 0;
}
