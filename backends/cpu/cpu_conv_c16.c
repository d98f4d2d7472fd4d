/*
 * cpu_conv_c16.c — the project's own float32 kernels for the convolutions of the `tiny`
 * encoder's second stage, 16 output channels each: the 3×3 stride-2 one from 8 channels,
 * the 1×1 stride-2 shortcut from 8 channels, and the 3×3 stride-1 one from 16 (padding
 * k/2, ungrouped). oneDNN 2.6 runs them at a quarter to a third of this machine's AVX-512
 * peak, converting between the 8- and 16-channel layouts around them
 * (docs/performance.md, "Stage-2 kernels of our own").
 *
 * AVX-512 only: each output pixel's 16 channels are one 16-float vector, a block of 24
 * pixels of a row is one accumulator each, and each input value is broadcast (from
 * memory) into the multiply-adds of the pixels that use it, against one vector of
 * weights [ky][kx][ic][oc]. Where the CPU has AVX2 only, oneDNN's AVX2 kernels, which
 * are what it would run anyway, stay (cpu_conv.c). Layouts: x and y in the 8- or 16-channel
 * blocked one in training (aBcd8b, aBcd16b: as the neighbouring ops and the 8-channel
 * kernels, cpu_conv_k8.c, have them), NHWC in the fused inference forward; for 8 and 16
 * channels both are the same bytes, [n][h][w][c].
 *
 * Backward-data of the stride-1 layer is the forward over dy with the weights flipped and
 * their channel axes swapped. That of the stride-2 ones, whose dx has 8 channels, takes
 * dx's pixels by the parity of their column (the kernel columns that reach an even
 * column are not those of an odd one); a 16-float vector holds dx's 8 channels twice,
 * for even and odd output channels, whose two values of dy are broadcast as one 64-bit
 * element, and the halves are added when stored. Backward-weights sums x·dy over each
 * row: the 3·IC (or IC) input values under a kernel row are contiguous, each an
 * accumulator of 16 output channels, 24 at a time. Each thread takes its own rows; the
 * threads' sums are added in thread order (the same result at every call for a thread
 * count).
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_weighted.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define C16_BUILT 1
#include <immintrin.h>
#include <omp.h>
#else
#define C16_BUILT 0
#endif

enum {
  C16_C = 16,               /* output channels */
  C16_W = 9 * 16 * C16_C,   /* the largest weights, 16 → 16 3×3 */
  C16_PART = C16_W + C16_C, /* backward-weights' scratch per thread: dW, db */
  C16_P = 24,               /* output pixels per block (accumulator registers) */
  C16_J = 24                /* backward-weights' accumulators of input values */
};

/* The shapes taken: input channels, kernel size, stride (padding kernel / 2). */
static const struct { int ic, k, s; } C16_SHAPES[] = {{8, 3, 2}, {8, 1, 2}, {16, 3, 1}};

/* What the forward does after the sum: + bias, + the residual res (y's layout, NULL:
 * none), then ReLU if relu. */
typedef struct c16_epi {
  const float *bias, *res;
  int relu;
} c16_epi;

/* One sample's geometry: x [h][w][ic], y [oh][ow][16]. */
typedef struct c16_geo {
  int64_t h, w, oh, ow;
} c16_geo;

typedef void (*c16_row_fn)(const float *x, const c16_geo *g, const float *wp, const c16_epi *e,
                           float *y, int64_t oy);
typedef void (*c16_grad_row_fn)(const float *x, const float *dy, const c16_geo *g, int64_t oy,
                                float *part, float *dbp);

struct cpu_c16 {
  int ic, k, s;
  c16_row_fn row;    /* the forward of this shape */
  c16_row_fn dx_row; /* backward-data (over dx's rows) */
  c16_grad_row_fn grad_row;
  float wp[C16_W]; /* the forward's packed weights [ky][kx][ic][oc] */
  float wb[C16_W]; /* backward-data's (c16_pack) */
  cpu_own_io io;   /* conversions, backward-weights' scratch (threads × C16_PART floats) */
};

