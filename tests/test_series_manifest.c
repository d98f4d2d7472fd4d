/*
 * test_series_manifest.c — the series manifest (format "series", lib/data/dataset_series.c): the
 * real two-date SSL4EO-S12 sample (tests/data/ssl4eo-s12/s2a: L2A, one GeoTIFF per band at
 * 10, 20 and 60 m) read back through msc_dataset_series and the "rp" and "s2" modalities,
 * against values read here with libtiff and a plain bilinear resampling, NDVI and
 * recurrence plot; small GeoTIFFs written here for labels, targets, splits and hostile
 * tables (a bad date, a missing or unknown column, a repeated date, sizes and band counts
 * that do not match, missing files with data.on_missing fail and skip).
 *
 * Both SSL4EO-S12 dates are processing baseline 02.14 (PROCESSING_BASELINE in their
 * metadata.json, no BOA_ADD_OFFSET): digital numbers are reflectance × 10000 with no
 * offset, so data.sits.offset is 0 here (it would be -1000 from baseline 04.00).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "data/dataset.h"
#include "mosaic/mosaic.h"

#ifndef MSC_SHARED_DATA
#error "MSC_SHARED_DATA must name tests/data"
#endif

#define S2A   MSC_SHARED_DATA "/ssl4eo-s12/s2a/0000200"
#define DATE0 "20200604T054639_20200604T054831_T43RCP"
#define DATE1 "20200813T054639_20200813T054952_T43RCP"
/* Days since 1970-01-01, by hand: 2020-01-01 is day 18262 (50 years, 12 of them leap);
 * June 4 is day 155 of 2020 (31+29+31+30+31 + 3), August 13 day 225. */
#define DAYS0 (18262 + 155)
#define DAYS1 (18262 + 225)

static const char *const k_bands[12] = {"B1", "B2", "B3",  "B4", "B5",  "B6",
                                        "B7", "B8", "B8A", "B9", "B11", "B12"};
#define BANDS_OPT "B1,B2,B3,B4,B5,B6,B7,B8,B8A,B9,B11,B12"
#define N         264

/* ---- helpers ------------------------------------------------------------------------- */

static msc_options *opts_kv(const char *const *kv) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  for (; kv && kv[0]; kv += 2) {
    /* Numbers go to integer or float options, the rest to strings. */
    char *end = NULL;
    long long i = strtoll(kv[1], &end, 10);
    msc_status st = MSC_E_INVALID_ARGUMENT;
    if (end != kv[1] && *end == '\0') st = msc_options_set_int(o, kv[0], i);
    if (st != MSC_OK && end != kv[1] && *end == '\0')
      st = msc_options_set_float(o, kv[0], (double)i);
    if (st != MSC_OK) st = msc_options_set_string(o, kv[0], kv[1]);
    ck_assert_msg(st == MSC_OK, "%s: %s", kv[0], msc_last_error());
  }
  return o;
}

static msc_status open_kv(const char *root, const char *const *kv, msc_dataset **ds) {
  msc_options *o = opts_kv(kv);
  msc_status st = msc_dataset_open(root, "series", o, ds);
  msc_options_free(o);
  return st;
}

static char g_tmp[512];
static const char *make_tmp(const char *tag) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/msc_series_%s_%d", tag, (int)getpid());
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

static void write_text(const char *dir, const char *name, const char *text) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* A chunky uncompressed uint16 TIFF of spp bands (pixel-interleaved values). */
static void write_tiff(const char *dir, const char *name, int w, int h, int spp,
                       const uint16_t *data) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  TIFF *t = TIFFOpen(path, "w");
  ck_assert_ptr_nonnull(t);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spp);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 16);
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 2);
  for (int y = 0; y < h; ++y)
    ck_assert_int_eq(
        TIFFWriteScanline(t, (void *)(data + (size_t)y * (size_t)(w * spp)), (uint32_t)y, 0),
        1);
  TIFFClose(t);
}

/* One band of a real file read with libtiff alone (uint16, one sample, strips). */
static uint16_t *read_band(const char *date, const char *band, int *size) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s/%s.tif", S2A, date, band);
  TIFF *t = TIFFOpen(path, "r");
  ck_assert_msg(t != NULL, "cannot open %s", path);
  uint32_t w = 0, h = 0;
  uint16_t bps = 0, spp = 0;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  ck_assert_int_eq(w, h);
  ck_assert_int_eq(bps, 16);
  ck_assert_int_eq(spp, 1);
  uint16_t *v = malloc((size_t)w * h * sizeof *v);
  ck_assert_ptr_nonnull(v);
  for (uint32_t y = 0; y < h; ++y) ck_assert_int_eq(TIFFReadScanline(t, v + y * w, y, 0), 1);
  TIFFClose(t);
  *size = (int)w;
  return v;
}

