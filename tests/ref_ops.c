/*
 * ref_ops.c — the plain C reference for every backend op (see ref_ops.h).
 *
 * Written for obviousness: one loop nest per formula, sums in double, gradients that
 * several outputs contribute to are scattered into a zeroed double buffer and rounded
 * to float once at the end. These functions define what the backends must compute;
 * they have been checked against central finite differences of themselves.
 */
#include "ref_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* A zeroed double buffer; the tests cannot go on without it. */
static double *dbuf(size_t count) {
  double *p = calloc(count ? count : 1, sizeof *p);
  if (!p) {
    fprintf(stderr, "ref_ops: out of memory (%zu doubles)\n", count);
    abort();
  }
  return p;
}

static void store(size_t count, const double *src, float *dst) {
  for (size_t i = 0; i < count; ++i) dst[i] = (float)src[i];
}

/* ==================================== conv2d ===================================== */

int64_t ref_conv_oh(const ref_conv *p) {
  return (p->h + 2 * p->ph - p->kh) / p->sh + 1;
}
int64_t ref_conv_ow(const ref_conv *p) {
  return (p->w + 2 * p->pw - p->kw) / p->sw + 1;
}

/* Index helpers for NCHW / OIHW. */
#define IX4(a, b, c, d, B, C, D) ((((size_t)(a) * (B) + (b)) * (C) + (c)) * (D) + (d))

/* Groups: input channels per group, and the first input channel output channel oc reads
 * (weights are [OC, C/G, KH, KW]: its input channel k is x's channel first + k). */
static int64_t conv_cg(const ref_conv *p, int64_t g) {
  return p->c / g;
}
static int64_t conv_first(const ref_conv *p, int64_t g, int64_t oc) {
  return oc / (p->oc / g) * conv_cg(p, g);
}

void ref_conv2d_fwd(const ref_conv *p, const float *x, const float *w, const float *b,
                    float *y) {
  ref_gconv2d_fwd(p, 1, x, w, b, y);
}

void ref_gconv2d_fwd(const ref_conv *p, int64_t g, const float *x, const float *w,
                     const float *b, float *y) {
  const int64_t oh_n = ref_conv_oh(p), ow_n = ref_conv_ow(p);
  for (int64_t n = 0; n < p->n; ++n)
    for (int64_t oc = 0; oc < p->oc; ++oc)
      for (int64_t oh = 0; oh < oh_n; ++oh)
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          double s = b ? (double)b[oc] : 0.0;
          for (int64_t k = 0; k < conv_cg(p, g); ++k)
            for (int64_t i = 0; i < p->kh; ++i)
              for (int64_t j = 0; j < p->kw; ++j) {
                const int64_t ih = oh * p->sh - p->ph + i;
                const int64_t iw = ow * p->sw - p->pw + j;
                if (ih < 0 || ih >= p->h || iw < 0 || iw >= p->w) continue; /* zero pad */
                s += (double)x[IX4(n, conv_first(p, g, oc) + k, ih, iw, p->c, p->h, p->w)] *
                     (double)w[IX4(oc, k, i, j, conv_cg(p, g), p->kh, p->kw)];
              }
          y[IX4(n, oc, oh, ow, p->oc, oh_n, ow_n)] = (float)s;
        }
}

void ref_conv2d_bwd_data(const ref_conv *p, const float *w, const float *dy, float *dx) {
  ref_gconv2d_bwd_data(p, 1, w, dy, dx);
}

void ref_gconv2d_bwd_data(const ref_conv *p, int64_t g, const float *w, const float *dy,
                          float *dx) {
  const int64_t oh_n = ref_conv_oh(p), ow_n = ref_conv_ow(p);
  const size_t nx = (size_t)(p->n * p->c * p->h * p->w);
  double *acc = dbuf(nx);
  /* Every (output, kernel tap) pair that read x[ih,iw] sends dy * w back to it. */
  for (int64_t n = 0; n < p->n; ++n)
    for (int64_t oc = 0; oc < p->oc; ++oc)
      for (int64_t oh = 0; oh < oh_n; ++oh)
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          const double gy = dy[IX4(n, oc, oh, ow, p->oc, oh_n, ow_n)];
          for (int64_t k = 0; k < conv_cg(p, g); ++k)
            for (int64_t i = 0; i < p->kh; ++i)
              for (int64_t j = 0; j < p->kw; ++j) {
                const int64_t ih = oh * p->sh - p->ph + i;
                const int64_t iw = ow * p->sw - p->pw + j;
                if (ih < 0 || ih >= p->h || iw < 0 || iw >= p->w) continue;
                acc[IX4(n, conv_first(p, g, oc) + k, ih, iw, p->c, p->h, p->w)] +=
                    gy * (double)w[IX4(oc, k, i, j, conv_cg(p, g), p->kh, p->kw)];
              }
        }
  store(nx, acc, dx);
  free(acc);
}