static int c16_shape(const cpu_weighted *op) {
  const mbk_op_desc *d = &op->base.desc;
  for (int i = 0; i < (int)(sizeof C16_SHAPES / sizeof C16_SHAPES[0]); ++i)
    if (op->x_dims[1] == C16_SHAPES[i].ic && d->u.conv.kh == C16_SHAPES[i].k &&
        d->u.conv.kw == C16_SHAPES[i].k && d->u.conv.sh == C16_SHAPES[i].s &&
        d->u.conv.sw == C16_SHAPES[i].s && d->u.conv.ph == C16_SHAPES[i].k / 2 &&
        d->u.conv.pw == C16_SHAPES[i].k / 2)
      return i;
  return -1;
}

int cpu_c16_fits(const cpu_weighted *op) {
  if (op->x_ndim != 4 || op->y_dims[1] != C16_C || op->w_groups != 1) return 0;
  if (c16_shape(op) < 0) return 0;
  if (op->q || cpu_op_dt(op->base.ctx) != dnnl_f32) return 0;
  return cpu_own_kernels_isa() == 2;
}

#if C16_BUILT

#define C16_ATTR __attribute__((target("avx512f,avx512vl,fma")))
#define C16_INL  C16_ATTR static inline __attribute__((always_inline))
/* The loops over a block's accumulators are unrolled so that they stay in registers (GCC
 * keeps 24 of them in memory otherwise, and the kernels run at half speed). */
#define C16_UNROLL _Pragma("GCC unroll 24")

