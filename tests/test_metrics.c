/*
 * test_metrics.c — msc_metrics_compute and msc_metrics_per_class (lib/eval/metrics.c)
 * against docs/metrics.md and scikit-learn's definitions:
 *  (a) cases worked out by hand: tied scores as one threshold, sklearn's docstring
 *      example, a 4 × 3 problem with a class without positives (skipped in macro AP,
 *      counted as 0 in MSC_METRIC_MACRO_AP_ZERO), F1 with 0/0, Hamming, Brier, micro AP;
 *  (b) a deliberately plain reference (AP by repeatedly taking the largest unused score
 *      and every sample tied with it; F1/Hamming/Brier by direct loops) on random data
 *      with many ties and some empty classes;
 *  (c) the out_len protocol (fewer metrics, more metrics than the library knows);
 *  (d) error paths: the documented status, a message, outputs untouched;
 *  (e) bit-identical results for any number of OpenMP threads.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "mosaic/mosaic.h"

#define ck_assert_near(got, want, tol)                                                         \
  do {                                                                                         \
    double g_ = (double)(got), w_ = (double)(want);                                            \
    ck_assert_msg(fabs(g_ - w_) <= (tol), "%s = %.17g, expected %.17g", #got, g_, w_);         \
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

/* ---- the plain reference ------------------------------------------------------------- */

/* AP of class k: take the largest unused score, then every unused sample with exactly
 * that score (one threshold), add (ΔR)·P. NaN without positives. O(N²). */
static double ref_ap(const float *s, const uint8_t *y, int64_t n, int64_t stride, int64_t k) {
  int64_t pos = 0;
  for (int64_t i = 0; i < n; ++i) pos += y[i * stride + k];
  if (pos == 0) return NAN;
  uint8_t *used = calloc((size_t)n, 1);
  int64_t tp = 0, fp = 0;
  double ap = 0, prev = 0;
  for (;;) {
    int found = 0;
    float best = 0;
    for (int64_t i = 0; i < n; ++i)
      if (!used[i] && (!found || s[i * stride + k] > best)) best = s[i * stride + k], found = 1;
    if (!found) break;
    for (int64_t i = 0; i < n; ++i)
      if (!used[i] && s[i * stride + k] == best) {
        used[i] = 1;
        if (y[i * stride + k])
          tp++;
        else
          fp++;
      }
    double r = (double)tp / (double)pos, p = (double)tp / (double)(tp + fp);
    ap += (r - prev) * p;
    prev = r;
  }
  free(used);
  return ap;
}

typedef struct {
  double m[MSC_METRIC_COUNT];
  double *ap, *f1, *ham, *brier;
  int64_t *support;
} ref_result;

static void ref_all(const float *s, const uint8_t *y, int64_t n, int64_t c, float t,
                    ref_result *r) {
  r->ap = malloc((size_t)c * sizeof(double));
  r->f1 = malloc((size_t)c * sizeof(double));
  r->ham = malloc((size_t)c * sizeof(double));
  r->brier = malloc((size_t)c * sizeof(double));
  r->support = malloc((size_t)c * sizeof(int64_t));
  double ap_sum = 0, f1_sum = 0, sq = 0;
  int64_t with_pos = 0, TP = 0, FP = 0, FN = 0;
  for (int64_t k = 0; k < c; ++k) {
    int64_t tp = 0, fp = 0, fn = 0, sup = 0;
    double e2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      int p = s[i * c + k] >= t, l = y[i * c + k];
      tp += p && l, fp += p && !l, fn += !p && l, sup += l;
      double d = (double)s[i * c + k] - l;
      e2 += d * d;
    }
    r->ap[k] = ref_ap(s, y, n, c, k);
    r->f1[k] = (2 * tp + fp + fn) ? 2.0 * tp / (double)(2 * tp + fp + fn) : 0.0;
    r->ham[k] = (double)(fp + fn) / (double)n;
    r->brier[k] = e2 / (double)n;
    r->support[k] = sup;
    if (sup) with_pos++, ap_sum += r->ap[k];
    f1_sum += r->f1[k];
    sq += e2;
    TP += tp, FP += fp, FN += fn;
  }
  r->m[MSC_METRIC_MACRO_AP] = with_pos ? ap_sum / (double)with_pos : NAN;
  r->m[MSC_METRIC_MICRO_AP] = ref_ap(s, y, n * c, 1, 0);
  r->m[MSC_METRIC_MACRO_F1] = f1_sum / (double)c;
  r->m[MSC_METRIC_MICRO_F1] = (2 * TP + FP + FN) ? 2.0 * TP / (double)(2 * TP + FP + FN) : 0;
  r->m[MSC_METRIC_HAMMING] = (double)(FP + FN) / (double)(n * c);
  r->m[MSC_METRIC_BRIER] = sq / (double)(n * c);
  r->m[MSC_METRIC_MACRO_AP_ZERO] = ap_sum / (double)c;
  r->m[MSC_METRIC_SKIPPED_CLASSES] = (double)(c - with_pos);
}

