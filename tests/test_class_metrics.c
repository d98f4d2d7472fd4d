/*
 * test_class_metrics.c — single-label and regression metrics (lib/eval/class_metrics.c,
 * lib/eval/regression.c) against docs/metrics.md and scikit-learn's definitions
 * (scikit-learn is not needed: every expected value is worked out by hand below or by a
 * plain reference written differently, F1 as the harmonic mean of precision and recall):
 *  (a) a 3-class example worked out by hand (comment of test_hand_three_classes);
 *  (b) the ignore index, outside and inside [0, C);
 *  (c) scikit-learn's label set: a class only predicted counts (F1 = IoU = 0), a class
 *      absent from both is NaN and left out of the means;
 *  (d) random data against a plain reference;
 *  (e) regression: MAE/RMSE by hand with missing targets, nothing counted → NaN;
 *  (f) argument errors: the documented status, a message naming the row or entry,
 *      outputs untouched.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mosaic/mosaic.h"

#define ck_assert_near(got, want, tol)                                                         \
  do {                                                                                         \
    double g_ = (double)(got), w_ = (double)(want);                                            \
    ck_assert_msg(fabs(g_ - w_) <= (tol), "%s = %.17g, expected %.17g", #got, g_, w_);         \
  } while (0)

static msc_class_metrics summary(const int64_t *m, int64_t c, double *f1, double *iou) {
  msc_class_metrics r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  ck_assert_int_eq(msc_metrics_from_confusion(m, c, &r, f1, iou), MSC_OK);
  return r;
}

/*
 * truth = 0 0 0 1 1 2 2 2 2, pred = 0 1 0 1 2 2 2 0 2 (9 pairs):
 *   confusion (row truth, column pred)  [2 1 0]
 *                                        [0 1 1]
 *                                        [1 0 3]
 *   accuracy = (2 + 1 + 3) / 9 = 2/3
 *   class 0: TP 2, FN 1, FP 1 → F1 = 4/6 = 2/3,  IoU = 2/4 = 1/2
 *   class 1: TP 1, FN 1, FP 1 → F1 = 2/4 = 1/2,  IoU = 1/3
 *   class 2: TP 3, FN 1, FP 1 → F1 = 6/8 = 3/4,  IoU = 3/5
 *   macro F1 = (2/3 + 1/2 + 3/4) / 3 = 23/36,  mIoU = (1/2 + 1/3 + 3/5) / 3 = 43/90.
 */
START_TEST(test_hand_three_classes) {
  const int32_t truth[] = {0, 0, 0, 1, 1, 2, 2, 2, 2};
  const int32_t pred[] = {0, 1, 0, 1, 2, 2, 2, 0, 2};
  const int64_t want[9] = {2, 1, 0, 0, 1, 1, 1, 0, 3};
  int64_t m[9];
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 9, 3, MSC_IGNORE_NONE, m), MSC_OK);
  for (int i = 0; i < 9; ++i) ck_assert_int_eq(m[i], want[i]);
  double f1[3], iou[3];
  msc_class_metrics r = summary(m, 3, f1, iou);
  ck_assert_int_eq(r.counted, 9);
  ck_assert_int_eq(r.present, 3);
  ck_assert_near(r.accuracy, 2.0 / 3.0, 1e-15);
  ck_assert_near(r.macro_f1, 23.0 / 36.0, 1e-15);
  ck_assert_near(r.miou, 43.0 / 90.0, 1e-15);
  ck_assert_near(f1[0], 2.0 / 3.0, 1e-15);
  ck_assert_near(f1[1], 0.5, 1e-15);
  ck_assert_near(f1[2], 0.75, 1e-15);
  ck_assert_near(iou[0], 0.5, 1e-15);
  ck_assert_near(iou[1], 1.0 / 3.0, 1e-15);
  ck_assert_near(iou[2], 0.6, 1e-15);
  /* The per-class arrays are optional. */
  msc_class_metrics r2 = summary(m, 3, NULL, NULL);
  ck_assert(r2.macro_f1 == r.macro_f1 && r2.miou == r.miou);
}
END_TEST

