/*
 * test_series.c — the time axis of satellite image time series (lib/data/series.c) and
 * windowed reads of .npy files (msci_npy_file_*, lib/data/npy.c).
 *
 *  - dates: hand-computed day numbers, a table made with Python's datetime (below), and
 *    every day from 1900 to 2200 against a naive calendar counted day by day here;
 *    invalid dates refused naming the value;
 *  - the grid; resampling on hand-computed cases (interpolation, holds at both ends,
 *    non-finite values skipped per element, an all-NaN element, T = 1, L = 1, grid times
 *    on a date) and on random series against a plain O(T × L) reference; padding and
 *    cutting; argument errors with the output untouched;
 *  - windowed reads: every NumPy-written fixture in tests/data/npy (every dtype, both
 *    byte orders, C and Fortran order), full, single-element and random boxes, against
 *    the whole-array reader (msci_npy_open + msci_npy_read_f32); files large enough to
 *    split reads into chunks; a file truncated after open (MSC_E_IO, no crash), a FIFO
 *    (refused at once), size mismatches, bad boxes, concurrent readers of one handle;
 *    the number of preads of PASTIS-like boxes (pread is interposed below: the library is
 *    linked statically into this program, so its calls land here).
 *
 * Runs in Check's fork mode and with CK_FORK=no (valgrind).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "data/npy.h"
#include "data/series.h"
#include "mosaic/mosaic.h"

#define FIXTURES MSC_SHARED_DATA "/npy"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* xorshift64 */
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}
static int64_t rnd_below(int64_t n) {
  return n > 0 ? (int64_t)(rnd() % (uint64_t)n) : 0;
}

/* Every pread of the program, counted, then passed to the kernel. */
static long g_preads;
ssize_t pread(int fd, void *buf, size_t n, off_t off) {
  __atomic_fetch_add(&g_preads, 1, __ATOMIC_RELAXED);
  return (ssize_t)syscall(SYS_pread64, fd, buf, n, off);
}

/* ------------------------------------------------------------------------------ */
/* Dates                                                                           */
/* ------------------------------------------------------------------------------ */

START_TEST(date_hand_values) {
  int64_t d = 12345;
  ck_assert_int_eq(msci_date_days(19700101, &d), MSC_OK);
  ck_assert_int_eq(d, 0);
  /* 1970 -> 2000: 30 years, 7 leap years (1972 .. 1996): 10957; + 31 (Jan) + 29 (Feb) */
  ck_assert_int_eq(msci_date_days(20000301, &d), MSC_OK);
  ck_assert_int_eq(d, 10957 + 60);
  /* 1970 -> 2018: 48 years, 12 leap years: 17532; 2018-09-24 is day 267 of 2018 */
  ck_assert_int_eq(msci_date_days(20180924, &d), MSC_OK);
  ck_assert_int_eq(d, 17532 + 266);
  ck_assert_int_eq(msci_days_doy(d), 31 + 28 + 31 + 30 + 31 + 30 + 31 + 31 + 24);
  ck_assert_int_eq(msci_date_days(19691231, &d), MSC_OK);
  ck_assert_int_eq(d, -1);
  ck_assert_int_eq(msci_days_doy(-1), 365);
  /* leap years: 1900 no (divisible by 100), 2000 yes (by 400), 2024 yes */
  int64_t a, b;
  ck_assert_int_eq(msci_date_days(19000228, &a), MSC_OK);
  ck_assert_int_eq(msci_date_days(19000301, &b), MSC_OK);
  ck_assert_int_eq(b - a, 1);
  ck_assert_int_eq(msci_date_days(20000228, &a), MSC_OK);
  ck_assert_int_eq(msci_date_days(20000301, &b), MSC_OK);
  ck_assert_int_eq(b - a, 2);
  ck_assert_int_eq(msci_date_days(20240229, &a), MSC_OK);
  ck_assert_int_eq(msci_days_doy(a), 60);
  ck_assert_int_eq(msci_date_days(20241231, &a), MSC_OK);
  ck_assert_int_eq(msci_days_doy(a), 366);
  ck_assert_int_eq(msci_date_days(20250101, &b), MSC_OK);
  ck_assert_int_eq(msci_days_doy(b), 1);
  ck_assert_int_eq(b - a, 1);
}
END_TEST

/* Made with Python: (date - datetime.date(1970, 1, 1)).days and date.timetuple().tm_yday
 * for hand-picked and random dates of 1900..2200. */
static const struct {
  int64_t ymd, days;
  int32_t doy;
} k_py_dates[] = {
    {19000101, -25567, 1},   {19000228, -25509, 59},  {19000301, -25508, 60},
    {19691231, -1, 365},     {19700101, 0, 1},        {20000229, 11016, 60},
    {20000301, 11017, 61},   {20180924, 17798, 267},  {20190108, 17904, 8},
    {20240229, 19782, 60},   {21000301, 47541, 60},   {22001231, 84370, 365},
    {20160318, 16878, 78},   {19540219, -5795, 50},   {20410908, 26183, 251},
    {21330806, 59752, 218},  {19170430, -19239, 120}, {19251230, -16073, 364},
    {21940922, 82079, 265},  {20920422, 44672, 113},  {19331012, -13230, 285},
    {20310326, 22364, 85},   {21090221, 50820, 52},   {19201025, -17965, 299},
    {20820205, 40943, 36},   {19770117, 2573, 17},    {19130616, -20653, 167},
    {19301105, -14302, 309}, {20550814, 31271, 226},  {20500124, 29243, 24},
    {19250126, -16411, 26},  {19860514, 5977, 134},
};

