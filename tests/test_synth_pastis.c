/*
 * test_synth_pastis.c — msc_synth_write(dir, "pastis", ...) (lib/data/synth_pastis.c,
 * docs/pimc.md "Synthetic time series") read back independently: the .npy files are parsed
 * here byte by byte (format 1.0: magic, version, header dict, data), metadata.geojson with
 * jansson. Checks the layout (names, dtypes, shapes), the labels (classes 0..19, at least two
 * crop classes a patch, instances, N_Parcel, Parcel_Cover), the dates (dates-S2 count equals
 * T), that NDVI from B4/B8 (msci_vi_compute, PASTIS band table) on clear dates follows each
 * class's double-logistic curve computed here from its formula, that cloudy dates are
 * outliers, determinism, the refusal of a foreign directory, and the .npy writer alone.
 */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/npy_write.h"
#include "data/sits.h"
#include "mosaic/mosaic.h"

#define N_PATCH 3
#define SIDE    32
#define HW      (SIDE * SIDE)

/* ---- helpers ------------------------------------------------------------------------- */

static char g_tmp[256];

static const char *tmpdir(const char *tag) {
  static int counter = 0;
  static char buf[8][300];
  char *b = buf[counter % 8];
  snprintf(b, 300, "%s/%s%d", g_tmp, tag, counter++);
  return b;
}

