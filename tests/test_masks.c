/*
 * test_masks.c — per-pixel label maps (masks): the batch's mask (set, read back, storage
 * reuse, errors), the generic mask reading of datasets (nearest resampling, the value
 * table), Sen1Floods11 (synthetic chips: masks, NaN policy, splits, the loader, sizes),
 * BigEarthNet v2 reference maps (the real one in tests/data/bigearthnet-v2-unpaired),
 * SEN12MS land cover (tests/data/sen12ms-layout), the manifest's mask column,
 * each checked against pixels read here with libtiff.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "data/batch.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/synth.h"
#include "mosaic/mosaic.h"

#ifndef MSC_TEST_DATA
#error "MSC_TEST_DATA must name examples/data"
#endif
#ifndef MSC_SHARED_DATA
#error "MSC_SHARED_DATA must name tests/data"
#endif

/* ---- helpers ------------------------------------------------------------------------- */

/* Band k of a single-image TIFF in strips (uint16, int16 or float32 samples, chunky,
 * any compression libtiff decodes), read with libtiff alone: w × h doubles (malloc'ed). */
static double *tiff_band(const char *path, int k, int64_t *w_out, int64_t *h_out) {
  TIFF *t = TIFFOpen(path, "r");
  ck_assert_msg(t != NULL, "cannot open %s", path);
  uint32_t w = 0, h = 0;
  uint16_t bps = 0, fmt = 1, spp = 1, planar = 1;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &fmt);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
  ck_assert_msg(!TIFFIsTiled(t), "%s is tiled", path);
  ck_assert_msg(spp == 1 || planar == PLANARCONFIG_CONTIG, "%s: planar samples", path);
  ck_assert_int_lt(k, spp);
  const size_t sz = bps / 8;
  uint8_t *row = malloc(TIFFScanlineSize(t));
  double *out = malloc((size_t)w * h * sizeof *out);
  for (uint32_t y = 0; y < h; ++y) {
    ck_assert_int_eq(TIFFReadScanline(t, row, y, 0), 1);
    for (uint32_t x = 0; x < w; ++x) {
      const uint8_t *p = row + ((size_t)x * spp + (size_t)k) * sz;
      double v;
      if (fmt == SAMPLEFORMAT_IEEEFP && bps == 32) {
        float f;
        memcpy(&f, p, 4);
        v = f;
      } else if (fmt == SAMPLEFORMAT_INT && bps == 16) {
        int16_t i;
        memcpy(&i, p, 2);
        v = i;
      } else {
        ck_assert_int_eq(bps, 16);
        uint16_t u;
        memcpy(&u, p, 2);
        v = u;
      }
      out[(size_t)y * w + x] = v;
    }
  }
  free(row);
  TIFFClose(t);
  *w_out = w;
  *h_out = h;
  return out;
}