void ref_conv2d_bwd_weights(const ref_conv *p, const float *x, const float *dy, float *dw) {
  ref_gconv2d_bwd_weights(p, 1, x, dy, dw);
}

void ref_gconv2d_bwd_weights(const ref_conv *p, int64_t g, const float *x, const float *dy,
                             float *dw) {
  const int64_t oh_n = ref_conv_oh(p), ow_n = ref_conv_ow(p);
  for (int64_t oc = 0; oc < p->oc; ++oc)
    for (int64_t k = 0; k < conv_cg(p, g); ++k)
      for (int64_t i = 0; i < p->kh; ++i)
        for (int64_t j = 0; j < p->kw; ++j) {
          double s = 0.0;
          for (int64_t n = 0; n < p->n; ++n)
            for (int64_t oh = 0; oh < oh_n; ++oh)
              for (int64_t ow = 0; ow < ow_n; ++ow) {
                const int64_t ih = oh * p->sh - p->ph + i;
                const int64_t iw = ow * p->sw - p->pw + j;
                if (ih < 0 || ih >= p->h || iw < 0 || iw >= p->w) continue;
                s += (double)dy[IX4(n, oc, oh, ow, p->oc, oh_n, ow_n)] *
                     (double)x[IX4(n, conv_first(p, g, oc) + k, ih, iw, p->c, p->h, p->w)];
              }
          dw[IX4(oc, k, i, j, conv_cg(p, g), p->kh, p->kw)] = (float)s;
        }
}

void ref_conv2d_bwd_bias(const ref_conv *p, const float *dy, float *db) {
  const int64_t oh_n = ref_conv_oh(p), ow_n = ref_conv_ow(p);
  for (int64_t oc = 0; oc < p->oc; ++oc) {
    double s = 0.0;
    for (int64_t n = 0; n < p->n; ++n)
      for (int64_t oh = 0; oh < oh_n; ++oh)
        for (int64_t ow = 0; ow < ow_n; ++ow)
          s += (double)dy[IX4(n, oc, oh, ow, p->oc, oh_n, ow_n)];
    db[oc] = (float)s;
  }
}

/* ================================== batch norm =================================== */

#define IX3(n, c, s, C, S) (((size_t)(n) * (C) + (c)) * (S) + (s))

/* Batch mean and biased variance of channel ch, in double (two passes). */
static void bn_stats(int64_t n, int64_t c, int64_t hw, const float *x, int64_t ch, double *mean,
                     double *var) {
  const double count = (double)(n * hw);
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < hw; ++k) s += x[IX3(i, ch, k, c, hw)];
  const double m = s / count;
  double v = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < hw; ++k) {
      const double d = x[IX3(i, ch, k, c, hw)] - m;
      v += d * d;
    }
  *mean = m;
  *var = v / count;
}

void ref_bn_fwd_train(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                      const float *beta, float eps, int relu, float *y, float *mean,
                      float *var) {
  for (int64_t ch = 0; ch < c; ++ch) {
    double m, v;
    bn_stats(n, c, hw, x, ch, &m, &v);
    const double inv = 1.0 / sqrt(v + (double)eps);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) {
        const size_t at = IX3(i, ch, k, c, hw);
        double z = (double)gamma[ch] * (x[at] - m) * inv + (double)beta[ch];
        if (relu && z < 0.0) z = 0.0;
        y[at] = (float)z;
      }
    if (mean) mean[ch] = (float)m;
    if (var) var[ch] = (float)v;
  }
}

void ref_bn_update_running(int64_t c, int64_t count, float momentum, const float *mean,
                           const float *var, float *running_mean, float *running_var) {
  const double m = momentum;
  for (int64_t ch = 0; ch < c; ++ch) {
    const double unbiased = (double)var[ch] * (double)count / (double)(count - 1);
    running_mean[ch] = (float)((1.0 - m) * running_mean[ch] + m * mean[ch]);
    running_var[ch] = (float)((1.0 - m) * running_var[ch] + m * unbiased);
  }
}

void ref_bn_fwd_infer(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                      const float *beta, const float *running_mean, const float *running_var,
                      float eps, int relu, float *y) {
  for (int64_t ch = 0; ch < c; ++ch) {
    const double inv = 1.0 / sqrt((double)running_var[ch] + (double)eps);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) {
        const size_t at = IX3(i, ch, k, c, hw);
        double z =
            (double)gamma[ch] * ((double)x[at] - running_mean[ch]) * inv + (double)beta[ch];
        if (relu && z < 0.0) z = 0.0;
        y[at] = (float)z;
      }
  }
}

/*
 * With xhat = (x - mean) / sqrt(var + eps), y = gamma xhat + beta and M = N*HW values
 * per channel, and g = dy (masked by y > 0 with relu):
 *   dbeta  = sum g
 *   dgamma = sum g xhat
 *   dx     = gamma / sqrt(var + eps) * (g - dbeta / M - xhat * dgamma / M)
 */
