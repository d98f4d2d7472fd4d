/*
 * test_core_hd.c — host-side unit tests of the loss_core.h and optim_core.h functions
 * that test_loss.c and test_optim.c reach only through the whole loss terms or
 * msci_optim_update. The CUDA backend compiles these very functions as device code
 * (MSCI_HD = __host__ __device__), so each must be right on its own, whatever calls it:
 * msci_dot, msci_row_max, msci_exp_row, msci_mulsupcon_row_count, msci_mulsupcon_row,
 * msci_bce_row and msci_sgd_elem; and msci_upsample_taps and msci_upsample_reach
 * (upsample_core.h), which only the CUDA kernels use (test_dense_ops.c checks the CPU backend's upsampling).
 * Expectations come from the definitions in docs/losses.md (naive double loops here) or
 * from hand arithmetic, never from the code under test.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "contract/loss_core.h"
#include "contract/optim_core.h"
#include "contract/upsample_core.h"

#define CLOSE(got, want, tol)                                                                  \
  ck_assert_msg(fabs((double)(got) - (double)(want)) <= (tol)*fmax(1.0, fabs((double)(want))), \
                "%s = %.17g, expected %.17g", #got, (double)(got), (double)(want))

START_TEST(dot_in_order) {
  const double a[3] = {1.0, 1e16, -1e16}, b[3] = {1.0, 1.0, 1.0};
  /* Left to right: (1 + 1e16) rounds to 1e16, minus 1e16 is 0 — the order is part of
   * the contract (the same bits on host and device). */
  ck_assert(msci_dot(a, b, 3) == 0.0);
  const double c[4] = {1, 2, 3, 4}, d[4] = {0.5, -1, 2, 0.25};
  CLOSE(msci_dot(c, d, 4), 0.5 - 2 + 6 + 1, 0);
  ck_assert(msci_dot(c, d, 0) == 0.0);
}
END_TEST

START_TEST(row_max_and_exp_row) {
  double s[4] = {1.0, 5.0, -2.0, 3.0};
  ck_assert(msci_row_max(s, 4, -1) == 5.0);
  ck_assert(msci_row_max(s, 4, 1) == 3.0); /* the skipped entry never wins */
  ck_assert(msci_row_max(s, 1, 0) == -HUGE_VAL);
  double m = msci_row_max(s, 4, 1);
  double sum = msci_exp_row(s, 4, 1, m);
  ck_assert(s[1] == 0.0);
  ck_assert(s[3] == 1.0); /* the maximum gives exactly exp(0) */
  CLOSE(s[0], exp(-2.0), 1e-15);
  CLOSE(s[2], exp(-5.0), 1e-15);
  CLOSE(sum, 1.0 + exp(-2.0) + exp(-5.0), 1e-15);
  /* Huge similarities: no overflow, the sum stays in [1, k]. */
  double big[3] = {1e300, 1e300, -1e300};
  sum = msci_exp_row(big, 3, -1, msci_row_max(big, 3, -1));
  ck_assert(sum == 2.0 && big[2] == 0.0);
}
END_TEST

/* y (k×c) and inv_pos from the definition: 1/(n_c − 1) for n_c >= 2, else 0. */
static void inv_pos_of(const uint8_t *y, int64_t k, int64_t c, double *inv_pos) {
  for (int64_t t = 0; t < c; ++t) {
    int64_t nc = 0;
    for (int64_t i = 0; i < k; ++i) nc += y[i * c + t];
    inv_pos[t] = nc >= 2 ? 1.0 / (double)(nc - 1) : 0.0;
  }
}

START_TEST(mulsupcon_row_count) {
  const uint8_t y[4 * 3] = {1, 1, 0, /* */ 1, 0, 0, /* */ 0, 1, 1, /* */ 0, 0, 0};
  double inv[3];
  inv_pos_of(y, 4, 3, inv); /* n = (2, 2, 1) */
  ck_assert(inv[0] == 1.0 && inv[1] == 1.0 && inv[2] == 0.0);
  ck_assert_int_eq(msci_mulsupcon_row_count(y + 0, 3, inv), 2);
  ck_assert_int_eq(msci_mulsupcon_row_count(y + 3, 3, inv), 1);
  ck_assert_int_eq(msci_mulsupcon_row_count(y + 6, 3, inv), 1); /* class 2 has no partner */
  ck_assert_int_eq(msci_mulsupcon_row_count(y + 9, 3, inv), 0);
}
END_TEST