START_TEST(date_python_table) {
  for (size_t i = 0; i < sizeof k_py_dates / sizeof k_py_dates[0]; i++) {
    int64_t d = 0;
    ck_assert_int_eq(msci_date_days(k_py_dates[i].ymd, &d), MSC_OK);
    ck_assert_msg(d == k_py_dates[i].days, "%lld: %lld, not %lld", (long long)k_py_dates[i].ymd,
                  (long long)d, (long long)k_py_dates[i].days);
    ck_assert_int_eq(msci_days_doy(d), k_py_dates[i].doy);
  }
}
END_TEST

/* Every day of 1900-01-01 .. 2200-12-31, counted one by one on a naive calendar. */
START_TEST(date_every_day) {
  static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int64_t n = -25567; /* 1900-01-01 (table above) */
  for (int64_t y = 1900; y <= 2200; y++) {
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int32_t doy = 1;
    for (int m = 1; m <= 12; m++) {
      int nd = mdays[m - 1] + (m == 2 && leap);
      for (int d = 1; d <= nd; d++, n++, doy++) {
        int64_t got = INT64_MIN;
        int64_t ymd = y * 10000 + m * 100 + d;
        ck_assert_int_eq(msci_date_days(ymd, &got), MSC_OK);
        if (got != n)
          ck_abort_msg("%lld: %lld, not %lld", (long long)ymd, (long long)got, (long long)n);
        if (msci_days_doy(n) != doy)
          ck_abort_msg("%lld: doy %d, not %d", (long long)ymd, msci_days_doy(n), doy);
      }
      /* the day after the month's last is refused (a month has no day 32 either) */
      int64_t got = 777;
      ck_assert_int_eq(msci_date_days(y * 10000 + m * 100 + nd + 1, &got), MSC_E_BAD_FORMAT);
      ck_assert_int_eq(got, 777);
    }
  }
  ck_assert_int_eq(n, 84371); /* 2201-01-01 */
}
END_TEST