void ref_bn_bwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                const float *beta, const float *dy, float eps, int relu, float *dx,
                float *dgamma, float *dbeta) {
  const double count = (double)(n * hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    double m, v;
    bn_stats(n, c, hw, x, ch, &m, &v);
    const double inv = 1.0 / sqrt(v + (double)eps);
    double sg = 0.0, sgx = 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) {
        const size_t at = IX3(i, ch, k, c, hw);
        const double xhat = (x[at] - m) * inv;
        double g = dy[at];
        if (relu && !((double)gamma[ch] * xhat + (double)beta[ch] > 0.0)) g = 0.0;
        sg += g;
        sgx += g * xhat;
      }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) {
        const size_t at = IX3(i, ch, k, c, hw);
        const double xhat = (x[at] - m) * inv;
        double g = dy[at];
        if (relu && !((double)gamma[ch] * xhat + (double)beta[ch] > 0.0)) g = 0.0;
        if (dx)
          dx[at] = (float)((double)gamma[ch] * inv * (g - sg / count - xhat * sgx / count));
      }
    if (dgamma) dgamma[ch] = (float)sgx;
    if (dbeta) dbeta[ch] = (float)sg;
  }
}

/* ===================================== relu ====================================== */

void ref_relu_fwd(size_t count, const float *x, float *y) {
  for (size_t i = 0; i < count; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void ref_relu_bwd(size_t count, const float *x, const float *dy, float *dx) {
  for (size_t i = 0; i < count; ++i) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

/* =================================== max pool ==================================== */

int64_t ref_pool_oh(const ref_pool *p) {
  return (p->h + 2 * p->ph - p->kh) / p->sh + 1;
}
int64_t ref_pool_ow(const ref_pool *p) {
  return (p->w + 2 * p->pw - p->kw) / p->sw + 1;
}

/* Flat index in x of the max of window (n, c, oh, ow), or -1 if it has no element. */
static int64_t pool_argmax(const ref_pool *p, const float *x, int64_t n, int64_t c, int64_t oh,
                           int64_t ow) {
  int64_t best = -1;
  for (int64_t i = 0; i < p->kh; ++i)
    for (int64_t j = 0; j < p->kw; ++j) {
      const int64_t ih = oh * p->sh - p->ph + i;
      const int64_t iw = ow * p->sw - p->pw + j;
      if (ih < 0 || ih >= p->h || iw < 0 || iw >= p->w) continue; /* padding never wins */
      const int64_t at = (int64_t)IX4(n, c, ih, iw, p->c, p->h, p->w);
      if (best < 0 || x[at] > x[best]) best = at; /* strict: first one wins ties */
    }
  return best;
}

void ref_maxpool_fwd(const ref_pool *p, const float *x, float *y) {
  const int64_t oh_n = ref_pool_oh(p), ow_n = ref_pool_ow(p);
  for (int64_t n = 0; n < p->n; ++n)
    for (int64_t c = 0; c < p->c; ++c)
      for (int64_t oh = 0; oh < oh_n; ++oh)
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          const int64_t at = pool_argmax(p, x, n, c, oh, ow);
          y[IX4(n, c, oh, ow, p->c, oh_n, ow_n)] = at < 0 ? 0.0f : x[at];
        }
}

void ref_maxpool_bwd(const ref_pool *p, const float *x, const float *dy, float *dx) {
  const int64_t oh_n = ref_pool_oh(p), ow_n = ref_pool_ow(p);
  const size_t nx = (size_t)(p->n * p->c * p->h * p->w);
  double *acc = dbuf(nx);
  for (int64_t n = 0; n < p->n; ++n)
    for (int64_t c = 0; c < p->c; ++c)
      for (int64_t oh = 0; oh < oh_n; ++oh)
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          const int64_t at = pool_argmax(p, x, n, c, oh, ow);
          if (at >= 0) acc[at] += dy[IX4(n, c, oh, ow, p->c, oh_n, ow_n)];
        }
  store(nx, acc, dx);
  free(acc);
}

/* ============================== global average pool ============================== */

void ref_gavgpool_fwd(int64_t n, int64_t c, int64_t hw, const float *x, float *y) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      double s = 0.0;
      for (int64_t k = 0; k < hw; ++k) s += x[IX3(i, ch, k, c, hw)];
      y[(size_t)(i * c + ch)] = (float)(s / (double)hw);
    }
}

void ref_gavgpool_bwd(int64_t n, int64_t c, int64_t hw, const float *dy, float *dx) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < hw; ++k)
        dx[IX3(i, ch, k, c, hw)] = (float)((double)dy[(size_t)(i * c + ch)] / (double)hw);
}

/* ==================================== linear ===================================== */

