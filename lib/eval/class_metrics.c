/*
 * class_metrics.c — single-label (multi-class) metrics (docs/metrics.md, "Single-label
 * metrics"): the confusion matrix of class indices with an optional ignored truth, and
 * accuracy, macro F1 and mean IoU from it with scikit-learn's label set (the classes
 * occurring in the truth or the predictions).
 *
 * Plan: validate every input before writing anything; count into a scratch matrix
 * only after the whole input was checked, so the caller's matrix is written once, on
 * success. Counts are exact int64; per-class values are ratios of counts, computed in
 * double, and averaged serially in class order (deterministic).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"

/* C·C int64 counts must be addressable (classes beyond int32 cannot be indices). */
static msc_status check_classes(const char *fn, int64_t classes) {
  if (classes < 1 || classes > INT32_MAX)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: classes = %lld, must be in [1, %d]", fn,
                     (long long)classes, INT32_MAX);
  if ((uint64_t)classes >
      (uint64_t)(PTRDIFF_MAX / (ptrdiff_t)sizeof(int64_t)) / (uint64_t)classes)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: a %lld × %lld matrix is too large", fn,
                     (long long)classes, (long long)classes);
  return MSC_OK;
}

MSC_API msc_status msc_metrics_confusion(const int32_t *pred, const int32_t *truth, int64_t n,
                                         int64_t classes, int32_t ignore_index,
                                         int64_t *confusion) {
  static const char fn[] = "msc_metrics_confusion";
  if (!pred) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: pred is NULL", fn);
  if (!truth) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: truth is NULL", fn);
  if (!confusion) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: confusion is NULL", fn);
  if (n < 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: n = %lld, must be >= 0", fn, (long long)n);
  MSCI_TRY(check_classes(fn, classes));
  for (int64_t i = 0; i < n; ++i) {
    if (ignore_index != MSC_IGNORE_NONE && truth[i] == ignore_index) continue;
    if (truth[i] < 0 || truth[i] >= classes)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "%s: truth[%lld] = %d is outside [0, %lld) and not the ignore index %d",
                       fn, (long long)i, (int)truth[i], (long long)classes, (int)ignore_index);
    if (pred[i] < 0 || pred[i] >= classes)
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: pred[%lld] = %d is outside [0, %lld)", fn,
                       (long long)i, (int)pred[i], (long long)classes);
  }
  /* Everything is valid: the caller's matrix is written in place from here on. */
  memset(confusion, 0, (size_t)(classes * classes) * sizeof *confusion);
  for (int64_t i = 0; i < n; ++i) {
    if (ignore_index != MSC_IGNORE_NONE && truth[i] == ignore_index) continue;
    confusion[(int64_t)truth[i] * classes + pred[i]]++;
  }
  return MSC_OK;
}

MSC_API msc_status msc_metrics_from_confusion(const int64_t *confusion, int64_t classes,
                                              msc_class_metrics *out, double *per_class_f1,
                                              double *per_class_iou) {
  static const char fn[] = "msc_metrics_from_confusion";
  if (!confusion) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: confusion is NULL", fn);
  if (!out) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: out is NULL", fn);
  MSCI_TRY(check_classes(fn, classes));
  if (out->struct_size < sizeof(msc_class_metrics))
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: out->struct_size is %u, this library needs at least %zu", fn,
                     (unsigned)out->struct_size, sizeof(msc_class_metrics));
  /* Every count non-negative, and the total (hence every row and column sum) fits. */
  int64_t total = 0;
  for (int64_t i = 0; i < classes * classes; ++i) {
    int64_t v = confusion[i];
    if (v < 0)
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: confusion[%lld][%lld] = %lld is negative",
                       fn, (long long)(i / classes), (long long)(i % classes), (long long)v);
    if (v > INT64_MAX - total)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "%s: the counts up to confusion[%lld][%lld] overflow int64", fn,
                       (long long)(i / classes), (long long)(i % classes));
    total += v;
  }

  int64_t diag = 0, present = 0;
  double f1_sum = 0.0, iou_sum = 0.0;
  for (int64_t k = 0; k < classes; ++k) {
    int64_t tp = confusion[k * classes + k], row = 0, col = 0;
    for (int64_t j = 0; j < classes; ++j) {
      row += confusion[k * classes + j]; /* TP + FN: the class in the truth */
      col += confusion[j * classes + k]; /* TP + FP: the class in the predictions */
    }
    diag += tp;
    int64_t uni = row + col - tp; /* TP + FP + FN */
    double f1 = NAN, iou = NAN;
    if (uni > 0) { /* present in the truth or the predictions */
      f1 = 2.0 * (double)tp / (double)(row + col);
      iou = (double)tp / (double)uni;
      f1_sum += f1;
      iou_sum += iou;
      present++;
    }
    if (per_class_f1) per_class_f1[k] = f1;
    if (per_class_iou) per_class_iou[k] = iou;
  }
  out->present = (int32_t)present;
  out->counted = total;
  out->accuracy = total > 0 ? (double)diag / (double)total : NAN;
  out->macro_f1 = present > 0 ? f1_sum / (double)present : NAN;
  out->miou = present > 0 ? iou_sum / (double)present : NAN;
  return MSC_OK;
}

/* scikit-learn's top_k_accuracy_score ranks the classes of a row by a stable ascending
 * sort reversed: among equal scores the larger class index ranks first. The true class t
 * is in the top k when fewer than k classes rank above it: those with a larger score, and
 * those with an equal score and a larger index. */
MSC_API msc_status msc_metrics_top_k(const float *scores, const int32_t *truth, int64_t n,
                                     int64_t classes, int64_t k, int32_t ignore_index,
                                     double *accuracy, int64_t *counted) {
  if (!scores || !truth || !accuracy)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_metrics_top_k: NULL argument");
  if (n < 0 || classes < 1 || k < 1)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msc_metrics_top_k: n = %lld, classes = %lld, k = %lld (n >= 0, "
                     "classes >= 1, k >= 1)",
                     (long long)n, (long long)classes, (long long)k);
  for (int64_t i = 0; i < n; ++i) {
    if (ignore_index != MSC_IGNORE_NONE && truth[i] == ignore_index) continue;
    if (truth[i] < 0 || truth[i] >= classes)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "msc_metrics_top_k: truth[%lld] = %d is outside [0, %lld) and not the "
                       "ignore index",
                       (long long)i, (int)truth[i], (long long)classes);
    for (int64_t c = 0; c < classes; ++c)
      if (isnan(scores[i * classes + c]))
        return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_metrics_top_k: scores[%lld][%lld] is NaN",
                         (long long)i, (long long)c);
  }
  int64_t hits = 0, m = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (ignore_index != MSC_IGNORE_NONE && truth[i] == ignore_index) continue;
    const float *row = scores + i * classes;
    const int32_t t = truth[i];
    int64_t above = 0;
    for (int64_t c = 0; c < classes; ++c)
      above += row[c] > row[t] || (row[c] == row[t] && c > t);
    hits += above < k;
    m++;
  }
  *accuracy = m > 0 ? (double)hits / (double)m : NAN;
  if (counted) *counted = m;
  return MSC_OK;
}