static double *tiff_band0(const char *path, int64_t *w_out, int64_t *h_out) {
  return tiff_band(path, 0, w_out, h_out);
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

static char g_tmp[256];

static const char *tmpdir(const char *tag) {
  static int counter = 0;
  static char buf[8][300];
  char *b = buf[counter % 8];
  snprintf(b, 300, "%s/%s%d", g_tmp, tag, counter++);
  return b;
}

static void setup(void) {
  TIFFSetWarningHandler(NULL); /* GeoTIFF tags are "unknown" to plain libtiff */
  snprintf(g_tmp, sizeof g_tmp, "/tmp/msc_masks_%d", (int)getpid());
  mkdir(g_tmp, 0755);
}

static void teardown(void) {
  rm_rf(g_tmp);
}

/* ---- the batch's mask ---------------------------------------------------------------- */

START_TEST(test_batch_mask) {
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int64_t h = -5, w = -5;
  ck_assert_int_eq(msc_batch_mask(b, NULL, 0, &h, &w), MSC_E_NOT_FOUND);
  ck_assert_int_eq(h, -5); /* untouched on error */
  int32_t m[2 * 3 * 4];
  for (int i = 0; i < 24; ++i) m[i] = i % 5 - 1; /* -1 .. 3 */
  ck_assert_int_eq(msc_batch_set_mask(b, m, 2, 3, 4), MSC_OK);
  ck_assert_int_eq(msc_batch_size(b), 2);
  ck_assert_int_eq(msc_batch_mask(b, NULL, 0, &h, &w), MSC_OK);
  ck_assert_int_eq(h, 3);
  ck_assert_int_eq(w, 4);
  int32_t got[24], small[23];
  small[0] = 77;
  h = w = 0;
  ck_assert_int_eq(msc_batch_mask(b, small, 23, &h, &w), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(small[0], 77);
  ck_assert_int_eq(h, 3); /* the shape is given even so */
  ck_assert_int_eq(msc_batch_mask(b, got, 24, NULL, NULL), MSC_OK);
  ck_assert_mem_eq(got, m, sizeof m);

  /* The caller's array is copied: changing it afterwards changes nothing. */
  m[0] = 99;
  ck_assert_int_eq(msc_batch_mask(b, got, 24, NULL, NULL), MSC_OK);
  ck_assert_int_eq(got[0], -1);

  /* A smaller mask reuses the storage; a larger one replaces it. */
  const int32_t *storage = b->mask_buf;
  int32_t m2[2 * 2 * 2] = {0, 1, 2, 3, 4, 5, 6, 7};
  ck_assert_int_eq(msc_batch_set_mask(b, m2, 2, 2, 2), MSC_OK);
  ck_assert_ptr_eq(b->mask_buf, storage);
  ck_assert_int_eq(msc_batch_mask(b, got, 24, &h, &w), MSC_OK);
  ck_assert_int_eq(h * w, 4);
  ck_assert_mem_eq(got, m2, sizeof m2);

  /* n must match the batch's; sizes must be positive; NULLs are refused. */
  ck_assert_int_eq(msc_batch_set_mask(b, m, 3, 2, 2), MSC_E_SHAPE);
  ck_assert_int_eq(msc_batch_set_mask(b, m, 2, 0, 2), MSC_E_SHAPE);
  ck_assert_int_eq(msc_batch_set_mask(b, m, 2, 2, -1), MSC_E_SHAPE);
  ck_assert_int_eq(msc_batch_set_mask(b, NULL, 2, 2, 2), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_batch_set_mask(NULL, m, 2, 2, 2), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_batch_mask(NULL, got, 24, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  /* The failed calls left the mask as it was. */
  ck_assert_int_eq(msc_batch_mask(b, got, 24, NULL, NULL), MSC_OK);
  ck_assert_mem_eq(got, m2, sizeof m2);

  /* A mask agrees with the other arrays on n. */
  float x[2 * 1 * 2 * 2] = {0};
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", x, 2, 1, 2, 2), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s2", x, 1, 1, 2, 2), MSC_E_SHAPE);

  /* Emptied, the batch has no mask but keeps the storage. */
  msci_batch_reset(b);
  ck_assert_int_eq(msc_batch_mask(b, NULL, 0, NULL, NULL), MSC_E_NOT_FOUND);
  ck_assert_ptr_eq(b->mask_buf, storage);
  msc_batch_free(b);
}
END_TEST

/* ---- generic mask reading ------------------------------------------------------------ */

#define V2 MSC_TEST_DATA "/bigearthnet-v2"

/* A dataset without masks: no mask info, no mask in its batches (a mask set before is
 * dropped by the fill). */
START_TEST(test_no_masks) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  msc_dataset *ds = NULL;
  ck_assert_int_eq(msc_dataset_open(V2, "bigearthnet-v2", o, &ds), MSC_OK);
  int64_t classes = -7;
  ck_assert_int_eq(msc_dataset_mask_info(ds, &classes, NULL, NULL), MSC_E_NOT_FOUND);
  ck_assert_int_eq(classes, -7);
  ck_assert_ptr_null(msc_dataset_mask_class_name(ds, 0));
  ck_assert_int_eq(msc_dataset_mask_info(NULL, NULL, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int32_t m[2 * 4] = {0};
  ck_assert_int_eq(msc_batch_set_mask(b, m, 2, 2, 2), MSC_OK);
  const int64_t idx[2] = {0, 1};
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, 2, b), MSC_OK);
  ck_assert_int_eq(msc_batch_mask(b, NULL, 0, NULL, NULL), MSC_E_NOT_FOUND);
  msc_batch_free(b);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

/* The generic reader on a real file: each sample's 20×20 B01 band declared as its mask
 * of 120×120, raw values through a table. Expected: nearest neighbour (source pixel
 * floor(y·20/120)) of the values read with libtiff, mapped by the same table written
 * out here. */
START_TEST(test_generic_mask_read) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  msc_dataset *ds = NULL;
  ck_assert_int_eq(msc_dataset_open(V2, "bigearthnet-v2", o, &ds), MSC_OK);
  const int64_t n = msc_dataset_size(ds) < 3 ? msc_dataset_size(ds) : 3;
  ck_assert_int_ge(n, 2);
  /* Table: raw values lo .. lo+lut_n-1 → (v mod 4) - 1, i.e. -1 (ignore) .. 2. */
  const int64_t lo = 100, lut_n = 400;
  int32_t *lut = malloc(lut_n * sizeof *lut);
  for (int64_t v = 0; v < lut_n; ++v) lut[v] = (int32_t)((lo + v) % 4) - 1;
  static const char *const names[3] = {"a", "b", "c"};
  const int64_t keep = ds->n_samples;
  ds->n_samples = 0; /* the declaration belongs to the opener, before samples exist */
  ck_assert_int_eq(msci_dataset_set_mask(ds, names, 3, -1, 120, lo, lut, lut_n), MSC_OK);
  ds->n_samples = keep;
  for (int64_t i = 0; i < n; ++i)
    ck_assert_int_eq(msci_sample_set_mask(&ds->samples[i], ds->samples[i].bands[1][0].path, 0),
                     MSC_OK);
  ck_assert_str_eq(ds->mod[1].band_names[0], "B01");

  int64_t classes = 0, size = 0;
  int32_t ignore = 0;
  ck_assert_int_eq(msc_dataset_mask_info(ds, &classes, &ignore, &size), MSC_OK);
  ck_assert_int_eq(classes, 3);
  ck_assert_int_eq(ignore, -1);
  ck_assert_int_eq(size, 120);
  ck_assert_str_eq(msc_dataset_mask_class_name(ds, 2), "c");
  ck_assert_ptr_null(msc_dataset_mask_class_name(ds, 3));

  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int64_t idx[3] = {n - 1, 0, 1};
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, n, b), MSC_OK);
  int64_t h = 0, w = 0;
  int32_t *got = malloc((size_t)n * 120 * 120 * sizeof *got);
  ck_assert_int_eq(msc_batch_mask(b, got, (size_t)n * 120 * 120, &h, &w), MSC_OK);
  ck_assert_int_eq(h, 120);
  ck_assert_int_eq(w, 120);
  int64_t seen_ignore = 0, seen_class = 0;
  for (int64_t j = 0; j < n; ++j) {
    int64_t sw = 0, sh = 0;
    double *raw = tiff_band0(ds->samples[idx[j]].bands[1][0].path, &sw, &sh);
    ck_assert_int_eq(sw, 20);
    ck_assert_int_eq(sh, 20);
    for (int64_t y = 0; y < 120; ++y)
      for (int64_t x = 0; x < 120; ++x) {
        double v = raw[(y / 6) * 20 + x / 6]; /* 120 / 20 = 6 pixels per source pixel */
        int32_t want = (v >= lo && v < lo + lut_n) ? (int32_t)((int64_t)v % 4) - 1 : -1;
        seen_ignore += want == -1;
        seen_class += want >= 0;
        ck_assert_msg(got[(j * 120 + y) * 120 + x] == want,
                      "sample %lld (%lld, %lld): %d, want %d", (long long)j, (long long)y,
                      (long long)x, got[(j * 120 + y) * 120 + x], want);
      }
    free(raw);
  }
  ck_assert_int_gt(seen_class, 0); /* the table was exercised, not only its outside */
  ck_assert_int_gt(seen_ignore, 0);

  /* Refilled with the same shape, the mask storage is reused. */
  const int32_t *storage = b->mask_buf;
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, n, b), MSC_OK);
  ck_assert_ptr_eq(b->mask_buf, storage);
  free(got);
  free(lut);
  msc_batch_free(b);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

