/*
 * test_pastis.c — the PASTIS format and SITS samples (lib/data/dataset_pastis.c,
 * lib/data/sits_reader.c, docs/pimc.md):
 *
 *  - the layout fixture (tests/data/pastis-layout: no dates-S2) and a copy of it with
 *    dates-S2 added parse; folds map to splits; pixel labels equal TARGET channel 0 read
 *    whole by the .npy reader; void pixels are never drawn;
 *  - on synthetic series (msc_synth_write "pastis") the "rp" and "s2" arrays of a batch
 *    equal a plain computation written here: the series read whole, resampled onto the
 *    grid by a brute-force linear interpolation, NDVI/EVI/SAVI by their formulas,
 *    |x_i − x_j|, and the median image of the window with edge replication;
 *  - patch samples: multi-hot labels of the classes present, plots of the mean series;
 *  - pad mode with the blue-reflectance cloud mask: the missing dates of a pixel are
 *    exactly the cloudy dates the generator recorded (synth-cloudy-S2);
 *  - data.sits.modalities = "series,rp": the batch's stack of dates holds the pixel's
 *    series at the window's centre;
 *  - errors: bad folds, a bad date, a DATA_S2 of the wrong shape (fail and skip), a
 *    format without series in msc_dataset_series.
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

#include "data/batch.h"
#include "data/npy.h"
#include "data/npy_write.h"
#include "mosaic/mosaic.h"

#define FIXTURE MSC_SHARED_DATA "/pastis-layout"

static char g_tmp[256];

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
  snprintf(g_tmp, sizeof g_tmp, "/tmp/msc_test_pastis_%d", (int)getpid());
  rm_rf(g_tmp);
  ck_assert_int_eq(mkdir(g_tmp, 0700), 0);
}

static void teardown(void) {
  rm_rf(g_tmp);
}

static msc_options *opts(const char *split) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", split), MSC_OK);
  return o;
}

static msc_dataset *open_ok(const char *root, msc_options *o) {
  msc_dataset *ds = NULL;
  msc_status st = msc_dataset_open(root, "pastis", o, &ds);
  ck_assert_msg(st == MSC_OK, "open %s: %s", root, msc_last_error());
  return ds;
}

/* A whole .npy as float, and its shape. */
static float *npy_all(const char *path, int64_t *dims, int32_t *nd) {
  msci_npy *n = NULL;
  ck_assert_msg(msci_npy_open(path, &n) == MSC_OK, "%s: %s", path, msc_last_error());
  ck_assert_int_eq(msci_npy_shape(n, nd, dims), MSC_OK);
  size_t cnt = msci_npy_count(n);
  float *v = malloc(cnt * sizeof *v);
  ck_assert_int_eq(msci_npy_read_f32(n, v, cnt), MSC_OK);
  msci_npy_close(n);
  return v;
}

static void sample_pos(const msc_dataset *ds, int64_t i, long long *patch, long long *y,
                       long long *x) {
  char id[64];
  ck_assert_int_eq(msc_dataset_sample_id(ds, i, id, sizeof id, NULL), MSC_OK);
  *y = *x = -1;
  int got = sscanf(id, "%lld:%lld:%lld", patch, y, x);
  ck_assert(got == 1 || got == 3);
}

/* ---- layout fixture -------------------------------------------------------------------- */

