/*
 * cuda_loss.cu — the loss terms (docs/losses.md) on device tensors (layer: CUDA
 * backend), following the plan of the host driver (lib/contract/loss_rows.c) step by step, so
 * that values and gradients agree with the CPU backend to rounding:
 *   1. rows normalised into double (msci_unit_normalise_row, one thread per row);
 *   2. similarities S = ÊÊᵀ/τ (or P̂Q̂ᵀ/τ) by a double cuBLAS product;
 *   3. per row, the loss and ∂L/∂S in place (msci_softmax_ce_row, msci_mulsupcon_row,
 *      msci_bce_row, msci_softmax_ce_logits_row: the very functions of loss_core.h,
 *      compiled as device code);
 *      the per-pixel terms (pixel CE, pixel BCE, Dice) need no similarities: one thread
 *      per image row runs the row's pixels in x order with msci_softmax_ce_strided,
 *      msci_bce_soft_elem or msci_dice_pixel_sums / msci_dice_pixel_grad, exactly as
 *      loss_rows.c does, and the row results are reduced serially (Dice: then
 *      msci_dice_coefs on one thread);
 *   4. the rows' losses summed serially in row order (one thread: same order as the CPU);
 *   5. G symmetrised, G·keys/τ by cuBLAS, then msci_normalise_backward_row per row;
 *   6. checks (non-finite input, gradient beyond float) raise flags; the kernel that adds
 *      weight × gradient into the gradient tensors does nothing when a flag is up, so on
 *      error the outputs are untouched, as the CPU backend promises.
 * The host part of MulSupCon (class counts, anchor weights) is msci_mulsupcon_weights of
 * loss_core.h, as on the host. The host arrays of a call (labels, row lists, row mask)
 * are validated on the host and copied to the device; everything else stays there. One
 * synchronisation per call, to hand back the value and the flags.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MSCI_HD __host__ __device__
#include "loss_core.h"

#include "cuda_internal.h"

/* Device-side results of a call: the flags of the checks and the value. */
typedef struct cu_flags {
  int32_t bits; /* FLAG_* */
  int32_t pad;
  unsigned long long first_in;   /* first non-finite input element (index into the rows) */
  unsigned long long first_grad; /* first gradient element beyond float */
  double value;
} cu_flags;
static_assert(sizeof(cu_flags) <= 64, "cu_flags must fit the context's flag buffer");

#define FLAG_INPUT 1
#define FLAG_GRAD  2

#define GRID_STRIDE(i, count)                                                                  \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (count);                \
       i += (int64_t)gridDim.x * blockDim.x)

/* ---- kernels ----------------------------------------------------------------------------- */

__global__ void k_flags_reset(cu_flags *f) {
  f->bits = 0;
  f->first_in = ULLONG_MAX;
  f->first_grad = ULLONG_MAX;
  f->value = 0.0;
}

/* Row r of the term is row rows[r] of x (rows NULL: row r); flags non-finite values. */
__global__ void k_check_finite(const float *x, const int32_t *rows, int64_t nrows, int64_t d,
                               cu_flags *f) {
  GRID_STRIDE(i, nrows * d) {
    int64_t r = i / d, t = i - r * d;
    float v = x[(rows ? (int64_t)rows[r] : r) * d + t];
    if (!isfinite(v)) {
      atomicOr(&f->bits, FLAG_INPUT);
      atomicMin(&f->first_in, (unsigned long long)i);
    }
  }
}

__global__ void k_normalise(const float *x, const int32_t *rows, int64_t nrows, int64_t d,
                            double *zhat, double *norm) {
  GRID_STRIDE(r, nrows) {
    const float *xr = x + (rows ? (int64_t)rows[r] : r) * d;
    norm[r] = msci_unit_normalise_row(xr, d, zhat + r * d);
  }
}

/* NT-Xent rows: skip i itself, target its positive i ± n. */
__global__ void k_ntxent_rows(double *s, int64_t k, int64_t n, double scale, double *lrow) {
  GRID_STRIDE(i, k)
  lrow[i] = msci_softmax_ce_row(s + i * k, k, i, i < n ? i + n : i - n, scale);
}

/* InfoNCE rows: the n rows of S, then the n rows of Sᵀ, each with target i. */
__global__ void k_infonce_rows(double *s, double *st, int64_t n, double scale, double *lrow) {
  GRID_STRIDE(i, 2 * n) {
    if (i < n)
      lrow[i] = msci_softmax_ce_row(s + i * n, n, -1, i, scale);
    else
      lrow[i] = msci_softmax_ce_row(st + (i - n) * n, n, -1, i - n, scale);
  }
}

__global__ void k_mulsupcon_rows(double *s, const uint8_t *y, int64_t k, int64_t c,
                                 const double *inv_pos, const double *w, double *lrow) {
  GRID_STRIDE(i, k) lrow[i] = msci_mulsupcon_row(s + i * k, y, k, c, i, inv_pos, w[i]);
}

/* BCE rows into a float gradient (zero rows where the mask drops them). */
__global__ void k_bce_rows(const float *x, const uint8_t *y, const uint8_t *mask, int64_t n,
                           int64_t c, double scale, float *g, double *lrow) {
  GRID_STRIDE(i, n) {
    if (mask && !mask[i]) {
      for (int64_t t = 0; t < c; ++t) g[i * c + t] = 0.f;
      lrow[i] = 0.0;
    } else {
      lrow[i] = msci_bce_row(x + i * c, y + i * c, c, scale, g + i * c);
    }
  }
}

