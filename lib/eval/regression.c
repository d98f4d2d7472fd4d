/*
 * regression.c — MAE and RMSE of predictions against targets (docs/metrics.md,
 * "Regression metrics"); a non-finite target marks a missing value and skips the pair.
 * One serial pass in index order, sums in double: the same input gives the same bits.
 */
#include <math.h>
#include <stdint.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"

MSC_API msc_status msc_metrics_regression(const float *pred, const float *truth, int64_t n,
                                          double *mae, double *rmse) {
  static const char fn[] = "msc_metrics_regression";
  if (!pred) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: pred is NULL", fn);
  if (!truth) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: truth is NULL", fn);
  if (!mae && !rmse)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: mae and rmse are both NULL", fn);
  if (n < 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: n = %lld, must be >= 0", fn, (long long)n);
  int64_t m = 0;
  double abs_sum = 0.0, sq_sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (!isfinite(truth[i])) continue; /* a missing target */
    if (!isfinite(pred[i]))
      return msci_fail(MSC_E_NUMERICAL, "%s: pred[%lld] is %s where truth[%lld] = %g", fn,
                       (long long)i, isnan(pred[i]) ? "NaN" : "infinite", (long long)i,
                       (double)truth[i]);
    double e = (double)pred[i] - (double)truth[i];
    abs_sum += fabs(e);
    sq_sum += e * e;
    m++;
  }
  if (mae) *mae = m > 0 ? abs_sum / (double)m : NAN;
  if (rmse) *rmse = m > 0 ? sqrt(sq_sum / (double)m) : NAN;
  return MSC_OK;
}
