/*
 * test_options.c — the msc_options handle: schema, defaults, setters and getters,
 * index patterns, the string size protocol, JSON in and out, the cross-key checks of
 * a model configuration, the list parsers, float lists (msc_options_set_floats),
 * msc_options_from_dataset and msc_options_copy.
 *
 * Every expected value is written out by hand from the documentation (mosaic.h,
 * options.h, docs/data.md), never computed by the code under test.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"
#include "options/options.h"

static msc_options *new_opts(void) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_ptr_nonnull(o);
  return o;
}

static int64_t geti(const msc_options *o, const char *key) {
  int64_t v = -12345;
  msc_status rc = msc_options_get_int(o, key, &v);
  ck_assert_msg(rc == MSC_OK, "get_int %s: %d %s", key, (int)rc, msc_last_error());
  return v;
}

static double getf(const msc_options *o, const char *key) {
  double v = -12345.0;
  msc_status rc = msc_options_get_float(o, key, &v);
  ck_assert_msg(rc == MSC_OK, "get_float %s: %d %s", key, (int)rc, msc_last_error());
  return v;
}

/* Returns a static copy of the string value (tests only read short values). */
static const char *gets_(const msc_options *o, const char *key) {
  static char buf[4096];
  size_t len = 0;
  msc_status rc = msc_options_get_string(o, key, buf, sizeof buf, &len);
  ck_assert_msg(rc == MSC_OK, "get_string %s: %d %s", key, (int)rc, msc_last_error());
  ck_assert_uint_eq(len, strlen(buf));
  return buf;
}

static int32_t is_set(const msc_options *o, const char *key) {
  int32_t v = -1;
  ck_assert_int_eq(msc_options_is_set(o, key, &v), MSC_OK);
  ck_assert(v == 0 || v == 1);
  return v;
}

static void assert_error_contains(const char *needle) {
  const char *e = msc_last_error();
  ck_assert_msg(strstr(e, needle) != NULL, "msc_last_error() = \"%s\" lacks \"%s\"", e, needle);
}

/* The set keys as JSON (through the public protocol). */
static char *to_json(const msc_options *o) {
  size_t len = 0;
  ck_assert_int_eq(msc_options_to_json(o, NULL, 0, &len), MSC_E_BUFFER_TOO_SMALL);
  char *buf = malloc(len + 1);
  ck_assert_ptr_nonnull(buf);
  size_t len2 = 0;
  ck_assert_int_eq(msc_options_to_json(o, buf, len + 1, &len2), MSC_OK);
  ck_assert_uint_eq(len2, len);
  ck_assert_uint_eq(strlen(buf), len);
  return buf;
}

/* ------------------------------------------------------------------------------ */
/* Defaults                                                                        */
/* ------------------------------------------------------------------------------ */

START_TEST(defaults_plain) {
  msc_options *o = new_opts();
  ck_assert_str_eq(gets_(o, "backend"), "auto");
  ck_assert_int_eq(geti(o, "threads"), 0);
  ck_assert_int_eq(geti(o, "seed"), 42);
  ck_assert_int_eq(geti(o, "modality.count"), 2);
  ck_assert_str_eq(gets_(o, "modality.0.name"), "s1");
  ck_assert_str_eq(gets_(o, "modality.1.name"), "s2");
  ck_assert_str_eq(gets_(o, "modality.2.name"), "m2");
  ck_assert_str_eq(gets_(o, "modality.7.name"), "m7");
  ck_assert_int_eq(geti(o, "modality.0.bands"), 2);
  ck_assert_int_eq(geti(o, "modality.1.bands"), 12);
  ck_assert_int_eq(geti(o, "modality.4.bands"), 3);
  ck_assert_int_eq(geti(o, "modality.3.size"), 120);
  ck_assert_str_eq(gets_(o, "modality.0.encoder"), "resnet18");
  ck_assert_str_eq(gets_(o, "modality.0.mean"), "");
  ck_assert_str_eq(gets_(o, "modality.1.std"), "");
  ck_assert_int_eq(geti(o, "modality.0.stem_width"), 64);
  ck_assert_int_eq(geti(o, "modality.0.stem_kernel"), 7);
  ck_assert_int_eq(geti(o, "modality.0.stem_stride"), 2);
  ck_assert_int_eq(geti(o, "modality.0.maxpool"), 1);
  ck_assert_str_eq(gets_(o, "modality.0.block"), "basic");
  ck_assert_str_eq(gets_(o, "modality.0.widths"), "64,128,256,512");
  ck_assert_str_eq(gets_(o, "modality.0.depths"), "2,2,2,2");
  ck_assert_int_eq(geti(o, "classes"), 19);
  ck_assert_int_eq(geti(o, "proj.hidden"), 0);
  ck_assert_int_eq(geti(o, "proj.dim"), 128);
  ck_assert_int_eq(geti(o, "proj.bn"), 0);
  ck_assert_int_eq(geti(o, "fused.hidden"), 0);
  ck_assert(getf(o, "bn.momentum") == 0.1);
  ck_assert(getf(o, "bn.eps") == 1e-5);
  ck_assert_int_eq(is_set(o, "classes"), 0);
  ck_assert_int_eq(is_set(o, "modality.0.name"), 0);
  msc_options_free(o);
}
END_TEST

START_TEST(defaults_class_names_bigearthnet) {
  msc_options *o = new_opts();
  char *names = NULL;
  ck_assert_int_eq(msci_options_get_string_alloc(o, "class_names", &names), MSC_OK);
  char **items = NULL;
  int32_t n = 0;
  ck_assert_int_eq(msci_split_names(names, &items, &n), MSC_OK);
  ck_assert_int_eq(n, 19);
  ck_assert_str_eq(items[0], "Urban fabric");
  ck_assert_str_eq(items[1], "Industrial or commercial units");
  ck_assert_str_eq(items[2], "Arable land");
  ck_assert_str_eq(items[6], "Land principally occupied by agriculture, with significant "
                             "areas of natural vegetation");
  ck_assert_str_eq(items[13], "Transitional woodland, shrub");
  ck_assert_str_eq(items[18], "Marine waters");
  free(items);
  free(names);
  msc_options_free(o);
}
END_TEST

START_TEST(defaults_computed_from_other_keys) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_int(o, "classes", 3), MSC_OK);
  ck_assert_str_eq(gets_(o, "class_names"), "class0;class1;class2");
  ck_assert_int_eq(msc_options_set_int(o, "classes", 1), MSC_OK);
  ck_assert_str_eq(gets_(o, "class_names"), "class0");
  ck_assert_int_eq(msc_options_set_int(o, "classes", 19), MSC_OK);
  ck_assert(strncmp(gets_(o, "class_names"), "Urban fabric;Industrial", 23) == 0);

  /* the encoder preset decides the architecture keys not set explicitly */
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.encoder", "tiny"), MSC_OK);
  ck_assert_int_eq(geti(o, "modality.1.stem_width"), 8);
  ck_assert_int_eq(geti(o, "modality.1.stem_kernel"), 3);
  ck_assert_int_eq(geti(o, "modality.1.stem_stride"), 1);
  ck_assert_int_eq(geti(o, "modality.1.maxpool"), 0);
  ck_assert_str_eq(gets_(o, "modality.1.block"), "basic");
  ck_assert_str_eq(gets_(o, "modality.1.widths"), "8,16");
  ck_assert_str_eq(gets_(o, "modality.1.depths"), "1,1");
  ck_assert_int_eq(geti(o, "modality.0.stem_width"), 64); /* modality 0 untouched */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", "resnet50"), MSC_OK);
  ck_assert_str_eq(gets_(o, "modality.0.block"), "bottleneck");
  ck_assert_str_eq(gets_(o, "modality.0.depths"), "3,4,6,3");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", "resnet34"), MSC_OK);
  ck_assert_str_eq(gets_(o, "modality.0.block"), "basic");
  ck_assert_str_eq(gets_(o, "modality.0.depths"), "3,4,6,3");
  /* an explicit value wins over the preset */
  ck_assert_int_eq(msc_options_set_int(o, "modality.1.stem_width", 32), MSC_OK);
  ck_assert_int_eq(geti(o, "modality.1.stem_width"), 32);
  msc_options_free(o);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Setters and getters                                                             */
/* ------------------------------------------------------------------------------ */

START_TEST(set_get_every_type) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_int(o, "classes", 10), MSC_OK);
  ck_assert_int_eq(geti(o, "classes"), 10);
  ck_assert_int_eq(is_set(o, "classes"), 1);
  ck_assert_int_eq(msc_options_set_int(o, "classes", 4096), MSC_OK);
  ck_assert_int_eq(geti(o, "classes"), 4096);
  ck_assert_int_eq(msc_options_set_int(o, "seed", INT64_MAX), MSC_OK);
  ck_assert(geti(o, "seed") == INT64_MAX);

  ck_assert_int_eq(msc_options_set_float(o, "bn.momentum", 0.25), MSC_OK);
  ck_assert(getf(o, "bn.momentum") == 0.25);
  ck_assert_int_eq(is_set(o, "bn.momentum"), 1);
  ck_assert_int_eq(msc_options_set_float(o, "bn.eps", 1e-3), MSC_OK);
  ck_assert(getf(o, "bn.eps") == 1e-3);

  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "sar"), MSC_OK);
  ck_assert_str_eq(gets_(o, "modality.0.name"), "sar");
  ck_assert_str_eq(gets_(o, "modality.1.name"), "s2");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "sar_vv_vh"), MSC_OK);
  ck_assert_str_eq(gets_(o, "modality.0.name"), "sar_vv_vh");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.mean", "-12.62, -19.29"), MSC_OK);
  ck_assert_str_eq(gets_(o, "modality.0.mean"), "-12.62, -19.29");

  /* the string is copied */
  char value[8] = "cpu";
  ck_assert_int_eq(msc_options_set_string(o, "backend", value), MSC_OK);
  strcpy(value, "xyz");
  ck_assert_str_eq(gets_(o, "backend"), "cpu");
  msc_options_free(o);
}
END_TEST

