/*
 * test_sits.c — vegetation indices and recurrence plots (lib/data/sits.h, docs/pimc.md):
 * every index on hand-computed pixels, the invalid-value policy (zero denominators,
 * NaN and infinite bands), scale and offset (processing baseline 04.00), the layout of a
 * T × C × H × W series, numpy's linear percentile, the filling of cloudy dates, recurrence
 * plots continuous and binary on a hand series, the bilinear resize against a plain
 * reference, the per-pixel batch against single-pixel calls, and thread-count
 * independence.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "data/sits.h"
#include "mosaic/mosaic.h"

#define TOL 1e-6

/* One pixel of the 10 PASTIS bands B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12 (DN). */
static void pixel10(float *px, float b2, float b3, float b4, float b8, float b12) {
  for (int i = 0; i < 10; ++i) px[i] = 1234.f; /* bands no index uses */
  px[0] = b2, px[1] = b3, px[2] = b4, px[6] = b8, px[9] = b12;
}

static float vi1(msci_vi kind, const msci_vi_bands *b, const float *px, uint8_t *valid) {
  float out = -7.f;
  ck_assert_int_eq(msci_vi_compute(kind, b, px, 1, 10, 1, &out, valid), MSC_OK);
  return out;
}

/* ---- indices ------------------------------------------------------------------------- */

START_TEST(indices_by_hand) {
  msci_vi_bands b = msci_vi_bands_pastis();
  float px[10];
  uint8_t v = 9;
  /* DN B2 500, B3 800, B4 1000, B8 3000, B12 2000; scale 10000:
   * ρ2 = 0.05, ρ3 = 0.08, ρ4 = 0.1, ρ8 = 0.3, ρ12 = 0.2. */
  pixel10(px, 500, 800, 1000, 3000, 2000);
  /* NDVI = (0.3 − 0.1) / (0.3 + 0.1) = 0.2 / 0.4 = 0.5 */
  ck_assert_double_eq_tol(vi1(MSCI_VI_NDVI, &b, px, &v), 0.5, TOL);
  ck_assert_int_eq(v, 1);
  /* EVI = 2.5·0.2 / (0.3 + 6·0.1 − 7.5·0.05 + 1) = 0.5 / (0.3 + 0.6 − 0.375 + 1)
   *     = 0.5 / 1.525 = 0.327868852... */
  ck_assert_double_eq_tol(vi1(MSCI_VI_EVI, &b, px, &v), 0.5 / 1.525, TOL);
  ck_assert_double_eq_tol(vi1(MSCI_VI_EVI, &b, px, &v), 0.3278688524, TOL);
  /* SAVI = 1.5·0.2 / (0.3 + 0.1 + 0.5) = 0.3 / 0.9 = 0.333333... */
  ck_assert_double_eq_tol(vi1(MSCI_VI_SAVI, &b, px, &v), 1.0 / 3.0, TOL);
  /* NDWI = (0.08 − 0.3) / (0.08 + 0.3) = −0.22 / 0.38 = −0.578947368... */
  ck_assert_double_eq_tol(vi1(MSCI_VI_NDWI, &b, px, &v), -0.5789473684, TOL);
  /* NBR = (0.3 − 0.2) / (0.3 + 0.2) = 0.1 / 0.5 = 0.2 */
  ck_assert_double_eq_tol(vi1(MSCI_VI_NBR, &b, px, &v), 0.2, TOL);
  ck_assert_int_eq(v, 1);
  /* msci_vi_value on reflectances directly */
  ck_assert_double_eq_tol(msci_vi_value(MSCI_VI_NDVI, 0, 0, 0.1, 0.3, 0), 0.5, 1e-15);
  ck_assert_double_eq_tol(msci_vi_value(MSCI_VI_SAVI, 0, 0, 0.1, 0.3, 0), 1.0 / 3.0, 1e-15);
  ck_assert(isnan(msci_vi_value((msci_vi)17, 0, 0, 0.1, 0.3, 0)));
  ck_assert_str_eq(msci_vi_name(MSCI_VI_EVI), "evi");
  ck_assert_str_eq(msci_vi_name((msci_vi)17), "?");
}
END_TEST

