/*
 * test_loss.c — the four MoSAiC loss terms (lib/train/loss.c, lib/train/loss_api.c) against the
 * contract of docs/losses.md:
 *  (a) small cases worked out by hand, whose expected values are closed forms
 *      evaluated here with exp/log (never by running the implementation);
 *  (b) an independent, deliberately naive double-precision reference written from
 *      docs/losses.md (all similarities, then loops over anchors and rows), on random cases;
 *  (c) every gradient coordinate against central finite differences of that reference;
 *  (d) MulSupCon's "one row per (anchor, positive class)" rule against a set-based
 *      variant that gives a different number;
 *  (e) stability: τ = 0.01 with identical embeddings, large and tiny magnitudes, zero
 *      rows, huge logits;
 *  (f) edge cases: skipped rows, R = 0, label-less keys, BCE without kept rows, N = 1;
 *  (g) error paths: the documented status, a message naming the argument, outputs
 *      untouched;
 * and bit-identical results for any number of OpenMP threads.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "train/loss.h"
#include "contract/loss_core.h"
#include "mosaic/mosaic.h"

static const double E = 2.718281828459045235360287;

/* |got − want| <= rel·|want| (+ a tiny absolute floor for values near 0). */
#define ck_assert_close(got, want, rel)                                                        \
  do {                                                                                         \
    double g_ = (double)(got), w_ = (double)(want);                                            \
    ck_assert_msg(fabs(g_ - w_) <= (rel)*fabs(w_) + 1e-12,                                     \
                  "%s = %.17g, expected %.17g (rel %.3g)", #got, g_, w_,                       \
                  fabs(g_ - w_) / (fabs(w_) > 0 ? fabs(w_) : 1.0));                            \
  } while (0)

/* ---- a small PRNG (xorshift64*) -------------------------------------------------------- */