START_TEST(test_fixture_without_dates) {
  msc_options *o = opts("all");
  msc_dataset *ds = open_ok(FIXTURE, o);
  ck_assert_int_eq(msc_dataset_class_count(ds), 19);
  ck_assert_str_eq(msc_dataset_class_name(ds, 0), "background");
  ck_assert_int_eq(msc_dataset_modality_count(ds), 2);
  ck_assert_str_eq(msc_dataset_modality_name(ds, 0), "rp");
  ck_assert_str_eq(msc_dataset_modality_name(ds, 1), "s2");
  int64_t bands, size;
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 0, &bands, &size), MSC_OK);
  ck_assert_int_eq(bands, 3);
  ck_assert_int_eq(size, 32); /* data.sits.length */
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 1, &bands, &size), MSC_OK);
  ck_assert_int_eq(bands, 10);
  ck_assert_int_eq(size, 32); /* data.sits.patch */
  ck_assert_int_eq(msc_dataset_size(ds), 5 * 16);
  /* Labels: channel 0 of TARGET at the pixel, never void; distinct pixels per patch. */
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int64_t idx[80];
  for (int i = 0; i < 80; ++i) idx[i] = i;
  ck_assert_msg(msc_dataset_fill_batch(ds, idx, 80, b) == MSC_OK, "%s", msc_last_error());
  for (int64_t i = 0; i < 80; ++i) {
    long long p, y, x;
    sample_pos(ds, i, &p, &y, &x);
    char path[512];
    snprintf(path, sizeof path, FIXTURE "/ANNOTATIONS/TARGET_%lld.npy", p);
    int64_t dims[32];
    int32_t nd;
    float *t = npy_all(path, dims, &nd);
    ck_assert_int_eq(nd, 3);
    int cls = (int)t[y * dims[2] + x];
    free(t);
    ck_assert_int_ne(cls, 19);
    for (int c = 0; c < 19; ++c) ck_assert_int_eq(b->labels[i * 19 + c], c == cls);
    for (int64_t j = 0; j < i; ++j) {
      long long p2, y2, x2;
      sample_pos(ds, j, &p2, &y2, &x2);
      ck_assert(!(p2 == p && y2 == y && x2 == x));
    }
  }
  /* Without dates the days are positions: the grid spans 0 .. max T − 1 = 8. */
  int64_t t = 0, c = 0;
  ck_assert_int_eq(msc_dataset_series(ds, 0, NULL, 0, NULL, &t, &c), MSC_OK);
  ck_assert_int_eq(t, 32);
  ck_assert_int_eq(c, 10);
  float series[320];
  double days[32];
  ck_assert_int_eq(msc_dataset_series(ds, 0, series, 320, days, &t, &c), MSC_OK);
  ck_assert_double_eq_tol(days[0], 0.0, 1e-12);
  ck_assert_double_eq_tol(days[31], 8.0, 1e-12);
  ck_assert_double_eq_tol(days[1], 8.0 / 31.0, 1e-12);
  ck_assert_int_eq(msc_dataset_series(ds, 0, series, 319, days, &t, &c),
                   MSC_E_BUFFER_TOO_SMALL);
  msc_batch_free(b);
  msc_dataset_free(ds);
  /* Folds: 1,2,3 train; 4 validation; 5 test (the fixture's patch i is in fold i + 1). */
  const char *splits[3] = {"train", "validation", "test"};
  const int64_t want[3] = {3 * 16, 16, 16};
  for (int s = 0; s < 3; ++s) {
    ck_assert_int_eq(msc_options_set_string(o, "data.split", splits[s]), MSC_OK);
    ds = open_ok(FIXTURE, o);
    ck_assert_int_eq(msc_dataset_size(ds), want[s]);
    msc_dataset_free(ds);
  }
  ck_assert_int_eq(msc_options_set_string(o, "data.pastis.folds", "5;1;2,3,4"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "test"), MSC_OK);
  ds = open_ok(FIXTURE, o);
  ck_assert_int_eq(msc_dataset_size(ds), 3 * 16);
  msc_dataset_free(ds);
  ck_assert_int_eq(msc_options_set_string(o, "data.pastis.folds", "1,2;3;1"), MSC_OK);
  ck_assert_int_eq(msc_dataset_open(FIXTURE, "pastis", o, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "fold 1 listed twice"));
  msc_options_free(o);
}
END_TEST

