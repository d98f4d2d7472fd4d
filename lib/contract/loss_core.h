/*
 * loss_core.h — the per-row numerical core of the MoSAiC loss terms (docs/losses.md):
 * normalisation and its Jacobian, blocks of similarity and gradient rows (a small
 * register-tiled product over packed panels), log-sum-exp softmax cross-entropy rows,
 * the MulSupCon weights and row, the logistic BCE element and row, the single-label
 * softmax cross-entropy row over logits, and the per-pixel terms (softmax CE of one
 * pixel, soft-target BCE with a positive weight, soft Dice sums, coefficients and
 * gradient) (layer: backend
 * contract: shared by the core, the CPU backend and the CUDA module).
 *
 * Every function here (but msci_mulsupcon_weights and msci_first_bad_target, which are
 * host-only) runs on the host and on a device. Each is a pure function of its
 * arguments: no library calls, no allocation, no global state, no error reporting
 * (callers validate first and pass scratch). They are `static inline` in this header rather than defined in a .c file
 * so that the CUDA backend (backends/cuda/cuda_loss.cu) can compile the same code as device code:
 * it defines MSCI_HD as `__host__ __device__` before including this header, and each
 * translation unit gets its own copy without relocatable device code (-rdc) or a
 * separate device link step. The header is also valid C++ (no VLAs, no compound
 * literals, no `restrict`, explicit casts).
 *
 * Precision: embeddings are normalised into double arrays, and similarities, softmax
 * probabilities and gradients are computed in double; only the final gradient is
 * rounded to float by the caller.
 *
 * Layouts: row-major. A similarity row s[0..k-1] for anchor i holds s_ij = ê_i·ê_j/τ.
 * Every sum runs in a fixed index order, so a given input always gives the same bits,
 * whichever rows a thread (or a CUDA thread block) is given.
 */
#ifndef MOSAIC_LIB_LOSS_CORE_H
#define MOSAIC_LIB_LOSS_CORE_H

#include <math.h>
#include <stdint.h>

/* Execution-space qualifier of the core functions: empty on the host, defined as
 * `__host__ __device__` by CUDA translation units before they include this header. */
#ifndef MSCI_HD
#define MSCI_HD
#endif

/* The floor of ẑ = z / max(‖z‖₂, 1e-12) (docs/losses.md, "Conventions"). */
#define MSCI_NORM_EPS 1e-12

/* Dot product of two double vectors of length d, accumulated in index order. */
static inline MSCI_HD double msci_dot(const double *a, const double *b, int64_t d) {
  double s = 0.0;
  for (int64_t t = 0; t < d; ++t) s += a[t] * b[t];
  return s;
}

/*
 * ẑ = z / max(‖z‖₂, 1e-12) for one row of d floats, written to zhat (double).
 * Returns ‖z‖₂ itself (without the floor): msci_normalise_backward_row needs it.
 * The squares are summed in double, so no finite float row can overflow.
 */
static inline MSCI_HD double msci_unit_normalise_row(const float *z, int64_t d, double *zhat) {
  double ss = 0.0;
  for (int64_t t = 0; t < d; ++t) ss += (double)z[t] * (double)z[t];
  double norm = sqrt(ss);
  double inv = 1.0 / (norm > MSCI_NORM_EPS ? norm : MSCI_NORM_EPS);
  for (int64_t t = 0; t < d; ++t) zhat[t] = (double)z[t] * inv;
  return norm;
}

/*
 * Back through the normalisation: given g = ∂L/∂ẑ for one row, writes ∂L/∂z to out:
 *   ‖z‖ >= 1e-12:  (I − ẑẑᵀ) g / ‖z‖      (ẑ is then a unit vector)
 *   ‖z‖ <  1e-12:  g / 1e-12               (the floor is a constant: ẑ = z / 1e-12)
 * norm is ‖z‖ as returned by msci_unit_normalise_row. out may be g itself.
 */