/* Stores v (one pixel's 16 outputs) at y + o after the epilogue (res at the same o). */
C16_INL void c16_store(float *y, int64_t o, __m512 v, const c16_epi *e) {
  if (e->res) v = _mm512_add_ps(v, _mm512_loadu_ps(e->res + o));
  if (e->relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
  _mm512_storeu_ps(y + o, v);
}

/* Accumulator chains per pixel in a block of P: a multiply-add waits for the one before
 * on its accumulator (4 cycles here, 2 issued a cycle), so a block of fewer than 8
 * pixels splits each pixel's sum over 8 / P accumulators, added at the end. */
#define C16_CHAINS(P) ((P) >= 8 ? 1 : 8 / (P))

/* P output pixels ox .. ox+P-1 of row oy whose K×K neighbourhoods lie inside the row
 * (kernel rows above and below the image add nothing). */
C16_INL void c16_block(const float *x, const int IC, const int K, const int S, const c16_geo *g,
                       const float *wp, __m512 b, const c16_epi *e, float *y, int64_t oy,
                       int64_t ox, const int P) {
  const int A = C16_CHAINS(P);
  __m512 acc[C16_P];
  C16_UNROLL
  for (int p = 0; p < A * P; ++p) acc[p] = p < P ? b : _mm512_setzero_ps();
  for (int ky = 0; ky < K; ++ky) {
    const int64_t iy = S * oy - K / 2 + ky;
    if (iy < 0 || iy >= g->h) continue;
    const float *xr = x + (iy * g->w + S * ox - K / 2) * IC;
    for (int kx = 0; kx < K; ++kx) {
      const float *xp = xr + kx * IC, *wk = wp + (ky * K + kx) * IC * C16_C;
      for (int ic0 = 0; ic0 < IC; ic0 += A) {
        C16_UNROLL
        for (int a = 0; a < A; ++a) {
          const __m512 wv = _mm512_loadu_ps(wk + (ic0 + a) * C16_C);
          C16_UNROLL
          for (int p = 0; p < P; ++p)
            acc[a * P + p] =
                _mm512_fmadd_ps(_mm512_set1_ps(xp[p * S * IC + ic0 + a]), wv, acc[a * P + p]);
        }
      }
    }
  }
  C16_UNROLL
  for (int p = P; p < A * P; ++p) acc[p % P] = _mm512_add_ps(acc[p % P], acc[p]);
  C16_UNROLL
  for (int p = 0; p < P; ++p) c16_store(y, (oy * g->ow + ox + p) * C16_C, acc[p], e);
}

/* One output pixel with every tap checked (near the row's ends), in 8 chains. */
C16_INL void c16_pixel(const float *x, const int IC, const int K, const int S, const c16_geo *g,
                       const float *wp, __m512 b, const c16_epi *e, float *y, int64_t oy,
                       int64_t ox) {
  __m512 acc[8];
  C16_UNROLL
  for (int a = 0; a < 8; ++a) acc[a] = a == 0 ? b : _mm512_setzero_ps();
  for (int ky = 0; ky < K; ++ky) {
    const int64_t iy = S * oy - K / 2 + ky;
    if (iy < 0 || iy >= g->h) continue;
    for (int kx = 0; kx < K; ++kx) {
      const int64_t ix = S * ox - K / 2 + kx;
      if (ix < 0 || ix >= g->w) continue;
      const float *xp = x + (iy * g->w + ix) * IC, *wk = wp + (ky * K + kx) * IC * C16_C;
      for (int ic0 = 0; ic0 < IC; ic0 += 8) {
        C16_UNROLL
        for (int a = 0; a < 8; ++a)
          acc[a] = _mm512_fmadd_ps(_mm512_set1_ps(xp[ic0 + a]),
                                   _mm512_loadu_ps(wk + (ic0 + a) * C16_C), acc[a]);
      }
    }
  }
  C16_UNROLL
  for (int a = 1; a < 8; ++a) acc[0] = _mm512_add_ps(acc[0], acc[a]);
  c16_store(y, (oy * g->ow + ox) * C16_C, acc[0], e);
}

/* The output columns [*lo, *hi) whose K taps all lie inside a row of w pixels. */
static inline void c16_inside(int64_t w, int64_t ow, int K, int S, int64_t *lo, int64_t *hi) {
  *lo = (K / 2 + S - 1) / S;
  *hi = w - K + K / 2 >= 0 ? (w - K + K / 2) / S + 1 : 0;
  if (*hi > ow) *hi = ow;
  if (*hi < *lo) *hi = *lo;
  if (*lo > ow) *lo = *hi = ow;
}

C16_INL void c16_row_as(const float *x, const int IC, const int K, const int S,
                        const c16_geo *g, const float *wp, const c16_epi *e, float *y,
                        int64_t oy) {
  const __m512 b = e->bias ? _mm512_loadu_ps(e->bias) : _mm512_setzero_ps();
  int64_t lo, hi;
  c16_inside(g->w, g->ow, K, S, &lo, &hi);
  for (int64_t ox = 0; ox < lo; ++ox) c16_pixel(x, IC, K, S, g, wp, b, e, y, oy, ox);
  for (int64_t ox = hi; ox < g->ow; ++ox) c16_pixel(x, IC, K, S, g, wp, b, e, y, oy, ox);
  int64_t ox = lo;
  for (; ox + C16_P <= hi; ox += C16_P) c16_block(x, IC, K, S, g, wp, b, e, y, oy, ox, C16_P);
  for (int sz = 16; sz >= 1; sz /= 2) /* the rest, in blocks of 16, 8, 4, 2 and 1 */
    if (hi - ox >= sz) {
      switch (sz) {
      case 16: c16_block(x, IC, K, S, g, wp, b, e, y, oy, ox, 16); break;
      case 8: c16_block(x, IC, K, S, g, wp, b, e, y, oy, ox, 8); break;
      case 4: c16_block(x, IC, K, S, g, wp, b, e, y, oy, ox, 4); break;
      case 2: c16_block(x, IC, K, S, g, wp, b, e, y, oy, ox, 2); break;
      default: c16_block(x, IC, K, S, g, wp, b, e, y, oy, ox, 1); break;
      }
      ox += sz;
    }
}

C16_ATTR static void c16_row_8k3s2(const float *x, const c16_geo *g, const float *wp,
                                   const c16_epi *e, float *y, int64_t oy) {
  c16_row_as(x, 8, 3, 2, g, wp, e, y, oy);
}
C16_ATTR static void c16_row_8k1s2(const float *x, const c16_geo *g, const float *wp,
                                   const c16_epi *e, float *y, int64_t oy) {
  c16_row_as(x, 8, 1, 2, g, wp, e, y, oy);
}
C16_ATTR static void c16_row_16k3s1(const float *x, const c16_geo *g, const float *wp,
                                    const c16_epi *e, float *y, int64_t oy) {
  c16_row_as(x, 16, 3, 1, g, wp, e, y, oy);
}

/* Backward-data of a stride-2 layer, 8 input channels: dx [h][w][8] from dy [oh][ow][16]
 * and wb [ky][kx][pair][ic][2] (lane 2·ic + t of pair q: W[2q + t][ic][ky][kx]). Column
 * ix = 2m + par of dx row iy takes kernel row ky where iy + K/2 − ky is even (dy row
 * half of it) and kernel column kx where par + K/2 − kx is even (dy column m + d,
 * d = (par + K/2 − kx) / 2). */
typedef struct c16_taps {
  int n_y, n_x;
  int ky[3], kx[3];
  int64_t oy[3], d[3];
} c16_taps;

C16_INL __m256 c16_fold(__m512 acc) {
  const __m512i even = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512 s = _mm512_add_ps(acc, _mm512_permute_ps(acc, 0xB1));
  return _mm512_castps512_ps256(_mm512_permutexvar_ps(even, s));
}

/* P columns 2m + par .. of dx row dxr whose dy columns m + d all lie inside dy's row;
 * check: test each (a column near the row's end). */
C16_INL void c16_dx_block(const float *dy, const int K, const c16_geo *g, const float *wb,
                          const c16_taps *t, float *dxr, int par, int64_t m, const int P,
                          const int check) {
  const int A = C16_CHAINS(P); /* (c16_block) */
  __m512 acc[C16_P];
  C16_UNROLL
  for (int p = 0; p < A * P; ++p) acc[p] = _mm512_setzero_ps();
  for (int i = 0; i < t->n_y; ++i) {
    const float *dyr = dy + t->oy[i] * g->ow * C16_C;
    for (int j = 0; j < t->n_x; ++j) {
      if (check && (m + t->d[j] >= g->ow)) continue;
      const float *dp = dyr + (m + t->d[j]) * C16_C, *wk = wb + (t->ky[i] * K + t->kx[j]) * 128;
      for (int q0 = 0; q0 < 8; q0 += A) {
        C16_UNROLL
        for (int a = 0; a < A; ++a) {
          const __m512 wv = _mm512_loadu_ps(wk + (q0 + a) * 16);
          C16_UNROLL
          for (int p = 0; p < P; ++p) {
            double pair;
            memcpy(&pair, dp + p * C16_C + 2 * (q0 + a), sizeof pair);
            acc[a * P + p] =
                _mm512_fmadd_ps(_mm512_castpd_ps(_mm512_set1_pd(pair)), wv, acc[a * P + p]);
          }
        }
      }
    }
  }
  C16_UNROLL
  for (int p = P; p < A * P; ++p) acc[p % P] = _mm512_add_ps(acc[p % P], acc[p]);
  C16_UNROLL
  for (int p = 0; p < P; ++p) _mm256_storeu_ps(dxr + (2 * (m + p) + par) * 8, c16_fold(acc[p]));
}

C16_INL void c16_dx_row_as(const float *dy, const int K, const c16_geo *g, const float *wb,
                           float *dx, int64_t iy) {
  float *dxr = dx + iy * g->w * 8;
  c16_taps t = {0};
  for (int ky = 0; ky < K; ++ky) {
    const int64_t r = iy + K / 2 - ky;
    if (r >= 0 && r % 2 == 0 && r / 2 < g->oh) t.ky[t.n_y] = ky, t.oy[t.n_y++] = r / 2;
  }
  for (int par = 0; par < 2; ++par) {
    t.n_x = 0;
    int64_t dmax = 0;
    for (int kx = 0; kx < K; ++kx)
      if ((par + K / 2 - kx) % 2 == 0) {
        t.kx[t.n_x] = kx;
        t.d[t.n_x] = (par + K / 2 - kx) / 2; /* 0 or 1 for these shapes */
        if (t.d[t.n_x] > dmax) dmax = t.d[t.n_x];
        t.n_x++;
      }
    const int64_t cols = (g->w - par + 1) / 2; /* columns 2m + par of the row */
    int64_t inside = g->ow - dmax < cols ? g->ow - dmax : cols;
    if (inside < 0) inside = 0;
    int64_t m = 0;
    for (; m + C16_P <= inside; m += C16_P)
      c16_dx_block(dy, K, g, wb, &t, dxr, par, m, C16_P, 0);
    for (int sz = 16; sz >= 1; sz /= 2)
      if (inside - m >= sz) {
        switch (sz) {
        case 16: c16_dx_block(dy, K, g, wb, &t, dxr, par, m, 16, 0); break;
        case 8: c16_dx_block(dy, K, g, wb, &t, dxr, par, m, 8, 0); break;
        case 4: c16_dx_block(dy, K, g, wb, &t, dxr, par, m, 4, 0); break;
        case 2: c16_dx_block(dy, K, g, wb, &t, dxr, par, m, 2, 0); break;
        default: c16_dx_block(dy, K, g, wb, &t, dxr, par, m, 1, 0); break;
        }
        m += sz;
      }
    for (; m < cols; ++m) c16_dx_block(dy, K, g, wb, &t, dxr, par, m, 1, 1);
  }
}

C16_ATTR static void c16_dx_row_k3s2(const float *dy, const c16_geo *g, const float *wb,
                                     const c16_epi *e, float *dx, int64_t iy) {
  (void)e;
  c16_dx_row_as(dy, 3, g, wb, dx, iy);
}
C16_ATTR static void c16_dx_row_k1s2(const float *dy, const c16_geo *g, const float *wb,
                                     const c16_epi *e, float *dx, int64_t iy) {
  (void)e;
  c16_dx_row_as(dy, 1, g, wb, dx, iy);
}
/* Backward-data of the stride-1 16 → 16 layer: its forward over dy (as dx's geometry). */
C16_ATTR static void c16_dx_row_16k3s1(const float *dy, const c16_geo *g, const float *wb,
                                       const c16_epi *e, float *dx, int64_t iy) {
  const c16_geo gt = {g->oh, g->ow, g->h, g->w};
  c16_row_as(dy, 16, 3, 1, &gt, wb, e, dx, iy);
}

/* Adds row oy's share of dW to part ([ky][kx][ic][oc]) and of db to dbp (if not NULL). */
C16_INL void c16_grad_row_as(const float *x, const int IC, const int K, const int S,
                             const float *dy, const c16_geo *g, int64_t oy, float *part,
                             float *dbp) {
  const float *dyr = dy + oy * g->ow * C16_C;
  int64_t lo, hi;
  c16_inside(g->w, g->ow, K, S, &lo, &hi);
  for (int ky = 0; ky < K; ++ky) {
    const int64_t iy = S * oy - K / 2 + ky;
    if (iy < 0 || iy >= g->h) continue;
    const float *xr = x + iy * g->w * IC;
    float *pk = part + ky * K * IC * C16_C;
    for (int j0 = 0; j0 < K * IC; j0 += C16_J) {
      const int J = K * IC - j0 < C16_J ? K * IC - j0 : C16_J;
      __m512 acc[C16_J];
      C16_UNROLL
      for (int j = 0; j < J; ++j) acc[j] = _mm512_setzero_ps();
      for (int64_t ox = lo; ox < hi; ++ox) {
        const __m512 d = _mm512_loadu_ps(dyr + ox * C16_C);
        const float *xp = xr + (S * ox - K / 2) * IC + j0;
        C16_UNROLL
        for (int j = 0; j < J; ++j) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(xp[j]), d, acc[j]);
      }
      C16_UNROLL
      for (int j = 0; j < J; ++j) {
        float *q = pk + (j0 + j) * C16_C;
        _mm512_storeu_ps(q, _mm512_add_ps(_mm512_loadu_ps(q), acc[j]));
      }
    }
    for (int64_t ox = 0; ox < g->ow; ++ox) { /* the columns near the row's ends */
      if (ox >= lo && ox < hi) {
        ox = hi - 1;
        continue;
      }
      const __m512 d = _mm512_loadu_ps(dyr + ox * C16_C);
      for (int kx = 0; kx < K; ++kx) {
        const int64_t ix = S * ox - K / 2 + kx;
        if (ix < 0 || ix >= g->w) continue;
        for (int ic = 0; ic < IC; ++ic) {
          float *q = pk + (kx * IC + ic) * C16_C;
          _mm512_storeu_ps(
              q, _mm512_fmadd_ps(_mm512_set1_ps(xr[ix * IC + ic]), d, _mm512_loadu_ps(q)));
        }
      }
    }
  }
  if (dbp) {
    __m512 s = _mm512_setzero_ps();
    for (int64_t ox = 0; ox < g->ow; ++ox)
      s = _mm512_add_ps(s, _mm512_loadu_ps(dyr + ox * C16_C));
    _mm512_storeu_ps(dbp, _mm512_add_ps(_mm512_loadu_ps(dbp), s));
  }
}