START_TEST(date_invalid_refused) {
  static const int64_t bad[] = {20180230, 19000229,  20230229, 21000229, 20180001, 20181301,
                                20180100, 20180931,  18991231, 22010101, 0,        -20180924,
                                2018092,  201809240, 19000000, 22009999};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t d = 4242;
    ck_assert_int_eq(msci_date_days(bad[i], &d), MSC_E_BAD_FORMAT);
    ck_assert_int_eq(d, 4242);
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)bad[i]);
    ck_assert_msg(strstr(msc_last_error(), want) != NULL, "message '%s' does not name %s",
                  msc_last_error(), want);
  }
  ck_assert_int_eq(msci_date_days(20180924, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_days_doy((int64_t)1 << 50), 0);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Grid, resampling, padding                                                       */
/* ------------------------------------------------------------------------------ */

START_TEST(grid_values) {
  double g[6] = {-1, -1, -1, -1, -1, -1};
  msci_series_grid(0, 100, 5, g);
  ck_assert_double_eq(g[0], 0);
  ck_assert_double_eq(g[1], 25);
  ck_assert_double_eq(g[2], 50);
  ck_assert_double_eq(g[3], 75);
  ck_assert_double_eq(g[4], 100);
  ck_assert_double_eq(g[5], -1);
  msci_series_grid(7, 9, 1, g);
  ck_assert_double_eq(g[0], 7);
  ck_assert_double_eq(g[1], 25);
  msci_series_grid(10, 4, 4, g); /* descending */
  ck_assert_double_eq(g[0], 10);
  ck_assert_double_eq(g[1], 8);
  ck_assert_double_eq(g[2], 6);
  ck_assert_double_eq(g[3], 4);
  /* odd spacings: monotonic, exact ends, within a rounding of first + l × step */
  double big[1001];
  msci_series_grid(17798.3, 18162.9, 1001, big);
  ck_assert_double_eq(big[0], 17798.3);
  ck_assert_double_eq(big[1000], 18162.9);
  for (int l = 1; l <= 1000; l++) {
    ck_assert(big[l] >= big[l - 1]);
    ck_assert(fabs(big[l] - (17798.3 + (18162.9 - 17798.3) * l / 1000.0)) < 1e-9);
  }
  msci_series_grid(0, 1, 0, g); /* nothing */
  ck_assert_double_eq(g[0], 10);
  msci_series_grid(0, 1, 3, NULL);
}
END_TEST

START_TEST(resample_two_dates) {
  const float x[2] = {1, 3};
  const double days[2] = {10, 20};
  const double grid[7] = {5, 10, 12.5, 15, 15, 20, 25};
  float out[7];
  ck_assert_int_eq(msci_series_resample(x, 2, 1, days, grid, 7, out), MSC_OK);
  const float want[7] = {1, 1, 1.5f, 2, 2, 3, 3}; /* held, on date, 1/4, 1/2, 1/2, on, held */
  for (int l = 0; l < 7; l++) ck_assert_float_eq(out[l], want[l]);
}
END_TEST

START_TEST(resample_nan_per_element) {
  /* 4 dates × 3 elements; element 0 usable on dates 0-2, element 1 on dates 1 and 3,
   * element 2 on none (NaN, NaN, NaN, +inf). */
  const float x[12] = {0,   NAN, NAN, /* day 0 */
                       10,  5,   NAN, /* day 10 */
                       20,  NAN, NAN, /* day 20 */
                       NAN, 7,   INFINITY};
  const double days[4] = {0, 10, 20, 30};
  const double grid[5] = {0, 5, 15, 25, 30};
  float out[15];
  ck_assert_int_eq(msci_series_resample(x, 4, 3, days, grid, 5, out), MSC_OK);
  const float e0[5] = {0, 5, 15, 20, 20};    /* held after day 20 */
  const float e1[5] = {5, 5, 5.5f, 6.5f, 7}; /* held before day 10; 5 + 2 (g - 10) / 20 */
  for (int l = 0; l < 5; l++) {
    ck_assert_float_eq(out[l * 3 + 0], e0[l]);
    ck_assert_float_eq(out[l * 3 + 1], e1[l]);
    ck_assert(isnan(out[l * 3 + 2]));
  }
}
END_TEST

START_TEST(resample_t1_l1_and_on_dates) {
  const float one[2] = {4.25f, NAN};
  const double d1[1] = {100};
  const double grid[3] = {-50, 100, 1e6};
  float out[6];
  ck_assert_int_eq(msci_series_resample(one, 1, 2, d1, grid, 3, out), MSC_OK);
  for (int l = 0; l < 3; l++) {
    ck_assert_float_eq(out[l * 2], 4.25f);
    ck_assert(isnan(out[l * 2 + 1]));
  }
  /* grid times exactly on dates take the date's value bit for bit */
  const float x[3] = {0.1f, 0.7f, -0.3f};
  const double days[3] = {0.5, 3.25, 9.125};
  float o3[3];
  ck_assert_int_eq(msci_series_resample(x, 3, 1, days, days, 3, o3), MSC_OK);
  for (int t = 0; t < 3; t++) ck_assert(memcmp(&o3[t], &x[t], sizeof(float)) == 0);
  /* L = 1 */
  const double g1[1] = {6.1875}; /* halfway between 3.25 and 9.125 */
  ck_assert_int_eq(msci_series_resample(x, 3, 1, days, g1, 1, o3), MSC_OK);
  ck_assert(fabsf(o3[0] - 0.2f) < 1e-6f);
}
END_TEST

/* Plain reference: for each grid time, scan for the usable dates around it. */
static float ref_resample(const float *x, int64_t T, int64_t P, int64_t p, const double *days,
                          double g) {
  int64_t before = -1, after = -1;
  for (int64_t t = 0; t < T; t++) {
    if (!isfinite(x[t * P + p])) continue;
    if (days[t] <= g) before = t;
    if (days[t] >= g && after < 0) after = t;
  }
  if (before < 0 && after < 0) return NAN;
  if (before < 0) return x[after * P + p];
  if (after < 0 || days[before] == g) return x[before * P + p];
  double w = (g - days[before]) / (days[after] - days[before]);
  return (float)(x[before * P + p] + w * ((double)x[after * P + p] - x[before * P + p]));
}

START_TEST(resample_random_against_reference) {
  for (int rep = 0; rep < 50; rep++) {
    int64_t T = 1 + rnd_below(40), P = 1 + rnd_below(7), L = 1 + rnd_below(50);
    double days[40], grid[50];
    float x[40 * 7], out[50 * 7];
    double d = (double)rnd_below(1000);
    for (int64_t t = 0; t < T; t++) days[t] = d += 1 + rnd_below(20) + 0.25 * rnd_below(4);
    for (int64_t i = 0; i < T * P; i++) {
      int64_t r = rnd_below(10);
      x[i] = r < 3 ? NAN : r == 3 ? -INFINITY : (float)rnd_below(20000) / 7.0f - 1000.0f;
    }
    double g = days[0] - 30;
    for (int64_t l = 0; l < L; l++) {
      /* sometimes on a date, sometimes repeated */
      int64_t r = rnd_below(6);
      grid[l] = r == 0   ? g
                : r == 1 ? (g = fmax(g, days[rnd_below(T)]))
                         : (g += rnd_below(15) + 0.5);
    }
    ck_assert_int_eq(msci_series_resample(x, T, P, days, grid, L, out), MSC_OK);
    for (int64_t l = 0; l < L; l++)
      for (int64_t p = 0; p < P; p++) {
        float want = ref_resample(x, T, P, p, days, grid[l]);
        float got = out[l * P + p];
        ck_assert_msg((isnan(want) && isnan(got)) || got == want,
                      "rep %d l %lld p %lld: %.9g, not %.9g", rep, (long long)l, (long long)p,
                      (double)got, (double)want);
      }
  }
}
END_TEST

START_TEST(resample_arguments) {
  const float x[4] = {1, 2, 3, 4};
  const double days[2] = {1, 2}, grid[2] = {1, 2};
  float out[4] = {9, 9, 9, 9};
  struct {
    const float *x;
    int64_t T, P;
    const double *days, *grid;
    int64_t L;
    float *out;
    const char *names;
  } cases[] = {
      {NULL, 2, 2, days, grid, 2, out, "x"},
      {x, 2, 2, NULL, grid, 2, out, "days"},
      {x, 2, 2, days, NULL, 2, out, "grid"},
      {x, 2, 2, days, grid, 2, NULL, "out"},
      {x, 0, 2, days, grid, 2, out, "T"},
      {x, 2, 0, days, grid, 2, out, "P"},
      {x, 2, 2, days, grid, 0, out, "L"},
      {x, -1, 2, days, grid, 2, out, "T"},
      {x, INT64_MAX / 2, 4, days, grid, 2, out, "overflow"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ck_assert_int_eq(msci_series_resample(cases[i].x, cases[i].T, cases[i].P, cases[i].days,
                                          cases[i].grid, cases[i].L, cases[i].out),
                     MSC_E_INVALID_ARGUMENT);
    ck_assert_msg(strstr(msc_last_error(), cases[i].names) != NULL, "%s: '%s'", cases[i].names,
                  msc_last_error());
  }
  const double same[2] = {1, 1}, down[2] = {2, 1}, nan_d[2] = {1, NAN},
               inf_d[2] = {-INFINITY, 1};
  ck_assert_int_eq(msci_series_resample(x, 2, 2, same, grid, 2, out), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "days"));
  ck_assert_int_eq(msci_series_resample(x, 2, 2, down, grid, 2, out), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_series_resample(x, 2, 2, nan_d, grid, 2, out), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "days[1]"));
  ck_assert_int_eq(msci_series_resample(x, 2, 2, inf_d, grid, 2, out), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_series_resample(x, 2, 2, days, down, 2, out), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "grid"));
  ck_assert_int_eq(msci_series_resample(x, 2, 2, days, nan_d, 2, out), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "grid[1]"));
  /* equal grid times are fine; out untouched by every refusal above */
  for (int i = 0; i < 4; i++) ck_assert_float_eq(out[i], 9);
  ck_assert_int_eq(msci_series_resample(x, 2, 2, days, same, 2, out), MSC_OK);
  ck_assert_float_eq(out[0], 1);
  ck_assert_float_eq(out[3], 2);
}
END_TEST