static inline MSCI_HD void msci_normalise_backward_row(const double *zhat, double norm,
                                                       const double *g, int64_t d,
                                                       double *out) {
  if (norm >= MSCI_NORM_EPS) {
    double proj = msci_dot(zhat, g, d);
    double inv = 1.0 / norm;
    for (int64_t t = 0; t < d; ++t) out[t] = (g[t] - zhat[t] * proj) * inv;
  } else {
    for (int64_t t = 0; t < d; ++t) out[t] = g[t] * (1.0 / MSCI_NORM_EPS);
  }
}

/* Width of the column panels of msci_pack_panels / msci_gemm_rows. */
#define MSCI_PANEL 4

/* Number of doubles msci_pack_panels writes for n columns of p rows. */
static inline MSCI_HD int64_t msci_panels_size(int64_t n, int64_t p) {
  return (n + MSCI_PANEL - 1) / MSCI_PANEL * MSCI_PANEL * p;
}

/*
 * Packs the p×n matrix B, B[t][j] = src[t·ld_row + j·ld_col], into panels of
 * MSCI_PANEL columns: panel q holds rows t = 0..p-1 of columns 4q..4q+3 contiguously,
 * dst[(q·p + t)·4 + u] = B[t][4q + u], zero past column n. The packed panel is read
 * sequentially by msci_gemm_rows (whatever the strides of B were: a power-of-two
 * leading dimension would otherwise map every row of a panel to the same cache set).
 */
static inline MSCI_HD void msci_pack_panels(const double *src, int64_t ld_row, int64_t ld_col,
                                            int64_t n, int64_t p, double *dst) {
  for (int64_t q = 0; q * MSCI_PANEL < n; ++q)
    for (int64_t t = 0; t < p; ++t)
      for (int64_t u = 0; u < MSCI_PANEL; ++u) {
        int64_t j = q * MSCI_PANEL + u;
        dst[(q * p + t) * MSCI_PANEL + u] = j < n ? src[t * ld_row + j * ld_col] : 0.0;
      }
}

/*
 * Rows [0, rows) of C = (A·B) / div: A is rows×p row-major (leading dimension lda),
 * B is p×n given packed by msci_pack_panels, C is rows×n row-major (ldc). Every element
 * is summed over t = 0..p-1 in increasing order starting from 0, so the result does not
 * depend on how callers split the rows (any thread count gives the same bits).
 * Register tiles of 4 rows × 4 columns. Used for the similarity rows (A = anchors Ê,
 * B = keysᵀ) and for the gradient rows (A = rows of ∂L/∂S symmetrised, B = keys).
 */
static inline MSCI_HD void msci_gemm_rows(const double *a, int64_t lda, const double *bp,
                                          int64_t rows, int64_t n, int64_t p, double div,
                                          double *c, int64_t ldc) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    for (int64_t j = 0; j < n; j += MSCI_PANEL) {
      const double *panel = bp + j * p; /* panel j/4 starts at (j/4)·p·4 */
      double acc[4][MSCI_PANEL] = {{0.0}};
      for (int64_t t = 0; t < p; ++t) {
        const double *bt = panel + t * MSCI_PANEL;
        for (int u = 0; u < 4; ++u) {
          double x = a[(r + u) * lda + t];
          for (int v = 0; v < MSCI_PANEL; ++v) acc[u][v] += x * bt[v];
        }
      }
      for (int u = 0; u < 4; ++u)
        for (int v = 0; v < MSCI_PANEL && j + v < n; ++v)
          c[(r + u) * ldc + j + v] = acc[u][v] / div;
    }
  }
  for (; r < rows; ++r) {
    const double *ar = a + r * lda;
    for (int64_t j = 0; j < n; ++j) {
      const double *col = bp + (j / MSCI_PANEL) * p * MSCI_PANEL + j % MSCI_PANEL;
      double sum = 0;
      for (int64_t t = 0; t < p; ++t) sum += ar[t] * col[t * MSCI_PANEL];
      c[r * ldc + j] = sum / div;
    }
  }
}

/* max_{j≠skip} s[j] over j = 0..k-1 (skip < 0: none left out); −HUGE_VAL if none. */
static inline MSCI_HD double msci_row_max(const double *s, int64_t k, int64_t skip) {
  double m = -HUGE_VAL;
  for (int64_t j = 0; j < k; ++j)
    if (j != skip && s[j] > m) m = s[j];
  return m;
}