/* ---- Sen1Floods11 ---------------------------------------------------------------------- */

#define FS 64 /* chip size of the synthetic chips (real ones: 512) */

static const char *write_floods(int64_t n, uint64_t seed) {
  const char *dir = tmpdir("floods");
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "synth.size", FS), MSC_OK);
  ck_assert_int_eq(msc_synth_write(dir, "sen1floods11", n, seed, o), MSC_OK);
  msc_options_free(o);
  return dir;
}

static msc_dataset *open_floods(const char *dir, const char *split) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", split), MSC_OK);
  msc_dataset *ds = NULL;
  msc_status st = msc_dataset_open(dir, "sen1floods11", o, &ds);
  ck_assert_msg(st == MSC_OK, "open %s: %s", dir, msc_last_error());
  msc_options_free(o);
  return ds;
}

/* The chips listed in a split file, in order: "<chip>" for "<chip>_S1Hand.tif,...". */
static int64_t list_chips(const char *dir, const char *file, char ids[][64], int64_t cap) {
  char path[512], line[256];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  int64_t n = 0;
  while (fgets(line, sizeof line, f)) {
    char *e = strstr(line, "_S1Hand.tif,");
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(strstr(e, "_LabelHand.tif"));
    ck_assert_int_lt(n, cap);
    snprintf(ids[n++], 64, "%.*s", (int)(e - line), line);
  }
  fclose(f);
  return n;
}

/* The expected mask and S1 of one chip, from its files read here: LabelHand −1/0/1 as is,
 * −1 where VV or VH is NaN; S1 with NaN as 0. Counts what it saw. */
static void expected_chip(const char *dir, const char *id, int32_t *mask, float *s1,
                          int64_t counts[4]) {
  char path[512];
  int64_t w, h;
  snprintf(path, sizeof path, "%s/LabelHand/%s_LabelHand.tif", dir, id);
  double *lab = tiff_band0(path, &w, &h);
  ck_assert_int_eq(w, FS);
  ck_assert_int_eq(h, FS);
  snprintf(path, sizeof path, "%s/S1Hand/%s_S1Hand.tif", dir, id);
  double *vv = tiff_band(path, 0, &w, &h), *vh = tiff_band(path, 1, &w, &h);
  for (int64_t q = 0; q < FS * FS; ++q) {
    ck_assert(lab[q] == -1 || lab[q] == 0 || lab[q] == 1);
    const int nan = isnan(vv[q]) || isnan(vh[q]);
    mask[q] = nan ? -1 : (int32_t)lab[q];
    s1[q] = isnan(vv[q]) ? 0.f : (float)vv[q];
    s1[FS * FS + q] = isnan(vh[q]) ? 0.f : (float)vh[q];
    counts[0] += lab[q] == -1;
    counts[1] += nan && lab[q] != -1;
    counts[2] += mask[q] == 1;
    counts[3] += mask[q] == 0;
  }
  free(lab);
  free(vv);
  free(vh);
}

