/*
 * test_formats.c — the dataset formats besides BigEarthNet v2 (test_dataset.c): BigEarthNet
 * v1 (same pixels as the v2 layout of the same patches, 43 → 19 labels, the dropped
 * leading zero, missing partners), SEN12MS (format-faithful files written here: NaN and
 * clipping of S1, the standard S2 subset, IGBP fractions → labels from the lc raster and
 * from a fraction table; the layout fixture), EuroSAT (B8A stored last, class from the
 * folder, golden values) and manifests (multi-band and per-band files, classes, splits,
 * missing files).
 *
 * Golden values were read with an independent reader: a 20-line Python script using only
 * struct on the uncompressed EuroSAT file (strip offsets from the IFD, 13 chunky uint16
 * samples per pixel).
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "data/batch.h"
#include "data/dataset.h"
#include "mosaic/mosaic.h"
#include "data/raster.h"
#include "data/synth.h"

#ifndef MSC_TEST_DATA
#error "MSC_TEST_DATA must name examples/data"
#endif
#ifndef MSC_SHARED_DATA
#error "MSC_SHARED_DATA must name tests/data"
#endif

#define V1      MSC_SHARED_DATA "/bigearthnet-v1"
#define V2      MSC_TEST_DATA "/bigearthnet-v2"
#define EUROSAT MSC_SHARED_DATA "/eurosat-ms"

/* ---- helpers ------------------------------------------------------------------------- */

static msc_options *opts_kv(const char *const *kv) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  for (; kv && kv[0]; kv += 2) {
    /* Integer options (data.allow_outside_root) take "1" as a number. */
    char *end = NULL;
    long long i = strtoll(kv[1], &end, 10);
    msc_status st = msc_options_set_string(o, kv[0], kv[1]);
    if (st != MSC_OK && end != kv[1] && *end == '\0') st = msc_options_set_int(o, kv[0], i);
    ck_assert_msg(st == MSC_OK, "%s: %s", kv[0], msc_last_error());
  }
  return o;
}

static msc_status open_fmt(const char *root, const char *fmt, const char *const *kv,
                           msc_dataset **ds) {
  msc_options *o = opts_kv(kv);
  msc_status st = msc_dataset_open(root, fmt, o, ds);
  msc_options_free(o);
  return st;
}

static int64_t find_id(const msc_dataset *ds, const char *id) {
  char buf[512];
  for (int64_t i = 0; i < msc_dataset_size(ds); ++i) {
    ck_assert_int_eq(msc_dataset_sample_id(ds, i, buf, sizeof buf, NULL), MSC_OK);
    if (!strcmp(buf, id)) return i;
  }
  return -1;
}

static char g_tmp[512];
static const char *make_tmp(const char *tag) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/msc_formats_%s_%d", tag, (int)getpid());
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_tmp, g_tmp);
  ck_assert_int_eq(system(cmd), 0);
  return g_tmp;
}

static void rm_tree(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static void mkdirs(const char *fmt, const char *a, const char *b) {
  char p[1024], cmd[1100];
  snprintf(p, sizeof p, fmt, a, b);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", p);
  ck_assert_int_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* Writes a chunky, uncompressed TIFF: bits 16 uint or 32 float. */
static void write_tiff(const char *path, int w, int h, int spp, int is_float,
                       const void *data) {
  TIFF *t = TIFFOpen(path, "w");
  ck_assert_ptr_nonnull(t);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spp);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, is_float ? 32 : 16);
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, is_float ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 16);
  const size_t row = (size_t)w * (size_t)spp * 2 * (is_float ? 2 : 1);
  for (int y = 0; y < h; ++y)
    ck_assert_int_eq(TIFFWriteScanline(t, (uint8_t *)data + (size_t)y * row, (uint32_t)y, 0),
                     1);
  TIFFClose(t);
}

/* ---- BigEarthNet v1 ------------------------------------------------------------------- */

/* v1 and v2 hold the same three patches: same pixels (both modalities), and the 43-class
 * labels of v1 mapped to 19 equal v2's official labels. */