START_TEST(pad_and_cut) {
  const float x[6] = {1, 2, 3, 4, 5, 6}; /* T 3 × P 2 */
  float out[10];
  uint8_t mask[5];
  memset(mask, 7, sizeof mask);
  msci_series_pad(x, 3, 2, 5, out, mask);
  for (int i = 0; i < 6; i++) ck_assert_float_eq(out[i], x[i]);
  for (int i = 6; i < 10; i++) ck_assert(isnan(out[i]));
  const uint8_t m5[5] = {1, 1, 1, 0, 0};
  ck_assert(memcmp(mask, m5, 5) == 0);
  /* cut to 2 dates; no mask */
  for (int i = 0; i < 10; i++) out[i] = -1;
  msci_series_pad(x, 3, 2, 2, out, NULL);
  for (int i = 0; i < 4; i++) ck_assert_float_eq(out[i], x[i]);
  ck_assert_float_eq(out[4], -1);
  memset(mask, 7, sizeof mask);
  msci_series_pad(x, 3, 2, 2, out, mask);
  ck_assert(mask[0] == 1 && mask[1] == 1 && mask[2] == 7);
  /* T = 0: all padding, x may be NULL */
  msci_series_pad(NULL, 0, 2, 3, out, mask);
  for (int i = 0; i < 6; i++) ck_assert(isnan(out[i]));
  ck_assert(mask[0] == 0 && mask[1] == 0 && mask[2] == 0 && mask[3] == 7);
  /* same length: a copy */
  msci_series_pad(x, 3, 2, 3, out, mask);
  for (int i = 0; i < 6; i++) ck_assert_float_eq(out[i], x[i]);
  ck_assert(mask[0] == 1 && mask[1] == 1 && mask[2] == 1);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Windowed reads of .npy files                                                    */
/* ------------------------------------------------------------------------------ */

/* The box lo/cnt of whole (C order, dims) into box, by index arithmetic. */
static void ref_box(const float *whole, int32_t nd, const int64_t *dims, const int64_t *lo,
                    const int64_t *cnt, float *box) {
  int64_t n = 1;
  for (int32_t k = 0; k < nd; k++) n *= cnt[k];
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, off = 0, stride = 1;
    for (int32_t k = nd - 1; k >= 0; k--) {
      int64_t r = rem % cnt[k];
      rem /= cnt[k];
      off += (lo[k] + r) * stride;
      stride *= dims[k];
    }
    box[i] = whole[off];
  }
}

/* Reads box lo/cnt of f three ways (own scratch of exactly the announced size, NULL
 * scratch, a scratch one byte short) and compares with the whole array. */
static void check_box(const char *name, msci_npy_file *f, const float *whole, const int64_t *lo,
                      const int64_t *cnt) {
  int32_t nd = msci_npy_file_ndim(f);
  const int64_t *dims = msci_npy_file_dims(f);
  int64_t n = 1;
  for (int32_t k = 0; k < nd; k++) n *= cnt[k];
  float *want = malloc((size_t)(n + 1) * sizeof *want);
  float *got = malloc((size_t)(n + 1) * sizeof *got);
  ck_assert(want != NULL && got != NULL);
  ref_box(whole, nd, dims, lo, cnt, want);
  size_t need = msci_npy_file_box_scratch(f, cnt);
  ck_assert(n == 0 || need > 0);
  ck_assert_uint_le(need, (size_t)1 << 20);
  void *scratch = malloc(need > 0 ? need : 1); /* exact: valgrind sees any overrun */
  ck_assert_ptr_nonnull(scratch);
  got[n] = -5.0f;
  ck_assert_int_eq(msci_npy_file_read_box(f, lo, cnt, got, scratch, need), MSC_OK);
  ck_assert_float_eq(got[n], -5.0f);
  ck_assert_msg(memcmp(got, want, (size_t)n * sizeof *got) == 0, "%s: box differs", name);
  memset(got, 0, (size_t)n * sizeof *got);
  ck_assert_int_eq(msci_npy_file_read_box(f, lo, cnt, got, NULL, 0), MSC_OK);
  ck_assert_msg(memcmp(got, want, (size_t)n * sizeof *got) == 0, "%s: box differs (NULL)",
                name);
  if (need > 0) {
    got[0] = 31.0f;
    ck_assert_int_eq(msci_npy_file_read_box(f, lo, cnt, got, scratch, need - 1),
                     MSC_E_BUFFER_TOO_SMALL);
    ck_assert_float_eq(got[0], 31.0f);
  }
  free(scratch);
  free(want);
  free(got);
}