void ref_linear_fwd(int64_t n, int64_t k, int64_t o, const float *x, const float *w,
                    const float *b, float *y) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < o; ++j) {
      double s = b ? (double)b[j] : 0.0;
      for (int64_t q = 0; q < k; ++q)
        s += (double)x[(size_t)(i * k + q)] * (double)w[(size_t)(j * k + q)];
      y[(size_t)(i * o + j)] = (float)s;
    }
}

void ref_linear_bwd(int64_t n, int64_t k, int64_t o, const float *x, const float *w,
                    const float *dy, float *dx, float *dw, float *db) {
  if (dx)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t q = 0; q < k; ++q) {
        double s = 0.0;
        for (int64_t j = 0; j < o; ++j)
          s += (double)dy[(size_t)(i * o + j)] * (double)w[(size_t)(j * k + q)];
        dx[(size_t)(i * k + q)] = (float)s;
      }
  if (dw)
    for (int64_t j = 0; j < o; ++j)
      for (int64_t q = 0; q < k; ++q) {
        double s = 0.0;
        for (int64_t i = 0; i < n; ++i)
          s += (double)dy[(size_t)(i * o + j)] * (double)x[(size_t)(i * k + q)];
        dw[(size_t)(j * k + q)] = (float)s;
      }
  if (db)
    for (int64_t j = 0; j < o; ++j) {
      double s = 0.0;
      for (int64_t i = 0; i < n; ++i) s += (double)dy[(size_t)(i * o + j)];
      db[j] = (float)s;
    }
}

/* ====================================== add ====================================== */

void ref_add_fwd(size_t count, const float *a, const float *b, float *y) {
  for (size_t i = 0; i < count; ++i) y[i] = (float)((double)a[i] + (double)b[i]);
}

void ref_add_bwd(size_t count, const float *dy, float *da, float *db) {
  for (size_t i = 0; i < count; ++i) {
    if (da) da[i] = dy[i];
    if (db) db[i] = dy[i];
  }
}

/* ==================================== concat ===================================== */

void ref_concat_fwd(int64_t n, int64_t inner, int32_t count, const int64_t *cs,
                    const float *const *xs, float *y) {
  int64_t total = 0;
  for (int32_t t = 0; t < count; ++t) total += cs[t];
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int32_t t = 0; t < count; ++t) {
      for (int64_t ch = 0; ch < cs[t]; ++ch)
        for (int64_t k = 0; k < inner; ++k)
          y[IX3(i, off + ch, k, total, inner)] = xs[t][IX3(i, ch, k, cs[t], inner)];
      off += cs[t];
    }
  }
}

void ref_concat_bwd(int64_t n, int64_t inner, int32_t count, const int64_t *cs, const float *dy,
                    float *const *dxs) {
  int64_t total = 0;
  for (int32_t t = 0; t < count; ++t) total += cs[t];
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int32_t t = 0; t < count; ++t) {
      if (dxs[t])
        for (int64_t ch = 0; ch < cs[t]; ++ch)
          for (int64_t k = 0; k < inner; ++k)
            dxs[t][IX3(i, ch, k, cs[t], inner)] = dy[IX3(i, off + ch, k, total, inner)];
      off += cs[t];
    }
  }
}

/* =================================== upsample ==================================== */

/* The source taps of output index i along one axis of n inputs and `out` outputs: i0, i1
 * and the weight l of i1 (1 - l of i0), in double. Nearest: i0 = i1 = floor(i·n/out)
 * (exact, in integers), l = 0. */
static void upsample_taps(int64_t i, int64_t n, int64_t out, int bilinear, int64_t *i0,
                          int64_t *i1, double *l) {
  if (!bilinear) {
    *i0 = *i1 = i * n / out;
    *l = 0.0;
    return;
  }
  double src = ((double)i + 0.5) * (double)n / (double)out - 0.5;
  if (src < 0.0) src = 0.0;
  *i0 = (int64_t)floor(src);
  if (*i0 > n - 1) *i0 = n - 1;
  *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
  *l = src - (double)*i0;
}

void ref_upsample_fwd(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh_n, int64_t ow_n,
                      int bilinear, const float *x, float *y) {
  for (int64_t p = 0; p < n * c; ++p)
    for (int64_t i = 0; i < oh_n; ++i)
      for (int64_t j = 0; j < ow_n; ++j) {
        int64_t a0, a1, b0, b1;
        double la, lb;
        upsample_taps(i, h, oh_n, bilinear, &a0, &a1, &la);
        upsample_taps(j, w, ow_n, bilinear, &b0, &b1, &lb);
        const float *xp = x + (size_t)(p * h * w);
        const double v = (1 - la) * ((1 - lb) * xp[a0 * w + b0] + lb * xp[a0 * w + b1]) +
                         la * ((1 - lb) * xp[a1 * w + b0] + lb * xp[a1 * w + b1]);
        y[(size_t)((p * oh_n + i) * ow_n + j)] = (float)v;
      }
}