/* Single-label softmax CE rows (one-hot targets, checked on the host) into a float
 * gradient (zero rows where the mask drops them). */
__global__ void k_softmax_ce_rows(const float *x, const uint8_t *y, const uint8_t *mask,
                                  int64_t n, int64_t c, double scale, float *g, double *lrow) {
  GRID_STRIDE(i, n) {
    if (mask && !mask[i]) {
      for (int64_t t = 0; t < c; ++t) g[i * c + t] = 0.f;
      lrow[i] = 0.0;
    } else {
      lrow[i] = msci_softmax_ce_logits_row(x + i * c, c, msci_onehot_index(y + i * c, c), scale,
                                           g + i * c);
    }
  }
}

/* ---- per-pixel terms: one thread per image row, its pixels in x order (as loss_rows.c) -- */

/* Pixel softmax CE rows (image r / h, row r % h) into a float gradient; zero at ignored
 * pixels. lrow[r] = Σ_x w_t·l over the row's counted pixels. */
__global__ void k_pixel_ce_rows(const float *x, const int32_t *t, const float *cw, int64_t rows,
                                int64_t c, int64_t h, int64_t w, int32_t ignore, double scale,
                                float *g, double *lrow) {
  const int64_t hw = h * w;
  GRID_STRIDE(r, rows) {
    const int64_t off = (r / h) * c * hw + (r % h) * w;
    double acc = 0.0;
    for (int64_t xx = 0; xx < w; ++xx) {
      const int32_t tt = t[r * w + xx];
      float *gp = g + off + xx;
      if (tt == ignore) {
        for (int64_t j = 0; j < c; ++j) gp[j * hw] = 0.f;
        continue;
      }
      const double wt = cw ? (double)cw[tt] : 1.0;
      acc += wt * msci_softmax_ce_strided(x + off + xx, c, hw, tt, wt * scale, gp);
    }
    lrow[r] = acc;
  }
}

/* Pixel BCE rows of w elements (image, channel (r / h) % k, y); zero where masked. */
__global__ void k_pixel_bce_rows(const float *x, const float *y, const uint8_t *mask,
                                 const float *pw, int64_t rows, int64_t k, int64_t h, int64_t w,
                                 double scale, float *g, double *lrow) {
  GRID_STRIDE(r, rows) {
    const double p = pw ? (double)pw[r / h % k] : 1.0;
    double acc = 0.0;
    for (int64_t i = r * w; i < (r + 1) * w; ++i) {
      if (mask && !mask[i]) {
        g[i] = 0.f;
        continue;
      }
      double d;
      acc += msci_bce_soft_elem((double)x[i], (double)y[i], p, &d);
      g[i] = (float)(scale * d);
    }
    lrow[r] = acc;
  }
}

/* Dice: I, P, G (3c doubles) of each image row's counted pixels. */
__global__ void k_dice_sums(const float *x, const int32_t *t, int64_t rows, int64_t c,
                            int64_t h, int64_t w, int32_t ignore, double *part) {
  const int64_t hw = h * w;
  GRID_STRIDE(r, rows) {
    double *in = part + r * 3 * c, *ps = in + c, *gs = ps + c;
    for (int64_t j = 0; j < 3 * c; ++j) in[j] = 0.0;
    const int64_t off = (r / h) * c * hw + (r % h) * w;
    for (int64_t xx = 0; xx < w; ++xx) {
      const int32_t tt = t[r * w + xx];
      if (tt != ignore) msci_dice_pixel_sums(x + off + xx, c, hw, tt, in, ps, gs);
    }
  }
}

/* Dice: the rows' sums reduced serially in row order (the CPU's order), then the loss
 * and the coefficients a, b (one thread). */
__global__ void k_dice_reduce(const double *part, int64_t rows, int64_t c, double *sums,
                              double *a, double *b, cu_flags *f) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  for (int64_t j = 0; j < 3 * c; ++j) sums[j] = 0.0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < 3 * c; ++j) sums[j] += part[r * 3 * c + j];
  f->value = msci_dice_coefs(sums, sums + c, sums + 2 * c, c, a, b);
}

__global__ void k_dice_grad(const float *x, const int32_t *t, int64_t rows, int64_t c,
                            int64_t h, int64_t w, int32_t ignore, const double *a,
                            const double *b, float *g) {
  const int64_t hw = h * w;
  GRID_STRIDE(r, rows) {
    const int64_t off = (r / h) * c * hw + (r % h) * w;
    for (int64_t xx = 0; xx < w; ++xx) {
      const int32_t tt = t[r * w + xx];
      float *gp = g + off + xx;
      if (tt == ignore)
        for (int64_t j = 0; j < c; ++j) gp[j * hw] = 0.f;
      else
        msci_dice_pixel_grad(x + off + xx, c, hw, tt, a, b, gp);
    }
  }
}

/* The CPU's order exactly: Σ in index order, then × scale. */
__global__ void k_sum_serial(const double *v, int64_t n, double scale, cu_flags *f) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += v[i];
  f->value = s * scale;
}

/* s ← s + sᵀ: each pair (i, j ≥ i) belongs to one thread. */
__global__ void k_symmetrise(double *s, int64_t k) {
  GRID_STRIDE(idx, k * k) {
    int64_t i = idx / k, j = idx - i * k;
    if (j < i) continue;
    if (j == i) {
      s[i * k + i] *= 2.0;
    } else {
      double v = s[i * k + j] + s[j * k + i];
      s[i * k + j] = v;
      s[j * k + i] = v;
    }
  }
}

