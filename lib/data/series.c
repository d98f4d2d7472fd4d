/*
 * series.c — the time axis of satellite image time series (series.h; docs/pimc.md,
 * "Time axis"): dates, the grid, resampling and padding.
 */
#include "data/series.h"

#include <math.h>
#include <string.h>

#include "common/internal.h"

/* ------------------------------------------------------------------------------ */
/* Dates                                                                           */
/* ------------------------------------------------------------------------------ */

static int is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a valid y-m-d: the year is counted from March, so that the
 * leap day is the last of its year, in 400-year eras of 146097 days (H. Hinnant's
 * days_from_civil, exact for any Gregorian date). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;                                   /* 0..399 */
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365, from 1 March */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
  return era * 146097 + doe - 719468; /* 719468: days from 0000-03-01 to 1970-01-01 */
}

msc_status msci_date_days(int64_t yyyymmdd, int64_t *days) {
  if (days == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "date: days is NULL");
  if (yyyymmdd < 19000000 || yyyymmdd > 22009999)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "date %lld: not a YYYYMMDD date with a year in 1900..2200",
                     (long long)yyyymmdd);
  int64_t y = yyyymmdd / 10000, m = yyyymmdd / 100 % 100, d = yyyymmdd % 100;
  if (m < 1 || m > 12)
    return msci_fail(MSC_E_BAD_FORMAT, "date %lld: month %lld is not in 1..12",
                     (long long)yyyymmdd, (long long)m);
  static const int k_mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int64_t mdays = k_mdays[m - 1] + (m == 2 && is_leap(y));
  if (d < 1 || d > mdays)
    return msci_fail(MSC_E_BAD_FORMAT, "date %lld: day %lld is not in 1..%lld (%04lld-%02lld)",
                     (long long)yyyymmdd, (long long)d, (long long)mdays, (long long)y,
                     (long long)m);
  *days = days_from_civil(y, m, d);
  return MSC_OK;
}

int32_t msci_days_doy(int64_t days) {
  const int64_t lim = (int64_t)1 << 40;
  if (days < -lim || days > lim) return 0;
  /* The year of the day (Hinnant's civil_from_days), then the offset from 1 January. */
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;                                      /* 0..146096 */
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
  int64_t y = yoe + era * 400;
  int64_t doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100); /* 0..365, from 1 March */
  int64_t mp = (5 * doy_mar + 2) / 153;                      /* 0 = March .. 11 = February */
  if (mp >= 10) y++;                                         /* January, February */
  return (int32_t)(days - days_from_civil(y, 1, 1) + 1);
}

/* ------------------------------------------------------------------------------ */
/* Grid, resampling, padding                                                       */
/* ------------------------------------------------------------------------------ */

void msci_series_grid(double first, double last, int64_t L, double *grid) {
  if (grid == NULL || L < 1) return;
  grid[0] = first;
  if (L == 1) return;
  double span = last - first, n = (double)(L - 1);
  for (int64_t l = 1; l < L - 1; l++) {
    double v = first + span * (double)l / n;
    /* rounding may not step past last (first + span can exceed last by an ulp) */
    grid[l] = first <= last ? (v > last ? last : v) : (v < last ? last : v);
  }
  grid[L - 1] = last;
}

/* Index of the first date from t on where element p is finite, or T. */
static int64_t next_finite(const float *x, int64_t T, int64_t P, int64_t p, int64_t t) {
  while (t < T && !isfinite(x[t * P + p])) t++;
  return t;
}

msc_status msci_series_resample(const float *x, int64_t T, int64_t P, const double *days,
                                const double *grid, int64_t L, float *out) {
  if (x == NULL || days == NULL || grid == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "series_resample: %s is NULL",
                     x == NULL      ? "x"
                     : days == NULL ? "days"
                     : grid == NULL ? "grid"
                                    : "out");
  if (T < 1 || P < 1 || L < 1)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "series_resample: %s is %lld, must be >= 1",
                     T < 1   ? "T"
                     : P < 1 ? "P"
                             : "L",
                     (long long)(T < 1   ? T
                                 : P < 1 ? P
                                         : L));
  int64_t prod;
  if (__builtin_mul_overflow(T, P, &prod) || __builtin_mul_overflow(L, P, &prod))
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "series_resample: T %lld, L %lld, P %lld: the sizes overflow",
                     (long long)T, (long long)L, (long long)P);
  for (int64_t t = 0; t < T; t++) {
    if (!isfinite(days[t]))
      return msci_fail(MSC_E_INVALID_ARGUMENT, "series_resample: days[%lld] is not finite",
                       (long long)t);
    if (t > 0 && !(days[t] > days[t - 1]))
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "series_resample: days are not strictly increasing (days[%lld] = %g, "
                       "days[%lld] = %g)",
                       (long long)(t - 1), days[t - 1], (long long)t, days[t]);
  }
  for (int64_t l = 0; l < L; l++) {
    if (!isfinite(grid[l]))
      return msci_fail(MSC_E_INVALID_ARGUMENT, "series_resample: grid[%lld] is not finite",
                       (long long)l);
    if (l > 0 && grid[l] < grid[l - 1])
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "series_resample: grid decreases (grid[%lld] = %g, grid[%lld] = %g)",
                       (long long)(l - 1), grid[l - 1], (long long)l, grid[l]);
  }

  /* Per element, a merge of the grid with its usable dates: a is the last usable date at
   * or before the grid time (the first usable date while the grid is before it), b the
   * next usable date. Both only move forward, so each element costs O(T + L). */
  for (int64_t p = 0; p < P; p++) {
    int64_t a = next_finite(x, T, P, p, 0);
    if (a == T) {
      for (int64_t l = 0; l < L; l++) out[l * P + p] = NAN;
      continue;
    }
    int64_t b = next_finite(x, T, P, p, a + 1);
    for (int64_t l = 0; l < L; l++) {
      double g = grid[l];
      while (b < T && days[b] <= g) {
        a = b;
        b = next_finite(x, T, P, p, b + 1);
      }
      float xa = x[a * P + p];
      if (g <= days[a] || b == T) {
        out[l * P + p] = xa; /* on the date, before the first, or after the last: held */
      } else {
        double w = (g - days[a]) / (days[b] - days[a]);
        double xb = x[b * P + p];
        out[l * P + p] = (float)((double)xa + w * (xb - (double)xa));
      }
    }
  }
  return MSC_OK;
}

void msci_series_pad(const float *x, int64_t T, int64_t P, int64_t L, float *out,
                     uint8_t *mask) {
  if (out == NULL || P < 1 || T < 0 || L < 0 || (x == NULL && T > 0 && L > 0)) return;
  int64_t n = T < L ? T : L;
  if (n > 0) memcpy(out, x, (size_t)n * (size_t)P * sizeof *out);
  for (int64_t i = n * P; i < L * P; i++) out[i] = NAN;
  if (mask != NULL)
    for (int64_t l = 0; l < L; l++) mask[l] = l < n;
}