void ref_upsample_bwd(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh_n, int64_t ow_n,
                      int bilinear, const float *dy, float *dx) {
  const size_t nx = (size_t)(n * c * h * w);
  double *acc = dbuf(nx);
  for (int64_t p = 0; p < n * c; ++p)
    for (int64_t i = 0; i < oh_n; ++i)
      for (int64_t j = 0; j < ow_n; ++j) {
        int64_t a0, a1, b0, b1;
        double la, lb;
        upsample_taps(i, h, oh_n, bilinear, &a0, &a1, &la);
        upsample_taps(j, w, ow_n, bilinear, &b0, &b1, &lb);
        const double g = dy[(size_t)((p * oh_n + i) * ow_n + j)];
        double *ap = acc + (size_t)(p * h * w);
        ap[a0 * w + b0] += g * (1 - la) * (1 - lb);
        ap[a0 * w + b1] += g * (1 - la) * lb;
        ap[a1 * w + b0] += g * la * (1 - lb);
        ap[a1 * w + b1] += g * la * lb;
      }
  store(nx, acc, dx);
  free(acc);
}

/* ================================ transposed conv ================================ */

int64_t ref_deconv_oh(const ref_deconv *p) {
  return (p->h - 1) * p->sh - 2 * p->ph + p->kh + p->oph;
}
int64_t ref_deconv_ow(const ref_deconv *p) {
  return (p->w - 1) * p->sw - 2 * p->pw + p->kw + p->opw;
}

/* PyTorch's definition, a scatter: every input pixel stamps its kernel onto the output. */
void ref_deconv2d_fwd(const ref_deconv *p, const float *x, const float *w, const float *b,
                      float *y) {
  const int64_t oh_n = ref_deconv_oh(p), ow_n = ref_deconv_ow(p);
  const size_t ny = (size_t)(p->n * p->oc * oh_n * ow_n);
  double *acc = dbuf(ny);
  for (int64_t n = 0; n < p->n; ++n)
    for (int64_t c = 0; c < p->c; ++c)
      for (int64_t i = 0; i < p->h; ++i)
        for (int64_t j = 0; j < p->w; ++j) {
          const double v = x[IX4(n, c, i, j, p->c, p->h, p->w)];
          for (int64_t o = 0; o < p->oc; ++o)
            for (int64_t a = 0; a < p->kh; ++a)
              for (int64_t bb = 0; bb < p->kw; ++bb) {
                const int64_t oh = i * p->sh - p->ph + a, ow = j * p->sw - p->pw + bb;
                if (oh < 0 || oh >= oh_n || ow < 0 || ow >= ow_n) continue; /* cropped */
                acc[IX4(n, o, oh, ow, p->oc, oh_n, ow_n)] +=
                    v * (double)w[IX4(c, o, a, bb, p->oc, p->kh, p->kw)];
              }
        }
  if (b)
    for (size_t k = 0; k < ny; ++k)
      acc[k] += (double)b[(k / (size_t)(oh_n * ow_n)) % (size_t)p->oc];
  store(ny, acc, y);
  free(acc);
}

/* A gather (a plain convolution of dy), unlike the forward's scatter. */
void ref_deconv2d_bwd_data(const ref_deconv *p, const float *w, const float *dy, float *dx) {
  const int64_t oh_n = ref_deconv_oh(p), ow_n = ref_deconv_ow(p);
  for (int64_t n = 0; n < p->n; ++n)
    for (int64_t c = 0; c < p->c; ++c)
      for (int64_t i = 0; i < p->h; ++i)
        for (int64_t j = 0; j < p->w; ++j) {
          double s = 0.0;
          for (int64_t o = 0; o < p->oc; ++o)
            for (int64_t a = 0; a < p->kh; ++a)
              for (int64_t bb = 0; bb < p->kw; ++bb) {
                const int64_t oh = i * p->sh - p->ph + a, ow = j * p->sw - p->pw + bb;
                if (oh < 0 || oh >= oh_n || ow < 0 || ow >= ow_n) continue;
                s += (double)dy[IX4(n, o, oh, ow, p->oc, oh_n, ow_n)] *
                     (double)w[IX4(c, o, a, bb, p->oc, p->kh, p->kw)];
              }
          dx[IX4(n, c, i, j, p->c, p->h, p->w)] = (float)s;
        }
}

void ref_deconv2d_bwd_weights(const ref_deconv *p, const float *x, const float *dy, float *dw) {
  const int64_t oh_n = ref_deconv_oh(p), ow_n = ref_deconv_ow(p);
  for (int64_t c = 0; c < p->c; ++c)
    for (int64_t o = 0; o < p->oc; ++o)
      for (int64_t a = 0; a < p->kh; ++a)
        for (int64_t bb = 0; bb < p->kw; ++bb) {
          double s = 0.0;
          for (int64_t n = 0; n < p->n; ++n)
            for (int64_t i = 0; i < p->h; ++i)
              for (int64_t j = 0; j < p->w; ++j) {
                const int64_t oh = i * p->sh - p->ph + a, ow = j * p->sw - p->pw + bb;
                if (oh < 0 || oh >= oh_n || ow < 0 || ow >= ow_n) continue;
                s += (double)x[IX4(n, c, i, j, p->c, p->h, p->w)] *
                     (double)dy[IX4(n, o, oh, ow, p->oc, oh_n, ow_n)];
              }
          dw[IX4(c, o, a, bb, p->oc, p->kh, p->kw)] = (float)s;
        }
}