START_TEST(test_floods_read) {
  const int64_t N = 12;
  const char *dir = write_floods(N, 5);
  msc_dataset *ds = open_floods(dir, "all");
  ck_assert_int_eq(msc_dataset_size(ds), N);
  ck_assert_int_eq(msc_dataset_class_count(ds), 0); /* no patch labels */
  int64_t classes = 0, size = 0;
  int32_t ignore = 0;
  ck_assert_int_eq(msc_dataset_mask_info(ds, &classes, &ignore, &size), MSC_OK);
  ck_assert_int_eq(classes, 2);
  ck_assert_int_eq(ignore, -1);
  ck_assert_int_eq(size, FS);
  ck_assert_str_eq(msc_dataset_mask_class_name(ds, 0), "not water");
  ck_assert_str_eq(msc_dataset_mask_class_name(ds, 1), "water");
  ck_assert_int_eq(msc_dataset_modality_count(ds), 2);
  int64_t bands = 0, msize = 0;
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 0, &bands, &msize), MSC_OK);
  ck_assert_str_eq(msc_dataset_modality_name(ds, 0), "s1");
  ck_assert_int_eq(bands, 2);
  ck_assert_int_eq(msize, FS);
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 1, &bands, &msize), MSC_OK);
  ck_assert_str_eq(msc_dataset_modality_name(ds, 1), "s2");
  ck_assert_int_eq(bands, 13);

  int64_t *idx = malloc(N * sizeof *idx);
  for (int64_t i = 0; i < N; ++i) idx[i] = N - 1 - i;
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, N, b), MSC_OK);
  int32_t *got = malloc(N * FS * FS * sizeof *got), *want = malloc(FS * FS * sizeof *want);
  float *s1want = malloc(2 * FS * FS * sizeof *s1want);
  int64_t h = 0, w = 0, counts[4] = {0};
  ck_assert_int_eq(msc_batch_mask(b, got, N * FS * FS, &h, &w), MSC_OK);
  ck_assert_int_eq(h, FS);
  const msci_batch_modality *s1 = msci_batch_find(b, "s1"), *s2 = msci_batch_find(b, "s2");
  ck_assert_ptr_nonnull(s1);
  ck_assert_ptr_nonnull(s2);
  double water_vv = 0, land_vv = 0, water_ndwi = 0, land_ndwi = 0;
  int64_t n_water = 0, n_land = 0;
  for (int64_t j = 0; j < N; ++j) {
    char id[64];
    ck_assert_int_eq(msc_dataset_sample_id(ds, idx[j], id, sizeof id, NULL), MSC_OK);
    expected_chip(dir, id, want, s1want, counts);
    for (int64_t q = 0; q < FS * FS; ++q) {
      ck_assert_msg(got[j * FS * FS + q] == want[q], "chip %s pixel %lld: %d, want %d", id,
                    (long long)q, got[j * FS * FS + q], want[q]);
      ck_assert_msg(s1->data[j * 2 * FS * FS + q] == s1want[q] &&
                        s1->data[(j * 2 + 1) * FS * FS + q] == s1want[FS * FS + q],
                    "chip %s S1 pixel %lld", id, (long long)q);
      /* What makes water learnable: low VV, high NDWI (B03 vs B08, bands 2 and 7). */
      const float *p2 = s2->data + j * 13 * FS * FS;
      const double g = p2[2 * FS * FS + q], nir = p2[7 * FS * FS + q];
      const double ndwi = (g - nir) / (g + nir);
      if (want[q] == 1) {
        water_vv += s1want[q], water_ndwi += ndwi, n_water++;
      } else if (want[q] == 0) {
        land_vv += s1want[q], land_ndwi += ndwi, n_land++;
      }
    }
  }
  /* The scenes hold every case the reader has to handle. */
  ck_assert_int_gt(counts[0], 0); /* −1 in LabelHand */
  ck_assert_int_gt(counts[1], 0); /* NaN S1 under a valid label: ignored */
  ck_assert_int_gt(counts[2], 0);
  ck_assert_int_gt(counts[3], 0);
  printf("sen1floods11 synthetic: water %.1f %% of labelled pixels; VV water %.1f dB, land "
         "%.1f dB; NDWI water %.2f, land %.2f\n",
         100.0 * (double)n_water / (double)(n_water + n_land), water_vv / (double)n_water,
         land_vv / (double)n_land, water_ndwi / (double)n_water, land_ndwi / (double)n_land);
  ck_assert_double_lt(water_vv / (double)n_water, -17.0);
  ck_assert_double_gt(land_vv / (double)n_land, -13.0);
  ck_assert_double_gt(water_ndwi / (double)n_water, 0.3);
  ck_assert_double_lt(land_ndwi / (double)n_land, -0.3);

  /* The loader: its first batch (epoch 0's permutation, seeded) carries the same masks. */
  msc_loader *ld = NULL;
  ck_assert_int_eq(msc_loader_create(ds, 4, 9, 2, 1, &ld), MSC_OK);
  int64_t perm[12];
  msci_loader_permutation(9, 0, N, perm);
  msc_batch *lb = NULL;
  ck_assert_int_eq(msc_batch_create(&lb), MSC_OK);
  ck_assert_int_eq(msc_loader_next(ld, lb, NULL), MSC_OK);
  ck_assert_int_eq(msc_batch_mask(lb, got, N * FS * FS, &h, &w), MSC_OK);
  for (int64_t j = 0; j < 4; ++j) {
    char id[64];
    ck_assert_int_eq(msc_dataset_sample_id(ds, perm[j], id, sizeof id, NULL), MSC_OK);
    expected_chip(dir, id, want, s1want, counts);
    ck_assert_mem_eq(got + j * FS * FS, want, FS * FS * sizeof *want);
  }
  msc_loader_free(ld);
  msc_batch_free(lb);
  /* Model options from a dataset without patch labels: classes are left as they were. */
  msc_options *mo = NULL;
  ck_assert_int_eq(msc_options_create(&mo), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(mo, "classes", 2), MSC_OK);
  ck_assert_int_eq(msc_options_from_dataset(mo, ds, MSC_STATS_AUTO, 4), MSC_OK);
  int64_t mc = 0, mb = 0;
  ck_assert_int_eq(msc_options_get_int(mo, "classes", &mc), MSC_OK);
  ck_assert_int_eq(mc, 2);
  ck_assert_int_eq(msc_options_get_int(mo, "modality.1.bands", &mb), MSC_OK);
  ck_assert_int_eq(mb, 13);
  msc_options_free(mo);
  free(idx);
  free(got);
  free(want);
  free(s1want);
  msc_batch_free(b);
  msc_dataset_free(ds);
}
END_TEST

