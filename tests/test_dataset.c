/*
 * test_dataset.c — datasets on the real BigEarthNet v2 samples (examples/data) and the
 * other real samples of tests/data: splits, labels,
 * batches with golden pixels, missing partners, the zstd metadata of the whole dataset,
 * stratified subsets, statistics and error paths.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/batch.h"
#include "mosaic/mosaic.h"
#include "data/dataset.h"
#include "data/raster.h"
#include "data/stratify.h"
#include "data/synth.h"

#ifndef MSC_TEST_DATA
#error "MSC_TEST_DATA must name examples/data"
#endif
#ifndef MSC_SHARED_DATA
#define MSC_SHARED_DATA "/nonexistent"
#endif

#define V2 MSC_TEST_DATA "/bigearthnet-v2"
#define P1 "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48"
#define B01                                                                                    \
  V2 "/BigEarthNet-S2/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP/" P1 "/" P1 "_B01.tif"

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static int have_dir(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int have_file(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The data is part of the repository (tests/data): its absence is a failure. */
static void skipped(const char *what) {
  ck_abort_msg("missing test data for %s", what);
}

static msc_options *opts_with(const char *k1, const char *v1, const char *k2, const char *v2) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  if (k1) ck_assert_int_eq(msc_options_set_string(o, k1, v1), MSC_OK);
  if (k2) ck_assert_int_eq(msc_options_set_string(o, k2, v2), MSC_OK);
  return o;
}

static msc_dataset *open_ok(const char *root, msc_options *o) {
  msc_dataset *ds = NULL;
  msc_status st = msc_dataset_open(root, "bigearthnet-v2", o, &ds);
  ck_assert_msg(st == MSC_OK, "open %s: %d %s", root, st, msc_last_error());
  return ds;
}

static int64_t find_id(const msc_dataset *ds, const char *id) {
  for (int64_t i = 0; i < msc_dataset_size(ds); ++i) {
    char buf[128];
    ck_assert_int_eq(msc_dataset_sample_id(ds, i, buf, sizeof buf, NULL), MSC_OK);
    if (!strcmp(buf, id)) return i;
  }
  return -1;
}

/* ---- splits, classes, labels ------------------------------------------------------- */

START_TEST(test_splits) {
  msc_dataset *ds = open_ok(V2, NULL);
  ck_assert_int_eq(msc_dataset_size(ds), 2);
  ck_assert_int_eq(msc_dataset_skipped(ds), 0);
  ck_assert_int_eq(msc_dataset_class_count(ds), 19);
  ck_assert_str_eq(msc_dataset_class_name(ds, 0), "Urban fabric");
  ck_assert_str_eq(msc_dataset_class_name(ds, 18), "Marine waters");
  ck_assert_ptr_null(msc_dataset_class_name(ds, 19));
  ck_assert_int_eq(msc_dataset_modality_count(ds), 2);
  ck_assert_str_eq(msc_dataset_modality_name(ds, 0), "s1");
  ck_assert_str_eq(msc_dataset_modality_name(ds, 1), "s2");
  ck_assert_ptr_null(msc_dataset_modality_name(ds, 2));
  int64_t b = 0, s = 0;
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 1, &b, &s), MSC_OK);
  ck_assert_int_eq(b, 12);
  ck_assert_int_eq(s, 120);
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 2, &b, &s), MSC_E_NOT_FOUND);
  msc_dataset_free(ds);

  msc_options *o = opts_with("data.split", "test", NULL, NULL);
  ds = open_ok(V2, o);
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  ck_assert_int_ge(find_id(ds, "S2A_MSIL2A_20171221T112501_N9999_R037_T29SND_56_35"), 0);
  msc_dataset_free(ds);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "validation"), MSC_OK);
  ds = open_ok(V2, o);
  ck_assert_int_eq(msc_dataset_size(ds), 0);
  msc_dataset_free(ds);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  ds = open_ok(V2, o);
  ck_assert_int_eq(msc_dataset_size(ds), 3);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