void ref_deconv2d_bwd_bias(const ref_deconv *p, const float *dy, float *db) {
  const int64_t plane = ref_deconv_oh(p) * ref_deconv_ow(p);
  for (int64_t o = 0; o < p->oc; ++o) {
    double s = 0.0;
    for (int64_t n = 0; n < p->n; ++n)
      for (int64_t k = 0; k < plane; ++k)
        s += (double)dy[(size_t)((n * p->oc + o) * plane + k)];
    db[o] = (float)s;
  }
}

/* ================================== layer norm =================================== */

/* Mean and biased variance over the channels at (i, position k), two passes in double. */
static void ln_stats(int64_t c, int64_t hw, const float *x, int64_t i, int64_t k, double *mean,
                     double *var) {
  double s = 0.0, v = 0.0;
  for (int64_t ch = 0; ch < c; ++ch) s += x[IX3(i, ch, k, c, hw)];
  const double m = s / (double)c;
  for (int64_t ch = 0; ch < c; ++ch) {
    const double d = x[IX3(i, ch, k, c, hw)] - m;
    v += d * d;
  }
  *mean = m;
  *var = v / (double)c;
}

void ref_layernorm_fwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                       const float *beta, float eps, float *y) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < hw; ++k) {
      double m, v;
      ln_stats(c, hw, x, i, k, &m, &v);
      const double rs = 1.0 / sqrt(v + (double)eps);
      for (int64_t ch = 0; ch < c; ++ch) {
        const size_t j = IX3(i, ch, k, c, hw);
        y[j] = (float)(((double)x[j] - m) * rs * gamma[ch] + beta[ch]);
      }
    }
}

void ref_layernorm_bwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                       const float *dy, float eps, float *dx, float *dgamma, float *dbeta) {
  double *dg = dbuf((size_t)c), *db = dbuf((size_t)c);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < hw; ++k) {
      double m, v;
      ln_stats(c, hw, x, i, k, &m, &v);
      const double rs = 1.0 / sqrt(v + (double)eps);
      /* y = gamma·xhat + beta; dL/dxhat = dy·gamma; xhat's Jacobian over the channels. */
      double sum_g = 0.0, sum_gx = 0.0;
      for (int64_t ch = 0; ch < c; ++ch) {
        const size_t j = IX3(i, ch, k, c, hw);
        const double xhat = ((double)x[j] - m) * rs, g = (double)dy[j] * gamma[ch];
        sum_g += g;
        sum_gx += g * xhat;
        dg[ch] += (double)dy[j] * xhat;
        db[ch] += dy[j];
      }
      for (int64_t ch = 0; dx && ch < c; ++ch) {
        const size_t j = IX3(i, ch, k, c, hw);
        const double xhat = ((double)x[j] - m) * rs, g = (double)dy[j] * gamma[ch];
        dx[j] = (float)(rs * (g - sum_g / (double)c - xhat * sum_gx / (double)c));
      }
    }
  if (dgamma) store((size_t)c, dg, dgamma);
  if (dbeta) store((size_t)c, db, dbeta);
  free(dg);
  free(db);
}

/* ===================================== GELU ====================================== */

void ref_gelu_fwd(size_t count, const float *x, float *y) {
  for (size_t i = 0; i < count; ++i) {
    const double v = x[i];
    y[i] = (float)(0.5 * v * (1.0 + erf(v / sqrt(2.0))));
  }
}

void ref_gelu_bwd(size_t count, const float *x, const float *dy, float *dx) {
  const double inv_sqrt_2pi = 0.39894228040143267794;
  for (size_t i = 0; i < count; ++i) {
    const double v = x[i];
    const double cdf = 0.5 * (1.0 + erf(v / sqrt(2.0))), pdf = inv_sqrt_2pi * exp(-0.5 * v * v);
    dx[i] = (float)((double)dy[i] * (cdf + v * pdf));
  }
}

/* ====================================== GRN ====================================== */

/* G[i,ch] = the L2 norm of x[i,ch,:] into g (n·c doubles). */
static void grn_norms(int64_t n, int64_t c, int64_t hw, const float *x, double *g) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      double s = 0.0;
      for (int64_t k = 0; k < hw; ++k)
        s += (double)x[IX3(i, ch, k, c, hw)] * x[IX3(i, ch, k, c, hw)];
      g[i * c + ch] = sqrt(s);
    }
}