START_TEST(test_floods_splits) {
  const int64_t N = 20;
  const char *dir = write_floods(N, 11);
  static const char *const files[3] = {"flood_train_data.csv", "flood_valid_data.csv",
                                       "flood_test_data.csv"};
  static const char *const splits[3] = {"train", "validation", "test"};
  char ids[32][64];
  int64_t total = 0;
  for (int k = 0; k < 3; ++k) {
    int64_t n = list_chips(dir, files[k], ids, 32);
    total += n;
    msc_dataset *ds = open_floods(dir, splits[k]);
    ck_assert_int_eq(msc_dataset_size(ds), n);
    for (int64_t i = 0; i < n; ++i) {
      char id[64];
      ck_assert_int_eq(msc_dataset_sample_id(ds, i, id, sizeof id, NULL), MSC_OK);
      ck_assert_str_eq(id, ids[i]);
    }
    msc_dataset_free(ds);
  }
  ck_assert_int_eq(total, N);
  /* Without split lists: every chip of S1Hand, sorted, and only data.split = all. */
  for (int k = 0; k < 3; ++k) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, files[k]);
    ck_assert_int_eq(unlink(path), 0);
  }
  msc_dataset *ds = open_floods(dir, "all");
  ck_assert_int_eq(msc_dataset_size(ds), N);
  char prev[64] = "", id[64];
  for (int64_t i = 0; i < N; ++i) {
    ck_assert_int_eq(msc_dataset_sample_id(ds, i, id, sizeof id, NULL), MSC_OK);
    ck_assert_int_gt(strcmp(id, prev), 0);
    snprintf(prev, sizeof prev, "%s", id);
  }
  msc_dataset_free(ds);
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_dataset_open(dir, "sen1floods11", o, &ds), MSC_E_INVALID_ARGUMENT);
  msc_options_free(o);
}
END_TEST

/* Files of another size than the chip's, and missing files. */
START_TEST(test_floods_errors) {
  const char *dir = write_floods(3, 2);
  msc_dataset *ds = open_floods(dir, "all");
  char id[64], path[512];
  ck_assert_int_eq(msc_dataset_sample_id(ds, 1, id, sizeof id, NULL), MSC_OK);
  snprintf(path, sizeof path, "%s/LabelHand/%s_LabelHand.tif", dir, id);
  int16_t small[32 * 32] = {0};
  ck_assert_int_eq(msci_synth_write_tiff(path, small, 32, 32, 1, SAMPLEFORMAT_INT, 16), MSC_OK);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  const int64_t idx[2] = {0, 1};
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, 2, b), MSC_E_BAD_FORMAT);
  ck_assert_msg(strstr(msc_last_error(), "32x32") && strstr(msc_last_error(), id), "%s",
                msc_last_error());
  ck_assert_int_eq(msc_batch_size(b), 0); /* a failed fill leaves the batch empty */
  msc_batch_free(b);
  msc_dataset_free(ds);
  /* A missing S2 file fails the open, or leaves the chip out. */
  snprintf(path, sizeof path, "%s/S2Hand/%s_S2Hand.tif", dir, id);
  ck_assert_int_eq(unlink(path), 0);
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  ds = NULL;
  ck_assert_int_eq(msc_dataset_open(dir, "sen1floods11", o, &ds), MSC_E_NOT_FOUND);
  ck_assert_ptr_null(ds);
  ck_assert_int_eq(msc_options_set_string(o, "data.on_missing", "skip"), MSC_OK);
  ck_assert_int_eq(msc_dataset_open(dir, "sen1floods11", o, &ds), MSC_OK);
  ck_assert_int_eq(msc_dataset_size(ds), 2);
  ck_assert_int_eq(msc_dataset_skipped(ds), 1);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

