/*
 * series.h — the time axis of satellite image time series (SITS): calendar dates as day
 * numbers, a regular grid of times, resampling a series with irregular (and per date
 * cloudy) acquisitions onto that grid, and padding or cutting a series to a fixed length
 * with a mask. Layer: data (lib/data/README.md says what it owns and may include).
 * docs/pimc.md, "Time axis", describes the policies.
 *
 * Arrays. A series is T × P float32, row-major: date t's P values (for a PASTIS DATA_S2
 * array, P = C × H × W) start at x + t × P. Times are days (double), e.g. from
 * msci_date_days.
 *
 * Every function is thread-safe (no state) and allocates nothing.
 */
#ifndef MOSAIC_LIB_SERIES_H
#define MOSAIC_LIB_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "mosaic/mosaic.h"

/* Days since 1970-01-01 (proleptic Gregorian) of a date written YYYYMMDD (e.g. 20180924,
 * as in PASTIS's "dates-S2"). Returns MSC_OK; MSC_E_BAD_FORMAT with a message naming the
 * value for an invalid date (year outside 1900..2200, month 0 or 13, day 0, a day past
 * the month's end such as February 30, February 29 of a non-leap year);
 * MSC_E_INVALID_ARGUMENT for days NULL. *days is untouched on error. */
msc_status msci_date_days(int64_t yyyymmdd, int64_t *days);

/* Day of year, 1..366 (1 January is 1), of a day number from msci_date_days. Valid for
 * any day within ±2^40 of 1970-01-01; 0 outside that range. */
int32_t msci_days_doy(int64_t days);

/* L days evenly spaced from first to last inclusive into grid[0..L): grid[0] = first,
 * grid[L-1] = last exactly, grid[l] = first + (last − first) l / (L − 1) in between
 * (monotonic, never past last); L == 1 gives first. Does nothing for L < 1 or grid
 * NULL. */
void msci_series_grid(double first, double last, int64_t L, double *grid);

/*
 * Resamples a series of T dates onto L grid times by linear interpolation in time,
 * element by element. x is T × P floats, days[0..T) strictly increasing and finite,
 * grid[0..L) finite and non-decreasing; out is L × P.
 *
 * For each element p only the dates where x is finite are used: a NaN or infinity (a
 * cloudy date, say) is skipped for that element alone. Between two consecutive usable
 * dates a < b the value at time g is x_a + (g − d_a) / (d_b − d_a) × (x_b − x_a),
 * computed in double; a grid time on a usable date takes its value exactly. A grid time
 * before the first usable date, or after the last, takes that date's value (held, not
 * extrapolated); an element with no usable date is NaN at every grid time.
 *
 * O(T + L) per element, no allocation. Returns MSC_OK; MSC_E_INVALID_ARGUMENT (the
 * message names the argument) for a NULL pointer, T < 1, L < 1, P < 1, T × P or L × P
 * past INT64_MAX, days not finite or not strictly increasing, grid not finite or
 * decreasing. out is untouched on error; x and out must not overlap.
 */
msc_status msci_series_resample(const float *x, int64_t T, int64_t P, const double *days,
                                const double *grid, int64_t L, float *out);

/* Pads or cuts a T × P series to L dates: out is L × P; the first min(T, L) dates are
 * copied, the later rows are NaN. mask[l] = 1 for a copied date, 0 for a padded one
 * (mask may be NULL). x may be NULL when T is 0. Does nothing when out is NULL, P < 1,
 * T < 0 or L < 0. */
void msci_series_pad(const float *x, int64_t T, int64_t P, int64_t L, float *out,
                     uint8_t *mask);

#endif /* MOSAIC_LIB_SERIES_H */
