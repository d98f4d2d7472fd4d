/*
 * sits.c — vegetation indices and recurrence plots of satellite image time series
 * (sits.h; docs/pimc.md). Indices are computed in double and rounded to float once;
 * the distances of a plot are float (|x_i − x_j| of the float series).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "common/internal.h"
#include "data/sits.h"

msci_vi_bands msci_vi_bands_pastis(void) {
  msci_vi_bands b = {
      .b2 = 0, .b3 = 1, .b4 = 2, .b8 = 6, .b12 = 9, .scale = 10000.0, .offset = 0};
  return b;
}

const char *msci_vi_name(msci_vi kind) {
  switch (kind) {
  case MSCI_VI_NDVI: return "ndvi";
  case MSCI_VI_EVI: return "evi";
  case MSCI_VI_SAVI: return "savi";
  case MSCI_VI_NDWI: return "ndwi";
  case MSCI_VI_NBR: return "nbr";
  default: return "?";
  }
}

double msci_vi_value(msci_vi kind, double r2, double r3, double r4, double r8, double r12) {
  double num, den;
  switch (kind) {
  case MSCI_VI_NDVI: num = r8 - r4, den = r8 + r4; break;
  case MSCI_VI_EVI: num = 2.5 * (r8 - r4), den = r8 + 6.0 * r4 - 7.5 * r2 + 1.0; break;
  case MSCI_VI_SAVI: num = 1.5 * (r8 - r4), den = r8 + r4 + 0.5; break;
  case MSCI_VI_NDWI: num = r3 - r8, den = r3 + r8; break;
  case MSCI_VI_NBR: num = r8 - r12, den = r8 + r12; break;
  default: return NAN;
  }
  /* A NaN or infinite band makes num or den NaN or infinite (bands an index does not use
   * never enter it). */
  if (!isfinite(num) || !isfinite(den) || fabs(den) < MSCI_VI_DEN_MIN) return NAN;
  return num / den;
}

/* The bands index kind needs, as channels: checks each is in [0, c). */
static msc_status vi_check_bands(msci_vi kind, const msci_vi_bands *b, int64_t c,
                                 const char *who) {
  if ((int)kind < 0 || kind >= MSCI_VI_COUNT)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: unknown index %d", who, (int)kind);
  if (!(b->scale > 0) || !isfinite(b->scale) || !isfinite(b->offset))
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: scale %g must be finite and > 0, offset %g finite", who, b->scale,
                     b->offset);
  struct {
    const char *name;
    int32_t ch;
    int used;
  } need[5] = {
      {"B2", b->b2, kind == MSCI_VI_EVI},
      {"B3", b->b3, kind == MSCI_VI_NDWI},
      {"B4", b->b4, kind == MSCI_VI_NDVI || kind == MSCI_VI_EVI || kind == MSCI_VI_SAVI},
      {"B8", b->b8, 1},
      {"B12", b->b12, kind == MSCI_VI_NBR},
  };
  for (int i = 0; i < 5; ++i)
    if (need[i].used && (need[i].ch < 0 || need[i].ch >= c))
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s needs %s, at channel %d of %lld", who,
                       msci_vi_name(kind), need[i].name, (int)need[i].ch, (long long)c);
  return MSC_OK;
}

/* Channel ch of a band table entry that kind does not use may be -1: read 0 instead. */
static inline double refl(const float *px, int32_t ch, int64_t stride, const msci_vi_bands *b) {
  return ch < 0 ? 0.0 : ((double)px[(int64_t)ch * stride] + b->offset) / b->scale;
}

/* The index of the pixel whose first band value is px (bands stride floats apart), as a
 * float: NaN when invalid or beyond float's range. */
static inline float vi_pixel(msci_vi kind, const msci_vi_bands *b, const float *px,
                             int64_t stride) {
  double r2 = kind == MSCI_VI_EVI ? refl(px, b->b2, stride, b) : 0.0;
  double r3 = kind == MSCI_VI_NDWI ? refl(px, b->b3, stride, b) : 0.0;
  double r4 = kind <= MSCI_VI_SAVI ? refl(px, b->b4, stride, b) : 0.0;
  double r8 = refl(px, b->b8, stride, b);
  double r12 = kind == MSCI_VI_NBR ? refl(px, b->b12, stride, b) : 0.0;
  float v = (float)msci_vi_value(kind, r2, r3, r4, r8, r12);
  return isfinite(v) ? v : NAN;
}