/* Opens path both ways, checks the header agrees, then full, single-element and random
 * boxes. Returns the fortran flag and dtype through the pointers. */
static void check_file(const char *path, int nrandom, int32_t *dtype, int32_t *fortran,
                       int32_t *big) {
  msci_npy *a = NULL;
  ck_assert_msg(msci_npy_open(path, &a) == MSC_OK, "%s: %s", path, msc_last_error());
  msci_npy_file *f = NULL;
  ck_assert_msg(msci_npy_file_open(path, &f) == MSC_OK, "%s: %s", path, msc_last_error());
  int32_t nd;
  int64_t dims[MSCI_NPY_MAX_DIMS];
  ck_assert_int_eq(msci_npy_shape(a, &nd, dims), MSC_OK);
  ck_assert_int_eq(msci_npy_file_ndim(f), nd);
  for (int32_t k = 0; k < nd; k++) ck_assert_int_eq(msci_npy_file_dims(f)[k], dims[k]);
  ck_assert_int_eq(msci_npy_file_dtype(f), msci_npy_dtype(a));
  *dtype = msci_npy_dtype(a);
  *fortran = msci_npy_fortran_order(a);
  *big = msci_npy_big_endian(a);
  size_t count = msci_npy_count(a);
  float *whole = malloc((count + 1) * sizeof *whole);
  ck_assert_ptr_nonnull(whole);
  ck_assert_int_eq(msci_npy_read_f32(a, whole, count + 1), MSC_OK);

  int64_t lo[MSCI_NPY_MAX_DIMS] = {0}, cnt[MSCI_NPY_MAX_DIMS];
  for (int32_t k = 0; k < nd; k++) cnt[k] = dims[k];
  check_box(path, f, whole, lo, cnt); /* full */
  if (count > 0) {
    for (int rep = 0; rep < 4; rep++) { /* single elements, the last one included */
      for (int32_t k = 0; k < nd; k++) {
        lo[k] = rep == 0 ? dims[k] - 1 : rnd_below(dims[k]);
        cnt[k] = 1;
      }
      check_box(path, f, whole, lo, cnt);
    }
    for (int rep = 0; rep < nrandom; rep++) {
      for (int32_t k = 0; k < nd; k++) {
        lo[k] = rnd_below(dims[k]);
        cnt[k] = 1 + rnd_below(dims[k] - lo[k]);
        if (rnd_below(4) == 0) { /* whole dimensions often, for the contiguous runs */
          lo[k] = 0;
          cnt[k] = dims[k];
        }
      }
      check_box(path, f, whole, lo, cnt);
    }
  }
  free(whole);
  msci_npy_close(a);
  msci_npy_file_close(f);
}

START_TEST(read_box_every_fixture) {
  DIR *dir = opendir(FIXTURES);
  ck_assert_ptr_nonnull(dir);
  int seen_dtype[16] = {0}, seen_f = 0, seen_c = 0, seen_be = 0, files = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 4, ".npy") != 0) continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIXTURES, e->d_name);
    int32_t dtype, fortran, big;
    check_file(path, 40, &dtype, &fortran, &big);
    seen_dtype[dtype] = 1;
    seen_f += fortran;
    seen_c += !fortran;
    seen_be += big;
    files++;
  }
  closedir(dir);
  ck_assert_int_ge(files, 20);
  for (int d = MSCI_NPY_U8; d <= MSCI_NPY_F64; d++) ck_assert_msg(seen_dtype[d], "dtype %d", d);
  ck_assert(seen_f > 0 && seen_c > 0 && seen_be > 0);
}
END_TEST

/* A scratch directory for written files, removed with its files by rm_tmp. */
static char g_tmp[64];
static void make_tmp(void) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/test_series_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_tmp));
}
static void tmp_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", g_tmp, name);
}
static void rm_tmp(void) {
  DIR *dir = opendir(g_tmp);
  if (dir == NULL) return;
  struct dirent *e;
  char p[512];
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    tmp_path(p, sizeof p, e->d_name);
    unlink(p);
  }
  closedir(dir);
  rmdir(g_tmp);
}

/* Writes a version 1.0 .npy file: header dict text, then nbytes of data. */
static void write_npy(const char *path, const char *dict, const void *data, size_t nbytes) {
  char header[256];
  int hl = snprintf(header, sizeof header, "%s", dict);
  while ((10 + hl + 1) % 64 != 0) header[hl++] = ' ';
  header[hl++] = '\n';
  FILE *fp = fopen(path, "wb");
  ck_assert_ptr_nonnull(fp);
  unsigned char pre[10] = {0x93,
                           'N',
                           'U',
                           'M',
                           'P',
                           'Y',
                           1,
                           0,
                           (unsigned char)(hl & 0xFF),
                           (unsigned char)(hl >> 8)};
  ck_assert_uint_eq(fwrite(pre, 1, 10, fp), 10);
  ck_assert_uint_eq(fwrite(header, 1, (size_t)hl, fp), (size_t)hl);
  if (nbytes > 0) ck_assert_uint_eq(fwrite(data, 1, nbytes, fp), nbytes);
  ck_assert_int_eq(fclose(fp), 0);
}