/* A first listed chip that is missing (left out with data.on_missing = "skip") does not
 * decide the chip size: the dataset takes it from the first chip present, so its samples
 * read (found by fuzz_floods: the size stayed 512, and every 64 x 64 chip was refused). */
START_TEST(test_floods_first_chip_missing) {
  const char *dir = write_floods(3, 4);
  char path[512], text[4096];
  snprintf(path, sizeof path, "%s/flood_train_data.csv", dir);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "Nowhere_1_S1Hand.tif,Nowhere_1_LabelHand.tif\n%s", text);
  fclose(f);
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.on_missing", "skip"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  msc_dataset *ds = NULL;
  ck_assert_int_eq(msc_dataset_open(dir, "sen1floods11", o, &ds), MSC_OK);
  msc_options_free(o);
  ck_assert_int_eq(msc_dataset_size(ds), 3);
  ck_assert_int_eq(msc_dataset_skipped(ds), 1);
  int64_t bands = 0, size = 0;
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 0, &bands, &size), MSC_OK);
  ck_assert_int_eq(size, FS);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  const int64_t idx[3] = {0, 1, 2};
  ck_assert_msg(msc_dataset_fill_batch(ds, idx, 3, b) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_batch_size(b), 3);
  msc_batch_free(b);
  msc_dataset_free(ds);
}
END_TEST

/* ---- BigEarthNet v2 reference maps ----------------------------------------------------- */

#define UNP       MSC_SHARED_DATA "/bigearthnet-v2-unpaired"
#define REF_TILE  "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP"
#define REF_PATCH REF_TILE "_26_57"
#define REF_MAP   UNP "/Reference_Maps/" REF_TILE "/" REF_PATCH "/" REF_PATCH "_reference_map.tif"
#define DONOR     REF_TILE "_75_43" /* a patch whose S2 bands are in the unpaired data */

/* CORINE Land Cover level-3 codes → BigEarthNet's 19 classes, written out here from the
 * nomenclature (BigEarthNet-19's label conversion): -1 for the 11 codes that drop out. */
static int corine19(int code) {
  static const int table[][2] = {
      {111, 0},  {112, 0},  {121, 1},  {122, -1}, {123, -1}, {124, -1}, {131, -1}, {132, -1},
      {133, -1}, {141, -1}, {142, -1}, {211, 2},  {212, 2},  {213, 2},  {221, 3},  {222, 3},
      {223, 3},  {231, 4},  {241, 3},  {242, 5},  {243, 6},  {244, 7},  {311, 8},  {312, 9},
      {313, 10}, {321, 11}, {322, 12}, {323, 12}, {324, 13}, {331, 14}, {332, -1}, {333, 11},
      {334, -1}, {411, 15}, {412, 15}, {421, 16}, {422, 16}, {423, -1}, {511, 17}, {512, 17},
      {521, 18}, {522, 18}, {523, 18}};
  for (size_t i = 0; i < sizeof table / sizeof *table; ++i)
    if (table[i][0] == code) return table[i][1];
  return -1;
}

/* The real reference map of patch 26_57 (its S2 bands are not in the sample: a root is
 * built with links to another patch's bands under its name, and to the map). The mask's
 * class histogram must equal the one of the map read here with libtiff and mapped with the
 * table above; the classes present must be the patch's labels in metadata.tsv. */