static void ref_free(ref_result *r) {
  free(r->ap), free(r->f1), free(r->ham), free(r->brier), free(r->support);
}

/* Both NaN, or within tol. */
static int same_or_nan(double a, double b, double tol) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  return fabs(a - b) <= tol;
}

/* ---- (a) hand-computed cases ------------------------------------------------------------ */

START_TEST(test_ties_form_one_threshold) {
  double m[MSC_METRIC_COUNT];
  /* Two samples with the same score, one positive: one threshold, R = 1, P = 1/2. Any
   * tie-breaking order would give 1 (positive first) instead. */
  const float s1[] = {0.8f, 0.8f};
  const uint8_t y1[] = {1, 0};
  ck_assert_int_eq(msc_metrics_compute(s1, y1, 2, 1, 0.5f, m, MSC_METRIC_COUNT), MSC_OK);
  ck_assert_near(m[MSC_METRIC_MACRO_AP], 0.5, 1e-15);
  ck_assert_near(m[MSC_METRIC_MICRO_AP], 0.5, 1e-15);
  const uint8_t y1b[] = {0, 1}; /* the order of the tied samples does not matter */
  ck_assert_int_eq(msc_metrics_compute(s1, y1b, 2, 1, 0.5f, m, MSC_METRIC_COUNT), MSC_OK);
  ck_assert_near(m[MSC_METRIC_MACRO_AP], 0.5, 1e-15);

  /* 0.9 (+), then 0.8 tied (+, −), then 0.3 (−): 1/2·1 + 1/2·2/3 = 5/6. */
  const float s2[] = {0.9f, 0.8f, 0.8f, 0.3f};
  const uint8_t y2[] = {1, 0, 1, 0};
  ck_assert_int_eq(msc_metrics_compute(s2, y2, 4, 1, 0.5f, m, MSC_METRIC_COUNT), MSC_OK);
  ck_assert_near(m[MSC_METRIC_MACRO_AP], 5.0 / 6.0, 1e-15);

  /* All scores equal: AP is the prevalence. */
  const float s3[] = {0.3f, 0.3f, 0.3f, 0.3f, 0.3f};
  const uint8_t y3[] = {1, 0, 0, 1, 0};
  ck_assert_int_eq(msc_metrics_compute(s3, y3, 5, 1, 0.5f, m, MSC_METRIC_COUNT), MSC_OK);
  ck_assert_near(m[MSC_METRIC_MACRO_AP], 0.4, 1e-15);
}
END_TEST

START_TEST(test_sklearn_docstring_example) {
  /* sklearn.metrics.average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
   * = 0.8333... */
  const float s[] = {0.1f, 0.4f, 0.35f, 0.8f};
  const uint8_t y[] = {0, 0, 1, 1};
  double m[MSC_METRIC_COUNT];
  ck_assert_int_eq(msc_metrics_compute(s, y, 4, 1, 0.5f, m, MSC_METRIC_COUNT), MSC_OK);
  ck_assert_near(m[MSC_METRIC_MACRO_AP], 5.0 / 6.0, 1e-15);
  ck_assert_near(m[MSC_METRIC_MICRO_AP], 5.0 / 6.0, 1e-15);
  /* ŷ = [0, 0, 0, 1]: TP 1, FN 1, FP 0: F1 = 2/3, Hamming 1/4. */
  ck_assert_near(m[MSC_METRIC_MACRO_F1], 2.0 / 3.0, 1e-15);
  ck_assert_near(m[MSC_METRIC_MICRO_F1], 2.0 / 3.0, 1e-15);
  ck_assert_near(m[MSC_METRIC_HAMMING], 0.25, 1e-15);
  ck_assert_near(m[MSC_METRIC_SKIPPED_CLASSES], 0, 0);
}
END_TEST