/*
 * In place: s[j] ← exp(s[j] − m) for j ≠ skip and s[skip] ← 0; returns the sum. With
 * m = msci_row_max(...) every term is <= 1 and the maximum gives exactly 1, so the sum
 * is in [1, k] and the log-sum-exp m + log(sum) cannot overflow.
 */
static inline MSCI_HD double msci_exp_row(double *s, int64_t k, int64_t skip, double m) {
  double sum = 0.0;
  for (int64_t j = 0; j < k; ++j) {
    if (j == skip) {
      s[j] = 0.0;
      continue;
    }
    s[j] = exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}

/* log Σ_{j≠skip} exp s[j] with the maximum subtracted (s is not modified; at least one
 * index besides skip). */
static inline MSCI_HD double msci_lse_row(const double *s, int64_t k, int64_t skip) {
  double m = msci_row_max(s, k, skip);
  double sum = 0.0;
  for (int64_t j = 0; j < k; ++j)
    if (j != skip) sum += exp(s[j] - m);
  return m + log(sum);
}

/*
 * One softmax cross-entropy row, in place: l = −s[target] + log Σ_{j≠skip} exp s[j]
 * (skip < 0: none left out; target ≠ skip). Returns l, computed as
 * log(sum) + (max − s[target]) (two non-negative terms), and replaces s by
 * ∂(scale·l)/∂s = scale·(p − onehot(target)), p_j = softmax over j ≠ skip, 0 at skip.
 * One exp per element. NT-Xent rows use skip = i, target = pos(i); InfoNCE rows
 * skip = -1, target = i.
 */
static inline MSCI_HD double msci_softmax_ce_row(double *s, int64_t k, int64_t skip,
                                                 int64_t target, double scale) {
  double m = msci_row_max(s, k, skip);
  double st = s[target];
  double sum = msci_exp_row(s, k, skip, m);
  double inv = 1.0 / sum;
  for (int64_t j = 0; j < k; ++j) s[j] = scale * (s[j] * inv - (j == target ? 1.0 : 0.0));
  return log(sum) + (m - st);
}

/*
 * Number of MulSupCon rows of anchor i: classes c with y_ic = 1 and at least one other
 * positive, i.e. inv_pos[c] > 0 (inv_pos[c] = 1/(n_c − 1) when n_c >= 2, else 0, where
 * n_c is the number of samples with y_jc = 1). y_i points at the anchor's c labels.
 */
static inline MSCI_HD int64_t msci_mulsupcon_row_count(const uint8_t *y_i, int64_t c,
                                                       const double *inv_pos) {
  int64_t r = 0;
  for (int64_t t = 0; t < c; ++t) r += (y_i[t] && inv_pos[t] > 0.0) ? 1 : 0;
  return r;
}

/*
 * The host part of MulSupCon, before any row: inv_pos[t] = 1/(n_t − 1) for classes with
 * n_t >= 2 positives among the k samples (else 0: rows skipped), and the weight w[i] of
 * every anchor: 1/R, or with per_anchor 1/(|y_i|·K_a) (K_a anchors with at least one
 * row; |y_i| all of the anchor's labels, skipped rows included); 0 for a sample that is
 * no anchor. y is k×c (0/1). Returns R, the number of rows (0: w is left at 0 and the
 * term is 0). Shared by every loss driver (loss_rows.c on the host, the CUDA backend).
 */
static inline int64_t msci_mulsupcon_weights(const uint8_t *y, int64_t k, int64_t c,
                                             int32_t per_anchor, double *inv_pos, double *w) {
  for (int64_t t = 0; t < c; ++t) inv_pos[t] = 0.0;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t t = 0; t < c; ++t) inv_pos[t] += (double)y[i * c + t];
  for (int64_t t = 0; t < c; ++t)
    inv_pos[t] = inv_pos[t] >= 2.0 ? 1.0 / (inv_pos[t] - 1.0) : 0.0;
  /* Rows per anchor: R in all, K_a anchors with at least one row. */
  int64_t rows = 0, anchors = 0;
  for (int64_t i = 0; i < k; ++i) {
    int64_t r = msci_mulsupcon_row_count(y + i * c, c, inv_pos);
    rows += r;
    anchors += r > 0;
    w[i] = (double)r; /* the weights come below, once R and K_a are known */
  }
  for (int64_t i = 0; rows > 0 && i < k; ++i) {
    if (w[i] == 0.0) continue;
    if (per_anchor) {
      int64_t labels = 0;
      for (int64_t t = 0; t < c; ++t) labels += y[i * c + t];
      w[i] = 1.0 / ((double)labels * (double)anchors);
    } else {
      w[i] = 1.0 / (double)rows;
    }
  }
  return rows;
}

