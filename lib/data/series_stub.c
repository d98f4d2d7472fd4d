/* TEMPORARY STUB — not committed */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common/internal.h"
#include "data/npy.h"
#include "data/series.h"
msc_status msci_date_days(int64_t ymd, int64_t *days) {
  int64_t y = ymd / 10000, m = ymd / 100 % 100, d = ymd % 100;
  if (y < 1900 || m < 1 || m > 12 || d < 1 || d > 31) return msci_fail(MSC_E_BAD_FORMAT, "bad date %lld", (long long)ymd);
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  *days = era * 146097 + doe - 719468;
  return MSC_OK;
}
int32_t msci_days_doy(int64_t days) { (void)days; return 1; }
void msci_series_grid(double first, double last, int64_t L, double *grid) {
  for (int64_t l = 0; l < L; ++l) grid[l] = L == 1 ? first : first + (last - first) * l / (L - 1);
}
msc_status msci_series_resample(const float *x, int64_t T, int64_t P, const double *days,
                                const double *grid, int64_t L, float *out) {
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t l = 0; l < L; ++l) {
      double g = grid[l]; int64_t a = -1, b = -1;
      for (int64_t t = 0; t < T; ++t) if (isfinite(x[t*P+p])) { if (days[t] <= g) a = t; if (days[t] >= g && b < 0) b = t; }
      float v;
      if (a < 0 && b < 0) v = NAN; else if (a < 0) v = x[b*P+p]; else if (b < 0) v = x[a*P+p];
      else if (a == b) v = x[a*P+p]; else { double w = (g - days[a]) / (days[b] - days[a]); v = (float)(x[a*P+p] * (1-w) + x[b*P+p]*w); }
      out[l*P+p] = v;
    }
  }
  return MSC_OK;
}
void msci_series_pad(const float *x, int64_t T, int64_t P, int64_t L, float *out, uint8_t *mask) {
  for (int64_t l = 0; l < L; ++l) { for (int64_t p = 0; p < P; ++p) out[l*P+p] = l < T ? x[l*P+p] : NAN; if (mask) mask[l] = l < T; }
}
struct msci_npy_file { msci_npy *n; int32_t nd; int64_t dims[32]; };
msc_status msci_npy_file_open(const char *path, msci_npy_file **out) {
  msci_npy_file *f = calloc(1, sizeof *f);
  msc_status st = msci_npy_open(path, &f->n);
  if (st) { free(f); return st; }
  msci_npy_shape(f->n, &f->nd, f->dims); *out = f; return MSC_OK;
}
void msci_npy_file_close(msci_npy_file *f) { if (f) { msci_npy_close(f->n); free(f);} }
int32_t msci_npy_file_ndim(const msci_npy_file *f) { return f->nd; }
const int64_t *msci_npy_file_dims(const msci_npy_file *f) { return f->dims; }
int32_t msci_npy_file_dtype(const msci_npy_file *f) { return msci_npy_dtype(f->n); }
size_t msci_npy_file_box_scratch(const msci_npy_file *f, const int64_t *cnt) { (void)f; (void)cnt; return 0; }
msc_status msci_npy_file_read_box(const msci_npy_file *f, const int64_t *lo, const int64_t *cnt,
                                  float *out, void *scratch, size_t scratch_size) {
  (void)scratch; (void)scratch_size;
  size_t n = msci_npy_count(f->n); float *all = malloc(n * sizeof *all);
  msci_npy_read_f32(f->n, all, n);
  int nd = f->nd; int64_t idx[32] = {0}; size_t total = 1; for (int d = 0; d < nd; ++d) total *= cnt[d];
  for (size_t i = 0; i < total; ++i) {
    size_t r = i; for (int d = nd - 1; d >= 0; --d) { idx[d] = r % cnt[d]; r /= cnt[d]; }
    size_t off = 0; for (int d = 0; d < nd; ++d) off = off * f->dims[d] + lo[d] + idx[d];
    out[i] = all[off];
  }
  free(all); return MSC_OK;
}