START_TEST(test_v1_same_as_v2) {
  static const char *const all[] = {"data.split", "all", NULL};
  msc_dataset *d1 = NULL, *d2 = NULL;
  ck_assert_msg(open_fmt(V1, "bigearthnet-v1", all, &d1) == MSC_OK, "%s", msc_last_error());
  ck_assert_msg(open_fmt(V2, "bigearthnet-v2", all, &d2) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(d1), 3);
  ck_assert_int_eq(msc_dataset_size(d2), 3);
  ck_assert_int_eq(msc_dataset_class_count(d1), 19);
  ck_assert_int_eq(msc_dataset_modality_count(d1), 2);
  static const char *const pairs[3][2] = {
      {"S2A_MSIL2A_20170613T101031_87_48",
       "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48"},
      {"S2A_MSIL2A_20170617T113321_36_85",
       "S2A_MSIL2A_20170617T113321_N9999_R080_T29UPU_36_85"},
      {"S2A_MSIL2A_20171221T112501_56_35",
       "S2A_MSIL2A_20171221T112501_N9999_R037_T29SND_56_35"}};
  msc_batch *b1 = NULL, *b2 = NULL;
  ck_assert_int_eq(msc_batch_create(&b1), MSC_OK);
  ck_assert_int_eq(msc_batch_create(&b2), MSC_OK);
  for (int p = 0; p < 3; ++p) {
    int64_t i1 = find_id(d1, pairs[p][0]), i2 = find_id(d2, pairs[p][1]);
    ck_assert_msg(i1 >= 0 && i2 >= 0, "patch %s", pairs[p][0]);
    ck_assert_int_eq(msc_dataset_fill_batch(d1, &i1, 1, b1), MSC_OK);
    ck_assert_int_eq(msc_dataset_fill_batch(d2, &i2, 1, b2), MSC_OK);
    ck_assert_int_eq(b1->n_mod, b2->n_mod);
    for (int32_t k = 0; k < b1->n_mod; ++k) {
      const msci_batch_modality *m1 = &b1->mod[k], *m2 = &b2->mod[k];
      ck_assert_str_eq(m1->name, m2->name);
      ck_assert_int_eq(m1->c, m2->c);
      const size_t n = (size_t)(m1->c * m1->h * m1->w);
      ck_assert_msg(memcmp(m1->data, m2->data, n * sizeof(float)) == 0, "pixels of %s / %s",
                    pairs[p][0], m1->name);
    }
    ck_assert_msg(memcmp(b1->labels, b2->labels, 19) == 0, "labels of %s", pairs[p][0]);
  }
  /* Hand mapping of the 43-class names of 29SND_56_35: Complex cultivation patterns (5),
   * Land principally occupied by agriculture... (6), Broad-leaved forest (8),
   * Transitional woodland/shrub (13). */
  int64_t i = find_id(d1, pairs[2][0]);
  ck_assert_int_eq(msc_dataset_fill_batch(d1, &i, 1, b1), MSC_OK);
  for (int c = 0; c < 19; ++c)
    ck_assert_int_eq(b1->labels[c], c == 5 || c == 6 || c == 8 || c == 13);
  msc_batch_free(b1);
  msc_batch_free(b2);
  msc_dataset_free(d1);
  msc_dataset_free(d2);
}
END_TEST

START_TEST(test_v1_label_map) {
  /* Every one of the 19 classes is reached, 11 names drop out, unknown names are -2. */
  ck_assert_int_eq(msci_ben1_map_label("Continuous urban fabric"), 0);
  ck_assert_int_eq(msci_ben1_map_label("Sea and ocean"), 18);
  ck_assert_int_eq(msci_ben1_map_label("Sparsely vegetated areas"), 11);
  ck_assert_int_eq(msci_ben1_map_label("Sclerophyllous vegetation"), 12);
  ck_assert_int_eq(msci_ben1_map_label("Airports"), -1);
  ck_assert_int_eq(msci_ben1_map_label("Bare rock"), -1);
  ck_assert_int_eq(msci_ben1_map_label("Arable land"), -2);
}
END_TEST

/* A v1 tree whose S2 folder has time T091031 while the S1 JSON names T91031; one S1 band
 * missing on another patch: fail names it, skip counts it; S2-only without the S1 folder. */
