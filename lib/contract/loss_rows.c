/*
 * loss_rows.c — the MoSAiC loss terms on plain host rows (docs/losses.md), value and
 * gradient (layer: backend contract; compiled once into libmosaic, where the core's
 * msci_loss_* / msc_loss_* functions (loss.c, loss_api.c) and the CPU backend
 * (backends/cpu/cpu_loss.c) both run it). Validation, one scratch allocation per call,
 * and the matrix-level steps around the per-row core of loss_core.h; errors go through
 * the caller's fail function.
 *
 * Every contrastive term follows the same plan, O(K²·D) in all:
 *   1. ê_i = e_i / max(‖e_i‖, 1e-12) in double, and the transpose of the keys;
 *   2. the similarity matrix S = ÊÊᵀ/τ (or P̂Q̂ᵀ/τ), computed once, in blocks of 4 rows
 *      (msci_gemm_rows: 4×4 register tiles);
 *   3. per row, right after its block: the row's loss (log-sum-exp with the maximum
 *      subtracted) into an array, and, in place of S, G = ∂L/∂S;
 *   4. the rows' losses summed serially in row order;
 *   5. ∂L/∂ê_i = (1/τ) Σ_j (G_ij + G_ji) ê_j (G symmetrised in place), then through the
 *      normalisation Jacobian, then a range check before anything is stored as float.
 * MulSupCon adds O(K·Σ_i r_i) <= O(K²·C) for the positives of each (anchor, class) row.
 * Rows are split over OpenMP threads, but every value is computed by one thread in a
 * fixed order and reductions are serial: results are bit-identical for any thread count.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss_core.h"
#include "loss_rows.h"

/* Below this much arithmetic a parallel region costs more than it saves. */
#define PAR_MIN_WORK 65536.0

/* ---- validation ----------------------------------------------------------------------- */

static msc_status check_ptr(mbk_fail_fn fail, const char *term, const char *name,
                            const void *p) {
  if (!p) return fail(MSC_E_INVALID_ARGUMENT, "%s: %s is NULL", term, name);
  return MSC_OK;
}

static msc_status check_dim(mbk_fail_fn fail, const char *term, const char *name, int64_t v) {
  if (v <= 0)
    return fail(MSC_E_INVALID_ARGUMENT, "%s: %s = %lld, must be positive", term, name,
                (long long)v);
  return MSC_OK;
}

/* rows × cols elements of elem bytes must be addressable. */
static msc_status check_extent(mbk_fail_fn fail, const char *term, const char *what,
                               int64_t rows, int64_t cols, size_t elem) {
  if (rows > (int64_t)(PTRDIFF_MAX / elem) / cols)
    return fail(MSC_E_INVALID_ARGUMENT, "%s: %s = %lld × %lld is too large", term, what,
                (long long)rows, (long long)cols);
  return MSC_OK;
}

static msc_status check_tau(mbk_fail_fn fail, const char *term, float tau) {
  if (!isfinite(tau) || !(tau > 0.0f))
    return fail(MSC_E_INVALID_ARGUMENT, "%s: tau = %g, must be a finite temperature > 0", term,
                (double)tau);
  return MSC_OK;
}

static msc_status check_finite(mbk_fail_fn fail, const char *term, const char *name,
                               const float *x, int64_t rows, int64_t cols) {
  int64_t count = rows * cols;
  for (int64_t i = 0; i < count; ++i)
    if (!isfinite(x[i]))
      return fail(MSC_E_NUMERICAL, "%s: %s[%lld] (row %lld, column %lld) is %s", term, name,
                  (long long)i, (long long)(i / cols), (long long)(i % cols),
                  isnan(x[i]) ? "NaN" : (x[i] > 0 ? "+Inf" : "-Inf"));
  return MSC_OK;
}

/* Labels of the rows kept by mask (NULL: all) must be 0 or 1. */
static msc_status check_labels(mbk_fail_fn fail, const char *term, const char *name,
                               const uint8_t *y, int64_t rows, int64_t c, const uint8_t *mask) {
  for (int64_t i = 0; i < rows; ++i) {
    if (mask && !mask[i]) continue;
    for (int64_t t = 0; t < c; ++t)
      if (y[i * c + t] > 1)
        return fail(MSC_E_INVALID_ARGUMENT,
                    "%s: %s[%lld] (row %lld, class %lld) is %u; labels must be 0 or 1", term,
                    name, (long long)(i * c + t), (long long)i, (long long)t,
                    (unsigned)y[i * c + t]);
  }
  return MSC_OK;
}

/* ---- scratch -------------------------------------------------------------------------- */