/* The anchor's rows straight from the definition: value w Σ_r −(1/|P_r|) Σ_{p∈P_r}
 * (s_p − lse) and its derivative w Σ_r (p_j − [j ∈ P_r]/|P_r|) for j ≠ i. */
static double naive_mulsupcon(const double *s, const uint8_t *y, int64_t k, int64_t c,
                              int64_t i, double w, double *g) {
  double mx = -HUGE_VAL, z = 0.0;
  for (int64_t j = 0; j < k; ++j)
    if (j != i) mx = fmax(mx, s[j]);
  for (int64_t j = 0; j < k; ++j)
    if (j != i) z += exp(s[j] - mx);
  const double lse = mx + log(z);
  double value = 0.0;
  for (int64_t j = 0; j < k; ++j) g[j] = 0.0;
  for (int64_t t = 0; t < c; ++t) {
    if (!y[i * c + t]) continue;
    int64_t np = 0;
    for (int64_t j = 0; j < k; ++j) np += j != i && y[j * c + t];
    if (np == 0) continue;
    for (int64_t j = 0; j < k; ++j) {
      if (j == i) continue;
      int pos = y[j * c + t] != 0;
      if (pos) value += -(s[j] - lse) / (double)np;
      g[j] += w * (exp(s[j] - lse) - (pos ? 1.0 / (double)np : 0.0));
    }
  }
  return w * value;
}

START_TEST(mulsupcon_row_against_definition) {
  enum { K = 6, C = 4 };
  const uint8_t y[K * C] = {1, 0, 1, 0, /* */ 1, 1, 0, 0, /* */ 0, 1, 1, 0,
                            1, 0, 1, 1, /* */ 0, 0, 0, 1, /* */ 0, 0, 0, 0};
  double inv[C];
  inv_pos_of(y, K, C, inv);
  for (int64_t i = 0; i < K; ++i) {
    double s[K], g[K];
    for (int64_t j = 0; j < K; ++j)
      s[j] = 3.0 * sin(1.7 * (double)(i * K + j)); /* ±3: τ-sized */
    double want = naive_mulsupcon(s, y, K, C, i, 0.37, g);
    double got = msci_mulsupcon_row(s, y, K, C, i, inv, 0.37);
    CLOSE(got, want, 1e-13);
    for (int64_t j = 0; j < K; ++j) CLOSE(s[j], j == i ? 0.0 : g[j], 1e-13);
  }
  /* An anchor without rows: 0 and a zero row. */
  double s[K] = {1, 2, 3, 4, 5, 6};
  ck_assert(msci_mulsupcon_row(s, y, K, C, 5, inv, 1.0) == 0.0);
  for (int64_t j = 0; j < K; ++j) ck_assert(s[j] == 0.0);
}
END_TEST

START_TEST(bce_row) {
  const float x[5] = {0.0f, 2.5f, -1.25f, 100.0f, -100.0f};
  const uint8_t y[5] = {1, 0, 1, 1, 0};
  float g[5];
  double want = 0.0;
  for (int t = 0; t < 5; ++t) {
    double gt;
    want += msci_bce_elem((double)x[t], y[t], &gt);
  }
  double got = msci_bce_row(x, y, 5, 0.25, g);
  CLOSE(got, want, 1e-15); /* unscaled: scale applies to the gradient only */
  /* By hand: σ(0) − 1 = −0.5; σ(2.5) − 0; σ(−1.25) − 1; ≈0 and ≈0 at the extremes. */
  CLOSE(g[0], 0.25 * -0.5, 1e-7);
  CLOSE(g[1], 0.25 / (1.0 + exp(-2.5)), 1e-7);
  CLOSE(g[2], 0.25 * (1.0 / (1.0 + exp(1.25)) - 1.0), 1e-7);
  ck_assert(fabsf(g[3]) < 1e-30f && fabsf(g[4]) < 1e-30f);
  ck_assert(isfinite(got));
  /* log(2) at x = 0, and the extreme terms are tiny but exact: log1p(e^−100). */
  CLOSE(msci_bce_row(x, y, 1, 1.0, NULL), log(2.0), 1e-15);
}
END_TEST