START_TEST(test_v1_layout_cases) {
  const char *root = make_tmp("v1");
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "cp -r '%s/BigEarthNet-v1.0' '%s/BigEarthNet-S1-v1.0' '%s/' && cd '%s' && "
           "d=BigEarthNet-v1.0/S2A_MSIL2A_20170613T101031_87_48 && "
           "n=BigEarthNet-v1.0/S2A_MSIL2A_20170613T091031_87_48 && mv $d $n && "
           "for f in $n/*; do mv $f $(echo $f | sed 's/T101031_87/T091031_87/'); done && "
           "j=BigEarthNet-S1-v1.0/S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48/"
           "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48_labels_metadata.json && "
           "sed -i 's/S2A_MSIL2A_20170613T101031_87_48/S2A_MSIL2A_20170613T91031_87_48/' $j && "
           "rm BigEarthNet-S1-v1.0/S1A_IW_GRDH_1SDV_20170617T064724_29UPU_36_85/"
           "S1A_IW_GRDH_1SDV_20170617T064724_29UPU_36_85_VH.tif",
           V1, V1, root, root);
  ck_assert_int_eq(system(cmd), 0);
  static const char *const fail[] = {"data.split", "all", NULL};
  static const char *const skip[] = {"data.split", "all", "data.on_missing", "skip", NULL};
  msc_dataset *ds = NULL;
  ck_assert_int_eq(open_fmt(root, "bigearthnet-v1", fail, &ds), MSC_E_NOT_FOUND);
  ck_assert_ptr_null(ds);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "29UPU_36_85_VH.tif"));
  ck_assert_msg(open_fmt(root, "bigearthnet-v1", skip, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 2);
  ck_assert_int_eq(msc_dataset_skipped(ds), 1);
  ck_assert_int_ge(find_id(ds, "S2A_MSIL2A_20170613T091031_87_48"), 0);
  msc_dataset_free(ds);
  /* Without the S1 folder: S2 only. */
  snprintf(cmd, sizeof cmd, "rm -rf '%s/BigEarthNet-S1-v1.0'", root);
  ck_assert_int_eq(system(cmd), 0);
  ck_assert_msg(open_fmt(root, "bigearthnet-v1", fail, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 3);
  ck_assert_int_eq(msc_dataset_modality_count(ds), 1);
  ck_assert_str_eq(msc_dataset_modality_name(ds, 0), "s2");
  msc_dataset_free(ds);
  static const char *const want_s1[] = {"data.split", "all", "data.s1_bands", "VV", NULL};
  ck_assert_int_eq(open_fmt(root, "bigearthnet-v1", want_s1, &ds), MSC_E_NOT_FOUND);
  /* Split lists: train.csv holds one patch. */
  snprintf(cmd, sizeof cmd, "%s/train.csv", root);
  write_text(cmd, "S2A_MSIL2A_20170617T113321_36_85\n");
  static const char *const train[] = {"data.split", "train", NULL};
  ck_assert_msg(open_fmt(root, "bigearthnet-v1", train, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  msc_dataset_free(ds);
  rm_tree(root);
}
END_TEST

/* With the S1 folder, the S2 JSON is read too: garbage in it, a missing one, or labels
 * other than the S1 JSON's are refused naming the file (issue: the S2 JSON went unread). */
START_TEST(test_v1_s2_json_checked) {
  const char *root = make_tmp("v1json");
  char cmd[4096], json[1024];
  snprintf(cmd, sizeof cmd, "cp -r '%s/BigEarthNet-v1.0' '%s/BigEarthNet-S1-v1.0' '%s/'", V1,
           V1, root);
  ck_assert_int_eq(system(cmd), 0);
  const char *p2 = "S2A_MSIL2A_20170613T101031_87_48";
  snprintf(json, sizeof json, "%s/BigEarthNet-v1.0/%s/%s_labels_metadata.json", root, p2, p2);
  static const char *const all[] = {"data.split", "all", NULL};
  static const char *const skip[] = {"data.split", "all", "data.on_missing", "skip", NULL};
  msc_dataset *ds = NULL;
  ck_assert_msg(open_fmt(root, "bigearthnet-v1", all, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 3);
  msc_dataset_free(ds);
  ds = NULL;
  /* Garbage. */
  write_text(json, "{\"labels\": [\"Non-irrigated arable land\",");
  ck_assert_int_eq(open_fmt(root, "bigearthnet-v1", all, &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_null(ds);
  ck_assert_msg(strstr(msc_last_error(), "_87_48_labels_metadata.json") &&
                    strstr(msc_last_error(), "BigEarthNet-v1.0/"),
                "%s", msc_last_error());
  /* Valid JSON, other labels than the S1 side's. */
  write_text(json, "{\"labels\": [\"Non-irrigated arable land\"]}");
  ck_assert_int_eq(open_fmt(root, "bigearthnet-v1", all, &ds), MSC_E_BAD_FORMAT);
  ck_assert_msg(strstr(msc_last_error(), "differ"), "%s", msc_last_error());
  /* An unknown label on the S2 side. */
  write_text(json, "{\"labels\": [\"Non-irrigated arable land\", \"Lava fields\"]}");
  ck_assert_int_eq(open_fmt(root, "bigearthnet-v1", all, &ds), MSC_E_BAD_FORMAT);
  ck_assert_msg(strstr(msc_last_error(), "Lava fields"), "%s", msc_last_error());
  /* Missing: an error, or a skipped patch with data.on_missing = skip. */
  ck_assert_int_eq(unlink(json), 0);
  ck_assert_int_eq(open_fmt(root, "bigearthnet-v1", all, &ds), MSC_E_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "_87_48_labels_metadata.json"));
  ck_assert_msg(open_fmt(root, "bigearthnet-v1", skip, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 2);
  ck_assert_int_eq(msc_dataset_skipped(ds), 1);
  msc_dataset_free(ds);
  rm_tree(root);
}
END_TEST

/* ---- EuroSAT ---------------------------------------------------------------------------- */

START_TEST(test_eurosat) {
  static const char *const all[] = {"data.split", "all", NULL};
  msc_dataset *ds = NULL;
  ck_assert_msg(open_fmt(EUROSAT, "eurosat", all, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 3);
  ck_assert_int_eq(msc_dataset_class_count(ds), 10);
  ck_assert_str_eq(msc_dataset_class_name(ds, 5), "Pasture");
  int64_t bands = 0, size = 0;
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 0, &bands, &size), MSC_OK);
  ck_assert_int_eq(bands, 13);
  ck_assert_int_eq(size, 64);
  int64_t i = find_id(ds, "Pasture_300");
  ck_assert_int_ge(i, 0);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 1, b), MSC_OK);
  for (int c = 0; c < 10; ++c) ck_assert_int_eq(b->labels[c], c == 5);
  const float *x = b->mod[0].data;
  /* Canonical order B01..B08, B8A, B09..B12. File values at (0,0): 1120 806 811 429 944
   * 2760 3573 4354 837 9 1563 768 3812 (B8A last); at (10,20): ... 4952 1399 9 1776 688
   * 5522. */
  static const float at00[13] = {1120, 806,  811, 429, 944,  2760, 3573,
                                 4354, 3812, 837, 9,   1563, 768};
  for (int c = 0; c < 13; ++c) ck_assert_float_eq(x[(size_t)c * 4096], at00[c]);
  ck_assert_float_eq(x[8 * 4096 + 10 * 64 + 20], 5522.0f); /* B8A */
  ck_assert_float_eq(x[9 * 4096 + 10 * 64 + 20], 1399.0f); /* B09 */
  ck_assert_float_eq(x[7 * 4096 + 63 * 64 + 63], 4577.0f); /* B08 at (63,63) */
  msc_dataset_free(ds);
  /* A selection by name reads the right file band. */
  static const char *const sel[] = {"data.split", "all", "data.s2_bands", "B8A,B08", NULL};
  ck_assert_msg(open_fmt(EUROSAT, "eurosat", sel, &ds) == MSC_OK, "%s", msc_last_error());
  i = find_id(ds, "Pasture_300");
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 1, b), MSC_OK);
  ck_assert_float_eq(b->mod[0].data[0], 3812.0f);
  ck_assert_float_eq(b->mod[0].data[4096], 4354.0f);
  msc_dataset_free(ds);
  /* No splits: asking for one is an error that says so; S1 does not exist. */
  static const char *const train[] = {"data.split", "train", NULL};
  ck_assert_int_eq(open_fmt(EUROSAT, "eurosat", train, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "no splits"));
  static const char *const s1[] = {"data.split", "all", "data.s1_bands", "VV", NULL};
  ck_assert_int_eq(open_fmt(EUROSAT, "eurosat", s1, &ds), MSC_E_INVALID_ARGUMENT);
  msc_batch_free(b);
}
END_TEST

/* ---- SEN12MS ----------------------------------------------------------------------------- */

/* One format-faithful SEN12MS patch: 256×256; S1 float32 dB with NaN, -30 and +3; S2 13
 * bands, band b = 100·(b+1) + x; lc with IGBP fractions 50 % code 1 (Forest), 30 % code 10
 * (Grassland), 12 % code 12 + 3 % code 14 (Croplands 15 %), 5 % code 17 (Water: below 0.1). */
static void write_sen12ms_patch(const char *root, const char *roi, int scene, int p) {
  char dir[512], path[1024];
  const int N = 256;
  static const char *const kinds[3] = {"s1", "s2", "lc"};
  for (int k = 0; k < 3; ++k) {
    snprintf(dir, sizeof dir, "%s/%s/%s_%d", root, roi, kinds[k], scene);
    mkdirs("%s%s", dir, "");
  }
  float *s1 = malloc((size_t)N * N * 2 * sizeof(float));
  uint16_t *s2 = malloc((size_t)N * N * 13 * sizeof(uint16_t));
  uint16_t *lc = malloc((size_t)N * N * 4 * sizeof(uint16_t));
  for (int y = 0; y < N; ++y)
    for (int x = 0; x < N; ++x) {
      size_t px = (size_t)y * N + x;
      s1[px * 2 + 0] = (x == 0 && y == 0) ? NAN : x == 1 ? -30.0f : x == 2 ? 3.0f : -10.0f;
      s1[px * 2 + 1] = -20.0f + (float)(y % 5);
      for (int b = 0; b < 13; ++b) s2[px * 13 + b] = (uint16_t)(100 * (b + 1) + x);
      /* Rows decide the class: 128 rows code 1, 77 code 10, 31 code 12, 7 code 14, 13
       * code 17 → 50.0 %, 30.1 %, 12.1 %, 2.7 %, 5.1 %. */
      uint16_t code = y < 128 ? 1 : y < 205 ? 10 : y < 236 ? 12 : y < 243 ? 14 : 17;
      lc[px * 4 + 0] = code;
      lc[px * 4 + 1] = lc[px * 4 + 2] = lc[px * 4 + 3] = 255;
    }
  snprintf(path, sizeof path, "%s/%s/s1_%d/%s_s1_%d_p%d.tif", root, roi, scene, roi, scene, p);
  write_tiff(path, N, N, 2, 1, s1);
  snprintf(path, sizeof path, "%s/%s/s2_%d/%s_s2_%d_p%d.tif", root, roi, scene, roi, scene, p);
  write_tiff(path, N, N, 13, 0, s2);
  snprintf(path, sizeof path, "%s/%s/lc_%d/%s_lc_%d_p%d.tif", root, roi, scene, roi, scene, p);
  write_tiff(path, N, N, 4, 0, lc);
  free(s1);
  free(s2);
  free(lc);
}

START_TEST(test_sen12ms_faithful) {
  const char *root = make_tmp("sen12ms");
  write_sen12ms_patch(root, "ROIs1158_spring", 7, 3);
  write_sen12ms_patch(root, "ROIs1158_spring", 7, 4);
  static const char *const all[] = {"data.split", "all", NULL};
  msc_dataset *ds = NULL;
  ck_assert_msg(open_fmt(root, "sen12ms", all, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 2);
  ck_assert_int_eq(msc_dataset_class_count(ds), 10);
  int64_t bands = 0, size = 0;
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 1, &bands, &size), MSC_OK);
  ck_assert_int_eq(bands, 10);
  ck_assert_int_eq(size, 256);
  int64_t i = find_id(ds, "ROIs1158_spring_7_p3");
  ck_assert_int_ge(i, 0);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 1, b), MSC_OK);
  /* Labels: Forest (0), Grassland (3), Croplands (5) present; Water (9) at 5 % absent. */
  for (int c = 0; c < 10; ++c) ck_assert_int_eq(b->labels[c], c == 0 || c == 3 || c == 5);
  /* S1: NaN → 0, -30 → -25, 3 → 0, others kept. */
  const float *vv = b->mod[0].data, *vh = vv + 256 * 256;
  ck_assert_float_eq(vv[0], 0.0f);
  ck_assert_float_eq(vv[1], -25.0f);
  ck_assert_float_eq(vv[2], 0.0f);
  ck_assert_float_eq(vv[3], -10.0f);
  ck_assert_float_eq(vh[3 * 256], -17.0f);
  /* S2 standard subset B02..B08, B8A, B11, B12 = file bands 2..9, 12, 13 (1-based). */
  static const int file_band[10] = {1, 2, 3, 4, 5, 6, 7, 8, 11, 12};
  const float *s2 = b->mod[1].data;
  for (int c = 0; c < 10; ++c)
    ck_assert_float_eq(s2[(size_t)c * 65536 + 5], (float)(100 * (file_band[c] + 1) + 5));
  float mean[10], std[10];
  ck_assert_int_eq(msc_dataset_stats(ds, 1, mean, std, 10), MSC_OK);
  ck_assert_float_eq_tol(mean[0], 1226.4215f, 1e-3f);
  ck_assert_float_eq_tol(std[9], 991.48016f, 1e-3f);
  msc_dataset_free(ds);

  /* A fraction table replaces the lc rasters: here only Water at 0.5 and Urban at 0.1. */
  char meta[512], row[1024];
  snprintf(meta, sizeof meta, "%s/fractions.tsv", root);
  FILE *f = fopen(meta, "w");
  ck_assert_ptr_nonnull(f);
  fputs("id", f);
  for (int g = 1; g <= 17; ++g) fprintf(f, "\tigbp_%d", g);
  for (int p = 3; p <= 4; ++p) {
    snprintf(row, sizeof row,
             "\nROIs1158_spring_7_p%d\t0.4\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0"
             "\t0.1\t0\t0\t0\t0.5",
             p);
    fputs(row, f);
  }
  fputs("\n", f);
  fclose(f);
  const char *const tab[] = {"data.split", "all", "data.metadata", meta, NULL};
  ck_assert_msg(open_fmt(root, "sen12ms", tab, &ds) == MSC_OK, "%s", msc_last_error());
  i = 0;
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 1, b), MSC_OK);
  for (int c = 0; c < 10; ++c) ck_assert_int_eq(b->labels[c], c == 0 || c == 6 || c == 9);
  msc_dataset_free(ds);
  /* Splits from train_list.txt / test_list.txt (any of the file names). */
  char list[512];
  snprintf(list, sizeof list, "%s/test_list.txt", root);
  write_text(list, "ROIs1158_spring_s2_7_p4.tif\n");
  snprintf(list, sizeof list, "%s/train_list.txt", root);
  write_text(list, "ROIs1158_spring_lc_7_p3.tif\n");
  static const char *const test[] = {"data.split", "test", NULL};
  ck_assert_msg(open_fmt(root, "sen12ms", test, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  ck_assert_int_eq(find_id(ds, "ROIs1158_spring_7_p4"), 0);
  msc_dataset_free(ds);
  msc_batch_free(b);
  rm_tree(root);
}
END_TEST

START_TEST(test_sen12ms_labels_rule) {
  double f[17] = {0};
  uint8_t y[10];
  f[5] = 0.05;
  f[6] = 0.05; /* IGBP 6 and 7 (Shrubland): 0.1 together → present */
  f[11] = 0.09;
  f[13] = 0.02;  /* Croplands 12 + 14: 0.11 → present */
  f[16] = 0.099; /* Water below 0.1 */
  msci_sen12ms_labels(f, y);
  for (int c = 0; c < 10; ++c) ck_assert_int_eq(y[c], c == 1 || c == 5);
}
END_TEST

/* The torchgeo layout fixture (64×64, not real pixels): the layout opens, ids are well
 * formed, patches are resampled to 256. */
START_TEST(test_sen12ms_fixture_layout) {
  static const char *const all[] = {"data.split", "all", NULL};
  msc_dataset *ds = NULL;
  ck_assert_msg(open_fmt(MSC_SHARED_DATA "/sen12ms-layout", "sen12ms", all, &ds) == MSC_OK,
                "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 8); /* 4 ROIs × 2 patches */
  char id[256];
  ck_assert_int_eq(msc_dataset_sample_id(ds, 0, id, sizeof id, NULL), MSC_OK);
  ck_assert_str_eq(id, "ROIs1158_spring_1_p1");
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int64_t i = 0;
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 1, b), MSC_OK);
  ck_assert_int_eq(b->mod[0].h, 256);
  msc_batch_free(b);
  msc_dataset_free(ds);
}
END_TEST