static uint64_t rng_s;
static void rng_seed(uint64_t s) {
  rng_s = s * 0x9E3779B97F4A7C15ull + 0x1234567ull;
}
static double rng_u(void) { /* [0, 1) */
  rng_s ^= rng_s >> 12, rng_s ^= rng_s << 25, rng_s ^= rng_s >> 27;
  return (double)((rng_s * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}
static void fill(float *x, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; ++i) x[i] = (float)(lo + (hi - lo) * rng_u());
}
static void fill_labels(uint8_t *y, int64_t n, double p) {
  for (int64_t i = 0; i < n; ++i) y[i] = rng_u() < p;
}
static double *to_double(const float *x, int64_t n) {
  double *d = malloc((size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; ++i) d[i] = x[i];
  return d;
}

/* ===================================================================================== */
/* The reference: docs/losses.md transcribed as directly as possible, in double.         */
/* ===================================================================================== */

/* û = u / max(‖u‖, 1e-12), row by row. */
static void ref_normalise(const double *z, int64_t k, int64_t d, double *out) {
  for (int64_t i = 0; i < k; ++i) {
    double ss = 0;
    for (int64_t t = 0; t < d; ++t) ss += z[i * d + t] * z[i * d + t];
    double den = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
    for (int64_t t = 0; t < d; ++t) out[i * d + t] = z[i * d + t] / den;
  }
}

/* s(u,v) = û·v̂ / τ for normalised rows a_i and b_j. */
static double ref_s(const double *a, int64_t i, const double *b, int64_t j, int64_t d,
                    double tau) {
  double dot = 0;
  for (int64_t t = 0; t < d; ++t) dot += a[i * d + t] * b[j * d + t];
  return dot / tau;
}

/* L_ntx = (1/2N) Σ_i [ −s(u_i,u_pos(i)) + log Σ_{k≠i} exp s(u_i,u_k) ], u = (za; zb). */
static double ref_ntxent(const double *za, const double *zb, int64_t n, int64_t d, double tau) {
  int64_t m = 2 * n;
  double *u = malloc((size_t)(m * d) * sizeof(double));
  memcpy(u, za, (size_t)(n * d) * sizeof(double));
  memcpy(u + n * d, zb, (size_t)(n * d) * sizeof(double));
  ref_normalise(u, m, d, u);
  double total = 0;
  for (int64_t i = 0; i < m; ++i) {
    int64_t pos = i < n ? i + n : i - n;
    double denom = 0;
    for (int64_t k = 0; k < m; ++k)
      if (k != i) denom += exp(ref_s(u, i, u, k, d, tau));
    total += -ref_s(u, i, u, pos, d, tau) + log(denom);
  }
  free(u);
  return total / (double)m;
}

/* ½ [CE(S) + CE(Sᵀ)], S_ij = s(p_i, q_j), CE(S) = (1/N) Σ_i [−S_ii + log Σ_j exp S_ij]. */
static double ref_infonce(const double *zp, const double *zq, int64_t n, int64_t d,
                          double tau) {
  double *p = malloc((size_t)(n * d) * sizeof(double)),
         *q = malloc((size_t)(n * d) * sizeof(double));
  ref_normalise(zp, n, d, p);
  ref_normalise(zq, n, d, q);
  double ce_s = 0, ce_st = 0;
  for (int64_t i = 0; i < n; ++i) {
    double row = 0, col = 0;
    for (int64_t j = 0; j < n; ++j) {
      row += exp(ref_s(p, i, q, j, d, tau)); /* row i of S */
      col += exp(ref_s(p, j, q, i, d, tau)); /* row i of Sᵀ = column i of S */
    }
    ce_s += -ref_s(p, i, q, i, d, tau) + log(row);
    ce_st += -ref_s(p, i, q, i, d, tau) + log(col);
  }
  free(p), free(q);
  return 0.5 * (ce_s / (double)n + ce_st / (double)n);
}

/* MulSupCon: one row per (anchor i, class c) with y_ic = 1 and P_r = {j ≠ i : y_jc = 1}
 * non-empty; loss_r = −(1/|P_r|) Σ_{p∈P_r} [ s_ip − log Σ_{j≠i} exp s_ij ];
 * L = (1/R) Σ loss_r, or Σ loss_r / (|y_i|·K_a) per anchor; 0 when R = 0.
 * set_based != 0 gives the variant docs/losses.md rejects: one row per anchor, with the
 * positives {j ≠ i : y_i·y_j > 0} (a key sharing two labels counts once). */
static double ref_mulsupcon_any(const double *e, const uint8_t *y, int64_t k, int64_t d,
                                int64_t c, double tau, int per_anchor, int set_based) {
  double *u = malloc((size_t)(k * d) * sizeof(double));
  ref_normalise(e, k, d, u);
  double *row_loss = malloc((size_t)(k * (c + 1)) * sizeof(double));
  int64_t *row_anchor = malloc((size_t)(k * (c + 1)) * sizeof(int64_t));
  int64_t rows = 0;
  for (int64_t i = 0; i < k; ++i) {
    double denom = 0;
    for (int64_t j = 0; j < k; ++j)
      if (j != i) denom += exp(ref_s(u, i, u, j, d, tau));
    for (int64_t cls = 0; cls < (set_based ? 1 : c); ++cls) {
      if (!set_based && !y[i * c + cls]) continue;
      double sum = 0;
      int64_t np = 0;
      for (int64_t p = 0; p < k; ++p) {
        if (p == i) continue;
        int positive = 0;
        if (set_based) {
          for (int64_t t = 0; t < c; ++t) positive |= y[i * c + t] && y[p * c + t];
        } else {
          positive = y[p * c + cls];
        }
        if (!positive) continue;
        sum += ref_s(u, i, u, p, d, tau) - log(denom);
        np++;
      }
      if (np == 0) continue; /* P_r empty: skipped */
      row_loss[rows] = -sum / (double)np;
      row_anchor[rows] = i;
      rows++;
    }
  }
  double total = 0;
  if (rows > 0 && !per_anchor) {
    for (int64_t r = 0; r < rows; ++r) total += row_loss[r];
    total /= (double)rows;
  } else if (rows > 0) {
    int64_t anchors = 0;
    for (int64_t i = 0; i < k; ++i) {
      int has = 0;
      for (int64_t r = 0; r < rows; ++r) has |= row_anchor[r] == i;
      anchors += has;
    }
    for (int64_t r = 0; r < rows; ++r) {
      int64_t labels = 0;
      for (int64_t t = 0; t < c; ++t) labels += y[row_anchor[r] * c + t];
      total += row_loss[r] / ((double)labels * (double)anchors);
    }
  }
  free(u), free(row_loss), free(row_anchor);
  return total;
}

static double ref_mulsupcon(const double *e, const uint8_t *y, int64_t k, int64_t d, int64_t c,
                            double tau, int per_anchor) {
  return ref_mulsupcon_any(e, y, k, d, c, tau, per_anchor, 0);
}

/* Mean over kept rows × classes of −[y log σ(x) + (1−y) log(1 − σ(x))] (moderate x). */
static double ref_bce(const double *x, const uint8_t *y, int64_t n, int64_t c,
                      const uint8_t *mask) {
  double total = 0;
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (mask && !mask[i]) continue;
    kept++;
    for (int64_t t = 0; t < c; ++t) {
      double sig = 1.0 / (1.0 + exp(-x[i * c + t]));
      total += y[i * c + t] ? -log(sig) : -log(1.0 - sig);
    }
  }
  return kept ? total / (double)(kept * c) : 0.0;
}

/* ===================================================================================== */
/* Finite differences of the reference                                                   */
/* ===================================================================================== */

/* The reference as a function of one flat input vector x (e.g. za then zb). */
typedef struct fd_ctx {
  int term; /* 0 NT-Xent, 1 InfoNCE, 2 MulSupCon, 3 BCE */
  int64_t n, d, c;
  double tau;
  int per_anchor;
  const uint8_t *y, *mask;
} fd_ctx;

static double fd_eval(const fd_ctx *f, const double *x) {
  switch (f->term) {
  case 0: return ref_ntxent(x, x + f->n * f->d, f->n, f->d, f->tau);
  case 1: return ref_infonce(x, x + f->n * f->d, f->n, f->d, f->tau);
  case 2: return ref_mulsupcon(x, f->y, f->n, f->d, f->c, f->tau, f->per_anchor);
  default: return ref_bce(x, f->y, f->n, f->c, f->mask);
  }
}

/* Every coordinate of grad (the implementation's, nx floats) against the central
 * difference (L(x + h) − L(x − h)) / 2h of the reference at the float inputs x0. */
static void fd_check(const char *what, const fd_ctx *f, const float *x0, int64_t nx,
                     const float *grad) {
  const double h = 1e-3;
  double *x = to_double(x0, nx), *fd = malloc((size_t)nx * sizeof(double));
  double gmax = 0;
  for (int64_t i = 0; i < nx; ++i) {
    double keep = x[i];
    x[i] = keep + h;
    double lp = fd_eval(f, x);
    x[i] = keep - h;
    double lm = fd_eval(f, x);
    x[i] = keep;
    fd[i] = (lp - lm) / (2 * h);
    if (fabs(fd[i]) > gmax) gmax = fabs(fd[i]);
  }
  ck_assert_msg(gmax > 1e-4, "%s: the finite differences are all ~0 (a degenerate case)", what);
  for (int64_t i = 0; i < nx; ++i) {
    double tol = 1e-3 * fmax(fabs(fd[i]), 1e-2 * gmax);
    ck_assert_msg(fabs((double)grad[i] - fd[i]) <= tol,
                  "%s: d/dx[%lld] = %.9g, finite difference %.9g (tolerance %.3g)", what,
                  (long long)i, (double)grad[i], fd[i], tol);
  }
  free(x), free(fd);
}

/* ===================================================================================== */
/* The per-row core (lib/contract/loss_core.h)                                                    */
/* ===================================================================================== */

START_TEST(core_functions) {
  /* log-sum-exp with the maximum subtracted: e^1000 overflows, the result does not. */
  const double big[3] = {1000, 1000, -1000};
  ck_assert_close(msci_lse_row(big, 3, -1), 1000 + log(2.0), 1e-15);
  ck_assert_close(msci_lse_row(big, 3, 0), 1000.0, 1e-15);
  /* A softmax cross-entropy row: s = (_, 2, 0), skip 0, target 2: l = −0 + log(e² + 1),
   * gradient ½(p − onehot) with p = (0, e²/(e²+1), 1/(e²+1)). */
  double row[3] = {123, 2, 0};
  double l = msci_softmax_ce_row(row, 3, 0, 2, 0.5);
  ck_assert_close(l, log(E * E + 1), 1e-15);
  ck_assert(row[0] == 0.0);
  ck_assert_close(row[1], 0.5 * E * E / (E * E + 1), 1e-15);
  ck_assert_close(row[2], 0.5 * (1 / (E * E + 1) - 1), 1e-15);
  /* Normalisation and its Jacobian, above and below the 1e-12 floor. */
  const float z[2] = {3, 4};
  double zh[2], g[2] = {1, 2}, out[2];
  double nrm = msci_unit_normalise_row(z, 2, zh);
  ck_assert(nrm == 5.0);
  ck_assert_close(zh[0], 0.6, 1e-15);
  ck_assert_close(zh[1], 0.8, 1e-15);
  msci_normalise_backward_row(zh, nrm, g, 2, out); /* (g − ẑ(ẑ·g))/5, ẑ·g = 2.2 */
  ck_assert_close(out[0], (1 - 0.6 * 2.2) / 5, 1e-15);
  ck_assert_close(out[1], (2 - 0.8 * 2.2) / 5, 1e-15);
  const float tiny[2] = {3e-14f, 4e-14f};
  nrm = msci_unit_normalise_row(tiny, 2, zh);
  ck_assert_close(zh[0], (double)tiny[0] / 1e-12, 1e-15); /* not a unit vector */
  msci_normalise_backward_row(zh, nrm, g, 2, out);
  ck_assert_close(out[0], 1e12, 1e-15);
  ck_assert_close(out[1], 2e12, 1e-15);
  /* BCE element: value and σ(x) − y. */
  double gb;
  ck_assert_close(msci_bce_elem(-80, 1, &gb), 80 + log1p(exp(-80.0)), 1e-15);
  ck_assert_close(gb, exp(-80.0) / (1 + exp(-80.0)) - 1, 1e-15);
  /* Packed products with row and column edges equal the in-order sums, bit for bit. */
  enum { R = 7, NN = 6, P = 5 };
  double a[R * P], bm[P * NN], panel[8 * P], cm[R * NN];
  rng_seed(42);
  for (int i = 0; i < R * P; ++i) a[i] = rng_u() - 0.5;
  for (int i = 0; i < P * NN; ++i) bm[i] = rng_u() - 0.5;
  ck_assert_int_eq(msci_panels_size(NN, P), 8 * P);
  msci_pack_panels(bm, NN, 1, NN, P, panel);
  msci_gemm_rows(a, P, panel, R, NN, P, 0.3, cm, NN);
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < NN; ++j) {
      double sum = 0;
      for (int t = 0; t < P; ++t) sum += a[i * P + t] * bm[t * NN + j];
      ck_assert_msg(cm[i * NN + j] == sum / 0.3, "C[%d][%d] = %.17g, want %.17g", i, j,
                    cm[i * NN + j], sum / 0.3);
    }
}
END_TEST

/* ===================================================================================== */
/* (a) hand-computed cases                                                               */
/* ===================================================================================== */

/*
 * NT-Xent, N = 2, D = 2, τ = 1, views equal up to scale: za = (3e1; 3e2), zb = (½e1; ½e2),
 * so after normalisation u = (e1, e2, e1, e2). For u_0 = e1: s(u0,u1) = 0, s(u0,u2) = 1
 * (the positive), s(u0,u3) = 0, so l_0 = −1 + log(e⁰ + e¹ + e⁰) = log(1 + 2e⁻¹), and by
 * symmetry every l_i is the same: L = log(1 + 2/e).
 * Gradient, with Z = 2 + e and G_ik = (1/4)(p_ik − [k = pos(i)]):
 *   ∂L/∂û_0 = Σ_k (G_0k + G_k0) û_k = ¼[2(e/Z − 1) e1 + (4/Z) e2];
 *   projecting out û_0 = e1 leaves e2/Z, and ‖za_0‖ = 3, so ∂L/∂za_0 = (0, 1/(3Z));
 *   by the e1 ↔ e2 symmetry ∂L/∂za_1 = (1/(3Z), 0); zb has norm ½: ∂L/∂zb_0 = (0, 2/Z).
 */