C16_ATTR static void c16_grad_row_8k3s2(const float *x, const float *dy, const c16_geo *g,
                                        int64_t oy, float *part, float *dbp) {
  c16_grad_row_as(x, 8, 3, 2, dy, g, oy, part, dbp);
}
C16_ATTR static void c16_grad_row_8k1s2(const float *x, const float *dy, const c16_geo *g,
                                        int64_t oy, float *part, float *dbp) {
  c16_grad_row_as(x, 8, 1, 2, dy, g, oy, part, dbp);
}
C16_ATTR static void c16_grad_row_16k3s1(const float *x, const float *dy, const c16_geo *g,
                                         int64_t oy, float *part, float *dbp) {
  c16_grad_row_as(x, 16, 3, 1, dy, g, oy, part, dbp);
}

/* rows rows of y (n samples of g->oh each, planes of xplane and yplane floats) by row. */
static void c16_rows(c16_row_fn row, const float *x, int64_t n, const c16_geo *g,
                     int64_t xplane, int64_t yplane, const float *wp, const c16_epi *e,
                     float *y, int64_t oh) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n * oh; ++r) {
    const int64_t s = r / oh;
    const c16_epi es = {e->bias, e->res ? e->res + s * yplane : NULL, e->relu};
    row(x + s * xplane, g, wp, &es, y + s * yplane, r % oh);
  }
}

