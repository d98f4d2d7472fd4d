/*
 * test_ridge.c — the closed-form ridge regression of the forecasting protocol
 * (tools/ridge.c) against cases solved by hand.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "ridge.h"

/* (A + λI) w = b with A = [[2, 1], [1, 2]] (XᵀX of the rows (1, 0), (0, 1), (1, 1)),
 * λ = 1, b = Xᵀy = (4, 5) for y = (1, 2, 3): [[3, 1], [1, 3]] w = (4, 5), whose inverse
 * is [[3, −1], [−1, 3]] / 8, so w = (7/8, 11/8). */
START_TEST(solve_2d_by_hand) {
  const double a[4] = {2, 1, 1, 2}, b[2] = {4, 5};
  double w[2];
  ck_assert_int_eq(ridge_solve(a, b, 2, 1, 1.0, w), RIDGE_OK);
  ck_assert_double_eq_tol(w[0], 7.0 / 8.0, 1e-14);
  ck_assert_double_eq_tol(w[1], 11.0 / 8.0, 1e-14);
  /* Two right-hand sides at once: b2 = (1, 0) gives the first column of the inverse. */
  const double b2[4] = {4, 1, 5, 0};
  double w2[4];
  ck_assert_int_eq(ridge_solve(a, b2, 2, 2, 1.0, w2), RIDGE_OK);
  ck_assert_double_eq_tol(w2[0], 7.0 / 8.0, 1e-14);
  ck_assert_double_eq_tol(w2[2], 11.0 / 8.0, 1e-14);
  ck_assert_double_eq_tol(w2[1], 3.0 / 8.0, 1e-14);
  ck_assert_double_eq_tol(w2[3], -1.0 / 8.0, 1e-14);
  /* A singular system without a penalty is refused, not answered with infinities. */
  const double s[4] = {1, 1, 1, 1};
  ck_assert_int_eq(ridge_solve(s, b, 2, 1, 0.0, w), RIDGE_NOT_PD);
}
END_TEST

/* One feature x = (−1, 1) is already standardised (mean 0, population std 1); y = (0, 2)
 * has mean 1, centred (−1, 1): Xᵀy = 2, XᵀX = 2, λ = 2 → w = 2 / 4 = 1/2, so the
 * prediction at x = 1 is 1 + 1/2 and at x = 3 is 1 + 3/2. A third row with a NaN target
 * (x = 100) must change nothing (it would move the mean and the scale). */
START_TEST(fit_1d_by_hand) {
  const double x[3] = {-1, 1, 100}, y[3] = {0, 2, NAN};
  ridge_model m;
  ck_assert_int_eq(ridge_fit(x, y, 3, 1, 2.0, &m), RIDGE_OK);
  ck_assert_int_eq(m.rows, 2);
  ck_assert_double_eq_tol(m.bias, 1.0, 1e-15);
  ck_assert_double_eq_tol(m.w[0], 0.5, 1e-15);
  const double q1 = 1, q3 = 3;
  ck_assert_double_eq_tol(ridge_predict(&m, &q1), 1.5, 1e-14);
  ck_assert_double_eq_tol(ridge_predict(&m, &q3), 2.5, 1e-14);
  ridge_free(&m);
  /* The default λ: 1e-3 · trace(X̃ᵀX̃) / D = 1e-3 · 2 / 1. */
  ck_assert_int_eq(ridge_fit(x, y, 3, 1, -1.0, &m), RIDGE_OK);
  ck_assert_double_eq_tol(m.lambda, 2e-3, 1e-15);
  ck_assert_double_eq_tol(m.w[0], 2.0 / (2.0 + 2e-3), 1e-14);
  ridge_free(&m);
}
END_TEST

/* Without a penalty, exact data y = 2 x1 − 3 x2 + 5 on four rows in general position is
 * fitted exactly whatever the standardisation: at (10, −1) the prediction is 28. */
START_TEST(fit_exact_plane) {
  const double x[8] = {0, 0, 1, 0, 0, 2, 3, 1};
  double y[4];
  for (int i = 0; i < 4; ++i) y[i] = 2 * x[2 * i] - 3 * x[2 * i + 1] + 5;
  ridge_model m;
  ck_assert_int_eq(ridge_fit(x, y, 4, 2, 0.0, &m), RIDGE_OK);
  const double q[2] = {10, -1};
  ck_assert_double_eq_tol(ridge_predict(&m, q), 28.0, 1e-10);
  ridge_free(&m);
  /* No finite target: nothing to fit. */
  const double none[2] = {NAN, NAN};
  ck_assert_int_eq(ridge_fit(x, none, 2, 2, 0.0, &m), RIDGE_NO_ROWS);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ridge");
  TCase *tc = tcase_create("closed form");
  tcase_add_test(tc, solve_2d_by_hand);
  tcase_add_test(tc, fit_1d_by_hand);
  tcase_add_test(tc, fit_exact_plane);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