/* 4 samples × 3 classes; class 2 has no positive. */
static const float H_S[] = {0.9f, 0.2f, 0.6f, /* */
                            0.4f, 0.7f, 0.1f, /* */
                            0.6f, 0.7f, 0.3f, /* */
                            0.1f, 0.5f, 0.2f};
static const uint8_t H_Y[] = {1, 0, 0, /* */ 0, 1, 0, /* */ 1, 0, 0, /* */ 0, 1, 0};

START_TEST(test_hand_case_with_empty_class) {
  double m[MSC_METRIC_COUNT];
  ck_assert_int_eq(msc_metrics_compute(H_S, H_Y, 4, 3, 0.5f, m, MSC_METRIC_COUNT), MSC_OK);
  /* class 0: 0.9 (+), 0.6 (+) first: AP 1. class 1: 0.7 tied (+, −): R 1/2, P 1/2;
   * 0.5 (+): R 1, P 2/3: AP 1/4 + 1/3 = 7/12. class 2: no positive, skipped. */
  ck_assert_near(m[MSC_METRIC_MACRO_AP], (1.0 + 7.0 / 12.0) / 2.0, 1e-15);
  ck_assert_near(m[MSC_METRIC_MACRO_AP_ZERO], (1.0 + 7.0 / 12.0) / 3.0, 1e-15);
  ck_assert_near(m[MSC_METRIC_SKIPPED_CLASSES], 1, 0);
  /* Flattened: 0.9 (+) | 0.7 (+ −) | 0.6 (− +) | 0.5 (+) | ...: positives 4:
   * 1/4·1 + 1/4·2/3 + 1/4·3/5 + 1/4·4/6 = 44/60. */
  ck_assert_near(m[MSC_METRIC_MICRO_AP], 44.0 / 60.0, 1e-15);
  /* ŷ at 0.5: class 0 exact (F1 1); class 1 TP 2 FP 1 (F1 4/5); class 2 FP 1, TP 0
   * (F1 0). Micro: TP 4, FP 2, FN 0: 8/10. */
  ck_assert_near(m[MSC_METRIC_MACRO_F1], (1.0 + 0.8 + 0.0) / 3.0, 1e-15);
  ck_assert_near(m[MSC_METRIC_MICRO_F1], 0.8, 1e-15);
  ck_assert_near(m[MSC_METRIC_HAMMING], 2.0 / 12.0, 1e-15);
  /* Σ(p − y)² = 0.34 + 0.87 + 0.50 (per class) over 12 entries (float inputs). */
  ck_assert_near(m[MSC_METRIC_BRIER], 1.71 / 12.0, 1e-7);

  double ap[3], f1[3], ham[3], brier[3];
  int64_t sup[3];
  ck_assert_int_eq(msc_metrics_per_class(H_S, H_Y, 4, 3, 0.5f, ap, f1, ham, brier, sup, 3),
                   MSC_OK);
  ck_assert_near(ap[0], 1.0, 1e-15);
  ck_assert_near(ap[1], 7.0 / 12.0, 1e-15);
  ck_assert(isnan(ap[2]));
  ck_assert_near(f1[0], 1.0, 0);
  ck_assert_near(f1[1], 0.8, 1e-15);
  ck_assert_near(f1[2], 0, 0);
  ck_assert_near(ham[0], 0, 0);
  ck_assert_near(ham[1], 0.25, 0);
  ck_assert_near(ham[2], 0.25, 0);
  ck_assert_near(brier[0], 0.34 / 4, 1e-7);
  ck_assert_near(brier[1], 0.87 / 4, 1e-7);
  ck_assert_near(brier[2], 0.50 / 4, 1e-7);
  ck_assert_int_eq(sup[0], 2);
  ck_assert_int_eq(sup[1], 2);
  ck_assert_int_eq(sup[2], 0);

  /* A higher threshold: only 0.9 is predicted: TP 1 (class 0); FN 3. */
  ck_assert_int_eq(msc_metrics_compute(H_S, H_Y, 4, 3, 0.8f, m, MSC_METRIC_COUNT), MSC_OK);
  ck_assert_near(m[MSC_METRIC_MICRO_F1], 2.0 / 5.0, 1e-15);
  ck_assert_near(m[MSC_METRIC_MACRO_F1], (2.0 / 3.0) / 3.0, 1e-15);
  ck_assert_near(m[MSC_METRIC_HAMMING], 3.0 / 12.0, 1e-15);
  /* Scores at exactly the threshold count as predicted (p >= t). */
  ck_assert_int_eq(msc_metrics_compute(H_S, H_Y, 4, 3, 0.7f, m, MSC_METRIC_COUNT), MSC_OK);
  ck_assert_near(m[MSC_METRIC_MICRO_F1], 4.0 / 7.0, 1e-15); /* TP 2, FP 1, FN 2 */
}
END_TEST