/* *total += a·b doubles; 0 on overflow of size_t bytes. */
static int add_doubles(size_t *total, int64_t a, int64_t b) {
  const size_t cap = SIZE_MAX / sizeof(double);
  if (a < 0 || b < 0) return 0;
  if (b != 0 && (uint64_t)a > cap / (uint64_t)b) return 0;
  size_t n = (size_t)a * (size_t)b;
  if (n > cap - *total) return 0;
  *total += n;
  return 1;
}

/* The scratch of a call: the workspace's buffer (grown when too small, and kept), or
 * without a workspace an allocation that release() frees. */
static msc_status alloc_doubles(mbk_fail_fn fail, mbk_loss_ws *ws, const char *term,
                                size_t count, int ok, double **out) {
  if (ok && ws && ws->cap >= count) {
    *out = ws->buf;
    return MSC_OK;
  }
  *out = ok ? malloc((count ? count : 1) * sizeof(double)) : NULL;
  if (!*out)
    return fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory for the scratch (%s%zu doubles)", term,
                ok ? "" : "more than ", count);
  if (ws) {
    free(ws->buf);
    ws->buf = *out;
    ws->cap = count;
  }
  return MSC_OK;
}

static void release(mbk_loss_ws *ws, double *buf) {
  if (!ws) free(buf);
}

void mbk_loss_ws_free(mbk_loss_ws *ws) {
  if (!ws) return;
  free(ws->buf);
  ws->buf = NULL;
  ws->cap = 0;
}

/* ---- matrix steps ---------------------------------------------------------------------- */

/* Normalises rows [0, k) of x into zhat (k×d) with their norms. */
static void normalise_rows(const float *x, int64_t k, int64_t d, double *zhat, double *norm) {
#pragma omp parallel for schedule(static) if ((double)k * (double)d >= PAR_MIN_WORK)
  for (int64_t i = 0; i < k; ++i) norm[i] = msci_unit_normalise_row(x + i * d, d, zhat + i * d);
}

/* at (d×k) = aᵀ for a (k×d). */
static void transpose(const double *a, int64_t k, int64_t d, double *at) {
#pragma omp parallel for schedule(static) if ((double)k * (double)d >= PAR_MIN_WORK)
  for (int64_t t = 0; t < d; ++t)
    for (int64_t i = 0; i < k; ++i) at[t * k + i] = a[i * d + t];
}

/* Doubles of panel scratch for both products of a term with nk keys of size d: the
 * similarities (keysᵀ, d×nk) and the gradient (keys, nk×d). */
static int64_t panel_doubles(int64_t nk, int64_t d) {
  int64_t a = msci_panels_size(nk, d), b = msci_panels_size(d, nk);
  return a > b ? a : b;
}

/* Panels of keysᵀ (d×nk) for the similarity rows. */
static void pack_keys_t(const double *keys, int64_t nk, int64_t d, double *panel) {
  msci_pack_panels(keys, 1, d, nk, d, panel);
}

/* s (k×k) ← s + sᵀ, in place. Entry (i,j) and (j,i), j > i, belong to iteration i only. */
static void symmetrise(double *s, int64_t k) {
#pragma omp parallel for schedule(dynamic, 16) if ((double)k * (double)k >= PAR_MIN_WORK)
  for (int64_t i = 0; i < k; ++i) {
    double *si = s + i * k;
    si[i] *= 2.0;
    for (int64_t j = i + 1; j < k; ++j) {
      double v = si[j] + s[j * k + i];
      si[j] = v;
      s[j * k + i] = v;
    }
  }
}

/* Rows are processed in blocks of BLOCK (the register tile of msci_gemm_rows). */
#define BLOCK 4
static int64_t block_rows(int64_t b, int64_t k) {
  return k - b * BLOCK < BLOCK ? k - b * BLOCK : BLOCK;
}

/* gz (k×d) = ∂L/∂z: G·keys / τ (G k×nkeys, keys nkeys×d, packed into panel), then
 * the normalisation Jacobian of each row. */