START_TEST(ntxent_hand_identical_views) {
  const float za[4] = {3, 0, 0, 3}, zb[4] = {0.5f, 0, 0, 0.5f};
  double l;
  float ga[4], gb[4];
  ck_assert_int_eq(msci_loss_ntxent(za, zb, 2, 2, 1.0f, &l, ga, gb), MSC_OK);
  ck_assert_close(l, log(1 + 2 / E), 1e-12);
  const double z = 2 + E;
  const double want_a[4] = {0, 1 / (3 * z), 1 / (3 * z), 0};
  const double want_b[4] = {0, 2 / z, 2 / z, 0};
  for (int i = 0; i < 4; ++i) {
    ck_assert_msg(fabs(ga[i] - want_a[i]) <= 1e-6, "grad_a[%d] = %g, want %g", i, ga[i],
                  want_a[i]);
    ck_assert_msg(fabs(gb[i] - want_b[i]) <= 1e-6, "grad_b[%d] = %g, want %g", i, gb[i],
                  want_b[i]);
  }
  /* τ = ½ doubles every similarity: l = −2 + log(1 + e² + 1) = log(1 + 2e⁻²). */
  ck_assert_int_eq(msci_loss_ntxent(za, zb, 2, 2, 0.5f, &l, NULL, NULL), MSC_OK);
  ck_assert_close(l, log(1 + 2 / (E * E)), 1e-12);
}
END_TEST

/* NT-Xent with the views crossed: za = (e1; e2), zb = (e2; e1), τ = 1, u = (e1,e2,e2,e1).
 * For u_0: positive u_2 = e2 (s = 0), others u_1 = e2 (0), u_3 = e1 (1):
 * l_0 = −0 + log(1 + 1 + e) = log(2 + e), the same for every i. */
START_TEST(ntxent_hand_crossed_views) {
  const float za[4] = {1, 0, 0, 1}, zb[4] = {0, 1, 1, 0};
  double l;
  ck_assert_int_eq(msci_loss_ntxent(za, zb, 2, 2, 1.0f, &l, NULL, NULL), MSC_OK);
  ck_assert_close(l, log(2 + E), 1e-12);
}
END_TEST

/*
 * InfoNCE, N = 2, D = 2, τ = 1, zp = (e1; e2), zq = (2e1; 2e2): S = I, so each row of S and
 * of Sᵀ gives −1 + log(e + 1) = log(1 + e⁻¹) and L = log(1 + 1/e); with τ = ½,
 * S = 2I and L = log(1 + e⁻²). Crossed pairs zq = (e2; e1): S = [[0,1],[1,0]],
 * L = −0 + log(1 + e) = log(1 + e).
 * Gradient (τ = 1, S = I): p = e/(e+1) on the diagonal, 1/(e+1) off it, and
 * G = ∂L/∂S = (1/2N)[(P_row − I) + (P_col − I)], so G_00 = −1/(2(e+1)), G_01 = 1/(2(e+1));
 * ∂L/∂p̂_0 = G_00 q̂_0 + G_01 q̂_1 = (−e1 + e2)/(2(e+1)); projecting out e1 leaves
 * (0, 1/(2(1+e))), and ∂L/∂q̂_0 likewise; zq has norm 2, which halves its gradient.
 */
START_TEST(infonce_hand) {
  const float zp[4] = {1, 0, 0, 1}, zq[4] = {2, 0, 0, 2}, zx[4] = {0, 1, 1, 0};
  double l;
  float gp[4], gq[4];
  ck_assert_int_eq(msci_loss_infonce(zp, zq, 2, 2, 1.0f, &l, gp, gq), MSC_OK);
  ck_assert_close(l, log(1 + 1 / E), 1e-12);
  const double g = 1 / (2 * (1 + E));
  const double want_p[4] = {0, g, g, 0}, want_q[4] = {0, g / 2, g / 2, 0};
  for (int i = 0; i < 4; ++i) {
    ck_assert_msg(fabs(gp[i] - want_p[i]) <= 1e-6, "grad_p[%d] = %g, want %g", i, gp[i],
                  want_p[i]);
    ck_assert_msg(fabs(gq[i] - want_q[i]) <= 1e-6, "grad_q[%d] = %g, want %g", i, gq[i],
                  want_q[i]);
  }
  ck_assert_int_eq(msci_loss_infonce(zp, zq, 2, 2, 0.5f, &l, NULL, NULL), MSC_OK);
  ck_assert_close(l, log(1 + 1 / (E * E)), 1e-12);
  ck_assert_int_eq(msci_loss_infonce(zp, zx, 2, 2, 1.0f, &l, NULL, NULL), MSC_OK);
  ck_assert_close(l, log(1 + E), 1e-12);
}
END_TEST

/*
 * BCE on one row of 4 and one of 4, exact for large |x|: with y = 0 the element is
 * log(1 + eˣ), with y = 1 it is log(1 + e⁻ˣ); for x = ±80 these are 80 + log(1 + e⁻⁸⁰)
 * or log(1 + e⁻⁸⁰) (≈ 1.8e-35). Gradient (σ(x) − y)/8.
 */
START_TEST(bce_hand_large_logits) {
  const float x[8] = {0, 80, -80, 2, -80, 80, 3, -0.5f};
  const uint8_t y[8] = {1, 0, 0, 1, 1, 1, 0, 0};
  const double tiny = log1p(exp(-80.0));
  const double elem[8] = {
      log(2.0),        80 + tiny, tiny, log1p(exp(-2.0)), 80 + tiny, tiny, 3 + log1p(exp(-3.0)),
      log1p(exp(-0.5))};
  double want = 0;
  for (int i = 0; i < 8; ++i) want += elem[i];
  want /= 8;
  double l;
  float g[8];
  ck_assert_int_eq(msci_loss_bce(x, y, 2, 4, NULL, &l, g), MSC_OK);
  ck_assert_close(l, want, 1e-14);
  for (int i = 0; i < 8; ++i) {
    double sig =
        x[i] >= 0 ? 1 / (1 + exp(-(double)x[i])) : exp((double)x[i]) / (1 + exp((double)x[i]));
    double gw = (sig - y[i]) / 8;
    ck_assert_msg(fabs(g[i] - gw) <= 1e-7 * fabs(gw) + 1e-40, "grad[%d] = %g, want %g", i,
                  (double)g[i], gw);
  }
  ck_assert(g[2] != 0.0f); /* σ(−80)/8 ≈ 2.3e-36 survives as a float */
  float lf;
  ck_assert_int_eq(msc_loss_bce(x, y, 2, 4, &lf, NULL), MSC_OK);
  ck_assert_close(lf, want, 1e-7);
}
END_TEST

/* ===================================================================================== */
/* (d) MulSupCon: one row per (anchor, positive class)                                   */
/* ===================================================================================== */

/*
 * K = 3, C = 2, τ = 1: e_0 = e1, e_1 = 4·e1 (the same direction), e_2 = e2;
 * y_0 = {c0, c1}, y_1 = {c0, c1}, y_2 = {c0}. Similarities s_01 = 1, s_02 = s_12 = 0.
 * Rows:
 *   (0,c0): P = {1,2}: −½[(1 − λ) + (0 − λ)] = λ − ½,   λ = log Σ_{j≠0} e^{s_0j} = log(e + 1)
 *   (0,c1): P = {1}:   −(1 − λ) = λ − 1
 *   (1,c0), (1,c1): the same as anchor 0 (λ = log(e + 1))
 *   (2,c0): P = {0,1}: −½[(0 − log 2) + (0 − log 2)] = log 2
 * R = 5: L = (4 log(1+e) − 3 + log 2) / 5. Key 1 shares two labels with anchor 0 and so
 * appears in two rows of anchor 0.
 * Per-anchor weights 1/(|y_i|·K_a), |y| = (2, 2, 1), K_a = 3:
 *   L = 2·(2λ − 3/2)/6 + log 2 / 3 = (2 log(1+e) − 3/2 + log 2) / 3.
 * The set-based variant (one row per anchor, positives = keys sharing any label):
 *   anchor 0: P = {1,2}: λ − ½; anchor 1 the same; anchor 2: log 2:
 *   L_set = (2 log(1+e) − 1 + log 2) / 3 ≈ 0.773, against L ≈ 0.589.
 */
