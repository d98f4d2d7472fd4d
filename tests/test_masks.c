/*
 * test_masks.c — per-pixel label maps (masks): the batch's mask (set, read back, storage
 * reuse, errors), the generic mask reading of datasets (nearest resampling, the value
 * table), checked against pixels read here with libtiff.
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
#include "mosaic/mosaic.h"

#ifndef MSC_TEST_DATA
#error "MSC_TEST_DATA must name examples/data"
#endif
#ifndef MSC_SHARED_DATA
#error "MSC_SHARED_DATA must name tests/data"
#endif

/* ---- helpers ------------------------------------------------------------------------- */

/* The first band of a single-image TIFF in strips (uint16, int16 or float32 samples, any
 * compression libtiff decodes), read with libtiff alone: w × h doubles (malloc'ed). */
static double *tiff_band0(const char *path, int64_t *w_out, int64_t *h_out) {
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
  ck_assert_msg(spp == 1 || planar == PLANARCONFIG_SEPARATE, "%s: chunky samples", path);
  const size_t sz = bps / 8;
  uint8_t *row = malloc(TIFFScanlineSize(t));
  double *out = malloc((size_t)w * h * sizeof *out);
  for (uint32_t y = 0; y < h; ++y) {
    ck_assert_int_eq(TIFFReadScanline(t, row, y, 0), 1);
    for (uint32_t x = 0; x < w; ++x) {
      const uint8_t *p = row + x * sz;
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

static __attribute__((unused)) const char *tmpdir(const char *tag) {
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

Suite *masks_suite(void) {
  Suite *s = suite_create("masks");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_batch_mask);
  tcase_add_test(tc, test_no_masks);
  tcase_add_test(tc, test_generic_mask_read);
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