/* A copy of the fixture whose metadata gains dates-S2 (dates[k] = 20190101 + ...). */
static void copy_fixture_with_dates(const char *dst, const char *bad_date) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp -r " FIXTURE " %s", dst);
  ck_assert_int_eq(system(cmd), 0);
  json_error_t err;
  json_t *root = json_load_file(FIXTURE "/metadata.geojson", 0, &err);
  ck_assert_ptr_nonnull(root);
  json_t *feats = json_object_get(root, "features");
  for (size_t f = 0; f < json_array_size(feats); ++f) {
    json_t *props = json_object_get(json_array_get(feats, f), "properties");
    int64_t id = json_integer_value(json_object_get(props, "ID_PATCH"));
    char path[512];
    snprintf(path, sizeof path, FIXTURE "/DATA_S2/S2_%lld.npy", (long long)id);
    int64_t dims[32];
    int32_t nd;
    free(npy_all(path, dims, &nd));
    json_t *dates = json_object();
    for (int64_t k = 0; k < dims[0]; ++k) {
      char key[24];
      snprintf(key, sizeof key, "%lld", (long long)k);
      /* January 3 + 10 k days + the patch id: 2019-01-03, 01-13, ... */
      int64_t day = 3 + 10 * k + id, m = 1 + (day - 1) / 31, d = 1 + (day - 1) % 31;
      json_object_set_new(dates, key, json_integer(20190000 + m * 100 + d));
    }
    if (bad_date && f == 2) json_object_set_new(dates, "1", json_string(bad_date));
    json_object_set_new(props, "dates-S2", dates);
  }
  char meta[512];
  snprintf(meta, sizeof meta, "%s/metadata.geojson", dst);
  ck_assert_int_eq(json_dump_file(root, meta, 0), 0);
  json_decref(root);
}

START_TEST(test_fixture_with_dates) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/dated", g_tmp);
  copy_fixture_with_dates(dir, NULL);
  msc_options *o = opts("all");
  msc_dataset *ds = open_ok(dir, o);
  /* The grid runs from the earliest date (patch 0, 2019-01-03) to the latest one. */
  float series[320];
  double days[32];
  int64_t t, c;
  ck_assert_int_eq(msc_dataset_series(ds, 0, series, 320, days, &t, &c), MSC_OK);
  const double jan3 = 17899.0; /* days from 1970-01-01 to 2019-01-03 */
  ck_assert_double_eq_tol(days[0], jan3, 1e-9);
  /* Patch 3 has 9 dates: its last is day 3 + 80 + 3 = 86 of January-based counting,
   * i.e. m = 3, d = 24: 2019-03-24 = jan3 + 80. */
  ck_assert_double_eq_tol(days[31], jan3 + 80.0, 1e-9);
  msc_dataset_free(ds);
  /* An impossible date is refused, naming the patch. */
  snprintf(dir, sizeof dir, "%s/baddate", g_tmp);
  copy_fixture_with_dates(dir, "20191332");
  ck_assert_int_eq(msc_dataset_open(dir, "pastis", o, &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "patch 2"));
  msc_options_free(o);
}
END_TEST

/* ---- values on synthetic series -------------------------------------------------------- */