START_TEST(mulsupcon_row_per_anchor_and_class) {
  const float e[6] = {1, 0, 4, 0, 0, 1};
  const uint8_t y[6] = {1, 1, 1, 1, 1, 0};
  const double l1e = log(1 + E);
  const double want = (4 * l1e - 3 + log(2.0)) / 5;
  const double want_pa = (2 * l1e - 1.5 + log(2.0)) / 3;
  const double set_based = (2 * l1e - 1 + log(2.0)) / 3;
  double l;
  ck_assert_int_eq(msci_loss_mulsupcon(e, y, 3, 2, 2, 1.0f, 0, &l, NULL), MSC_OK);
  ck_assert_close(l, want, 1e-12);
  ck_assert_int_eq(msci_loss_mulsupcon(e, y, 3, 2, 2, 1.0f, 1, &l, NULL), MSC_OK);
  ck_assert_close(l, want_pa, 1e-12);
  /* The naive references agree with the closed forms, and the set-based variant is a
   * different number: the implementation is not the set-based loss. */
  double *ed = to_double(e, 6);
  ck_assert_close(ref_mulsupcon_any(ed, y, 3, 2, 2, 1.0, 0, 0), want, 1e-12);
  ck_assert_close(ref_mulsupcon_any(ed, y, 3, 2, 2, 1.0, 1, 0), want_pa, 1e-12);
  ck_assert_close(ref_mulsupcon_any(ed, y, 3, 2, 2, 1.0, 0, 1), set_based, 1e-12);
  free(ed);
  ck_assert_msg(fabs(set_based - want) > 0.1, "the case does not separate the variants");
  ck_assert_int_eq(msci_loss_mulsupcon(e, y, 3, 2, 2, 1.0f, 0, &l, NULL), MSC_OK);
  ck_assert_msg(fabs(l - set_based) > 0.1, "MulSupCon gave the set-based value %g", l);
}
END_TEST

/* ===================================================================================== */
/* (f) edge cases                                                                        */
/* ===================================================================================== */

/*
 * K = 3, C = 3, τ = 1: e_0 = 2e1, e_1 = ½e2, e_2 = −7e1 (unit: e1, e2, −e1).
 * y_0 = {c0, c2}, y_1 = {c0}, y_2 = {} (labelled, no label).
 *   (0,c0): P = {1}: λ_0 − s_01 = log(e⁰ + e⁻¹) − 0 = log(1 + e⁻¹)   (key 2 is in λ_0)
 *   (0,c2): P = {} → skipped (c2 has a single positive)
 *   (1,c0): P = {0}: λ_1 − s_10 = log(e⁰ + e⁰) − 0 = log 2
 *   sample 2: no label → never an anchor, but a key in both denominators.
 * R = 2: L = (log(1 + e⁻¹) + log 2)/2. Per anchor: |y_0| = 2 (its skipped row counts),
 * |y_1| = 1, K_a = 2: L = log(1 + e⁻¹)/4 + log 2/2.
 * Without sample 2 both rows would be −log 1 = 0: the label-less key matters, and it
 * gets a gradient.
 */
START_TEST(mulsupcon_skipped_rows_and_label_less_keys) {
  const float e[6] = {2, 0, 0, 0.5f, -7, 0};
  const uint8_t y[9] = {1, 0, 1, 1, 0, 0, 0, 0, 0};
  double l;
  float g[6];
  ck_assert_int_eq(msci_loss_mulsupcon(e, y, 3, 2, 3, 1.0f, 0, &l, g), MSC_OK);
  ck_assert_close(l, (log(1 + 1 / E) + log(2.0)) / 2, 1e-12);
  ck_assert_msg(fabs(g[4]) + fabs(g[5]) > 1e-3, "the label-less key got no gradient");
  ck_assert_int_eq(msci_loss_mulsupcon(e, y, 3, 2, 3, 1.0f, 1, &l, NULL), MSC_OK);
  ck_assert_close(l, log(1 + 1 / E) / 4 + log(2.0) / 2, 1e-12);
  /* Without the key: exactly 0. */
  ck_assert_int_eq(msci_loss_mulsupcon(e, y, 2, 2, 3, 1.0f, 0, &l, NULL), MSC_OK);
  ck_assert_close(l, 0.0, 1e-12);
}
END_TEST

/* R = 0: every class has at most one positive (or no labels at all): L = 0 and a zero
 * gradient, overwriting whatever the buffer held. K = 1 has no pair at all. */
START_TEST(mulsupcon_no_rows) {
  const float e[9] = {1, 2, 3, -1, 0.5f, 2, 0, 0, 1};
  const uint8_t y1[6] = {1, 0, 0, 1, 0, 0}, y0[6] = {0};
  const uint8_t *ys[2] = {y1, y0};
  for (int v = 0; v < 2; ++v)
    for (int pa = 0; pa < 2; ++pa) {
      double l = 42;
      float g[9];
      for (int i = 0; i < 9; ++i) g[i] = 7;
      ck_assert_int_eq(msci_loss_mulsupcon(e, ys[v], 3, 3, 2, 0.1f, pa, &l, g), MSC_OK);
      ck_assert(l == 0.0);
      for (int i = 0; i < 9; ++i) ck_assert(g[i] == 0.0f);
      float lf = 42;
      ck_assert_int_eq(msc_loss_mulsupcon(e, ys[v], 3, 3, 2, 0.1f, pa, &lf, g), MSC_OK);
      ck_assert(lf == 0.0f);
    }
  double l = 42;
  float g[3] = {7, 7, 7};
  const uint8_t one[2] = {1, 1};
  ck_assert_int_eq(msci_loss_mulsupcon(e, one, 1, 3, 2, 0.1f, 0, &l, g), MSC_OK);
  ck_assert(l == 0.0 && g[0] == 0.0f && g[1] == 0.0f && g[2] == 0.0f);
}
END_TEST

/* BCE: masked rows are ignored (neither their logits' values nor their labels count),
 * the mean is over kept rows × classes; no kept row: 0 and a zero gradient. */
START_TEST(bce_row_mask) {
  const float x[6] = {0.5f, -1, 2, 30, -4, 0};
  const uint8_t y[6] = {1, 0, 1, 2, 9, 1}; /* row 1's labels are garbage: never read */
  const uint8_t mask[2] = {1, 0}, none[2] = {0, 0};
  double l;
  float g[6];
  for (int i = 0; i < 6; ++i) g[i] = 7;
  ck_assert_int_eq(msci_loss_bce(x, y, 2, 3, mask, &l, g), MSC_OK);
  /* row 0: y = 1, 0, 1 → log(1 + e^{−0.5}) + log(1 + e^{−1}) + log(1 + e^{−2}), over 3 */
  ck_assert_close(l, (log1p(exp(-0.5)) + log1p(exp(-1.0)) + log1p(exp(-2.0))) / 3, 1e-12);
  ck_assert_close(g[0], (1 / (1 + exp(-0.5)) - 1) / 3, 1e-6);
  ck_assert_close(g[1], (1 / (1 + exp(1.0))) / 3, 1e-6);
  ck_assert(g[3] == 0.0f && g[4] == 0.0f && g[5] == 0.0f);
  for (int i = 0; i < 6; ++i) g[i] = 7;
  l = 42;
  ck_assert_int_eq(msci_loss_bce(x, y, 2, 3, none, &l, g), MSC_OK);
  ck_assert(l == 0.0);
  for (int i = 0; i < 6; ++i) ck_assert(g[i] == 0.0f);
}
END_TEST