__global__ void k_transpose(const double *a, double *at, int64_t n) {
  GRID_STRIDE(idx, n * n) {
    int64_t i = idx / n, j = idx - i * n;
    at[j * n + i] = a[idx];
  }
}

/* G_ij = A_ij + B_ji with s = A and st = B; afterwards s = G and st = Gᵀ. */
__global__ void k_infonce_combine(double *s, double *st, int64_t n) {
  GRID_STRIDE(idx, n * n) {
    int64_t i = idx / n, j = idx - i * n;
    double v = s[idx] + st[j * n + i];
    s[idx] = v;
    st[j * n + i] = v;
  }
}

__global__ void k_norm_back(const double *zhat, const double *norm, double *g, int64_t rows,
                            int64_t d) {
  GRID_STRIDE(r, rows)
  msci_normalise_backward_row(zhat + r * d, norm[r], g + r * d, d, g + r * d);
}

__global__ void k_check_range(const double *g, int64_t count, cu_flags *f) {
  GRID_STRIDE(i, count) {
    if (!(fabs(g[i]) <= (double)FLT_MAX)) {
      atomicOr(&f->bits, FLAG_GRAD);
      atomicMin(&f->first_grad, (unsigned long long)i);
    }
  }
}

/* dst += weight × g, rounded like the CPU (gradient to float, then the product). Does
 * nothing once a check failed: the outputs stay untouched on error. */
__global__ void k_add_grad_d(float *dst, const double *g, int64_t count, double weight,
                             const cu_flags *f) {
  if (f->bits) return;
  GRID_STRIDE(i, count) dst[i] += (float)(weight * (double)(float)g[i]);
}

__global__ void k_add_grad_f(float *dst, const float *g, int64_t count, double weight,
                             const cu_flags *f) {
  if (f->bits) return;
  GRID_STRIDE(i, count) dst[i] += (float)(weight * (double)g[i]);
}

/* MulSupCon: row kk of g goes to row rows[kk] of dst; one thread per column walks the
 * rows in order, so repeated rows add up in the CPU's order without atomics. */
__global__ void k_scatter_grad(float *dst, const double *g, const int32_t *rows, int64_t k,
                               int64_t d, double weight, const cu_flags *f) {
  if (f->bits) return;
  GRID_STRIDE(j, d) {
    for (int64_t kk = 0; kk < k; ++kk)
      dst[(int64_t)rows[kk] * d + j] += (float)(weight * (double)(float)g[kk * d + j]);
  }
}

/* ---- host side ---------------------------------------------------------------------------- */

/* Bump allocation inside one scratch block, 16-byte aligned pieces. */
typedef struct scratch {
  char *base;
  size_t used, cap;
} scratch;

static size_t align16(size_t n) {
  return (n + 15) & ~(size_t)15;
}

template <typename T> static T *take(scratch *s, int64_t count) {
  T *p = (T *)(s->base + s->used);
  s->used += align16((size_t)count * sizeof(T));
  return p;
}

#define LAUNCH(kernel, count, ...)                                                             \
  do {                                                                                         \
    kernel<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(__VA_ARGS__);                       \
    CU_LAUNCHED(#kernel);                                                                      \
  } while (0)

typedef struct loss_call {
  mbk_ctx *ctx;
  const mbk_loss_desc *d;
  const char *term;
  cu_flags *f; /* device */
  scratch s;
} loss_call;

static msc_status check_rows(const char *term, const char *what, const mbk_tensor *t,
                             int64_t rows, int64_t cols) {
  if (!t || t->ndim != 2 || t->dims[1] != cols || t->dims[0] < rows)
    return CU_FAIL(MSC_E_SHAPE,
                   "cuda: %s: %s must be a 2-D tensor of >= %lld rows and %lld "
                   "columns",
                   term, what, (long long)rows, (long long)cols);
  return MSC_OK;
}

static msc_status check_grad(const char *term, const mbk_tensor *g, const mbk_tensor *x) {
  if (!g || g->ndim != 2 || g->dims[0] != x->dims[0] || g->dims[1] != x->dims[1])
    return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                   "cuda: %s: the gradient tensor must be shaped like "
                   "its input (made by tensor_zero)",
                   term);
  return MSC_OK;
}

static msc_status labels_01(const char *term, const uint8_t *y, int64_t rows, int64_t c,
                            const uint8_t *mask) {
  for (int64_t i = 0; i < rows; ++i) {
    if (mask && !mask[i]) continue;
    for (int64_t t = 0; t < c; ++t)
      if (y[i * c + t] > 1)
        return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                       "cuda: %s: labels[%lld] (row %lld, class %lld) is %u; labels must be "
                       "0 or 1",
                       term, (long long)(i * c + t), (long long)i, (long long)t,
                       (unsigned)y[i * c + t]);
  }
  return MSC_OK;
}

/* Normalises nrows rows of x (row r = rows[r], or row r) into zhat/norm, after checking
 * they are finite. */
static msc_status normalise(loss_call *L, const float *x, const int32_t *rows, int64_t nrows,
                            double *zhat, double *norm) {
  mbk_ctx *ctx = L->ctx;
  const int64_t d = L->d->d;
  LAUNCH(k_check_finite, nrows * d, x, rows, nrows, d, L->f);
  LAUNCH(k_normalise, nrows, x, rows, nrows, d, zhat, norm);
  return MSC_OK;
}