static void grad_rows(const double *g, const double *keys, double *panel, int64_t k,
                      int64_t nkeys, int64_t d, double tau, const double *zhat,
                      const double *norm, double *gz) {
  msci_pack_panels(keys, d, 1, d, nkeys, panel);
  const int64_t nb = (k + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if ((double)k * (double)nkeys * (double)d >=         \
                                              PAR_MIN_WORK)
  for (int64_t b = 0; b < nb; ++b) {
    int64_t i0 = b * BLOCK, rows = block_rows(b, k);
    msci_gemm_rows(g + i0 * nkeys, nkeys, panel, rows, d, nkeys, tau, gz + i0 * d, d);
    for (int64_t i = i0; i < i0 + rows; ++i)
      msci_normalise_backward_row(zhat + i * d, norm[i], gz + i * d, d, gz + i * d);
  }
}

/* Every value of g must fit in a float (it can overflow only for tiny τ and ‖z‖). */
static msc_status check_grad_range(mbk_fail_fn fail, const char *term, const char *name,
                                   const double *g, int64_t rows, int64_t cols) {
  int64_t count = rows * cols;
  for (int64_t i = 0; i < count; ++i)
    if (!(fabs(g[i]) <= (double)FLT_MAX))
      return fail(MSC_E_NUMERICAL,
                  "%s: the gradient %s[%lld] (row %lld, column %lld) = %g overflows float",
                  term, name, (long long)i, (long long)(i / cols), (long long)(i % cols), g[i]);
  return MSC_OK;
}

static void store_grad(const double *g, int64_t count, float *out) {
#pragma omp parallel for schedule(static) if ((double)count >= PAR_MIN_WORK)
  for (int64_t i = 0; i < count; ++i) out[i] = (float)g[i];
}

static double sum_serial(const double *v, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += v[i];
  return s;
}

/* ---- NT-Xent ---------------------------------------------------------------------------- */

msc_status mbk_loss_rows_ntxent(mbk_fail_fn fail, mbk_loss_ws *ws, const float *za,
                                const float *zb, int64_t n, int64_t d, float tau, double *loss,
                                float *grad_a, float *grad_b) {
  static const char T[] = "NT-Xent";
  MBK_TRY(check_ptr(fail, T, "za", za));
  MBK_TRY(check_ptr(fail, T, "zb", zb));
  MBK_TRY(check_ptr(fail, T, "loss", loss));
  MBK_TRY(check_dim(fail, T, "n", n));
  MBK_TRY(check_dim(fail, T, "d", d));
  MBK_TRY(check_extent(fail, T, "n × d", n, d, 2 * sizeof(float)));
  MBK_TRY(check_tau(fail, T, tau));
  MBK_TRY(check_finite(fail, T, "za", za, n, d));
  MBK_TRY(check_finite(fail, T, "zb", zb, n, d));

  const int64_t k = 2 * n;
  size_t total = 0;
  const int64_t np = panel_doubles(k, d);
  int ok = add_doubles(&total, k, d) && add_doubles(&total, np, 1) &&
           add_doubles(&total, k, k) && add_doubles(&total, k, d) && add_doubles(&total, k, 2);
  double *buf;
  MBK_TRY(alloc_doubles(fail, ws, T, total, ok, &buf));
  double *zhat = buf, *panel = zhat + k * d, *s = panel + np, *gz = s + k * k,
         *norm = gz + k * d, *lrow = norm + k;

  normalise_rows(za, n, d, zhat, norm);
  normalise_rows(zb, n, d, zhat + n * d, norm + n);
  pack_keys_t(zhat, k, d, panel);
  const double scale = 1.0 / (double)k;
  const int64_t nb = (k + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if ((double)k * (double)k * (double)d >= PAR_MIN_WORK)
  for (int64_t b = 0; b < nb; ++b) {
    int64_t i0 = b * BLOCK, rows = block_rows(b, k);
    msci_gemm_rows(zhat + i0 * d, d, panel, rows, k, d, (double)tau, s + i0 * k, k);
    for (int64_t i = i0; i < i0 + rows; ++i)
      lrow[i] = msci_softmax_ce_row(s + i * k, k, i, i < n ? i + n : i - n, scale);
  }
  double value = sum_serial(lrow, k) * scale;

  if (grad_a || grad_b) {
    symmetrise(s, k);
    grad_rows(s, zhat, panel, k, k, d, (double)tau, zhat, norm, gz);
    if (grad_a) {
      msc_status st = check_grad_range(fail, T, "grad_a", gz, n, d);
      if (st != MSC_OK) return release(ws, buf), st;
    }
    if (grad_b) {
      msc_status st = check_grad_range(fail, T, "grad_b", gz + n * d, n, d);
      if (st != MSC_OK) return release(ws, buf), st;
    }
    if (grad_a) store_grad(gz, n * d, grad_a);
    if (grad_b) store_grad(gz + n * d, n * d, grad_b);
  }
  *loss = value;
  release(ws, buf);
  return MSC_OK;
}

/* ---- InfoNCE ---------------------------------------------------------------------------- */

msc_status mbk_loss_rows_infonce(mbk_fail_fn fail, mbk_loss_ws *ws, const float *zp,
                                 const float *zq, int64_t n, int64_t d, float tau, double *loss,
                                 float *grad_p, float *grad_q) {
  static const char T[] = "InfoNCE";
  MBK_TRY(check_ptr(fail, T, "zp", zp));
  MBK_TRY(check_ptr(fail, T, "zq", zq));
  MBK_TRY(check_ptr(fail, T, "loss", loss));
  MBK_TRY(check_dim(fail, T, "n", n));
  MBK_TRY(check_dim(fail, T, "d", d));
  MBK_TRY(check_extent(fail, T, "n × d", n, d, 2 * sizeof(float)));
  MBK_TRY(check_tau(fail, T, tau));
  MBK_TRY(check_finite(fail, T, "zp", zp, n, d));
  MBK_TRY(check_finite(fail, T, "zq", zq, n, d));

  size_t total = 0;
  /* p̂, q̂ (n×d each), panels, S and T (n×n each), ∂p, ∂q, norms and row losses. */
  const int64_t np = panel_doubles(n, d);
  int ok = add_doubles(&total, 2 * n, d) && add_doubles(&total, np, 1) &&
           add_doubles(&total, 2 * n, n) && add_doubles(&total, 2 * n, d) &&
           add_doubles(&total, 2 * n, 2);
  double *buf;
  MBK_TRY(alloc_doubles(fail, ws, T, total, ok, &buf));
  double *ph = buf, *qh = ph + n * d, *panel = qh + n * d, *s = panel + np, *st = s + n * n,
         *gp = st + n * n, *gq = gp + n * d, *norm = gq + n * d, *lrow = norm + 2 * n;

  normalise_rows(zp, n, d, ph, norm);
  normalise_rows(zq, n, d, qh, norm + n);
  pack_keys_t(qh, n, d, panel);
  const int64_t nb = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if ((double)n * (double)n * (double)d >= PAR_MIN_WORK)
  for (int64_t b = 0; b < nb; ++b) {
    int64_t i0 = b * BLOCK;
    msci_gemm_rows(ph + i0 * d, d, panel, block_rows(b, n), n, d, (double)tau, s + i0 * n, n);
  }
  transpose(s, n, n, st); /* st = Sᵀ: row j holds S_ij over i, the rows of CE(Sᵀ) */
  const double scale = 0.5 / (double)n;
#pragma omp parallel for schedule(static) if ((double)n * (double)n >= PAR_MIN_WORK)
  for (int64_t i = 0; i < 2 * n; ++i) {
    if (i < n)
      lrow[i] = msci_softmax_ce_row(s + i * n, n, -1, i, scale);
    else
      lrow[i] = msci_softmax_ce_row(st + (i - n) * n, n, -1, i - n, scale);
  }
  double value = sum_serial(lrow, 2 * n) * scale;

  if (grad_p || grad_q) {
    /* G_ij = ∂L/∂S_ij = A_ij + B_ji (A: rows of S, B: rows of Sᵀ); s ← G and st ← Gᵀ.
     * Iteration i owns row i of s and column i of st. */
#pragma omp parallel for schedule(static) if ((double)n * (double)n >= PAR_MIN_WORK)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double v = s[i * n + j] + st[j * n + i];
        s[i * n + j] = v;
        st[j * n + i] = v;
      }
    if (grad_p) grad_rows(s, qh, panel, n, n, d, (double)tau, ph, norm, gp);
    if (grad_q) grad_rows(st, ph, panel, n, n, d, (double)tau, qh, norm + n, gq);
    if (grad_p) {
      msc_status stt = check_grad_range(fail, T, "grad_p", gp, n, d);
      if (stt != MSC_OK) return release(ws, buf), stt;
    }
    if (grad_q) {
      msc_status stt = check_grad_range(fail, T, "grad_q", gq, n, d);
      if (stt != MSC_OK) return release(ws, buf), stt;
    }
    if (grad_p) store_grad(gp, n * d, grad_p);
    if (grad_q) store_grad(gq, n * d, grad_q);
  }
  *loss = value;
  release(ws, buf);
  return MSC_OK;
}

/* ---- MulSupCon -------------------------------------------------------------------------- */

msc_status mbk_loss_rows_mulsupcon(mbk_fail_fn fail, mbk_loss_ws *ws, const float *e,
                                   const uint8_t *y, int64_t k, int64_t d, int64_t c, float tau,
                                   int32_t per_anchor_weight, double *loss, float *grad) {
  static const char T[] = "MulSupCon";
  MBK_TRY(check_ptr(fail, T, "e", e));
  MBK_TRY(check_ptr(fail, T, "y", y));
  MBK_TRY(check_ptr(fail, T, "loss", loss));
  MBK_TRY(check_dim(fail, T, "k", k));
  MBK_TRY(check_dim(fail, T, "d", d));
  MBK_TRY(check_dim(fail, T, "c", c));
  MBK_TRY(check_extent(fail, T, "k × d", k, d, sizeof(float)));
  MBK_TRY(check_extent(fail, T, "k × c", k, c, 1));
  MBK_TRY(check_tau(fail, T, tau));
  MBK_TRY(check_labels(fail, T, "y", y, k, c, NULL));
  MBK_TRY(check_finite(fail, T, "e", e, k, d));

  size_t total = 0;
  /* ê (k×d), panels, S (k×k), ∂e (k×d), norms, row losses, weights; inv_pos (c). */
  const int64_t np = panel_doubles(k, d);
  int ok = add_doubles(&total, k, d) && add_doubles(&total, np, 1) &&
           add_doubles(&total, k, k) && add_doubles(&total, k, d) &&
           add_doubles(&total, k, 3) && add_doubles(&total, c, 1);
  double *buf;
  MBK_TRY(alloc_doubles(fail, ws, T, total, ok, &buf));
  double *zhat = buf, *panel = zhat + k * d, *s = panel + np, *gz = s + k * k,
         *norm = gz + k * d, *lrow = norm + k, *w = lrow + k, *inv_pos = w + k;

  /* 1/(n_c − 1) per class and the weight of every anchor (loss_core.h). */
  int64_t rows = msci_mulsupcon_weights(y, k, c, per_anchor_weight, inv_pos, w);
  if (rows == 0) { /* R = 0: L = 0 and no gradient */
    release(ws, buf);
    if (grad) memset(grad, 0, (size_t)(k * d) * sizeof(float));
    *loss = 0.0;
    return MSC_OK;
  }

  normalise_rows(e, k, d, zhat, norm);
  pack_keys_t(zhat, k, d, panel);
  const int64_t nb = (k + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if ((double)k * (double)k * (double)d >= PAR_MIN_WORK)
  for (int64_t b = 0; b < nb; ++b) {
    int64_t i0 = b * BLOCK, nr = block_rows(b, k);
    msci_gemm_rows(zhat + i0 * d, d, panel, nr, k, d, (double)tau, s + i0 * k, k);
    /* A sample that is not an anchor (a key only) gets a zero row from the core. */
    for (int64_t i = i0; i < i0 + nr; ++i)
      lrow[i] = msci_mulsupcon_row(s + i * k, y, k, c, i, inv_pos, w[i]);
  }
  double value = sum_serial(lrow, k);

  if (grad) {
    symmetrise(s, k);
    grad_rows(s, zhat, panel, k, k, d, (double)tau, zhat, norm, gz);
    msc_status st = check_grad_range(fail, T, "grad", gz, k, d);
    if (st != MSC_OK) return release(ws, buf), st;
    store_grad(gz, k * d, grad);
  }
  *loss = value;
  release(ws, buf);
  return MSC_OK;
}

/* ---- BCE -------------------------------------------------------------------------------- */

msc_status mbk_loss_rows_bce(mbk_fail_fn fail, mbk_loss_ws *ws, const float *logits,
                             const uint8_t *y, int64_t n, int64_t c, const uint8_t *row_mask,
                             double *loss, float *grad) {
  static const char T[] = "BCE";
  MBK_TRY(check_ptr(fail, T, "logits", logits));
  MBK_TRY(check_ptr(fail, T, "y", y));
  MBK_TRY(check_ptr(fail, T, "loss", loss));
  MBK_TRY(check_dim(fail, T, "n", n));
  MBK_TRY(check_dim(fail, T, "c", c));
  MBK_TRY(check_extent(fail, T, "n × c", n, c, sizeof(float)));
  MBK_TRY(check_labels(fail, T, "y", y, n, c, row_mask));
  MBK_TRY(check_finite(fail, T, "logits", logits, n, c));

  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) kept += !row_mask || row_mask[i];
  if (kept == 0) { /* no labelled row: 0 with a zero gradient */
    if (grad) memset(grad, 0, (size_t)(n * c) * sizeof(float));
    *loss = 0.0;
    return MSC_OK;
  }
  double *lrow;
  MBK_TRY(alloc_doubles(fail, ws, T, (size_t)n, 1, &lrow));
  const double scale = 1.0 / ((double)kept * (double)c);
#pragma omp parallel for schedule(static) if ((double)n * (double)c >= PAR_MIN_WORK)
  for (int64_t i = 0; i < n; ++i) {
    float *gi = grad ? grad + i * c : NULL;
    if (row_mask && !row_mask[i]) {
      if (gi) memset(gi, 0, (size_t)c * sizeof(float));
      lrow[i] = 0.0;
    } else {
      lrow[i] = msci_bce_row(logits + i * c, y + i * c, c, scale, gi);
    }
  }
  *loss = sum_serial(lrow, n) * scale;
  release(ws, lrow);
  return MSC_OK;
}

/* ---- single-label softmax cross-entropy ------------------------------------------------ */

msc_status mbk_loss_rows_softmax_ce(mbk_fail_fn fail, mbk_loss_ws *ws, const float *logits,
                                    const uint8_t *y, int64_t n, int64_t c,
                                    const uint8_t *row_mask, double *loss, float *grad) {
  static const char T[] = "softmax CE";
  MBK_TRY(check_ptr(fail, T, "logits", logits));
  MBK_TRY(check_ptr(fail, T, "y", y));
  MBK_TRY(check_ptr(fail, T, "loss", loss));
  MBK_TRY(check_dim(fail, T, "n", n));
  MBK_TRY(check_dim(fail, T, "c", c));
  MBK_TRY(check_extent(fail, T, "n × c", n, c, sizeof(float)));
  MBK_TRY(check_labels(fail, T, "y", y, n, c, row_mask));
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (row_mask && !row_mask[i]) continue;
    kept++;
    if (msci_onehot_index(y + i * c, c) < 0) {
      int64_t pos = 0;
      for (int64_t t = 0; t < c; ++t) pos += y[i * c + t];
      return fail(MSC_E_INVALID_ARGUMENT,
                  "%s: row %lld has %lld positive labels; single-label training needs "
                  "exactly one per labelled row",
                  T, (long long)i, (long long)pos);
    }
  }
  MBK_TRY(check_finite(fail, T, "logits", logits, n, c));
  if (kept == 0) { /* no labelled row: 0 with a zero gradient */
    if (grad) memset(grad, 0, (size_t)(n * c) * sizeof(float));
    *loss = 0.0;
    return MSC_OK;
  }
  double *lrow;
  MBK_TRY(alloc_doubles(fail, ws, T, (size_t)n, 1, &lrow));
  const double scale = 1.0 / (double)kept;
#pragma omp parallel for schedule(static) if ((double)n * (double)c >= PAR_MIN_WORK)
  for (int64_t i = 0; i < n; ++i) {
    float *gi = grad ? grad + i * c : NULL;
    if (row_mask && !row_mask[i]) {
      if (gi) memset(gi, 0, (size_t)c * sizeof(float));
      lrow[i] = 0.0;
    } else {
      lrow[i] = msci_softmax_ce_logits_row(logits + i * c, c, msci_onehot_index(y + i * c, c),
                                           scale, gi);
    }
  }
  *loss = sum_serial(lrow, n) * scale;
  release(ws, lrow);
  return MSC_OK;
}