/*
 * Every MulSupCon row (i, c) of anchor i at once, in place on its similarity row s
 * (length k). The anchor's rows are r = (i, c) with y_ic = 1 and inv_pos[c] > 0, with
 * positives P_r = {j ≠ i : y_jc = 1} (|P_r| = 1/inv_pos[c]); r_i is their number,
 * lse = log Σ_{j≠i} exp s_j and p_j = exp(s_j − lse):
 *   returns  w · Σ_r (1/|P_r|) Σ_{j∈P_r} (lse − s_j)                 (= w · Σ_r loss_r)
 *   writes   s_j ← w · (r_i p_j − Σ_{r: j∈P_r} 1/|P_r|)  for j ≠ i,  s_i ← 0
 * (the derivative of the return value in s_ij: a key sharing several labels with the
 * anchor counts once per shared label). y is the k×c label matrix. The value is
 * accumulated as r_i·log(sum) + Σ_r (1/|P_r|) Σ_{j∈P_r} (max − s_j), non-negative terms
 * only. Cost O(k·(r_i + 1)): the positives of a row come from a scan of column c of y.
 * An anchor without rows (r_i = 0) returns 0 and gets a zero row.
 */
static inline MSCI_HD double msci_mulsupcon_row(double *s, const uint8_t *y, int64_t k,
                                                int64_t c, int64_t i, const double *inv_pos,
                                                double w) {
  const uint8_t *y_i = y + i * c;
  int64_t r_i = msci_mulsupcon_row_count(y_i, c, inv_pos);
  if (r_i == 0) {
    for (int64_t j = 0; j < k; ++j) s[j] = 0.0;
    return 0.0;
  }
  double m = msci_row_max(s, k, i);
  double acc = 0.0;
  for (int64_t t = 0; t < c; ++t) {
    if (!y_i[t] || !(inv_pos[t] > 0.0)) continue;
    double part = 0.0;
    for (int64_t j = 0; j < k; ++j)
      if (j != i && y[j * c + t]) part += m - s[j];
    acc += inv_pos[t] * part;
  }
  double sum = msci_exp_row(s, k, i, m);
  double loss = w * ((double)r_i * log(sum) + acc);
  double q = w * (double)r_i / sum;
  for (int64_t j = 0; j < k; ++j) s[j] *= q; /* s_i stays 0 */
  for (int64_t t = 0; t < c; ++t) {
    if (!y_i[t] || !(inv_pos[t] > 0.0)) continue;
    double v = w * inv_pos[t];
    for (int64_t j = 0; j < k; ++j)
      if (j != i && y[j * c + t]) s[j] -= v;
  }
  return loss;
}

/*
 * Logistic BCE of one logit x with target y (0 or 1):
 *   returns max(x,0) − x·y + log(1 + e^{−|x|})   (= −y log σ(x) − (1−y) log(1−σ(x)))
 *   *grad = σ(x) − y                             (its derivative in x)
 * with one exp, e^{−|x|} <= 1, for both: σ(x) = 1/(1+e) for x >= 0, e/(1+e) below, so
 * nothing overflows for any finite x.
 */
static inline MSCI_HD double msci_bce_elem(double x, int y, double *grad) {
  double yy = y ? 1.0 : 0.0;
  double e = exp(-fabs(x));
  double sig = x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
  *grad = sig - yy;
  return (x > 0.0 ? x : 0.0) - x * yy + log1p(e);
}

/*
 * One BCE row of c logits: returns Σ_t bce(x_t, y_t) (unscaled) and, when grad is not
 * NULL, writes grad[t] = scale · (σ(x_t) − y_t).
 */