msc_status msci_vi_compute(msci_vi kind, const msci_vi_bands *b, const float *x, int64_t t,
                           int64_t c, int64_t hw, float *out, uint8_t *valid) {
  if (!b || !x || !out) return msci_fail(MSC_E_INVALID_ARGUMENT, "vi_compute: NULL argument");
  if (t < 1 || c < 1 || hw < 1 || t > INT64_MAX / c || t * c > INT64_MAX / hw)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "vi_compute: bad shape %lld x %lld x %lld",
                     (long long)t, (long long)c, (long long)hw);
  MSCI_TRY(vi_check_bands(kind, b, c, "vi_compute"));
  for (int64_t d = 0; d < t; ++d)
    for (int64_t p = 0; p < hw; ++p) {
      float v = vi_pixel(kind, b, x + d * c * hw + p, hw);
      out[d * hw + p] = v;
      if (valid) valid[d * hw + p] = isfinite(v) ? 1 : 0;
    }
  return MSC_OK;
}

/* The k-th smallest of v[0..m-1] (Hoare partitioning, median-of-three pivot). On return
 * v[0..k-1] <= v[k] <= v[k+1..m-1]. */
static float select_kth(float *v, int64_t m, int64_t k) {
  int64_t lo = 0, hi = m - 1;
  while (hi > lo) {
    int64_t mid = lo + (hi - lo) / 2;
    float a = v[lo], b = v[mid], c = v[hi];
    float piv = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (v[i] < piv) ++i;
      while (v[j] > piv) --j;
      if (i <= j) {
        float tmp = v[i];
        v[i] = v[j], v[j] = tmp;
        ++i, --j;
      }
    }
    if (k <= j)
      hi = j;
    else if (k >= i)
      lo = i;
    else
      return v[k];
  }
  return v[k];
}

double msci_percentile_linear(float *v, int64_t m, double p) {
  if (!v || m < 1) return NAN;
  double h = (double)(m - 1) * p / 100.0;
  if (h < 0) h = 0;
  if (h > (double)(m - 1)) h = (double)(m - 1);
  int64_t k = (int64_t)floor(h);
  double lo = select_kth(v, m, k);
  if (k + 1 >= m || h == (double)k) return lo;
  float hi = v[k + 1];
  for (int64_t i = k + 2; i < m; ++i)
    if (v[i] < hi) hi = v[i];
  return lo + (h - (double)k) * ((double)hi - lo);
}

int64_t msci_series_fill(float *x, int64_t t, const double *days) {
  if (!x || t < 1) return 0;
  int64_t nfin = 0;
  for (int64_t i = 0; i < t; ++i) nfin += isfinite(x[i]) ? 1 : 0;
  if (nfin == 0 || nfin == t) return nfin;
  int64_t a = -1; /* last finite date before i */
  for (int64_t i = 0; i < t;) {
    if (isfinite(x[i])) {
      a = i++;
      continue;
    }
    int64_t e = i; /* the gap is i..e-1; e is the next finite date or t */
    while (e < t && !isfinite(x[e])) ++e;
    for (int64_t g = i; g < e; ++g) {
      if (a < 0)
        x[g] = x[e];
      else if (e >= t)
        x[g] = x[a];
      else {
        double da = days ? days[a] : (double)a, de = days ? days[e] : (double)e;
        double dg = days ? days[g] : (double)g;
        double w = (dg - da) / (de - da);
        x[g] = (float)((double)x[a] + w * ((double)x[e] - (double)x[a]));
      }
    }
    i = e;
  }
  return nfin;
}

msci_rp_cfg msci_rp_cfg_default(void) {
  msci_rp_cfg c;
  memset(&c, 0, sizeof c);
  c.channels = 3;
  c.index[0] = MSCI_VI_NDVI, c.index[1] = MSCI_VI_EVI, c.index[2] = MSCI_VI_SAVI;
  c.index[3] = MSCI_VI_NDWI, c.index[4] = MSCI_VI_NBR;
  return c;
}