/* ---- per-pixel terms (N×C×H×W logits) ------------------------------------------------ */

/* n, c, h, w positive and n·c·h·w floats addressable. */
static msc_status check_image_dims(mbk_fail_fn fail, const char *term, int64_t n, int64_t c,
                                   int64_t h, int64_t w) {
  MBK_TRY(check_dim(fail, term, "n", n));
  MBK_TRY(check_dim(fail, term, "c", c));
  MBK_TRY(check_dim(fail, term, "h", h));
  MBK_TRY(check_dim(fail, term, "w", w));
  MBK_TRY(check_extent(fail, term, "h × w", h, w, sizeof(float)));
  MBK_TRY(check_extent(fail, term, "n × c", n, c, sizeof(float)));
  MBK_TRY(check_extent(fail, term, "n × c × h × w", n * c, h * w, sizeof(float)));
  return MSC_OK;
}

/* Every logit finite; a bad one is named by image, channel and pixel. */
static msc_status check_finite_images(mbk_fail_fn fail, const char *term, const float *x,
                                      int64_t n, int64_t c, int64_t h, int64_t w) {
  const int64_t hw = h * w, count = n * c * hw;
  for (int64_t i = 0; i < count; ++i)
    if (!isfinite(x[i]))
      return fail(MSC_E_NUMERICAL,
                  "%s: logits[%lld] (image %lld, channel %lld, y %lld, x %lld) is %s", term,
                  (long long)i, (long long)(i / (c * hw)), (long long)(i / hw % c),
                  (long long)(i % hw / w), (long long)(i % w),
                  isnan(x[i]) ? "NaN" : (x[i] > 0 ? "+Inf" : "-Inf"));
  return MSC_OK;
}