static inline MSCI_HD double msci_bce_row(const float *x, const uint8_t *y, int64_t c,
                                          double scale, float *grad) {
  double sum = 0.0;
  for (int64_t t = 0; t < c; ++t) {
    double g;
    sum += msci_bce_elem((double)x[t], y[t], &g);
    if (grad) grad[t] = (float)(scale * g);
  }
  return sum;
}

/*
 * Index of the single positive label of a row of c 0/1 bytes, or −1 when the row does
 * not have exactly one positive (none, or several): single-label rows are one-hot.
 */
static inline MSCI_HD int64_t msci_onehot_index(const uint8_t *y, int64_t c) {
  int64_t at = -1;
  for (int64_t t = 0; t < c; ++t) {
    if (!y[t]) continue;
    if (at >= 0) return -1;
    at = t;
  }
  return at;
}

/*
 * One softmax cross-entropy over c logits spaced `stride` floats apart (x[j·stride]) with
 * target class `target`:
 *   returns −x_target + log Σ_j exp x_j, computed as log(sum) + (max − x_target) with
 *   sum = Σ_j exp(x_j − max) ∈ [1, c] (log-sum-exp stable: no overflow for any finite x);
 *   grad (when not NULL): grad[j·stride] = scale · (p_j − [j = target]), p = softmax(x).
 * Two passes of exp over the logits rather than a scratch row, so that a device thread
 * needs no memory beyond its output. A row of logits has stride 1; one pixel of an
 * N×C×H×W tensor has stride H·W.
 */
static inline MSCI_HD double msci_softmax_ce_strided(const float *x, int64_t c, int64_t stride,
                                                     int64_t target, double scale,
                                                     float *grad) {
  double m = -HUGE_VAL;
  for (int64_t j = 0; j < c; ++j)
    if ((double)x[j * stride] > m) m = (double)x[j * stride];
  double sum = 0.0;
  for (int64_t j = 0; j < c; ++j) sum += exp((double)x[j * stride] - m);
  if (grad) {
    double inv = 1.0 / sum;
    for (int64_t j = 0; j < c; ++j)
      grad[j * stride] =
          (float)(scale * (exp((double)x[j * stride] - m) * inv - (j == target ? 1.0 : 0.0)));
  }
  return log(sum) + (m - (double)x[target * stride]);
}

/* The single-label softmax cross-entropy row of c contiguous logits (see above). */
static inline MSCI_HD double msci_softmax_ce_logits_row(const float *x, int64_t c,
                                                        int64_t target, double scale,
                                                        float *grad) {
  return msci_softmax_ce_strided(x, c, 1, target, scale, grad);
}

/* ---- per-pixel terms (N×C×H×W logits; docs/losses.md, "Per-pixel losses") ------------- */

/*
 * Index of the first class index of t[0..count-1] that is neither `ignore` nor in
 * [0, c), or −1 when every one is valid (host-only: the callers name the pixel).
 */
static inline int64_t msci_first_bad_target(const int32_t *t, int64_t count, int64_t c,
                                            int32_t ignore) {
  for (int64_t i = 0; i < count; ++i)
    if (t[i] != ignore && (t[i] < 0 || (int64_t)t[i] >= c)) return i;
  return -1;
}

/*
 * Logistic BCE of one logit x with a soft target y ∈ [0, 1] and a positive weight pw
 * (PyTorch's BCEWithLogitsLoss(pos_weight=)): l = −pw·y·log σ(x) − (1−y)·log(1−σ(x)),
 *   returns (1−y)·x + (1 + (pw−1)·y)·(log(1 + e^{−|x|}) + max(−x, 0))
 *   *grad = (1 + (pw−1)·y)·σ(x) − pw·y                  (its derivative in x)
 * with one exp, e^{−|x|} <= 1 (as msci_bce_elem, which this equals for pw = 1, y ∈ {0,1}).
 */
static inline MSCI_HD double msci_bce_soft_elem(double x, double y, double pw, double *grad) {
  double e = exp(-fabs(x));
  double sig = x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
  double k = 1.0 + (pw - 1.0) * y;
  *grad = k * sig - pw * y;
  return (1.0 - y) * x + k * (log1p(e) + (x < 0.0 ? -x : 0.0));
}