/* ∂L/∂z for k rows from G (k×nkeys, in s) and the keys: G·keys/τ, then the Jacobian. */
static msc_status grad_rows(loss_call *L, const double *g, const double *keys, int64_t k,
                            int64_t nkeys, const double *zhat, const double *norm, double *gz) {
  mbk_ctx *ctx = L->ctx;
  const int64_t d = L->d->d;
  CU_CHECK(cu_dgemm_ab(ctx, k, d, nkeys, 1.0 / (double)L->d->tau, g, keys, gz));
  LAUNCH(k_norm_back, k, zhat, norm, gz, k, d);
  LAUNCH(k_check_range, k * d, gz, k * d, L->f);
  return MSC_OK;
}

static size_t doubles(int64_t n) {
  return align16((size_t)n * sizeof(double));
}

static msc_status ntxent(loss_call *L, const mbk_tensor *x, mbk_tensor *grad, size_t *need) {
  const mbk_loss_desc *d = L->d;
  const int64_t n = d->n, k = 2 * n, dd = d->d;
  *need = doubles(k * dd) * 2 + doubles(k) * 2 + doubles(k * k);
  if (!L->s.base) { /* sizing pass */
    CU_CHECK(check_rows(L->term, "x", x, d->row0 + k, dd));
    return check_grad(L->term, grad, x);
  }
  mbk_ctx *ctx = L->ctx;
  double *zhat = take<double>(&L->s, k * dd), *gz = take<double>(&L->s, k * dd);
  double *norm = take<double>(&L->s, k), *lrow = take<double>(&L->s, k);
  double *s = take<double>(&L->s, k * k);
  const float *rows = x->data + d->row0 * dd;
  CU_CHECK(normalise(L, rows, NULL, k, zhat, norm));
  CU_CHECK(cu_dgemm_abt(ctx, k, k, dd, 1.0 / (double)d->tau, zhat, zhat, s));
  const double scale = 1.0 / (double)k;
  LAUNCH(k_ntxent_rows, k, s, k, n, scale, lrow);
  k_sum_serial<<<1, 1, 0, ctx->stream>>>(lrow, k, scale, L->f);
  CU_LAUNCHED("loss sum");
  LAUNCH(k_symmetrise, k * k, s, k);
  CU_CHECK(grad_rows(L, s, zhat, k, k, zhat, norm, gz));
  LAUNCH(k_add_grad_d, k * dd, grad->data + d->row0 * dd, gz, k * dd, d->weight, L->f);
  return MSC_OK;
}

static msc_status infonce(loss_call *L, const mbk_tensor *x, const mbk_tensor *x2,
                          mbk_tensor *grad, mbk_tensor *grad2, size_t *need) {
  const mbk_loss_desc *d = L->d;
  const int64_t n = d->n, dd = d->d;
  *need = doubles(n * dd) * 4 + doubles(2 * n) * 2 + doubles(n * n) * 2;
  if (!L->s.base) {
    CU_CHECK(check_rows(L->term, "x", x, d->row0 + n, dd));
    CU_CHECK(check_rows(L->term, "x2", x2, d->row0 + n, dd));
    CU_CHECK(check_grad(L->term, grad, x));
    return check_grad(L->term, grad2, x2);
  }
  mbk_ctx *ctx = L->ctx;
  double *ph = take<double>(&L->s, n * dd), *qh = take<double>(&L->s, n * dd);
  double *gp = take<double>(&L->s, n * dd), *gq = take<double>(&L->s, n * dd);
  double *norm = take<double>(&L->s, 2 * n), *lrow = take<double>(&L->s, 2 * n);
  double *s = take<double>(&L->s, n * n), *st = take<double>(&L->s, n * n);
  CU_CHECK(normalise(L, x->data + d->row0 * dd, NULL, n, ph, norm));
  CU_CHECK(normalise(L, x2->data + d->row0 * dd, NULL, n, qh, norm + n));
  CU_CHECK(cu_dgemm_abt(ctx, n, n, dd, 1.0 / (double)d->tau, ph, qh, s));
  LAUNCH(k_transpose, n * n, s, st, n);
  const double scale = 0.5 / (double)n;
  LAUNCH(k_infonce_rows, 2 * n, s, st, n, scale, lrow);
  k_sum_serial<<<1, 1, 0, ctx->stream>>>(lrow, 2 * n, scale, L->f);
  CU_LAUNCHED("loss sum");
  LAUNCH(k_infonce_combine, n * n, s, st, n);
  CU_CHECK(grad_rows(L, s, qh, n, n, ph, norm, gp));
  CU_CHECK(grad_rows(L, st, ph, n, n, qh, norm + n, gq));
  LAUNCH(k_add_grad_d, n * dd, grad->data + d->row0 * dd, gp, n * dd, d->weight, L->f);
  LAUNCH(k_add_grad_d, n * dd, grad2->data + d->row0 * dd, gq, n * dd, d->weight, L->f);
  return MSC_OK;
}