/* Bilinear value at (y, x) of an n × n band upsampled to N × N, pixel centres aligned
 * (PyTorch's interpolate, align_corners=False): written out here independently. */
static double upsampled(const uint16_t *v, int n, int y, int x) {
  if (n == N) return v[y * n + x];
  double sy = (y + 0.5) * n / N - 0.5, sx = (x + 0.5) * n / N - 0.5;
  if (sy < 0) sy = 0;
  if (sx < 0) sx = 0;
  int y0 = (int)sy, x0 = (int)sx;
  int y1 = y0 + 1 < n ? y0 + 1 : y0, x1 = x0 + 1 < n ? x0 + 1 : x0;
  double wy = sy - y0, wx = sx - x0;
  return (1 - wy) * ((1 - wx) * v[y0 * n + x0] + wx * v[y0 * n + x1]) +
         wy * ((1 - wx) * v[y1 * n + x0] + wx * v[y1 * n + x1]);
}

/* series.tsv for the real sample: one row per date, the later date first, one file per
 * band (absolute paths, outside the table's root: opened with
 * data.allow_outside_root). */
static void write_real_table(const char *dir) {
  char text[8192];
  size_t len = (size_t)snprintf(text, sizeof text, "date\tseries\ts2\n");
  const char *dates[2][2] = {{"20200813", DATE1}, {"20200604", DATE0}};
  for (int d = 0; d < 2; ++d) {
    len += (size_t)snprintf(text + len, sizeof text - len, "%s\t0000200\t", dates[d][0]);
    for (int b = 0; b < 12; ++b)
      len += (size_t)snprintf(text + len, sizeof text - len, "%s%s/%s/%s.tif", b ? "," : "",
                              S2A, dates[d][1], k_bands[b]);
    len += (size_t)snprintf(text + len, sizeof text - len, "\n");
  }
  write_text(dir, "series.tsv", text);
}

typedef struct real_bands {
  uint16_t *v[2][12];
  int n[2][12];
} real_bands;

static void real_load(real_bands *r) {
  const char *dates[2] = {DATE0, DATE1};
  for (int d = 0; d < 2; ++d)
    for (int b = 0; b < 12; ++b) r->v[d][b] = read_band(dates[d], k_bands[b], &r->n[d][b]);
  /* The sample really mixes resolutions: B1 60 m, B5 20 m, B4 10 m. */
  ck_assert_int_eq(r->n[0][0], 44);
  ck_assert_int_eq(r->n[0][4], 132);
  ck_assert_int_eq(r->n[0][3], N);
}

static void real_free(real_bands *r) {
  for (int d = 0; d < 2; ++d)
    for (int b = 0; b < 12; ++b) free(r->v[d][b]);
}

static void sample_pixel(const msc_dataset *ds, int64_t i, int *y, int *x) {
  char id[128];
  ck_assert_int_eq(msc_dataset_sample_id(ds, i, id, sizeof id, NULL), MSC_OK);
  ck_assert_int_eq(sscanf(id, "0000200:%d:%d", y, x), 2);
  ck_assert(*y >= 0 && *y < N && *x >= 0 && *x < N);
}

/* ---- the real sample --------------------------------------------------------------------- */