static msc_status rp_cfg_check(int64_t t, const msci_rp_cfg *cfg, const char *who) {
  if (t < 1 || t > MSCI_RP_MAX_T)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %lld dates, expected 1..%d", who,
                     (long long)t, MSCI_RP_MAX_T);
  if (cfg->channels < 1 || cfg->channels > MSCI_VI_COUNT)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %d channels, expected 1..%d", who,
                     (int)cfg->channels, MSCI_VI_COUNT);
  for (int k = 0; k < cfg->channels; ++k)
    if (cfg->index[k] < 0 || cfg->index[k] >= MSCI_VI_COUNT)
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: channel %d has unknown index %d", who, k,
                       (int)cfg->index[k]);
  if (cfg->binary != 0 && cfg->binary != 1)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: binary is %d, expected 0 or 1", who,
                     (int)cfg->binary);
  if (cfg->binary) {
    if (cfg->eps_is_percentile ? !(cfg->eps >= 0 && cfg->eps <= 100)
                               : !(cfg->eps >= 0 && isfinite(cfg->eps)))
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: eps %g, expected %s", who, cfg->eps,
                       cfg->eps_is_percentile ? "a percentile in [0, 100]" : "finite and >= 0");
  }
  if (cfg->size < 0 || cfg->size > MSCI_RP_MAX_S)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: size %lld, expected 0..%d", who,
                     (long long)cfg->size, MSCI_RP_MAX_S);
  if (cfg->days)
    for (int64_t i = 0; i < t; ++i)
      if (!isfinite(cfg->days[i]) || (i > 0 && !(cfg->days[i] > cfg->days[i - 1])))
        return msci_fail(MSC_E_INVALID_ARGUMENT,
                         "%s: days[%lld] = %g is not finite or not after the previous date",
                         who, (long long)i, cfg->days[i]);
  return MSC_OK;
}

/* Scratch layout of one thread: series K×T | plots K×T×T and the resize tables 3·S
 * (only when resized) | distances T(T−1)/2 (only for a percentile ε). */
static size_t scratch_floats(int64_t t, const msci_rp_cfg *cfg) {
  size_t k = (size_t)cfg->channels, tt = (size_t)t;
  size_t s = cfg->size ? (size_t)cfg->size : tt;
  size_t n = k * tt;
  if (s != tt) n += k * tt * tt + 3 * s;
  if (cfg->binary && cfg->eps_is_percentile) n += tt * (tt - 1) / 2;
  return n;
}

size_t msci_rp_scratch_floats(int64_t t, const msci_rp_cfg *cfg) {
  if (!cfg || t < 1 || t > MSCI_RP_MAX_T || cfg->channels < 1 ||
      cfg->channels > MSCI_VI_COUNT || cfg->size < 0 || cfg->size > MSCI_RP_MAX_S)
    return 0;
  return scratch_floats(t, cfg);
}

/* Bilinear resampling of a t × t plot to s × s with pixel centres aligned as
 * torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)
 * (msci_resample's rule, lib/data/raster.c): output i reads source coordinate
 * max(0, (i + 0.5)·t/s − 0.5). The same tables serve rows and columns. */
static void resize_tables(int64_t t, int64_t s, int32_t *lo, int32_t *hi, float *wt) {
  for (int64_t i = 0; i < s; ++i) {
    double c = ((double)i + 0.5) * (double)t / (double)s - 0.5;
    if (c < 0) c = 0;
    int64_t a = (int64_t)c;
    lo[i] = (int32_t)a, hi[i] = (int32_t)(a + 1 < t ? a + 1 : a),
    wt[i] = (float)(c - (double)a);
  }
}

static void resize(const float *r, int64_t t, float *o, int64_t s, const int32_t *lo,
                   const int32_t *hi, const float *wt) {
  for (int64_t y = 0; y < s; ++y) {
    const float *ra = r + lo[y] * t, *rb = r + hi[y] * t;
    const float wy = wt[y];
    for (int64_t x = 0; x < s; ++x) {
      float top = ra[lo[x]] + wt[x] * (ra[hi[x]] - ra[lo[x]]);
      float bottom = rb[lo[x]] + wt[x] * (rb[hi[x]] - rb[lo[x]]);
      o[y * s + x] = top + wy * (bottom - top);
    }
  }
}

/* The plots of the K series at the start of scratch (filled in place) into out. */
static void rp_plot(int64_t t, const msci_rp_cfg *cfg, float *out, uint8_t *valid,
                    float *scratch) {
  const int64_t k = cfg->channels, s = cfg->size ? cfg->size : t;
  float *plots = scratch + k * t;
  /* Resize tables: source rows/columns lo[i], hi[i] and weight wt[i] of output i. */
  int32_t *lo = (int32_t *)(plots + k * t * t), *hi = lo + s;
  float *wt = (float *)(hi + s);
  float *dist = plots + (s != t ? k * t * t + 3 * s : 0);
  if (s != t) resize_tables(t, s, lo, hi, wt);
  for (int64_t ch = 0; ch < k; ++ch) {
    float *x = scratch + ch * t, *o = out + ch * s * s;
    if (msci_series_fill(x, t, cfg->days) == 0) {
      memset(o, 0, (size_t)(s * s) * sizeof(float));
      if (valid) valid[ch] = 0;
      continue;
    }
    if (valid) valid[ch] = 1;
    float *r = s != t ? plots + ch * t * t : o;
    if (!cfg->binary) {
      for (int64_t i = 0; i < t; ++i)
        for (int64_t j = 0; j < t; ++j) r[i * t + j] = fabsf(x[i] - x[j]);
    } else {
      double eps = cfg->eps;
      if (cfg->eps_is_percentile) {
        int64_t m = 0;
        for (int64_t i = 0; i < t; ++i)
          for (int64_t j = i + 1; j < t; ++j) dist[m++] = fabsf(x[i] - x[j]);
        eps = m > 0 ? msci_percentile_linear(dist, m, cfg->eps) : 0.0;
      }
      for (int64_t i = 0; i < t; ++i)
        for (int64_t j = 0; j < t; ++j)
          r[i * t + j] = (double)fabsf(x[i] - x[j]) <= eps ? 1.0f : 0.0f;
    }
    if (s != t) resize(r, t, o, s, lo, hi, wt);
  }
}