static msc_status mulsupcon(loss_call *L, const mbk_tensor *x, mbk_tensor *grad, size_t *need,
                            int *nothing) {
  const mbk_loss_desc *d = L->d;
  const int64_t k = d->n, dd = d->d, c = d->c;
  *need = doubles(k * dd) * 2 + doubles(k) * 4 + doubles(k * k) + doubles(c) +
          align16((size_t)(k * c)) + align16((size_t)k * sizeof(int32_t));
  if (!L->s.base) {
    CU_CHECK(check_rows(L->term, "x", x, 1, dd));
    for (int64_t i = 0; i < k; ++i)
      if (d->rows[i] < 0 || d->rows[i] >= x->dims[0])
        return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: %s: row %d out of range", L->term,
                       (int)d->rows[i]);
    CU_CHECK(check_grad(L->term, grad, x));
    return labels_01(L->term, d->labels, k, c, NULL);
  }
  mbk_ctx *ctx = L->ctx;
  double *zhat = take<double>(&L->s, k * dd), *gz = take<double>(&L->s, k * dd);
  double *norm = take<double>(&L->s, k), *lrow = take<double>(&L->s, k);
  double *w = take<double>(&L->s, k), *inv_pos = take<double>(&L->s, c);
  double *s = take<double>(&L->s, k * k);
  uint8_t *y = take<uint8_t>(&L->s, k * c);
  int32_t *rows = take<int32_t>(&L->s, k);
  double *hw = (double *)malloc((size_t)(k + c) * sizeof(double));
  if (!hw) return CU_FAIL(MSC_E_OUT_OF_MEMORY, "cuda: %s: weights", L->term);
  int64_t r = msci_mulsupcon_weights(d->labels, k, c, d->per_anchor, hw + k, hw);
  msc_status st = MSC_OK;
  if (r > 0) {
    st = cu_upload_small(ctx, w, hw, (size_t)k * sizeof(double));
    if (st == MSC_OK) st = cu_upload_small(ctx, inv_pos, hw + k, (size_t)c * sizeof(double));
  }
  free(hw);
  CU_CHECK(st);
  /* R = 0: L = 0 and no gradient; the input is still checked like the CPU does. */
  CU_CHECK(cu_upload_small(ctx, rows, d->rows, (size_t)k * sizeof(int32_t)));
  CU_CHECK(normalise(L, x->data, rows, k, zhat, norm));
  if (r == 0) {
    *nothing = 1;
    return MSC_OK;
  }
  CU_CHECK(cu_upload_small(ctx, y, d->labels, (size_t)(k * c)));
  CU_CHECK(cu_dgemm_abt(ctx, k, k, dd, 1.0 / (double)d->tau, zhat, zhat, s));
  LAUNCH(k_mulsupcon_rows, k, s, y, k, c, inv_pos, w, lrow);
  k_sum_serial<<<1, 1, 0, ctx->stream>>>(lrow, k, 1.0, L->f);
  CU_LAUNCHED("loss sum");
  LAUNCH(k_symmetrise, k * k, s, k);
  CU_CHECK(grad_rows(L, s, zhat, k, k, zhat, norm, gz));
  LAUNCH(k_scatter_grad, dd, grad->data, gz, rows, k, dd, d->weight, L->f);
  return MSC_OK;
}

static msc_status bce(loss_call *L, const mbk_tensor *x, mbk_tensor *grad, size_t *need,
                      int *nothing) {
  const mbk_loss_desc *d = L->d;
  const int64_t n = d->n, c = d->c;
  *need = doubles(n) + align16((size_t)(n * c) * sizeof(float)) + align16((size_t)(n * c)) +
          align16((size_t)n);
  if (!L->s.base) {
    CU_CHECK(check_rows(L->term, "logits", x, d->row0 + n, c));
    CU_CHECK(check_grad(L->term, grad, x));
    return labels_01(L->term, d->labels, n, c, d->row_mask);
  }
  mbk_ctx *ctx = L->ctx;
  double *lrow = take<double>(&L->s, n);
  float *g = take<float>(&L->s, n * c);
  uint8_t *y = take<uint8_t>(&L->s, n * c), *mask = take<uint8_t>(&L->s, n);
  const float *logits = x->data + d->row0 * c;
  LAUNCH(k_check_finite, n * c, logits, (const int32_t *)NULL, n, c, L->f);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) kept += !d->row_mask || d->row_mask[i];
  if (kept == 0) { /* no labelled row: 0 with a zero gradient */
    *nothing = 1;
    return MSC_OK;
  }
  CU_CHECK(cu_upload_small(ctx, y, d->labels, (size_t)(n * c)));
  if (d->row_mask) CU_CHECK(cu_upload_small(ctx, mask, d->row_mask, (size_t)n));
  const double scale = 1.0 / ((double)kept * (double)c);
  LAUNCH(k_bce_rows, n, logits, y, d->row_mask ? mask : NULL, n, c, scale, g, lrow);
  k_sum_serial<<<1, 1, 0, ctx->stream>>>(lrow, n, scale, L->f);
  CU_LAUNCHED("loss sum");
  LAUNCH(k_add_grad_f, n * c, grad->data + d->row0 * c, g, n * c, d->weight, L->f);
  return MSC_OK;
}

/* Every kept row one-hot, in the CPU's words (loss_rows.c). */
static msc_status labels_onehot(const char *term, const uint8_t *y, int64_t rows, int64_t c,
                                const uint8_t *mask) {
  CU_CHECK(labels_01(term, y, rows, c, mask));
  for (int64_t i = 0; i < rows; ++i) {
    if (mask && !mask[i]) continue;
    if (msci_onehot_index(y + i * c, c) < 0) {
      int64_t pos = 0;
      for (int64_t t = 0; t < c; ++t) pos += y[i * c + t];
      return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                     "cuda: %s: row %lld has %lld positive labels; single-label training "
                     "needs exactly one per labelled row",
                     term, (long long)i, (long long)pos);
    }
  }
  return MSC_OK;
}