START_TEST(test_no_positives_at_all) {
  const float s[] = {0.1f, 0.7f, 0.2f, 0.4f};
  const uint8_t y[] = {0, 0, 0, 0};
  double m[MSC_METRIC_COUNT];
  ck_assert_int_eq(msc_metrics_compute(s, y, 2, 2, 0.5f, m, MSC_METRIC_COUNT), MSC_OK);
  ck_assert(isnan(m[MSC_METRIC_MACRO_AP]));
  ck_assert(isnan(m[MSC_METRIC_MICRO_AP]));
  ck_assert_near(m[MSC_METRIC_MACRO_AP_ZERO], 0, 0);
  ck_assert_near(m[MSC_METRIC_SKIPPED_CLASSES], 2, 0);
  ck_assert_near(m[MSC_METRIC_MICRO_F1], 0, 0); /* TP 0, FP 1: 0/1 */
  ck_assert_near(m[MSC_METRIC_HAMMING], 0.25, 0);

  /* A perfect ranking gives AP 1 whatever the scores' scale. */
  const float p[] = {-3.0f, 10.0f, 2.0f, 1.0f};
  const uint8_t py[] = {0, 1, 1, 0};
  ck_assert_int_eq(msc_metrics_compute(p, py, 4, 1, 0.5f, m, MSC_METRIC_COUNT), MSC_OK);
  ck_assert_near(m[MSC_METRIC_MACRO_AP], 1.0, 0);
}
END_TEST

/* ---- (b) random data against the plain reference ------------------------------------------ */

START_TEST(test_random_against_reference) {
  for (int trial = 0; trial < 40; ++trial) {
    rng_seed(100 + (uint64_t)trial);
    int64_t n = 1 + (int64_t)(rng_u() * 120), c = 1 + (int64_t)(rng_u() * 12);
    float *s = malloc((size_t)(n * c) * sizeof(float));
    uint8_t *y = malloc((size_t)(n * c));
    /* Quantised scores: many ties. Some classes rare or empty. */
    int levels = trial % 3 == 0 ? 4 : trial % 3 == 1 ? 16 : 1000000;
    for (int64_t k = 0; k < c; ++k) {
      double prev = rng_u() < 0.2 ? 0.0 : rng_u() * 0.6;
      for (int64_t i = 0; i < n; ++i) {
        y[i * c + k] = rng_u() < prev;
        double u = rng_u() * 0.7 + (y[i * c + k] ? 0.3 : 0.0);
        s[i * c + k] = (float)(floor(u * levels) / levels);
      }
    }
    float t = (float)(0.2 + 0.6 * rng_u());
    ref_result r;
    ref_all(s, y, n, c, t, &r);
    double m[MSC_METRIC_COUNT];
    ck_assert_int_eq(msc_metrics_compute(s, y, n, c, t, m, MSC_METRIC_COUNT), MSC_OK);
    for (int i = 0; i < MSC_METRIC_COUNT; ++i)
      ck_assert_msg(same_or_nan(m[i], r.m[i], 1e-12),
                    "trial %d (n %lld, c %lld): metric %d = %.17g, reference %.17g", trial,
                    (long long)n, (long long)c, i, m[i], r.m[i]);
    double *ap = malloc((size_t)c * sizeof(double)), *f1 = malloc((size_t)c * sizeof(double));
    double *ham = malloc((size_t)c * sizeof(double)), *br = malloc((size_t)c * sizeof(double));
    int64_t *sup = malloc((size_t)c * sizeof(int64_t));
    ck_assert_int_eq(msc_metrics_per_class(s, y, n, c, t, ap, f1, ham, br, sup, (size_t)c),
                     MSC_OK);
    for (int64_t k = 0; k < c; ++k) {
      ck_assert_msg(same_or_nan(ap[k], r.ap[k], 1e-12),
                    "trial %d class %lld: AP %.17g vs %.17g", trial, (long long)k, ap[k],
                    r.ap[k]);
      ck_assert(same_or_nan(f1[k], r.f1[k], 1e-15));
      ck_assert(same_or_nan(ham[k], r.ham[k], 1e-15));
      ck_assert(same_or_nan(br[k], r.brier[k], 1e-12));
      ck_assert_int_eq(sup[k], r.support[k]);
    }
    /* Arrays may be left out: only F1 asked for. */
    double f1b[16];
    ck_assert_int_eq(msc_metrics_per_class(s, y, n, c, t, NULL, f1b, NULL, NULL, NULL, 16),
                     MSC_OK);
    for (int64_t k = 0; k < c; ++k) ck_assert(f1b[k] == f1[k]);
    free(ap), free(f1), free(ham), free(br), free(sup);
    ref_free(&r);
    free(s);
    free(y);
  }
}
END_TEST