static int64_t ymd_days(int64_t ymd) { /* days since 1970-01-01, by counting */
  static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int64_t y = ymd / 10000, m = ymd / 100 % 100, d = ymd % 100, n = 0;
  for (int64_t yy = 1970; yy < y; ++yy)
    n += 365 + ((yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0);
  for (int64_t mm = 1; mm < m; ++mm)
    n += mdays[mm - 1] + (mm == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
  return n + d - 1;
}

typedef struct synth_patch {
  int64_t t;
  double days[64];
  int cloudy[64];
  float *x; /* T × 10 × 32 × 32 */
  float *target;
} synth_patch;

static void load_patch(const char *dir, int64_t id, synth_patch *p) {
  char path[1100];
  snprintf(path, sizeof path, "%s/DATA_S2/S2_%lld.npy", dir, (long long)id);
  int64_t dims[32];
  int32_t nd;
  p->x = npy_all(path, dims, &nd);
  p->t = dims[0];
  snprintf(path, sizeof path, "%s/ANNOTATIONS/TARGET_%lld.npy", dir, (long long)id);
  p->target = npy_all(path, dims, &nd);
  snprintf(path, sizeof path, "%s/metadata.geojson", dir);
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  json_t *props = json_object_get(json_array_get(json_object_get(root, "features"), (size_t)id),
                                  "properties");
  ck_assert_int_eq(json_integer_value(json_object_get(props, "ID_PATCH")), id);
  json_t *dates = json_object_get(props, "dates-S2");
  for (int64_t k = 0; k < p->t; ++k) {
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)k);
    p->days[k] = (double)ymd_days(json_integer_value(json_object_get(dates, key)));
    p->cloudy[k] = 0;
  }
  json_t *cl = json_object_get(props, "synth-cloudy-S2");
  for (size_t k = 0; k < json_array_size(cl); ++k)
    p->cloudy[json_integer_value(json_array_get(cl, k))] = 1;
  json_decref(root);
}

/* Brute force: value at time g from the finite values v[0..t) at days[]. */
static double interp(const float *v, int64_t stride, const double *days, int64_t t, double g) {
  int64_t a = -1, b = -1;
  for (int64_t k = 0; k < t; ++k) {
    if (!isfinite(v[k * stride])) continue;
    if (days[k] <= g) a = k;
    if (days[k] >= g && b < 0) b = k;
  }
  if (a < 0 && b < 0) return NAN;
  if (a < 0) return v[b * stride];
  if (b < 0 || a == b) return v[a * stride];
  double w = (g - days[a]) / (days[b] - days[a]);
  return (1 - w) * v[a * stride] + w * v[b * stride];
}