START_TEST(sgd_elem_by_hand) {
  /* Plain: p ← p − lr·g = 1 − 0.1·0.5 = 0.95. */
  float p = 1.0f;
  msci_sgd_elem(&p, NULL, 0.5f, 0.1f, 0.0f, 0.0f, 0);
  CLOSE(p, 0.95, 1e-7);
  /* Coupled decay: d = g + wd·p = 0.5 + 0.1·1 = 0.6; p = 1 − 0.1·0.6 = 0.94. */
  p = 1.0f;
  msci_sgd_elem(&p, NULL, 0.5f, 0.1f, 0.1f, 0.0f, 0);
  CLOSE(p, 0.94, 1e-7);
  /* Momentum 0.9 from b = 0: b = 0.5, p = 1 − 0.05; then g = 1: b = 0.45 + 1 = 1.45,
   * p = 0.95 − 0.145 = 0.805. */
  float buf = 0.0f;
  p = 1.0f;
  msci_sgd_elem(&p, &buf, 0.5f, 0.1f, 0.0f, 0.9f, 0);
  CLOSE(buf, 0.5, 1e-7);
  CLOSE(p, 0.95, 1e-7);
  msci_sgd_elem(&p, &buf, 1.0f, 0.1f, 0.0f, 0.9f, 0);
  CLOSE(buf, 1.45, 1e-7);
  CLOSE(p, 0.805, 1e-6);
  /* Nesterov: b = 0.5, d = g + μ·b = 0.5 + 0.45 = 0.95, p = 1 − 0.095 = 0.905. */
  buf = 0.0f;
  p = 1.0f;
  msci_sgd_elem(&p, &buf, 0.5f, 0.1f, 0.0f, 0.9f, 1);
  CLOSE(buf, 0.5, 1e-7);
  CLOSE(p, 0.905, 1e-7);
  /* Momentum 0 never touches the buffer. */
  buf = 123.0f;
  msci_sgd_elem(&p, &buf, 0.5f, 0.1f, 0.0f, 0.0f, 1);
  ck_assert(buf == 123.0f);
}
END_TEST

/* Taps by hand: the scale is n/out; x = (i + 0.5)·n/out - 0.5, clamped at 0; nearest is
 * floor(i·n/out). The integer ratios first (out = s·n). */
START_TEST(upsample_taps_by_hand) {
  int64_t a, b;
  float l;
  for (int64_t i = 0; i < 6; ++i) { /* nearest, n = 3, out = 6: 0 0 1 1 2 2 */
    msci_upsample_taps(i, 3, 6, 0, &a, &b, &l);
    ck_assert(a == i / 2 && b == i / 2 && l == 0.0f);
  }
  /* bilinear, n = 2, out = 4: x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 */
  const int64_t w0[4] = {0, 0, 0, 1}, w1[4] = {1, 1, 1, 1};
  const float wl[4] = {0.0f, 0.25f, 0.75f, 0.25f};
  for (int64_t i = 0; i < 4; ++i) {
    msci_upsample_taps(i, 2, 4, 1, &a, &b, &l);
    ck_assert_msg(a == w0[i] && b == w1[i] && l == wl[i], "i %lld: %lld %lld %g", (long long)i,
                  (long long)a, (long long)b, (double)l);
  }
  /* n = 4, out = 12: i = 4 gives x = 4.5/3 - 0.5 = 1; i = 5 gives 4/3. */
  msci_upsample_taps(4, 4, 12, 1, &a, &b, &l);
  ck_assert(a == 1 && b == 2);
  CLOSE(l, 0.0, 1e-6);
  msci_upsample_taps(5, 4, 12, 1, &a, &b, &l);
  ck_assert(a == 1 && b == 2);
  CLOSE(l, 1.0 / 3.0, 1e-6);
  /* The last output of the axis: x = 11.5/3 - 0.5 = 3.33 > n - 1 = 3: both taps 3. */
  msci_upsample_taps(11, 4, 12, 1, &a, &b, &l);
  ck_assert(a == 3 && b == 3);
  /* out = n is the identity; n = 1 reads the one input. */
  for (int64_t i = 0; i < 5; ++i) {
    msci_upsample_taps(i, 5, 5, 1, &a, &b, &l);
    ck_assert(a == i && l == 0.0f && b == (i < 4 ? i + 1 : 4));
    msci_upsample_taps(i, 1, 5, 1, &a, &b, &l);
    ck_assert(a == 0 && b == 0);
  }
}
END_TEST