/* dw (OIHW, plain) and db (if not NULL) of x and dy over n samples; part: threads ×
 * C16_PART floats of scratch. Each thread sums a contiguous range of rows. */
static void c16_grad(const cpu_c16 *k, const float *x, const float *dy, int64_t n,
                     const c16_geo *g, float *part, int threads, float *dw, float *db) {
  const int64_t rows = n * g->oh, xplane = k->ic * g->h * g->w, yplane = g->oh * g->ow * C16_C;
  memset(part, 0, (size_t)threads * C16_PART * sizeof *part);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
    float *pt = part + (int64_t)t * C16_PART;
    for (int64_t r = r0; r < r1; ++r)
      k->grad_row(x + (r / g->oh) * xplane, dy + (r / g->oh) * yplane, g, r % g->oh, pt,
                  db ? pt + C16_W : NULL);
  }
  for (int t = 1; t < threads; ++t)
    for (int64_t i = 0; i < C16_PART; ++i) part[i] += part[(int64_t)t * C16_PART + i];
  const int kk = k->k * k->k;
  for (int oc = 0; oc < C16_C; ++oc)
    for (int ic = 0; ic < k->ic; ++ic)
      for (int j = 0; j < kk; ++j)
        dw[(oc * k->ic + ic) * kk + j] = part[(j * k->ic + ic) * C16_C + oc];
  if (db) memcpy(db, part + C16_W, C16_C * sizeof *db);
}