START_TEST(int_accepted_for_float) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_int(o, "bn.momentum", 1), MSC_OK);
  ck_assert(getf(o, "bn.momentum") == 1.0);
  ck_assert_int_eq(msc_options_set_int(o, "bn.momentum", 2), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("bn.momentum");
  ck_assert(getf(o, "bn.momentum") == 1.0);
  msc_options_free(o);
}
END_TEST

START_TEST(wrong_type_refused) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_int(o, "classes", 7), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "classes", 5.0), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("'classes'");
  ck_assert_int_eq(msc_options_set_string(o, "classes", "5"), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("'classes'");
  ck_assert_int_eq(geti(o, "classes"), 7);
  ck_assert_int_eq(msc_options_set_int(o, "backend", 1), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("'backend'");
  ck_assert_int_eq(msc_options_set_float(o, "backend", 1.0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "bn.eps", "0.1"), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("'bn.eps'");
  ck_assert_int_eq(is_set(o, "backend"), 0);
  ck_assert_int_eq(is_set(o, "bn.eps"), 0);

  /* getters are strict: no int from a float key, no float from an int key */
  int64_t i = 99;
  double f = 99.0;
  char buf[16] = "untouched";
  size_t len = 77;
  ck_assert_int_eq(msc_options_get_int(o, "bn.eps", &i), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_float(o, "classes", &f), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_string(o, "classes", buf, sizeof buf, &len),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_int(o, "backend", &i), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(i, 99);
  ck_assert(f == 99.0);
  ck_assert_str_eq(buf, "untouched");
  ck_assert_uint_eq(len, 77);
  msc_options_free(o);
}
END_TEST

START_TEST(unknown_key_not_found) {
  msc_options *o = new_opts();
  int64_t i = 5;
  double f = 5.0;
  int32_t s = 5;
  char buf[8];
  msc_clear_error();
  ck_assert_int_eq(msc_options_set_int(o, "no.such.key", 1), MSC_E_NOT_FOUND);
  assert_error_contains("no.such.key");
  ck_assert_int_eq(msc_options_set_float(o, "learning_rat", 1.0), MSC_E_NOT_FOUND);
  assert_error_contains("learning_rat");
  ck_assert_int_eq(msc_options_set_string(o, "Backend", "cpu"), MSC_E_NOT_FOUND);
  assert_error_contains("Backend");
  ck_assert_int_eq(msc_options_get_int(o, "classes2", &i), MSC_E_NOT_FOUND);
  assert_error_contains("classes2");
  ck_assert_int_eq(msc_options_get_float(o, "bn", &f), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_get_string(o, "", buf, sizeof buf, NULL), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_is_set(o, "modality", &s), MSC_E_NOT_FOUND);
  assert_error_contains("modality");
  ck_assert_int_eq(i, 5);
  ck_assert(f == 5.0);
  ck_assert_int_eq(s, 5);
  /* prefixes and extensions of real keys are not keys */
  ck_assert_int_eq(msc_options_set_int(o, "classe", 1), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_int(o, "classes.", 1), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_int(o, " classes", 1), MSC_E_NOT_FOUND);
  /* "did you mean": the key at Damerau-Levenshtein distance <= 2 (and <= half the typed
   * length), '#' read as the typed modality index; none for a word far from every key */
  ck_assert_str_eq(msc_last_error(), "unknown option ' classes'; did you mean 'classes'?");
  ck_assert_int_eq(msc_options_set_float(o, "optim.rl", 0.1), MSC_E_NOT_FOUND);
  ck_assert_str_eq(msc_last_error(), "unknown option 'optim.rl'; did you mean 'optim.lr'?");
  ck_assert_int_eq(msc_options_set_string(o, "modality.3.encodr", "tiny"), MSC_E_NOT_FOUND);
  ck_assert_str_eq(msc_last_error(),
                   "unknown option 'modality.3.encodr'; did you mean 'modality.3.encoder'?");
  ck_assert_int_eq(msc_options_set_int(o, "no.such.key", 1), MSC_E_NOT_FOUND);
  ck_assert_str_eq(msc_last_error(), "unknown option 'no.such.key'");
  char *json = to_json(o);
  ck_assert_str_eq(json, "{}");
  free(json);
  msc_options_free(o);
}
END_TEST

START_TEST(out_of_range_ints) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_int(o, "modality.1.bands", 5), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "modality.1.bands", 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(), "option 'modality.1.bands': 0 is out of range 1..64");
  ck_assert_int_eq(msc_options_set_int(o, "modality.1.bands", 65), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(), "option 'modality.1.bands': 65 is out of range 1..64");
  ck_assert_int_eq(geti(o, "modality.1.bands"), 5);
  ck_assert_int_eq(msc_options_set_int(o, "modality.1.bands", 64), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "modality.1.bands", 1), MSC_OK);

  ck_assert_int_eq(msc_options_set_int(o, "modality.count", 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "modality.count", 9), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "modality.count", 8), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "classes", 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "classes", 4097), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "seed", -1), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'seed': -1 is out of range 0..9223372036854775807");
  ck_assert_int_eq(msc_options_set_int(o, "threads", -1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "modality.0.size", 7), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "modality.0.maxpool", 2), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "proj.bn", -1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "proj.dim", 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "modality.0.size", INT64_MIN),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(is_set(o, "classes"), 0);
  ck_assert_int_eq(is_set(o, "seed"), 0);
  msc_options_free(o);
}
END_TEST

START_TEST(out_of_range_floats) {
  msc_options *o = new_opts();
  /* bn.momentum is in (0, 1] */
  ck_assert_int_eq(msc_options_set_float(o, "bn.momentum", 0.0), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(), "option 'bn.momentum': 0 is out of range (0, 1]");
  ck_assert_int_eq(msc_options_set_float(o, "bn.momentum", 1.5), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(), "option 'bn.momentum': 1.5 is out of range (0, 1]");
  ck_assert_int_eq(msc_options_set_float(o, "bn.momentum", -0.1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, "bn.momentum", NAN), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, "bn.momentum", INFINITY), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "bn.momentum", 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(is_set(o, "bn.momentum"), 0);
  ck_assert_int_eq(msc_options_set_float(o, "bn.momentum", 1.0), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "bn.momentum", 1e-9), MSC_OK);
  ck_assert(getf(o, "bn.momentum") == 1e-9);
  msc_options_free(o);
}
END_TEST

START_TEST(string_rules) {
  msc_options *o = new_opts();
  /* one of a list */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", "resnet101"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'modality.0.encoder': 'resnet101' is not one of resnet18, "
                   "resnet34, resnet50, tiny, convnextv2_atto, convnextv2_femto, "
                   "convnextv2_pico, convnextv2_nano, convnextv2_tiny; did you mean "
                   "'resnet18'?");
  /* a swap of two neighbours is one edit */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", "resnet81"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'modality.0.encoder': 'resnet81' is not one of resnet18, "
                   "resnet34, resnet50, tiny, convnextv2_atto, convnextv2_femto, "
                   "convnextv2_pico, convnextv2_nano, convnextv2_tiny; did you mean "
                   "'resnet18'?");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", "vgg16"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'modality.0.encoder': 'vgg16' is not one of resnet18, "
                   "resnet34, resnet50, tiny, convnextv2_atto, convnextv2_femto, "
                   "convnextv2_pico, convnextv2_nano, convnextv2_tiny");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", "resnet1"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", ""), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.block", "Basic"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.block", "bottleneck"), MSC_OK);

  /* names: [a-z0-9_]+, at most 31 characters */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "S1"), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("modality.0.name");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", ""), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "s-1"), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(
      msc_options_set_string(o, "modality.0.name", "abcdefghijklmnopqrstuvwxyz_01234"), /* 32 */
      MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(
      msc_options_set_string(o, "modality.0.name", "abcdefghijklmnopqrstuvwxyz_0123"), /* 31 */
      MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "backend", "Cuda"), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "backend", "my_module2"), MSC_OK);

  /* positive integer lists */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.widths", "32,64"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.widths", "32,0"),
                   MSC_E_INVALID_ARGUMENT);
  assert_error_contains("modality.0.widths");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.widths", ""), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.widths", "32,,64"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.widths", "32,x"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.widths", "32.5"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.depths", "-1"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(gets_(o, "modality.0.widths"), "32,64");

  /* number lists */
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.mean", "1.5,-2e3,0"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.mean", ""), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.mean", "1,x"), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.mean", "1,nan"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.mean", "inf"), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.std", "5.116,5.464"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.std", "1,0"), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("modality.1.std");
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.std", "1,-2"), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(gets_(o, "modality.1.std"), "5.116,5.464");

  /* class names */
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "a;;b"), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("class_names");
  ck_assert_int_eq(msc_options_set_string(o, "class_names", ""), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "a;b\tc"), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "Forest, mixed;Water;Caf\xc3\xa9"),
                   MSC_OK);
  /* every string must be valid UTF-8 */
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "a;b\xff"), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("UTF-8");
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "a;\xc0\xaf"), /* overlong */
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "\xed\xa0\x80"), /* surrogate */
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "a;\xe2\x82"), /* cut short */
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(gets_(o, "class_names"), "Forest, mixed;Water;Caf\xc3\xa9");
  msc_options_free(o);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Index patterns                                                                  */
/* ------------------------------------------------------------------------------ */