/* ---- (c) the out_len protocol -------------------------------------------------------------- */

START_TEST(test_out_len_protocol) {
  double full[MSC_METRIC_COUNT], part[8];
  ck_assert_int_eq(msc_metrics_compute(H_S, H_Y, 4, 3, 0.5f, full, MSC_METRIC_COUNT), MSC_OK);
  for (int32_t len = 0; len <= 3; ++len) {
    for (int i = 0; i < 8; ++i) part[i] = -7.0;
    ck_assert_int_eq(msc_metrics_compute(H_S, H_Y, 4, 3, 0.5f, part, len), MSC_OK);
    for (int i = 0; i < 8; ++i) {
      if (i < len)
        ck_assert(part[i] == full[i]);
      else
        ck_assert(part[i] == -7.0); /* beyond out_len: untouched */
    }
  }
  /* A caller that knows more metrics than the library: NaN beyond MSC_METRIC_COUNT. */
  double more[MSC_METRIC_COUNT + 3];
  ck_assert_int_eq(msc_metrics_compute(H_S, H_Y, 4, 3, 0.5f, more, MSC_METRIC_COUNT + 3),
                   MSC_OK);
  for (int i = 0; i < MSC_METRIC_COUNT; ++i) ck_assert(same_or_nan(more[i], full[i], 0));
  for (int i = MSC_METRIC_COUNT; i < MSC_METRIC_COUNT + 3; ++i) ck_assert(isnan(more[i]));
  /* out_len = 0 only validates; out may then be NULL. */
  ck_assert_int_eq(msc_metrics_compute(H_S, H_Y, 4, 3, 0.5f, NULL, 0), MSC_OK);
}
END_TEST

/* ---- (d) errors ------------------------------------------------------------------------------ */

static void expect_error(msc_status got, msc_status want, const char *word) {
  ck_assert_int_eq(got, want);
  ck_assert_msg(strstr(msc_last_error(), word) != NULL, "message '%s' lacks '%s'",
                msc_last_error(), word);
}

