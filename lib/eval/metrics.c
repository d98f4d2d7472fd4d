/*
 * metrics.c — multi-label evaluation metrics (docs/metrics.md) with scikit-learn's
 * definitions: average precision without interpolation over the distinct score
 * thresholds (tied scores form one threshold), F1 at a fixed threshold with 0/0 = 0,
 * Hamming loss and Brier score.
 *
 * Plan: every input is validated before anything is written (NULL pointers, sizes,
 * labels other than 0/1, non-finite scores or threshold). AP sorts (score, label) pairs
 * of one class by decreasing score (qsort; the order inside a group of tied scores does
 * not matter, since the whole group is one threshold) and walks the groups. Classes are
 * independent and run on OpenMP threads, each into its own slot; every reduction over
 * classes is serial in class order, so results are identical for any thread count.
 * Micro AP sorts the N·C flattened pairs once. Counts are exact (int64) and sums are
 * accumulated in double.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"

/* Below this many scores a parallel region costs more than it saves. */
#define PAR_MIN_WORK 65536

typedef struct {
  float s;   /* score */
  uint8_t y; /* label, 0 or 1 */
} scored;

/* Decreasing score; ties compare equal (-0.0 == +0.0). */
static int by_score_desc(const void *pa, const void *pb) {
  float a = ((const scored *)pa)->s, b = ((const scored *)pb)->s;
  return (a < b) - (a > b);
}

/* AP of m pairs sorted by decreasing score, of which pos > 0 are positive:
 * Σ over distinct thresholds of (R_k − R_{k−1}) · P_k. */
static double ap_sorted(const scored *p, int64_t m, int64_t pos) {
  int64_t tp = 0, fp = 0, i = 0;
  double ap = 0.0, prev_recall = 0.0;
  while (i < m && tp < pos) {
    float s = p[i].s;
    int64_t tp0 = tp;
    for (; i < m && p[i].s == s; ++i) {
      if (p[i].y)
        tp++;
      else
        fp++;
    }
    if (tp != tp0) {
      double recall = (double)tp / (double)pos;
      double precision = (double)tp / (double)(tp + fp);
      ap += (recall - prev_recall) * precision;
      prev_recall = recall;
    }
  }
  return ap;
}

/* Checks every argument shared by both entry points. */
static msc_status check_inputs(const char *fn, const float *scores, const uint8_t *labels,
                               int64_t n, int64_t c, float threshold) {
  if (!scores) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: scores is NULL", fn);
  if (!labels) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: labels is NULL", fn);
  if (n <= 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: n = %lld, must be positive", fn,
                     (long long)n);
  if (c <= 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: c = %lld, must be positive", fn,
                     (long long)c);
  if (n > (int64_t)(PTRDIFF_MAX / (ptrdiff_t)sizeof(scored)) / c)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: n × c = %lld × %lld is too large", fn,
                     (long long)n, (long long)c);
  if (isnan(threshold)) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: threshold is NaN", fn);
  int64_t total = n * c;
  for (int64_t i = 0; i < total; ++i) {
    if (labels[i] > 1)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "%s: labels[%lld] (sample %lld, class %lld) is %u, must be 0 or 1", fn,
                       (long long)i, (long long)(i / c), (long long)(i % c),
                       (unsigned)labels[i]);
    if (!isfinite(scores[i]))
      return msci_fail(MSC_E_NUMERICAL, "%s: scores[%lld] (sample %lld, class %lld) is %s", fn,
                       (long long)i, (long long)(i / c), (long long)(i % c),
                       isnan(scores[i]) ? "NaN" : "infinite");
  }
  return MSC_OK;
}

/* Per-class counts at the threshold, support, squared error and AP.
 * buf: n pairs of scratch per class (c·n in all), or NULL when AP is not wanted. */
typedef struct {
  int64_t tp, fp, fn, support;
  double sq; /* Σ (p − y)² */
  double ap; /* NaN without positives */
} class_stats;

static void class_compute(const float *scores, const uint8_t *labels, int64_t n, int64_t c,
                          float threshold, int64_t k, scored *buf, class_stats *out) {
  class_stats st = {0, 0, 0, 0, 0.0, NAN};
  for (int64_t i = 0; i < n; ++i) {
    float p = scores[i * c + k];
    uint8_t y = labels[i * c + k];
    int pred = p >= threshold;
    st.tp += pred && y;
    st.fp += pred && !y;
    st.fn += !pred && y;
    st.support += y;
    double e = (double)p - (double)y;
    st.sq += e * e;
    if (buf) {
      buf[i].s = p;
      buf[i].y = y;
    }
  }
  if (buf && st.support > 0) {
    qsort(buf, (size_t)n, sizeof *buf, by_score_desc);
    st.ap = ap_sorted(buf, n, st.support);
  }
  *out = st;
}

static double f1_of(int64_t tp, int64_t fp, int64_t fn) {
  int64_t den = 2 * tp + fp + fn;
  return den > 0 ? 2.0 * (double)tp / (double)den : 0.0;
}