START_TEST(index_patterns) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_int(o, "modality.7.bands", 4), MSC_OK);
  ck_assert_int_eq(geti(o, "modality.7.bands"), 4);
  ck_assert_int_eq(msc_options_set_int(o, "modality.0.bands", 6), MSC_OK);
  ck_assert_int_eq(geti(o, "modality.0.bands"), 6);
  ck_assert_int_eq(geti(o, "modality.1.bands"), 12);
  ck_assert_int_eq(msc_options_set_int(o, "modality.8.bands", 4), MSC_E_NOT_FOUND);
  assert_error_contains("modality.8.bands");
  ck_assert_int_eq(msc_options_set_int(o, "modality.x.bands", 4), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_int(o, "modality.01.bands", 4), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_int(o, "modality.00.bands", 4), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_int(o, "modality.10.bands", 4), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_int(o, "modality.-1.bands", 4), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_int(o, "modality..bands", 4), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_int(o, "modality.#.bands", 4), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_int(o, "modality.1 .bands", 4), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_int(o, "modality.99999999999.bands", 4), MSC_E_NOT_FOUND);
  int64_t v = 0;
  ck_assert_int_eq(msc_options_get_int(o, "modality.8.bands", &v), MSC_E_NOT_FOUND);
  char *json = to_json(o);
  ck_assert_str_eq(json, "{\"modality.0.bands\":6,\"modality.7.bands\":4}");
  free(json);
  msc_options_free(o);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* String size protocol                                                            */
/* ------------------------------------------------------------------------------ */

START_TEST(string_size_protocol) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "optical"), MSC_OK);
  size_t len = 0;
  ck_assert_int_eq(msc_options_get_string(o, "modality.0.name", NULL, 0, &len),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_uint_eq(len, 7);

  char buf[16];
  memset(buf, 'Z', sizeof buf);
  len = 0;
  ck_assert_int_eq(msc_options_get_string(o, "modality.0.name", buf, 4, &len),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_uint_eq(len, 7);
  ck_assert_str_eq(buf, "opt");
  ck_assert_int_eq(buf[4], 'Z');

  /* cap == length: no room for the NUL */
  ck_assert_int_eq(msc_options_get_string(o, "modality.0.name", buf, 7, &len),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_str_eq(buf, "optica");
  ck_assert_int_eq(msc_options_get_string(o, "modality.0.name", buf, 8, &len), MSC_OK);
  ck_assert_str_eq(buf, "optical");
  ck_assert_uint_eq(len, 7);
  /* len may be NULL */
  ck_assert_int_eq(msc_options_get_string(o, "modality.0.name", buf, sizeof buf, NULL), MSC_OK);
  ck_assert_str_eq(buf, "optical");
  /* cap 1: only the NUL */
  ck_assert_int_eq(msc_options_get_string(o, "modality.0.name", buf, 1, &len),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_str_eq(buf, "");
  /* defaults follow the same protocol */
  ck_assert_int_eq(msc_options_get_string(o, "modality.1.name", NULL, 0, &len),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_uint_eq(len, 2);
  ck_assert_int_eq(msc_options_get_string(o, "modality.1.mean", NULL, 0, &len),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(msc_options_get_string(o, "modality.1.mean", buf, 1, &len), MSC_OK);
  ck_assert_str_eq(buf, "");
  /* buf NULL with cap > 0 */
  ck_assert_int_eq(msc_options_get_string(o, "modality.0.name", NULL, 4, &len),
                   MSC_E_INVALID_ARGUMENT);

  /* to_json has the same protocol */
  ck_assert_int_eq(msc_options_to_json(o, NULL, 0, &len), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_uint_eq(len, strlen("{\"modality.0.name\":\"optical\"}"));
  ck_assert_int_eq(msc_options_to_json(o, buf, 6, &len), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_str_eq(buf, "{\"mod");
  ck_assert_int_eq(msc_options_to_json(o, NULL, 4, &len), MSC_E_INVALID_ARGUMENT);
  char big[64];
  ck_assert_int_eq(msc_options_to_json(o, big, sizeof big, NULL), MSC_OK);
  ck_assert_str_eq(big, "{\"modality.0.name\":\"optical\"}");
  msc_options_free(o);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* JSON in                                                                         */
/* ------------------------------------------------------------------------------ */

START_TEST(json_flat_and_nested) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_from_json(o, "{\"classes\": 5, \"proj\": {\"dim\": 64, "
                                            "\"bn\": true}, \"bn\": {\"momentum\": 0.5, "
                                            "\"eps\": 1}, \"backend\": \"cpu\"}"),
                   MSC_OK);
  ck_assert_int_eq(geti(o, "classes"), 5);
  ck_assert_int_eq(geti(o, "proj.dim"), 64);
  ck_assert_int_eq(geti(o, "proj.bn"), 1);
  ck_assert(getf(o, "bn.momentum") == 0.5);
  ck_assert(getf(o, "bn.eps") == 1.0);
  ck_assert_str_eq(gets_(o, "backend"), "cpu");
  ck_assert_int_eq(is_set(o, "proj.hidden"), 0);
  /* dotted keys, deeper nesting, false; earlier values stay */
  ck_assert_int_eq(msc_options_from_json(o, "{\"proj.bn\": false, \"modality\": {\"1\": "
                                            "{\"bands\": 10}}}"),
                   MSC_OK);
  ck_assert_int_eq(geti(o, "proj.bn"), 0);
  ck_assert_int_eq(geti(o, "modality.1.bands"), 10);
  ck_assert_int_eq(geti(o, "classes"), 5);
  ck_assert_int_eq(msc_options_from_json(o, "{}"), MSC_OK);
  ck_assert_int_eq(geti(o, "classes"), 5);
  msc_options_free(o);
}
END_TEST

START_TEST(json_arrays) {
  msc_options *o = new_opts();
  const char *doc =
      "{\"modality\": [{\"name\": \"radar\", \"bands\": 2, \"mean\": [-12.62, -19.29], "
      "\"std\": [5.116, 5.464]},"
      "                {\"name\": \"optical\", \"bands\": 3, \"widths\": [32, 64],"
      "                 \"depths\": [1, 1], \"encoder\": \"tiny\"},"
      "                {\"name\": \"dem\", \"bands\": 1, \"mean\": [0.1]}],"
      " \"classes\": 3,"
      " \"class_names\": [\"Land principally occupied by agriculture, with significant "
      "areas of natural vegetation\", \"Water\", \"Beaches, dunes, sands\"]}";
  ck_assert_int_eq(msc_options_from_json(o, doc), MSC_OK);
  ck_assert_int_eq(geti(o, "modality.count"), 3);
  ck_assert_str_eq(gets_(o, "modality.0.name"), "radar");
  ck_assert_str_eq(gets_(o, "modality.1.name"), "optical");
  ck_assert_str_eq(gets_(o, "modality.2.name"), "dem");
  ck_assert_int_eq(geti(o, "modality.2.bands"), 1);
  ck_assert_str_eq(gets_(o, "modality.0.mean"), "-12.62,-19.29");
  ck_assert_str_eq(gets_(o, "modality.0.std"), "5.116,5.464");
  ck_assert_str_eq(gets_(o, "modality.1.widths"), "32,64");
  ck_assert_str_eq(gets_(o, "modality.1.depths"), "1,1");
  ck_assert_str_eq(gets_(o, "modality.2.mean"), "0.1");
  ck_assert_str_eq(gets_(o, "class_names"),
                   "Land principally occupied by agriculture, with significant areas of "
                   "natural vegetation;Water;Beaches, dunes, sands");
  ck_assert_int_eq(is_set(o, "modality.3.name"), 0);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);

  /* integral reals print as integers; the %.9g form of non-integers */
  ck_assert_int_eq(msc_options_from_json(o, "{\"modality.0.widths\": [16.0, 32]}"), MSC_OK);
  ck_assert_str_eq(gets_(o, "modality.0.widths"), "16,32");
  ck_assert_int_eq(msc_options_from_json(o, "{\"modality.0.mean\": [0.1234567891234, "
                                            "1e-7, 2.5e10]}"),
                   MSC_OK);
  ck_assert_str_eq(gets_(o, "modality.0.mean"), "0.123456789,1e-07,2.5e+10");
  /* an empty array is the empty string */
  ck_assert_int_eq(msc_options_from_json(o, "{\"modality.0.mean\": []}"), MSC_OK);
  ck_assert_str_eq(gets_(o, "modality.0.mean"), "");
  msc_options_free(o);
}
END_TEST

START_TEST(json_errors_leave_handle_unchanged) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_int(o, "classes", 7), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "keep"), MSC_OK);
  char *before = to_json(o);

  /* an unknown key after valid ones: nothing is applied */
  ck_assert_int_eq(msc_options_from_json(o, "{\"classes\": 9, \"modality.0.name\": \"x\", "
                                            "\"no_such\": 1}"),
                   MSC_E_NOT_FOUND);
  assert_error_contains("no_such");
  /* a nested unknown key is named in full */
  ck_assert_int_eq(msc_options_from_json(o, "{\"classes\": 9, \"proj\": {\"dimm\": 3}}"),
                   MSC_E_NOT_FOUND);
  assert_error_contains("proj.dimm");
  /* bad values */
  ck_assert_int_eq(msc_options_from_json(o, "{\"classes\": 9, \"modality\": [{\"bands\": "
                                            "0}]}"),
                   MSC_E_INVALID_ARGUMENT);
  assert_error_contains("modality.0.bands");
  ck_assert_int_eq(msc_options_from_json(o, "{\"classes\": 9.5}"), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("classes");
  ck_assert_int_eq(msc_options_from_json(o, "{\"classes\": \"9\"}"), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_from_json(o, "{\"classes\": null}"), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("classes");
  ck_assert_int_eq(msc_options_from_json(o, "{\"modality.0.mean\": [1, \"a\"]}"),
                   MSC_E_INVALID_ARGUMENT);
  assert_error_contains("modality.0.mean");
  ck_assert_int_eq(msc_options_from_json(o, "{\"modality.0.mean\": [[1], [2]]}"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_from_json(o, "{\"class_names\": [\"a;b\", \"c\"]}"),
                   MSC_E_INVALID_ARGUMENT);
  assert_error_contains("class_names");
  /* 9 modalities: modality.count is out of range */
  ck_assert_int_eq(msc_options_from_json(o, "{\"modality\": [{},{},{},{},{},{},{},{},{}]}"),
                   MSC_E_INVALID_ARGUMENT);
  assert_error_contains("modality.count");
  /* an array of objects needs a <key>.count key */
  ck_assert_int_eq(msc_options_from_json(o, "{\"proj\": [{\"dim\": 3}]}"), MSC_E_NOT_FOUND);
  assert_error_contains("proj.count");
  /* the same key twice through different spellings */
  ck_assert_int_eq(msc_options_from_json(o, "{\"proj\": {\"dim\": 1}, \"proj.dim\": 2}"),
                   MSC_E_INVALID_ARGUMENT);
  assert_error_contains("proj.dim");
  ck_assert_int_eq(msc_options_from_json(o, "{\"modality\": [{}], \"modality.count\": 1}"),
                   MSC_E_INVALID_ARGUMENT);
  assert_error_contains("modality.count");

  char *after = to_json(o);
  ck_assert_str_eq(after, before);
  ck_assert_str_eq(after, "{\"classes\":7,\"modality.0.name\":\"keep\"}");
  free(before);
  free(after);
  msc_options_free(o);
}
END_TEST

START_TEST(json_syntax_errors) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_int(o, "classes", 7), MSC_OK);
  ck_assert_int_eq(msc_options_from_json(o, "{\n  \"classes\": 5,\n  \"seed\": ,\n}"),
                   MSC_E_BAD_FORMAT);
  assert_error_contains("line 3");
  ck_assert_int_eq(msc_options_from_json(o, ""), MSC_E_BAD_FORMAT);
  ck_assert_int_eq(msc_options_from_json(o, "{\"classes\": 5"), MSC_E_BAD_FORMAT);
  ck_assert_int_eq(msc_options_from_json(o, "not json"), MSC_E_BAD_FORMAT);
  ck_assert_int_eq(msc_options_from_json(o, "[1, 2]"), MSC_E_BAD_FORMAT);
  assert_error_contains("object");
  ck_assert_int_eq(msc_options_from_json(o, "{\"classes\": 5} trailing"), MSC_E_BAD_FORMAT);
  /* duplicate keys in one object */
  ck_assert_int_eq(msc_options_from_json(o, "{\"classes\": 5, \"classes\": 6}"),
                   MSC_E_BAD_FORMAT);
  assert_error_contains("duplicate");
  ck_assert_int_eq(geti(o, "classes"), 7);
  msc_options_free(o);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* JSON out                                                                        */
/* ------------------------------------------------------------------------------ */

START_TEST(json_round_trip) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_int(o, "seed", 7), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "bn.momentum", 0.3), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "bn.eps", 1), MSC_OK); /* float from an int */
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.mean", "1.5,-2"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "class_names",
                                          "a \"quoted\" name;back\\slash;Caf\xc3\xa9, bar"),
                   MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "classes", 3), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "backend", "cpu"), MSC_OK);
  char *json = to_json(o);
  ck_assert_str_eq(json,
                   "{\"backend\":\"cpu\",\"bn.eps\":1.0,\"bn.momentum\":0.29999999999999999,"
                   "\"class_names\":\"a \\\"quoted\\\" name;back\\\\slash;Caf\xc3\xa9, bar\","
                   "\"classes\":3,\"modality.1.mean\":\"1.5,-2\",\"seed\":7}");

  msc_options *p = new_opts();
  ck_assert_int_eq(msc_options_from_json(p, json), MSC_OK);
  ck_assert_int_eq(geti(p, "seed"), 7);
  ck_assert(getf(p, "bn.momentum") == 0.3);
  ck_assert(getf(p, "bn.eps") == 1.0);
  ck_assert_str_eq(gets_(p, "modality.1.mean"), "1.5,-2");
  ck_assert_str_eq(gets_(p, "class_names"), "a \"quoted\" name;back\\slash;Caf\xc3\xa9, bar");
  ck_assert_int_eq(geti(p, "classes"), 3);
  ck_assert_int_eq(is_set(p, "modality.0.mean"), 0);
  char *json2 = to_json(p);
  ck_assert_str_eq(json2, json);

  /* the internal malloc'd form is the same text */
  char *json3 = NULL;
  ck_assert_int_eq(msci_options_to_json_alloc(o, &json3), MSC_OK);
  ck_assert_str_eq(json3, json);
  free(json);
  free(json2);
  free(json3);
  msc_options_free(o);
  msc_options_free(p);
}
END_TEST