/* Labels of every patch against metadata.tsv, read here with a reader of our own. */
START_TEST(test_labels_match_metadata) {
  msc_options *o = opts_with("data.split", "all", NULL, NULL);
  msc_dataset *ds = open_ok(V2, o);
  msc_batch *batch = NULL;
  ck_assert_int_eq(msc_batch_create(&batch), MSC_OK);
  FILE *f = fopen(V2 "/metadata.tsv", "r");
  ck_assert_ptr_nonnull(f);
  char line[4096];
  ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); /* header: labels is column 8 */
  int rows = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    char *cols[8];
    int n = 0;
    for (char *p = line; n < 8; ++n) {
      cols[n] = p;
      char *t = strchr(p, '\t');
      if (!t) {
        n++;
        break;
      }
      *t = '\0';
      p = t + 1;
    }
    ck_assert_int_eq(n, 8);
    int64_t i = find_id(ds, cols[0]);
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 1, batch), MSC_OK);
    uint8_t want[19] = {0};
    for (char *save = NULL, *tok = strtok_r(cols[7], ";", &save); tok;
         tok = strtok_r(NULL, ";", &save)) {
      int c = 0;
      while (c < 19 && strcmp(msc_dataset_class_name(ds, c), tok)) c++;
      ck_assert_int_lt(c, 19);
      want[c] = 1;
    }
    ck_assert_int_eq(batch->classes, 19);
    ck_assert_mem_eq(batch->labels, want, 19);
    rows++;
  }
  ck_assert_int_eq(rows, 3);
  fclose(f);
  msc_batch_free(batch);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

/* ---- batches and golden pixels ------------------------------------------------------ */

START_TEST(test_fill_batch_golden) {
  msc_options *o = opts_with("data.split", "all", NULL, NULL);
  msc_dataset *ds = open_ok(V2, o);
  int64_t i = find_id(ds, P1);
  ck_assert_int_ge(i, 0);
  int64_t idx[3] = {i, (i + 1) % 3, (i + 2) % 3};
  msc_batch *batch = NULL;
  ck_assert_int_eq(msc_batch_create(&batch), MSC_OK);
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, 3, batch), MSC_OK);
  ck_assert_int_eq(msc_batch_size(batch), 3);
  const msci_batch_modality *s1 = msci_batch_find(batch, "s1");
  const msci_batch_modality *s2 = msci_batch_find(batch, "s2");
  ck_assert_ptr_nonnull(s1);
  ck_assert_ptr_nonnull(s2);
  ck_assert_int_eq(s1->c, 2);
  ck_assert_int_eq(s1->h, 120);
  ck_assert_int_eq(s1->w, 120);
  ck_assert_int_eq(s2->c, 12);
  ck_assert_int_eq(s2->h, 120);
  ck_assert_int_eq(s2->w, 120);
  ck_assert_uint_eq(bits_of(s1->data[0]), 0xc12d9d2fu); /* VV (0,0) of P1 */
  ck_assert_float_eq(s2->data[0], 610.f);               /* B01 (0,0): 20 -> 120, clamped */
  /* The whole B01 band against the resampler on the raw raster. */
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(B01, &r), MSC_OK);
  float *ref = malloc(120 * 120 * sizeof *ref);
  msci_resample(r.data, r.height, r.width, ref, 120, 120, MSCI_RESAMPLE_BILINEAR);
  ck_assert_mem_eq(s2->data, ref, 120 * 120 * sizeof *ref);
  /* Deterministic, and a batch of another size is refilled. */
  float first = s2->data[120 * 120 * 12 + 5];
  int64_t two[2] = {idx[1], idx[0]};
  ck_assert_int_eq(msc_dataset_fill_batch(ds, two, 2, batch), MSC_OK);
  ck_assert_int_eq(msc_batch_size(batch), 2);
  s2 = msci_batch_find(batch, "s2");
  ck_assert_uint_eq(bits_of(s2->data[5]), bits_of(first));
  ck_assert_float_eq(s2->data[120 * 120 * 12], 610.f);
  /* Nearest: (0,0) is the source pixel (0,0) as well. */
  msc_dataset_free(ds);
  ck_assert_int_eq(msc_options_set_string(o, "data.resample", "nearest"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.s2_bands", "B09,B01"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.s1_bands", ""), MSC_OK);
  ds = open_ok(V2, o);
  ck_assert_int_eq(msc_dataset_modality_count(ds), 1);
  ck_assert_str_eq(msc_dataset_modality_name(ds, 0), "s2");
  i = find_id(ds, P1);
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 1, batch), MSC_OK);
  s2 = msci_batch_find(batch, "s2");
  ck_assert_int_eq(s2->c, 2);
  msci_resample(r.data, r.height, r.width, ref, 120, 120, MSCI_RESAMPLE_NEAREST);
  ck_assert_mem_eq(s2->data + 120 * 120, ref, 120 * 120 * sizeof *ref);
  /* Out-of-range indices. */
  int64_t bad = 5;
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &bad, 1, batch), MSC_E_INVALID_ARGUMENT);
  bad = -1;
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &bad, 1, batch), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 0, batch), MSC_E_INVALID_ARGUMENT);
  free(ref);
  msci_raster_free(&r);
  msc_batch_free(batch);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