/* N = 1: each anchor's only candidate is its positive, so every l_i = 0. */
START_TEST(single_sample_terms_are_zero) {
  const float a[3] = {1, 2, 3}, b[3] = {-3, 0.5f, 1};
  double l;
  float ga[3], gb[3];
  ck_assert_int_eq(msci_loss_ntxent(a, b, 1, 3, 0.1f, &l, ga, gb), MSC_OK);
  ck_assert_close(l, 0.0, 1e-12);
  for (int i = 0; i < 3; ++i) ck_assert(fabs(ga[i]) < 1e-6 && fabs(gb[i]) < 1e-6);
  ck_assert_int_eq(msci_loss_infonce(a, b, 1, 3, 0.1f, &l, ga, gb), MSC_OK);
  ck_assert_close(l, 0.0, 1e-12);
  for (int i = 0; i < 3; ++i) ck_assert(fabs(ga[i]) < 1e-6 && fabs(gb[i]) < 1e-6);
}
END_TEST

/* ===================================================================================== */
/* (b) against the reference on random cases                                            */
/* ===================================================================================== */

START_TEST(ntxent_matches_reference) {
  const int64_t sizes[][2] = {{1, 3}, {2, 1}, {3, 5}, {8, 16}, {17, 7}, {40, 32}};
  const float taus[] = {0.05f, 0.1f, 0.5f, 1.0f};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s)
    for (size_t t = 0; t < 4; ++t) {
      int64_t n = sizes[s][0], d = sizes[s][1];
      rng_seed(100 * s + t);
      float *za = malloc((size_t)(n * d) * sizeof(float)),
            *zb = malloc((size_t)(n * d) * sizeof(float));
      fill(za, n * d, -2, 2), fill(zb, n * d, -2, 2);
      double *a = to_double(za, n * d), *b = to_double(zb, n * d);
      double l;
      float lf;
      ck_assert_int_eq(msci_loss_ntxent(za, zb, n, d, taus[t], &l, NULL, NULL), MSC_OK);
      ck_assert_close(l, ref_ntxent(a, b, n, d, taus[t]), 1e-9);
      ck_assert_int_eq(msc_loss_ntxent(za, zb, n, d, taus[t], &lf, NULL, NULL), MSC_OK);
      ck_assert_close(lf, ref_ntxent(a, b, n, d, taus[t]), 1e-5);
      free(za), free(zb), free(a), free(b);
    }
}
END_TEST

START_TEST(infonce_matches_reference) {
  const int64_t sizes[][2] = {{1, 3}, {2, 1}, {3, 5}, {8, 16}, {17, 7}, {40, 32}};
  const float taus[] = {0.05f, 0.1f, 0.5f, 1.0f};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s)
    for (size_t t = 0; t < 4; ++t) {
      int64_t n = sizes[s][0], d = sizes[s][1];
      rng_seed(200 * s + t);
      float *zp = malloc((size_t)(n * d) * sizeof(float)),
            *zq = malloc((size_t)(n * d) * sizeof(float));
      fill(zp, n * d, -2, 2), fill(zq, n * d, -2, 2);
      double *p = to_double(zp, n * d), *q = to_double(zq, n * d);
      double l;
      float lf;
      ck_assert_int_eq(msci_loss_infonce(zp, zq, n, d, taus[t], &l, NULL, NULL), MSC_OK);
      ck_assert_close(l, ref_infonce(p, q, n, d, taus[t]), 1e-9);
      ck_assert_int_eq(msc_loss_infonce(zp, zq, n, d, taus[t], &lf, NULL, NULL), MSC_OK);
      ck_assert_close(lf, ref_infonce(p, q, n, d, taus[t]), 1e-5);
      free(zp), free(zq), free(p), free(q);
    }
}
END_TEST

/* Random multi-hot labels (some samples without labels, some singleton classes). */
START_TEST(mulsupcon_matches_reference) {
  const int64_t sizes[][3] = {{2, 3, 1}, {5, 4, 3}, {12, 6, 5}, {30, 16, 19}, {64, 8, 4}};
  const double dens[] = {0.15, 0.3, 0.6};
  const float taus[] = {0.07f, 0.1f, 1.0f};
  int nonzero = 0;
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s)
    for (size_t t = 0; t < 3; ++t)
      for (int pa = 0; pa < 2; ++pa) {
        int64_t k = sizes[s][0], d = sizes[s][1], c = sizes[s][2];
        rng_seed(300 * s + 10 * t + (uint64_t)pa);
        float *e = malloc((size_t)(k * d) * sizeof(float));
        uint8_t *y = malloc((size_t)(k * c));
        fill(e, k * d, -1, 1);
        fill_labels(y, k * c, dens[t]);
        double *ed = to_double(e, k * d);
        double want = ref_mulsupcon(ed, y, k, d, c, taus[t], pa), l;
        float lf;
        nonzero += want != 0.0;
        ck_assert_int_eq(msci_loss_mulsupcon(e, y, k, d, c, taus[t], pa, &l, NULL), MSC_OK);
        ck_assert_close(l, want, 1e-9);
        ck_assert_int_eq(msc_loss_mulsupcon(e, y, k, d, c, taus[t], pa, &lf, NULL), MSC_OK);
        ck_assert_close(lf, want, 1e-5);
        free(e), free(y), free(ed);
      }
  ck_assert_int_ge(nonzero, 20);
}
END_TEST

START_TEST(bce_matches_reference) {
  const int64_t sizes[][2] = {{1, 1}, {3, 4}, {16, 19}, {100, 7}};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s)
    for (int masked = 0; masked < 2; ++masked) {
      int64_t n = sizes[s][0], c = sizes[s][1];
      rng_seed(400 * s + (uint64_t)masked);
      float *x = malloc((size_t)(n * c) * sizeof(float));
      uint8_t *y = malloc((size_t)(n * c)), *mask = malloc((size_t)n);
      fill(x, n * c, -6, 6);
      fill_labels(y, n * c, 0.3);
      fill_labels(mask, n, 0.6);
      mask[0] = 1;
      double *xd = to_double(x, n * c), l;
      float lf;
      ck_assert_int_eq(msci_loss_bce(x, y, n, c, masked ? mask : NULL, &l, NULL), MSC_OK);
      ck_assert_close(l, ref_bce(xd, y, n, c, masked ? mask : NULL), 1e-9);
      if (!masked) {
        ck_assert_int_eq(msc_loss_bce(x, y, n, c, &lf, NULL), MSC_OK);
        ck_assert_close(lf, ref_bce(xd, y, n, c, NULL), 1e-5);
      }
      free(x), free(y), free(mask), free(xd);
    }
}
END_TEST

/* ===================================================================================== */
/* (c) gradients against finite differences                                             */
/* ===================================================================================== */

START_TEST(ntxent_gradient) {
  const int64_t sizes[][2] = {{2, 3}, {3, 4}, {5, 2}};
  for (size_t s = 0; s < 3; ++s) {
    int64_t n = sizes[s][0], d = sizes[s][1];
    rng_seed(500 + s);
    float x[40], g[40];
    fill(x, 2 * n * d, -1, 1);
    double l;
    ck_assert_int_eq(msci_loss_ntxent(x, x + n * d, n, d, 0.5f, &l, g, g + n * d), MSC_OK);
    fd_ctx f = {.term = 0, .n = n, .d = d, .tau = 0.5f};
    fd_check("NT-Xent", &f, x, 2 * n * d, g);
    /* The public function gives the same gradient, one side at a time. */
    float lf, g2[40];
    ck_assert_int_eq(msc_loss_ntxent(x, x + n * d, n, d, 0.5f, &lf, NULL, g2 + n * d), MSC_OK);
    ck_assert_int_eq(memcmp(g + n * d, g2 + n * d, (size_t)(n * d) * sizeof(float)), 0);
  }
}
END_TEST

START_TEST(infonce_gradient) {
  const int64_t sizes[][2] = {{2, 3}, {3, 4}, {5, 2}};
  for (size_t s = 0; s < 3; ++s) {
    int64_t n = sizes[s][0], d = sizes[s][1];
    rng_seed(600 + s);
    float x[40], g[40];
    fill(x, 2 * n * d, -1, 1);
    double l;
    ck_assert_int_eq(msci_loss_infonce(x, x + n * d, n, d, 0.5f, &l, g, g + n * d), MSC_OK);
    fd_ctx f = {.term = 1, .n = n, .d = d, .tau = 0.5f};
    fd_check("InfoNCE", &f, x, 2 * n * d, g);
    float lf, g2[40];
    ck_assert_int_eq(msc_loss_infonce(x, x + n * d, n, d, 0.5f, &lf, g2, NULL), MSC_OK);
    ck_assert_int_eq(memcmp(g, g2, (size_t)(n * d) * sizeof(float)), 0);
  }
}
END_TEST