/* The example above with void pixels (truth 255) mixed in: they are skipped whatever
 * their prediction (even one outside [0, C)), and the result is unchanged. */
START_TEST(test_ignore_outside) {
  const int32_t truth[] = {255, 0, 0, 0, 1, 255, 1, 2, 2, 2, 2, 255};
  const int32_t pred[] = {2, 0, 1, 0, 1, 77, 2, 2, 2, 0, 2, -5};
  const int64_t want[9] = {2, 1, 0, 0, 1, 1, 1, 0, 3};
  int64_t m[9];
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 12, 3, 255, m), MSC_OK);
  for (int i = 0; i < 9; ++i) ck_assert_int_eq(m[i], want[i]);
  /* Without the ignore index the 255 truth is an error naming row 0. */
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 12, 3, MSC_IGNORE_NONE, m),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "truth[0]"));
}
END_TEST

/*
 * Ignore index inside [0, C) (PASTIS's void class 19 among 20): C = 3, ignore 2,
 * truth = 0 2 1 2, pred = 0 0 2 2. Kept pairs (0,0) and (1,2):
 *   confusion [1 0 0; 0 0 1; 0 0 0]; the row of class 2 stays 0, its column counts.
 *   accuracy 1/2; class 0: F1 = IoU = 1; class 1: TP 0, FN 1 → 0; class 2: predicted
 *   once, never true → 0. Present 3: macro F1 = mIoU = 1/3 (sklearn on the kept pairs:
 *   f1_score([0,1],[0,2],average="macro") = (1 + 0 + 0)/3).
 */
START_TEST(test_ignore_inside) {
  const int32_t truth[] = {0, 2, 1, 2};
  const int32_t pred[] = {0, 0, 2, 2};
  const int64_t want[9] = {1, 0, 0, 0, 0, 1, 0, 0, 0};
  int64_t m[9];
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 4, 3, 2, m), MSC_OK);
  for (int i = 0; i < 9; ++i) ck_assert_int_eq(m[i], want[i]);
  msc_class_metrics r = summary(m, 3, NULL, NULL);
  ck_assert_int_eq(r.counted, 2);
  ck_assert_int_eq(r.present, 3);
  ck_assert_near(r.accuracy, 0.5, 0);
  ck_assert_near(r.macro_f1, 1.0 / 3.0, 1e-15);
  ck_assert_near(r.miou, 1.0 / 3.0, 1e-15);
}
END_TEST

/*
 * scikit-learn's label set, C = 5: truth = 0 1 2 2, pred = 0 1 2 3.
 *   classes 0, 1: F1 = IoU = 1; class 2: TP 1, FN 1, FP 0 → F1 = 2/3, IoU = 1/2;
 *   class 3: predicted, never true → F1 = IoU = 0 (counted); class 4: absent → NaN.
 *   macro F1 = (1 + 1 + 2/3 + 0)/4 = 2/3; mIoU = (1 + 1 + 1/2 + 0)/4 = 5/8 (not /5);
 *   accuracy 3/4.
 */
START_TEST(test_sklearn_label_set) {
  const int32_t truth[] = {0, 1, 2, 2};
  const int32_t pred[] = {0, 1, 2, 3};
  int64_t m[25];
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 4, 5, MSC_IGNORE_NONE, m), MSC_OK);
  double f1[5], iou[5];
  msc_class_metrics r = summary(m, 5, f1, iou);
  ck_assert_int_eq(r.present, 4);
  ck_assert_near(r.accuracy, 0.75, 0);
  ck_assert_near(r.macro_f1, 2.0 / 3.0, 1e-15);
  ck_assert_near(r.miou, 5.0 / 8.0, 1e-15);
  ck_assert_near(f1[2], 2.0 / 3.0, 1e-15);
  ck_assert_near(iou[2], 0.5, 1e-15);
  ck_assert(f1[3] == 0.0 && iou[3] == 0.0);
  ck_assert(isnan(f1[4]) && isnan(iou[4]));
}
END_TEST