START_TEST(test_real_series_and_plots) {
  const char *dir = make_tmp("real");
  write_real_table(dir);
  real_bands rb;
  real_load(&rb);
  static const char *const kv[] = {
      "data.allow_outside_root", /* the table names the shared files */
      "1",
      "data.split",
      "all",
      "data.series.bands",
      BANDS_OPT,
      "data.sits.time",
      "pad",
      "data.sits.length",
      "2",
      "data.sits.indices",
      "ndvi",
      "data.sits.offset",
      "0",
      "data.sits.pixels",
      "12",
      "data.sits.patch",
      "8",
      "data.sits.image",
      "first",
      "seed",
      "3",
      NULL};
  msc_dataset *ds = NULL;
  ck_assert_msg(open_kv(dir, kv, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 12);
  ck_assert_int_eq(msc_dataset_class_count(ds), 0);
  ck_assert_int_eq(msc_dataset_modality_count(ds), 2);
  int64_t bands = 0, size = 0;
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 0, &bands, &size), MSC_OK);
  ck_assert_int_eq(bands, 1);
  ck_assert_int_eq(size, 2);
  ck_assert_int_eq(msc_dataset_modality_shape(ds, 1, &bands, &size), MSC_OK);
  ck_assert_int_eq(bands, 12);
  ck_assert_int_eq(size, 8);

  int64_t t = 0, c = 0;
  ck_assert_int_eq(msc_dataset_series(ds, 0, NULL, 0, NULL, &t, &c), MSC_OK);
  ck_assert_int_eq(t, 2);
  ck_assert_int_eq(c, 12);
  int nonzero = 0;
  for (int64_t i = 0; i < msc_dataset_size(ds); ++i) {
    int y, x;
    sample_pixel(ds, i, &y, &x);
    float series[24];
    double days[2];
    ck_assert_msg(msc_dataset_series(ds, i, series, 24, days, &t, &c) == MSC_OK, "%s",
                  msc_last_error());
    ck_assert(days[0] == DAYS0 && days[1] == DAYS1);
    double ndvi[2];
    for (int d = 0; d < 2; ++d) {
      for (int b = 0; b < 12; ++b) {
        double want = upsampled(rb.v[d][b], rb.n[d][b], y, x);
        ck_assert_msg(fabs(series[d * 12 + b] - want) <= 1e-3 * (1 + fabs(want)),
                      "pixel (%d, %d) date %d band %s: %g, libtiff %g", y, x, d, k_bands[b],
                      (double)series[d * 12 + b], want);
      }
      double r4 = rb.v[d][3][y * N + x] / 10000.0, r8 = rb.v[d][7][y * N + x] / 10000.0;
      ndvi[d] = r4 + r8 > 0 ? (r8 - r4) / (r8 + r4) : NAN;
    }
    /* The continuous plot of two dates: 0 on the diagonal, |NDVI0 − NDVI1| off it (one
     * missing date is filled from the other: 0). */
    double off = isfinite(ndvi[0]) && isfinite(ndvi[1]) ? fabs(ndvi[0] - ndvi[1]) : 0;
    nonzero += off > 0.01;
    float rp[4];
    ck_assert_msg(msci_dataset_read(ds, i, 0, rp) == MSC_OK, "%s", msc_last_error());
    ck_assert_float_eq_tol(rp[0], 0, 1e-7);
    ck_assert_float_eq_tol(rp[3], 0, 1e-7);
    ck_assert_float_eq_tol(rp[1], off, 1e-5);
    ck_assert_float_eq_tol(rp[2], off, 1e-5);
    /* The 8 × 8 image of the first date around the pixel (row and column 4), cut to the
     * patch and filled from its edge. */
    float *img = malloc(12 * 64 * sizeof *img);
    ck_assert_ptr_nonnull(img);
    ck_assert_msg(msci_dataset_read(ds, i, 1, img) == MSC_OK, "%s", msc_last_error());
    for (int b = 0; b < 12; ++b)
      for (int py = 0; py < 8; ++py)
        for (int px = 0; px < 8; ++px) {
          int sy = y - 4 + py, sx = x - 4 + px;
          sy = sy < 0 ? 0 : sy >= N ? N - 1 : sy;
          sx = sx < 0 ? 0 : sx >= N ? N - 1 : sx;
          double want = upsampled(rb.v[0][b], rb.n[0][b], sy, sx);
          ck_assert_msg(fabs(img[(b * 8 + py) * 8 + px] - want) <= 1e-3 * (1 + fabs(want)),
                        "image band %s (%d, %d) of pixel (%d, %d)", k_bands[b], py, px, y, x);
        }
    free(img);
  }
  ck_assert_msg(nonzero >= 3, "only %d drawn pixels changed NDVI between the dates", nonzero);
  msc_dataset_free(ds);

  /* Resampled onto 3 days: the middle one (35 days after each date) is their mean. */
  static const char *const kv3[] = {
      "data.allow_outside_root", /* the table names the shared files */
      "1",
      "data.split",
      "all",
      "data.series.bands",
      BANDS_OPT,
      "data.sits.length",
      "3",
      "data.sits.pixels",
      "4",
      NULL};
  ck_assert_msg(open_kv(dir, kv3, &ds) == MSC_OK, "%s", msc_last_error());
  for (int64_t i = 0; i < msc_dataset_size(ds); ++i) {
    int y, x;
    sample_pixel(ds, i, &y, &x);
    float series[36];
    double days[3];
    ck_assert_int_eq(msc_dataset_series(ds, i, series, 36, days, &t, &c), MSC_OK);
    ck_assert_int_eq(t, 3);
    ck_assert(days[0] == DAYS0 && days[1] == (DAYS0 + DAYS1) / 2 && days[2] == DAYS1);
    for (int b = 0; b < 12; ++b) {
      double want =
          (upsampled(rb.v[0][b], rb.n[0][b], y, x) + upsampled(rb.v[1][b], rb.n[1][b], y, x)) /
          2;
      ck_assert_msg(fabs(series[12 + b] - want) <= 1e-3 * (1 + want), "band %s", k_bands[b]);
    }
  }
  msc_dataset_free(ds);

  /* A patch sample: the mean series of all 264 × 264 pixels, date 0, band B4. */
  static const char *const kvp[] = {
      "data.allow_outside_root", /* the table names the shared files */
      "1",
      "data.split",
      "all",
      "data.series.bands",
      BANDS_OPT,
      "data.sits.sample",
      "patch",
      "data.sits.time",
      "pad",
      "data.sits.length",
      "2",
      NULL};
  ck_assert_msg(open_kv(dir, kvp, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  float series[24];
  ck_assert_int_eq(msc_dataset_series(ds, 0, series, 24, NULL, &t, &c), MSC_OK);
  double sum = 0;
  for (int q = 0; q < N * N; ++q) sum += rb.v[0][3][q];
  ck_assert_double_eq_tol(series[3], sum / (N * N), 1e-2);
  msc_dataset_free(ds);
  real_free(&rb);
  rm_tree(dir);
}
END_TEST

/* ---- processing baselines ------------------------------------------------------------------ */

/* Processing baseline 04.00 (from 25 January 2022) adds 1000 to every digital number: a
 * copy of the sample whose second date says "04.00" reads 1000 lower on that date only. */
START_TEST(test_baseline_shift) {
  ck_assert_double_eq_tol(msci_series_baseline(S2A "/" DATE1 "/B4.tif"), 2.14, 1e-12);
  ck_assert_double_eq_tol(msci_series_baseline(MSC_SHARED_DATA
                                               "/major-tom-s2-scene/S2L2A/0U/0U_199R/"
                                               "S2A_MSIL2A_20220706T085611_N0400_R007_T33NZA_"
                                               "20220706T153419/B04.tif"),
                          4.0, 1e-12);
  ck_assert(msci_series_baseline("/nowhere/field_N0400_x/B04.tif") == 0);
  ck_assert(msci_series_baseline("B04.tif") == 0);

  const char *tmp = make_tmp("baseline");
  char dir[600], cmd[2000];
  snprintf(dir, sizeof dir, "%s", tmp);
  snprintf(cmd, sizeof cmd,
           "cp -r '%s' '%s/loc' && sed -i 's/\"PROCESSING_BASELINE\": \"02.14\"/"
           "\"PROCESSING_BASELINE\": \"04.00\"/' '%s/loc/%s/metadata.json'",
           S2A, dir, dir, DATE1);
  ck_assert_int_eq(system(cmd), 0);
  char meta_path[700];
  snprintf(meta_path, sizeof meta_path, "%s/loc/%s/B4.tif", dir, DATE1);
  ck_assert_double_eq_tol(msci_series_baseline(meta_path), 4.0, 1e-12);
  char text[8192];
  size_t len = (size_t)snprintf(text, sizeof text, "date\tseries\ts2\n");
  const char *dates[2][2] = {{"20200604", DATE0}, {"20200813", DATE1}};
  for (int d = 0; d < 2; ++d) {
    len += (size_t)snprintf(text + len, sizeof text - len, "%s\t0000200\t", dates[d][0]);
    for (int b = 0; b < 12; ++b)
      len += (size_t)snprintf(text + len, sizeof text - len, "%sloc/%s/%s.tif", b ? "," : "",
                              dates[d][1], k_bands[b]);
    len += (size_t)snprintf(text + len, sizeof text - len, "\n");
  }
  write_text(dir, "series.tsv", text);
  real_bands rb;
  real_load(&rb);
  /* The patch series is the mean of each band over the patch: by hand from libtiff's
   * values, minus 1000 on the 04.00 date (B4 and B8 are at full size, no resampling). */
  double mean[2][2] = {{0}};
  for (int d = 0; d < 2; ++d)
    for (int q = 0; q < N * N; ++q) {
      mean[d][0] += rb.v[d][3][q] / (double)(N * N);
      mean[d][1] += rb.v[d][7][q] / (double)(N * N);
    }
  for (int harmonize = 0; harmonize <= 1; ++harmonize) {
    const char *kv[] = {"data.split",
                        "all",
                        "data.series.bands",
                        BANDS_OPT,
                        "data.sits.sample",
                        "patch",
                        "data.sits.time",
                        "pad",
                        "data.sits.length",
                        "2",
                        "data.series.harmonize",
                        harmonize ? "1" : "0",
                        NULL};
    msc_dataset *ds = NULL;
    ck_assert_msg(open_kv(dir, kv, &ds) == MSC_OK, "%s", msc_last_error());
    float series[24];
    int64_t t = 0, c = 0;
    ck_assert_int_eq(msc_dataset_series(ds, 0, series, 24, NULL, &t, &c), MSC_OK);
    ck_assert_int_eq(t, 2);
    for (int d = 0; d < 2; ++d) {
      const double shift = harmonize && d == 1 ? 1000.0 : 0.0;
      ck_assert_double_eq_tol(series[d * 12 + 3], mean[d][0] - shift, 1e-2);
      ck_assert_double_eq_tol(series[d * 12 + 7], mean[d][1] - shift, 1e-2);
    }
    msc_dataset_free(ds);
  }
  /* Without harmonisation, the 04.00 convention for every date is data.sits.offset -1000:
   * reflectance = (DN - 1000) / 10000 = DN × 1e-4 - 0.1, what the dataset (and a model
   * made from it) records as scale and offset of the image modality. */
  const char *kv[] = {"data.split",
                      "all",
                      "data.series.bands",
                      BANDS_OPT,
                      "data.sits.offset",
                      "-1000",
                      "data.series.harmonize",
                      "0",
                      NULL};
  msc_dataset *ds = NULL;
  ck_assert_msg(open_kv(dir, kv, &ds) == MSC_OK, "%s", msc_last_error());
  double scale = 0, offset = 0;
  ck_assert_int_eq(msc_dataset_band_scale(ds, 1, 11, &scale, &offset), MSC_OK);
  ck_assert_double_eq_tol(scale, 1e-4, 1e-15);
  ck_assert_double_eq_tol(offset, -0.1, 1e-12);
  ck_assert_str_eq(msc_dataset_band_name(ds, 1, 11), "B12");
  ck_assert_int_eq(msc_dataset_band_scale(ds, 0, 0, &scale, &offset), MSC_OK); /* rp: NDVI */
  ck_assert(scale == 1 && offset == 0);
  ck_assert_int_eq(msc_dataset_band_scale(ds, 1, 12, &scale, &offset), MSC_E_NOT_FOUND);
  msc_dataset_free(ds);
  real_free(&rb);
  rm_tree(dir);
}
END_TEST

/* ---- small written series: labels, targets, splits ---------------------------------------- */

/* Writes 2-band 4 × 4 files a_<d>.tif (value 100·d + 10·band + pixel) for dates d. */
static void write_dates(const char *dir, int nd) {
  uint16_t v[4 * 4 * 2];
  for (int d = 0; d < nd; ++d) {
    for (int q = 0; q < 16; ++q)
      for (int b = 0; b < 2; ++b) v[q * 2 + b] = (uint16_t)(100 * d + 10 * b + q);
    char name[32];
    snprintf(name, sizeof name, "a_%d.tif", d);
    write_tiff(dir, name, 4, 4, 2, v);
  }
}

START_TEST(test_target_and_splits) {
  const char *dir = make_tmp("target");
  write_dates(dir, 3);
  /* Classes 0..2 and 9 (ignored): column q has class q % 3, row 0 is ignored. */
  uint16_t tg[16];
  for (int q = 0; q < 16; ++q) tg[q] = q < 4 ? 9 : (uint16_t)(q % 4 % 3);
  write_tiff(dir, "t.tif", 4, 4, 1, tg);
  write_text(dir, "series.tsv",
             "series\tdate\ts2\tsplit\ttarget\n"
             "p\t20200110\ta_1.tif\t\t\n"
             "q\t20200101\ta_0.tif\ttest\tt.tif\n"
             "p\t20200101\ta_0.tif\ttrain\tt.tif\n"
             "p\t20200120\ta_2.tif\ttrain\t\n");
  static const char *const kv[] = {"data.series.bands",
                                   "R,N",
                                   "data.sits.indices",
                                   "ndvi",
                                   "data.series.ignore",
                                   "9",
                                   "data.sits.pixels",
                                   "100",
                                   "data.series.classes",
                                   "a,b,c",
                                   "data.sits.time",
                                   "pad",
                                   "data.sits.length",
                                   "3",
                                   NULL};
  msc_dataset *ds = NULL;
  /* ndvi needs B4 and B8, which "R,N" does not name. */
  ck_assert_int_eq(open_kv(dir, kv, &ds), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "data.series.bands"));
  static const char *const kv2[] = {"data.series.bands",
                                    "B4,B8",
                                    "data.sits.indices",
                                    "ndvi",
                                    "data.series.ignore",
                                    "9",
                                    "data.sits.pixels",
                                    "100",
                                    "data.series.classes",
                                    "a,b,c",
                                    "data.sits.time",
                                    "pad",
                                    "data.sits.length",
                                    "3",
                                    NULL};
  ck_assert_msg(open_kv(dir, kv2, &ds) == MSC_OK, "%s", msc_last_error());
  /* Train: series p only, its 12 pixels not ignored (all of them, fewer than 100). */
  ck_assert_int_eq(msc_dataset_size(ds), 12);
  ck_assert_int_eq(msc_dataset_class_count(ds), 3);
  ck_assert_str_eq(msc_dataset_class_name(ds, 2), "c");
  for (int64_t i = 0; i < 12; ++i) {
    char id[64];
    int y, x;
    ck_assert_int_eq(msc_dataset_sample_id(ds, i, id, sizeof id, NULL), MSC_OK);
    ck_assert_int_eq(sscanf(id, "p:%d:%d", &y, &x), 2);
    ck_assert_int_ge(y, 1);
    const uint8_t *lab = ds->samples[i].labels;
    for (int k = 0; k < 3; ++k) ck_assert_int_eq(lab[k], k == x % 3);
    /* The series sorted by date: 0, 1, 2 (rows came 1, 0, 2). */
    float s[6];
    int64_t t, c;
    ck_assert_int_eq(msc_dataset_series(ds, i, s, 6, NULL, &t, &c), MSC_OK);
    for (int d = 0; d < 3; ++d)
      for (int b = 0; b < 2; ++b)
        ck_assert_float_eq(s[d * 2 + b], 100 * d + 10 * b + y * 4 + x);
  }
  msc_dataset_free(ds);

  /* Numbered classes from the values (0..2), patch samples, split test: q. */
  static const char *const kv3[] = {"data.series.bands",
                                    "B4,B8",
                                    "data.sits.indices",
                                    "ndvi",
                                    "data.series.ignore",
                                    "9",
                                    "data.sits.sample",
                                    "patch",
                                    "data.split",
                                    "test",
                                    NULL};
  ck_assert_msg(open_kv(dir, kv3, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  ck_assert_int_eq(msc_dataset_class_count(ds), 3);
  ck_assert_str_eq(msc_dataset_class_name(ds, 1), "1");
  for (int k = 0; k < 3; ++k) ck_assert_int_eq(ds->samples[0].labels[k], 1);
  msc_dataset_free(ds);

  /* Without the ignore value, 9 is a class beyond data.series.classes: an error. */
  static const char *const kv4[] = {"data.series.bands",
                                    "B4,B8",
                                    "data.sits.indices",
                                    "ndvi",
                                    "data.series.classes",
                                    "a,b,c",
                                    NULL};
  ck_assert_int_eq(open_kv(dir, kv4, &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "t.tif"));
  rm_tree(dir);
}
END_TEST

/* Cells that lead out of the dataset root (issue 19, defect 11): "../", an absolute path,
 * a symbolic link inside the root to a file outside it, and a target outside it, are
 * refused before any file is opened, naming the cell's line and the option; the same table
 * opens with data.allow_outside_root = 1. The files outside are valid rasters, so the
 * refusal can only come from the check. */
START_TEST(test_outside_root) {
  const char *dir = make_tmp("outside");
  char root[600], text[2048], abs_a0[700];
  snprintf(root, sizeof root, "%s/root", dir);
  ck_assert_int_eq(mkdir(root, 0755), 0);
  write_dates(dir, 2); /* a_0.tif, a_1.tif beside the root, not in it */
  write_dates(root, 2);
  uint16_t tg[16] = {0};
  write_tiff(dir, "t.tif", 4, 4, 1, tg);
  snprintf(abs_a0, sizeof abs_a0, "%s/a_0.tif", dir);
  char link[700];
  snprintf(link, sizeof link, "%s/link.tif", root);
  ck_assert_int_eq(symlink(abs_a0, link), 0);
  static const char *const kv[] = {"data.series.bands",
                                   "B4,B8",
                                   "data.sits.indices",
                                   "ndvi",
                                   "data.split",
                                   "all",
                                   "data.sits.sample",
                                   "patch",
                                   NULL};
  static const char *const kv_skip[] = {
      "data.series.bands", "B4,B8", "data.sits.indices", "ndvi", "data.split", "all",
      "data.sits.sample",  "patch", "data.on_missing",   "skip", NULL};
  static const char *const kv_allow[] = {
      "data.series.bands", "B4,B8", "data.sits.indices",       "ndvi", "data.split", "all",
      "data.sits.sample",  "patch", "data.allow_outside_root", "1",    NULL};
  const char *cells[4] = {"../a_0.tif", abs_a0, "link.tif", "sub/../../a_0.tif"};
  ck_assert_int_eq(mkdir(strcat(strcpy(text, root), "/sub"), 0755), 0);
  msc_dataset *ds = NULL;
  for (int c = 0; c < 4; ++c) {
    snprintf(text, sizeof text,
             "series\tdate\ts2\n"
             "p\t20200101\ta_1.tif\n"
             "p\t20200110\t%s\n",
             cells[c]);
    write_text(root, "series.tsv", text);
    ck_assert_int_eq(open_kv(root, kv, &ds), MSC_E_BAD_FORMAT);
    ck_assert_msg(strstr(msc_last_error(), "outside the dataset root") &&
                      strstr(msc_last_error(), "line 3") &&
                      strstr(msc_last_error(), "data.allow_outside_root"),
                  "cell %s: %s", cells[c], msc_last_error());
    ck_assert_msg(open_kv(root, kv_allow, &ds) == MSC_OK, "cell %s: %s", cells[c],
                  msc_last_error());
    ck_assert_int_eq(msc_dataset_size(ds), 1);
    msc_dataset_free(ds);
  }
  /* A missing file outside the root is refused too, not skipped as missing. */
  write_text(root, "series.tsv", "series\tdate\ts2\np\t20200101\t../none.tif\n");
  ck_assert_int_eq(open_kv(root, kv_skip, &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "outside the dataset root"));
  /* A target outside the root. */
  write_text(root, "series.tsv", "series\tdate\ts2\ttarget\np\t20200101\ta_0.tif\t../t.tif\n");
  ck_assert_int_eq(open_kv(root, kv, &ds), MSC_E_BAD_FORMAT);
  ck_assert_msg(strstr(msc_last_error(), "outside the dataset root") &&
                    strstr(msc_last_error(), "target"),
                "%s", msc_last_error());
  ck_assert_msg(open_kv(root, kv_allow, &ds) == MSC_OK, "%s", msc_last_error());
  msc_dataset_free(ds);
  /* Inside the root, through a subfolder and "..", is fine. */
  write_text(root, "series.tsv", "series\tdate\ts2\np\t20200101\tsub/../a_0.tif\n");
  ck_assert_msg(open_kv(root, kv, &ds) == MSC_OK, "%s", msc_last_error());
  msc_dataset_free(ds);
  rm_tree(dir);
}
END_TEST

START_TEST(test_labels) {
  const char *dir = make_tmp("labels");
  write_dates(dir, 2);
  write_text(dir, "series.tsv",
             "series\tdate\ts2\tlabels\n"
             "s1\t20200101\ta_0.tif\twheat;corn\n"
             "s1\t20200201\ta_1.tif\twheat;corn\n"
             "s2\t20200101\ta_0.tif\n"
             "s2\t20200201\ta_1.tif\tbarley\n");
  /* s2's third cell is missing: a short line. */
  static const char *const kv[] = {"data.series.bands",
                                   "B4,B8",
                                   "data.sits.indices",
                                   "ndvi",
                                   "data.split",
                                   "all",
                                   "data.sits.sample",
                                   "patch",
                                   NULL};
  msc_dataset *ds = NULL;
  ck_assert_int_eq(open_kv(dir, kv, &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "line 4"));
  write_text(dir, "series.tsv",
             "series\tdate\ts2\tlabels\n"
             "s1\t20200101\ta_0.tif\twheat;corn\n"
             "s1\t20200201\ta_1.tif\twheat;corn\n"
             "s2\t20200101\ta_0.tif\t\n"
             "s2\t20200201\ta_1.tif\tbarley\n");
  ck_assert_msg(open_kv(dir, kv, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 2);
  ck_assert_int_eq(msc_dataset_class_count(ds), 3); /* sorted: barley, corn, wheat */
  ck_assert_str_eq(msc_dataset_class_name(ds, 0), "barley");
  ck_assert_str_eq(msc_dataset_class_name(ds, 2), "wheat");
  const uint8_t *l0 = ds->samples[0].labels, *l1 = ds->samples[1].labels;
  ck_assert(l0[0] == 0 && l0[1] == 1 && l0[2] == 1);
  ck_assert(l1[0] == 1 && l1[1] == 0 && l1[2] == 0);
  msc_dataset_free(ds);
  /* Two different labels for one series. */
  write_text(dir, "series.tsv",
             "series\tdate\ts2\tlabels\n"
             "s1\t20200101\ta_0.tif\twheat\n"
             "s1\t20200201\ta_1.tif\tcorn\n");
  ck_assert_int_eq(open_kv(dir, kv, &ds), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "line 3"));
  rm_tree(dir);
}
END_TEST

/* ---- hostile and invalid tables --------------------------------------------------------- */

static void expect_error(const char *dir, const char *table, const char *const *kv,
                         msc_status want, const char *needle) {
  write_text(dir, "series.tsv", table);
  msc_dataset *ds = NULL;
  msc_status st = open_kv(dir, kv, &ds);
  ck_assert_msg(st == want, "status %d (want %d) for\n%s: %s", (int)st, (int)want, table,
                msc_last_error());
  ck_assert_ptr_null(ds);
  ck_assert_msg(strstr(msc_last_error(), needle) != NULL, "'%s' not in: %s", needle,
                msc_last_error());
}

START_TEST(test_invalid_tables) {
  const char *dir = make_tmp("invalid");
  write_dates(dir, 2);
  uint16_t big[5 * 5 * 2] = {0}, three[4 * 4 * 3] = {0};
  write_tiff(dir, "big.tif", 5, 5, 2, big);
  write_tiff(dir, "three.tif", 4, 4, 3, three);
  static const char *const kv[] = {
      "data.series.bands", "B4,B8", "data.sits.indices", "ndvi", "data.split", "all", NULL};
  expect_error(dir, "series\tdate\ts2\np\t2020-01-01\ta_0.tif\n", kv, MSC_E_BAD_FORMAT,
               "line 2: date '2020-01-01'");
  expect_error(dir, "series\tdate\ts2\np\t20201301\ta_0.tif\n", kv, MSC_E_BAD_FORMAT,
               "date '20201301'");
  expect_error(dir, "series\ts2\np\ta_0.tif\n", kv, MSC_E_BAD_FORMAT, "no 'date' column");
  expect_error(dir, "series\tdate\ts2\tcloud\np\t20200101\ta_0.tif\t3\n", kv, MSC_E_BAD_FORMAT,
               "column 'cloud' is unknown");
  expect_error(dir, "series\tdate\ts2\np\t20200101\ta_0.tif\np\t20200101\ta_1.tif\n", kv,
               MSC_E_BAD_FORMAT, "line 3: series p has date 20200101 twice (line 2)");
  expect_error(dir, "series\tdate\ts2\np\t20200101\ta_0.tif\np\t20200201\tbig.tif\n", kv,
               MSC_E_BAD_FORMAT, "big.tif is 5 x 5");
  expect_error(dir, "series\tdate\ts2\np\t20200101\tthree.tif\n", kv, MSC_E_BAD_FORMAT,
               "three.tif has 3 bands, 2 expected");
  expect_error(dir, "series\tdate\ts2\tsplit\np\t20200101\ta_0.tif\ttrial\n", kv,
               MSC_E_BAD_FORMAT, "unknown split 'trial'");
  expect_error(dir, "series\tdate\ts2\tlabels\ttarget\np\t20200101\ta_0.tif\tx\tt.tif\n", kv,
               MSC_E_BAD_FORMAT, "both a labels and a target column");
  /* A missing file: named, and with on_missing = skip the series is left out. */
  const char *missing = "series\tdate\ts2\n"
                        "p\t20200101\ta_0.tif\n"
                        "p\t20200201\tnone.tif\n"
                        "q\t20200101\ta_0.tif\n";
  expect_error(dir, missing, kv, MSC_E_NOT_FOUND, "series p: missing file");
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "none.tif"));
  static const char *const skip[] = {
      "data.series.bands", "B4,B8", "data.sits.indices", "ndvi",  "data.split", "all",
      "data.on_missing",   "skip",  "data.sits.sample",  "patch", NULL};
  msc_dataset *ds = NULL;
  ck_assert_msg(open_kv(dir, skip, &ds) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_dataset_size(ds), 1);
  ck_assert_int_eq(msc_dataset_skipped(ds), 1);
  char id[16];
  ck_assert_int_eq(msc_dataset_sample_id(ds, 0, id, sizeof id, NULL), MSC_OK);
  ck_assert_str_eq(id, "q");
  msc_dataset_free(ds);
  /* No table at all. */
  rm_tree(dir);
  make_tmp("invalid");
  ck_assert_int_eq(open_kv(dir, kv, &ds), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "series.tsv"));
  rm_tree(dir);
}
END_TEST

static Suite *series_suite(void) {
  Suite *s = suite_create("series");
  TCase *tc = tcase_create("series");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_real_series_and_plots);
  tcase_add_test(tc, test_target_and_splits);
  tcase_add_test(tc, test_labels);
  tcase_add_test(tc, test_baseline_shift);
  tcase_add_test(tc, test_invalid_tables);
  tcase_add_test(tc, test_outside_root);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  TIFFSetWarningHandler(NULL); /* GeoTIFF tags are unknown to plain libtiff: not news */
  SRunner *sr = srunner_create(series_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
