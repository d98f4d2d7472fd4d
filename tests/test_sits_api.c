/*
 * test_sits_api.c — the public msc_vegetation_index and msc_recurrence_plots against the
 * internal msci_vi_compute and msci_rp_pixels (lib/data/sits.h) they wrap: bitwise equal
 * outputs for every index, band tables given and NULL (PASTIS), plots continuous, binary
 * and resized with days; and the errors (NULL, sizes, struct_size, bad kinds and
 * parameters), each with a message and the outputs untouched.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/sits.h"
#include "mosaic/mosaic.h"

enum { T = 7, C = 10, H = 4, W = 5, HW = H * W };

/* A deterministic T × C × H × W series of digital numbers with a few NaN and infinite
 * values and a zero denominator. */
static float *make_series(void) {
  float *x = malloc(sizeof(float) * T * C * HW);
  uint32_t s = 12345u;
  for (int i = 0; i < T * C * HW; ++i) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)(s >> 8) / (float)(1u << 24) * 6000.f;
  }
  x[(0 * C + 6) * HW + 3] = NAN;      /* B8 of pixel 3 at date 0 */
  x[(2 * C + 2) * HW + 5] = INFINITY; /* B4 of pixel 5 at date 2 */
  x[(4 * C + 2) * HW + 7] = 0.f;      /* B4 = B8 = 0: NDVI denominator 0 */
  x[(4 * C + 6) * HW + 7] = 0.f;
  for (int t = 0; t < T; ++t) x[(t * C + 6) * HW + 9] = NAN; /* pixel 9: never valid */
  return x;
}

static int same_bits(const float *a, const float *b, size_t n) {
  return memcmp(a, b, n * sizeof(float)) == 0;
}

static msc_vi_bands pub_bands(void) {
  msc_vi_bands b;
  memset(&b, 0, sizeof b);
  b.struct_size = sizeof b;
  b.b2 = 4, b.b3 = 3, b.b4 = 0, b.b8 = 1, b.b12 = 2;
  b.scale = 2e4, b.offset = -1000;
  return b;
}

START_TEST(vi_matches_internal) {
  float *x = make_series();
  float out[T * HW], ref[T * HW];
  uint8_t valid[T * HW], vref[T * HW];
  msci_vi_bands pastis = msci_vi_bands_pastis();
  msc_vi_bands pb = pub_bands();
  msci_vi_bands ib = {
      .b2 = 4, .b3 = 3, .b4 = 0, .b8 = 1, .b12 = 2, .scale = 2e4, .offset = -1000};
  for (int k = 0; k < MSC_VI_COUNT; ++k) {
    ck_assert_int_eq(msc_vegetation_index(k, x, T, C, HW, NULL, out, valid), MSC_OK);
    ck_assert_int_eq(msci_vi_compute((msci_vi)k, &pastis, x, T, C, HW, ref, vref), MSC_OK);
    ck_assert(same_bits(out, ref, T * HW));
    ck_assert(memcmp(valid, vref, sizeof valid) == 0);
    ck_assert_int_eq(msc_vegetation_index(k, x, T, C, HW, &pb, out, NULL), MSC_OK);
    ck_assert_int_eq(msci_vi_compute((msci_vi)k, &ib, x, T, C, HW, ref, NULL), MSC_OK);
    ck_assert(same_bits(out, ref, T * HW));
  }
  /* The NaN policy comes through: NDVI invalid where B8 is NaN, B4 infinite, den 0. */
  ck_assert_int_eq(msc_vegetation_index(MSC_VI_NDVI, x, T, C, HW, NULL, out, valid), MSC_OK);
  ck_assert(isnan(out[3]) && valid[3] == 0);
  ck_assert(isnan(out[2 * HW + 5]) && valid[2 * HW + 5] == 0);
  ck_assert(isnan(out[4 * HW + 7]) && valid[4 * HW + 7] == 0);
  ck_assert(isfinite(out[4]) && valid[4] == 1);
  /* A larger struct_size (a newer caller) is accepted. */
  pb.struct_size = sizeof pb + 16;
  ck_assert_int_eq(msc_vegetation_index(MSC_VI_NBR, x, T, C, HW, &pb, out, NULL), MSC_OK);
  free(x);
}
END_TEST