START_TEST(test_errors) {
  double m[MSC_METRIC_COUNT];
  for (int i = 0; i < MSC_METRIC_COUNT; ++i) m[i] = 42.0;
  expect_error(msc_metrics_compute(NULL, H_Y, 4, 3, 0.5f, m, MSC_METRIC_COUNT),
               MSC_E_INVALID_ARGUMENT, "scores");
  expect_error(msc_metrics_compute(H_S, NULL, 4, 3, 0.5f, m, MSC_METRIC_COUNT),
               MSC_E_INVALID_ARGUMENT, "labels");
  expect_error(msc_metrics_compute(H_S, H_Y, 4, 3, 0.5f, NULL, MSC_METRIC_COUNT),
               MSC_E_INVALID_ARGUMENT, "out");
  expect_error(msc_metrics_compute(H_S, H_Y, 0, 3, 0.5f, m, MSC_METRIC_COUNT),
               MSC_E_INVALID_ARGUMENT, "n = 0");
  expect_error(msc_metrics_compute(H_S, H_Y, 4, -1, 0.5f, m, MSC_METRIC_COUNT),
               MSC_E_INVALID_ARGUMENT, "c = -1");
  expect_error(msc_metrics_compute(H_S, H_Y, INT64_MAX / 2, 3, 0.5f, m, MSC_METRIC_COUNT),
               MSC_E_INVALID_ARGUMENT, "too large");
  expect_error(msc_metrics_compute(H_S, H_Y, 4, 3, NAN, m, MSC_METRIC_COUNT),
               MSC_E_INVALID_ARGUMENT, "threshold");
  expect_error(msc_metrics_compute(H_S, H_Y, 4, 3, 0.5f, m, -1), MSC_E_INVALID_ARGUMENT,
               "out_len");
  float s[12];
  uint8_t y[12];
  memcpy(s, H_S, sizeof s);
  memcpy(y, H_Y, sizeof y);
  y[7] = 2;
  expect_error(msc_metrics_compute(s, y, 4, 3, 0.5f, m, MSC_METRIC_COUNT),
               MSC_E_INVALID_ARGUMENT, "labels[7] (sample 2, class 1)");
  y[7] = 0;
  s[5] = NAN;
  expect_error(msc_metrics_compute(s, y, 4, 3, 0.5f, m, MSC_METRIC_COUNT), MSC_E_NUMERICAL,
               "scores[5] (sample 1, class 2) is NaN");
  s[5] = -INFINITY;
  expect_error(msc_metrics_compute(s, y, 4, 3, 0.5f, m, MSC_METRIC_COUNT), MSC_E_NUMERICAL,
               "infinite");
  for (int i = 0; i < MSC_METRIC_COUNT; ++i) ck_assert(m[i] == 42.0); /* untouched */

  double ap[3] = {9, 9, 9};
  int64_t sup[3] = {9, 9, 9};
  expect_error(msc_metrics_per_class(H_S, H_Y, 4, 3, 0.5f, ap, NULL, NULL, NULL, sup, 2),
               MSC_E_BUFFER_TOO_SMALL, "cap");
  expect_error(msc_metrics_per_class(s, H_Y, 4, 3, 0.5f, ap, NULL, NULL, NULL, sup, 3),
               MSC_E_NUMERICAL, "scores[5]");
  expect_error(msc_metrics_per_class(NULL, H_Y, 4, 3, 0.5f, ap, NULL, NULL, NULL, sup, 3),
               MSC_E_INVALID_ARGUMENT, "msc_metrics_per_class: scores is NULL");
  for (int i = 0; i < 3; ++i) ck_assert(ap[i] == 9 && sup[i] == 9);
  /* No array at all: a validation only, cap is not looked at. */
  ck_assert_int_eq(msc_metrics_per_class(H_S, H_Y, 4, 3, 0.5f, NULL, NULL, NULL, NULL, NULL, 0),
                   MSC_OK);
}
END_TEST

/* ---- (e) threads ------------------------------------------------------------------------------ */

START_TEST(test_threads_bit_identical) {
  int64_t n = 4000, c = 19;
  float *s = malloc((size_t)(n * c) * sizeof(float));
  uint8_t *y = malloc((size_t)(n * c));
  rng_seed(7);
  for (int64_t i = 0; i < n * c; ++i) {
    y[i] = rng_u() < 0.1;
    s[i] = (float)(floor((rng_u() * 0.8 + 0.2 * y[i]) * 256) / 256);
  }
  double a[MSC_METRIC_COUNT], b[MSC_METRIC_COUNT], apa[19], apb[19];
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
#endif
  ck_assert_int_eq(msc_metrics_compute(s, y, n, c, 0.5f, a, MSC_METRIC_COUNT), MSC_OK);
  ck_assert_int_eq(msc_metrics_per_class(s, y, n, c, 0.5f, apa, NULL, NULL, NULL, NULL, 19),
                   MSC_OK);
#ifdef _OPENMP
  omp_set_num_threads(3);
#endif
  ck_assert_int_eq(msc_metrics_compute(s, y, n, c, 0.5f, b, MSC_METRIC_COUNT), MSC_OK);
  ck_assert_int_eq(msc_metrics_per_class(s, y, n, c, 0.5f, apb, NULL, NULL, NULL, NULL, 19),
                   MSC_OK);
#ifdef _OPENMP
  omp_set_num_threads(saved);
#endif
  ck_assert(memcmp(a, b, sizeof a) == 0);
  ck_assert(memcmp(apa, apb, sizeof apa) == 0);
  free(s);
  free(y);
}
END_TEST

int main(void) {
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("metrics");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_ties_form_one_threshold);
  tcase_add_test(tc, test_sklearn_docstring_example);
  tcase_add_test(tc, test_hand_case_with_empty_class);
  tcase_add_test(tc, test_no_positives_at_all);
  tcase_add_test(tc, test_random_against_reference);
  tcase_add_test(tc, test_out_len_protocol);
  tcase_add_test(tc, test_errors);
  tcase_add_test(tc, test_threads_bit_identical);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