/* Non-integer ratios, as F.interpolate(size=...) computes them (by hand). */
START_TEST(upsample_taps_non_integer) {
  int64_t a, b;
  float l;
  /* n = 2, out = 3: x = 0.5·2/3 - 0.5 < 0 -> 0; 1.5·2/3 - 0.5 = 0.5; 2.5·2/3 - 0.5 = 7/6. */
  msci_upsample_taps(0, 2, 3, 1, &a, &b, &l);
  ck_assert(a == 0 && b == 1 && l == 0.0f);
  msci_upsample_taps(1, 2, 3, 1, &a, &b, &l);
  ck_assert(a == 0 && b == 1);
  CLOSE(l, 0.5, 1e-6);
  msci_upsample_taps(2, 2, 3, 1, &a, &b, &l);
  ck_assert(a == 1 && b == 1); /* the upper tap clamped to n - 1 */
  CLOSE(l, 1.0 / 6.0, 1e-6);
  /* n = 8, out = 15 (a ResNet's 4x4 -> 8x8 -> 15x15 level on 120x120 patches):
   * i = 0: 0.5·8/15 - 0.5 < 0; i = 7: 7.5·8/15 - 0.5 = 3.5; i = 14: 14.5·8/15 - 0.5 = 7.23. */
  msci_upsample_taps(0, 8, 15, 1, &a, &b, &l);
  ck_assert(a == 0 && b == 1 && l == 0.0f);
  msci_upsample_taps(7, 8, 15, 1, &a, &b, &l);
  ck_assert(a == 3 && b == 4);
  CLOSE(l, 0.5, 1e-6);
  msci_upsample_taps(14, 8, 15, 1, &a, &b, &l);
  ck_assert(a == 7 && b == 7);
  /* i = 3: 3.5·8/15 - 0.5 = 1.3667. */
  msci_upsample_taps(3, 8, 15, 1, &a, &b, &l);
  ck_assert(a == 1 && b == 2);
  CLOSE(l, 3.5 * 8.0 / 15.0 - 1.5, 1e-6);
  /* nearest, n = 3, out = 5: floor(i·0.6) = 0 0 1 1 2 */
  const int64_t want[5] = {0, 0, 1, 1, 2};
  for (int64_t i = 0; i < 5; ++i) {
    msci_upsample_taps(i, 3, 5, 0, &a, &b, &l);
    ck_assert_msg(a == want[i] && b == want[i] && l == 0.0f, "nearest 3->5, i %lld: %lld",
                  (long long)i, (long long)a);
  }
}
END_TEST

/* The backward's gather window (msci_upsample_reach) holds every output that reads an
 * input with a non-zero weight, for every ratio from 1 to about 3, integer or not. */
START_TEST(upsample_reach_covers_taps) {
  for (int64_t n = 1; n <= 9; ++n)
    for (int64_t out = n; out <= 3 * n + 2; ++out)
      for (int32_t bl = 0; bl <= 1; ++bl)
        for (int64_t o = 0; o < out; ++o) {
          int64_t i0, i1, r0, r1;
          float l;
          msci_upsample_taps(o, n, out, bl, &i0, &i1, &l);
          ck_assert(i0 >= 0 && i0 < n && i1 >= i0 && i1 < n && l >= 0.0f && l <= 1.0f);
          const int64_t read[2] = {i0, i1};
          const float w[2] = {1.0f - l, l};
          for (int k = 0; k < 2; ++k) {
            if (w[k] == 0.0f) continue;
            msci_upsample_reach(read[k], n, out, &r0, &r1);
            ck_assert_msg(
                r0 <= o && o < r1 && r0 >= 0 && r1 <= out,
                "n %lld out %lld bilinear %d: output %lld reads %lld, reach [%lld, %lld)",
                (long long)n, (long long)out, (int)bl, (long long)o, (long long)read[k],
                (long long)r0, (long long)r1);
          }
        }
}
END_TEST

static Suite *core_suite(void) {
  Suite *s = suite_create("core_hd");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, dot_in_order);
  tcase_add_test(tc, row_max_and_exp_row);
  tcase_add_test(tc, mulsupcon_row_count);
  tcase_add_test(tc, mulsupcon_row_against_definition);
  tcase_add_test(tc, bce_row);
  tcase_add_test(tc, sgd_elem_by_hand);
  tcase_add_test(tc, upsample_taps_by_hand);
  tcase_add_test(tc, upsample_taps_non_integer);
  tcase_add_test(tc, upsample_reach_covers_taps);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(core_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