START_TEST(copy_is_deep) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "first"), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "classes", 4), MSC_OK);
  msc_options *c = NULL;
  ck_assert_int_eq(msci_options_copy(o, &c), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "second"), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "classes", 5), MSC_OK);
  ck_assert_str_eq(gets_(c, "modality.0.name"), "first");
  ck_assert_int_eq(geti(c, "classes"), 4);
  msc_options_free(o);
  ck_assert_str_eq(gets_(c, "modality.0.name"), "first");
  msc_options_free(c);
  /* copying an empty handle */
  msc_options *e = new_opts(), *ec = NULL;
  ck_assert_int_eq(msci_options_copy(e, &ec), MSC_OK);
  ck_assert_int_eq(is_set(ec, "classes"), 0);
  msc_options_free(e);
  msc_options_free(ec);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Cross-key checks                                                                */
/* ------------------------------------------------------------------------------ */

START_TEST(check_model_cases) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK); /* the defaults are consistent */

  /* class names vs classes */
  ck_assert_int_eq(msc_options_set_int(o, "classes", 2), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK); /* default names follow */
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "a;b;c"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(), "options: class_names has 3 names but classes is 2");
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "a;a"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("'a'");
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "b;a"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);

  /* mean/std lengths vs bands */
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.mean", "1,2,3"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "options: modality.1.mean has 3 values but modality.1.bands is 12 (give "
                   "one per band, or none)");
  ck_assert_int_eq(msc_options_set_int(o, "modality.1.bands", 3), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.std", "1"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("modality.0.std has 1 values but modality.0.bands is 2");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.std", "1,2"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);

  /* unique modality names */
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.name", "s1"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "options: modality.0.name and modality.1.name are both 's1'; modality "
                   "names must be unique");
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.name", "s2"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);
  /* a modality beyond modality.count is not looked at */
  ck_assert_int_eq(msc_options_set_string(o, "modality.2.name", "s1"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.2.mean", "1,2,3,4,5"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "modality.count", 3), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("modality.2.mean has 5 values but modality.2.bands is 3");
  ck_assert_int_eq(msc_options_set_string(o, "modality.2.mean", ""), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("modality.0.name and modality.2.name are both 's1'");
  ck_assert_int_eq(msc_options_set_string(o, "modality.2.name", "dem"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);

  /* widths vs depths */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.widths", "16,32,64"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "options: modality.0.widths has 3 stages but modality.0.depths has 4");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.depths", "1,1,1"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.widths", "1,2,3,4,5,6,7,8,9"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.depths", "1,1,1,1,1,1,1,1,1"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(), "options: modality.0.widths has 9 stages, expected 1..8");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.widths", "1,2,3,4,5,6,7,8"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.depths", "1,1,1,1,1,1,1,1"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);
  /* the preset of another encoder changes the default depths only */
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.encoder", "tiny"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.widths", "8,16,32"), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(o), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "options: modality.1.widths has 3 stages but modality.1.depths has 2");
  msc_options_free(o);
}
END_TEST

START_TEST(check_model_single_modality) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_from_json(o, "{\"modality\": [{\"name\": \"s2\", \"bands\": "
                                            "12, \"encoder\": \"tiny\", \"size\": 32}], "
                                            "\"classes\": 19}"),
                   MSC_OK);
  ck_assert_int_eq(geti(o, "modality.count"), 1);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);
  /* modality.1 keeps its default name "s2": ignored, it is beyond the count */
  ck_assert_str_eq(gets_(o, "modality.1.name"), "s2");
  msc_options_free(o);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* NULL arguments                                                                  */
/* ------------------------------------------------------------------------------ */