static void rm_rf(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return;
  if (S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(path);
    if (d) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rm_rf(sub);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

static void setup(void) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/msc-test-synth-pastis-%ld", (long)getpid());
  rm_rf(g_tmp);
  ck_assert_int_eq(mkdir(g_tmp, 0777), 0);
}

static void teardown(void) {
  rm_rf(g_tmp);
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  ck_assert(b != NULL);
  ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

static int same_bytes(const char *a, const char *b) {
  size_t na, nb;
  unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
  int same = na == nb && !memcmp(x, y, na);
  free(x), free(y);
  return same;
}

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

/* Reads a .npy file of format 1.0 whose header dict must be exactly `dict` (followed by
 * spaces and '\n', the data starting at a multiple of 64) and whose data is `bytes` long.
 * Returns the data (malloc'd); little-endian values as the host is (x86, ARM). */
static void *read_npy(const char *path, const char *dict, size_t bytes) {
  size_t len;
  unsigned char *b = slurp(path, &len);
  ck_assert_msg(len >= 10 && !memcmp(b, "\x93NUMPY", 6), "%s: no .npy magic", path);
  ck_assert_int_eq(b[6], 1);
  ck_assert_int_eq(b[7], 0);
  const size_t hlen = (size_t)b[8] | (size_t)b[9] << 8, start = 10 + hlen;
  ck_assert_msg(start % 64 == 0, "%s: data at %zu", path, start);
  ck_assert(start <= len);
  const size_t dlen = strlen(dict);
  ck_assert_msg(hlen > dlen && !memcmp(b + 10, dict, dlen), "%s: header %.*s, expected %s",
                path, (int)hlen, (const char *)b + 10, dict);
  for (size_t i = 10 + dlen; i < start - 1; ++i) ck_assert_int_eq(b[i], ' ');
  ck_assert_int_eq(b[start - 1], '\n');
  ck_assert_msg(len - start == bytes, "%s: %zu data bytes, expected %zu", path, len - start,
                bytes);
  void *data = malloc(bytes ? bytes : 1);
  ck_assert(data != NULL);
  memcpy(data, b + start, bytes);
  free(b);
  return data;
}

/* The class curves of docs/pimc.md, written out here independently of the generator:
 * v(d) = base + amp · (σ((d − up)/s_up) − σ((d − down)/s_down)), σ(z) = 1 / (1 + e^−z). */
static const double k_curve[19][6] = {
    {0.12, 0.00, 0, 0, 1, 1},       {0.35, 0.40, 75, 290, 15, 20},
    {0.20, 0.65, 60, 170, 10, 8},   {0.15, 0.72, 160, 255, 8, 10},
    {0.20, 0.60, 50, 150, 10, 7},   {0.25, 0.60, 40, 145, 12, 9},
    {0.15, 0.60, 100, 190, 8, 8},   {0.15, 0.62, 140, 230, 9, 8},
    {0.20, 0.35, 120, 270, 12, 12}, {0.15, 0.70, 130, 280, 10, 12},
    {0.20, 0.58, 65, 178, 10, 8},   {0.20, 0.55, 70, 165, 9, 7},
    {0.20, 0.45, 110, 220, 10, 10}, {0.15, 0.65, 125, 215, 8, 9},
    {0.30, 0.45, 70, 250, 12, 15},  {0.15, 0.66, 150, 262, 9, 9},
    {0.30, 0.40, 95, 285, 14, 14},  {0.20, 0.52, 78, 182, 11, 9},
    {0.15, 0.60, 168, 268, 8, 9}};

static double sigmoid(double z) {
  return 1.0 / (1.0 + exp(-z));
}

static double expected_ndvi(int c, double day) {
  const double *k = k_curve[c];
  return k[0] + k[1] * (sigmoid((day - k[2]) / k[4]) - sigmoid((day - k[3]) / k[5]));
}

/* Day of 2019 (0 = 1 January) of a YYYYMMDD date of 2019. */
static int day_of(int64_t ymd) {
  static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  ck_assert_int_eq(ymd / 10000, 2019);
  const int m = (int)(ymd / 100 % 100), d = (int)(ymd % 100);
  ck_assert(m >= 1 && m <= 12 && d >= 1 && d <= 31);
  return before[m - 1] + d - 1;
}

static json_t *load_meta(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/metadata.geojson", dir);
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  ck_assert_msg(root != NULL, "%s: %s", path, err.text);
  return root;
}

/* ---- the files ----------------------------------------------------------------------- */

START_TEST(layout_labels_dates_and_phenology) {
  const char *dir = tmpdir("p");
  ck_assert_int_eq(msc_synth_write(dir, "pastis", N_PATCH, 5, NULL), MSC_OK);
  json_t *root = load_meta(dir);
  ck_assert_str_eq(json_string_value(json_object_get(root, "type")), "FeatureCollection");
  json_t *features = json_object_get(root, "features");
  ck_assert_int_eq(json_array_size(features), N_PATCH);
  const msci_vi_bands bands = msci_vi_bands_pastis();
  int t_seen[64] = {0}, outliers = 0;
  for (size_t i = 0; i < N_PATCH; ++i) {
    json_t *f = json_array_get(features, i), *p = json_object_get(f, "properties");
    ck_assert_str_eq(json_string_value(json_object_get(f, "type")), "Feature");
    json_t *geom = json_object_get(f, "geometry");
    ck_assert_str_eq(json_string_value(json_object_get(geom, "type")), "Polygon");
    json_t *ring = json_array_get(json_object_get(geom, "coordinates"), 0);
    ck_assert_int_eq(json_array_size(ring), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "ID_PATCH")), (json_int_t)i);
    const json_int_t fold = json_integer_value(json_object_get(p, "Fold"));
    ck_assert(fold >= 1 && fold <= 5);
    ck_assert(json_is_string(json_object_get(p, "TILE")));
    ck_assert(json_is_integer(json_object_get(p, "N_Parcel")));
    ck_assert(json_is_real(json_object_get(p, "Parcel_Cover")));
    json_t *dates = json_object_get(p, "dates-S2");
    ck_assert(json_is_object(dates));
    const int64_t t = (int64_t)json_object_size(dates);
    ck_assert(t >= 20 && t <= 28);
    t_seen[t] = 1;
    int day[64];
    for (int k = 0; k < t; ++k) {
      char key[16];
      snprintf(key, sizeof key, "%d", k);
      json_t *d = json_object_get(dates, key);
      ck_assert_msg(json_is_integer(d), "dates-S2 has no \"%s\"", key);
      day[k] = day_of(json_integer_value(d));
      if (k) ck_assert_int_gt(day[k], day[k - 1]);
    }
    json_t *cl = json_object_get(p, "synth-cloudy-S2");
    int cloudy[64] = {0};
    const size_t n_cloudy = json_array_size(cl);
    ck_assert(n_cloudy >= 1 && (double)n_cloudy <= 0.25 * (double)t + 0.5);
    for (size_t k = 0; k < n_cloudy; ++k) {
      json_int_t c = json_integer_value(json_array_get(cl, k));
      ck_assert(c >= 0 && c < t);
      cloudy[c] = 1;
    }

    /* Labels: TARGET 3 × 32 × 32 uint8, INSTANCES 32 × 32 int64. */
    char path[4096];
    snprintf(path, sizeof path, "%s/ANNOTATIONS/TARGET_%zu.npy", dir, i);
    uint8_t *target = read_npy(
        path, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 32, 32), }", 3 * HW);
    snprintf(path, sizeof path, "%s/INSTANCE_ANNOTATIONS/INSTANCES_%zu.npy", dir, i);
    int64_t *inst =
        read_npy(path, "{'descr': '<i8', 'fortran_order': False, 'shape': (32, 32), }", 8 * HW);
    int crop_seen[20] = {0}, n_crops = 0, n_void = 0, parcel_px = 0;
    int64_t max_id = 0;
    for (int q = 0; q < HW; ++q) {
      const int c = target[q];
      ck_assert_int_le(c, 19);
      ck_assert_int_eq(target[HW + q], c);
      ck_assert_int_eq(target[2 * HW + q], c);
      ck_assert_int_eq(inst[q] == 0, c == 0);
      if (inst[q] > max_id) max_id = inst[q];
      parcel_px += inst[q] != 0;
      n_void += c == 19;
      if (c >= 1 && c <= 18 && !crop_seen[c]) crop_seen[c] = 1, ++n_crops;
    }
    ck_assert_int_ge(n_crops, 2);
    ck_assert_int_gt(n_void, 0);
    ck_assert_int_lt(n_void, HW / 8);
    ck_assert_int_eq(max_id, json_integer_value(json_object_get(p, "N_Parcel")));
    ck_assert_double_eq_tol(json_real_value(json_object_get(p, "Parcel_Cover")),
                            (double)parcel_px / HW, 1e-9);

    /* DATA_S2: T × 10 × 32 × 32 int16; T is the number of dates. */
    char dict[128];
    snprintf(dict, sizeof dict,
             "{'descr': '<i2', 'fortran_order': False, 'shape': (%lld, 10, 32, 32), }",
             (long long)t);
    snprintf(path, sizeof path, "%s/DATA_S2/S2_%zu.npy", dir, i);
    int16_t *s2 = read_npy(path, dict, (size_t)t * 10 * HW * 2);
    float *x = malloc((size_t)t * 10 * HW * sizeof *x), *ndvi = malloc((size_t)t * HW * 4);
    ck_assert(x && ndvi);
    for (size_t k = 0; k < (size_t)t * 10 * HW; ++k) x[k] = s2[k];
    ck_assert_int_eq(msci_vi_compute(MSCI_VI_NDVI, &bands, x, t, 10, HW, ndvi, NULL), MSC_OK);
    for (int k = 0; k < t; ++k) {
      const int16_t *blue = s2 + (size_t)k * 10 * HW; /* B2, channel 0 */
      double sum[19] = {0};
      int cnt[19] = {0};
      for (int q = 0; q < HW; ++q) {
        const float v = ndvi[(size_t)k * HW + q];
        ck_assert(isfinite(v));
        if (cloudy[k]) {
          /* Cloud: bright in every band (≥ 0.3 reflectance), NDVI near 0 whatever lies
           * below, far from a crop's curve. */
          for (int b = 0; b < 10; ++b)
            ck_assert_int_ge(s2[((size_t)k * 10 + b) * HW + q], 3000);
          ck_assert(v > -0.2f && v < 0.1f);
          /* An outlier: where the parcel's curve is high, the cloud's NDVI is far below. */
          if (target[q] >= 1 && target[q] <= 18 && expected_ndvi(target[q], day[k]) > 0.4) {
            ck_assert(expected_ndvi(target[q], day[k]) - v > 0.3);
            ++outliers;
          }
          continue;
        }
        ck_assert_int_lt(blue[q], 1500);
        const int c = target[q];
        if (c == 19) continue;
        const double want = expected_ndvi(c, day[k]);
        ck_assert_msg(fabs(v - want) < 0.1,
                      "patch %zu date %d pixel %d class %d: NDVI %g, "
                      "curve %g",
                      i, k, q, c, (double)v, want);
        sum[c] += v, ++cnt[c];
      }
      for (int c = 0; c < 19; ++c)
        if (cnt[c] >= 20)
          ck_assert_msg(fabs(sum[c] / cnt[c] - expected_ndvi(c, day[k])) < 0.015,
                        "patch %zu date %d class %d: mean NDVI %g, curve %g", i, k, c,
                        sum[c] / cnt[c], expected_ndvi(c, day[k]));
    }
    free(x), free(ndvi), free(s2), free(target), free(inst);
  }
  json_decref(root);
  ck_assert_int_gt(outliers, 0); /* seed 5 has clouds in the growing season */
  /* Different patches draw different T (seed 5: checked once, a property of the plan). */
  int distinct_t = 0;
  for (int k = 0; k < 64; ++k) distinct_t += t_seen[k];
  ck_assert_int_ge(distinct_t, 2);
}
END_TEST