/* Files whose boxes need reads split at the 1 MiB chunk: C-order rows longer than a
 * chunk, planes of more rows than a chunk spans, and a Fortran file of long runs. */
START_TEST(read_box_chunked) {
  make_tmp();
  char path[512];
  int32_t dt, fo, be;
  struct {
    const char *dict;
    size_t isz, count;
  } files[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 300001), }", 4,
       2 * 3 * 300001},
      {"{'descr': '<i2', 'fortran_order': False, 'shape': (2, 1500, 701), }", 2,
       2 * 1500 * 701},
      {"{'descr': '>i2', 'fortran_order': True, 'shape': (600001, 2, 2), }", 2, 600001 * 4},
      {"{'descr': '<u2', 'fortran_order': True, 'shape': (900, 1300, 2), }", 2, 900 * 1300 * 2},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    size_t nb = files[i].isz * files[i].count;
    unsigned char *data = malloc(nb);
    ck_assert_ptr_nonnull(data);
    for (size_t j = 0; j < nb; j++) data[j] = (unsigned char)(rnd() >> 7);
    if (files[i].isz == 4) /* keep float32 values finite and not NaN: clear exponent MSB */
      for (size_t j = 3; j < nb; j += 4) data[j] &= 0x3F;
    tmp_path(path, sizeof path, "big.npy");
    write_npy(path, files[i].dict, data, nb);
    free(data);
    check_file(path, 6, &dt, &fo, &be);
  }
  rm_tmp();
}
END_TEST