/* Nothing counted (n = 0, or every truth ignored): every summary NaN, present 0. */
START_TEST(test_nothing_counted) {
  const int32_t truth[] = {9, 9};
  const int32_t pred[] = {0, 1};
  int64_t m[4] = {5, 5, 5, 5};
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 2, 2, 9, m), MSC_OK);
  for (int i = 0; i < 4; ++i) ck_assert_int_eq(m[i], 0);
  double f1[2];
  msc_class_metrics r = summary(m, 2, f1, NULL);
  ck_assert_int_eq(r.counted, 0);
  ck_assert_int_eq(r.present, 0);
  ck_assert(isnan(r.accuracy) && isnan(r.macro_f1) && isnan(r.miou));
  ck_assert(isnan(f1[0]) && isnan(f1[1]));
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 0, 2, MSC_IGNORE_NONE, m), MSC_OK);
}
END_TEST

/* Random data against a plain reference: counts by searching every (t, p) cell, F1 as
 * the harmonic mean of precision and recall, IoU from the set sizes. */
START_TEST(test_random_reference) {
  enum { N = 2000, C = 7 };
  static int32_t truth[N], pred[N];
  uint64_t s = 12345;
  for (int i = 0; i < N; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    truth[i] = (int32_t)((s >> 33) % (C + 1)); /* C means ignored */
    if (truth[i] == 5) truth[i] = 4;           /* class 5 never true */
    pred[i] = (int32_t)((s >> 45) % C);
    if (pred[i] == 5 || pred[i] == 6) pred[i] = truth[i] < C && (s >> 20) % 2 ? truth[i] : 0;
    if (truth[i] == 6 && pred[i] == 6) pred[i] = 1; /* class 6: true, never predicted */
  }
  int64_t m[C * C];
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, N, C, C, m), MSC_OK);
  int64_t counted = 0, correct = 0;
  for (int t = 0; t < C; ++t)
    for (int p = 0; p < C; ++p) {
      int64_t cnt = 0;
      for (int i = 0; i < N; ++i) cnt += truth[i] == t && pred[i] == p;
      ck_assert_int_eq(m[t * C + p], cnt);
    }
  double f1_sum = 0, iou_sum = 0;
  int present = 0;
  double f1[C], iou[C];
  msc_class_metrics r = summary(m, C, f1, iou);
  for (int k = 0; k < C; ++k) {
    int64_t tp = 0, in_truth = 0, in_pred = 0, either = 0;
    for (int i = 0; i < N; ++i) {
      if (truth[i] == C) continue;
      tp += truth[i] == k && pred[i] == k;
      in_truth += truth[i] == k;
      in_pred += pred[i] == k;
      either += truth[i] == k || pred[i] == k;
      if (k == 0) counted++, correct += truth[i] == pred[i];
    }
    if (either == 0) {
      ck_assert(isnan(f1[k]));
      continue;
    }
    double prec = in_pred ? (double)tp / in_pred : 0,
           rec = in_truth ? (double)tp / in_truth : 0;
    double f = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
    double j = (double)tp / (double)either;
    ck_assert_near(f1[k], f, 1e-12);
    ck_assert_near(iou[k], j, 1e-12);
    f1_sum += f, iou_sum += j, present++;
  }
  ck_assert_int_eq(present, 6); /* class 5 is never true and never predicted */
  ck_assert_int_eq(r.present, present);
  ck_assert_int_eq(r.counted, counted);
  ck_assert_near(r.accuracy, (double)correct / (double)counted, 1e-15);
  ck_assert_near(r.macro_f1, f1_sum / present, 1e-12);
  ck_assert_near(r.miou, iou_sum / present, 1e-12);
}
END_TEST