START_TEST(mulsupcon_gradient) {
  /* Labels chosen so that there are shared pairs, a skipped row, a label-less key. */
  const uint8_t y[7 * 3] = {1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0};
  for (int pa = 0; pa < 2; ++pa)
    for (int64_t d = 2; d <= 4; d += 2) {
      rng_seed(700 + (uint64_t)(pa * 10 + d));
      float e[28], g[28];
      fill(e, 7 * d, -1, 1);
      double l;
      ck_assert_int_eq(msci_loss_mulsupcon(e, y, 7, d, 3, 0.5f, pa, &l, g), MSC_OK);
      fd_ctx f = {.term = 2, .n = 7, .d = d, .c = 3, .tau = 0.5f, .per_anchor = pa, .y = y};
      fd_check(pa ? "MulSupCon (per anchor)" : "MulSupCon", &f, e, 7 * d, g);
    }
}
END_TEST

START_TEST(bce_gradient) {
  rng_seed(800);
  float x[15], g[15];
  uint8_t y[15], mask[5] = {1, 0, 1, 1, 0};
  fill(x, 15, -4, 4);
  fill_labels(y, 15, 0.4);
  double l;
  for (int masked = 0; masked < 2; ++masked) {
    ck_assert_int_eq(msci_loss_bce(x, y, 5, 3, masked ? mask : NULL, &l, g), MSC_OK);
    fd_ctx f = {.term = 3, .n = 5, .c = 3, .y = y, .mask = masked ? mask : NULL};
    fd_check("BCE", &f, x, 15, g);
  }
}
END_TEST

/* ===================================================================================== */
/* (e) stability                                                                         */
/* ===================================================================================== */

static int all_finite(const float *x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/*
 * τ = 0.01 and every embedding equal: every similarity is 1/τ = 100 (e^100 overflows no
 * double, but e^(100·2N) sums would without the max subtracted; the point is that the
 * log-sum-exp is exact). NT-Xent: l_i = −100 + log((2N−1)e^100) = log(2N − 1).
 * InfoNCE: log N. MulSupCon with every sample in class 0: every row is
 * −100 + log((K−1)e^100) = log(K − 1). All gradients are 0 up to rounding (every
 * ∂L/∂ê_i is parallel to ê_i, which the Jacobian projects out).
 */
START_TEST(stable_identical_embeddings_small_tau) {
  enum { N = 6, D = 5 };
  float z[2 * N * D], g[2 * N * D];
  uint8_t y[2 * N * 2];
  for (int i = 0; i < 2 * N; ++i)
    for (int t = 0; t < D; ++t) z[i * D + t] = (float)(t + 1);
  for (int i = 0; i < 2 * N; ++i) y[2 * i] = 1, y[2 * i + 1] = i % 3 == 0;
  double l;
  ck_assert_int_eq(msci_loss_ntxent(z, z + N * D, N, D, 0.01f, &l, g, g + N * D), MSC_OK);
  ck_assert_close(l, log(2.0 * N - 1), 1e-9);
  ck_assert(all_finite(g, 2 * N * D));
  for (int i = 0; i < 2 * N * D; ++i) ck_assert_msg(fabs(g[i]) < 1e-6, "g[%d] = %g", i, g[i]);
  ck_assert_int_eq(msci_loss_infonce(z, z + N * D, N, D, 0.01f, &l, g, g + N * D), MSC_OK);
  ck_assert_close(l, log((double)N), 1e-9);
  ck_assert(all_finite(g, 2 * N * D));
  for (int i = 0; i < 2 * N * D; ++i) ck_assert_msg(fabs(g[i]) < 1e-6, "g[%d] = %g", i, g[i]);
  /* Class 0 only first: every row is log(K − 1); then with the second class too, the
   * rows of class 1 (4 positives, 3 others each) are log(K − 1) as well. */
  uint8_t y0[2 * N * 2];
  for (int i = 0; i < 2 * N; ++i) y0[2 * i] = 1, y0[2 * i + 1] = 0;
  for (int pa = 0; pa < 2; ++pa) {
    ck_assert_int_eq(msci_loss_mulsupcon(z, y0, 2 * N, D, 2, 0.01f, pa, &l, g), MSC_OK);
    ck_assert_close(l, log(2.0 * N - 1), 1e-9);
    ck_assert(all_finite(g, 2 * N * D));
    ck_assert_int_eq(msci_loss_mulsupcon(z, y, 2 * N, D, 2, 0.01f, 0, &l, g), MSC_OK);
    ck_assert_close(l, log(2.0 * N - 1), 1e-9);
    ck_assert(all_finite(g, 2 * N * D));
    for (int i = 0; i < 2 * N * D; ++i) ck_assert_msg(fabs(g[i]) < 1e-6, "g[%d] = %g", i, g[i]);
  }
}
END_TEST

/* Huge, tiny and zero rows: above the 1e-12 floor the losses are scale-invariant per
 * row, so scaling rows by 1e30 or 1e-10 gives the unscaled value; everything stays
 * finite with τ = 0.01. Below the floor (a zero row, FLT_MIN-sized rows) ẑ = z/1e-12 is
 * not a unit vector, and the results must still be finite. */
START_TEST(stable_extreme_magnitudes) {
  enum { N = 4, D = 3 };
  float z[2 * N * D], zs[2 * N * D], g[2 * N * D];
  uint8_t y[2 * N] = {1, 1, 0, 1, 1, 0, 1, 1};
  rng_seed(900);
  fill(z, 2 * N * D, -1, 1);
  for (int i = 0; i < 2 * N; ++i)
    for (int t = 0; t < D; ++t)
      zs[i * D + t] = z[i * D + t] * (i % 3 == 0 ? 1e30f : i % 3 == 1 ? 1e-10f : 1.0f);
  double l0, l1;
  for (int term = 0; term < 3; ++term) {
    msc_status s0, s1;
    if (term == 0) {
      s0 = msci_loss_ntxent(z, z + N * D, N, D, 0.01f, &l0, NULL, NULL);
      s1 = msci_loss_ntxent(zs, zs + N * D, N, D, 0.01f, &l1, g, g + N * D);
    } else if (term == 1) {
      s0 = msci_loss_infonce(z, z + N * D, N, D, 0.01f, &l0, NULL, NULL);
      s1 = msci_loss_infonce(zs, zs + N * D, N, D, 0.01f, &l1, g, g + N * D);
    } else {
      s0 = msci_loss_mulsupcon(z, y, 2 * N, D, 1, 0.01f, 0, &l0, NULL);
      s1 = msci_loss_mulsupcon(zs, y, 2 * N, D, 1, 0.01f, 0, &l1, g);
    }
    ck_assert_int_eq(s0, MSC_OK);
    ck_assert_int_eq(s1, MSC_OK);
    ck_assert_close(l1, l0, 1e-6);
    ck_assert(isfinite(l1) && all_finite(g, 2 * N * D));
  }
  /* Below the floor: rows of 1e-30 give ẑ ≈ 1e-18 and gradients ≈ 1e12/τ·‖∂L/∂ẑ‖. */
  for (int i = 0; i < 2 * N * D; ++i) zs[i] = z[i] * (i / D % 2 ? 1e-30f : 1.0f);
  ck_assert_int_eq(msci_loss_ntxent(zs, zs + N * D, N, D, 0.01f, &l1, g, g + N * D), MSC_OK);
  ck_assert(isfinite(l1) && all_finite(g, 2 * N * D));
  ck_assert_int_eq(msci_loss_mulsupcon(zs, y, 2 * N, D, 1, 0.01f, 1, &l1, g), MSC_OK);
  ck_assert(isfinite(l1) && all_finite(g, 2 * N * D));
  /* FLT_MAX-sized coordinates (squares overflow float, not double) and a zero row. */
  float big[2 * 2 * 2] = {FLT_MAX, FLT_MAX, -FLT_MAX, 0, 0, 0, 1, 1};
  ck_assert_int_eq(msci_loss_ntxent(big, big + 4, 2, 2, 0.01f, &l1, g, g + 4), MSC_OK);
  ck_assert(isfinite(l1) && all_finite(g, 8));
  ck_assert_int_eq(msci_loss_infonce(big, big + 4, 2, 2, 0.01f, &l1, g, g + 4), MSC_OK);
  ck_assert(isfinite(l1) && all_finite(g, 8));
  /* Huge logits: BCE is |x| for the wrong sign, ~0 for the right one. */
  const float x[4] = {1e30f, -1e30f, FLT_MAX, -FLT_MAX};
  const uint8_t yb[4] = {0, 0, 1, 0};
  float lf;
  ck_assert_int_eq(msc_loss_bce(x, yb, 1, 4, &lf, g), MSC_OK);
  ck_assert_close(lf, 1e30 / 4, 1e-6);
  ck_assert(all_finite(g, 4));
}
END_TEST

/* A temperature so small that the loss itself (≈ 1/τ) does not fit a float: the public
 * functions fail with MSC_E_NUMERICAL before writing anything; the internal one still
 * gives the double value, and refuses a float gradient that would overflow. */
START_TEST(tiny_tau_overflow_is_numerical) {
  const float za[4] = {1, 0, 0, 1}, zb[4] = {0, 1, 1, 0};
  const float tau = 1e-44f; /* a subnormal, still > 0 */
  double l;
  ck_assert_int_eq(msci_loss_ntxent(za, zb, 2, 2, tau, &l, NULL, NULL), MSC_OK);
  ck_assert(isfinite(l) && l > 1e43);
  float ga[4] = {7, 7, 7, 7}, gb[4] = {7, 7, 7, 7}, lf = 42;
  l = 42;
  ck_assert_int_eq(msci_loss_ntxent(za, zb, 2, 2, tau, &l, ga, gb), MSC_E_NUMERICAL);
  ck_assert(strstr(msc_last_error(), "grad") != NULL);
  ck_assert(l == 42 && ga[0] == 7 && gb[3] == 7);
  ck_assert_int_eq(msc_loss_ntxent(za, zb, 2, 2, tau, &lf, ga, gb), MSC_E_NUMERICAL);
  ck_assert(lf == 42 && ga[0] == 7 && ga[1] == 7 && gb[0] == 7);
  ck_assert_int_eq(msc_loss_infonce(za, zb, 2, 2, tau, &lf, ga, gb), MSC_E_NUMERICAL);
  ck_assert(lf == 42 && ga[0] == 7 && gb[0] == 7);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "overflows float"));
}
END_TEST