/* The weights w (OIHW) as the forward wants them (wp, [ky][kx][ic][oc]) and as
 * backward-data does (wb): stride 1, the taps flipped and the channel axes swapped
 * ([ky][kx][oc][ic]); stride 2, [ky][kx][pair][ic][2] (c16_dx_block). */
static void c16_pack(cpu_c16 *k, const float *w) {
  const int kk = k->k * k->k;
  for (int oc = 0; oc < C16_C; ++oc)
    for (int ic = 0; ic < k->ic; ++ic)
      for (int j = 0; j < kk; ++j) {
        const float v = w[(oc * k->ic + ic) * kk + j];
        k->wp[(j * k->ic + ic) * C16_C + oc] = v;
        if (k->s == 1)
          k->wb[((kk - 1 - j) * C16_C + oc) * k->ic + ic] = v;
        else
          k->wb[j * 128 + (oc / 2) * 16 + 2 * ic + oc % 2] = v;
      }
}

/* Training's layout of a tensor of c (8 or 16) channels. */
static dnnl_format_tag_t c16_blocked(int64_t c) {
  return c == 8 ? dnnl_aBcd8b : dnnl_aBcd16b;
}

static c16_geo c16_geometry(const cpu_weighted *op) {
  const c16_geo g = {op->x_dims[2], op->x_dims[3], op->y_dims[2], op->y_dims[3]};
  return g;
}