START_TEST(scale_and_offset) {
  msci_vi_bands b = msci_vi_bands_pastis();
  float px[10];
  /* Baseline >= 04.00: DN = 10000·ρ + 1000. DN B4 2000, B8 4000 with offset −1000:
   * ρ4 = (2000 − 1000)/10000 = 0.1, ρ8 = 0.3 → NDVI 0.5 ... */
  pixel10(px, 1500, 1800, 2000, 4000, 3000);
  b.offset = -1000;
  ck_assert_double_eq_tol(vi1(MSCI_VI_NDVI, &b, px, NULL), 0.5, TOL);
  /* ... EVI with ρ2 = 0.05: the same 0.5 / 1.525 as the unshifted pixel ... */
  ck_assert_double_eq_tol(vi1(MSCI_VI_EVI, &b, px, NULL), 0.5 / 1.525, TOL);
  /* ... whereas offset 0 reads ρ4 = 0.2, ρ8 = 0.4: NDVI = 0.2/0.6 = 1/3, and
   * SAVI = 1.5·0.2/(0.4 + 0.2 + 0.5) = 0.3/1.1. */
  b.offset = 0;
  ck_assert_double_eq_tol(vi1(MSCI_VI_NDVI, &b, px, NULL), 1.0 / 3.0, TOL);
  ck_assert_double_eq_tol(vi1(MSCI_VI_SAVI, &b, px, NULL), 0.3 / 1.1, TOL);
  /* Reflectance already in [0, 1] (scale 1): ρ4 = 0.1, ρ8 = 0.3; SAVI = 0.3/0.9. */
  b.scale = 1;
  pixel10(px, 0.05f, 0.08f, 0.1f, 0.3f, 0.2f);
  ck_assert_double_eq_tol(vi1(MSCI_VI_SAVI, &b, px, NULL), 1.0 / 3.0, TOL);
  /* NDVI is scale-free; SAVI is not: scale 1000 reads ρ = 10× the above:
   * SAVI = 1.5·(3 − 1)/(3 + 1 + 0.5) = 3/4.5 with DN 1000, 3000. */
  b.scale = 1000;
  pixel10(px, 500, 800, 1000, 3000, 2000);
  ck_assert_double_eq_tol(vi1(MSCI_VI_NDVI, &b, px, NULL), 0.5, TOL);
  ck_assert_double_eq_tol(vi1(MSCI_VI_SAVI, &b, px, NULL), 3.0 / 4.5, TOL);
  /* A bad scale is refused, out untouched. */
  float out = -7.f;
  b.scale = 0;
  ck_assert_int_eq(msci_vi_compute(MSCI_VI_NDVI, &b, px, 1, 10, 1, &out, NULL),
                   MSC_E_INVALID_ARGUMENT);
  b.scale = NAN;
  ck_assert_int_eq(msci_vi_compute(MSCI_VI_NDVI, &b, px, 1, 10, 1, &out, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert(out == -7.f);
}
END_TEST

START_TEST(invalid_policy) {
  msci_vi_bands b = msci_vi_bands_pastis();
  float px[10];
  uint8_t v = 9;
  /* NDVI: B8 = B4 = 0 → denominator 0 → NaN, flag 0. */
  pixel10(px, 0, 0, 0, 0, 0);
  ck_assert(isnan(vi1(MSCI_VI_NDVI, &b, px, &v)));
  ck_assert_int_eq(v, 0);
  /* The same with offset −1000 and DN 1000: ρ = 0. */
  b.offset = -1000;
  pixel10(px, 1000, 1000, 1000, 1000, 1000);
  ck_assert(isnan(vi1(MSCI_VI_NDVI, &b, px, &v)));
  ck_assert(isnan(vi1(MSCI_VI_NBR, &b, px, &v)));
  ck_assert(isnan(vi1(MSCI_VI_NDWI, &b, px, &v)));
  /* SAVI is defined there: 1.5·0/(0 + 0 + 0.5) = 0. */
  ck_assert(vi1(MSCI_VI_SAVI, &b, px, &v) == 0.f);
  ck_assert_int_eq(v, 1);
  b.offset = 0;
  /* EVI: ρ8 = 0.5, ρ4 = 0, ρ2 = 0.2: 0.5 + 0 − 1.5 + 1 = 0 → NaN. */
  pixel10(px, 2000, 0, 0, 5000, 0);
  ck_assert(isnan(vi1(MSCI_VI_EVI, &b, px, &v)));
  ck_assert_int_eq(v, 0);
  /* SAVI: ρ8 = ρ4 = −0.25 (DN −2500): −0.5 + 0.5 = 0 → NaN. */
  pixel10(px, 0, 0, -2500, -2500, 0);
  ck_assert(isnan(vi1(MSCI_VI_SAVI, &b, px, &v)));
  /* A denominator below 1e-12 counts as zero; one just above does not (reflectances). */
  ck_assert(isnan(msci_vi_value(MSCI_VI_NDVI, 0, 0, 0.5e-12, 0.4e-12, 0)));
  ck_assert(isfinite(msci_vi_value(MSCI_VI_NDVI, 0, 0, 1e-12, 1e-12, 0)));
  /* NaN in B4: NDVI, EVI, SAVI NaN; NDWI and NBR (which do not use B4) stay valid. */
  pixel10(px, 500, 800, NAN, 3000, 2000);
  ck_assert(isnan(vi1(MSCI_VI_NDVI, &b, px, &v)));
  ck_assert_int_eq(v, 0);
  ck_assert(isnan(vi1(MSCI_VI_EVI, &b, px, &v)));
  ck_assert(isnan(vi1(MSCI_VI_SAVI, &b, px, &v)));
  ck_assert_double_eq_tol(vi1(MSCI_VI_NBR, &b, px, &v), 0.2, TOL);
  ck_assert_int_eq(v, 1);
  /* Infinite B8: every index NaN. */
  pixel10(px, 500, 800, 1000, INFINITY, 2000);
  for (int k = 0; k < MSCI_VI_COUNT; ++k) {
    ck_assert(isnan(vi1((msci_vi)k, &b, px, &v)));
    ck_assert_int_eq(v, 0);
  }
  /* A value beyond float's range is NaN too: ρ8 = 3e38/1, ρ4 = −3e38 + tiny den. */
  b.scale = 1;
  pixel10(px, 0, 0, -3e38f, 3e38f, 0);
  ck_assert(isnan(vi1(MSCI_VI_SAVI, &b, px, &v))); /* 9e38 / 0.5 */
  ck_assert_int_eq(v, 0);
}
END_TEST

START_TEST(band_table_and_layout) {
  msci_vi_bands b = msci_vi_bands_pastis();
  /* T = 2, C = 10, H = 1, W = 2: out[t·2 + p]. */
  float x[2 * 10 * 2];
  const float b4[4] = {1000, 2000, 1000, 0}, b8[4] = {3000, 2000, 1000, 0};
  for (int i = 0; i < 40; ++i) x[i] = 100.f;
  for (int t = 0; t < 2; ++t)
    for (int p = 0; p < 2; ++p) {
      x[t * 20 + 2 * 2 + p] = b4[t * 2 + p];
      x[t * 20 + 6 * 2 + p] = b8[t * 2 + p];
    }
  float out[4];
  uint8_t v[4];
  ck_assert_int_eq(msci_vi_compute(MSCI_VI_NDVI, &b, x, 2, 10, 2, out, v), MSC_OK);
  /* (3000−1000)/4000 = 0.5; 0/4000 = 0; 0/2000 = 0; 0/0 → NaN */
  ck_assert_double_eq_tol(out[0], 0.5, TOL);
  ck_assert(out[1] == 0.f && out[2] == 0.f);
  ck_assert(isnan(out[3]));
  ck_assert(v[0] == 1 && v[1] == 1 && v[2] == 1 && v[3] == 0);
  /* A band an index needs must be in the table and in range; others may be absent. */
  b.b12 = -1;
  ck_assert_int_eq(msci_vi_compute(MSCI_VI_NDVI, &b, x, 2, 10, 2, out, NULL), MSC_OK);
  ck_assert_int_eq(msci_vi_compute(MSCI_VI_NBR, &b, x, 2, 10, 2, out, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "B12"));
  b = msci_vi_bands_pastis();
  b.b3 = 10;
  ck_assert_int_eq(msci_vi_compute(MSCI_VI_NDWI, &b, x, 2, 10, 2, out, NULL),
                   MSC_E_INVALID_ARGUMENT);
  b = msci_vi_bands_pastis();
  ck_assert_int_eq(msci_vi_compute(MSCI_VI_NDVI, NULL, x, 2, 10, 2, out, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_vi_compute(MSCI_VI_NDVI, &b, x, 0, 10, 2, out, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_vi_compute((msci_vi)5, &b, x, 2, 10, 2, out, NULL),
                   MSC_E_INVALID_ARGUMENT);
}
END_TEST

/* ---- percentile and filling ---------------------------------------------------------- */

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

START_TEST(percentile_by_hand) {
  /* {3, 1, 4, 1, 5} sorted: 1, 1, 3, 4, 5 (m = 5). */
  float v[5];
  const float src[5] = {3, 1, 4, 1, 5};
#define PCT(p) (memcpy(v, src, sizeof v), msci_percentile_linear(v, 5, p))
  /* p = 40: h = 4·0.4 = 1.6 → s1 + 0.6·(s2 − s1) = 1 + 0.6·2 = 2.2 */
  ck_assert_double_eq_tol(PCT(40), 2.2, 1e-12);
  /* p = 75: h = 3 → s3 = 4 */
  ck_assert_double_eq_tol(PCT(75), 4.0, 1e-12);
  /* p = 0 → 1; p = 100 → 5; p = 10: h = 0.4 → 1 + 0.4·0 = 1; p = 90: h = 3.6 → 4.6 */
  ck_assert_double_eq_tol(PCT(0), 1.0, 1e-12);
  ck_assert_double_eq_tol(PCT(100), 5.0, 1e-12);
  ck_assert_double_eq_tol(PCT(10), 1.0, 1e-12);
  ck_assert_double_eq_tol(PCT(90), 4.6, 1e-12);
#undef PCT
  float one = 7;
  ck_assert(msci_percentile_linear(&one, 1, 33) == 7.0);
  ck_assert(isnan(msci_percentile_linear(v, 0, 50)));
  /* Against a full sort on pseudo-random arrays with ties, for many p. */
  float a[97], s[97];
  unsigned r = 12345u;
  for (int m = 1; m <= 97; m += 8)
    for (int p10 = 0; p10 <= 1000; p10 += 37) {
      for (int i = 0; i < m; ++i) {
        r = r * 1103515245u + 12345u;
        s[i] = (float)((r >> 16) % 23) * 0.25f;
      }
      memcpy(a, s, (size_t)m * sizeof(float));
      qsort(s, (size_t)m, sizeof(float), cmp_float);
      double p = p10 / 10.0, h = (m - 1) * p / 100.0;
      int k = (int)floor(h);
      double want = k + 1 < m ? s[k] + (h - k) * ((double)s[k + 1] - s[k]) : s[k];
      ck_assert_double_eq_tol(msci_percentile_linear(a, m, p), want, 1e-9);
    }
}
END_TEST

START_TEST(fill_gaps) {
  /* [NaN, 1, NaN, NaN, 4, NaN] → [1, 1, 2, 3, 4, 4] (equally spaced). */
  float x[6] = {NAN, 1, NAN, NAN, 4, NAN};
  ck_assert_int_eq(msci_series_fill(x, 6, NULL), 2);
  const float want[6] = {1, 1, 2, 3, 4, 4};
  for (int i = 0; i < 6; ++i) ck_assert_double_eq_tol(x[i], want[i], 1e-6);
  /* With days 0, 10, 20, 40, 50, 60: date 2 (day 20) lies 10/40 of the way from day 10
   * (1) to day 50 (4): 1 + 0.25·3 = 1.75; date 3 (day 40): 1 + 0.75·3 = 3.25. */
  const double days[6] = {0, 10, 20, 40, 50, 60};
  float y[6] = {NAN, 1, NAN, -INFINITY, 4, NAN};
  ck_assert_int_eq(msci_series_fill(y, 6, days), 2);
  const float want2[6] = {1, 1, 1.75f, 3.25f, 4, 4};
  for (int i = 0; i < 6; ++i) ck_assert_double_eq_tol(y[i], want2[i], 1e-6);
  /* No finite value: left as it was. */
  float z[3] = {NAN, NAN, NAN};
  ck_assert_int_eq(msci_series_fill(z, 3, NULL), 0);
  ck_assert(isnan(z[0]) && isnan(z[1]) && isnan(z[2]));
}
END_TEST

/* ---- recurrence plots ---------------------------------------------------------------- */

static const float HAND[4] = {0, 0.5f, 0.2f, 0.9f};

/* |x_i − x_j| for x = [0, 0.5, 0.2, 0.9]. */
static const float HAND_R[16] = {0,    0.5f, 0.2f, 0.9f, 0.5f, 0,    0.3f, 0.4f,
                                 0.2f, 0.3f, 0,    0.7f, 0.9f, 0.4f, 0.7f, 0};

static msci_rp_cfg one_channel(void) {
  msci_rp_cfg c = msci_rp_cfg_default();
  c.channels = 1;
  return c;
}

static float *scratch_for(int64_t t, const msci_rp_cfg *c) {
  size_t n = msci_rp_scratch_floats(t, c);
  ck_assert_uint_gt(n, 0);
  float *s = malloc(n * sizeof(float));
  ck_assert_ptr_nonnull(s);
  return s;
}

START_TEST(rp_continuous_and_binary) {
  msci_rp_cfg c = one_channel();
  float out[16];
  uint8_t v = 9;
  float *s = scratch_for(4, &c);
  ck_assert_int_eq(msci_rp_series(HAND, 4, &c, out, &v, s), MSC_OK);
  ck_assert_int_eq(v, 1);
  for (int i = 0; i < 16; ++i) ck_assert_double_eq_tol(out[i], HAND_R[i], 1e-6);
  free(s);

  /* Binary, ε = 0.25: R = 1 where d <= 0.25 (0, 0.2 and the diagonal). */
  c.binary = 1, c.eps = 0.25;
  s = scratch_for(4, &c);
  const float b25[16] = {1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1};
  ck_assert_int_eq(msci_rp_series(HAND, 4, &c, out, NULL, s), MSC_OK);
  for (int i = 0; i < 16; ++i) ck_assert(out[i] == b25[i]);
  free(s);

  /* Percentile: the 6 off-diagonal distances 0.5, 0.2, 0.9, 0.3, 0.4, 0.7, sorted
   * 0.2, 0.3, 0.4, 0.5, 0.7, 0.9. p = 50: h = 5·0.5 = 2.5 → ε = 0.4 + 0.5·0.1 = 0.45:
   * d <= 0.45 for 0, 0.2, 0.3, 0.4. */
  c.eps_is_percentile = 1, c.eps = 50;
  s = scratch_for(4, &c);
  const float b50[16] = {1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1};
  ck_assert_int_eq(msci_rp_series(HAND, 4, &c, out, NULL, s), MSC_OK);
  for (int i = 0; i < 16; ++i) ck_assert(out[i] == b50[i]);
  /* p = 90: h = 4.5 → ε = 0.7 + 0.5·0.2 = 0.8: every distance but 0.9. */
  c.eps = 90;
  ck_assert_int_eq(msci_rp_series(HAND, 4, &c, out, NULL, s), MSC_OK);
  for (int i = 0; i < 16; ++i) ck_assert(out[i] == (HAND_R[i] < 0.85f ? 1.f : 0.f));
  /* p = 0: ε = 0.2, the smallest: only d <= 0.2. */
  c.eps = 0;
  ck_assert_int_eq(msci_rp_series(HAND, 4, &c, out, NULL, s), MSC_OK);
  for (int i = 0; i < 16; ++i) ck_assert(out[i] == (HAND_R[i] < 0.25f ? 1.f : 0.f));
  /* The percentile ε by hand: distances into an array. */
  float d[6] = {0.5f, 0.2f, 0.9f, 0.3f, 0.4f, 0.7f};
  ck_assert_double_eq_tol(msci_percentile_linear(d, 6, 50), 0.45, 1e-6);
  /* p = 30: h = 1.5 → 0.3 + 0.5·0.1 = 0.35 */
  ck_assert_double_eq_tol(msci_percentile_linear(d, 6, 30), 0.35, 1e-6);
  free(s);

  /* T = 1: continuous [0], binary [1] (Θ(0) = 1), percentile of no distance → ε = 0. */
  float x1 = 0.3f, o1 = -1;
  s = scratch_for(1, &c);
  ck_assert_int_eq(msci_rp_series(&x1, 1, &c, &o1, NULL, s), MSC_OK);
  ck_assert(o1 == 1.f);
  c.binary = 0;
  ck_assert_int_eq(msci_rp_series(&x1, 1, &c, &o1, NULL, s), MSC_OK);
  ck_assert(o1 == 0.f);
  free(s);
}
END_TEST

START_TEST(rp_nan_dates) {
  msci_rp_cfg c = one_channel();
  float *s = scratch_for(4, &c);
  /* [0, NaN, 0.2, 0.9] is plotted as [0, 0.1, 0.2, 0.9]. */
  const float cloudy[4] = {0, NAN, 0.2f, 0.9f}, filled[4] = {0, 0.1f, 0.2f, 0.9f};
  float a[16], b[16];
  uint8_t v = 9;
  ck_assert_int_eq(msci_rp_series(cloudy, 4, &c, a, &v, s), MSC_OK);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(msci_rp_series(filled, 4, &c, b, NULL, s), MSC_OK);
  for (int i = 0; i < 16; ++i) ck_assert_double_eq_tol(a[i], b[i], 1e-7);
  /* No finite date: zeros, flag 0. */
  const float none[4] = {NAN, NAN, INFINITY, NAN};
  ck_assert_int_eq(msci_rp_series(none, 4, &c, a, &v, s), MSC_OK);
  ck_assert_int_eq(v, 0);
  for (int i = 0; i < 16; ++i) ck_assert(a[i] == 0.f);
  free(s);
}
END_TEST

/* Bilinear, align_corners = False, written out independently of lib/data/raster.c. */
static void ref_resize(const float *src, int n, float *dst, int s) {
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x) {
      double fy = (y + 0.5) * n / s - 0.5, fx = (x + 0.5) * n / s - 0.5;
      if (fy < 0) fy = 0;
      if (fx < 0) fx = 0;
      int y0 = (int)fy, x0 = (int)fx;
      int y1 = y0 + 1 < n ? y0 + 1 : n - 1, x1 = x0 + 1 < n ? x0 + 1 : n - 1;
      double wy = fy - y0, wx = fx - x0;
      dst[y * s + x] =
          (float)((1 - wy) * ((1 - wx) * src[y0 * n + x0] + wx * src[y0 * n + x1]) +
                  wy * ((1 - wx) * src[y1 * n + x0] + wx * src[y1 * n + x1]));
    }
}

START_TEST(rp_resize) {
  /* x = [0, 1]: R = [[0, 1], [1, 0]] to 4 × 4. Source coordinates (i + 0.5)/2 − 0.5:
   * −0.25 → 0, 0.25, 0.75, 1.25 (→ row 1 alone): weights 0, 0.25, 0.75, 1, and
   * R'(y, x) = (1 − wy)·wx + wy·(1 − wx). Row 1 (wy = 0.25): 0.25, 0.25·0.75·2 = 0.375,
   * 0.75·0.75 + 0.25·0.25 = 0.625, 0.75. */
  msci_rp_cfg c = one_channel();
  c.size = 4;
  const float x2[2] = {0, 1};
  const float want[16] = {0,     0.25f,  0.75f,  1,     0.25f, 0.375f, 0.625f, 0.75f,
                          0.75f, 0.625f, 0.375f, 0.25f, 1,     0.75f,  0.25f,  0};
  float out[64], ref[64];
  float *s = scratch_for(2, &c);
  ck_assert_int_eq(msci_rp_series(x2, 2, &c, out, NULL, s), MSC_OK);
  for (int i = 0; i < 16; ++i) ck_assert_double_eq_tol(out[i], want[i], 1e-6);
  free(s);
  /* The hand series up (S = 7) and down (S = 3), continuous and binary. */
  const int sizes[2] = {7, 3};
  for (int bin = 0; bin < 2; ++bin)
    for (int k = 0; k < 2; ++k) {
      c.size = sizes[k], c.binary = bin, c.eps = 0.25;
      s = scratch_for(4, &c);
      float plain[16];
      for (int i = 0; i < 16; ++i) plain[i] = bin ? (HAND_R[i] <= 0.25f) : HAND_R[i];
      ck_assert_int_eq(msci_rp_series(HAND, 4, &c, out, NULL, s), MSC_OK);
      ref_resize(plain, 4, ref, sizes[k]);
      for (int i = 0; i < sizes[k] * sizes[k]; ++i)
        ck_assert_double_eq_tol(out[i], ref[i], 1e-6);
      free(s);
    }
}
END_TEST

/* ---- the per-pixel batch ------------------------------------------------------------- */

enum { T = 9, C = 10, H = 5, W = 4, N = 11 };

/* DN in [0, 5000) with a few NaN dates and one pixel cloudy throughout. */
static float *series_fixture(void) {
  float *x = malloc(sizeof(float) * T * C * H * W);
  ck_assert_ptr_nonnull(x);
  unsigned r = 777u;
  for (int i = 0; i < T * C * H * W; ++i) {
    r = r * 1664525u + 1013904223u;
    x[i] = (float)(r >> 8) / (float)(1u << 24) * 5000.f;
  }
  for (int t = 0; t < T; t += 3) x[(t * C + 2) * H * W + 7] = NAN; /* B4 of pixel 7 */
  for (int t = 0; t < T; ++t) x[(t * C + 6) * H * W + 13] = NAN;   /* B8 of pixel 13 */
  return x;
}

static const int64_t PIX[2 * N] = {0, 0, 1, 3, 4, 3, 1, 2, 3, 1, 2,
                                   2, 0, 3, 4, 0, 1, 3, 3, 3, 2, 1};

/* Pixel (y, x) done by hand: msci_vi_compute over the whole image, then msci_rp_series. */
static void direct(const float *x, const msci_rp_cfg *c, int64_t y, int64_t xx, float *out,
                   uint8_t *valid) {
  msci_vi_bands b = msci_vi_bands_pastis();
  float vi[T * H * W], ser[MSCI_VI_COUNT * T];
  for (int k = 0; k < c->channels; ++k) {
    ck_assert_int_eq(msci_vi_compute((msci_vi)c->index[k], &b, x, T, C, H * W, vi, NULL),
                     MSC_OK);
    for (int t = 0; t < T; ++t) ser[k * T + t] = vi[t * H * W + y * W + xx];
  }
  float *s = scratch_for(T, c);
  ck_assert_int_eq(msci_rp_series(ser, T, c, out, valid, s), MSC_OK);
  free(s);
}

static void check_batch(const msci_rp_cfg *c) {
  float *x = series_fixture();
  msci_vi_bands b = msci_vi_bands_pastis();
  int64_t k = c->channels, s = c->size ? c->size : T;
  size_t per = (size_t)(k * s * s);
  float *out = malloc(N * per * sizeof(float)), *one = malloc(per * sizeof(float));
  uint8_t valid[N * MSCI_VI_COUNT], v1[MSCI_VI_COUNT];
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, c, PIX, N, out, valid, NULL, 0), MSC_OK);
  for (int i = 0; i < N; ++i) {
    direct(x, c, PIX[2 * i], PIX[2 * i + 1], one, v1);
    ck_assert_int_eq(memcmp(out + i * per, one, per * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(valid + i * k, v1, (size_t)k), 0);
  }
  free(x), free(out), free(one);
}

START_TEST(batch_matches_single_pixels) {
  msci_rp_cfg c = msci_rp_cfg_default();
  check_batch(&c);
  c.size = 16;
  check_batch(&c);
  c.binary = 1, c.eps_is_percentile = 1, c.eps = 20, c.size = 5;
  check_batch(&c);
  c.channels = 5, c.eps_is_percentile = 0, c.eps = 0.1, c.size = 0;
  check_batch(&c);
  /* Pixel 13 has no finite B8: every channel of pixel (3, 1) (index 4 in PIX) is zeros,
   * flag 0; pixel 7 (1, 3) has cloudy dates but is valid. */
  c = msci_rp_cfg_default();
  float *x = series_fixture();
  msci_vi_bands b = msci_vi_bands_pastis();
  float *out = malloc(N * 3 * T * T * sizeof(float));
  uint8_t valid[N * 3];
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &c, PIX, N, out, valid, NULL, 0), MSC_OK);
  ck_assert(valid[4 * 3] == 0 && valid[4 * 3 + 1] == 0 && valid[4 * 3 + 2] == 0);
  ck_assert(valid[1 * 3] == 1 && valid[0] == 1);
  for (int i = 0; i < 3 * T * T; ++i) ck_assert(out[4 * 3 * T * T + i] == 0.f);
  free(x), free(out);
}
END_TEST