static double vi(int k, const double *rho) { /* rho: the 10 PASTIS bands as reflectance */
  double r2 = rho[0], r4 = rho[2], r8 = rho[6];
  if (k == 0) return (r8 - r4) / (r8 + r4);
  if (k == 1) return 2.5 * (r8 - r4) / (r8 + 6 * r4 - 7.5 * r2 + 1);
  return 1.5 * (r8 - r4) / (r8 + r4 + 0.5);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

START_TEST(test_synthetic_pixels) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/synth", g_tmp);
  ck_assert_int_eq(msc_synth_write(dir, "pastis", 6, 7, NULL), MSC_OK);
  msc_options *o = opts("all");
  const int64_t L = 16;
  ck_assert_int_eq(msc_options_set_int(o, "data.sits.length", L), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "data.sits.pixels", 5), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "data.sits.patch", 12), MSC_OK);
  msc_dataset *ds = open_ok(dir, o);
  ck_assert_int_eq(msc_dataset_size(ds), 30);
  /* Grid: the first and last dates over all patches. */
  synth_patch pt[6];
  double first = 1e9, last = -1e9;
  for (int64_t i = 0; i < 6; ++i) {
    load_patch(dir, i, &pt[i]);
    first = fmin(first, pt[i].days[0]);
    last = fmax(last, pt[i].days[pt[i].t - 1]);
  }
  double grid[16];
  for (int64_t l = 0; l < L; ++l)
    grid[l] = first + (last - first) * (double)l / (double)(L - 1);

  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int64_t idx[30];
  for (int i = 0; i < 30; ++i) idx[i] = i;
  ck_assert_msg(msc_dataset_fill_batch(ds, idx, 30, b) == MSC_OK, "%s", msc_last_error());
  const float *rp = b->mod[0].data, *img = b->mod[1].data;
  ck_assert_str_eq(b->mod[0].name, "rp");
  double worst_rp = 0, worst_img = 0;
  for (int64_t i = 0; i < 30; ++i) {
    long long p, y, x;
    sample_pos(ds, i, &p, &y, &x);
    const synth_patch *sp = &pt[p];
    const int64_t hw = 32 * 32;
    /* The pixel's series on the grid, then the indices. */
    double ser[16][10], ind[3][16];
    for (int64_t l = 0; l < L; ++l)
      for (int c = 0; c < 10; ++c)
        ser[l][c] = interp(sp->x + c * hw + y * 32 + x, 10 * hw, sp->days, sp->t, grid[l]);
    for (int64_t l = 0; l < L; ++l) {
      double rho[10];
      for (int c = 0; c < 10; ++c) rho[c] = (double)(float)ser[l][c] / 10000.0;
      for (int k = 0; k < 3; ++k) ind[k][l] = (float)vi(k, rho);
    }
    for (int k = 0; k < 3; ++k)
      for (int64_t a = 0; a < L; ++a)
        for (int64_t c = 0; c < L; ++c) {
          double want = fabs(ind[k][a] - ind[k][c]);
          double got = rp[((i * 3 + k) * L + a) * L + c];
          worst_rp = fmax(worst_rp, fabs(got - want));
        }
    /* The image: median over the grid dates of each window pixel, edges replicated. */
    for (int c = 0; c < 10; ++c)
      for (int64_t wy = 0; wy < 12; ++wy)
        for (int64_t wx = 0; wx < 12; ++wx) {
          long long sy = y - 6 + wy, sx = x - 6 + wx;
          sy = sy < 0 ? 0 : sy > 31 ? 31 : sy;
          sx = sx < 0 ? 0 : sx > 31 ? 31 : sx;
          double v[16];
          for (int64_t l = 0; l < L; ++l)
            v[l] =
                (float)interp(sp->x + c * hw + sy * 32 + sx, 10 * hw, sp->days, sp->t, grid[l]);
          qsort(v, (size_t)L, sizeof *v, cmp_double);
          double want = 0.5 * (v[L / 2 - 1] + v[L / 2]);
          double got = img[((i * 10 + c) * 12 + wy) * 12 + wx];
          worst_img = fmax(worst_img, fabs(got - want) / fmax(1.0, fabs(want)));
        }
  }
  ck_assert_msg(worst_rp < 2e-5, "rp differs by %g", worst_rp);
  ck_assert_msg(worst_img < 1e-5, "image differs by %g", worst_img);
  msc_batch_free(b);
  msc_dataset_free(ds);

  /* Patch samples: classes present (not void) and the mean series' plots. */
  ck_assert_int_eq(msc_options_set_string(o, "data.sits.sample", "patch"), MSC_OK);
  ds = open_ok(dir, o);
  ck_assert_int_eq(msc_dataset_size(ds), 6);
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_msg(msc_dataset_fill_batch(ds, idx, 6, b) == MSC_OK, "%s", msc_last_error());
  for (int64_t i = 0; i < 6; ++i) {
    int present[20] = {0};
    for (int q = 0; q < 32 * 32; ++q) present[(int)pt[i].target[q]] = 1;
    for (int c = 0; c < 19; ++c) ck_assert_int_eq(b->labels[i * 19 + c], present[c]);
    float s[160];
    int64_t t, c;
    ck_assert_int_eq(msc_dataset_series(ds, i, s, 160, NULL, &t, &c), MSC_OK);
    /* Band 2 (B4) at grid date 3: the mean over the pixels of the interpolated values
     * equals the interpolation of the mean (interpolation is linear). */
    double mean_t[64];
    for (int64_t k = 0; k < pt[i].t; ++k) {
      double acc = 0;
      for (int q = 0; q < 32 * 32; ++q) acc += pt[i].x[(k * 10 + 2) * 1024 + q];
      mean_t[k] = acc / 1024.0;
    }
    float mt[64];
    for (int64_t k = 0; k < pt[i].t; ++k) mt[k] = (float)mean_t[k];
    double want = interp(mt, 1, pt[i].days, pt[i].t, grid[3]);
    ck_assert_double_eq_tol(s[3 * 10 + 2], want, 1e-3 * fabs(want));
  }
  msc_batch_free(b);
  msc_dataset_free(ds);

  /* Pad mode with the cloud mask: a pixel's missing dates are the generator's cloudy ones,
   * and padding follows its last date. */
  ck_assert_int_eq(msc_options_set_string(o, "data.sits.sample", "pixel"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.sits.time", "pad"), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "data.sits.length", 32), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "data.sits.cloud_blue", 0.25), MSC_OK);
  ds = open_ok(dir, o);
  for (int64_t i = 0; i < msc_dataset_size(ds); ++i) {
    long long p, y, x;
    sample_pos(ds, i, &p, &y, &x);
    float s[320];
    double days[32];
    int64_t t, c;
    ck_assert_int_eq(msc_dataset_series(ds, i, s, 320, days, &t, &c), MSC_OK);
    for (int64_t k = 0; k < 32; ++k) {
      int missing = isnan(s[k * 10]);
      int want = k >= pt[p].t || pt[p].cloudy[k];
      ck_assert_msg(missing == want, "sample %lld date %lld: missing %d, cloudy %d",
                    (long long)i, (long long)k, missing, want);
      if (k < pt[p].t)
        ck_assert_double_eq_tol(days[k], pt[p].days[k], 1e-9);
      else
        ck_assert(isnan(days[k]));
    }
  }
  /* The plots are still finite: missing dates are filled before plotting. */
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_msg(msc_dataset_fill_batch(ds, idx, 30, b) == MSC_OK, "%s", msc_last_error());
  for (int64_t q = 0; q < 30 * 3 * 32 * 32; ++q) ck_assert(isfinite(b->mod[0].data[q]));
  msc_batch_free(b);
  msc_dataset_free(ds);
  for (int i = 0; i < 6; ++i) {
    free(pt[i].x);
    free(pt[i].target);
  }
  msc_options_free(o);
}
END_TEST

/* data.sits.modalities = "series,rp": the time axis in the batch; its centre pixel is the
 * pixel's series on the axis (msc_dataset_series), date-major, missing values 0. */
START_TEST(test_series_modality) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/synth_series", g_tmp);
  ck_assert_int_eq(msc_synth_write(dir, "pastis", 3, 9, NULL), MSC_OK);
  msc_options *o = opts("all");
  const int64_t L = 12, P = 8, C = 10;
  ck_assert_int_eq(msc_options_set_string(o, "data.sits.modalities", "series,rp"), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "data.sits.length", L), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "data.sits.patch", P), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "data.sits.cloud_blue", 0.25), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.sits.time", "pad"), MSC_OK);
  msc_dataset *ds = open_ok(dir, o);
  ck_assert_int_eq(msc_dataset_modality_count(ds), 2);
  ck_assert_str_eq(msc_dataset_modality_name(ds, 0), "series");
  ck_assert_str_eq(msc_dataset_modality_name(ds, 1), "rp");
  int64_t bands, size;
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 0, &bands, &size), MSC_OK);
  ck_assert_int_eq(bands, L * C);
  ck_assert_int_eq(size, P);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int64_t idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  ck_assert_msg(msc_dataset_fill_batch(ds, idx, 8, b) == MSC_OK, "%s", msc_last_error());
  int saw_missing = 0;
  for (int64_t i = 0; i < 8; ++i) {
    float ser[12 * 10];
    int64_t t, c;
    ck_assert_int_eq(msc_dataset_series(ds, i, ser, 120, NULL, &t, &c), MSC_OK);
    for (int64_t l = 0; l < L; ++l)
      for (int64_t band = 0; band < C; ++band) {
        float want = ser[l * C + band];
        saw_missing |= isnan(want);
        if (isnan(want)) want = 0.0f;
        float got = b->mod[0].data[((i * L * C + l * C + band) * P + P / 2) * P + P / 2];
        ck_assert_msg(got == want, "sample %lld date %lld band %lld: %g vs %g", (long long)i,
                      (long long)l, (long long)band, (double)got, (double)want);
      }
  }
  ck_assert_msg(saw_missing, "pad mode with clouds should have missing dates");
  msc_batch_free(b);
  msc_dataset_free(ds);
  ck_assert_int_eq(msc_options_set_string(o, "data.sits.modalities", "rp,rp"), MSC_OK);
  ck_assert_int_eq(msc_dataset_open(dir, "pastis", o, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "listed twice"));
  ck_assert_int_eq(msc_options_set_string(o, "data.sits.modalities", "rp,s1"), MSC_OK);
  ck_assert_int_eq(msc_dataset_open(dir, "pastis", o, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "'s1'"));
  msc_options_free(o);
}
END_TEST