msc_status cpu_c16_create(cpu_weighted *op) {
  const int i = c16_shape(op);
  if (i < 0) return CPU_FAIL(MSC_E_INTERNAL, "cpu: conv2d: no 16-channel kernel for the shape");
  cpu_c16 *k = calloc(1, sizeof *k);
  if (!k) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: conv2d kernel state");
  k->ic = C16_SHAPES[i].ic;
  k->k = C16_SHAPES[i].k;
  k->s = C16_SHAPES[i].s;
  static const c16_row_fn rows[] = {c16_row_8k3s2, c16_row_8k1s2, c16_row_16k3s1};
  static const c16_row_fn dx_rows[] = {c16_dx_row_k3s2, c16_dx_row_k1s2, c16_dx_row_16k3s1};
  static const c16_grad_row_fn grad_rows[] = {c16_grad_row_8k3s2, c16_grad_row_8k1s2,
                                              c16_grad_row_16k3s1};
  k->row = rows[i];
  k->dx_row = dx_rows[i];
  k->grad_row = grad_rows[i];
  op->c16 = k;
  return MSC_OK;
}

msc_status cpu_c16_forward(cpu_weighted *op, int32_t training, mbk_tensor *const *in,
                           mbk_tensor *const *out) {
  cpu_c16 *k = op->c16;
  dnnl_memory_desc_t xmd, ymd;
  CPU_CHECK(cpu_own_md(op->x_dims, c16_blocked(k->ic), &xmd));
  CPU_CHECK(cpu_own_md(op->y_dims, dnnl_aBcd16b, &ymd));
  const float *wt, *x;
  CPU_CHECK(cpu_own_weights(op, &k->io, in[1], &wt));
  c16_pack(k, wt);
  CPU_CHECK(cpu_own_x(op, &k->io, training, in[0], &xmd, &x));
  CPU_CHECK(cpu_tensor_set(out[0], op->y_ndim, op->y_dims, &ymd));
  cpu_ctx_threads(op->base.ctx);
  const c16_geo g = c16_geometry(op);
  const c16_epi e = {op->bias ? (const float *)in[2]->data : NULL, NULL, 0};
  c16_rows(k->row, x, op->x_dims[0], &g, k->ic * g.h * g.w, g.oh * g.ow * C16_C, k->wp, &e,
           out[0]->data, g.oh);
  return MSC_OK;
}

/* The fused forward's activations are NHWC, as oneDNN's fused small convolutions and the
 * 8-channel kernels have them (cpu_conv.c, CPU_NHWC_MAX_C; cpu_conv_k8.c). */