START_TEST(batch_thread_independent) {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
#endif
  float *x = series_fixture();
  msci_vi_bands b = msci_vi_bands_pastis();
  msci_rp_cfg c = msci_rp_cfg_default();
  c.binary = 1, c.eps_is_percentile = 1, c.eps = 30, c.size = 13;
  size_t per = (size_t)(3 * 13 * 13), sc = msci_rp_scratch_floats(T, &c);
  float *a = malloc(N * per * sizeof(float)), *bb = malloc(N * per * sizeof(float));
  float *cc = malloc(N * per * sizeof(float)), *scr = malloc(2 * sc * sizeof(float));
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &c, PIX, N, a, NULL, scr, sc), MSC_OK);
#ifdef _OPENMP
  omp_set_num_threads(2);
#endif
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &c, PIX, N, bb, NULL, scr, 2 * sc),
                   MSC_OK);
  ck_assert_int_eq(memcmp(a, bb, N * per * sizeof(float)), 0);
  /* Two threads wanted, scratch for one: one thread, same bytes; own scratch likewise. */
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &c, PIX, N, cc, NULL, scr, 2 * sc - 1),
                   MSC_OK);
  ck_assert_int_eq(memcmp(a, cc, N * per * sizeof(float)), 0);
  memset(cc, 0, N * per * sizeof(float));
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &c, PIX, N, cc, NULL, NULL, 0), MSC_OK);
  ck_assert_int_eq(memcmp(a, cc, N * per * sizeof(float)), 0);