void ref_grn_fwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                 const float *beta, float eps, float *y) {
  double *g = dbuf((size_t)(n * c));
  grn_norms(n, c, hw, x, g);
  for (int64_t i = 0; i < n; ++i) {
    double mean = 0.0;
    for (int64_t ch = 0; ch < c; ++ch) mean += g[i * c + ch];
    mean /= (double)c;
    for (int64_t ch = 0; ch < c; ++ch) {
      const double nx = g[i * c + ch] / (mean + (double)eps);
      for (int64_t k = 0; k < hw; ++k) {
        const size_t j = IX3(i, ch, k, c, hw);
        y[j] = (float)(gamma[ch] * (double)x[j] * nx + beta[ch] + (double)x[j]);
      }
    }
  }
  free(g);
}

void ref_grn_bwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                 const float *dy, float eps, float *dx, float *dgamma, float *dbeta) {
  double *g = dbuf((size_t)(n * c)), *dg = dbuf((size_t)c), *db = dbuf((size_t)c);
  double *dl_dn = dbuf((size_t)c), *dl_dg = dbuf((size_t)c);
  grn_norms(n, c, hw, x, g);
  for (int64_t i = 0; i < n; ++i) {
    double mean = 0.0;
    for (int64_t ch = 0; ch < c; ++ch) mean += g[i * c + ch];
    mean /= (double)c;
    const double d = mean + (double)eps;
    /* dL/dNx[ch] = gamma Σ_k dy·x; Nx[ch] = G[ch] / d with d = mean_c G + eps, so
     * dL/dG[m] = dL/dNx[m] / d - Σ_ch dL/dNx[ch] G[ch] / (c d²). */
    double cross = 0.0;
    for (int64_t ch = 0; ch < c; ++ch) {
      double s = 0.0;
      for (int64_t k = 0; k < hw; ++k) {
        const size_t j = IX3(i, ch, k, c, hw);
        s += (double)dy[j] * x[j];
        db[ch] += dy[j];
      }
      dg[ch] += s * g[i * c + ch] / d;
      dl_dn[ch] = gamma[ch] * s;
      cross += dl_dn[ch] * g[i * c + ch];
    }
    for (int64_t ch = 0; ch < c; ++ch) dl_dg[ch] = dl_dn[ch] / d - cross / ((double)c * d * d);
    for (int64_t ch = 0; dx && ch < c; ++ch) {
      const double gn = g[i * c + ch], nx = gn / d;
      for (int64_t k = 0; k < hw; ++k) {
        const size_t j = IX3(i, ch, k, c, hw);
        const double via = gn > 0.0 ? dl_dg[ch] * (double)x[j] / gn : 0.0;
        dx[j] = (float)((double)dy[j] * (1.0 + gamma[ch] * nx) + via);
      }
    }
  }
  if (dgamma) store((size_t)c, dg, dgamma);
  if (dbeta) store((size_t)c, db, dbeta);
  free(g), free(dg), free(db), free(dl_dn), free(dl_dg);
}

/* ---- ATTN ------------------------------------------------------------------------------- */

/* Gathers head h of sample i into row-major token matrices: Q [lq × dh], K and V
 * [lk × dh] with the sources' tokens one after the other. */
static void attn_gather(int64_t i, int64_t h, int64_t c, int64_t dh, int64_t lq,
                        int32_t sources, const int64_t *len, const float *q,
                        const float *const *k, const float *const *v, double *Q, double *K,
                        double *V) {
  for (int64_t t = 0; t < lq; ++t)
    for (int64_t e = 0; e < dh; ++e) Q[t * dh + e] = q[(i * c + h * dh + e) * lq + t];
  int64_t row = 0;
  for (int32_t j = 0; j < sources; ++j)
    for (int64_t t = 0; t < len[j]; ++t, ++row)
      for (int64_t e = 0; e < dh; ++e) {
        K[row * dh + e] = k[j][(i * c + h * dh + e) * len[j] + t];
        V[row * dh + e] = v[j][(i * c + h * dh + e) * len[j] + t];
      }
}

/* P = row softmax(Q Kᵀ · scale), [lq × lk]. */
static void attn_weights(int64_t lq, int64_t lk, int64_t dh, double scale, const double *Q,
                         const double *K, double *P) {
  for (int64_t a = 0; a < lq; ++a) {
    double mx = -INFINITY, z = 0.0;
    for (int64_t b = 0; b < lk; ++b) {
      double s = 0.0;
      for (int64_t e = 0; e < dh; ++e) s += Q[a * dh + e] * K[b * dh + e];
      P[a * lk + b] = s * scale;
      mx = fmax(mx, P[a * lk + b]);
    }
    for (int64_t b = 0; b < lk; ++b) z += P[a * lk + b] = exp(P[a * lk + b] - mx);
    for (int64_t b = 0; b < lk; ++b) P[a * lk + b] /= z;
  }
}