START_TEST(deterministic) {
  const char *a = tmpdir("a"), *b = tmpdir("b"), *c = tmpdir("c");
  ck_assert_int_eq(msc_synth_write(a, "pastis", N_PATCH, 11, NULL), MSC_OK);
  ck_assert_int_eq(msc_synth_write(b, "pastis", N_PATCH, 11, NULL), MSC_OK);
  ck_assert_int_eq(msc_synth_write(c, "pastis", N_PATCH, 12, NULL), MSC_OK);
  static const char *const fmt[3] = {"%s/DATA_S2/S2_%d.npy", "%s/ANNOTATIONS/TARGET_%d.npy",
                                     "%s/INSTANCE_ANNOTATIONS/INSTANCES_%d.npy"};
  char pa[4096], pb[4096], pc[4096];
  int differ = 0;
  for (int i = 0; i < N_PATCH; ++i)
    for (int k = 0; k < 3; ++k) {
      snprintf(pa, sizeof pa, fmt[k], a, i);
      snprintf(pb, sizeof pb, fmt[k], b, i);
      snprintf(pc, sizeof pc, fmt[k], c, i);
      ck_assert_msg(same_bytes(pa, pb), "%s differs", pb);
      differ += !same_bytes(pa, pc);
    }
  snprintf(pa, sizeof pa, "%s/metadata.geojson", a);
  snprintf(pb, sizeof pb, "%s/metadata.geojson", b);
  snprintf(pc, sizeof pc, "%s/metadata.geojson", c);
  ck_assert(same_bytes(pa, pb));
  ck_assert(!same_bytes(pa, pc));
  ck_assert_int_eq(differ, 3 * N_PATCH);
  /* Writing again over a dataset replaces its files with the same bytes, no .tmp left. */
  ck_assert_int_eq(msc_synth_write(b, "pastis", N_PATCH, 11, NULL), MSC_OK);
  ck_assert(same_bytes(pa, pb));
  snprintf(pb, sizeof pb, "%s/DATA_S2/S2_0.npy.tmp", b);
  ck_assert(!exists(pb));
  snprintf(pb, sizeof pb, "%s/metadata.geojson.tmp", b);
  ck_assert(!exists(pb));
}
END_TEST