START_TEST(null_arguments) {
  msc_options *o = new_opts();
  int64_t i = 3;
  double f = 3.0;
  int32_t s = 3;
  char buf[8] = "keep";
  size_t len = 3;
  ck_assert_int_eq(msc_options_create(NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(NULL, "classes", 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, NULL, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(NULL, "bn.eps", 0.1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, NULL, 0.1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(NULL, "backend", "cpu"), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, NULL, "cpu"), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_string(o, "backend", NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_int(NULL, "classes", &i), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_int(o, NULL, &i), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_int(o, "classes", NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_float(NULL, "bn.eps", &f), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_float(o, NULL, &f), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_float(o, "bn.eps", NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_string(NULL, "backend", buf, sizeof buf, &len),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_string(o, NULL, buf, sizeof buf, &len),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_is_set(NULL, "classes", &s), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_is_set(o, NULL, &s), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_is_set(o, "classes", NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_from_json(NULL, "{}"), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_from_json(o, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_to_json(NULL, buf, sizeof buf, &len), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(i, 3);
  ck_assert(f == 3.0);
  ck_assert_int_eq(s, 3);
  ck_assert_str_eq(buf, "keep");
  ck_assert_uint_eq(len, 3);

  msc_options *c = NULL;
  char *text = NULL;
  ck_assert_int_eq(msci_options_copy(NULL, &c), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_options_copy(o, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_options_to_json_alloc(NULL, &text), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_options_to_json_alloc(o, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_options_get_string_alloc(NULL, "backend", &text),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_options_get_string_alloc(o, NULL, &text), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_options_get_string_alloc(o, "backend", NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_options_check_model(NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(c);
  ck_assert_ptr_null(text);

  msc_options_free(NULL);
  msc_options_free(o);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* List parsers and schema accessors                                               */
/* ------------------------------------------------------------------------------ */

START_TEST(parse_int_lists) {
  int64_t v[4] = {0};
  int32_t n = -1;
  ck_assert_int_eq(msci_parse_int_list("64, 128 ,256", v, 4, &n), MSC_OK);
  ck_assert_int_eq(n, 3);
  ck_assert_int_eq(v[0], 64);
  ck_assert_int_eq(v[1], 128);
  ck_assert_int_eq(v[2], 256);
  ck_assert_int_eq(msci_parse_int_list("", v, 4, &n), MSC_OK);
  ck_assert_int_eq(n, 0);
  ck_assert_int_eq(msci_parse_int_list("-3,9223372036854775807", v, 4, &n), MSC_OK);
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq(v[0], -3);
  ck_assert(v[1] == INT64_MAX);
  /* more values than room: the count still comes back */
  ck_assert_int_eq(msci_parse_int_list("1,2,3,4,5,6", v, 4, &n), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(n, 6);
  ck_assert_int_eq(v[3], 4);
  ck_assert_int_eq(msci_parse_int_list("1,2,3", NULL, 0, &n), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(n, 3);
  n = -1;
  ck_assert_int_eq(msci_parse_int_list("1,,2", v, 4, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_int_list("1,", v, 4, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_int_list(" ", v, 4, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_int_list("1.5", v, 4, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_int_list("9223372036854775808", v, 4, &n),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_int_list("12a", v, 4, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(n, -1);
  ck_assert_int_eq(msci_parse_int_list(NULL, v, 4, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_int_list("1", v, 4, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_int_list("1", NULL, 4, &n), MSC_E_INVALID_ARGUMENT);
}
END_TEST

START_TEST(parse_float_lists) {
  double v[4] = {0};
  int32_t n = -1;
  ck_assert_int_eq(msci_parse_float_list("-12.62, 5.116,1e-3, 2", v, 4, &n), MSC_OK);
  ck_assert_int_eq(n, 4);
  ck_assert(v[0] == -12.62);
  ck_assert(v[1] == 5.116);
  ck_assert(v[2] == 1e-3);
  ck_assert(v[3] == 2.0);
  ck_assert_int_eq(msci_parse_float_list("1,2,3,4,5", v, 4, &n), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(n, 5);
  n = -1;
  ck_assert_int_eq(msci_parse_float_list("nan", v, 4, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_float_list("1,-inf", v, 4, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_float_list("1e999", v, 4, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_float_list("1,2,", v, 4, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_parse_float_list("0,5", v, 1, &n), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq(msci_parse_float_list("1.5x", v, 4, &n), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("1.5x");
}
END_TEST

START_TEST(split_lists) {
  char **items = NULL;
  int32_t n = -1;
  ck_assert_int_eq(msci_split_names("Urban fabric;Beaches, dunes, sands;;x", &items, &n),
                   MSC_OK);
  ck_assert_int_eq(n, 4);
  ck_assert_str_eq(items[0], "Urban fabric");
  ck_assert_str_eq(items[1], "Beaches, dunes, sands");
  ck_assert_str_eq(items[2], "");
  ck_assert_str_eq(items[3], "x");
  free(items);
  ck_assert_int_eq(msci_split_names("", &items, &n), MSC_OK);
  ck_assert_int_eq(n, 0);
  free(items);
  ck_assert_int_eq(msci_split_names(";", &items, &n), MSC_OK);
  ck_assert_int_eq(n, 2);
  ck_assert_str_eq(items[0], "");
  ck_assert_str_eq(items[1], "");
  free(items);
  ck_assert_int_eq(msci_split_list("a,b", ',', &items, &n), MSC_OK);
  ck_assert_int_eq(n, 2);
  ck_assert_str_eq(items[1], "b");
  free(items);
  ck_assert_int_eq(msci_split_names(NULL, &items, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_split_names("a", NULL, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_split_names("a", &items, NULL), MSC_E_INVALID_ARGUMENT);
}
END_TEST

START_TEST(schema_accessors) {
  int32_t count = msci_options_key_count();
  ck_assert_int_ge(count, 24);
  int found_bands = 0, found_class_names = 0, found_momentum = 0;
  for (int32_t i = 0; i < count; i++) {
    const char *p = msci_options_key_pattern(i);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(msci_options_key_help(i));
    ck_assert_ptr_nonnull(msci_options_key_default(i));
    ck_assert_ptr_nonnull(msci_options_key_type_name(i));
    ck_assert_msg(msci_options_key_help(i)[0] != '\0', "%s has no help", p);
    for (int32_t j = 0; j < i; j++)
      ck_assert_msg(strcmp(p, msci_options_key_pattern(j)) != 0, "%s listed twice", p);
    char rule[128];
    if (strcmp(p, "modality.#.bands") == 0) {
      found_bands = 1;
      ck_assert_int_eq(msci_options_key_type(i), MSCI_OPT_INT);
      ck_assert_str_eq(msci_options_key_type_name(i), "int");
      ck_assert_uint_eq(msci_options_key_rule(i, rule, sizeof rule), 5);
      ck_assert_str_eq(rule, "1..64");
      ck_assert_uint_eq(msci_options_key_rule(i, rule, 3), 5);
      ck_assert_str_eq(rule, "1.");
    } else if (strcmp(p, "class_names") == 0) {
      found_class_names = 1;
      ck_assert_int_eq(msci_options_key_type(i), MSCI_OPT_STRING);
      ck_assert_str_eq(msci_options_key_type_name(i), "string");
    } else if (strcmp(p, "bn.momentum") == 0) {
      found_momentum = 1;
      ck_assert_int_eq(msci_options_key_type(i), MSCI_OPT_FLOAT);
      ck_assert_str_eq(msci_options_key_default(i), "0.1");
      msci_options_key_rule(i, rule, sizeof rule);
      ck_assert_str_eq(rule, "(0, 1]");
    } else if (strcmp(p, "modality.#.encoder") == 0) {
      msci_options_key_rule(i, rule, sizeof rule);
      ck_assert_str_eq(rule, "one of resnet18, resnet34, resnet50, tiny, convnextv2_atto, "
                             "convnextv2_femto, convnextv2_pico, convnextv2_nano, "
                             "convnextv2_tiny");
    }
  }
  ck_assert(found_bands && found_class_names && found_momentum);
  ck_assert_ptr_null(msci_options_key_pattern(-1));
  ck_assert_ptr_null(msci_options_key_pattern(count));
  ck_assert_ptr_null(msci_options_key_help(count));
  ck_assert_ptr_null(msci_options_key_default(count));
  ck_assert_ptr_null(msci_options_key_type_name(count));
}
END_TEST

START_TEST(formatted_getters) {
  msc_options *o = new_opts();
  int64_t v = 0;
  ck_assert_int_eq(msci_options_get_intf(o, &v, "modality.%d.bands", 1), MSC_OK);
  ck_assert_int_eq(v, 12);
  char *s = NULL;
  ck_assert_int_eq(msci_options_get_string_allocf(o, &s, "modality.%d.name", 0), MSC_OK);
  ck_assert_str_eq(s, "s1");
  free(s);
  double f = 0;
  ck_assert_int_eq(msci_options_get_floatf(o, &f, "bn.%s", "eps"), MSC_OK);
  ck_assert(f == 1e-5);
  ck_assert_int_eq(msci_options_get_intf(o, &v, "modality.%d.bands", 8), MSC_E_NOT_FOUND);
  msc_options_free(o);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Float lists (msc_options_set_floats / get_floats)                               */
/* ------------------------------------------------------------------------------ */

static uint32_t fbits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

START_TEST(floats_set_get) {
  msc_options *o = new_opts();
  float out[4] = {9, 9, 9, 9};
  size_t n = 77;
  /* Unset: the default is the empty list. */
  ck_assert_int_eq(msc_options_get_floats(o, "modality.0.mean", out, 4, &n), MSC_OK);
  ck_assert_uint_eq(n, 0);
  ck_assert(out[0] == 9.0f);
  const float v[3] = {1.5f, -2.0f, 0.1f};
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.mean", v, 3), MSC_OK);
  ck_assert_int_eq(is_set(o, "modality.0.mean"), 1);
  ck_assert_int_eq(msc_options_get_floats(o, "modality.0.mean", out, 4, &n), MSC_OK);
  ck_assert_uint_eq(n, 3);
  for (int i = 0; i < 3; i++) ck_assert_uint_eq(fbits(out[i]), fbits(v[i]));
  ck_assert(out[3] == 9.0f);
  /* The text form: "%.9g" of each float (0.1f is 0.100000001490116...). */
  ck_assert_str_eq(gets_(o, "modality.0.mean"), "1.5,-2,0.100000001");
  char *json = to_json(o);
  ck_assert_str_eq(json, "{\"modality.0.mean\":\"1.5,-2,0.100000001\"}");
  /* JSON and copies give the same floats back. */
  msc_options *p = new_opts();
  ck_assert_int_eq(msc_options_from_json(p, json), MSC_OK);
  free(json);
  float back[3];
  ck_assert_int_eq(msc_options_get_floats(p, "modality.0.mean", back, 3, &n), MSC_OK);
  ck_assert_uint_eq(n, 3);
  ck_assert_uint_eq(fbits(back[2]), fbits(0.1f));
  msc_options *q = NULL;
  ck_assert_int_eq(msci_options_copy(o, &q), MSC_OK);
  msc_options_free(o);
  ck_assert_int_eq(msc_options_get_floats(q, "modality.0.mean", back, 3, &n), MSC_OK);
  ck_assert_uint_eq(n, 3);
  ck_assert_uint_eq(fbits(back[0]), fbits(1.5f));
  ck_assert_uint_eq(fbits(back[1]), fbits(-2.0f));
  /* n = 0 (values may be NULL): the empty list again, set explicitly. */
  ck_assert_int_eq(msc_options_set_floats(q, "modality.0.mean", NULL, 0), MSC_OK);
  ck_assert_int_eq(msc_options_get_floats(q, "modality.0.mean", NULL, 0, &n), MSC_OK);
  ck_assert_uint_eq(n, 0);
  ck_assert_str_eq(gets_(q, "modality.0.mean"), "");
  ck_assert_int_eq(is_set(q, "modality.0.mean"), 1);
  msc_options_free(p);
  msc_options_free(q);
}
END_TEST

START_TEST(floats_size_protocol) {
  msc_options *o = new_opts();
  const float v[3] = {5.116f, 5.464f, 1.0f};
  ck_assert_int_eq(msc_options_set_floats(o, "modality.1.std", v, 3), MSC_OK);
  size_t n = 0;
  ck_assert_int_eq(msc_options_get_floats(o, "modality.1.std", NULL, 0, &n),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_uint_eq(n, 3);
  float out[2] = {-1.0f, -1.0f};
  n = 0;
  ck_assert_int_eq(msc_options_get_floats(o, "modality.1.std", out, 2, &n),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_uint_eq(n, 3);
  ck_assert(out[0] == -1.0f && out[1] == -1.0f); /* untouched */
  assert_error_contains("modality.1.std");
  ck_assert_int_eq(msc_options_get_floats(o, "modality.1.std", NULL, 2, &n),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_floats(o, "modality.1.std", out, 2, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_floats(NULL, "modality.1.std", out, 2, &n),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_get_floats(o, NULL, out, 2, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(gets_(o, "modality.1.std"), "5.11600018,5.46400023,1");
  msc_options_free(o);
}
END_TEST

START_TEST(floats_validation) {
  msc_options *o = new_opts();
  const float ok[2] = {1.0f, 2.0f};
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.std", ok, 2), MSC_OK);
  const float nan2[2] = {1.0f, NAN};
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.mean", nan2, 2),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'modality.0.mean': value 2 (nan) is not a finite number");
  const float inf1[1] = {-INFINITY};
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.std", inf1, 1),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'modality.0.std': value 1 (-inf) is not a finite number");
  const float zero[2] = {3.0f, 0.0f};
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.std", zero, 2),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(), "option 'modality.0.std': value 2 (0) is not > 0");
  const float neg[1] = {-0.5f};
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.std", neg, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.mean", neg, 1), MSC_OK);
  /* Count limit: 1024 values. */
  float *many = calloc(1025, sizeof *many);
  ck_assert_ptr_nonnull(many);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.1.mean", many, 1024), MSC_OK);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.1.mean", many, 1025),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(), "option 'modality.1.mean': 1025 values, more than 1024");
  free(many);
  /* Keys: unknown, of another type; NULL arguments. */
  ck_assert_int_eq(msc_options_set_floats(o, "modality.8.mean", ok, 2), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.means", ok, 2), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_options_set_floats(o, "classes", ok, 2), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'classes' takes an integer, not a list of numbers");
  ck_assert_int_eq(msc_options_set_floats(o, "bn.eps", ok, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.widths", ok, 2),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, "modality.0.mean", 1.0), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'modality.0.mean' takes a list of numbers, not a number");
  ck_assert_int_eq(msc_options_set_int(o, "modality.0.mean", 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.mean", NULL, 2),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(), "msc_options_set_floats: values is NULL");
  ck_assert_int_eq(msc_options_set_floats(NULL, "modality.0.mean", ok, 2),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_floats(o, NULL, ok, 2), MSC_E_INVALID_ARGUMENT);
  float out[2];
  size_t n = 0;
  ck_assert_int_eq(msc_options_get_floats(o, "classes", out, 2, &n), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'classes' holds an integer, not a list of numbers");
  ck_assert_int_eq(msc_options_get_floats(o, "modality.9.std", out, 2, &n), MSC_E_NOT_FOUND);
  /* The handle kept the values of the successful calls only. */
  ck_assert_str_eq(gets_(o, "modality.0.std"), "1,2");
  ck_assert_str_eq(gets_(o, "modality.0.mean"), "-0.5");
  msc_options_free(o);
}
END_TEST

START_TEST(floats_text_form) {
  msc_options *o = new_opts();
  /* The text is kept as given; the values are the text's numbers rounded to float. */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.mean", "0.5, 1e-3 ,-12.62"), MSC_OK);
  ck_assert_str_eq(gets_(o, "modality.0.mean"), "0.5, 1e-3 ,-12.62");
  float out[3];
  size_t n = 0;
  ck_assert_int_eq(msc_options_get_floats(o, "modality.0.mean", out, 3, &n), MSC_OK);
  ck_assert_uint_eq(n, 3);
  ck_assert_uint_eq(fbits(out[0]), fbits(0.5f));
  ck_assert_uint_eq(fbits(out[1]), fbits(0.001f));
  ck_assert_uint_eq(fbits(out[2]), fbits(-12.62f));
  /* Finite as a double but not as a float. */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.mean", "1,1e39"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'modality.0.mean': item 2 (1e+39) is outside the range of float "
                   "(expected finite numbers, ','-separated (or empty))");
  /* The messages of the text form are those of a string rule. */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.std", "1,0"), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'modality.0.std': item 2 (0) is not > 0 (expected numbers > 0, "
                   "','-separated (or empty))");
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.std", "1,x"), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "option 'modality.0.std': item 2 ('x') is not a finite number (expected "
                   "numbers > 0, ','-separated (or empty))");
  ck_assert_str_eq(gets_(o, "modality.0.mean"), "0.5, 1e-3 ,-12.62");
  msc_options_free(o);
}
END_TEST

/* Every float survives "%.9g" and the parser: the text form of a value set with
 * msc_options_set_floats, read back by msc_options_set_string, is the same float (so
 * a model configuration written as text and read again is bit-identical). */
START_TEST(floats_text_round_trip_exact) {
  msc_options *o = new_opts(), *p = new_opts();
  const float special[] = {FLT_MAX,     -FLT_MAX, FLT_MIN, 1e-45f,      -0.0f,        0.1f,
                           1370.19238f, -12.62f,  5.116f,  16777217.0f, 3.4028233e38f};
  float v[64];
  size_t count = 0;
  uint32_t u = 0x3f800000u;
  for (uint64_t k = 0; k < 100000; k++) {
    float f;
    if (k < sizeof special / sizeof special[0]) {
      f = special[k];
    } else {
      u = u * 1664525u + 1013904223u; /* every exponent, every mantissa pattern */
      memcpy(&f, &u, sizeof f);
      if (!isfinite(f)) continue;
    }
    v[count++] = f;
    if (count < 64) continue;
    ck_assert_int_eq(msc_options_set_floats(o, "modality.0.mean", v, count), MSC_OK);
    ck_assert_int_eq(msc_options_set_string(p, "modality.0.mean", gets_(o, "modality.0.mean")),
                     MSC_OK);
    float back[64];
    size_t n = 0;
    ck_assert_int_eq(msc_options_get_floats(p, "modality.0.mean", back, 64, &n), MSC_OK);
    ck_assert_uint_eq(n, count);
    for (size_t j = 0; j < count; j++)
      ck_assert_msg(fbits(back[j]) == fbits(v[j]), "%.9g (0x%08x) came back as 0x%08x",
                    (double)v[j], fbits(v[j]), fbits(back[j]));
    count = 0;
  }
  msc_options_free(o);
  msc_options_free(p);
}
END_TEST

/* The model configuration reads the same floats from the typed and the text form. */
START_TEST(floats_model_config_identical) {
  const float mean[2] = {-12.62f, -19.29f}, sd[2] = {5.116f, 5.464f};
  msc_options *a = new_opts(), *b = new_opts();
  ck_assert_int_eq(msc_options_set_floats(a, "modality.0.mean", mean, 2), MSC_OK);
  ck_assert_int_eq(msc_options_set_floats(a, "modality.0.std", sd, 2), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(b, "modality.0.mean", "-12.6199999,-19.2900009"),
                   MSC_OK);
  ck_assert_int_eq(msc_options_set_string(b, "modality.0.std", "5.11600018,5.46400023"),
                   MSC_OK);
  ck_assert_int_eq(msci_options_check_model(a), MSC_OK);
  float fa[2], fb[2];
  size_t na = 0, nb = 0;
  for (int k = 0; k < 2; k++) {
    const char *key = k ? "modality.0.std" : "modality.0.mean";
    ck_assert_int_eq(msc_options_get_floats(a, key, fa, 2, &na), MSC_OK);
    ck_assert_int_eq(msc_options_get_floats(b, key, fb, 2, &nb), MSC_OK);
    ck_assert_uint_eq(na, 2);
    ck_assert_uint_eq(nb, 2);
    ck_assert_uint_eq(fbits(fa[0]), fbits(fb[0]));
    ck_assert_uint_eq(fbits(fa[1]), fbits(fb[1]));
    ck_assert_uint_eq(fbits(fa[0]), fbits(k ? 5.116f : -12.62f));
  }
  /* The cross-key rule still counts the values: 3 means for 2 bands. */
  const float three[3] = {1, 2, 3};
  ck_assert_int_eq(msc_options_set_floats(a, "modality.0.mean", three, 3), MSC_OK);
  ck_assert_int_eq(msci_options_check_model(a), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(msc_last_error(),
                   "options: modality.0.mean has 3 values but modality.0.bands is 2 (give "
                   "one per band, or none)");
  msc_options_free(a);
  msc_options_free(b);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* msc_options_copy                                                                */
/* ------------------------------------------------------------------------------ */

/* The keys of copy_public_* and their types: every kind of value the store holds. */
typedef struct copy_key {
  const char *key;
  char type; /* 'i', 'f', 's', 'l' (floats) */
} copy_key;

static const copy_key k_copy_keys[] = {
    {"seed", 'i'},
    {"classes", 'i'},
    {"proj.dim", 'i'},
    {"bn.momentum", 'f'},
    {"optim.lr", 'f'},
    {"optim.clip_norm", 'f'},
    {"modality.0.name", 's'},
    {"modality.1.widths", 's'},
    {"class_names", 's'},
    {"modality.0.mean", 'l'},
    {"modality.0.std", 'l'},
    {"modality.1.mean", 'l'},
    {"modality.1.std", 'l'},
    {"proj.hidden", 'i'},        /* never set: its default */
    {"modality.2.encoder", 's'}, /* never set */
    {"modality.3.mean", 'l'},    /* never set: the empty list */
};

static uint64_t dbits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

/* a and b hold the same keys with the same values: JSON text, is_set and the typed
 * getters (floats bit for bit, the text form of float lists byte for byte). */
static void assert_same_options(const msc_options *a, const msc_options *b) {
  char *ja = to_json(a), *jb = to_json(b);
  ck_assert_str_eq(ja, jb);
  free(ja);
  free(jb);
  for (size_t k = 0; k < sizeof k_copy_keys / sizeof k_copy_keys[0]; k++) {
    const char *key = k_copy_keys[k].key;
    ck_assert_int_eq(is_set(a, key), is_set(b, key));
    switch (k_copy_keys[k].type) {
    case 'i': ck_assert_int_eq(geti(a, key), geti(b, key)); break;
    case 'f':
      ck_assert_msg(dbits(getf(a, key)) == dbits(getf(b, key)), "%s: %.17g vs %.17g", key,
                    getf(a, key), getf(b, key));
      break;
    case 's': {
      char sa[4096];
      snprintf(sa, sizeof sa, "%s", gets_(a, key));
      ck_assert_str_eq(gets_(b, key), sa);
      break;
    }
    default: {
      char sa[4096];
      snprintf(sa, sizeof sa, "%s", gets_(a, key)); /* the text form */
      ck_assert_str_eq(gets_(b, key), sa);
      float fa[64], fb[64];
      size_t na = 0, nb = 0;
      ck_assert_int_eq(msc_options_get_floats(a, key, fa, 64, &na), MSC_OK);
      ck_assert_int_eq(msc_options_get_floats(b, key, fb, 64, &nb), MSC_OK);
      ck_assert_uint_eq(na, nb);
      for (size_t j = 0; j < na; j++)
        ck_assert_msg(fbits(fa[j]) == fbits(fb[j]), "%s[%zu]: 0x%08x vs 0x%08x", key, j,
                      fbits(fa[j]), fbits(fb[j]));
      break;
    }
    }
  }
}

static const float k_copy_mean[] = {FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f,      -0.0f,
                                    0.1f,    -12.62f,  5.116f,  16777217.0f, 3.4028233e38f};

/* A handle with a value of every kind set (and some keys left at their defaults). */
static msc_options *copy_source(void) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_int(o, "seed", INT64_MAX), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "classes", 4), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "bn.momentum", 1.0 / 3.0), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 0.012345678901234567), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "optim.clip_norm", 5), MSC_OK); /* int -> float */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "first"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.widths", "8,16,32,64"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "a;b;c;d"), MSC_OK);
  /* typed floats (written with %.9g), the text form kept as given, the empty list */
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.mean", k_copy_mean,
                                          sizeof k_copy_mean / sizeof k_copy_mean[0]),
                   MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.std", " 1.5,  2e-3 ,0.1"), MSC_OK);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.1.mean", NULL, 0), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.std", ""), MSC_OK);
  return o;
}

START_TEST(copy_public_equal) {
  msc_options *o = copy_source();
  msc_options *c = NULL;
  ck_assert_int_eq(msc_options_copy(o, &c), MSC_OK);
  ck_assert_ptr_nonnull(c);
  ck_assert_ptr_ne(c, o);
  assert_same_options(o, c);
  /* spot checks against the values written out by hand */
  ck_assert_int_eq(geti(c, "seed"), INT64_MAX);
  ck_assert(getf(c, "bn.momentum") == 1.0 / 3.0);
  ck_assert(getf(c, "optim.lr") == 0.012345678901234567);
  ck_assert(getf(c, "optim.clip_norm") == 5.0);
  ck_assert_str_eq(gets_(c, "modality.0.std"), " 1.5,  2e-3 ,0.1"); /* the text as given */
  ck_assert_str_eq(gets_(c, "modality.1.mean"), "");
  ck_assert_int_eq(is_set(c, "modality.1.mean"), 1);
  ck_assert_int_eq(is_set(c, "proj.hidden"), 0);
  float v[16];
  size_t n = 0;
  ck_assert_int_eq(msc_options_get_floats(c, "modality.0.mean", v, 16, &n), MSC_OK);
  ck_assert_uint_eq(n, sizeof k_copy_mean / sizeof k_copy_mean[0]);
  for (size_t j = 0; j < n; j++) ck_assert_uint_eq(fbits(v[j]), fbits(k_copy_mean[j]));
  ck_assert_int_eq(msc_options_get_floats(c, "modality.0.std", v, 16, &n), MSC_OK);
  ck_assert_uint_eq(n, 3);
  ck_assert_uint_eq(fbits(v[0]), fbits(1.5f));
  ck_assert_uint_eq(fbits(v[1]), fbits(2e-3f));
  ck_assert_uint_eq(fbits(v[2]), fbits(0.1f));
  /* a copy of the copy, and of an empty handle */
  msc_options *cc = NULL;
  ck_assert_int_eq(msc_options_copy(c, &cc), MSC_OK);
  assert_same_options(o, cc);
  msc_options *e = new_opts(), *ec = NULL;
  ck_assert_int_eq(msc_options_copy(e, &ec), MSC_OK);
  char *je = to_json(ec);
  ck_assert_str_eq(je, "{}");
  free(je);
  assert_same_options(e, ec);
  msc_options_free(e);
  msc_options_free(ec);
  msc_options_free(cc);
  msc_options_free(c);
  msc_options_free(o);
}
END_TEST

START_TEST(copy_public_independent) {
  msc_options *o = copy_source();
  char *before = to_json(o);
  msc_options *c = NULL;
  ck_assert_int_eq(msc_options_copy(o, &c), MSC_OK);
  /* Changing the source leaves the copy as it was. */
  const float other[] = {7.0f, 8.0f};
  ck_assert_int_eq(msc_options_set_int(o, "classes", 9), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 0.5), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "changed"), MSC_OK);
  ck_assert_int_eq(msc_options_set_floats(o, "modality.0.mean", other, 2), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.std", "3,4"), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "proj.hidden", 16), MSC_OK); /* a new key */
  char *now = to_json(c);
  ck_assert_str_eq(now, before);
  free(now);
  ck_assert_int_eq(is_set(c, "proj.hidden"), 0);
  /* Changing the copy (new keys too: it grows) leaves the source as it was. */
  char *changed = to_json(o);
  ck_assert_int_eq(msc_options_set_int(c, "classes", 2), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(c, "modality.0.name", "mine"), MSC_OK);
  ck_assert_int_eq(msc_options_set_floats(c, "modality.1.mean", other, 2), MSC_OK);
  for (int i = 0; i < 8; i++) {
    char key[64];
    snprintf(key, sizeof key, "modality.%d.size", i);
    ck_assert_int_eq(msc_options_set_int(c, key, 16 + i), MSC_OK);
  }
  now = to_json(o);
  ck_assert_str_eq(now, changed);
  free(now);
  ck_assert_int_eq(is_set(o, "modality.7.size"), 0);
  /* Freeing the source leaves the copy readable (valgrind checks no memory is shared). */
  msc_options *c2 = NULL;
  ck_assert_int_eq(msc_options_copy(o, &c2), MSC_OK);
  msc_options_free(o);
  now = to_json(c2);
  ck_assert_str_eq(now, changed);
  free(now);
  ck_assert_int_eq(geti(c2, "classes"), 9);
  ck_assert_str_eq(gets_(c2, "modality.0.std"), "3,4");
  float v[4];
  size_t n = 0;
  ck_assert_int_eq(msc_options_get_floats(c2, "modality.0.mean", v, 4, &n), MSC_OK);
  ck_assert_uint_eq(n, 2);
  ck_assert_uint_eq(fbits(v[0]), fbits(7.0f));
  ck_assert_uint_eq(fbits(v[1]), fbits(8.0f));
  /* ... and the other way round: freeing a copy leaves its source intact. */
  msc_options *c3 = NULL;
  ck_assert_int_eq(msc_options_copy(c2, &c3), MSC_OK);
  msc_options_free(c3);
  now = to_json(c2);
  ck_assert_str_eq(now, changed);
  free(now);
  ck_assert_int_eq(geti(c, "classes"), 2);
  ck_assert_str_eq(gets_(c, "modality.0.name"), "mine");
  free(before);
  free(changed);
  msc_options_free(c2);
  msc_options_free(c);
}
END_TEST

START_TEST(copy_public_null_arguments) {
  msc_options *o = copy_source();
  msc_options *const sentinel = (msc_options *)&o;
  msc_options *c = sentinel;
  msc_clear_error();
  ck_assert_int_eq(msc_options_copy(NULL, &c), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_eq(c, sentinel); /* untouched */
  assert_error_contains("msc_options_copy");
  assert_error_contains("src is NULL");
  msc_clear_error();
  ck_assert_int_eq(msc_options_copy(o, NULL), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("msc_options_copy");
  assert_error_contains("out is NULL");
  ck_assert_int_eq(msc_options_copy(NULL, NULL), MSC_E_INVALID_ARGUMENT);
  assert_error_contains("src is NULL");
  /* the source is unchanged by the failed calls */
  msc_options *ref = copy_source();
  assert_same_options(ref, o);
  msc_options_free(ref);
  msc_options_free(o);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* msc_options_from_dataset (examples/data/bigearthnet-v2: 2 S1 bands with         */
/* published statistics; S2 with B01 and B09, which have none)                     */
/* ------------------------------------------------------------------------------ */

#define V2 MSC_TEST_DATA "/bigearthnet-v2"

static msc_dataset *open_v2(const char *s2_bands) {
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  if (s2_bands) ck_assert_int_eq(msc_options_set_string(o, "data.s2_bands", s2_bands), MSC_OK);
  msc_dataset *ds = NULL;
  msc_status st = msc_dataset_open(V2, "bigearthnet-v2", o, &ds);
  ck_assert_msg(st == MSC_OK, "open: %s", msc_last_error());
  msc_options_free(o);
  return ds;
}

START_TEST(from_dataset_published) {
  msc_dataset *ds = open_v2("B04,B03,B02");
  msc_options *o = new_opts();
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", "tiny"), MSC_OK);
  ck_assert_int_eq(msc_options_from_dataset(o, ds, MSC_STATS_PUBLISHED, 0), MSC_OK);
  ck_assert_int_eq(geti(o, "modality.count"), 2);
  ck_assert_str_eq(gets_(o, "modality.0.name"), "s1");
  ck_assert_str_eq(gets_(o, "modality.1.name"), "s2");
  ck_assert_int_eq(geti(o, "modality.0.bands"), 2);
  ck_assert_int_eq(geti(o, "modality.1.bands"), 3);
  ck_assert_int_eq(geti(o, "modality.0.size"), 120);
  ck_assert_int_eq(geti(o, "modality.1.size"), 120);
  ck_assert_str_eq(gets_(o, "modality.0.encoder"), "tiny"); /* left as it was */
  /* BigEarthNet's published S1 statistics (docs/data.md): VV -12.620 / 5.116, VH -19.290 /
   * 5.464, as floats. */
  float v[2];
  size_t n = 0;
  ck_assert_int_eq(msc_options_get_floats(o, "modality.0.mean", v, 2, &n), MSC_OK);
  ck_assert_uint_eq(n, 2);
  ck_assert_uint_eq(fbits(v[0]), fbits(-12.620f));
  ck_assert_uint_eq(fbits(v[1]), fbits(-19.290f));
  ck_assert_int_eq(msc_options_get_floats(o, "modality.0.std", v, 2, &n), MSC_OK);
  ck_assert_uint_eq(fbits(v[0]), fbits(5.116f));
  ck_assert_uint_eq(fbits(v[1]), fbits(5.464f));
  ck_assert_str_eq(gets_(o, "modality.0.mean"), "-12.6199999,-19.2900009");
  ck_assert_str_eq(gets_(o, "modality.0.std"), "5.11600018,5.46400023");
  /* The S2 statistics are those of msc_dataset_stats, in the selected order. */
  float mean[3], sd[3], got[3];
  ck_assert_int_eq(msc_dataset_stats(ds, 1, mean, sd, 3), MSC_OK);
  ck_assert_int_eq(msc_options_get_floats(o, "modality.1.mean", got, 3, &n), MSC_OK);
  ck_assert_uint_eq(n, 3);
  for (int b = 0; b < 3; b++) ck_assert_uint_eq(fbits(got[b]), fbits(mean[b]));
  /* Classes: BigEarthNet's 19, the names joined with ';'. */
  ck_assert_int_eq(geti(o, "classes"), 19);
  ck_assert(strncmp(gets_(o, "class_names"), "Urban fabric;Industrial or commercial units;",
                    44) == 0);
  ck_assert_int_eq(msci_options_check_model(o), MSC_OK);
  msc_options_free(o);
  msc_dataset_free(ds);
}
END_TEST

START_TEST(from_dataset_computed_and_kept) {
  msc_dataset *ds = open_v2(NULL); /* S2 with B01, B09: no published statistics */
  msc_options *o = new_opts();
  /* Published only: refused, and the handle is unchanged. */
  ck_assert_int_eq(msc_options_set_int(o, "classes", 5), MSC_OK);
  ck_assert_int_eq(msc_options_from_dataset(o, ds, MSC_STATS_PUBLISHED, 0), MSC_E_NOT_FOUND);
  assert_error_contains("published statistics of s2: ");
  ck_assert_int_eq(geti(o, "classes"), 5);
  ck_assert_int_eq(is_set(o, "modality.count"), 0);
  /* A std already set is kept; the mean is computed (auto: S2 has no published ones). */
  const float mine[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  ck_assert_int_eq(msc_options_set_floats(o, "modality.1.std", mine, 12), MSC_OK);
  ck_assert_int_eq(msc_options_from_dataset(o, ds, MSC_STATS_AUTO, 2), MSC_OK);
  float expect_mean[12], expect_sd[12], got[12];
  ck_assert_int_eq(msc_dataset_compute_stats(ds, 1, 2, expect_mean, expect_sd, 12), MSC_OK);
  size_t n = 0;
  ck_assert_int_eq(msc_options_get_floats(o, "modality.1.mean", got, 12, &n), MSC_OK);
  ck_assert_uint_eq(n, 12);
  for (int b = 0; b < 12; b++) ck_assert_uint_eq(fbits(got[b]), fbits(expect_mean[b]));
  ck_assert_int_eq(msc_options_get_floats(o, "modality.1.std", got, 12, &n), MSC_OK);
  for (int b = 0; b < 12; b++) ck_assert(got[b] == (float)(b + 1));
  /* S1 has published statistics: auto takes them. */
  ck_assert_int_eq(msc_options_get_floats(o, "modality.0.mean", got, 2, &n), MSC_OK);
  ck_assert_uint_eq(fbits(got[0]), fbits(-12.620f));
  /* Computed: S1 too, over all samples (0). */
  msc_options *c = new_opts();
  ck_assert_int_eq(msc_options_from_dataset(c, ds, MSC_STATS_COMPUTED, 0), MSC_OK);
  ck_assert_int_eq(msc_dataset_compute_stats(ds, 0, 0, expect_mean, expect_sd, 2), MSC_OK);
  ck_assert_int_eq(msc_options_get_floats(c, "modality.0.std", got, 2, &n), MSC_OK);
  ck_assert_uint_eq(fbits(got[0]), fbits(expect_sd[0]));
  ck_assert_uint_eq(fbits(got[1]), fbits(expect_sd[1]));
  /* Arguments. */
  ck_assert_int_eq(msc_options_from_dataset(NULL, ds, 0, 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_from_dataset(c, NULL, 0, 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_from_dataset(c, ds, 3, 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_from_dataset(c, ds, MSC_STATS_AUTO, -1), MSC_E_INVALID_ARGUMENT);
  msc_options_free(c);
  msc_options_free(o);
  msc_dataset_free(ds);
}
END_TEST

/* The default schedule: hand-computed values, keys already set kept, errors change nothing. */
START_TEST(default_schedule) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  int64_t v = -1;
  int32_t set = 1;
  ck_assert_int_eq(msc_options_default_schedule(o, 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_default_schedule(NULL, 10), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_is_set(o, "optim.total_steps", &set), MSC_OK);
  ck_assert_int_eq(set, 0);
  ck_assert_int_eq(msc_options_default_schedule(o, 250), MSC_OK);
  ck_assert_int_eq(msc_options_get_int(o, "optim.total_steps", &v), MSC_OK);
  ck_assert_int_eq(v, 250);
  ck_assert_int_eq(msc_options_get_int(o, "optim.warmup_steps", &v), MSC_OK);
  ck_assert_int_eq(v, 12); /* 250 / 20 */
  /* set keys are kept: a second run length changes nothing */
  ck_assert_int_eq(msc_options_default_schedule(o, 40), MSC_OK);
  ck_assert_int_eq(msc_options_get_int(o, "optim.total_steps", &v), MSC_OK);
  ck_assert_int_eq(v, 250);
  msc_options_free(o);
  /* short runs: no warm-up; a warm-up the caller set is kept, the total still set */
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_default_schedule(o, 19), MSC_OK);
  ck_assert_int_eq(msc_options_get_int(o, "optim.warmup_steps", &v), MSC_OK);
  ck_assert_int_eq(v, 0);
  msc_options_free(o);
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "optim.warmup_steps", 3), MSC_OK);
  ck_assert_int_eq(msc_options_default_schedule(o, 100), MSC_OK);
  ck_assert_int_eq(msc_options_get_int(o, "optim.warmup_steps", &v), MSC_OK);
  ck_assert_int_eq(v, 3);
  ck_assert_int_eq(msc_options_get_int(o, "optim.total_steps", &v), MSC_OK);
  ck_assert_int_eq(v, 100);
  msc_options_free(o);
}
END_TEST

static Suite *options_suite(void) {
  Suite *s = suite_create("options");
  TCase *tc = tcase_create("options");
  tcase_add_test(tc, defaults_plain);
  tcase_add_test(tc, defaults_class_names_bigearthnet);
  tcase_add_test(tc, defaults_computed_from_other_keys);
  tcase_add_test(tc, set_get_every_type);
  tcase_add_test(tc, int_accepted_for_float);
  tcase_add_test(tc, wrong_type_refused);
  tcase_add_test(tc, unknown_key_not_found);
  tcase_add_test(tc, out_of_range_ints);
  tcase_add_test(tc, out_of_range_floats);
  tcase_add_test(tc, string_rules);
  tcase_add_test(tc, index_patterns);
  tcase_add_test(tc, string_size_protocol);
  tcase_add_test(tc, json_flat_and_nested);
  tcase_add_test(tc, json_arrays);
  tcase_add_test(tc, json_errors_leave_handle_unchanged);
  tcase_add_test(tc, json_syntax_errors);
  tcase_add_test(tc, json_round_trip);
  tcase_add_test(tc, copy_is_deep);
  tcase_add_test(tc, check_model_cases);
  tcase_add_test(tc, check_model_single_modality);
  tcase_add_test(tc, null_arguments);
  tcase_add_test(tc, parse_int_lists);
  tcase_add_test(tc, parse_float_lists);
  tcase_add_test(tc, split_lists);
  tcase_add_test(tc, schema_accessors);
  tcase_add_test(tc, formatted_getters);
  tcase_add_test(tc, floats_set_get);
  tcase_add_test(tc, floats_size_protocol);
  tcase_add_test(tc, floats_validation);
  tcase_add_test(tc, floats_text_form);
  tcase_add_test(tc, floats_text_round_trip_exact);
  tcase_add_test(tc, floats_model_config_identical);
  tcase_add_test(tc, copy_public_equal);
  tcase_add_test(tc, copy_public_independent);
  tcase_add_test(tc, copy_public_null_arguments);
  tcase_add_test(tc, from_dataset_published);
  tcase_add_test(tc, from_dataset_computed_and_kept);
  tcase_add_test(tc, default_schedule);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(options_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