START_TEST(test_reference_map) {
  const char *root = tmpdir("refmap");
  char path[1024], target[1024];
  snprintf(path, sizeof path, "%s/BigEarthNet-S2/%s/%s", root, REF_TILE, REF_PATCH);
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s/Reference_Maps/%s/%s'", path, root, REF_TILE,
           REF_PATCH);
  ck_assert_int_eq(system(cmd), 0);
  static const char *const bands[12] = {"B01", "B02", "B03", "B04", "B05", "B06",
                                        "B07", "B08", "B8A", "B09", "B11", "B12"};
  for (int b = 0; b < 12; ++b) {
    snprintf(target, sizeof target, UNP "/BigEarthNet-S2/%s/%s/%s_%s.tif", REF_TILE, DONOR,
             DONOR, bands[b]);
    char link[1200];
    snprintf(link, sizeof link, "%s/%s_%s.tif", path, REF_PATCH, bands[b]);
    ck_assert_int_eq(symlink(target, link), 0);
  }
  snprintf(path, sizeof path, "%s/Reference_Maps/%s/%s/%s_reference_map.tif", root, REF_TILE,
           REF_PATCH, REF_PATCH);
  ck_assert_int_eq(symlink(REF_MAP, path), 0);
  /* metadata.tsv: the header and the row of the patch, from the real table. */
  snprintf(
      cmd, sizeof cmd,
      "(head -n 1 '%s/metadata.tsv'; grep '^%s	' '%s/metadata.tsv') > '%s/metadata.tsv'", UNP,
      REF_PATCH, UNP, root);
  ck_assert_int_eq(system(cmd), 0);

  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.s1_bands", "none"), MSC_OK);
  msc_dataset *ds = NULL;
  ck_assert_int_eq(msc_dataset_open(root, "bigearthnet-v2", o, &ds), MSC_OK);
  ck_assert_int_eq(msc_dataset_mask_info(ds, NULL, NULL, NULL), MSC_E_NOT_FOUND);
  msc_dataset_free(ds);
  ck_assert_int_eq(msc_options_set_int(o, "data.masks", 1), MSC_OK);
  ds = NULL;
  msc_status st = msc_dataset_open(root, "bigearthnet-v2", o, &ds);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  int64_t classes = 0, size = 0;
  int32_t ignore = 0;
  ck_assert_int_eq(msc_dataset_mask_info(ds, &classes, &ignore, &size), MSC_OK);
  ck_assert_int_eq(classes, 19);
  ck_assert_int_eq(ignore, -1);
  ck_assert_int_eq(size, 120);
  for (int64_t c = 0; c < 19; ++c)
    ck_assert_str_eq(msc_dataset_mask_class_name(ds, c), msc_dataset_class_name(ds, c));

  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  const int64_t idx0 = 0;
  ck_assert_int_eq(msc_dataset_fill_batch(ds, &idx0, 1, b), MSC_OK);
  int32_t *got = malloc(120 * 120 * sizeof *got);
  ck_assert_int_eq(msc_batch_mask(b, got, 120 * 120, NULL, NULL), MSC_OK);

  int64_t w = 0, h = 0;
  double *raw = tiff_band0(REF_MAP, &w, &h);
  ck_assert_int_eq(w, 120);
  ck_assert_int_eq(h, 120);
  int64_t want[20] = {0}, have[20] = {0}; /* [19]: ignored */
  for (int64_t q = 0; q < 120 * 120; ++q) {
    int c = corine19((int)raw[q]);
    want[c < 0 ? 19 : c]++;
    ck_assert_int_ge(got[q], -1);
    ck_assert_int_lt(got[q], 19);
    have[got[q] < 0 ? 19 : got[q]]++;
  }
  printf("reference map %s:", REF_PATCH);
  for (int c = 0; c < 20; ++c)
    if (want[c])
      printf(" %s %lld", c < 19 ? msc_dataset_class_name(ds, c) : "ignored",
             (long long)want[c]);
  printf("\n");
  for (int c = 0; c < 20; ++c)
    ck_assert_msg(have[c] == want[c], "class %d: %lld pixels, want %lld", c, (long long)have[c],
                  (long long)want[c]);
  /* The map agrees with the patch's labels (metadata.tsv): Arable land, Broad-leaved forest,
   * Mixed forest, Pastures — every one is drawn. */
  static const int labels[4] = {2, 8, 10, 4};
  for (int k = 0; k < 4; ++k) ck_assert_int_gt(want[labels[k]], 0);
  uint8_t patch_labels[19];
  ck_assert_int_eq(msc_batch_labels(b, patch_labels, 19, NULL), MSC_OK);
  for (int k = 0; k < 4; ++k) ck_assert_int_eq(patch_labels[labels[k]], 1);
  free(raw);
  free(got);

  /* A patch without its map is a missing file. */
  ck_assert_int_eq(unlink(path), 0);
  msc_dataset_free(ds);
  ds = NULL;
  ck_assert_int_eq(msc_dataset_open(root, "bigearthnet-v2", o, &ds), MSC_E_NOT_FOUND);
  ck_assert_msg(strstr(msc_last_error(), "reference_map.tif"), "%s", msc_last_error());
  msc_batch_free(b);
  msc_options_free(o);
}
END_TEST

/* ---- SEN12MS land cover ---------------------------------------------------------------- */

/* The layout sample (64×64 lc rasters of random values, tests/data/sen12ms-layout) with
 * data.masks = 1: each mask is lc band 1 resampled to 256 by nearest neighbour (source
 * pixel y / 4) and mapped IGBP 1..17 → 10 classes by a table written out here. */
START_TEST(test_sen12ms_masks) {
  const char *root = MSC_SHARED_DATA "/sen12ms-layout";
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "data.masks", 1), MSC_OK);
  msc_dataset *ds = NULL;
  msc_status st = msc_dataset_open(root, "sen12ms", o, &ds);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  int64_t classes = 0, size = 0;
  int32_t ignore = 0;
  ck_assert_int_eq(msc_dataset_mask_info(ds, &classes, &ignore, &size), MSC_OK);
  ck_assert_int_eq(classes, 10);
  ck_assert_int_eq(size, 256);
  ck_assert_str_eq(msc_dataset_mask_class_name(ds, 9), "Water");
  /* Forest 1-5, Shrubland 6-7, Savanna 8-9, Grassland 10, Wetlands 11, Croplands 12 and
   * 14, Urban 13, Snow/ice 15, Barren 16, Water 17. */
  static const int igbp10[18] = {-1, 0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 5, 7, 8, 9};
  const int64_t n = msc_dataset_size(ds);
  ck_assert_int_ge(n, 1);
  int64_t idx[16];
  for (int64_t i = 0; i < n && i < 16; ++i) idx[i] = i;
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, n, b), MSC_OK);
  int32_t *got = malloc((size_t)n * 256 * 256 * sizeof *got);
  ck_assert_int_eq(msc_batch_mask(b, got, (size_t)n * 256 * 256, NULL, NULL), MSC_OK);
  int64_t classed = 0;
  for (int64_t j = 0; j < n; ++j) {
    char id[128], path[1024];
    ck_assert_int_eq(msc_dataset_sample_id(ds, j, id, sizeof id, NULL), MSC_OK);
    /* ROIs2017_winter_1_p2 → ROIs2017_winter/lc_1/ROIs2017_winter_lc_1_p2.tif */
    const char *last = strrchr(id, '_'), *prev = last - 1;
    while (prev > id && *prev != '_') prev--;
    const int roi_len = (int)(prev - id), scene_len = (int)(last - prev - 1);
    snprintf(path, sizeof path, "%s/%.*s/lc_%.*s/%.*s_lc_%.*s%s.tif", root, roi_len, id,
             scene_len, prev + 1, roi_len, id, scene_len, prev + 1, last);
    int64_t w = 0, h = 0;
    double *raw = tiff_band0(path, &w, &h);
    for (int64_t y = 0; y < 256; ++y)
      for (int64_t x = 0; x < 256; ++x) {
        const double v = raw[(y * h / 256) * w + x * w / 256];
        const int want = (v >= 1 && v <= 17 && v == floor(v)) ? igbp10[(int)v] : -1;
        classed += want >= 0;
        ck_assert_msg(got[(j * 256 + y) * 256 + x] == want, "%s (%lld, %lld): %d, want %d", id,
                      (long long)y, (long long)x, got[(j * 256 + y) * 256 + x], want);
      }
    free(raw);
  }
  ck_assert_int_gt(classed, 0);
  free(got);
  msc_batch_free(b);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