START_TEST(vi_errors) {
  float *x = make_series();
  float out[T * HW];
  uint8_t valid[T * HW];
  for (int i = 0; i < T * HW; ++i) out[i] = -5.f, valid[i] = 9;
  msc_vi_bands b = pub_bands();
#define VI_FAILS(call, needle)                                                                 \
  do {                                                                                         \
    ck_assert_int_eq((call), MSC_E_INVALID_ARGUMENT);                                          \
    ck_assert_msg(strstr(msc_last_error(), (needle)) != NULL, "message '%s' lacks '%s'",       \
                  msc_last_error(), (needle));                                                 \
  } while (0)
  VI_FAILS(msc_vegetation_index(MSC_VI_NDVI, NULL, T, C, HW, NULL, out, valid), "x is NULL");
  VI_FAILS(msc_vegetation_index(MSC_VI_NDVI, x, T, C, HW, NULL, NULL, valid), "out is NULL");
  VI_FAILS(msc_vegetation_index(-1, x, T, C, HW, NULL, out, valid), "kind");
  VI_FAILS(msc_vegetation_index(MSC_VI_COUNT, x, T, C, HW, NULL, out, valid), "kind");
  VI_FAILS(msc_vegetation_index(MSC_VI_NDVI, x, 0, C, HW, NULL, out, valid), "shape");
  VI_FAILS(msc_vegetation_index(MSC_VI_NDVI, x, T, 0, HW, NULL, out, valid), "shape");
  VI_FAILS(msc_vegetation_index(MSC_VI_NDVI, x, T, C, -1, NULL, out, valid), "shape");
  VI_FAILS(msc_vegetation_index(MSC_VI_NDVI, x, INT64_MAX, C, HW, NULL, out, valid), "shape");
  /* PASTIS needs 10 channels: B12 at channel 9 is out of range for C = 9. */
  VI_FAILS(msc_vegetation_index(MSC_VI_NBR, x, T, 9, HW, NULL, out, valid), "B12");
  b.struct_size = sizeof b - 8;
  VI_FAILS(msc_vegetation_index(MSC_VI_NDVI, x, T, C, HW, &b, out, valid), "struct_size");
  b = pub_bands(), b.b2 = -1;
  VI_FAILS(msc_vegetation_index(MSC_VI_EVI, x, T, C, HW, &b, out, valid), "B2");
  b = pub_bands(), b.scale = 0;
  VI_FAILS(msc_vegetation_index(MSC_VI_NDVI, x, T, C, HW, &b, out, valid), "scale");
  b = pub_bands(), b.offset = NAN;
  VI_FAILS(msc_vegetation_index(MSC_VI_NDVI, x, T, C, HW, &b, out, valid), "offset");
  for (int i = 0; i < T * HW; ++i) ck_assert(out[i] == -5.f && valid[i] == 9);
  /* An absent band an index does not use is fine. */
  b = pub_bands(), b.b2 = -1, b.b12 = -1;
  ck_assert_int_eq(msc_vegetation_index(MSC_VI_NDVI, x, T, C, HW, &b, out, valid), MSC_OK);
  free(x);
}
END_TEST

static const int64_t PIX[] = {0, 3, 1, 1, 2, 4, 3, 0, 1, 4, 0, 0};
enum { N = 6 };

static msc_rp_params pub_params(const int32_t *idx, int32_t k) {
  msc_rp_params p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.n_indices = k;
  p.indices = idx;
  return p;
}

/* The public call and the internal one with the same configuration: bitwise equal. */
static void rp_compare(const float *x, const msc_vi_bands *pb, const msci_vi_bands *ib,
                       const msc_rp_params *p) {
  msci_rp_cfg cfg = msci_rp_cfg_default();
  cfg.channels = p->n_indices;
  for (int k = 0; k < p->n_indices; ++k) cfg.index[k] = p->indices[k];
  cfg.binary = p->binary, cfg.eps_is_percentile = p->eps_is_percentile, cfg.eps = p->eps;
  cfg.size = p->size, cfg.days = p->days;
  const int64_t s = p->size ? p->size : T;
  const size_t nout = (size_t)(N * p->n_indices * s * s);
  float *out = malloc(nout * sizeof(float)), *ref = malloc(nout * sizeof(float));
  uint8_t valid[N * MSC_VI_COUNT], vref[N * MSC_VI_COUNT];
  ck_assert_int_eq(msc_recurrence_plots(x, T, C, H, W, pb, p, PIX, N, out, valid), MSC_OK);
  ck_assert_int_eq(msci_rp_pixels(x, T, C, H, W, ib, &cfg, PIX, N, ref, vref, NULL, 0), MSC_OK);
  ck_assert(same_bits(out, ref, nout));
  ck_assert(memcmp(valid, vref, (size_t)(N * p->n_indices)) == 0);
  /* valid may be NULL */
  ck_assert_int_eq(msc_recurrence_plots(x, T, C, H, W, pb, p, PIX, N, out, NULL), MSC_OK);
  ck_assert(same_bits(out, ref, nout));
  free(out);
  free(ref);
}