/* Smoothing ε of the soft Dice ratio (2·I + ε)/(P + G + ε). */
#define MSCI_DICE_EPS 1.0

/*
 * The softmax of one pixel's c logits (stride apart): *m = max x_j and returns
 * Σ_j exp(x_j − m) ∈ [1, c]; p_j = exp(x_j − m) / sum.
 */
static inline MSCI_HD double msci_softmax_stats(const float *x, int64_t c, int64_t stride,
                                                double *m) {
  double mx = -HUGE_VAL;
  for (int64_t j = 0; j < c; ++j)
    if ((double)x[j * stride] > mx) mx = (double)x[j * stride];
  double sum = 0.0;
  for (int64_t j = 0; j < c; ++j) sum += exp((double)x[j * stride] - mx);
  *m = mx;
  return sum;
}

/*
 * Dice sums of one counted pixel with class `target`: psum[j] += p_j for every class,
 * inter[target] += p_target, gsum[target] += 1 (p = softmax of its logits).
 */
static inline MSCI_HD void msci_dice_pixel_sums(const float *x, int64_t c, int64_t stride,
                                                int64_t target, double *inter, double *psum,
                                                double *gsum) {
  double m;
  double inv = 1.0 / msci_softmax_stats(x, c, stride, &m);
  for (int64_t j = 0; j < c; ++j) {
    double p = exp((double)x[j * stride] - m) * inv;
    psum[j] += p;
    if (j == target) inter[j] += p;
  }
  gsum[target] += 1.0;
}

/*
 * From the summed I_j, P_j, G_j: the soft Dice loss L = 1 − (1/|S|) Σ_{j∈S} D_j with
 * D_j = (2 I_j + ε)/(P_j + G_j + ε) over the classes present, S = {j : G_j > 0}, and the
 * coefficients of ∂L/∂p_j = a[j] − [j = target]·b[j]:
 *   a[j] = (2 I_j + ε)/(|S|·(P_j + G_j + ε)²),  b[j] = 2/(|S|·(P_j + G_j + ε)),
 * both 0 for classes not present. No class present (no counted pixel): returns 0 with
 * a = b = 0.
 */
static inline MSCI_HD double msci_dice_coefs(const double *inter, const double *psum,
                                             const double *gsum, int64_t c, double *a,
                                             double *b) {
  int64_t present = 0;
  for (int64_t j = 0; j < c; ++j) present += gsum[j] > 0.0;
  double acc = 0.0;
  for (int64_t j = 0; j < c; ++j) {
    a[j] = b[j] = 0.0;
    if (!(gsum[j] > 0.0)) continue;
    double num = 2.0 * inter[j] + MSCI_DICE_EPS, den = psum[j] + gsum[j] + MSCI_DICE_EPS;
    acc += num / den;
    a[j] = num / ((double)present * den * den);
    b[j] = 2.0 / ((double)present * den);
  }
  return present ? 1.0 - acc / (double)present : 0.0;
}

/*
 * The Dice gradient of one counted pixel with class `target`, through its softmax:
 * with u_j = a[j] − [j = target]·b[j] (= ∂L/∂p_j), grad[k·stride] = p_k·(u_k − Σ_j p_j u_j).
 */
static inline MSCI_HD void msci_dice_pixel_grad(const float *x, int64_t c, int64_t stride,
                                                int64_t target, const double *a,
                                                const double *b, float *grad) {
  double m;
  double inv = 1.0 / msci_softmax_stats(x, c, stride, &m);
  double dot = 0.0;
  for (int64_t j = 0; j < c; ++j) {
    double u = a[j] - (j == target ? b[j] : 0.0);
    dot += exp((double)x[j * stride] - m) * inv * u;
  }
  for (int64_t j = 0; j < c; ++j) {
    double p = exp((double)x[j * stride] - m) * inv;
    double u = a[j] - (j == target ? b[j] : 0.0);
    grad[j * stride] = (float)(p * (u - dot));
  }
}

#endif /* MOSAIC_LIB_LOSS_CORE_H */
