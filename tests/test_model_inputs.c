/*
 * test_model_inputs.c — the model's input description (docs/model.md, "Inputs"): the keys
 * modality.#.band_names, .scale and .offset through msc_model_band_name and
 * msc_model_band_info, their round trip through a model file, their validation on create
 * and on load (a file edited to repeat a band name), and a model without them (no key
 * stored, band names NULL, scale 1 and offset 0).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mosaic/mosaic.h"

static msc_options *base_opts(void) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "modality.count", 1), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "s2"), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "modality.0.bands", 3), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "modality.0.size", 8), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", "tiny"), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "classes", 2), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "backend", "cpu"), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "lambda.inter", 0.0), MSC_OK);
  return o;
}

/* Red, green, blue of Sentinel-2 baseline 04.00 digital numbers: reflectance =
 * (DN - 1000) / 10000 = DN * 1e-4 - 0.1. */
static void set_inputs(msc_options *o) {
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.band_names", "B04,B03,B02"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.scale", "0.0001,0.0001,0.0001"),
                   MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.offset", "-0.1,-0.1,-0.1"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.mean", "1500,1600,1700"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.std", "300,400,500"), MSC_OK);
}

static void check_inputs(const msc_model *m) {
  static const char *const names[3] = {"B04", "B03", "B02"};
  for (int b = 0; b < 3; ++b) {
    ck_assert_str_eq(msc_model_band_name(m, 0, b), names[b]);
    double scale = 0, offset = 0, mean = 0, sd = 0;
    ck_assert_int_eq(msc_model_band_info(m, 0, b, &scale, &offset, &mean, &sd), MSC_OK);
    ck_assert_double_eq_tol(scale, 1e-4, 1e-11);
    ck_assert_double_eq_tol(offset, -0.1, 1e-8);
    ck_assert_double_eq_tol(mean, 1500 + 100 * b, 1e-3);
    ck_assert_double_eq_tol(sd, 300 + 100 * b, 1e-3);
    /* DN 2500 is reflectance 0.15 under this convention. */
    ck_assert_double_eq_tol(2500 * scale + offset, 0.15, 1e-6);
  }
  ck_assert_ptr_null(msc_model_band_name(m, 0, 3));
  ck_assert_ptr_null(msc_model_band_name(m, 1, 0));
  ck_assert_ptr_null(msc_model_band_name(m, 0, -1));
  ck_assert_ptr_null(msc_model_band_name(NULL, 0, 0));
  double v[4] = {7, 7, 7, 7};
  ck_assert_int_eq(msc_model_band_info(m, 0, 3, &v[0], &v[1], &v[2], &v[3]), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_model_band_info(m, 1, 0, &v[0], &v[1], &v[2], &v[3]), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_model_band_info(m, 0, 0, NULL, &v[1], &v[2], &v[3]),
                   MSC_E_INVALID_ARGUMENT);
  for (int k = 0; k < 4; ++k) ck_assert(v[k] == 7); /* untouched on error */
}

START_TEST(test_round_trip) {
  msc_options *o = base_opts();
  set_inputs(o);
  msc_model *m = NULL;
  ck_assert_msg(msc_model_create(o, &m) == MSC_OK, "%s", msc_last_error());
  check_inputs(m);
  char path[256];
  snprintf(path, sizeof path, "/tmp/msc_inputs_%d.safetensors", (int)getpid());
  ck_assert_int_eq(msc_model_save(m, path), MSC_OK);
  msc_model_free(m);
  m = NULL;
  ck_assert_msg(msc_model_load(path, NULL, &m) == MSC_OK, "%s", msc_last_error());
  check_inputs(m);
  msc_options *cfg = NULL;
  ck_assert_int_eq(msc_model_options(m, &cfg), MSC_OK);
  char buf[64];
  ck_assert_int_eq(msc_options_get_string(cfg, "modality.0.band_names", buf, sizeof buf, NULL),
                   MSC_OK);
  ck_assert_str_eq(buf, "B04,B03,B02");
  ck_assert_int_eq(msc_options_get_string(cfg, "modality.0.scale", buf, sizeof buf, NULL),
                   MSC_OK);
  ck_assert_str_eq(buf, "0.0001,0.0001,0.0001");
  msc_options_free(cfg);
  msc_model_free(m);

  /* A file whose band names were edited to repeat one (same length, so the header stays
   * valid) is refused on load. */
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *bytes = malloc((size_t)n);
  ck_assert_int_eq(fread(bytes, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  char *at = NULL;
  for (long i = 0; i + 11 <= n && !at; ++i)
    if (memcmp(bytes + i, "B04,B03,B02", 11) == 0) at = bytes + i;
  ck_assert_ptr_nonnull(at);
  memcpy(at, "B04,B03,B03", 11);
  f = fopen(path, "wb");
  ck_assert_int_eq(fwrite(bytes, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  free(bytes);
  m = NULL;
  ck_assert_int_eq(msc_model_load(path, NULL, &m), MSC_E_BAD_FORMAT);
  ck_assert_ptr_null(m);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "band_names"));
  unlink(path);
  msc_options_free(o);
}
END_TEST

START_TEST(test_without_keys) {
  msc_options *o = base_opts();
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  ck_assert_ptr_null(msc_model_band_name(m, 0, 0));
  double scale = 0, offset = 7, mean = 7, sd = 0;
  ck_assert_int_eq(msc_model_band_info(m, 0, 2, &scale, &offset, &mean, &sd), MSC_OK);
  ck_assert(scale == 1 && offset == 0 && mean == 0 && sd == 1);
  /* Nothing new is stored: the file's configuration is what it was before 0.4.0. */
  msc_options *cfg = NULL;
  ck_assert_int_eq(msc_model_options(m, &cfg), MSC_OK);
  static const char *const keys[3] = {"modality.0.band_names", "modality.0.scale",
                                      "modality.0.offset"};
  for (int k = 0; k < 3; ++k) {
    int32_t set = 1;
    ck_assert_int_eq(msc_options_is_set(cfg, keys[k], &set), MSC_OK);
    ck_assert_int_eq(set, 0);
  }
  msc_options_free(cfg);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* Each bad value is refused by msc_model_create with a message naming the key. */
START_TEST(test_invalid) {
  static const char *const bad[][2] = {
      {"modality.0.band_names", "B04,B03"},    {"modality.0.band_names", "B04,B03,B04"},
      {"modality.0.band_names", "B04,,B02"},   {"modality.0.scale", "1,1"},
      {"modality.0.scale", "0.0001,0,0.0001"}, {"modality.0.offset", "0,0,0,0"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    msc_options *o = base_opts();
    ck_assert_int_eq(msc_options_set_string(o, bad[i][0], bad[i][1]), MSC_OK);
    msc_model *m = NULL;
    ck_assert_int_eq(msc_model_create(o, &m), MSC_E_INVALID_ARGUMENT);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(msc_last_error(), bad[i][0] + 11) != NULL, "%s: %s", bad[i][1],
                  msc_last_error());
    msc_options_free(o);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("model_inputs");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_round_trip);
  tcase_add_test(tc, test_without_keys);
  tcase_add_test(tc, test_invalid);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