msc_status msci_rp_series(const float *series, int64_t t, const msci_rp_cfg *cfg, float *out,
                          uint8_t *valid, float *scratch) {
  if (!series || !cfg || !out || !scratch)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "rp_series: NULL argument");
  MSCI_TRY(rp_cfg_check(t, cfg, "rp_series"));
  memcpy(scratch, series, (size_t)(cfg->channels * t) * sizeof(float));
  rp_plot(t, cfg, out, valid, scratch);
  return MSC_OK;
}

msc_status msci_rp_pixels(const float *x, int64_t t, int64_t c, int64_t h, int64_t w,
                          const msci_vi_bands *b, const msci_rp_cfg *cfg, const int64_t *yx,
                          int64_t n, float *out, uint8_t *valid, float *scratch,
                          size_t scratch_cap) {
  if (!x || !b || !cfg || !out || (n > 0 && !yx))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "rp_pixels: NULL argument");
  MSCI_TRY(rp_cfg_check(t, cfg, "rp_pixels"));
  if (c < 1 || h < 1 || w < 1 || n < 0 || c > INT64_MAX / t || t * c > INT64_MAX / h ||
      t * c * h > INT64_MAX / w)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "rp_pixels: bad shape %lld x %lld x %lld x %lld, n %lld", (long long)t,
                     (long long)c, (long long)h, (long long)w, (long long)n);
  for (int k = 0; k < cfg->channels; ++k)
    MSCI_TRY(vi_check_bands((msci_vi)cfg->index[k], b, c, "rp_pixels"));
  for (int64_t i = 0; i < n; ++i)
    if (yx[2 * i] < 0 || yx[2 * i] >= h || yx[2 * i + 1] < 0 || yx[2 * i + 1] >= w)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "rp_pixels: pixel %lld at (%lld, %lld) is outside %lld x %lld",
                       (long long)i, (long long)yx[2 * i], (long long)yx[2 * i + 1],
                       (long long)h, (long long)w);
  const size_t per = scratch_floats(t, cfg);
#ifdef _OPENMP
  int64_t nt = omp_get_max_threads();
#else
  int64_t nt = 1;
#endif
  if (scratch) {
    if (scratch_cap / per < 1)
      return msci_fail(MSC_E_BUFFER_TOO_SMALL,
                       "rp_pixels: scratch of %zu floats, need %zu a thread", scratch_cap, per);
    if ((size_t)nt > scratch_cap / per) nt = (int64_t)(scratch_cap / per);
  }
  if (nt > n) nt = n;
  if (n == 0) return MSC_OK;
  float *own = NULL;
  if (!scratch) {
    own = malloc((size_t)nt * per * sizeof(float));
    if (!own)
      return msci_fail(MSC_E_OUT_OF_MEMORY, "rp_pixels: %zu bytes of scratch",
                       (size_t)nt * per * sizeof(float));
    scratch = own;
  }
  const int64_t k = cfg->channels, s = cfg->size ? cfg->size : t, hw = h * w;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads((int)nt)
#endif
  for (int64_t i = 0; i < n; ++i) {
#ifdef _OPENMP
    float *scr = scratch + (size_t)omp_get_thread_num() * per;
#else
    float *scr = scratch;
#endif
    const float *px = x + yx[2 * i] * w + yx[2 * i + 1];
    for (int64_t ch = 0; ch < k; ++ch)
      for (int64_t d = 0; d < t; ++d)
        scr[ch * t + d] = vi_pixel((msci_vi)cfg->index[ch], b, px + d * c * hw, hw);
    rp_plot(t, cfg, out + i * k * s * s, valid ? valid + i * k : NULL, scr);
  }
  free(own);
  return MSC_OK;
}