/* ---- manifest --------------------------------------------------------------------------- */

START_TEST(test_manifest) {
  const char *root = make_tmp("manifest");
  char path[512], text[4096];
  const char *s2dir = V2 "/BigEarthNet-S2/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP/"
                         "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48/"
                         "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48";
  /* Column "optical": a 13-band EuroSAT file; column "rgb": three single-band files
   * (20 m B05 is 60 px: resampled to the largest, 120). */
  snprintf(
      text, sizeof text,
      "id\toptical\trgb\tlabels\tsplit\n"
      "a\t%s/Pasture/Pasture_300.tif\t%s_B04.tif,%s_B03.tif,%s_B05.tif\tgrass;field\ttrain\n"
      "b\t%s/SeaLake/SeaLake_3000.tif\t%s_B04.tif,%s_B03.tif,%s_B05.tif\twater\ttest\n"
      "c\t%s/AnnualCrop/AnnualCrop_1.tif\t%s_B04.tif,%s_B03.tif,%s_B05.tif\t\tval\n",
      EUROSAT, s2dir, s2dir, s2dir, EUROSAT, s2dir, s2dir, s2dir, EUROSAT, s2dir, s2dir, s2dir);
  snprintf(path, sizeof path, "%s/manifest.tsv", root);
  write_text(path, text);
  /* The files are the shared samples, outside this root. */
  static const char *const all[] = {"data.split", "all", "data.allow_outside_root", "1", NULL};
  msc_dataset *ds = NULL;
  ck_assert_msg(open_fmt(root, "manifest", all, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 3);
  ck_assert_int_eq(msc_dataset_modality_count(ds), 2);
  ck_assert_str_eq(msc_dataset_modality_name(ds, 0), "optical");
  ck_assert_str_eq(msc_dataset_modality_name(ds, 1), "rgb");
  int64_t bands, size;
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 0, &bands, &size), MSC_OK);
  ck_assert_int_eq(bands, 13);
  ck_assert_int_eq(size, 64);
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 1, &bands, &size), MSC_OK);
  ck_assert_int_eq(bands, 3);
  ck_assert_int_eq(size, 120);
  /* Classes sorted: field, grass, water. */
  ck_assert_int_eq(msc_dataset_class_count(ds), 3);
  ck_assert_str_eq(msc_dataset_class_name(ds, 0), "field");
  ck_assert_str_eq(msc_dataset_class_name(ds, 2), "water");
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int64_t idx[3] = {0, 1, 2};
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, 3, b), MSC_OK);
  ck_assert_int_eq(b->labels[0], 1);
  ck_assert_int_eq(b->labels[1], 1);
  ck_assert_int_eq(b->labels[2], 0);
  ck_assert_int_eq(b->labels[3 + 2], 1);
  ck_assert_int_eq(b->labels[6] + b->labels[7] + b->labels[8], 0);
  /* File band order as stored (no renaming): band 13 of Pasture_300 at (0,0) = 3812. */
  ck_assert_float_eq(b->mod[0].data[12 * 4096], 3812.0f);
  /* The rgb bands equal the raster files, B05 resampled like msci_resample does. */
  msci_raster r;
  snprintf(path, sizeof path, "%s_B03.tif", s2dir);
  ck_assert_int_eq(msci_raster_read(path, &r), MSC_OK);
  ck_assert_int_eq(memcmp(b->mod[1].data + 120 * 120, r.data, 120 * 120 * sizeof(float)), 0);
  msci_raster_free(&r);
  msc_dataset_free(ds);
  /* Splits: "val" is validation. */
  static const char *const val[] = {"data.split", "validation", "data.allow_outside_root", "1",
                                    NULL};
  ck_assert_msg(open_fmt(root, "manifest", val, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  ck_assert_int_eq(find_id(ds, "c"), 0);
  msc_dataset_free(ds);
  /* A missing file: fail names the line and the file; skip counts it. */
  snprintf(text, sizeof text,
           "optical\tlabels\n%s/Pasture/Pasture_300.tif\tgrass\n%s/Pasture/none.tif\tgrass\n",
           EUROSAT, EUROSAT);
  snprintf(path, sizeof path, "%s/manifest.tsv", root);
  write_text(path, text);
  ck_assert_int_eq(open_fmt(root, "manifest", all, &ds), MSC_E_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "line 3"));
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "none.tif"));
  static const char *const skip[] = {
      "data.split", "all", "data.on_missing", "skip", "data.allow_outside_root", "1", NULL};
  ck_assert_msg(open_fmt(root, "manifest", skip, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  ck_assert_int_eq(msc_dataset_skipped(ds), 1);
  ck_assert_int_eq(find_id(ds, "Pasture_300"), 0); /* id from the file name */
  msc_dataset_free(ds);
  /* Malformed tables. */
  write_text(path, "labels\tsplit\ngrass\ttrain\n");
  ck_assert_int_eq(open_fmt(root, "manifest", all, &ds), MSC_E_BAD_FORMAT);
  write_text(path, "optical\tlabels\na.tif\n");
  ck_assert_int_eq(open_fmt(root, "manifest", all, &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "line 2"));
  write_text(path, "");
  ck_assert_int_eq(open_fmt(root, "manifest", all, &ds), MSC_E_BAD_FORMAT);
  unlink(path);
  ck_assert_int_eq(open_fmt(root, "manifest", all, &ds), MSC_E_IO);
  msc_batch_free(b);
  rm_tree(root);
}
END_TEST

/* The table's limits (issue 19, defect 7): more files in a cell than MSCI_MAX_BANDS (64),
 * more labels in a row than 256 and a repeated column were cut or accepted silently; each
 * is refused now with a message naming the limit or the column. The cells hold existing
 * single-band files, so only the limit can refuse them. */
START_TEST(test_manifest_limits) {
  const char *root = make_tmp("manifest_limits");
  char path[600];
  static float px[4 * 4];
  for (int q = 0; q < 16; ++q) px[q] = (float)q;
  snprintf(path, sizeof path, "%s/b.tif", root);
  ck_assert_int_eq(msci_synth_write_tiff(path, px, 4, 4, 1, SAMPLEFORMAT_IEEEFP, 32), MSC_OK);
  static const char *const all[] = {"data.split", "all", NULL};
  msc_dataset *ds = NULL;
  char *text = malloc(1 << 16);
  ck_assert_ptr_nonnull(text);
  snprintf(path, sizeof path, "%s/manifest.tsv", root);
  /* n files in the "bands" cell of both rows: 64 open as 64 bands, 65 are refused. */
  for (int n = 64; n <= 65; ++n) {
    size_t len = (size_t)snprintf(text, 1 << 16, "bands\tlabels\n");
    for (int row = 0; row < 2; ++row) {
      for (int j = 0; j < n; ++j) len += (size_t)sprintf(text + len, "%sb.tif", j ? "," : "");
      len += (size_t)sprintf(text + len, "\tx\n");
    }
    write_text(path, text);
    msc_status st = open_fmt(root, "manifest", all, &ds);
    if (n == 64) {
      ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
      int64_t bands = 0, size = 0;
      ck_assert_int_eq(msc_dataset_modality_shape(ds, 0, &bands, &size), MSC_OK);
      ck_assert_int_eq(bands, 64);
      msc_dataset_free(ds);
    } else {
      ck_assert_int_eq(st, MSC_E_BAD_FORMAT);
      ck_assert_msg(strstr(msc_last_error(), "more than 64 files") &&
                        strstr(msc_last_error(), "bands"),
                    "%s", msc_last_error());
    }
  }
  /* 256 labels in a row are 256 classes; 257 are refused, naming the line. */
  for (int n = 256; n <= 257; ++n) {
    size_t len = (size_t)snprintf(text, 1 << 16, "img\tlabels\nb.tif\t");
    for (int j = 0; j < n; ++j) len += (size_t)sprintf(text + len, "%sc%d", j ? ";" : "", j);
    sprintf(text + len, "\n");
    write_text(path, text);
    msc_status st = open_fmt(root, "manifest", all, &ds);
    if (n == 256) {
      ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
      ck_assert_int_eq(msc_dataset_class_count(ds), 256);
      msc_dataset_free(ds);
    } else {
      ck_assert_int_eq(st, MSC_E_BAD_FORMAT);
      ck_assert_msg(strstr(msc_last_error(), "more than 256 labels") &&
                        strstr(msc_last_error(), "line 2"),
                    "%s", msc_last_error());
    }
  }
  /* A repeated column: two "s2" modalities, or two "labels". */
  write_text(path, "s2\ts2\nb.tif\tb.tif\n");
  ck_assert_int_eq(open_fmt(root, "manifest", all, &ds), MSC_E_BAD_FORMAT);
  ck_assert_msg(strstr(msc_last_error(), "'s2' appears twice"), "%s", msc_last_error());
  write_text(path, "img\tlabels\tlabels\nb.tif\tx\ty\n");
  ck_assert_int_eq(open_fmt(root, "manifest", all, &ds), MSC_E_BAD_FORMAT);
  ck_assert_msg(strstr(msc_last_error(), "'labels' appears twice"), "%s", msc_last_error());
  free(text);
  rm_tree(root);
}
END_TEST

/* Cells leading out of the dataset root (issue 19, defect 11): the library opened
 * /etc/passwd and /proc/self/environ before refusing them as non-TIFF. Now "../", absolute
 * paths, a symbolic link to a file outside, and a mask outside are refused before anything
 * is opened, naming the line, the column and data.allow_outside_root; a valid raster
 * outside the root (so only the check can refuse it) opens with the option set. */
START_TEST(test_manifest_outside_root) {
  const char *tmp = make_tmp("manifest_outside");
  char dir[600], root[700], path[800], text[2048];
  snprintf(dir, sizeof dir, "%s", tmp);
  snprintf(root, sizeof root, "%s/root", dir);
  ck_assert_int_eq(mkdir(root, 0755), 0);
  static float px[4 * 4];
  snprintf(path, sizeof path, "%s/out.tif", dir);
  ck_assert_int_eq(msci_synth_write_tiff(path, px, 4, 4, 1, SAMPLEFORMAT_IEEEFP, 32), MSC_OK);
  snprintf(path, sizeof path, "%s/in.tif", root);
  ck_assert_int_eq(msci_synth_write_tiff(path, px, 4, 4, 1, SAMPLEFORMAT_IEEEFP, 32), MSC_OK);
  char out_abs[700], link[800];
  snprintf(out_abs, sizeof out_abs, "%s/out.tif", dir);
  snprintf(link, sizeof link, "%s/link.tif", root);
  ck_assert_int_eq(symlink(out_abs, link), 0);
  static const char *const all[] = {"data.split", "all", NULL};
  static const char *const skip[] = {"data.split", "all", "data.on_missing", "skip", NULL};
  static const char *const allow[] = {"data.split", "all", "data.allow_outside_root", "1",
                                      NULL};
  const char *cells[] = {"../out.tif", out_abs, "link.tif", "/etc/passwd",
                         "/proc/self/environ"};
  msc_dataset *ds = NULL;
  snprintf(path, sizeof path, "%s/manifest.tsv", root);
  for (int c = 0; c < 5; ++c)
    for (int row = 0; row < 2; ++row) { /* the first row (read for its layout), a later one */
      snprintf(text, sizeof text, "img\n%s\n%s\n", row ? "in.tif" : cells[c],
               row ? cells[c] : "in.tif");
      write_text(path, text);
      ck_assert_int_eq(open_fmt(root, "manifest", all, &ds), MSC_E_BAD_FORMAT);
      ck_assert_msg(strstr(msc_last_error(), "outside the dataset root") &&
                        strstr(msc_last_error(), row ? "line 3" : "line 2") &&
                        strstr(msc_last_error(), "column img") &&
                        strstr(msc_last_error(), "data.allow_outside_root"),
                    "cell %s: %s", cells[c], msc_last_error());
      if (c < 3) {
        ck_assert_msg(open_fmt(root, "manifest", allow, &ds) == MSC_OK, "cell %s: %s", cells[c],
                      msc_last_error());
        ck_assert_int_eq(msc_dataset_size(ds), 2);
        msc_dataset_free(ds);
      }
    }
  /* A missing file outside is refused, not counted as missing; a mask outside too. */
  write_text(path, "img\nin.tif\n../none.tif\n");
  ck_assert_int_eq(open_fmt(root, "manifest", skip, &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "outside the dataset root"));
  write_text(path, "img\tmask\nin.tif\t../out.tif\n");
  static const char *const mask[] = {"data.split", "all", "data.mask_classes", "a,b", NULL};
  ck_assert_int_eq(open_fmt(root, "manifest", mask, &ds), MSC_E_BAD_FORMAT);
  ck_assert_msg(strstr(msc_last_error(), "outside the dataset root") &&
                    strstr(msc_last_error(), "column mask"),
                "%s", msc_last_error());
  /* "sub/../in.tif" stays inside. */
  snprintf(path, sizeof path, "%s/sub", root);
  ck_assert_int_eq(mkdir(path, 0755), 0);
  snprintf(path, sizeof path, "%s/manifest.tsv", root);
  write_text(path, "img\nsub/../in.tif\n");
  ck_assert_msg(open_fmt(root, "manifest", all, &ds) == MSC_OK, "%s", msc_last_error());
  msc_dataset_free(ds);
  rm_tree(dir);
}
END_TEST

static Suite *formats_suite(void) {
  Suite *s = suite_create("formats");
  TCase *tc = tcase_create("formats");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_v1_same_as_v2);
  tcase_add_test(tc, test_v1_label_map);
  tcase_add_test(tc, test_v1_layout_cases);
  tcase_add_test(tc, test_v1_s2_json_checked);
  tcase_add_test(tc, test_eurosat);
  tcase_add_test(tc, test_sen12ms_faithful);
  tcase_add_test(tc, test_sen12ms_labels_rule);
  tcase_add_test(tc, test_sen12ms_fixture_layout);
  tcase_add_test(tc, test_manifest);
  tcase_add_test(tc, test_manifest_limits);
  tcase_add_test(tc, test_manifest_outside_root);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(formats_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