/* Every class index a class of [0, c) or the ignore index; a bad one named by pixel. */
static msc_status check_targets(mbk_fail_fn fail, const char *term, const int32_t *t, int64_t n,
                                int64_t c, int64_t h, int64_t w, int32_t ignore) {
  const int64_t hw = h * w;
  int64_t i = msci_first_bad_target(t, n * hw, c, ignore);
  if (i < 0) return MSC_OK;
  return fail(MSC_E_INVALID_ARGUMENT,
              "%s: target[%lld] (image %lld, y %lld, x %lld) = %d is neither a class in "
              "[0, %lld) nor the ignore index %d",
              term, (long long)i, (long long)(i / hw), (long long)(i % hw / w),
              (long long)(i % w), (int)t[i], (long long)c, (int)ignore);
}

/* c weights, each finite and >= 0 (NULL: none given). */
static msc_status check_weights(mbk_fail_fn fail, const char *term, const char *name,
                                const float *v, int64_t c) {
  for (int64_t j = 0; v && j < c; ++j)
    if (!isfinite(v[j]) || v[j] < 0.0f)
      return fail(MSC_E_INVALID_ARGUMENT, "%s: %s[%lld] = %g, must be finite and >= 0", term,
                  name, (long long)j, (double)v[j]);
  return MSC_OK;
}