START_TEST(refusals) {
  /* A non-empty directory that is not a PASTIS dataset is refused and left as it was. */
  const char *dir = tmpdir("user");
  char path[4096];
  ck_assert_int_eq(mkdir(dir, 0777), 0);
  snprintf(path, sizeof path, "%s/notes.txt", dir);
  FILE *f = fopen(path, "w");
  ck_assert(f != NULL);
  fputs("mine\n", f);
  fclose(f);
  ck_assert_int_eq(msc_synth_write(dir, "pastis", 2, 1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert(strstr(msc_last_error(), "notes.txt") != NULL);
  snprintf(path, sizeof path, "%s/DATA_S2", dir);
  ck_assert(!exists(path));
  /* A BigEarthNet v2 dataset is not one either, and the reverse. */
  const char *ben = tmpdir("ben"), *pas = tmpdir("pas");
  ck_assert_int_eq(msc_synth_write(ben, "bigearthnet-v2", 1, 1, NULL), MSC_OK);
  ck_assert_int_eq(msc_synth_write(ben, "pastis", 1, 1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_synth_write(pas, "pastis", 1, 1, NULL), MSC_OK);
  ck_assert_int_eq(msc_synth_write(pas, "bigearthnet-v2", 1, 1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_synth_write(tmpdir("x"), "pastis", 0, 1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_synth_write(tmpdir("x"), "PASTIS", 1, 1, NULL), MSC_E_UNSUPPORTED);
}
END_TEST

/* ---- the .npy writer alone -------------------------------------------------------------- */

START_TEST(npy_writer) {
  const char *dir = tmpdir("npy");
  char path[4096];
  ck_assert_int_eq(mkdir(dir, 0777), 0);
  snprintf(path, sizeof path, "%s/v.npy", dir);
  const float v[5] = {1.f, -2.5f, 0.f, 3.25f, 1e-3f};
  const int64_t n5 = 5;
  ck_assert_int_eq(msci_npy_write(path, "<f4", 1, &n5, v), MSC_OK);
  float *back =
      read_npy(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", sizeof v);
  ck_assert(!memcmp(back, v, sizeof v));
  free(back);
  const double s = 2.0;
  ck_assert_int_eq(msci_npy_write(path, "<f8", 0, NULL, &s), MSC_OK);
  double *sb = read_npy(path, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 8);
  ck_assert(*sb == 2.0);
  free(sb);
  const int64_t empty[2] = {0, 3};
  ck_assert_int_eq(msci_npy_write(path, "|u1", 2, empty, NULL), MSC_OK);
  free(read_npy(path, "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 3), }", 0));
  ck_assert_int_eq(msci_npy_write(path, "<c8", 1, &n5, v), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_write(path, "<f4", -1, &n5, v), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_write(path, "<f4", 1, &n5, NULL), MSC_E_INVALID_ARGUMENT);
  const int64_t neg = -1;
  ck_assert_int_eq(msci_npy_write(path, "<f4", 1, &neg, v), MSC_E_INVALID_ARGUMENT);
  snprintf(path, sizeof path, "%s/no/such/dir/v.npy", dir);
  ck_assert_int_eq(msci_npy_write(path, "<f4", 1, &n5, v), MSC_E_IO);
}
END_TEST

static Suite *synth_pastis_suite(void) {
  Suite *s = suite_create("synth_pastis");
  TCase *tc = tcase_create("pastis");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, layout_labels_dates_and_phenology);
  tcase_add_test(tc, deterministic);
  tcase_add_test(tc, refusals);
  tcase_add_test(tc, npy_writer);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(synth_pastis_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