void ref_attn_fwd(int64_t n, int64_t c, int64_t lq, int64_t heads, int32_t sources,
                  const int64_t *len, const float *q, const float *const *k,
                  const float *const *v, float *y) {
  const int64_t dh = c / heads;
  int64_t lk = 0;
  for (int32_t j = 0; j < sources; ++j) lk += len[j];
  double *Q = dbuf((size_t)(lq * dh)), *K = dbuf((size_t)(lk * dh)),
         *V = dbuf((size_t)(lk * dh));
  double *P = dbuf((size_t)(lq * lk));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < heads; ++h) {
      attn_gather(i, h, c, dh, lq, sources, len, q, k, v, Q, K, V);
      attn_weights(lq, lk, dh, 1.0 / sqrt((double)dh), Q, K, P);
      for (int64_t a = 0; a < lq; ++a)
        for (int64_t e = 0; e < dh; ++e) {
          double s = 0.0;
          for (int64_t b = 0; b < lk; ++b) s += P[a * lk + b] * V[b * dh + e];
          y[(i * c + h * dh + e) * lq + a] = (float)s;
        }
    }
  free(Q), free(K), free(V), free(P);
}

void ref_attn_bwd(int64_t n, int64_t c, int64_t lq, int64_t heads, int32_t sources,
                  const int64_t *len, const float *q, const float *const *k,
                  const float *const *v, const float *dy, float *dq, float *const *dk,
                  float *const *dv) {
  const int64_t dh = c / heads;
  const double scale = 1.0 / sqrt((double)dh);
  int64_t lk = 0;
  for (int32_t j = 0; j < sources; ++j) lk += len[j];
  double *Q = dbuf((size_t)(lq * dh)), *K = dbuf((size_t)(lk * dh)),
         *V = dbuf((size_t)(lk * dh));
  double *P = dbuf((size_t)(lq * lk)), *dP = dbuf((size_t)(lq * lk));
  double *dY = dbuf((size_t)(lq * dh)), *dQ = dbuf((size_t)(lq * dh));
  double *dK = dbuf((size_t)(lk * dh)), *dV = dbuf((size_t)(lk * dh));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < heads; ++h) {
      attn_gather(i, h, c, dh, lq, sources, len, q, k, v, Q, K, V);
      attn_weights(lq, lk, dh, scale, Q, K, P);
      for (int64_t t = 0; t < lq; ++t)
        for (int64_t e = 0; e < dh; ++e) dY[t * dh + e] = dy[(i * c + h * dh + e) * lq + t];
      for (int64_t b = 0; b < lk; ++b) /* dV = Pᵀ dY */
        for (int64_t e = 0; e < dh; ++e) {
          double s = 0.0;
          for (int64_t a = 0; a < lq; ++a) s += P[a * lk + b] * dY[a * dh + e];
          dV[b * dh + e] = s;
        }
      for (int64_t a = 0; a < lq; ++a) { /* dP = dY Vᵀ, then dS in place */
        double rs = 0.0;
        for (int64_t b = 0; b < lk; ++b) {
          double s = 0.0;
          for (int64_t e = 0; e < dh; ++e) s += dY[a * dh + e] * V[b * dh + e];
          dP[a * lk + b] = s;
          rs += P[a * lk + b] * s;
        }
        for (int64_t b = 0; b < lk; ++b) dP[a * lk + b] = P[a * lk + b] * (dP[a * lk + b] - rs);
      }
      for (int64_t a = 0; a < lq; ++a) /* dQ = dS K · scale */
        for (int64_t e = 0; e < dh; ++e) {
          double s = 0.0;
          for (int64_t b = 0; b < lk; ++b) s += dP[a * lk + b] * K[b * dh + e];
          dQ[a * dh + e] = s * scale;
        }
      for (int64_t b = 0; b < lk; ++b) /* dK = dSᵀ Q · scale */
        for (int64_t e = 0; e < dh; ++e) {
          double s = 0.0;
          for (int64_t a = 0; a < lq; ++a) s += dP[a * lk + b] * Q[a * dh + e];
          dK[b * dh + e] = s * scale;
        }
      if (dq)
        for (int64_t t = 0; t < lq; ++t)
          for (int64_t e = 0; e < dh; ++e)
            dq[(i * c + h * dh + e) * lq + t] = (float)dQ[t * dh + e];
      int64_t row = 0;
      for (int32_t j = 0; j < sources; ++j)
        for (int64_t t = 0; t < len[j]; ++t, ++row)
          for (int64_t e = 0; e < dh; ++e) {
            const int64_t o = (i * c + h * dh + e) * len[j] + t;
            if (dk && dk[j]) dk[j][o] = (float)dK[row * dh + e];
            if (dv && dv[j]) dv[j][o] = (float)dV[row * dh + e];
          }
    }
  free(Q), free(K), free(V), free(P), free(dP), free(dY), free(dQ), free(dK), free(dV);
}