msc_status mbk_loss_rows_pixel_ce(mbk_fail_fn fail, mbk_loss_ws *ws, const float *logits,
                                  const int32_t *target, int64_t n, int64_t c, int64_t h,
                                  int64_t w, int32_t ignore_index, const float *class_weight,
                                  double *loss, float *grad) {
  static const char T[] = "pixel CE";
  MBK_TRY(check_ptr(fail, T, "logits", logits));
  MBK_TRY(check_ptr(fail, T, "target", target));
  MBK_TRY(check_ptr(fail, T, "loss", loss));
  MBK_TRY(check_image_dims(fail, T, n, c, h, w));
  MBK_TRY(check_targets(fail, T, target, n, c, h, w, ignore_index));
  MBK_TRY(check_weights(fail, T, "class_weight", class_weight, c));
  MBK_TRY(check_finite_images(fail, T, logits, n, c, h, w));
  const int64_t hw = h * w, rows = n * h;
  /* Σ w_t over counted pixels, serially in pixel order. */
  double wsum = 0.0;
  for (int64_t i = 0; i < n * hw; ++i)
    if (target[i] != ignore_index) wsum += class_weight ? (double)class_weight[target[i]] : 1.0;
  if (!(wsum > 0.0)) { /* nothing counted (or only weight 0): 0 with a zero gradient */
    if (grad) memset(grad, 0, (size_t)(n * c * hw) * sizeof(float));
    *loss = 0.0;
    return MSC_OK;
  }
  double *lrow;
  MBK_TRY(alloc_doubles(fail, ws, T, (size_t)rows, 1, &lrow));
  const double scale = 1.0 / wsum;
  /* One image row (image b, row yy) per iteration: its pixels in x order. */
#pragma omp parallel for schedule(static) if ((double)rows * (double)w * (double)c >=          \
                                              PAR_MIN_WORK)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t b = r / h, off = b * c * hw + (r % h) * w;
    double acc = 0.0;
    for (int64_t x = 0; x < w; ++x) {
      const int32_t t = target[r * w + x];
      float *g = grad ? grad + off + x : NULL;
      if (t == ignore_index) {
        for (int64_t j = 0; g && j < c; ++j) g[j * hw] = 0.0f;
        continue;
      }
      const double wt = class_weight ? (double)class_weight[t] : 1.0;
      acc += wt * msci_softmax_ce_strided(logits + off + x, c, hw, t, wt * scale, g);
    }
    lrow[r] = acc;
  }
  *loss = sum_serial(lrow, rows) * scale;
  release(ws, lrow);
  return MSC_OK;
}