START_TEST(read_box_file_errors) {
  make_tmp();
  char path[512], fifo[512];
  /* a PASTIS-like T × C × H × W int16 file */
  int64_t T = 4, C = 3, H = 16, W = 16;
  size_t n = (size_t)(T * C * H * W);
  int16_t *v = malloc(n * sizeof *v);
  ck_assert_ptr_nonnull(v);
  for (size_t i = 0; i < n; i++) v[i] = (int16_t)((int64_t)i * 7 - 3000);
  tmp_path(path, sizeof path, "s2.npy");
  write_npy(path, "{'descr': '<i2', 'fortran_order': False, 'shape': (4, 3, 16, 16), }", v,
            n * sizeof *v);
  msci_npy_file *f = NULL;
  ck_assert_int_eq(msci_npy_file_open(path, &f), MSC_OK);
  /* a pixel's series: T × C × 1 × 1, read before the truncation */
  int64_t lo[4] = {0, 0, 5, 9}, cnt[4] = {4, 3, 1, 1};
  float px[12];
  ck_assert_int_eq(msci_npy_file_read_box(f, lo, cnt, px, NULL, 0), MSC_OK);
  for (int t = 0; t < 4; t++)
    for (int c = 0; c < 3; c++)
      ck_assert_float_eq(px[t * 3 + c], (float)(((t * 3 + c) * 256 + 5 * 16 + 9) * 7 - 3000));

  /* bad boxes: refused, out untouched */
  float sentinel[4] = {1, 2, 3, 4};
  int64_t badlo[4] = {0, 0, 15, 0}, badcnt[4] = {1, 1, 2, 1};
  ck_assert_int_eq(msci_npy_file_read_box(f, badlo, badcnt, sentinel, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "axis 2"));
  int64_t neglo[4] = {0, -1, 0, 0}, one[4] = {1, 1, 1, 1};
  ck_assert_int_eq(msci_npy_file_read_box(f, neglo, one, sentinel, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  int64_t negcnt[4] = {1, -1, 1, 1};
  ck_assert_int_eq(msci_npy_file_read_box(f, lo, negcnt, sentinel, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_file_box_scratch(f, negcnt), 0);
  ck_assert_int_eq(msci_npy_file_read_box(f, NULL, one, sentinel, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_file_read_box(f, lo, NULL, sentinel, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_file_read_box(f, lo, one, NULL, NULL, 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_file_read_box(NULL, lo, one, sentinel, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  for (int i = 0; i < 4; i++) ck_assert_float_eq(sentinel[i], (float)(i + 1));
  /* an empty box reads nothing, out may be NULL; lo may equal the dim there */
  int64_t elo[4] = {4, 0, 0, 0}, ecnt[4] = {0, 3, 16, 16};
  ck_assert_int_eq(msci_npy_file_read_box(f, elo, ecnt, NULL, NULL, 0), MSC_OK);
  ck_assert_int_eq(msci_npy_file_box_scratch(f, ecnt), 0);

  /* truncated after open: a read past the new end is MSC_E_IO naming the file; a box
   * before it still reads */
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  size_t off = (size_t)st.st_size - n * sizeof *v; /* the header's size */
  ck_assert_int_eq(truncate(path, (off_t)(off + n * sizeof *v / 2)), 0);
  int64_t lolast[4] = {3, 2, 0, 0}, cntlast[4] = {1, 1, 16, 16};
  float plane[256];
  ck_assert_int_eq(msci_npy_file_read_box(f, lolast, cntlast, plane, NULL, 0), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "s2.npy"));
  ck_assert_int_eq(msci_npy_file_read_box(f, lo, cnt, px, NULL, 0), MSC_E_IO); /* spans all T */
  int64_t lofirst[4] = {0, 0, 0, 0};
  ck_assert_int_eq(msci_npy_file_read_box(f, lofirst, cntlast, plane, NULL, 0), MSC_OK);
  ck_assert_float_eq(plane[255], (float)(255 * 7 - 3000));
  msci_npy_file_close(f);

  /* a size mismatch is refused at open, naming both sizes */
  msci_npy_file *sentinel_f = (msci_npy_file *)&sentinel_f, *g = sentinel_f;
  ck_assert_int_eq(msci_npy_file_open(path, &g), MSC_E_BAD_FORMAT);
  ck_assert_ptr_eq(g, sentinel_f);
  char want[64];
  snprintf(want, sizeof want, "%zu bytes, %zu expected", off + n * sizeof *v / 2,
           off + n * sizeof *v);
  ck_assert_msg(strstr(msc_last_error(), want) != NULL, "'%s'", msc_last_error());
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "s2.npy"));
  write_npy(path, "{'descr': '<i2', 'fortran_order': False, 'shape': (4, 3, 16, 16), }", v,
            n * sizeof *v);
  FILE *fp = fopen(path, "ab");
  ck_assert_ptr_nonnull(fp);
  fputc(0, fp);
  fclose(fp);
  ck_assert_int_eq(msci_npy_file_open(path, &g), MSC_E_BAD_FORMAT);
  snprintf(want, sizeof want, "%zu bytes, %zu expected", off + n * sizeof *v + 1,
           off + n * sizeof *v);
  ck_assert_msg(strstr(msc_last_error(), want) != NULL, "'%s'", msc_last_error());
  /* the same header rules as msci_npy_open */
  ck_assert_int_eq(msci_npy_file_open(FIXTURES "/make.py", &g), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "make.py"));
  tmp_path(path, sizeof path, "short.npy");
  write_npy(path, "{'descr': '<i2', 'fortran_order': False, 'shape': (4,), }", v, 8);
  ck_assert_int_eq(truncate(path, 5), 0);
  ck_assert_int_eq(msci_npy_file_open(path, &g), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "magic"));
  free(v);

  /* a FIFO is refused at once (alarm: a hang fails the test instead of blocking) */
  tmp_path(fifo, sizeof fifo, "fifo.npy");
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  alarm(20);
  ck_assert_int_eq(msci_npy_file_open(fifo, &g), MSC_E_IO);
  alarm(0);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "not a regular file"));
  ck_assert_int_eq(msci_npy_file_open(FIXTURES, &g), MSC_E_IO); /* a directory */
  ck_assert_int_eq(msci_npy_file_open(FIXTURES "/no-such.npy", &g), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "no-such.npy"));
  ck_assert_int_eq(msci_npy_file_open(NULL, &g), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_file_open(fifo, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_eq(g, sentinel_f);
  /* getters on NULL */
  ck_assert_int_eq(msci_npy_file_ndim(NULL), -1);
  ck_assert_ptr_null(msci_npy_file_dims(NULL));
  ck_assert_int_eq(msci_npy_file_dtype(NULL), 0);
  ck_assert_uint_eq(msci_npy_file_box_scratch(NULL, one), 0);
  msci_npy_file_close(NULL);
  rm_tmp();
}
END_TEST

/* Scalars: lo and cnt may be NULL. */
START_TEST(read_box_scalar) {
  msci_npy_file *f = NULL;
  ck_assert_int_eq(msci_npy_file_open(FIXTURES "/f4_le_c_v1_scalar.npy", &f), MSC_OK);
  ck_assert_int_eq(msci_npy_file_ndim(f), 0);
  msci_npy *a = NULL;
  ck_assert_int_eq(msci_npy_open(FIXTURES "/f4_le_c_v1_scalar.npy", &a), MSC_OK);
  float want = 0, got = 1;
  ck_assert_int_eq(msci_npy_read_f32(a, &want, 1), MSC_OK);
  ck_assert_int_eq(msci_npy_file_read_box(f, NULL, NULL, &got, NULL, 0), MSC_OK);
  ck_assert_float_eq(got, want);
  ck_assert_uint_gt(msci_npy_file_box_scratch(f, NULL), 0);
  msci_npy_close(a);
  msci_npy_file_close(f);
}
END_TEST

/* Concurrent readers of one handle, each with its own scratch. */
typedef struct reader_arg {
  msci_npy_file *f;
  const float *whole;
  int ok;
  uint64_t seed;
} reader_arg;

static void *reader(void *p) {
  reader_arg *r = p;
  const int64_t *dims = msci_npy_file_dims(r->f);
  float box[4 * 3 * 8 * 8], want[4 * 3 * 8 * 8];
  char scratch[8192];
  r->ok = 1;
  uint64_t s = r->seed;
  for (int i = 0; i < 300 && r->ok; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    int64_t lo[4] = {0, 0, (int64_t)((s >> 33) % 9), (int64_t)((s >> 45) % 9)};
    int64_t cnt[4] = {4, 3, 8, 8};
    if (msci_npy_file_box_scratch(r->f, cnt) > sizeof scratch ||
        msci_npy_file_read_box(r->f, lo, cnt, box, scratch, sizeof scratch) != MSC_OK) {
      r->ok = 0;
      break;
    }
    ref_box(r->whole, 4, dims, lo, cnt, want);
    if (memcmp(box, want, sizeof box) != 0) r->ok = 0;
  }
  return NULL;
}

START_TEST(read_box_threads) {
  make_tmp();
  char path[512];
  int64_t n = 4 * 3 * 16 * 16;
  int16_t v[4 * 3 * 16 * 16];
  for (int64_t i = 0; i < n; i++) v[i] = (int16_t)(i * 13 - 9000);
  tmp_path(path, sizeof path, "t.npy");
  write_npy(path, "{'descr': '<i2', 'fortran_order': False, 'shape': (4, 3, 16, 16), }", v,
            sizeof v);
  msci_npy_file *f = NULL;
  ck_assert_int_eq(msci_npy_file_open(path, &f), MSC_OK);
  float whole[4 * 3 * 16 * 16];
  for (int64_t i = 0; i < n; i++) whole[i] = (float)v[i];
  pthread_t th[4];
  reader_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (reader_arg){f, whole, 0, (uint64_t)i + 1};
    ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &args[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    ck_assert_msg(args[i].ok, "reader %d", i);
  }
  msci_npy_file_close(f);
  rm_tmp();
}
END_TEST

/* A PASTIS-like T × C × H × W int16 file: the preads of typical sample boxes. */
START_TEST(read_box_pread_counts) {
  make_tmp();
  char path[512];
  enum { T = 6, C = 10, H = 128, W = 128 };
  size_t n = (size_t)T * C * H * W;
  int16_t *v = malloc(n * sizeof *v);
  float *out = malloc(n * sizeof *out);
  ck_assert(v != NULL && out != NULL);
  for (size_t i = 0; i < n; i++) v[i] = (int16_t)(i % 20011);
  tmp_path(path, sizeof path, "pastis.npy");
  write_npy(path, "{'descr': '<i2', 'fortran_order': False, 'shape': (6, 10, 128, 128), }", v,
            n * sizeof *v);
  msci_npy_file *f = NULL;
  ck_assert_int_eq(msci_npy_file_open(path, &f), MSC_OK);
  char *scratch = malloc((size_t)1 << 20);
  ck_assert_ptr_nonnull(scratch);
  struct {
    int64_t lo[4], cnt[4];
    long preads;
  } cases[] = {
      {{0, 0, 37, 101}, {T, C, 1, 1}, T * C},  /* a pixel: one per (t, c) */
      {{0, 0, 40, 90}, {T, C, 32, 32}, T * C}, /* a patch: one per (t, c), rows' span */
      {{0, 0, 96, 0}, {T, C, 32, W}, T * C},   /* full-width rows: one run per (t, c) */
      {{2, 3, 0, 0}, {3, 4, H, W}, 3},         /* whole planes: one run per t */
      {{0, 0, 0, 0}, {T, C, H, W}, 2},         /* all: 1.9 MiB in 1 MiB reads */
      {{5, 9, 127, 127}, {1, 1, 1, 1}, 1},     /* one element */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t need = msci_npy_file_box_scratch(f, cases[i].cnt);
    ck_assert_uint_le(need, (size_t)1 << 20);
    long before = __atomic_load_n(&g_preads, __ATOMIC_RELAXED);
    ck_assert_int_eq(msci_npy_file_read_box(f, cases[i].lo, cases[i].cnt, out, scratch, need),
                     MSC_OK);
    long used = __atomic_load_n(&g_preads, __ATOMIC_RELAXED) - before;
    ck_assert_msg(used == cases[i].preads, "case %zu: %ld preads, expected %ld", i, used,
                  cases[i].preads);
    /* and the values: the first and the last of the box */
    const int64_t *lo = cases[i].lo, *cnt = cases[i].cnt;
    size_t first = (size_t)(((lo[0] * C + lo[1]) * H + lo[2]) * W + lo[3]);
    size_t last =
        (size_t)((((lo[0] + cnt[0] - 1) * C + lo[1] + cnt[1] - 1) * H + lo[2] + cnt[2] - 1) *
                     W +
                 lo[3] + cnt[3] - 1);
    size_t nb = (size_t)(cnt[0] * cnt[1] * cnt[2] * cnt[3]);
    ck_assert_float_eq(out[0], (float)v[first]);
    ck_assert_float_eq(out[nb - 1], (float)v[last]);
  }
  free(scratch);
  free(out);
  free(v);
  msci_npy_file_close(f);
  rm_tmp();
}
END_TEST

static Suite *series_suite(void) {
  Suite *s = suite_create("series");
  TCase *tc = tcase_create("dates");
  tcase_add_test(tc, date_hand_values);
  tcase_add_test(tc, date_python_table);
  tcase_add_test(tc, date_every_day);
  tcase_add_test(tc, date_invalid_refused);
  suite_add_tcase(s, tc);

  tc = tcase_create("resample");
  tcase_add_test(tc, grid_values);
  tcase_add_test(tc, resample_two_dates);
  tcase_add_test(tc, resample_nan_per_element);
  tcase_add_test(tc, resample_t1_l1_and_on_dates);
  tcase_add_test(tc, resample_random_against_reference);
  tcase_add_test(tc, resample_arguments);
  tcase_add_test(tc, pad_and_cut);
  suite_add_tcase(s, tc);

  tc = tcase_create("npy_file");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, read_box_every_fixture);
  tcase_add_test(tc, read_box_chunked);
  tcase_add_test(tc, read_box_file_errors);
  tcase_add_test(tc, read_box_scalar);
  tcase_add_test(tc, read_box_threads);
  tcase_add_test(tc, read_box_pread_counts);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(series_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