/* Single-label softmax CE: BCE's plan with the softmax row and a 1/kept scale. */
static msc_status softmax_ce(loss_call *L, const mbk_tensor *x, mbk_tensor *grad, size_t *need,
                             int *nothing) {
  const mbk_loss_desc *d = L->d;
  const int64_t n = d->n, c = d->c;
  *need = doubles(n) + align16((size_t)(n * c) * sizeof(float)) + align16((size_t)(n * c)) +
          align16((size_t)n);
  if (!L->s.base) {
    CU_CHECK(check_rows(L->term, "logits", x, d->row0 + n, c));
    CU_CHECK(check_grad(L->term, grad, x));
    return labels_onehot(L->term, d->labels, n, c, d->row_mask);
  }
  mbk_ctx *ctx = L->ctx;
  double *lrow = take<double>(&L->s, n);
  float *g = take<float>(&L->s, n * c);
  uint8_t *y = take<uint8_t>(&L->s, n * c), *mask = take<uint8_t>(&L->s, n);
  const float *logits = x->data + d->row0 * c;
  LAUNCH(k_check_finite, n * c, logits, (const int32_t *)NULL, n, c, L->f);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) kept += !d->row_mask || d->row_mask[i];
  if (kept == 0) { /* no labelled row: 0 with a zero gradient */
    *nothing = 1;
    return MSC_OK;
  }
  CU_CHECK(cu_upload_small(ctx, y, d->labels, (size_t)(n * c)));
  if (d->row_mask) CU_CHECK(cu_upload_small(ctx, mask, d->row_mask, (size_t)n));
  const double scale = 1.0 / (double)kept;
  LAUNCH(k_softmax_ce_rows, n, logits, y, d->row_mask ? mask : NULL, n, c, scale, g, lrow);
  k_sum_serial<<<1, 1, 0, ctx->stream>>>(lrow, n, scale, L->f);
  CU_LAUNCHED("loss sum");
  LAUNCH(k_add_grad_f, n * c, grad->data + d->row0 * c, g, n * c, d->weight, L->f);
  return MSC_OK;
}

/* ---- per-pixel terms ------------------------------------------------------------------ */

static int is_pixel(int32_t type) {
  return type == MBK_LOSS_PIXEL_CE || type == MBK_LOSS_PIXEL_BCE || type == MBK_LOSS_DICE;
}

/* x (and grad, shaped like it) 4-D with >= rows images of c × h × w. */
static msc_status check_images(const char *term, const mbk_tensor *x, const mbk_tensor *g,
                               int64_t n, int64_t c, int64_t h, int64_t w) {
  if (!x || x->ndim != 4 || x->dims[0] < n || x->dims[1] != c || x->dims[2] != h ||
      x->dims[3] != w)
    return CU_FAIL(MSC_E_SHAPE,
                   "cuda: %s: logits must be a 4-D tensor of >= %lld images × %lld "
                   "channels × %lld × %lld",
                   term, (long long)n, (long long)c, (long long)h, (long long)w);
  int same = g && g->ndim == 4;
  for (int i = 0; same && i < 4; ++i) same = g->dims[i] == x->dims[i];
  if (!same)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                   "cuda: %s: the gradient tensor must be shaped like "
                   "its input (made by tensor_zero)",
                   term);
  if (c > INT64_MAX / h || c * h > INT64_MAX / w || n > (INT64_MAX / 16) / (c * h * w))
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: %s: n × c × h × w is too large", term);
  return MSC_OK;
}

/* The host arrays of a pixel term, in the CPU's words (loss_rows.c). */
static msc_status check_pixel_args(const char *term, const mbk_loss_desc *d) {
  const int64_t hw = d->h * d->w, w = d->w;
  const float *wv = d->type == MBK_LOSS_PIXEL_BCE ? d->pos_weight : d->class_weight;
  const char *wname = d->type == MBK_LOSS_PIXEL_BCE ? "pos_weight" : "class_weight";
  if (d->type != MBK_LOSS_PIXEL_BCE) {
    int64_t i = msci_first_bad_target(d->targets, d->n * hw, d->c, d->ignore_index);
    if (i >= 0)
      return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                     "cuda: %s: target[%lld] (image %lld, y %lld, x %lld) = %d is neither a "
                     "class in [0, %lld) nor the ignore index %d",
                     term, (long long)i, (long long)(i / hw), (long long)(i % hw / w),
                     (long long)(i % w), (int)d->targets[i], (long long)d->c,
                     (int)d->ignore_index);
  } else {
    const int64_t count = d->n * d->c * hw;
    for (int64_t i = 0; i < count; ++i) {
      if (d->pixel_mask && !d->pixel_mask[i]) continue;
      float v = d->soft_targets[i];
      if (!(v >= 0.0f && v <= 1.0f))
        return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                       "cuda: %s: target[%lld] (image %lld, channel %lld, y %lld, x %lld) = "
                       "%g, must be in [0, 1]",
                       term, (long long)i, (long long)(i / (d->c * hw)),
                       (long long)(i / hw % d->c), (long long)(i % hw / w), (long long)(i % w),
                       (double)v);
    }
  }
  if (d->type != MBK_LOSS_DICE)
    for (int64_t j = 0; wv && j < d->c; ++j)
      if (!isfinite(wv[j]) || wv[j] < 0.0f)
        return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                       "cuda: %s: %s[%lld] = %g, must be finite and >= 0", term, wname,
                       (long long)j, (double)wv[j]);
  return MSC_OK;
}