START_TEST(rp_matches_internal) {
  float *x = make_series();
  msci_vi_bands pastis = msci_vi_bands_pastis();
  msc_vi_bands pb = pub_bands();
  msci_vi_bands ib = {
      .b2 = 4, .b3 = 3, .b4 = 0, .b8 = 1, .b12 = 2, .scale = 2e4, .offset = -1000};
  const int32_t three[] = {MSC_VI_NDVI, MSC_VI_EVI, MSC_VI_SAVI};
  const int32_t all[] = {MSC_VI_NBR, MSC_VI_NDWI, MSC_VI_SAVI, MSC_VI_EVI, MSC_VI_NDVI};
  const double days[T] = {1, 5, 6, 30, 31, 90, 200};
  msc_rp_params p = pub_params(three, 3);
  rp_compare(x, NULL, &pastis, &p);
  p.size = 4;
  rp_compare(x, &pb, &ib, &p);
  p = pub_params(all, 5);
  p.binary = 1, p.eps = 0.05;
  rp_compare(x, NULL, &pastis, &p);
  p.eps_is_percentile = 1, p.eps = 40, p.size = 11, p.days = days;
  rp_compare(x, &pb, &ib, &p);
  /* Pixel 9 = (1, 4) never has a finite NDVI: valid 0, zeros. */
  p = pub_params(three, 1);
  float out[N * T * T];
  uint8_t valid[N];
  ck_assert_int_eq(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), MSC_OK);
  ck_assert_int_eq(valid[4], 0);
  ck_assert_int_eq(valid[0], 1);
  for (int i = 0; i < T * T; ++i) ck_assert(out[4 * T * T + i] == 0.f);
  free(x);
}
END_TEST

START_TEST(rp_errors) {
  float *x = make_series();
  const int32_t three[] = {MSC_VI_NDVI, MSC_VI_EVI, MSC_VI_SAVI};
  const int32_t bad[] = {MSC_VI_NDVI, 9};
  const double days[T] = {1, 5, 5, 30, 31, 90, 200};
  float out[N * 3 * T * T];
  uint8_t valid[N * 3];
  for (size_t i = 0; i < sizeof out / sizeof *out; ++i) out[i] = -5.f;
  memset(valid, 9, sizeof valid);
  msc_rp_params p = pub_params(three, 3);
  msc_vi_bands b = pub_bands();
  const int64_t outside[] = {0, 0, 4, 1};
#define RP_FAILS(call, needle)                                                                 \
  do {                                                                                         \
    ck_assert_int_eq((call), MSC_E_INVALID_ARGUMENT);                                          \
    ck_assert_msg(strstr(msc_last_error(), (needle)) != NULL, "message '%s' lacks '%s'",       \
                  msc_last_error(), (needle));                                                 \
  } while (0)
  RP_FAILS(msc_recurrence_plots(NULL, T, C, H, W, NULL, &p, PIX, N, out, valid), "x is NULL");
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, NULL, PIX, N, out, valid), "params");
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, NULL, valid), "out is NULL");
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, NULL, N, out, valid), "yx is NULL");
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, -1, out, valid), "n is");
  RP_FAILS(msc_recurrence_plots(x, 0, C, H, W, NULL, &p, PIX, N, out, valid), "dates");
  RP_FAILS(msc_recurrence_plots(x, T, C, 0, W, NULL, &p, PIX, N, out, valid), "shape");
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, outside, 2, out, valid), "outside");
  RP_FAILS(msc_recurrence_plots(x, T, 6, H, W, NULL, &p, PIX, N, out, valid), "channel");
  b.struct_size = 4;
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, &b, &p, PIX, N, out, valid), "struct_size");
  p.struct_size = sizeof p - 8;
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), "struct_size");
  p = pub_params(three, 0);
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), "n_indices");
  p = pub_params(three, MSC_VI_COUNT + 1);
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), "n_indices");
  p = pub_params(NULL, 3);
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), "indices");
  p = pub_params(bad, 2);
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), "unknown index");
  p = pub_params(three, 3), p.binary = 2;
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), "binary");
  p = pub_params(three, 3), p.binary = 1, p.eps_is_percentile = 3;
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid),
           "eps_is_percentile");
  p = pub_params(three, 3), p.binary = 1, p.eps = -1;
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), "eps");
  p = pub_params(three, 3), p.binary = 1, p.eps_is_percentile = 1, p.eps = 100.5;
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), "eps");
  p = pub_params(three, 3), p.size = -1;
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), "size");
  p = pub_params(three, 3), p.days = days;
  RP_FAILS(msc_recurrence_plots(x, T, C, H, W, NULL, &p, PIX, N, out, valid), "days");
  for (size_t i = 0; i < sizeof out / sizeof *out; ++i) ck_assert(out[i] == -5.f);
  for (size_t i = 0; i < sizeof valid; ++i) ck_assert(valid[i] == 9);
  /* n = 0 with yx NULL is fine and writes nothing. */
  p = pub_params(three, 3);
  ck_assert_int_eq(msc_recurrence_plots(x, T, C, H, W, NULL, &p, NULL, 0, out, valid), MSC_OK);
  ck_assert(out[0] == -5.f);
  free(x);
}
END_TEST

int main(void) {
  Suite *s = suite_create("sits_api");
  TCase *tc = tcase_create("public");
  tcase_add_test(tc, vi_matches_internal);
  tcase_add_test(tc, vi_errors);
  tcase_add_test(tc, rp_matches_internal);
  tcase_add_test(tc, rp_errors);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