START_TEST(test_errors) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/broken", g_tmp);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp -r " FIXTURE " %s", dir);
  ck_assert_int_eq(system(cmd), 0);
  /* Patch 3's series becomes a 3-D array. */
  char path[600];
  snprintf(path, sizeof path, "%s/DATA_S2/S2_3.npy", dir);
  int16_t zeros[10 * 4 * 4] = {0};
  const int64_t shape[3] = {10, 4, 4};
  ck_assert_int_eq(msci_npy_write(path, "<i2", 3, shape, zeros), MSC_OK);
  msc_options *o = opts("all");
  msc_dataset *ds = NULL;
  ck_assert_int_eq(msc_dataset_open(dir, "pastis", o, &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "S2_3.npy"));
  ck_assert_int_eq(msc_options_set_string(o, "data.on_missing", "skip"), MSC_OK);
  ds = open_ok(dir, o);
  ck_assert_int_eq(msc_dataset_skipped(ds), 1);
  ck_assert_int_eq(msc_dataset_size(ds), 4 * 16);
  msc_dataset_free(ds);
  /* A missing metadata file, a bad option value. */
  snprintf(path, sizeof path, "%s/metadata.geojson", dir);
  ck_assert_int_eq(unlink(path), 0);
  ck_assert_int_eq(msc_dataset_open(dir, "pastis", o, &ds), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "metadata.geojson"));
  msc_options_free(o);
  o = opts("all");
  ck_assert_int_eq(msc_options_set_string(o, "data.sits.indices", "ndvi,foo"), MSC_OK);
  ck_assert_int_eq(msc_dataset_open(FIXTURE, "pastis", o, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "'foo'"));
  ck_assert_int_eq(msc_options_set_string(o, "data.sits.indices", "ndvi"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.sits.image", "40"), MSC_OK);
  ck_assert_int_eq(msc_dataset_open(FIXTURE, "pastis", o, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "data.sits.image"));
  msc_options_free(o);
  /* msc_dataset_series on a format without series. */
  snprintf(dir, sizeof dir, "%s/ben", g_tmp);
  ck_assert_int_eq(msc_synth_write(dir, "bigearthnet-v2", 4, 1, NULL), MSC_OK);
  o = opts("all");
  ck_assert_int_eq(msc_dataset_open(dir, "bigearthnet-v2", o, &ds), MSC_OK);
  int64_t t, c;
  ck_assert_int_eq(msc_dataset_series(ds, 0, NULL, 0, NULL, &t, &c), MSC_E_UNSUPPORTED);
  ck_assert_int_eq(msc_dataset_series(NULL, 0, NULL, 0, NULL, &t, &c), MSC_E_INVALID_ARGUMENT);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("pastis");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_fixture_without_dates);
  tcase_add_test(tc, test_fixture_with_dates);
  tcase_add_test(tc, test_synthetic_pixels);
  tcase_add_test(tc, test_series_modality);
  tcase_add_test(tc, test_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