msc_status mbk_loss_rows_pixel_bce(mbk_fail_fn fail, mbk_loss_ws *ws, const float *logits,
                                   const float *target, const uint8_t *mask, int64_t n,
                                   int64_t k, int64_t h, int64_t w, const float *pos_weight,
                                   double *loss, float *grad) {
  static const char T[] = "pixel BCE";
  MBK_TRY(check_ptr(fail, T, "logits", logits));
  MBK_TRY(check_ptr(fail, T, "target", target));
  MBK_TRY(check_ptr(fail, T, "loss", loss));
  MBK_TRY(check_image_dims(fail, T, n, k, h, w));
  MBK_TRY(check_weights(fail, T, "pos_weight", pos_weight, k));
  const int64_t hw = h * w, count = n * k * hw;
  int64_t counted = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (mask && !mask[i]) continue;
    counted++;
    if (!(target[i] >= 0.0f && target[i] <= 1.0f))
      return fail(MSC_E_INVALID_ARGUMENT,
                  "%s: target[%lld] (image %lld, channel %lld, y %lld, x %lld) = %g, must be "
                  "in [0, 1]",
                  T, (long long)i, (long long)(i / (k * hw)), (long long)(i / hw % k),
                  (long long)(i % hw / w), (long long)(i % w), (double)target[i]);
  }
  MBK_TRY(check_finite_images(fail, T, logits, n, k, h, w));
  if (counted == 0) { /* nothing counted: 0 with a zero gradient */
    if (grad) memset(grad, 0, (size_t)count * sizeof(float));
    *loss = 0.0;
    return MSC_OK;
  }
  const int64_t rows = n * k * h; /* rows of w elements: (image, channel, y) */
  double *lrow;
  MBK_TRY(alloc_doubles(fail, ws, T, (size_t)rows, 1, &lrow));
  const double scale = 1.0 / (double)counted;