/* ---- manifest mask column -------------------------------------------------------------- */

/* Two rows: a 2-band 64×64 image and a 32×32 int16 mask of values -1..3 per row; classes
 * "land,water" (values 0, 1). Expected: the mask written here, value v at (y / 2, x / 2),
 * kept when 0 <= v < 2, else -1. */
START_TEST(test_manifest_mask) {
  const char *dir = tmpdir("manifest");
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  float img[2 * 64 * 64];
  for (int q = 0; q < 2 * 64 * 64; ++q) img[q] = (float)(q % 97);
  int16_t masks[2][32 * 32];
  FILE *f;
  char path[512];
  snprintf(path, sizeof path, "%s/manifest.tsv", dir);
  ck_assert_ptr_nonnull(f = fopen(path, "w"));
  fprintf(f, "id\timage\tmask\tsplit\n");
  for (int r = 0; r < 2; ++r) {
    for (int q = 0; q < 32 * 32; ++q) masks[r][q] = (int16_t)((q * 7 + r * 3) % 5 - 1);
    snprintf(path, sizeof path, "%s/img%d.tif", dir, r);
    ck_assert_int_eq(msci_synth_write_tiff(path, img, 64, 64, 2, SAMPLEFORMAT_IEEEFP, 32),
                     MSC_OK);
    snprintf(path, sizeof path, "%s/mask%d.tif", dir, r);
    ck_assert_int_eq(msci_synth_write_tiff(path, masks[r], 32, 32, 1, SAMPLEFORMAT_INT, 16),
                     MSC_OK);
    fprintf(f, "row%d\timg%d.tif\tmask%d.tif\ttrain\n", r, r, r);
  }
  fclose(f);
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  msc_dataset *ds = NULL;
  ck_assert_int_eq(msc_dataset_open(dir, "manifest", o, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "data.mask_classes"));
  ck_assert_int_eq(msc_options_set_string(o, "data.mask_classes", "land,water"), MSC_OK);
  msc_status st = msc_dataset_open(dir, "manifest", o, &ds);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  int64_t classes = 0, size = 0;
  ck_assert_int_eq(msc_dataset_mask_info(ds, &classes, NULL, &size), MSC_OK);
  ck_assert_int_eq(classes, 2);
  ck_assert_int_eq(size, 64);
  ck_assert_str_eq(msc_dataset_mask_class_name(ds, 1), "water");
  ck_assert_int_eq(msc_dataset_modality_count(ds), 1); /* "mask" is no modality */
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  const int64_t idx[2] = {1, 0};
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, 2, b), MSC_OK);
  int32_t got[2 * 64 * 64];
  ck_assert_int_eq(msc_batch_mask(b, got, 2 * 64 * 64, NULL, NULL), MSC_OK);
  for (int j = 0; j < 2; ++j)
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x) {
        const int v = masks[idx[j]][(y / 2) * 32 + x / 2];
        const int want = v >= 0 && v < 2 ? v : -1;
        ck_assert_int_eq(got[(j * 64 + y) * 64 + x], want);
      }
  msc_batch_free(b);
  msc_dataset_free(ds);
  msc_options_free(o);
}
END_TEST

Suite *masks_suite(void) {
  Suite *s = suite_create("masks");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_batch_mask);
  tcase_add_test(tc, test_no_masks);
  tcase_add_test(tc, test_generic_mask_read);
  tcase_add_test(tc, test_floods_read);
  tcase_add_test(tc, test_floods_splits);
  tcase_add_test(tc, test_floods_errors);
  tcase_add_test(tc, test_floods_first_chip_missing);
  tcase_add_test(tc, test_reference_map);
  tcase_add_test(tc, test_sen12ms_masks);
  tcase_add_test(tc, test_manifest_mask);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(masks_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