msc_status cpu_c16_fused_forward(cpu_weighted *op, mbk_tensor *const *in,
                                 mbk_tensor *const *out) {
  cpu_c16 *k = op->c16;
  dnnl_memory_desc_t xmd, ymd;
  CPU_CHECK(cpu_own_md(op->x_dims, dnnl_acdb, &xmd));
  CPU_CHECK(cpu_own_md(op->y_dims, dnnl_acdb, &ymd));
  float wf[C16_W], bf[C16_C];
  cpu_own_fused f;
  CPU_CHECK(cpu_own_fused_inputs(op, &k->io, in, out, &xmd, &ymd, wf, bf, &f));
  c16_pack(k, f.w);
  cpu_ctx_threads(op->base.ctx);
  const c16_geo g = c16_geometry(op);
  const c16_epi e = {f.bias, f.res, op->base.desc.u.conv.relu != 0};
  c16_rows(k->row, f.x, op->x_dims[0], &g, k->ic * g.h * g.w, g.oh * g.ow * C16_C, k->wp, &e,
           out[0]->data, g.oh);
  return MSC_OK;
}

msc_status cpu_c16_backward(cpu_weighted *op, mbk_tensor *const *in, mbk_tensor *const *out) {
  mbk_ctx *ctx = op->base.ctx;
  cpu_c16 *k = op->c16;
  dnnl_memory_desc_t xmd, ymd;
  CPU_CHECK(cpu_own_md(op->x_dims, c16_blocked(k->ic), &xmd));
  CPU_CHECK(cpu_own_md(op->y_dims, dnnl_aBcd16b, &ymd));
  const c16_geo g = c16_geometry(op);
  const int64_t n = op->x_dims[0];
  dnnl_memory_t dy;
  CPU_CHECK(cpu_view_shared(ctx, in[2], &ymd, CPU_SHARED_DY, &k->io.r_dy, &dy));
  if (out[0]) {
    const float *wt;
    CPU_CHECK(cpu_own_weights(op, &k->io, in[1], &wt));
    c16_pack(k, wt);
    CPU_CHECK(cpu_tensor_set(out[0], op->x_ndim, op->x_dims, &xmd));
    cpu_ctx_threads(ctx);
    const c16_epi e = {NULL, NULL, 0};
    c16_rows(k->dx_row, cpu_own_data(dy), n, &g, g.oh * g.ow * C16_C, k->ic * g.h * g.w, k->wb,
             &e, out[0]->data, g.h);
  }
  if (!out[1] && !out[2]) return MSC_OK;
  dnnl_memory_t x;
  CPU_CHECK(cpu_view_shared(ctx, in[0], &xmd, CPU_SHARED_X, &k->io.r_xw, &x));
  cpu_ctx_threads(ctx);
  int threads;
  CPU_CHECK(cpu_own_scratch(&k->io, C16_PART, &threads));
  float dw[C16_W], db[C16_C];
  c16_grad(k, cpu_own_data(x), cpu_own_data(dy), n, &g, k->io.part, threads, dw,
           out[2] ? db : NULL);
  return cpu_own_grads(op, out, dw, db);
}

#else /* !C16_BUILT: cpu_own_kernels_isa says 0, so cpu_c16_fits never lets these run */

msc_status cpu_c16_create(cpu_weighted *op) {
  return cpu_own_absent(op);
}

msc_status cpu_c16_forward(cpu_weighted *op, int32_t training, mbk_tensor *const *in,
                           mbk_tensor *const *out) {
  (void)training, (void)in, (void)out;
  return cpu_own_absent(op);
}

msc_status cpu_c16_fused_forward(cpu_weighted *op, mbk_tensor *const *in,
                                 mbk_tensor *const *out) {
  (void)in, (void)out;
  return cpu_own_absent(op);
}

msc_status cpu_c16_backward(cpu_weighted *op, mbk_tensor *const *in, mbk_tensor *const *out) {
  (void)in, (void)out;
  return cpu_own_absent(op);
}

#endif /* C16_BUILT */

void cpu_c16_destroy(cpu_c16 *k) {
  if (!k) return;
  cpu_own_io_free(&k->io);
  free(k);
}