/* Pixel CE, pixel BCE and Dice: host checks, then one kernel per image row (see the top). */
static msc_status pixel_term(loss_call *L, const mbk_tensor *x, mbk_tensor *grad, size_t *need,
                             int *nothing) {
  const mbk_loss_desc *d = L->d;
  const int64_t n = d->n, c = d->c, h = d->h, w = d->w, hw = h * w, img = c * hw;
  const int64_t count = n * img, rows = d->type == MBK_LOSS_PIXEL_BCE ? n * c * h : n * h;
  const int bce_term = d->type == MBK_LOSS_PIXEL_BCE, dice = d->type == MBK_LOSS_DICE;
  if (!L->s.base) {
    CU_CHECK(check_images(L->term, x, grad, d->row0 + n, c, h, w));
    CU_CHECK(check_pixel_args(L->term, d));
    *need = doubles(dice ? rows * 3 * c + 5 * c : rows) +
            align16((size_t)count * sizeof(float)) +
            (bce_term ? align16((size_t)count * sizeof(float)) + align16((size_t)count)
                      : align16((size_t)(n * hw) * sizeof(int32_t))) +
            align16((size_t)c * sizeof(float));
    return MSC_OK;
  }
  mbk_ctx *ctx = L->ctx;
  const float *logits = x->data + d->row0 * img;
  LAUNCH(k_check_finite, count, logits, (const int32_t *)NULL, n, img, L->f);
  /* What is counted: pixels (CE, Dice: Σ w_t) or elements (BCE), from the host arrays. */
  double total = 0.0;
  if (bce_term) {
    for (int64_t i = 0; i < count; ++i) total += !d->pixel_mask || d->pixel_mask[i];
  } else {
    for (int64_t i = 0; i < n * hw; ++i)
      if (d->targets[i] != d->ignore_index)
        total += d->class_weight && !dice ? (double)d->class_weight[d->targets[i]] : 1.0;
  }
  if (!(total > 0.0)) { /* nothing counted: 0 with a zero gradient */
    *nothing = 1;
    return MSC_OK;
  }
  double *part = take<double>(&L->s, dice ? rows * 3 * c + 5 * c : rows);
  float *g = take<float>(&L->s, count);
  if (bce_term) {
    float *y = take<float>(&L->s, count);
    uint8_t *mask = take<uint8_t>(&L->s, count);
    float *pw = take<float>(&L->s, c);
    CU_CHECK(cu_upload_small(ctx, y, d->soft_targets, (size_t)count * sizeof(float)));
    if (d->pixel_mask) CU_CHECK(cu_upload_small(ctx, mask, d->pixel_mask, (size_t)count));
    if (d->pos_weight)
      CU_CHECK(cu_upload_small(ctx, pw, d->pos_weight, (size_t)c * sizeof(float)));
    const double scale = 1.0 / total;
    LAUNCH(k_pixel_bce_rows, rows, logits, y, d->pixel_mask ? mask : NULL,
           d->pos_weight ? pw : NULL, rows, c, h, w, scale, g, part);
    k_sum_serial<<<1, 1, 0, ctx->stream>>>(part, rows, scale, L->f);
    CU_LAUNCHED("loss sum");
  } else {
    int32_t *t = take<int32_t>(&L->s, n * hw);
    float *cw = take<float>(&L->s, c);
    CU_CHECK(cu_upload_small(ctx, t, d->targets, (size_t)(n * hw) * sizeof(int32_t)));
    if (dice) {
      double *sums = part + rows * 3 * c, *a = sums + 3 * c, *b = a + c;
      LAUNCH(k_dice_sums, rows, logits, t, rows, c, h, w, d->ignore_index, part);
      k_dice_reduce<<<1, 1, 0, ctx->stream>>>(part, rows, c, sums, a, b, L->f);
      CU_LAUNCHED("dice reduce");
      LAUNCH(k_dice_grad, rows, logits, t, rows, c, h, w, d->ignore_index, a, b, g);
    } else {
      if (d->class_weight)
        CU_CHECK(cu_upload_small(ctx, cw, d->class_weight, (size_t)c * sizeof(float)));
      const double scale = 1.0 / total;
      LAUNCH(k_pixel_ce_rows, rows, logits, t, d->class_weight ? cw : NULL, rows, c, h, w,
             d->ignore_index, scale, g, part);
      k_sum_serial<<<1, 1, 0, ctx->stream>>>(part, rows, scale, L->f);
      CU_LAUNCHED("loss sum");
    }
  }
  LAUNCH(k_add_grad_f, count, grad->data + d->row0 * img, g, count, d->weight, L->f);
  return MSC_OK;
}

/* One pass of the term: sizing (L->s.base NULL: validates the host arrays and shapes,
 * sets *need) or running. */