#pragma omp parallel for schedule(static) if ((double)count >= PAR_MIN_WORK)
  for (int64_t r = 0; r < rows; ++r) {
    const double pw = pos_weight ? (double)pos_weight[r / h % k] : 1.0;
    double acc = 0.0;
    for (int64_t i = r * w; i < (r + 1) * w; ++i) {
      if (mask && !mask[i]) {
        if (grad) grad[i] = 0.0f;
        continue;
      }
      double g;
      acc += msci_bce_soft_elem((double)logits[i], (double)target[i], pw, &g);
      if (grad) grad[i] = (float)(scale * g);
    }
    lrow[r] = acc;
  }
  *loss = sum_serial(lrow, rows) * scale;
  release(ws, lrow);
  return MSC_OK;
}

msc_status mbk_loss_rows_dice(mbk_fail_fn fail, mbk_loss_ws *ws, const float *logits,
                              const int32_t *target, int64_t n, int64_t c, int64_t h, int64_t w,
                              int32_t ignore_index, double *loss, float *grad) {
  static const char T[] = "Dice";
  MBK_TRY(check_ptr(fail, T, "logits", logits));
  MBK_TRY(check_ptr(fail, T, "target", target));
  MBK_TRY(check_ptr(fail, T, "loss", loss));
  MBK_TRY(check_image_dims(fail, T, n, c, h, w));
  MBK_TRY(check_targets(fail, T, target, n, c, h, w, ignore_index));
  MBK_TRY(check_finite_images(fail, T, logits, n, c, h, w));
  const int64_t hw = h * w, rows = n * h;
  int64_t counted = 0;
  for (int64_t i = 0; i < n * hw; ++i) counted += target[i] != ignore_index;
  if (counted == 0) { /* nothing counted: 0 with a zero gradient */
    if (grad) memset(grad, 0, (size_t)(n * c * hw) * sizeof(float));
    *loss = 0.0;
    return MSC_OK;
  }
  /* Per image row: I, P, G (3c doubles), reduced serially in row order; then the totals
   * (3c) and the coefficients a, b (2c). */
  size_t total = 0;
  int ok = add_doubles(&total, rows + 1, 3 * c) && add_doubles(&total, 2, c);
  double *buf;
  MBK_TRY(alloc_doubles(fail, ws, T, total, ok, &buf));
  double *part = buf, *sums = part + rows * 3 * c, *a = sums + 3 * c, *b = a + c;
#pragma omp parallel for schedule(static) if ((double)rows * (double)w * (double)c >=          \
                                              PAR_MIN_WORK)
  for (int64_t r = 0; r < rows; ++r) {
    double *in = part + r * 3 * c, *ps = in + c, *gs = ps + c;
    for (int64_t j = 0; j < 3 * c; ++j) in[j] = 0.0;
    const int64_t off = (r / h) * c * hw + (r % h) * w;
    for (int64_t x = 0; x < w; ++x) {
      const int32_t t = target[r * w + x];
      if (t != ignore_index) msci_dice_pixel_sums(logits + off + x, c, hw, t, in, ps, gs);
    }
  }
  for (int64_t j = 0; j < 3 * c; ++j) sums[j] = 0.0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < 3 * c; ++j) sums[j] += part[r * 3 * c + j];
  double value = msci_dice_coefs(sums, sums + c, sums + 2 * c, c, a, b);
  if (grad) {
#pragma omp parallel for schedule(static) if ((double)rows * (double)w * (double)c >=          \
                                              PAR_MIN_WORK)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t off = (r / h) * c * hw + (r % h) * w;
      for (int64_t x = 0; x < w; ++x) {
        const int32_t t = target[r * w + x];
        float *g = grad + off + x;
        if (t == ignore_index)
          for (int64_t j = 0; j < c; ++j) g[j * hw] = 0.0f;
        else
          msci_dice_pixel_grad(logits + off + x, c, hw, t, a, b, g);
      }
    }
  }
  *loss = value;
  release(ws, buf);
  return MSC_OK;
}