/* Computes the per-class statistics of all classes (AP only when want_ap). */
static msc_status all_classes(const char *fn, const float *scores, const uint8_t *labels,
                              int64_t n, int64_t c, float threshold, int want_ap,
                              class_stats **out_stats, scored **out_buf) {
  class_stats *cs = malloc((size_t)c * sizeof *cs);
  scored *buf = want_ap ? malloc((size_t)(n * c) * sizeof *buf) : NULL;
  if (!cs || (want_ap && !buf)) {
    free(cs);
    free(buf);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: no memory for %lld × %lld scores", fn,
                     (long long)n, (long long)c);
  }
#pragma omp parallel for schedule(dynamic, 1) if (n * c >= PAR_MIN_WORK && c > 1)
  for (int64_t k = 0; k < c; ++k)
    class_compute(scores, labels, n, c, threshold, k, buf ? buf + k * n : NULL, &cs[k]);
  *out_stats = cs;
  *out_buf = buf;
  return MSC_OK;
}

MSC_API msc_status msc_metrics_compute(const float *scores, const uint8_t *labels, int64_t n,
                                       int64_t c, float threshold, double *out,
                                       int32_t out_len) {
  static const char fn[] = "msc_metrics_compute";
  MSCI_TRY(check_inputs(fn, scores, labels, n, c, threshold));
  if (out_len < 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: out_len = %d, must be >= 0", fn,
                     (int)out_len);
  if (!out && out_len > 0) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: out is NULL", fn);

  int want_ap = out_len > 0; /* every AP entry needs the sorted scores */
  class_stats *cs = NULL;
  scored *buf = NULL;
  MSCI_TRY(all_classes(fn, scores, labels, n, c, threshold, want_ap, &cs, &buf));

  double v[MSC_METRIC_COUNT];
  int64_t tp = 0, fp = 0, fnn = 0, pos = 0, with_pos = 0;
  double sq = 0.0, ap_sum = 0.0, f1_sum = 0.0;
  for (int64_t k = 0; k < c; ++k) { /* serial, in class order */
    tp += cs[k].tp;
    fp += cs[k].fp;
    fnn += cs[k].fn;
    pos += cs[k].support;
    sq += cs[k].sq;
    f1_sum += f1_of(cs[k].tp, cs[k].fp, cs[k].fn);
    if (cs[k].support > 0) {
      with_pos++;
      if (want_ap) ap_sum += cs[k].ap;
    }
  }
  double total = (double)n * (double)c;
  v[MSC_METRIC_MACRO_AP] = want_ap && with_pos > 0 ? ap_sum / (double)with_pos : NAN;
  v[MSC_METRIC_MICRO_AP] = NAN;
  v[MSC_METRIC_MACRO_F1] = f1_sum / (double)c;
  v[MSC_METRIC_MICRO_F1] = f1_of(tp, fp, fnn);
  v[MSC_METRIC_HAMMING] = (double)(fp + fnn) / total;
  v[MSC_METRIC_BRIER] = sq / total;
  v[MSC_METRIC_MACRO_AP_ZERO] = want_ap ? ap_sum / (double)c : NAN;
  v[MSC_METRIC_SKIPPED_CLASSES] = (double)(c - with_pos);

  if (out_len > MSC_METRIC_MICRO_AP && pos > 0) {
    /* The flattened N·C problem, in the same scratch. */
    int64_t m = n * c;
    for (int64_t i = 0; i < m; ++i) {
      buf[i].s = scores[i];
      buf[i].y = labels[i];
    }
    qsort(buf, (size_t)m, sizeof *buf, by_score_desc);
    v[MSC_METRIC_MICRO_AP] = ap_sorted(buf, m, pos);
  }
  free(buf);
  free(cs);

  for (int32_t i = 0; i < out_len; ++i) out[i] = i < MSC_METRIC_COUNT ? v[i] : NAN;
  return MSC_OK;
}

MSC_API msc_status msc_metrics_per_class(const float *scores, const uint8_t *labels, int64_t n,
                                         int64_t c, float threshold, double *ap, double *f1,
                                         double *hamming, double *brier, int64_t *support,
                                         size_t cap) {
  static const char fn[] = "msc_metrics_per_class";
  MSCI_TRY(check_inputs(fn, scores, labels, n, c, threshold));
  if ((ap || f1 || hamming || brier || support) && cap < (uint64_t)c)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL,
                     "%s: cap = %zu, the output arrays need c = %lld elements", fn, cap,
                     (long long)c);
  class_stats *cs = NULL;
  scored *buf = NULL;
  MSCI_TRY(all_classes(fn, scores, labels, n, c, threshold, ap != NULL, &cs, &buf));
  for (int64_t k = 0; k < c; ++k) {
    if (ap) ap[k] = cs[k].ap;
    if (f1) f1[k] = f1_of(cs[k].tp, cs[k].fp, cs[k].fn);
    if (hamming) hamming[k] = (double)(cs[k].fp + cs[k].fn) / (double)n;
    if (brier) brier[k] = cs[k].sq / (double)n;
    if (support) support[k] = cs[k].support;
  }
  free(buf);
  free(cs);
  return MSC_OK;
}