/*
 * pred = 1 2 4 100 7 NaN, truth = 2 2 1 NaN +inf NaN: the last three pairs have no
 * target (skipped, even the NaN prediction). Errors −1, 0, 3:
 *   MAE = 4/3, RMSE = sqrt((1 + 0 + 9)/3) = sqrt(10/3).
 */
START_TEST(test_regression) {
  const float pred[] = {1, 2, 4, 100, 7, NAN};
  const float truth[] = {2, 2, 1, NAN, INFINITY, NAN};
  double mae = -1, rmse = -1;
  ck_assert_int_eq(msc_metrics_regression(pred, truth, 6, &mae, &rmse), MSC_OK);
  ck_assert_near(mae, 4.0 / 3.0, 1e-15);
  ck_assert_near(rmse, sqrt(10.0 / 3.0), 1e-15);
  double only = -1;
  ck_assert_int_eq(msc_metrics_regression(pred, truth, 6, NULL, &only), MSC_OK);
  ck_assert(only == rmse);
  /* Nothing counted: NaN and success. */
  ck_assert_int_eq(msc_metrics_regression(pred + 3, truth + 3, 3, &mae, &rmse), MSC_OK);
  ck_assert(isnan(mae) && isnan(rmse));
  ck_assert_int_eq(msc_metrics_regression(pred, truth, 0, &mae, NULL), MSC_OK);
  ck_assert(isnan(mae));
  /* A non-finite prediction with a target names the row; outputs untouched. */
  const float bad[] = {1, INFINITY};
  const float t2[] = {1, 2};
  mae = 7, rmse = 7;
  ck_assert_int_eq(msc_metrics_regression(bad, t2, 2, &mae, &rmse), MSC_E_NUMERICAL);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "pred[1]"));
  ck_assert(mae == 7 && rmse == 7);
  ck_assert_int_eq(msc_metrics_regression(NULL, t2, 2, &mae, &rmse), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_regression(bad, NULL, 2, &mae, &rmse), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_regression(bad, t2, 2, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_regression(bad, t2, -1, &mae, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert(mae == 7 && rmse == 7);
}
END_TEST

START_TEST(test_errors) {
  const int32_t truth[] = {0, 1, 2};
  const int32_t pred[] = {0, 3, 1};
  int64_t m[9];
  for (int i = 0; i < 9; ++i) m[i] = 42;
  /* A prediction outside [0, C) names its row; the matrix is untouched. */
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 3, 3, -1, m), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "pred[1]"));
  const int32_t neg[] = {0, 0, -1};
  ck_assert_int_eq(msc_metrics_confusion(neg, truth, 3, 3, -1, m), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "pred[2]"));
  /* A negative truth is an error unless it is the ignore index (then it is skipped). */
  ck_assert_int_eq(msc_metrics_confusion(truth, neg, 3, 3, MSC_IGNORE_NONE, m),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "truth[2]"));
  int64_t skipped[9];
  ck_assert_int_eq(msc_metrics_confusion(truth, neg, 3, 3, -1, skipped), MSC_OK);
  int64_t kept = 0;
  for (int i = 0; i < 9; ++i) kept += skipped[i];
  ck_assert_int_eq(kept, 2);
  ck_assert_int_eq(msc_metrics_confusion(NULL, truth, 3, 3, -1, m), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_confusion(pred, NULL, 3, 3, -1, m), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 3, 3, -1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, -1, 3, -1, m), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 3, 0, -1, m), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 3, (int64_t)1 << 40, -1, m),
                   MSC_E_INVALID_ARGUMENT);
  for (int i = 0; i < 9; ++i) ck_assert_int_eq(m[i], 42);

  msc_class_metrics r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.accuracy = 5;
  double f1[3] = {5, 5, 5};
  int64_t c[9] = {1, 0, 0, 0, -2, 0, 0, 0, 1};
  ck_assert_int_eq(msc_metrics_from_confusion(c, 3, &r, f1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "confusion[1][1]"));
  int64_t big[4] = {INT64_MAX, 1, 0, 0};
  ck_assert_int_eq(msc_metrics_from_confusion(big, 2, &r, f1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "overflow"));
  ck_assert_int_eq(msc_metrics_from_confusion(NULL, 3, &r, f1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_from_confusion(m, 3, NULL, f1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_from_confusion(m, 0, &r, f1, NULL), MSC_E_INVALID_ARGUMENT);
  r.struct_size = 8;
  ck_assert_int_eq(msc_metrics_from_confusion(m, 3, &r, f1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "struct_size"));
  ck_assert(r.accuracy == 5 && f1[0] == 5 && f1[2] == 5);
}
END_TEST

/* Top-k accuracy, worked by hand with scikit-learn's tie rule (equal scores: the larger
 * class index ranks first). */
START_TEST(test_top_k) {
  const float scores[4 * 4] = {
      0.1f, 0.5f, 0.3f, 0.1f, /* truth 2: rank 2 (0.5 above)            */
      0.2f, 0.2f, 0.2f, 0.4f, /* truth 0: 3 above (0.4, ties 1 and 2)       */
      0.9f, 0.0f, 0.0f, 0.1f, /* truth 0: rank 1                          */
      0.3f, 0.3f, 0.3f, 0.1f, /* truth 0: ties with 1 and 2, both above   */
  };
  const int32_t truth[4] = {2, 0, 0, 0};
  double acc = -1;
  int64_t counted = -1;
  ck_assert_int_eq(msc_metrics_top_k(scores, truth, 4, 4, 1, MSC_IGNORE_NONE, &acc, &counted),
                   MSC_OK);
  ck_assert_double_eq_tol(acc, 1.0 / 4.0, 1e-15);
  ck_assert_int_eq(counted, 4);
  ck_assert_int_eq(msc_metrics_top_k(scores, truth, 4, 4, 2, MSC_IGNORE_NONE, &acc, NULL),
                   MSC_OK);
  ck_assert_double_eq_tol(acc, 2.0 / 4.0, 1e-15);
  ck_assert_int_eq(msc_metrics_top_k(scores, truth, 4, 4, 3, MSC_IGNORE_NONE, &acc, NULL),
                   MSC_OK);
  ck_assert_double_eq_tol(acc, 3.0 / 4.0, 1e-15);
  ck_assert_int_eq(msc_metrics_top_k(scores, truth, 4, 4, 4, MSC_IGNORE_NONE, &acc, NULL),
                   MSC_OK);
  ck_assert_double_eq_tol(acc, 1.0, 1e-15);
  /* The ignored row leaves 3 rows: at k = 1 one of them is right. */
  const int32_t t2[4] = {2, -1, 0, 0};
  ck_assert_int_eq(msc_metrics_top_k(scores, t2, 4, 4, 1, -1, &acc, &counted), MSC_OK);
  ck_assert_double_eq_tol(acc, 1.0 / 3.0, 1e-15);
  ck_assert_int_eq(counted, 3);
  /* Errors leave the outputs alone. */
  acc = 7;
  ck_assert_int_eq(msc_metrics_top_k(scores, t2, 4, 4, 1, MSC_IGNORE_NONE, &acc, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "truth[1]"));
  ck_assert_int_eq(msc_metrics_top_k(scores, truth, 4, 4, 0, -1, &acc, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_metrics_top_k(NULL, truth, 4, 4, 1, -1, &acc, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_double_eq(acc, 7);
}
END_TEST

int main(void) {
  Suite *s = suite_create("class_metrics");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_hand_three_classes);
  tcase_add_test(tc, test_top_k);
  tcase_add_test(tc, test_ignore_outside);
  tcase_add_test(tc, test_ignore_inside);
  tcase_add_test(tc, test_sklearn_label_set);
  tcase_add_test(tc, test_nothing_counted);
  tcase_add_test(tc, test_random_reference);
  tcase_add_test(tc, test_regression);
  tcase_add_test(tc, test_errors);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