/* ===================================================================================== */
/* Determinism across thread counts                                                      */
/* ===================================================================================== */

START_TEST(bit_identical_for_any_thread_count) {
#ifdef _OPENMP
  enum { N = 96, D = 40, C = 7 };
  float *z = malloc(2 * N * D * sizeof(float)), *x = malloc(2 * N * C * sizeof(float));
  uint8_t *y = malloc(2 * N * C);
  rng_seed(1000);
  fill(z, 2 * N * D, -1, 1);
  fill(x, 2 * N * C, -3, 3);
  fill_labels(y, 2 * N * C, 0.2);
  float *g[2][4];
  double l[2][4];
  int saved = omp_get_max_threads();
  for (int run = 0; run < 2; ++run) {
    omp_set_num_threads(run ? 4 : 1);
    for (int t = 0; t < 4; ++t) g[run][t] = malloc(2 * N * D * sizeof(float));
    ck_assert_int_eq(
        msci_loss_ntxent(z, z + N * D, N, D, 0.1f, &l[run][0], g[run][0], g[run][0] + N * D),
        MSC_OK);
    ck_assert_int_eq(
        msci_loss_infonce(z, z + N * D, N, D, 0.1f, &l[run][1], g[run][1], g[run][1] + N * D),
        MSC_OK);
    ck_assert_int_eq(msci_loss_mulsupcon(z, y, 2 * N, D, C, 0.1f, 1, &l[run][2], g[run][2]),
                     MSC_OK);
    ck_assert_int_eq(msci_loss_bce(x, y, 2 * N, C, NULL, &l[run][3], g[run][3]), MSC_OK);
  }
  omp_set_num_threads(saved);
  for (int t = 0; t < 4; ++t) {
    ck_assert_msg(memcmp(&l[0][t], &l[1][t], sizeof(double)) == 0, "term %d: loss differs", t);
    size_t len = (t == 3 ? 2 * N * C : 2 * N * D) * sizeof(float);
    ck_assert_msg(memcmp(g[0][t], g[1][t], len) == 0, "term %d: gradient differs", t);
    free(g[0][t]), free(g[1][t]);
  }
  free(z), free(x), free(y);
#endif
}
END_TEST

/* ===================================================================================== */
/* (g) error paths                                                                       */
/* ===================================================================================== */