static msc_status run_term(loss_call *L, const mbk_tensor *x, const mbk_tensor *x2,
                           mbk_tensor *grad, mbk_tensor *grad2, size_t *need, int *nothing) {
  switch (L->d->type) {
  case MBK_LOSS_NTXENT: return ntxent(L, x, grad, need);
  case MBK_LOSS_INFONCE: return infonce(L, x, x2, grad, grad2, need);
  case MBK_LOSS_MULSUPCON: return mulsupcon(L, x, grad, need, nothing);
  case MBK_LOSS_BCE: return bce(L, x, grad, need, nothing);
  case MBK_LOSS_SOFTMAX_CE: return softmax_ce(L, x, grad, need, nothing);
  case MBK_LOSS_PIXEL_CE:
  case MBK_LOSS_PIXEL_BCE:
  case MBK_LOSS_DICE: return pixel_term(L, x, grad, need, nothing);
  default:
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: unknown loss type %d", (int)L->d->type);
  }
}

static const char *term_name(int32_t type) {
  switch (type) {
  case MBK_LOSS_NTXENT: return "NT-Xent";
  case MBK_LOSS_INFONCE: return "InfoNCE";
  case MBK_LOSS_MULSUPCON: return "MulSupCon";
  case MBK_LOSS_BCE: return "BCE";
  case MBK_LOSS_SOFTMAX_CE: return "softmax CE";
  case MBK_LOSS_PIXEL_CE: return "pixel CE";
  case MBK_LOSS_PIXEL_BCE: return "pixel BCE";
  case MBK_LOSS_DICE: return "Dice";
  default: return "loss";
  }
}

/* The error of a failed device check, in the CPU's words where it can. */
static msc_status report(const loss_call *L, const cu_flags *h) {
  if ((h->bits & FLAG_INPUT) && is_pixel(L->d->type)) {
    const unsigned long long i = h->first_in, hw = (unsigned long long)(L->d->h * L->d->w),
                             c = (unsigned long long)L->d->c, w = (unsigned long long)L->d->w;
    return CU_FAIL(MSC_E_NUMERICAL,
                   "cuda: %s: logits[%llu] (image %llu, channel %llu, y %llu, x %llu) is not "
                   "finite",
                   L->term, i, i / (c * hw), i / hw % c, i % hw / w, i % w);
  }
  const int64_t cols =
      L->d->type == MBK_LOSS_BCE || L->d->type == MBK_LOSS_SOFTMAX_CE ? L->d->c : L->d->d;
  if (h->bits & FLAG_INPUT)
    return CU_FAIL(MSC_E_NUMERICAL,
                   "cuda: %s: the input has a non-finite value (element %llu "
                   "of the term's rows: row %lld, column %lld)",
                   L->term, h->first_in, (long long)(h->first_in / (unsigned long long)cols),
                   (long long)(h->first_in % (unsigned long long)cols));
  return CU_FAIL(MSC_E_NUMERICAL,
                 "cuda: %s: the gradient overflows float (element %llu of the "
                 "term's rows)",
                 L->term, h->first_grad);
}

msc_status cu_loss(mbk_ctx *ctx, const mbk_loss_desc *d, const mbk_tensor *x,
                   const mbk_tensor *x2, double *value, mbk_tensor *grad, mbk_tensor *grad2) {
  /* The core's frame checked these already; the entry is also called directly (tests). */
  char why[256];
  msc_status bad = mbk_loss_desc_validate(d, x, x2, value, grad, grad2, why, sizeof why);
  if (bad != MSC_OK) return CU_FAIL(bad, "cuda: %s", why);
  loss_call L;
  memset(&L, 0, sizeof L);
  L.ctx = ctx;
  L.d = d;
  L.term = term_name(d->type);
  if (d->type != MBK_LOSS_BCE && d->type != MBK_LOSS_SOFTMAX_CE && !is_pixel(d->type) &&
      (!isfinite(d->tau) || !(d->tau > 0.0f)))
    return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                   "cuda: %s: tau = %g, must be a finite temperature > 0", L.term,
                   (double)d->tau);
  size_t need = 0;
  int nothing = 0;
  CU_CHECK(run_term(&L, x, x2, grad, grad2, &need, &nothing));
  CU_CHECK(cu_enter(ctx));
  CU_CHECK(cu_tensor_use(ctx, x));
  if (x2) CU_CHECK(cu_tensor_use(ctx, x2));
  CU_CHECK(cu_tensor_use(ctx, grad));
  if (grad2) CU_CHECK(cu_tensor_use(ctx, grad2));

  cu_buf sb = {NULL, 0};
  CU_CHECK(cu_buf_ensure(ctx, &sb, need));
  L.s.base = (char *)sb.p;
  L.s.cap = sb.cap;
  L.f = (cu_flags *)ctx->flag.p;
  msc_status st = MSC_OK;
  k_flags_reset<<<1, 1, 0, ctx->stream>>>(L.f);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) st = cu_rt_fail(e, "loss");
  if (st == MSC_OK) st = run_term(&L, x, x2, grad, grad2, &need, &nothing);
  cu_flags h;
  memset(&h, 0, sizeof h);
  if (st == MSC_OK) {
    e = cudaMemcpyAsync(&h, L.f, sizeof h, cudaMemcpyDeviceToHost, ctx->stream);
    if (e != cudaSuccess) st = cu_rt_fail(e, "loss value");
  }
  /* The scratch goes back to the cache only after the stream has finished with it. */
  msc_status sync = cu_sync(ctx, "loss");
  cu_buf_release(ctx, &sb);
  CU_CHECK(st);
  CU_CHECK(sync);
  if (h.bits) return report(&L, &h);
  CU_CHECK(cu_tensor_wrote(ctx, grad));
  if (grad2) CU_CHECK(cu_tensor_wrote(ctx, grad2));
  *value = nothing ? 0.0 : h.value;
  return MSC_OK;
}