#ifdef _OPENMP
  omp_set_num_threads(saved);
#endif
  free(x), free(a), free(bb), free(cc), free(scr);
}
END_TEST

START_TEST(batch_errors) {
  float *x = series_fixture();
  msci_vi_bands b = msci_vi_bands_pastis();
  msci_rp_cfg c = msci_rp_cfg_default();
  float out[3 * T * T];
  uint8_t valid[3] = {9, 9, 9};
  for (int i = 0; i < 3 * T * T; ++i) out[i] = -5.f;
  const int64_t outside[4] = {0, 0, 5, 0}; /* row 5 of 5 */
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &c, outside, 2, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "outside"));
  const int64_t neg[2] = {0, -1};
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &c, neg, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  float small[4];
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &c, PIX, 1, out, valid, small, 4),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(msci_rp_pixels(NULL, T, C, H, W, &b, &c, PIX, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &c, NULL, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_rp_pixels(x, T, C, 0, W, &b, &c, PIX, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  msci_rp_cfg bad = c;
  bad.channels = 0;
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &bad, PIX, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_uint_eq(msci_rp_scratch_floats(T, &bad), 0);
  bad = c, bad.index[1] = 9;
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &bad, PIX, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  bad = c, bad.binary = 1, bad.eps_is_percentile = 1, bad.eps = 101;
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &bad, PIX, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  bad.eps_is_percentile = 0, bad.eps = -0.1;
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &bad, PIX, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  bad = c, bad.size = MSCI_RP_MAX_S + 1;
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &bad, PIX, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  const double days[T] = {0, 5, 10, 10, 20, 25, 30, 35, 40}; /* not increasing */
  bad = c, bad.days = days;
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &bad, PIX, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "days[3]"));
  msci_vi_bands nob4 = b;
  nob4.b4 = -1;
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &nob4, &c, PIX, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_rp_pixels(x, 0, C, H, W, &b, &c, PIX, 1, out, valid, NULL, 0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_rp_series(NULL, T, &c, out, valid, out), MSC_E_INVALID_ARGUMENT);
  /* Outputs untouched by every failure. */
  for (int i = 0; i < 3 * T * T; ++i) ck_assert(out[i] == -5.f);
  ck_assert(valid[0] == 9 && valid[1] == 9 && valid[2] == 9);
  /* n = 0 is fine and writes nothing. */
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, &b, &c, NULL, 0, out, valid, NULL, 0), MSC_OK);
  ck_assert(out[0] == -5.f);
  free(x);
}
END_TEST

static Suite *sits_suite(void) {
  Suite *s = suite_create("sits");
  TCase *vi = tcase_create("indices");
  tcase_add_test(vi, indices_by_hand);
  tcase_add_test(vi, scale_and_offset);
  tcase_add_test(vi, invalid_policy);
  tcase_add_test(vi, band_table_and_layout);
  suite_add_tcase(s, vi);
  TCase *rp = tcase_create("recurrence");
  tcase_add_test(rp, percentile_by_hand);
  tcase_add_test(rp, fill_gaps);
  tcase_add_test(rp, rp_continuous_and_binary);
  tcase_add_test(rp, rp_nan_dates);
  tcase_add_test(rp, rp_resize);
  suite_add_tcase(s, rp);
  TCase *bt = tcase_create("batch");
  tcase_add_test(bt, batch_matches_single_pixels);
  tcase_add_test(bt, batch_thread_independent);
  tcase_add_test(bt, batch_errors);
  suite_add_tcase(s, bt);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(sits_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