/* st must be `want`, the message must contain `needle`, and loss/grads stay untouched. */
#define EXPECT_FAIL(call, want, needle)                                                        \
  do {                                                                                         \
    msc_clear_error();                                                                         \
    msc_status st_ = (call);                                                                   \
    ck_assert_msg(st_ == (want), "%s returned %d, expected %d", #call, (int)st_, (int)(want)); \
    ck_assert_msg(strstr(msc_last_error(), needle) != NULL, "%s: message \"%s\" lacks \"%s\"", \
                  #call, msc_last_error(), needle);                                            \
  } while (0)

START_TEST(errors_contrastive) {
  float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {6, 5, 4, 3, 2, 1}, ga[6], gb[6], lf = 42;
  double l = 42;
  for (int i = 0; i < 6; ++i) ga[i] = gb[i] = 7;
  EXPECT_FAIL(msci_loss_ntxent(NULL, b, 2, 3, 0.1f, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "za");
  EXPECT_FAIL(msci_loss_ntxent(a, NULL, 2, 3, 0.1f, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "zb");
  EXPECT_FAIL(msci_loss_ntxent(a, b, 2, 3, 0.1f, NULL, ga, gb), MSC_E_INVALID_ARGUMENT, "loss");
  EXPECT_FAIL(msci_loss_ntxent(a, b, 0, 3, 0.1f, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "n = 0");
  EXPECT_FAIL(msci_loss_ntxent(a, b, -2, 3, 0.1f, &l, ga, gb), MSC_E_INVALID_ARGUMENT,
              "n = -2");
  EXPECT_FAIL(msci_loss_ntxent(a, b, 2, 0, 0.1f, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "d = 0");
  EXPECT_FAIL(msci_loss_ntxent(a, b, INT64_C(1) << 40, INT64_C(1) << 40, 0.1f, &l, ga, gb),
              MSC_E_INVALID_ARGUMENT, "too large");
  EXPECT_FAIL(msci_loss_ntxent(a, b, 2, 3, 0.0f, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "tau");
  EXPECT_FAIL(msci_loss_ntxent(a, b, 2, 3, -0.1f, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "tau");
  EXPECT_FAIL(msci_loss_ntxent(a, b, 2, 3, NAN, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "tau");
  EXPECT_FAIL(msci_loss_ntxent(a, b, 2, 3, INFINITY, &l, ga, gb), MSC_E_INVALID_ARGUMENT,
              "tau");
  b[4] = NAN;
  EXPECT_FAIL(msci_loss_ntxent(a, b, 2, 3, 0.1f, &l, ga, gb), MSC_E_NUMERICAL,
              "zb[4] (row 1, column 1) is NaN");
  b[4] = 2;
  a[0] = -INFINITY;
  EXPECT_FAIL(msci_loss_ntxent(a, b, 2, 3, 0.1f, &l, ga, gb), MSC_E_NUMERICAL,
              "za[0] (row 0, column 0) is -Inf");
  EXPECT_FAIL(msc_loss_ntxent(a, b, 2, 3, 0.1f, &lf, ga, gb), MSC_E_NUMERICAL, "za[0]");
  a[0] = 1;
  EXPECT_FAIL(msc_loss_ntxent(a, b, 2, 3, 0.1f, NULL, ga, gb), MSC_E_INVALID_ARGUMENT, "loss");

  EXPECT_FAIL(msci_loss_infonce(NULL, b, 2, 3, 0.1f, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "zp");
  EXPECT_FAIL(msci_loss_infonce(a, NULL, 2, 3, 0.1f, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "zq");
  EXPECT_FAIL(msci_loss_infonce(a, b, 2, 3, 0.1f, NULL, ga, gb), MSC_E_INVALID_ARGUMENT,
              "loss");
  EXPECT_FAIL(msci_loss_infonce(a, b, 0, 3, 0.1f, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "n = 0");
  EXPECT_FAIL(msci_loss_infonce(a, b, 2, -1, 0.1f, &l, ga, gb), MSC_E_INVALID_ARGUMENT,
              "d = -1");
  EXPECT_FAIL(msci_loss_infonce(a, b, 2, 3, -1.0f, &l, ga, gb), MSC_E_INVALID_ARGUMENT, "tau");
  a[5] = INFINITY;
  EXPECT_FAIL(msci_loss_infonce(a, b, 2, 3, 0.1f, &l, ga, gb), MSC_E_NUMERICAL,
              "zp[5] (row 1, column 2) is +Inf");
  EXPECT_FAIL(msc_loss_infonce(a, b, 2, 3, 0.1f, &lf, ga, gb), MSC_E_NUMERICAL, "zp[5]");
  a[5] = 6;
  EXPECT_FAIL(msc_loss_infonce(a, b, 2, 3, 0.1f, NULL, ga, gb), MSC_E_INVALID_ARGUMENT, "loss");

  const uint8_t y[4] = {1, 0, 2, 1};
  const uint8_t ok[4] = {1, 0, 1, 1};
  EXPECT_FAIL(msci_loss_mulsupcon(NULL, ok, 2, 3, 2, 0.1f, 0, &l, ga), MSC_E_INVALID_ARGUMENT,
              "e is NULL");
  EXPECT_FAIL(msci_loss_mulsupcon(a, NULL, 2, 3, 2, 0.1f, 0, &l, ga), MSC_E_INVALID_ARGUMENT,
              "y is NULL");
  EXPECT_FAIL(msci_loss_mulsupcon(a, ok, 2, 3, 2, 0.1f, 0, NULL, ga), MSC_E_INVALID_ARGUMENT,
              "loss");
  EXPECT_FAIL(msci_loss_mulsupcon(a, ok, 0, 3, 2, 0.1f, 0, &l, ga), MSC_E_INVALID_ARGUMENT,
              "k = 0");
  EXPECT_FAIL(msci_loss_mulsupcon(a, ok, 2, 0, 2, 0.1f, 0, &l, ga), MSC_E_INVALID_ARGUMENT,
              "d = 0");
  EXPECT_FAIL(msci_loss_mulsupcon(a, ok, 2, 3, 0, 0.1f, 0, &l, ga), MSC_E_INVALID_ARGUMENT,
              "c = 0");
  EXPECT_FAIL(msci_loss_mulsupcon(a, ok, 2, 3, 2, 0.0f, 0, &l, ga), MSC_E_INVALID_ARGUMENT,
              "tau");
  EXPECT_FAIL(msci_loss_mulsupcon(a, y, 2, 3, 2, 0.1f, 0, &l, ga), MSC_E_INVALID_ARGUMENT,
              "y[2] (row 1, class 0) is 2");
  EXPECT_FAIL(msc_loss_mulsupcon(a, y, 2, 3, 2, 0.1f, 1, &lf, ga), MSC_E_INVALID_ARGUMENT,
              "y[2]");
  a[3] = NAN;
  EXPECT_FAIL(msci_loss_mulsupcon(a, ok, 2, 3, 2, 0.1f, 0, &l, ga), MSC_E_NUMERICAL,
              "e[3] (row 1, column 0) is NaN");
  a[3] = 4;
  EXPECT_FAIL(msc_loss_mulsupcon(a, ok, 2, 3, 2, 0.1f, 0, NULL, ga), MSC_E_INVALID_ARGUMENT,
              "loss");

  /* Nothing was written by any failing call. */
  ck_assert(l == 42 && lf == 42);
  for (int i = 0; i < 6; ++i) ck_assert(ga[i] == 7 && gb[i] == 7);
}
END_TEST

START_TEST(errors_bce) {
  float x[4] = {1, -1, 0.5f, 2}, g[4] = {7, 7, 7, 7}, lf = 42;
  uint8_t y[4] = {1, 0, 0, 1};
  double l = 42;
  EXPECT_FAIL(msci_loss_bce(NULL, y, 2, 2, NULL, &l, g), MSC_E_INVALID_ARGUMENT, "logits");
  EXPECT_FAIL(msci_loss_bce(x, NULL, 2, 2, NULL, &l, g), MSC_E_INVALID_ARGUMENT, "y is NULL");
  EXPECT_FAIL(msci_loss_bce(x, y, 2, 2, NULL, NULL, g), MSC_E_INVALID_ARGUMENT, "loss");
  EXPECT_FAIL(msci_loss_bce(x, y, 0, 2, NULL, &l, g), MSC_E_INVALID_ARGUMENT, "n = 0");
  EXPECT_FAIL(msci_loss_bce(x, y, 2, -3, NULL, &l, g), MSC_E_INVALID_ARGUMENT, "c = -3");
  y[3] = 2;
  EXPECT_FAIL(msci_loss_bce(x, y, 2, 2, NULL, &l, g), MSC_E_INVALID_ARGUMENT,
              "y[3] (row 1, class 1) is 2");
  EXPECT_FAIL(msc_loss_bce(x, y, 2, 2, &lf, g), MSC_E_INVALID_ARGUMENT, "y[3]");
  /* ... unless the row is masked out (its labels are unknown and never read). */
  const uint8_t mask[2] = {1, 0};
  ck_assert_int_eq(msci_loss_bce(x, y, 2, 2, mask, &l, NULL), MSC_OK);
  y[3] = 1;
  l = 42;
  x[2] = NAN;
  EXPECT_FAIL(msci_loss_bce(x, y, 2, 2, NULL, &l, g), MSC_E_NUMERICAL,
              "logits[2] (row 1, column 0) is NaN");
  EXPECT_FAIL(msc_loss_bce(x, y, 2, 2, &lf, g), MSC_E_NUMERICAL, "logits[2]");
  x[2] = 0.5f;
  EXPECT_FAIL(msc_loss_bce(x, y, 2, 2, NULL, g), MSC_E_INVALID_ARGUMENT, "loss");
  ck_assert(l == 42 && lf == 42);
  for (int i = 0; i < 4; ++i) ck_assert(g[i] == 7);
}
END_TEST

int main(void) {
  Suite *s = suite_create("loss");
  TCase *tc = tcase_create("loss");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, core_functions);
  tcase_add_test(tc, ntxent_hand_identical_views);
  tcase_add_test(tc, ntxent_hand_crossed_views);
  tcase_add_test(tc, infonce_hand);
  tcase_add_test(tc, bce_hand_large_logits);
  tcase_add_test(tc, mulsupcon_row_per_anchor_and_class);
  tcase_add_test(tc, mulsupcon_skipped_rows_and_label_less_keys);
  tcase_add_test(tc, mulsupcon_no_rows);
  tcase_add_test(tc, bce_row_mask);
  tcase_add_test(tc, single_sample_terms_are_zero);
  tcase_add_test(tc, ntxent_matches_reference);
  tcase_add_test(tc, infonce_matches_reference);
  tcase_add_test(tc, mulsupcon_matches_reference);
  tcase_add_test(tc, bce_matches_reference);
  tcase_add_test(tc, ntxent_gradient);
  tcase_add_test(tc, infonce_gradient);
  tcase_add_test(tc, mulsupcon_gradient);
  tcase_add_test(tc, bce_gradient);
  tcase_add_test(tc, stable_identical_embeddings_small_tau);
  tcase_add_test(tc, stable_extreme_magnitudes);
  tcase_add_test(tc, tiny_tau_overflow_is_numerical);
  tcase_add_test(tc, bit_identical_for_any_thread_count);
  tcase_add_test(tc, errors_contrastive);
  tcase_add_test(tc, errors_bce);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