START_TEST(test_sample_id_protocol) {
  msc_dataset *ds = open_ok(V2, NULL);
  size_t len = 0;
  ck_assert_int_eq(msc_dataset_sample_id(ds, 0, NULL, 0, &len), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_uint_eq(len, strlen(P1));
  char small[8];
  ck_assert_int_eq(msc_dataset_sample_id(ds, 0, small, sizeof small, &len),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_uint_eq(strlen(small), 7);
  char *buf = malloc(len + 1);
  ck_assert_int_eq(msc_dataset_sample_id(ds, 0, buf, len + 1, NULL), MSC_OK);
  ck_assert_uint_eq(strlen(buf), len);
  ck_assert_int_eq(msc_dataset_sample_id(ds, 2, buf, len + 1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_dataset_sample_id(NULL, 0, buf, len + 1, NULL), MSC_E_INVALID_ARGUMENT);
  free(buf);
  msc_dataset_free(ds);
}
END_TEST

/* ---- statistics ------------------------------------------------------------------------ */

START_TEST(test_published_stats) {
  msc_dataset *ds = open_ok(V2, NULL);
  float mean[12], std[12];
  ck_assert_int_eq(msc_dataset_stats(ds, 0, mean, std, 12), MSC_OK);
  ck_assert_float_eq_tol(mean[0], -12.620f, 1e-4f);
  ck_assert_float_eq_tol(std[1], 5.464f, 1e-4f);
  ck_assert_int_eq(msc_dataset_stats(ds, 1, mean, std, 12), MSC_E_NOT_FOUND); /* B01, B09 */
  ck_assert_int_eq(msc_dataset_stats(ds, 2, mean, std, 12), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_dataset_stats(ds, 0, mean, std, 1), MSC_E_BUFFER_TOO_SMALL);
  msc_dataset_free(ds);
  msc_options *o = opts_with("data.s2_bands", "B12, B02", "data.s1_bands", "VH");
  ds = open_ok(V2, o);
  ck_assert_int_eq(msc_dataset_stats(ds, 1, mean, std, 12), MSC_OK);
  ck_assert_float_eq_tol(mean[0], 1009.33f, 1e-2f);
  ck_assert_float_eq_tol(std[1], 572.42f, 1e-2f);
  ck_assert_int_eq(msc_dataset_stats(ds, 0, mean, std, 12), MSC_OK);
  ck_assert_float_eq_tol(mean[0], -19.290f, 1e-4f);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

/* compute_stats against a two-pass computation on the raw S1 files (120 px, so no
 * resampling) and on one resampled S2 band. */
START_TEST(test_compute_stats) {
  msc_options *o = opts_with("data.split", "all", "data.s2_bands", "B01");
  msc_dataset *ds = open_ok(V2, o);
  const int64_t n = msc_dataset_size(ds);
  ck_assert_int_eq(n, 3);
  float mean[2], std[2];
  ck_assert_int_eq(msc_dataset_compute_stats(ds, 0, 0, mean, std, 2), MSC_OK);
  for (int b = 0; b < 2; ++b) {
    long double s = 0, s2 = 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; ++i) {
      const char *path = ds->samples[i].bands[0][b].path;
      msci_raster r;
      ck_assert_int_eq(msci_raster_read(path, &r), MSC_OK);
      for (int64_t p = 0; p < r.width * r.height; ++p) s += r.data[p], cnt++;
      msci_raster_free(&r);
    }
    long double mu = s / cnt;
    for (int64_t i = 0; i < n; ++i) {
      msci_raster r;
      ck_assert_int_eq(msci_raster_read(ds->samples[i].bands[0][b].path, &r), MSC_OK);
      for (int64_t p = 0; p < r.width * r.height; ++p)
        s2 += (r.data[p] - mu) * (r.data[p] - mu);
      msci_raster_free(&r);
    }
    ck_assert_float_eq_tol(mean[b], (float)mu, 1e-4f * fabsf((float)mu));
    ck_assert_float_eq_tol(std[b], (float)sqrtl(s2 / cnt), 1e-4f * (float)sqrtl(s2 / cnt));
  }
  /* One sample: the upsampled B01 of that sample. */
  float m1[1], s1[1];
  ck_assert_int_eq(msc_dataset_compute_stats(ds, 1, 1, m1, s1, 1), MSC_OK);
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(ds->samples[0].bands[1][0].path, &r), MSC_OK);
  float *up = malloc(120 * 120 * sizeof *up);
  msci_resample(r.data, r.height, r.width, up, 120, 120, MSCI_RESAMPLE_BILINEAR);
  double s = 0, q = 0;
  for (int p = 0; p < 120 * 120; ++p) s += up[p];
  for (int p = 0; p < 120 * 120; ++p) q += (up[p] - s / 14400) * (up[p] - s / 14400);
  ck_assert_float_eq_tol(m1[0], (float)(s / 14400), 1e-3f);
  ck_assert_float_eq_tol(s1[0], (float)sqrt(q / 14400), 1e-3f);
  free(up);
  msci_raster_free(&r);
  ck_assert_int_eq(msc_dataset_compute_stats(ds, 0, 0, mean, std, 1), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(msc_dataset_compute_stats(ds, 3, 0, mean, std, 2), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_dataset_compute_stats(NULL, 0, 0, mean, std, 2), MSC_E_INVALID_ARGUMENT);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

/* ---- stratified subsets ---------------------------------------------------------------- */

START_TEST(test_stratify) {
  const int64_t n = 3000, c = 19;
  uint8_t *y = calloc((size_t)(n * c), 1), *a = malloc(n), *b = malloc(n), *d = malloc(n);
  uint64_t x = 12345;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t l = 0; l < c; ++l) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      double u = (double)(x >> 11) / 9007199254740992.0;
      /* class l has probability 0.4 / (l+1)^1.5: the rarest few have ~10-20 samples */
      y[i * c + l] = u < 0.4 / pow((double)l + 1, 1.5) * (l >= 16 ? 0.05 : 1.0);
    }
  ck_assert_int_eq(msci_stratified_subset(y, n, c, 0.1, 7, a), MSC_OK);
  ck_assert_int_eq(msci_stratified_subset(y, n, c, 0.1, 7, b), MSC_OK);
  ck_assert_int_eq(msci_stratified_subset(y, n, c, 0.1, 8, d), MSC_OK);
  ck_assert_mem_eq(a, b, (size_t)n);
  ck_assert_int_ne(memcmp(a, d, (size_t)n), 0);
  int64_t size = 0;
  for (int64_t i = 0; i < n; ++i) size += a[i];
  ck_assert_int_le(llabs(size - 300), 1);
  int rare_checked = 0;
  for (int64_t l = 0; l < c; ++l) {
    int64_t all = 0, sub = 0;
    for (int64_t i = 0; i < n; ++i) all += y[i * c + l], sub += y[i * c + l] && a[i];
    if (all >= 10) {
      ck_assert_msg(sub >= 1, "class %lld: %lld samples, none in the subset", (long long)l,
                    (long long)all);
      ck_assert_int_le(llabs(sub - (int64_t)llround(0.1 * (double)all)), 1 + all / 20);
      if (all < 40) rare_checked++;
    }
  }
  ck_assert_int_gt(rare_checked, 0);
  /* Edge cases. */
  ck_assert_int_eq(msci_stratified_subset(y, n, c, 1.0, 7, a), MSC_OK);
  for (int64_t i = 0; i < n; ++i) ck_assert_int_eq(a[i], 1);
  ck_assert_int_eq(msci_stratified_subset(y, n, c, 1.5, 7, a), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_stratified_subset(NULL, n, c, 0.5, 7, a), MSC_E_INVALID_ARGUMENT);
  /* Unlabelled samples only. */
  memset(y, 0, (size_t)(n * c));
  ck_assert_int_eq(msci_stratified_subset(y, 101, c, 0.5, 7, a), MSC_OK);
  size = 0;
  for (int64_t i = 0; i < 101; ++i) size += a[i];
  ck_assert_int_le(llabs(size - 51), 1);
  free(y);
  free(a);
  free(b);
  free(d);
}
END_TEST

START_TEST(test_fraction) {
  msc_options *o = opts_with("data.split", "all", NULL, NULL);
  ck_assert_int_eq(msc_options_set_float(o, "data.fraction", 0.34), MSC_OK);
  msc_dataset *ds = open_ok(V2, o);
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  char id1[128], id2[128];
  ck_assert_int_eq(msc_dataset_sample_id(ds, 0, id1, sizeof id1, NULL), MSC_OK);
  msc_dataset_free(ds);
  ds = open_ok(V2, o);
  ck_assert_int_eq(msc_dataset_sample_id(ds, 0, id2, sizeof id2, NULL), MSC_OK);
  ck_assert_str_eq(id1, id2);
  msc_dataset_free(ds);
  ck_assert_int_eq(msc_options_set_float(o, "data.fraction", 0.0), MSC_E_INVALID_ARGUMENT);
  msc_options_free(o);
}
END_TEST

/* ---- missing partners, the whole metadata table ---------------------------------------- */

static int count_rows(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int n = 0, ch, last = '\n';
  while ((ch = fgetc(f)) != EOF) {
    if (ch == '\n') n++;
    last = ch;
  }
  if (last != '\n') n++;
  fclose(f);
  return n - 1;
}

START_TEST(test_unpaired) {
  const char *root = MSC_SHARED_DATA "/bigearthnet-v2-unpaired";
  if (!have_dir(root)) {
    skipped("unpaired patches");
    return;
  }
  msc_options *o = opts_with("data.split", "all", NULL, NULL);
  msc_dataset *ds = NULL;
  ck_assert_int_eq(msc_dataset_open(root, "bigearthnet-v2", o, &ds), MSC_E_NOT_FOUND);
  ck_assert_ptr_null(ds);
  const char *msg = msc_last_error();
  ck_assert_msg(strstr(msg, "patch S2A_MSIL2A_") && strstr(msg, ".tif"), "%s", msg);
  ck_assert_int_eq(msc_options_set_string(o, "data.on_missing", "skip"), MSC_OK);
  ds = open_ok(root, o);
  ck_assert_int_eq(msc_dataset_size(ds), 0);
  char meta[512];
  snprintf(meta, sizeof meta, "%s/metadata.tsv", root);
  ck_assert_int_eq(msc_dataset_skipped(ds), count_rows(meta));
  ck_assert_int_gt(msc_dataset_skipped(ds), 0);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

START_TEST(test_zst_metadata) {
  const char *zst = MSC_SHARED_DATA "/bigearthnet-v2-metadata.tsv.zst";
  if (!have_file(zst) || system("command -v zstdcat >/dev/null 2>&1") != 0) {
    skipped("zstd metadata of the whole dataset");
    return;
  }
  /* Expected: train rows without snow/cloud/shadow, counted by zstdcat | awk. */
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "zstdcat '%s' | awk -F'\\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} "
           "$c[\"split\"]==\"train\" && $c[\"contains_seasonal_snow\"]!=\"true\" && "
           "$c[\"contains_cloud_or_shadow\"]!=\"true\"{n++} END{print n+0}'",
           zst);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  long long train = -1;
  ck_assert_int_eq(fscanf(p, "%lld", &train), 1);
  ck_assert_int_eq(pclose(p), 0);
  ck_assert_int_gt(train, 2);
  msc_options *o = opts_with("data.metadata", zst, "data.on_missing", "skip");
  msc_dataset *ds = open_ok(V2, o);
  ck_assert_int_eq(msc_dataset_size(ds), 2);
  ck_assert_int_eq(msc_dataset_skipped(ds), train - 2);
  ck_assert_int_ge(find_id(ds, P1), 0);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------------ */

START_TEST(test_errors) {
  msc_dataset *ds = NULL;
  ck_assert_int_eq(msc_dataset_open(NULL, "bigearthnet-v2", NULL, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_dataset_open(V2, NULL, NULL, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_dataset_open(V2, "bigearthnet-v2", NULL, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_dataset_open(V2, "bigearthnet-v3", NULL, &ds), MSC_E_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "bigearthnet-v2, bigearthnet-v1"));
  ck_assert_int_eq(msc_dataset_open("/nonexistent/ben", "bigearthnet-v2", NULL, &ds), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "/nonexistent/ben"));
  ck_assert_int_eq(msc_dataset_open(MSC_TEST_DATA, "bigearthnet-v2", NULL, &ds), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "metadata.tsv"));
  /* only the official metadata.parquet: the message says how to convert it */
  char pq[] = "/tmp/msc_parquet_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(pq));
  char pqf[64];
  snprintf(pqf, sizeof pqf, "%s/metadata.parquet", pq);
  FILE *f = fopen(pqf, "wb");
  ck_assert_ptr_nonnull(f);
  fputs("PAR1", f);
  fclose(f);
  setenv("MSC_DATA_DIR", "/nonexistent", 1); /* no installed table: the message */
  ck_assert_int_eq(msc_dataset_open(pq, "bigearthnet-v2", NULL, &ds), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "holds metadata.parquet but no metadata.tsv"));
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "pandas"));
  /* With the converted table of the whole dataset installed (here: the repository's copy),
   * the folder opens through it: its 3 real patches, with the labels of the bundled
   * metadata.tsv (the full table holds 480,038 rows; the others are skipped as missing). */
  char s1[96], s2[96];
  snprintf(s1, sizeof s1, "%s/BigEarthNet-S1", pq);
  snprintf(s2, sizeof s2, "%s/BigEarthNet-S2", pq);
  ck_assert_int_eq(symlink(V2 "/BigEarthNet-S1", s1), 0);
  ck_assert_int_eq(symlink(V2 "/BigEarthNet-S2", s2), 0);
  setenv("MSC_DATA_DIR", MSC_TEST_DATA "/../../tests/data", 1);
  msc_options *skip = opts_with("data.on_missing", "skip", "data.split", "all");
  ck_assert_msg(msc_dataset_open(pq, "bigearthnet-v2", skip, &ds) == MSC_OK, "%s",
                msc_last_error());
  msc_dataset *bundled = NULL;
  msc_options *all = opts_with("data.split", "all", NULL, NULL);
  ck_assert_int_eq(msc_dataset_open(V2, "bigearthnet-v2", all, &bundled), MSC_OK);
  ck_assert_int_eq(msc_dataset_size(ds), 3);
  ck_assert_int_eq(msc_dataset_size(bundled), 3);
  for (int64_t i = 0; i < 3; ++i) {
    int64_t j = 0;
    while (j < 3 && strcmp(ds->samples[i].id, bundled->samples[j].id) != 0) ++j;
    ck_assert_int_lt(j, 3);
    ck_assert_mem_eq(ds->samples[i].labels, bundled->samples[j].labels, 19);
  }
  msc_dataset_free(ds);
  msc_dataset_free(bundled);
  msc_options_free(skip);
  msc_options_free(all);
  ds = NULL;
  unsetenv("MSC_DATA_DIR");
  unlink(s1);
  unlink(s2);
  unlink(pqf);
  rmdir(pq);
  msc_options *o = opts_with("data.s2_bands", "B02,B10", NULL, NULL);
  ck_assert_int_eq(msc_dataset_open(V2, "bigearthnet-v2", o, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "B10"));
  ck_assert_int_eq(msc_options_set_string(o, "data.s2_bands", "B02,B02"), MSC_OK);
  ck_assert_int_eq(msc_dataset_open(V2, "bigearthnet-v2", o, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(ds);
  msc_options_free(o);
  /* NULL-tolerant getters. */
  msc_dataset_free(NULL);
  ck_assert_int_eq(msc_dataset_size(NULL), 0);
  ck_assert_int_eq(msc_dataset_skipped(NULL), 0);
  ck_assert_int_eq(msc_dataset_class_count(NULL), 0);
  ck_assert_ptr_null(msc_dataset_class_name(NULL, 0));
  ck_assert_int_eq(msc_dataset_modality_count(NULL), 0);
  int64_t b, s;
  ck_assert_int_eq(msc_dataset_modality_shape(NULL, 0, &b, &s), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_dataset_fill_batch(NULL, &b, 1, NULL), MSC_E_INVALID_ARGUMENT);
}
END_TEST

/* A copy of the samples in a temp dir: a truncated TIFF fails fill_batch naming the
 * file, an unknown label fails the open naming the patch, a missing file names both. */
START_TEST(test_corrupt_copy) {
  char dir[] = "/tmp/msc_ds_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char cmd[1024], path[1024];
  snprintf(cmd, sizeof cmd, "cp -r '%s/.' '%s/'", V2, dir);
  ck_assert_int_eq(system(cmd), 0);
  snprintf(path, sizeof path,
           "%s/BigEarthNet-S2/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP/" P1 "/" P1
           "_B05.tif",
           dir);
  ck_assert_int_eq(truncate(path, 300), 0);
  msc_dataset *ds = open_ok(dir, NULL);
  int64_t i = find_id(ds, P1);
  ck_assert_int_ge(i, 0);
  msc_batch *batch = NULL;
  ck_assert_int_eq(msc_batch_create(&batch), MSC_OK);
  msc_status st = msc_dataset_fill_batch(ds, &i, 1, batch);
  ck_assert_msg(st == MSC_E_BAD_FORMAT || st == MSC_E_IO, "%d", st);
  ck_assert_msg(strstr(msc_last_error(), P1 "_B05.tif") &&
                    strstr(msc_last_error(), "sample " P1),
                "%s", msc_last_error());
  int64_t other = 1 - i;
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &other, 1, batch), MSC_OK);
  msc_dataset_free(ds);
  /* Missing file: fail names the patch and the file. */
  ck_assert_int_eq(unlink(path), 0);
  ck_assert_int_eq(msc_dataset_open(dir, "bigearthnet-v2", NULL, &ds), MSC_E_NOT_FOUND);
  ck_assert_msg(strstr(msc_last_error(), "patch " P1) && strstr(msc_last_error(), "_B05.tif"),
                "%s", msc_last_error());
  /* Unknown label. */
  snprintf(path, sizeof path, "%s/metadata.tsv", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "labels\tsplit\tpatch_id\ts1_name\n"
          "Arable land;Lava fields\ttest\tS2A_MSIL2A_20171221T112501_N9999_R037_T29SND_56_35\t"
          "S1A_IW_GRDH_1SDV_20171221T064238_29SND_56_35\n");
  fclose(f);
  msc_options *o = opts_with("data.split", "test", NULL, NULL);
  ck_assert_int_eq(msc_dataset_open(dir, "bigearthnet-v2", o, &ds), MSC_E_BAD_FORMAT);
  ck_assert_msg(
      strstr(msc_last_error(), "S2A_MSIL2A_20171221T112501_N9999_R037_T29SND_56_35") &&
          strstr(msc_last_error(), "Lava fields"),
      "%s", msc_last_error());
  /* Columns in another order, CRLF line ends, no snow/cloud columns: fine. */
  f = fopen(path, "w");
  fprintf(f, "labels\tsplit\tpatch_id\ts1_name\r\n"
             "Arable land;Pastures\ttest\tS2A_MSIL2A_20171221T112501_N9999_R037_T29SND_56_35\t"
             "S1A_IW_GRDH_1SDV_20171221T064238_29SND_56_35\r\n");
  fclose(f);
  ds = open_ok(dir, o);
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  ck_assert_int_eq(ds->samples[0].labels[2], 1);
  ck_assert_int_eq(ds->samples[0].labels[4], 1);
  msc_dataset_free(ds);
  msc_options_free(o);
  msc_batch_free(batch);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Hostile tables and rasters in a copy of the samples (issue: duplicated rows became
 * duplicated samples, "maybe" read as false, a raster of any size was resampled into its
 * band's slot). The expected outcomes follow docs/data.md, "BigEarthNet v2". */
static void write_meta(const char *dir, const char *rows) {
  char path[1024];
  snprintf(path, sizeof path, "%s/metadata.tsv", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "patch_id\ts1_name\tsplit\tcontains_seasonal_snow\tcontains_cloud_or_shadow\t"
          "labels\n%s",
          rows);
  fclose(f);
}

#define P2 "S2A_MSIL2A_20170617T113321_N9999_R080_T29UPU_36_85"
#define ROW1(split, snow, cloud)                                                               \
  P1 "\tS1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48\t" split "\t" snow "\t" cloud             \
     "\tArable land\n"
#define ROW2(split, snow, cloud)                                                               \
  P2 "\tS1A_IW_GRDH_1SDV_20170617T064724_29UPU_36_85\t" split "\t" snow "\t" cloud             \
     "\tPastures\n"

static msc_status open_split(const char *dir, const char *split, msc_dataset **ds) {
  msc_options *o = opts_with("data.split", split, NULL, NULL);
  msc_status st = msc_dataset_open(dir, "bigearthnet-v2", o, ds);
  msc_options_free(o);
  return st;
}

START_TEST(test_hostile_tables) {
  char dir[] = "/tmp/msc_ds_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp -r '%s/.' '%s/'", V2, dir);
  ck_assert_int_eq(system(cmd), 0);
  msc_dataset *ds = NULL;
  /* Accepted spellings: both samples in, the flagged one left out by default. */
  write_meta(dir, ROW1("train", "false", "0") ROW2("train", "FALSE", "False"));
  ck_assert_int_eq(open_split(dir, "train", &ds), MSC_OK);
  ck_assert_int_eq(msc_dataset_size(ds), 2);
  msc_dataset_free(ds);
  ds = NULL;
  write_meta(dir, ROW1("train", "0", "1") ROW2("train", "false", "false"));
  ck_assert_int_eq(open_split(dir, "train", &ds), MSC_OK);
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  ck_assert_int_ge(find_id(ds, P2), 0);
  msc_dataset_free(ds);
  ds = NULL;
  /* An unknown flag value, in a row of the split loaded and in one of another split. */
  write_meta(dir, ROW1("train", "maybe", "false") ROW2("train", "false", "false"));
  ck_assert_int_eq(open_split(dir, "train", &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_null(ds);
  ck_assert_msg(strstr(msc_last_error(), "'maybe'") &&
                    strstr(msc_last_error(), "contains_seasonal_snow") &&
                    strstr(msc_last_error(), "line 2"),
                "%s", msc_last_error());
  write_meta(dir, ROW1("train", "false", "false") ROW2("test", "false", ""));
  ck_assert_int_eq(open_split(dir, "train", &ds), MSC_E_BAD_FORMAT);
  ck_assert_msg(strstr(msc_last_error(), "contains_cloud_or_shadow") &&
                    strstr(msc_last_error(), "line 3"),
                "%s", msc_last_error());
  /* A duplicated row: in the split loaded, and across splits. */
  write_meta(dir, ROW1("train", "false", "false") ROW2("train", "false", "false")
                      ROW1("train", "false", "false"));
  ck_assert_int_eq(open_split(dir, "train", &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_null(ds);
  ck_assert_msg(strstr(msc_last_error(), "patch " P1) &&
                    strstr(msc_last_error(), "more than one"),
                "%s", msc_last_error());
  write_meta(dir, ROW1("train", "false", "false") ROW2("train", "false", "false")
                      ROW2("test", "false", "false"));
  ck_assert_int_eq(open_split(dir, "test", &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "patch " P2));
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Band files must have their band's size in the format: 120, 60 or 20 pixels for 10, 20
 * or 60 m (B05 is 20 m, B02 10 m). Another size fails fill_batch naming the file and
 * the size wanted, instead of being resampled into the slot. */
START_TEST(test_raster_sizes) {
  char dir[] = "/tmp/msc_ds_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char cmd[4096], b05[1024], b02[1024];
  snprintf(cmd, sizeof cmd, "cp -r '%s/.' '%s/'", V2, dir);
  ck_assert_int_eq(system(cmd), 0);
  const char *pre = "BigEarthNet-S2/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP/" P1 "/" P1;
  snprintf(b05, sizeof b05, "%s/%s_B05.tif", dir, pre);
  snprintf(b02, sizeof b02, "%s/%s_B02.tif", dir, pre);
  msc_batch *batch = NULL;
  ck_assert_int_eq(msc_batch_create(&batch), MSC_OK);
  static uint16_t px[240 * 240];
  for (int i = 0; i < 240 * 240; ++i) px[i] = (uint16_t)(1000 + i % 97);
  static const int sizes[][3] = {
      /* file, w, h */ {5, 120, 120}, {5, 30, 30}, {2, 1, 1}, {2, 120, 7}, {2, 240, 240}};
  for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; ++c) {
    snprintf(cmd, sizeof cmd, "cp '%s/%s_B05.tif' '%s' && cp '%s/%s_B02.tif' '%s'", V2, pre,
             b05, V2, pre, b02);
    ck_assert_int_eq(system(cmd), 0);
    const char *path = sizes[c][0] == 5 ? b05 : b02;
    ck_assert_int_eq(msci_synth_write_tiff(path, px, sizes[c][1], sizes[c][2], 1, 1, 16),
                     MSC_OK);
    msc_dataset *ds = open_ok(dir, NULL);
    int64_t i = find_id(ds, P1);
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 1, batch), MSC_E_BAD_FORMAT);
    char want[64];
    snprintf(want, sizeof want, "%dx%d", sizes[c][0] == 5 ? 60 : 120,
             sizes[c][0] == 5 ? 60 : 120);
    ck_assert_msg(strstr(msc_last_error(), path + strlen(dir)) &&
                      strstr(msc_last_error(), want),
                  "%s", msc_last_error());
    msc_dataset_free(ds);
  }
  /* The files as distributed read fine. */
  snprintf(cmd, sizeof cmd, "cp '%s/%s_B05.tif' '%s' && cp '%s/%s_B02.tif' '%s'", V2, pre, b05,
           V2, pre, b02);
  ck_assert_int_eq(system(cmd), 0);
  msc_dataset *ds = open_ok(dir, NULL);
  int64_t i = find_id(ds, P1);
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 1, batch), MSC_OK);
  msc_dataset_free(ds);
  msc_batch_free(batch);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("dataset");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_splits);
  tcase_add_test(tc, test_labels_match_metadata);
  tcase_add_test(tc, test_fill_batch_golden);
  tcase_add_test(tc, test_sample_id_protocol);
  tcase_add_test(tc, test_published_stats);
  tcase_add_test(tc, test_compute_stats);
  tcase_add_test(tc, test_stratify);
  tcase_add_test(tc, test_fraction);
  tcase_add_test(tc, test_unpaired);
  tcase_add_test(tc, test_zst_metadata);
  tcase_add_test(tc, test_errors);
  tcase_add_test(tc, test_corrupt_copy);
  tcase_add_test(tc, test_hostile_tables);
  tcase_add_test(tc, test_raster_sizes);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
