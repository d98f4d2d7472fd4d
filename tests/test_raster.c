/*
 * test_raster.c — GeoTIFF reading (whole files, windows, georeferencing, hostile files)
 * and resampling.
 *
 * Golden pixel values come from tools independent of libtiff's decoding path:
 *  - uncompressed files: `tiffdump` gave the strip offsets and `od -t u2` / `od -t f4`
 *    the raw little-endian samples at those offsets;
 *  - LZW and DEFLATE files (Major-TOM, the BigEarthNet reference map): a 80-line Python
 *    reader using only the standard library (struct for the IFD, zlib for DEFLATE, a
 *    hand-written TIFF LZW decoder, the horizontal predictor undone by hand), which also
 *    reproduced every `od` value of the uncompressed files.
 * Georeferencing expectations are `tiffinfo`'s "Tag 33550/33922/34735/34737" lines and
 * "GDAL NoDataValue" (listgeo is not installed here). Resampling expectations are worked
 * out by hand for align_corners = False.
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

#include "data/raster.h"

#ifndef MSC_TEST_DATA
#error "MSC_TEST_DATA must name examples/data"
#endif
#ifndef MSC_SHARED_DATA
#error "MSC_SHARED_DATA must name tests/data"
#endif

#define V2 MSC_TEST_DATA "/bigearthnet-v2/"
#define B01                                                                                    \
  V2 "BigEarthNet-S2/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP/"                            \
     "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48/"                                     \
     "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48_B01.tif"
#define VV                                                                                     \
  V2 "BigEarthNet-S1/S1A_IW_GRDH_1SDV_20170613T165043/"                                        \
     "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48/"                                           \
     "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48_VV.tif"
#define UNPAIRED MSC_SHARED_DATA "/bigearthnet-v2-unpaired/"
#define B04_120                                                                                \
  UNPAIRED "BigEarthNet-S2/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP/"                      \
           "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_75_43/"                               \
           "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_75_43_B04.tif"
#define REFMAP                                                                                 \
  UNPAIRED "Reference_Maps/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP/"                      \
           "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57/"                               \
           "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57_reference_map.tif"
#define MT                                                                                     \
  MSC_SHARED_DATA "/major-tom-s2-scene/S2L2A/0U/0U_199R/"                                      \
                  "S2A_MSIL2A_20220706T085611_N0400_R007_T33NZA_20220706T153419/"
#define MT_B04   MT "B04.tif"
#define MT_B8A   MT "B8A.tif"
#define MT_CLOUD MT "cloud_mask.tif"
#define EUROSAT  MSC_SHARED_DATA "/eurosat-ms/AnnualCrop/AnnualCrop_1.tif"

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float px(const msci_raster *r, int64_t band, int64_t x, int64_t y) {
  return r->data[(band * r->height + y) * r->width + x];
}

/* ---- reading with stderr watched ------------------------------------------------------ */

typedef struct quiet {
  int fd, saved;
  char name[64];
} quiet;

static void quiet_begin(quiet *q) {
  snprintf(q->name, sizeof q->name, "/tmp/msc_raster_stderr_XXXXXX");
  q->fd = mkstemp(q->name);
  ck_assert_int_ge(q->fd, 0);
  fflush(stderr);
  q->saved = dup(2);
  dup2(q->fd, 2);
}

static void quiet_end(quiet *q, const char *what) {
  fflush(stderr);
  dup2(q->saved, 2);
  close(q->saved);
  off_t printed = lseek(q->fd, 0, SEEK_END);
  close(q->fd);
  unlink(q->name);
  ck_assert_msg(printed == 0, "%s: libtiff printed %lld bytes on stderr", what,
                (long long)printed);
}

/* A whole read (w == 0) or a window read, with nothing printed on stderr. */
static msc_status read_quietly_window(const char *path, int64_t x0, int64_t y0, int64_t w,
                                      int64_t h) {
  quiet q;
  quiet_begin(&q);
  /* The info alone first (msc_last_error() is then the read's). */
  msci_raster_info info;
  msc_status ist = msci_raster_info_read(path, &info);
  msci_raster_info_free(&info);
  msci_raster r;
  msc_status st =
      w == 0 ? msci_raster_read(path, &r) : msci_raster_read_window(path, x0, y0, w, h, &r);
  msci_raster_free(&r);
  quiet_end(&q, path);
  /* A file whose layout cannot be read cannot be read either. */
  if (ist != MSC_OK) ck_assert_int_ne(st, MSC_OK);
  return st;
}

static msc_status read_quietly(const char *path) {
  return read_quietly_window(path, 0, 0, 0, 0);
}

/* ---- golden values ------------------------------------------------------------------- */

START_TEST(test_golden_uint16) {
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(B01, &r), MSC_OK);
  ck_assert_int_eq(r.width, 20);
  ck_assert_int_eq(r.height, 20);
  ck_assert_int_eq(r.bands, 1);
  /* tiffdump: one strip at offset 396; od -t u2 there. */
  ck_assert_float_eq(r.data[0], 610.f);
  ck_assert_float_eq(r.data[1], 390.f);
  ck_assert_float_eq(r.data[2], 553.f);
  ck_assert_float_eq(r.data[3], 612.f);
  ck_assert_float_eq(px(&r, 0, 19, 19), 483.f); /* Python reader */
  ck_assert_float_eq(px(&r, 0, 7, 13), 434.f);
  msci_raster_free(&r);

  /* A 10 m band, 120 × 120 in 4 strips of 34 rows, the last one partial (18 rows).
   * tiffdump: StripOffsets 396 8556 16716 24876; od -t u2 at 396 + 2·(120y + x) within
   * the strip: (0,0) 634, (119,0) 580, (37,91) 1052, (119,119) 201. */
  ck_assert_int_eq(msci_raster_read(B04_120, &r), MSC_OK);
  ck_assert_int_eq(r.width, 120);
  ck_assert_int_eq(r.height, 120);
  ck_assert_float_eq(px(&r, 0, 0, 0), 634.f);
  ck_assert_float_eq(px(&r, 0, 119, 0), 580.f);
  ck_assert_float_eq(px(&r, 0, 37, 91), 1052.f);
  ck_assert_float_eq(px(&r, 0, 119, 119), 201.f);
  ck_assert_int_eq(r.info.block_height, 34);
  ck_assert_int_eq(r.info.tiled, 0);
  msci_raster_free(&r);
}
END_TEST

START_TEST(test_golden_float32_strips) {
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(VV, &r), MSC_OK);
  ck_assert_int_eq(r.width, 120);
  ck_assert_int_eq(r.height, 120);
  /* (0,0), (0,1) and (17,0): the first pixel of the second strip (17 rows each);
   * od -t x4 at the strip offsets; (119,119) and (60,101) from the Python reader. */
  ck_assert_uint_eq(bits_of(r.data[0]), 0xc12d9d2fu);
  ck_assert_float_eq_tol(r.data[1], -12.670076f, 1e-6f);
  ck_assert_uint_eq(bits_of(r.data[17 * 120]), 0xc15b0a4fu);
  ck_assert_uint_eq(bits_of(px(&r, 0, 119, 119)), 0xc124f676u);
  ck_assert_uint_eq(bits_of(px(&r, 0, 60, 101)), 0xc170df52u);
  ck_assert_int_eq(r.info.sample_format, 3);
  ck_assert_int_eq(r.info.bits, 32);
  msci_raster_free(&r);
}
END_TEST

START_TEST(test_golden_eurosat_13_bands) {
  /* 64 × 64, 13 uint16 samples per pixel (chunky), 16 strips of 4 rows at 748 + 6656·k.
   * od -t u2 at 748 + 6656·(y/4) + 2·((64·(y%4) + x)·13 + band−1): band 13 (B8A) at
   * (0,0) 2319, (63,63) 1589, (10,37) 1606; the Python reader agrees and gives (1,0)
   * band 13 2319, band 1 (0,0) 1420 and (63,63) 1311, band 4 (0,0) 1600. */
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(EUROSAT, &r), MSC_OK);
  ck_assert_int_eq(r.width, 64);
  ck_assert_int_eq(r.height, 64);
  ck_assert_int_eq(r.bands, 13);
  ck_assert_float_eq(px(&r, 12, 0, 0), 2319.f);
  ck_assert_float_eq(px(&r, 12, 1, 0), 2319.f);
  ck_assert_float_eq(px(&r, 12, 63, 63), 1589.f);
  ck_assert_float_eq(px(&r, 12, 10, 37), 1606.f);
  ck_assert_float_eq(px(&r, 0, 0, 0), 1420.f);
  ck_assert_float_eq(px(&r, 0, 63, 63), 1311.f);
  ck_assert_float_eq(px(&r, 3, 0, 0), 1600.f);
  ck_assert_int_eq(r.info.planar, 1);
  /* A window of the 13-band file: every band of the sub-array. */
  msci_raster w;
  ck_assert_int_eq(msci_raster_read_window(EUROSAT, 9, 35, 5, 6, &w), MSC_OK);
  ck_assert_int_eq(w.bands, 13);
  for (int b = 0; b < 13; ++b)
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 5; ++x) ck_assert_float_eq(px(&w, b, x, y), px(&r, b, 9 + x, 35 + y));
  ck_assert_float_eq(px(&w, 12, 1, 2), 1606.f);
  msci_raster_free(&w);
  msci_raster_free(&r);
}
END_TEST

START_TEST(test_golden_deflate_predictor_reference_map) {
  /* uint16 CLC codes, DEFLATE + horizontal predictor, 120 × 120 in strips of 34 rows
   * (the last one partial), GDAL nodata "0". Python reader (zlib + predictor undone). */
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(REFMAP, &r), MSC_OK);
  ck_assert_float_eq(px(&r, 0, 0, 0), 211.f);
  ck_assert_float_eq(px(&r, 0, 119, 119), 311.f);
  ck_assert_float_eq(px(&r, 0, 50, 70), 211.f);
  ck_assert_float_eq(px(&r, 0, 0, 34), 231.f);
  ck_assert_float_eq(px(&r, 0, 119, 33), 311.f);
  ck_assert_int_eq(r.info.compression, 8);
  ck_assert_int_eq(r.info.predictor, 2);
  ck_assert_int_eq(r.info.has_nodata, 1);
  ck_assert_str_eq(r.info.nodata_text, "0");
  ck_assert_double_eq(r.info.nodata, 0.0);
  msci_raster_free(&r);
}
END_TEST

START_TEST(test_golden_major_tom) {
  /* 1068 × 1068 uint16, LZW, 1024 × 1024 tiles: 4 tiles, three of them partial.
   * Values from the Python reader (its LZW decoder, tile offsets from the IFD). */
  static const struct {
    int x, y;
    float v;
  } want[] = {{0, 0, 2032},       {1, 0, 2056},       {0, 1, 2204},    {1023, 1023, 1821},
              {1024, 0, 2860},    {1067, 0, 2540},    {0, 1067, 2652}, {1024, 1024, 1872},
              {1067, 1067, 1764}, {1030, 1050, 1996}, {500, 500, 3266}};
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(MT_B04, &r), MSC_OK);
  ck_assert_int_eq(r.width, 1068);
  ck_assert_int_eq(r.height, 1068);
  ck_assert_int_eq(r.bands, 1);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; ++i)
    ck_assert_msg(px(&r, 0, want[i].x, want[i].y) == want[i].v, "(%d, %d): %g, not %g",
                  want[i].x, want[i].y, (double)px(&r, 0, want[i].x, want[i].y),
                  (double)want[i].v);
  msci_raster_free(&r);
  /* The 20 m band: 534 × 534 inside a single 1024 × 1024 tile. */
  ck_assert_int_eq(msci_raster_read(MT_B8A, &r), MSC_OK);
  ck_assert_int_eq(r.width, 534);
  ck_assert_float_eq(px(&r, 0, 0, 0), 3741.f);
  ck_assert_float_eq(px(&r, 0, 533, 533), 3656.f);
  ck_assert_float_eq(px(&r, 0, 300, 200), 4042.f);
  msci_raster_free(&r);
}
END_TEST

/* ---- windows ------------------------------------------------------------------------- */

static void check_window(const char *path, const msci_raster *whole, int64_t x0, int64_t y0,
                         int64_t w, int64_t h) {
  msci_raster r;
  msc_status st = msci_raster_read_window(path, x0, y0, w, h, &r);
  ck_assert_msg(st == MSC_OK, "window %lld,%lld %lldx%lld: %s", (long long)x0, (long long)y0,
                (long long)w, (long long)h, msc_last_error());
  ck_assert_int_eq(r.width, w);
  ck_assert_int_eq(r.height, h);
  ck_assert_int_eq(r.bands, whole->bands);
  ck_assert_int_eq(r.x0, x0);
  ck_assert_int_eq(r.y0, y0);
  ck_assert_int_eq(r.info.width, whole->width);
  ck_assert_int_eq(r.info.height, whole->height);
  for (int64_t b = 0; b < r.bands; ++b)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        if (memcmp(&r.data[(b * h + y) * w + x],
                   &whole->data[(b * whole->height + y0 + y) * whole->width + x0 + x],
                   sizeof(float)) != 0)
          ck_abort_msg("window %lld,%lld %lldx%lld of %s: band %lld (%lld, %lld) differs",
                       (long long)x0, (long long)y0, (long long)w, (long long)h, path,
                       (long long)b, (long long)x, (long long)y);
  msci_raster_free(&r);
}

START_TEST(test_windows_major_tom) {
  msci_raster whole;
  ck_assert_int_eq(msci_raster_read(MT_B04, &whole), MSC_OK);
  check_window(MT_B04, &whole, 10, 20, 50, 40);     /* inside the first tile */
  check_window(MT_B04, &whole, 1000, 1000, 48, 30); /* across both tile borders */
  check_window(MT_B04, &whole, 1010, 5, 30, 10);    /* across the vertical border */
  check_window(MT_B04, &whole, 3, 1020, 7, 9);      /* across the horizontal border */
  check_window(MT_B04, &whole, 1024, 1024, 44, 44); /* exactly the corner edge tile */
  check_window(MT_B04, &whole, 1060, 1050, 8, 18);  /* touching the bottom-right corner */
  check_window(MT_B04, &whole, 1067, 1067, 1, 1);
  check_window(MT_B04, &whole, 1024, 0, 44, 1068); /* the right column of edge tiles */
  check_window(MT_B04, &whole, 0, 1030, 1068, 38); /* full-width rows */
  check_window(MT_B04, &whole, 0, 0, 1068, 1068);
  /* The window carries the file's georeferencing. */
  msci_raster r;
  ck_assert_int_eq(msci_raster_read_window(MT_B04, 1030, 1050, 2, 2, &r), MSC_OK);
  ck_assert_float_eq(r.data[0], 1996.f); /* golden (1030, 1050) */
  ck_assert_int_eq(r.info.has_pixel_scale, 1);
  ck_assert_int_eq(msci_raster_info_epsg(&r.info), 32633);
  msci_raster_free(&r);
  msci_raster_free(&whole);

  /* The cloud mask: uint8, LZW, tiles, separate planes. */
  ck_assert_int_eq(msci_raster_read(MT_CLOUD, &whole), MSC_OK);
  ck_assert_int_eq(whole.info.planar, 2);
  ck_assert_int_eq(whole.info.bits, 8);
  check_window(MT_CLOUD, &whole, 1000, 1000, 68, 68);
  check_window(MT_CLOUD, &whole, 5, 1060, 1063, 8);
  msci_raster_free(&whole);
}
END_TEST

START_TEST(test_window_outside) {
  static const int64_t bad[][4] = {
      {1068, 0, 1, 1},      {0, 1068, 1, 1},     {0, 0, 1069, 1},      {0, 0, 1, 1069},
      {-1, 0, 1, 1},        {0, -1, 1, 1},       {0, 0, 0, 1},         {0, 0, 1, 0},
      {0, 0, 1, -5},        {1060, 0, 9, 1},     {INT64_MAX, 0, 1, 1}, {1, 1, INT64_MAX, 1},
      {1, 1, 1, INT64_MAX}, {INT64_MIN, 0, 1, 1}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    msci_raster r;
    msc_status st =
        msci_raster_read_window(MT_B04, bad[i][0], bad[i][1], bad[i][2], bad[i][3], &r);
    ck_assert_msg(st == MSC_E_INVALID_ARGUMENT, "window %zu: %d", i, st);
    ck_assert_ptr_null(r.data);
    ck_assert_ptr_nonnull(strstr(msc_last_error(), MT_B04));
    ck_assert_ptr_nonnull(strstr(msc_last_error(), "1068x1068"));
    msci_raster_free(&r);
  }
}
END_TEST

/* ---- georeferencing ----------------------------------------------------------------- */

static void check_utm33_keys(const msci_raster_info *info) {
  /* tiffinfo: Tag 34735: 1,1,0,7,1024,0,1,1,1025,0,1,1,1026,34737,22,0,2049,34737,7,22,
   * 2054,0,1,9102,3072,0,1,32633,3076,0,1,9001; Tag 34737: WGS 84 / UTM zone 33N|WGS 84| */
  static const uint16_t keys[32] = {1, 1,    0,     7,  1024, 0,     1,     1, 1025, 0,    1,
                                    1, 1026, 34737, 22, 0,    2049,  34737, 7, 22,   2054, 0,
                                    1, 9102, 3072,  0,  1,    32633, 3076,  0, 1,    9001};
  ck_assert_int_eq(info->has_geokeys, 1);
  ck_assert_int_eq(info->n_geokeys, 32);
  for (int i = 0; i < 32; ++i) ck_assert_uint_eq(info->geokeys[i], keys[i]);
  ck_assert_int_eq(msci_raster_info_epsg(info), 32633);
  uint16_t v = 0;
  ck_assert_int_eq(msci_raster_info_geokey(info, 1024, &v), 1); /* GTModelTypeGeoKey */
  ck_assert_uint_eq(v, 1);                                      /* projected */
  ck_assert_int_eq(msci_raster_info_geokey(info, 1026, &v), 0); /* in GeoAsciiParams */
  ck_assert_int_eq(msci_raster_info_geokey(info, 4096, &v), 0); /* absent */
  ck_assert_int_eq(info->has_geo_ascii, 1);
  ck_assert_str_eq(info->geo_ascii, "WGS 84 / UTM zone 33N|WGS 84|");
  ck_assert_int_eq(info->has_geo_doubles, 0);
  ck_assert_int_eq(info->has_transformation, 0);
}

START_TEST(test_georef_major_tom) {
  msci_raster_info info;
  ck_assert_int_eq(msci_raster_info_read(MT_B04, &info), MSC_OK);
  ck_assert_int_eq(info.width, 1068);
  ck_assert_int_eq(info.height, 1068);
  ck_assert_int_eq(info.bands, 1);
  ck_assert_int_eq(info.bits, 16);
  ck_assert_int_eq(info.sample_format, 1);
  ck_assert_int_eq(info.tiled, 1);
  ck_assert_int_eq(info.block_width, 1024);
  ck_assert_int_eq(info.block_height, 1024);
  ck_assert_int_eq(info.compression, 5);
  ck_assert_int_eq(info.predictor, 1);
  ck_assert_int_eq(info.planar, 1);
  /* tiffinfo: Tag 33550: 10,10,0; Tag 33922: 0,0,0,819627.364339,10340,0 */
  ck_assert_int_eq(info.has_pixel_scale, 1);
  ck_assert_double_eq(info.pixel_scale[0], 10.0);
  ck_assert_double_eq(info.pixel_scale[1], 10.0);
  ck_assert_double_eq(info.pixel_scale[2], 0.0);
  ck_assert_int_eq(info.has_tiepoints, 1);
  ck_assert_int_eq(info.n_tiepoints, 1);
  ck_assert_double_eq(info.tiepoints[0], 0.0);
  ck_assert_double_eq(info.tiepoints[1], 0.0);
  ck_assert_double_eq_tol(info.tiepoints[3], 819627.364339, 1e-6);
  ck_assert_double_eq(info.tiepoints[4], 10340.0);
  ck_assert_int_eq(info.has_nodata, 0);
  check_utm33_keys(&info);
  msci_raster_info_free(&info);
  msci_raster_info_free(&info); /* twice: harmless */
}
END_TEST

START_TEST(test_georef_bigearthnet) {
  msci_raster_info info;
  /* tiffinfo: Tag 33550: 60,60,0; Tag 33922: 0,0,0,404400,5342400,0 */
  ck_assert_int_eq(msci_raster_info_read(B01, &info), MSC_OK);
  ck_assert_int_eq(info.tiled, 0);
  ck_assert_int_eq(info.compression, 1);
  ck_assert_double_eq(info.pixel_scale[0], 60.0);
  ck_assert_double_eq(info.pixel_scale[1], 60.0);
  ck_assert_int_eq(info.n_tiepoints, 1);
  ck_assert_double_eq(info.tiepoints[3], 404400.0);
  ck_assert_double_eq(info.tiepoints[4], 5342400.0);
  check_utm33_keys(&info);
  msci_raster_info_free(&info);
  /* The S1 band of the same patch: 10 m, the same tie point. */
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(VV, &r), MSC_OK);
  ck_assert_double_eq(r.info.pixel_scale[0], 10.0);
  ck_assert_double_eq(r.info.tiepoints[3], 404400.0);
  ck_assert_double_eq(r.info.tiepoints[4], 5342400.0);
  check_utm33_keys(&r.info);
  msci_raster_free(&r);
}
END_TEST

static int saw_libtiff_warning;
static void on_log(int32_t level, const char *message, void *user) {
  (void)user;
  if (level == MSC_LOG_DEBUG && strstr(message, "libtiff") && strstr(message, "33550"))
    saw_libtiff_warning = 1;
}

START_TEST(test_libtiff_messages_go_to_log) {
  saw_libtiff_warning = 0;
  ck_assert_int_eq(msc_set_log_callback(on_log, NULL, MSC_LOG_DEBUG), MSC_OK);
  ck_assert_int_eq(read_quietly(MT_B8A), MSC_OK);
  msc_set_log_callback(NULL, NULL, MSC_LOG_WARNING);
  ck_assert_int_eq(saw_libtiff_warning, 1);
}
END_TEST

/* ---- files written here with libtiff ------------------------------------------------ */

typedef struct spec {
  const char *name;
  uint32_t w, h;
  uint16_t spp, bits, fmt, planar, compression, predictor;
  uint32_t tile_w, tile_h; /* 0: strips */
  uint32_t rows;           /* rows per strip */
} spec;

/* A value of band b at (x, y) that the sample type holds exactly (negatives for signed
 * and float types, fractions for floats). */
static double value_at(const spec *s, uint32_t b, uint32_t x, uint32_t y) {
  int64_t k = (int64_t)b * 7919 + (int64_t)y * 131 + (int64_t)x * 17 + ((x * y) % 13);
  if (s->fmt == SAMPLEFORMAT_IEEEFP)
    return (double)(k % 2000 - 1000) * 0.125 + (x % 3) * 0.0625;
  int64_t range = (int64_t)1 << (s->bits > 24 ? 24 : s->bits);
  int64_t v = k % range;
  if (s->fmt == SAMPLEFORMAT_INT) v -= range / 2;
  if (s->bits == 32) v *= 97; /* beyond 16 bits, still exact in float */
  return (double)v;
}

static void put(const spec *s, uint8_t *dst, double v) {
  switch (s->bits * 4 + s->fmt) {
  case 8 * 4 + 1: *(uint8_t *)dst = (uint8_t)v; break;
  case 8 * 4 + 2: *(int8_t *)dst = (int8_t)v; break;
  case 16 * 4 + 1: {
    uint16_t t = (uint16_t)v;
    memcpy(dst, &t, 2);
  } break;
  case 16 * 4 + 2: {
    int16_t t = (int16_t)v;
    memcpy(dst, &t, 2);
  } break;
  case 32 * 4 + 1: {
    uint32_t t = (uint32_t)v;
    memcpy(dst, &t, 4);
  } break;
  case 32 * 4 + 2: {
    int32_t t = (int32_t)v;
    memcpy(dst, &t, 4);
  } break;
  case 32 * 4 + 3: {
    float t = (float)v;
    memcpy(dst, &t, 4);
  } break;
  case 64 * 4 + 3: memcpy(dst, &v, 8); break;
  default: ck_abort_msg("bad spec");
  }
}

/* Called, when set, on each file write_spec writes, before the pixels. */
static void (*write_hook)(TIFF *t);

/* Writes spec s to path, block by block, from value_at. */
static void write_spec(const char *path, const spec *s, const char *nodata) {
  TIFF *t = TIFFOpen(path, "w");
  ck_assert_ptr_nonnull(t);
  if (write_hook) write_hook(t);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, s->w);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, s->h);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, s->spp);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, s->bits);
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, s->fmt);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, s->planar);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(t, TIFFTAG_COMPRESSION, s->compression);
  if (s->predictor > 1) TIFFSetField(t, TIFFTAG_PREDICTOR, s->predictor);
  if (s->spp > 1) {
    uint16_t extra[16] = {0};
    TIFFSetField(t, TIFFTAG_EXTRASAMPLES, s->spp - 1, extra);
  }
  if (nodata) {
    /* libtiff 4.5 names the tag in tiff.h but does not register it: do so on this handle. */
    static const TIFFFieldInfo fi[] = {{TIFFTAG_GDAL_NODATA, -1, -1, TIFF_ASCII, FIELD_CUSTOM,
                                        1, 0, (char *)"GDALNoDataValue"}};
    if (!TIFFFindField(t, TIFFTAG_GDAL_NODATA, TIFF_ANY)) TIFFMergeFieldInfo(t, fi, 1);
    ck_assert_int_eq(TIFFSetField(t, TIFFTAG_GDAL_NODATA, nodata), 1);
  }
  uint32_t bw = s->tile_w ? s->tile_w : s->w, bh = s->tile_w ? s->tile_h : s->rows;
  if (s->tile_w) {
    TIFFSetField(t, TIFFTAG_TILEWIDTH, s->tile_w);
    TIFFSetField(t, TIFFTAG_TILELENGTH, s->tile_h);
  } else {
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, s->rows);
  }
  uint32_t spb = s->planar == PLANARCONFIG_SEPARATE ? 1 : s->spp;
  uint32_t planes = s->planar == PLANARCONFIG_SEPARATE ? s->spp : 1;
  size_t bps = s->bits / 8;
  uint8_t *buf = calloc((size_t)bw * bh * spb, bps);
  ck_assert_ptr_nonnull(buf);
  for (uint32_t p = 0; p < planes; ++p)
    for (uint32_t by = 0; by < s->h; by += bh)
      for (uint32_t bx = 0; bx < s->w; bx += bw) {
        uint32_t rows = s->tile_w || by + bh <= s->h ? bh : s->h - by;
        memset(buf, 0, (size_t)bw * bh * spb * bps);
        for (uint32_t y = 0; y < rows; ++y)
          for (uint32_t x = 0; x < bw; ++x)
            for (uint32_t k = 0; k < spb; ++k) {
              if (bx + x >= s->w || by + y >= s->h) continue; /* padding stays 0 */
              uint32_t band = s->planar == PLANARCONFIG_SEPARATE ? p : k;
              put(s, buf + (((size_t)y * bw + x) * spb + k) * bps,
                  value_at(s, band, bx + x, by + y));
            }
        tmsize_t n = (tmsize_t)((size_t)rows * bw * spb * bps);
        if (s->tile_w)
          ck_assert_int_eq(
              TIFFWriteEncodedTile(t, TIFFComputeTile(t, bx, by, 0, (uint16_t)p), buf, n), n);
        else
          ck_assert_int_eq(
              TIFFWriteEncodedStrip(t, TIFFComputeStrip(t, by, (uint16_t)p), buf, n), n);
      }
  free(buf);
  TIFFClose(t);
}

static void check_against_spec(const spec *s, const msci_raster *r, int64_t x0, int64_t y0) {
  for (int64_t b = 0; b < r->bands; ++b)
    for (int64_t y = 0; y < r->height; ++y)
      for (int64_t x = 0; x < r->width; ++x) {
        uint8_t raw[8];
        put(s, raw, value_at(s, (uint32_t)b, (uint32_t)(x0 + x), (uint32_t)(y0 + y)));
        float want;
        switch (s->bits * 4 + s->fmt) {
        case 8 * 4 + 1: want = *(uint8_t *)raw; break;
        case 8 * 4 + 2: want = *(int8_t *)raw; break;
        case 16 * 4 + 1: {
          uint16_t v;
          memcpy(&v, raw, 2);
          want = v;
        } break;
        case 16 * 4 + 2: {
          int16_t v;
          memcpy(&v, raw, 2);
          want = v;
        } break;
        case 32 * 4 + 1: {
          uint32_t v;
          memcpy(&v, raw, 4);
          want = (float)v;
        } break;
        case 32 * 4 + 2: {
          int32_t v;
          memcpy(&v, raw, 4);
          want = (float)v;
        } break;
        case 32 * 4 + 3: memcpy(&want, raw, 4); break;
        default: {
          double v;
          memcpy(&v, raw, 8);
          want = (float)v;
        } break;
        }
        float got = r->data[(b * r->height + y) * r->width + x];
        if (got != want)
          ck_abort_msg("%s: band %lld (%lld, %lld): %g, not %g", s->name, (long long)b,
                       (long long)(x0 + x), (long long)(y0 + y), (double)got, (double)want);
      }
}

#define NONE    COMPRESSION_NONE
#define LZW     COMPRESSION_LZW
#define DEFLATE COMPRESSION_ADOBE_DEFLATE

START_TEST(test_written_files) {
  static const spec specs[] = {
      {"uint8 strips, partial last strip", 70, 45, 1, 8, 1, 1, NONE, 1, 0, 0, 7},
      {"int16 LZW tiles, partial edge tiles", 70, 45, 1, 16, 2, 1, LZW, 1, 32, 16, 0},
      {"uint16 planar LZW tiles", 70, 45, 3, 16, 1, 2, LZW, 1, 16, 16, 0},
      {"uint16 DEFLATE predictor 2 tiles", 70, 45, 1, 16, 1, 1, DEFLATE, 2, 32, 32, 0},
      {"float32 DEFLATE predictor 3 strips", 70, 45, 2, 32, 3, 1, DEFLATE, 3, 0, 0, 8},
      {"float32 DEFLATE predictor 3 tiles", 70, 45, 1, 32, 3, 1, DEFLATE, 3, 48, 32, 0},
      {"uint16 4 bands LZW predictor 2 strips", 70, 45, 4, 16, 1, 1, LZW, 2, 0, 0, 10},
      {"float32 planar strips", 70, 45, 2, 32, 3, 2, NONE, 1, 0, 0, 9},
      {"int16 planar DEFLATE predictor 2 strips", 33, 21, 3, 16, 2, 2, DEFLATE, 2, 0, 0, 4},
      {"int8 strips", 30, 20, 1, 8, 2, 1, NONE, 1, 0, 0, 6},
      {"uint32 LZW tiles", 40, 20, 1, 32, 1, 1, LZW, 1, 16, 16, 0},
      {"int32 DEFLATE strips", 40, 20, 2, 32, 2, 1, DEFLATE, 1, 0, 0, 3},
      {"float64 tiles", 40, 20, 1, 64, 3, 1, NONE, 1, 16, 16, 0},
  };
  char path[] = "/tmp/msc_raster_w_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; ++i) {
    const spec *s = &specs[i];
    write_spec(path, s, i == 0 ? "-9999" : NULL);
    msci_raster r;
    msc_status st = msci_raster_read(path, &r);
    ck_assert_msg(st == MSC_OK, "%s: %s", s->name, msc_last_error());
    ck_assert_int_eq(r.width, s->w);
    ck_assert_int_eq(r.height, s->h);
    ck_assert_int_eq(r.bands, s->spp);
    ck_assert_int_eq(r.info.bits, s->bits);
    ck_assert_int_eq(r.info.sample_format, s->fmt);
    ck_assert_int_eq(r.info.planar, s->planar);
    ck_assert_int_eq(r.info.compression, s->compression);
    ck_assert_int_eq(r.info.predictor, s->predictor);
    ck_assert_int_eq(r.info.tiled, s->tile_w != 0);
    ck_assert_int_eq(r.info.block_height, s->tile_w ? s->tile_h : s->rows);
    ck_assert_int_eq(r.info.has_pixel_scale, 0);
    ck_assert_int_eq(r.info.has_geokeys, 0);
    ck_assert_int_eq(r.info.has_nodata, i == 0);
    if (i == 0) ck_assert_double_eq(r.info.nodata, -9999.0);
    check_against_spec(s, &r, 0, 0);
    msci_raster_free(&r);
    /* Windows: a corner, the last row and column, the middle, a single pixel. */
    const int64_t win[][4] = {{0, 0, 5, 3},
                              {s->w - 7, s->h - 4, 7, 4},
                              {s->w / 3, s->h / 3, s->w / 2, s->h / 2},
                              {0, s->h - 1, s->w, 1},
                              {s->w - 1, 0, 1, s->h},
                              {s->w / 2, s->h / 2, 1, 1}};
    for (size_t k = 0; k < sizeof win / sizeof win[0]; ++k) {
      st = msci_raster_read_window(path, win[k][0], win[k][1], win[k][2], win[k][3], &r);
      ck_assert_msg(st == MSC_OK, "%s window %zu: %s", s->name, k, msc_last_error());
      check_against_spec(s, &r, win[k][0], win[k][1]);
      msci_raster_free(&r);
    }
  }
  unlink(path);
}
END_TEST

START_TEST(test_unsupported_written) {
  char path[] = "/tmp/msc_raster_u_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  /* 1-bit, 12-bit, complex int16 (SampleFormat 5), subsampled YCbCr. */
  for (int c = 0; c < 4; ++c) {
    TIFF *t = TIFFOpen(path, "w");
    ck_assert_ptr_nonnull(t);
    uint16_t bits = c == 0 ? 1 : c == 1 ? 12 : c == 2 ? 32 : 8;
    uint16_t spp = c == 3 ? 3 : 1;
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, 16);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, 8);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bits);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spp);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 8);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    if (c == 2) TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_COMPLEXINT);
    if (c == 3) {
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
      TIFFSetField(t, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
    } else {
      TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    }
    uint8_t buf[16 * 8 * 4 * 3] = {0};
    tmsize_t n = TIFFStripSize(t);
    ck_assert_int_le(n, (tmsize_t)sizeof buf);
    ck_assert_int_eq(TIFFWriteEncodedStrip(t, 0, buf, n), n);
    TIFFClose(t);
    msc_status st = read_quietly(path);
    ck_assert_msg(st == MSC_E_UNSUPPORTED, "case %d: %d %s", c, st, msc_last_error());
    ck_assert_ptr_nonnull(strstr(msc_last_error(), path));
  }
  unlink(path);
}
END_TEST

/* ---- corrupt and truncated files ------------------------------------------------------ */

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)n);
  ck_assert_ptr_nonnull(buf);
  ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static void spill(const char *path, const unsigned char *buf, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fwrite(buf, 1, len, f), len);
  fclose(f);
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_le16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static void put_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = (unsigned char)(v >> (8 * i));
}

/* The 12-byte IFD entry of tag in a little-endian classic TIFF (first IFD). */
static unsigned char *entry_of(unsigned char *buf, uint16_t tag) {
  uint32_t ifd = le32(buf + 4);
  uint16_t n = (uint16_t)(buf[ifd] | buf[ifd + 1] << 8);
  for (uint16_t i = 0; i < n; ++i) {
    unsigned char *e = buf + ifd + 2 + 12 * i;
    if ((uint16_t)(e[0] | e[1] << 8) == tag) return e;
  }
  ck_abort_msg("tag %u not found", tag);
  return NULL;
}

/* Expects a clean refusal naming the file (any error status, or the one given). */
static void expect_refused(const char *path, msc_status want, const char *what) {
  msc_status st = read_quietly(path);
  if (want != MSC_OK)
    ck_assert_msg(st == want, "%s: %d, not %d: %s", what, st, want, msc_last_error());
  else
    ck_assert_msg(st != MSC_OK, "%s: read", what);
  ck_assert_msg(strstr(msc_last_error(), path) != NULL, "%s: %s", what, msc_last_error());
}

START_TEST(test_corrupt_files) {
  size_t len;
  unsigned char *buf = slurp(VV, &len);
  char path[] = "/tmp/msc_raster_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  size_t cuts[] = {0, 4, 8, 100, 423, 424, 9000, len / 2, len - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; ++i) {
    spill(path, buf, cuts[i]);
    char what[64];
    snprintf(what, sizeof what, "VV cut at %zu", cuts[i]);
    expect_refused(path, MSC_E_BAD_FORMAT, what);
  }
  free(buf);
  spill(path, (const unsigned char *)"definitely not a tiff", 21);
  expect_refused(path, MSC_E_BAD_FORMAT, "text");
  unlink(path);
  ck_assert_int_eq(read_quietly("/nonexistent/x.tif"), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "/nonexistent/x.tif"));
  ck_assert_int_eq(read_quietly("/tmp"), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "/tmp"));
}
END_TEST

START_TEST(test_corrupt_major_tom) {
  size_t len;
  unsigned char *orig = slurp(MT_B04, &len);
  unsigned char *buf = malloc(len);
  ck_assert_ptr_nonnull(buf);
  char path[] = "/tmp/msc_raster_mt_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  /* Truncated: in the header, in the IFD, in the tag arrays, in the tiles' data. */
  size_t cuts[] = {0, 7, 8, 100, 200, 300, 416, 5000, 1700011, len - 7144, len - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; ++i) {
    spill(path, orig, cuts[i]);
    char what[64];
    snprintf(what, sizeof what, "B04 cut at %zu", cuts[i]);
    expect_refused(path, MSC_E_BAD_FORMAT, what);
  }
  /* A window decodes only the tiles it needs: cut after the first tile (or with the last
   * tile's data garbled), a window inside the first tile still reads, golden values and
   * all, while the whole file is refused. */
  for (int garble = 0; garble < 2; ++garble) {
    memcpy(buf, orig, len);
    if (garble) memset(buf + 1855556 + 100, 0xA5, 2000); /* inside tile 3's LZW data */
    spill(path, buf, garble ? len : 1700011);
    msci_raster r;
    ck_assert_int_eq(msci_raster_read_window(path, 0, 0, 2, 2, &r), MSC_OK);
    ck_assert_float_eq(r.data[0], 2032.f);
    ck_assert_float_eq(r.data[1], 2056.f);
    ck_assert_float_eq(r.data[2], 2204.f);
    msci_raster_free(&r);
    ck_assert_int_eq(msci_raster_read_window(path, 1000, 1020, 24, 4, &r), MSC_OK);
    ck_assert_float_eq(r.data[3 * 24 + 23], 1821.f); /* (1023, 1023) */
    msci_raster_free(&r);
    expect_refused(path, MSC_E_BAD_FORMAT, garble ? "garbled last tile" : "cut after tile 0");
    if (garble) ck_assert_ptr_nonnull(strstr(msc_last_error(), "tile at (1024, 1024)"));
  }
  /* Flipped bytes, one at a time. */
  struct {
    const char *what;
    uint16_t tag;
    int index;
    uint32_t value;
    msc_status want;
  } flips[] = {
      {"tile offset past the end", 324, 0, 0xFFFFFF00u, MSC_E_BAD_FORMAT},
      {"tile offset 0", 324, 2, 0, MSC_E_BAD_FORMAT},
      {"last tile byte count too large", 325, 3, 0x7FFFFFFFu, MSC_E_BAD_FORMAT},
      {"first tile byte count too small", 325, 0, 100, MSC_E_BAD_FORMAT},
      {"tile offset into other data", 324, 1, 416, MSC_E_BAD_FORMAT},
      {"huge width", 256, -1, 65535, MSC_OK},
      {"huge height", 257, -1, 65535, MSC_OK},
      {"12-bit samples", 258, -1, 12, MSC_E_UNSUPPORTED},
      {"complex samples", 339, -1, 5, MSC_E_UNSUPPORTED},
      {"tile width 0", 322, -1, 0, MSC_OK},
      {"tile width 16", 322, -1, 16, MSC_OK},
      {"unknown compression", 259, -1, 99, MSC_OK},
      {"5 samples per pixel", 277, -1, 5, MSC_OK},
  };
  for (size_t i = 0; i < sizeof flips / sizeof flips[0]; ++i) {
    memcpy(buf, orig, len);
    unsigned char *e = entry_of(buf, flips[i].tag);
    if (flips[i].index < 0)
      put_le16(e + 8, (uint16_t)flips[i].value); /* SHORT in place */
    else
      put_le32(buf + le32(e + 8) + 4 * (uint32_t)flips[i].index, flips[i].value);
    spill(path, buf, len);
    expect_refused(path, flips[i].want, flips[i].what);
  }
  /* The header: byte order, magic number, first IFD offset (all refused); the IFD's
   * entry count (libtiff may read the extra "entries" as unknown tags: then it only
   * must not crash, and an error must name the file). */
  const struct {
    size_t at;
    unsigned char v;
    int refuse;
  } bytes[] = {{0, 'X', 1},  {1, 'X', 1},  {2, 43, 1},   {4, 0xFF, 1}, {7, 0x7F, 1},
               {5, 0xFF, 1}, {8, 0xFF, 0}, {9, 0xFF, 0}, {8, 0, 0},    {8, 3, 0}};
  for (size_t i = 0; i < sizeof bytes / sizeof bytes[0]; ++i) {
    memcpy(buf, orig, len);
    buf[bytes[i].at] = bytes[i].v;
    spill(path, buf, len);
    char what[64];
    snprintf(what, sizeof what, "byte %zu = %u", bytes[i].at, bytes[i].v);
    if (bytes[i].refuse) {
      expect_refused(path, MSC_OK, what);
    } else if (read_quietly(path) != MSC_OK) {
      ck_assert_msg(strstr(msc_last_error(), path) != NULL, "%s: %s", what, msc_last_error());
    }
  }
  unlink(path);
  free(buf);
  free(orig);
}
END_TEST

/* Random bytes changed in small real files (and one written here): whatever happens,
 * no crash, no stderr, and an error names the file. */
START_TEST(test_fuzzed_files) {
  char written[] = "/tmp/msc_raster_fw_XXXXXX";
  int fd = mkstemp(written);
  ck_assert_int_ge(fd, 0);
  close(fd);
  static const spec planar = {"planar LZW", 40, 24, 2, 16, 1, 2, LZW, 2, 16, 16, 0};
  write_spec(written, &planar, "7");
  const char *files[] = {B01, REFMAP, written};
  char path[] = "/tmp/msc_raster_fz_XXXXXX";
  fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  uint64_t seed = 0x9E3779B97F4A7C15ull;
  for (size_t f = 0; f < sizeof files / sizeof files[0]; ++f) {
    size_t len;
    unsigned char *orig = slurp(files[f], &len);
    unsigned char *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    for (int round = 0; round < 150; ++round) {
      memcpy(buf, orig, len);
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      int flips = 1 + (int)((seed >> 60) & 3);
      for (int k = 0; k < flips; ++k) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        /* Mostly the header and IFD (first 400 bytes), sometimes anywhere. */
        size_t span = (seed >> 20) % 4 ? (len < 400 ? len : 400) : len;
        buf[(seed >> 33) % span] ^= (unsigned char)(1u << ((seed >> 28) & 7));
      }
      spill(path, buf, len);
      msc_status st = read_quietly(path);
      if (st != MSC_OK)
        ck_assert_msg(strstr(msc_last_error(), path) != NULL, "%s round %d: %s", files[f],
                      round, msc_last_error());
      st = read_quietly_window(path, 1, 2, 3, 4);
      if (st != MSC_OK)
        ck_assert_msg(strstr(msc_last_error(), path) != NULL, "%s round %d: %s", files[f],
                      round, msc_last_error());
    }
    free(buf);
    free(orig);
  }
  unlink(path);
  unlink(written);
}
END_TEST

/* A tiny file claiming a huge image: refused before anything large is allocated. */
START_TEST(test_huge_dimensions_tiny_file) {
  size_t len;
  unsigned char *buf = slurp(B01, &len);
  char path[] = "/tmp/msc_raster_h_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  /* 20 × 20 in one strip of 20 rows: claim 65535 × 20 (a strip of 2.6 MB in 800 bytes)
   * and RowsPerStrip 65535 × height 65535 (one strip of 8.6 GB). */
  unsigned char *w = entry_of(buf, 256), *h = entry_of(buf, 257), *rps = entry_of(buf, 278);
  put_le16(w + 8, 65535);
  spill(path, buf, len);
  expect_refused(path, MSC_E_BAD_FORMAT, "wide");
  put_le16(h + 8, 65535);
  put_le16(rps + 8, 65535);
  spill(path, buf, len);
  expect_refused(path, MSC_OK, "wide and tall");
  /* A window of the huge claim is refused as well (its strip lies past the end), and
   * a window of more than 2^31 values is the caller's error. */
  ck_assert_int_eq(read_quietly_window(path, 60000, 60000, 10, 10), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), path));
  ck_assert_int_eq(read_quietly_window(path, 0, 0, 65535, 65535), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "2^31"));
  free(buf);
  unlink(path);
}
END_TEST

/* ---- with the GeoTIFF tags registered by someone else ------------------------------------ */

/* What libgeotiff's XTIFFInitialize declares: TIFF_VARIABLE counts (16-bit), passcount. */
static const TIFFFieldInfo geotiff_fields[] = {
    {33550, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, (char *)"GeoPixelScale"},
    {33922, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, (char *)"GeoTiePoints"},
    {34264, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, (char *)"GeoTransformationMatrix"},
    {34735, -1, -1, TIFF_SHORT, FIELD_CUSTOM, 1, 1, (char *)"GeoKeyDirectory"},
    {34736, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, (char *)"GeoDoubleParams"},
    {34737, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, (char *)"GeoASCIIParams"},
};
static TIFFExtendProc previous_extender;
static void geotiff_extender(TIFF *t) {
  TIFFMergeFieldInfo(t, geotiff_fields, sizeof geotiff_fields / sizeof geotiff_fields[0]);
  if (previous_extender) previous_extender(t);
}

static const double geo_scale[3] = {20, 20, 0};
static const double geo_ties[12] = {0, 0, 0, 500000, 4000000, 0, 19, 9, 0, 500380, 3999820, 0};
static const double geo_m[16] = {20, 0, 0, 500000, 0, -20, 0, 4000000, 0, 0, 1, 0, 0, 0, 0, 1};
static const uint16_t geo_keys[12] = {1, 1, 0, 2, 1024, 0, 1, 2, 2048, 0, 1, 4326};
static const double geo_dbl[2] = {6378137.0, 298.257223563};

static void write_geotags(TIFF *t) {
  ck_assert_int_eq(TIFFSetField(t, 33550, 3, geo_scale), 1);
  ck_assert_int_eq(TIFFSetField(t, 33922, 12, geo_ties), 1);
  ck_assert_int_eq(TIFFSetField(t, 34264, 16, geo_m), 1);
  ck_assert_int_eq(TIFFSetField(t, 34735, 12, geo_keys), 1);
  ck_assert_int_eq(TIFFSetField(t, 34736, 2, geo_dbl), 1);
  ck_assert_int_eq(TIFFSetField(t, 34737, "WGS 84|"), 1);
}

START_TEST(test_georef_with_registered_tags) {
  previous_extender = TIFFSetTagExtender(geotiff_extender);
  /* The real file reads the same through the registered (16-bit count) declarations. */
  msci_raster_info info;
  ck_assert_int_eq(msci_raster_info_read(MT_B04, &info), MSC_OK);
  ck_assert_double_eq(info.pixel_scale[0], 10.0);
  ck_assert_int_eq(info.n_tiepoints, 1);
  ck_assert_double_eq_tol(info.tiepoints[3], 819627.364339, 1e-6);
  check_utm33_keys(&info);
  msci_raster_info_free(&info);
  /* A file written with every tag: two tie points, a transformation, GeoDoubleParams. */
  char path[] = "/tmp/msc_raster_g_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  static const spec s = {"geo", 20, 10, 1, 16, 1, 1, NONE, 1, 0, 0, 10};
  write_hook = write_geotags;
  write_spec(path, &s, "nan");
  write_hook = NULL;
  TIFFSetTagExtender(previous_extender);
  /* Read back without the extender (anonymous fields), then with it. */
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) previous_extender = TIFFSetTagExtender(geotiff_extender);
    msci_raster r;
    ck_assert_int_eq(msci_raster_read(path, &r), MSC_OK);
    check_against_spec(&s, &r, 0, 0);
    const msci_raster_info *g = &r.info;
    ck_assert_int_eq(g->has_pixel_scale, 1);
    ck_assert_double_eq(g->pixel_scale[0], 20.0);
    ck_assert_int_eq(g->n_tiepoints, 2);
    for (int i = 0; i < 12; ++i) ck_assert_double_eq(g->tiepoints[i], geo_ties[i]);
    ck_assert_int_eq(g->has_transformation, 1);
    for (int i = 0; i < 16; ++i) ck_assert_double_eq(g->transformation[i], geo_m[i]);
    ck_assert_int_eq(g->n_geokeys, 12);
    ck_assert_int_eq(msci_raster_info_epsg(g), 4326);
    ck_assert_int_eq(g->n_geo_doubles, 2);
    ck_assert_double_eq(g->geo_doubles[1], 298.257223563);
    ck_assert_str_eq(g->geo_ascii, "WGS 84|");
    ck_assert_int_eq(g->has_nodata, 1);
    ck_assert_str_eq(g->nodata_text, "nan");
    ck_assert(isnan(g->nodata));
    msci_raster_free(&r);
    if (pass == 1) TIFFSetTagExtender(previous_extender);
  }
  unlink(path);
}
END_TEST

START_TEST(test_resample) {
  /* 2×2 → 4×4, align_corners = False: source coordinate of i is (i + 0.5)/2 - 0.5,
   * clamped at 0: 0, 0.25, 0.75, 1.25 → clamped to the last pixel beyond 1. */
  const float src[4] = {0, 4, 8, 12};
  float dst[16];
  msci_resample(src, 2, 2, dst, 4, 4, MSCI_RESAMPLE_BILINEAR);
  const float row_w[4] = {0, 1, 3, 4}; /* x weights times 4 along a row of 0..4 */
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      ck_assert_float_eq_tol(dst[y * 4 + x], row_w[x] + 2 * row_w[y], 1e-6f);
  msci_resample(src, 2, 2, dst, 4, 4, MSCI_RESAMPLE_NEAREST);
  const float want[16] = {0, 0, 4, 4, 0, 0, 4, 4, 8, 8, 12, 12, 8, 8, 12, 12};
  for (int i = 0; i < 16; ++i) ck_assert_float_eq(dst[i], want[i]);
  /* Same size: the identity. */
  float same[4];
  msci_resample(src, 2, 2, same, 2, 2, MSCI_RESAMPLE_BILINEAR);
  for (int i = 0; i < 4; ++i) ck_assert_float_eq(same[i], src[i]);
}
END_TEST

/* The per-pixel definition of msci_resample (align_corners = False), written out plainly:
 * every output pixel computes its source coordinates and weights itself. The library's
 * separable, table-driven resampler must give these bits exactly. */
static double ref_coord(int64_t i, int64_t src, int64_t dst) {
  double c = ((double)i + 0.5) * (double)src / (double)dst - 0.5;
  return c < 0 ? 0 : c;
}

static void ref_resample(const float *src, int64_t sh, int64_t sw, int64_t stride, float *dst,
                         int64_t dh, int64_t dw, int nearest) {
  for (int64_t y = 0; y < dh; ++y)
    for (int64_t x = 0; x < dw; ++x) {
      if (nearest) {
        int64_t sy = (int64_t)floor((double)y * (double)sh / (double)dh);
        int64_t sx = (int64_t)floor((double)x * (double)sw / (double)dw);
        if (sy >= sh) sy = sh - 1;
        if (sx >= sw) sx = sw - 1;
        dst[y * dw + x] = src[sy * stride + sx];
        continue;
      }
      double fy = ref_coord(y, sh, dh), fx = ref_coord(x, sw, dw);
      int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
      int64_t y1 = y0 + 1 < sh ? y0 + 1 : y0, x1 = x0 + 1 < sw ? x0 + 1 : x0;
      double wy = fy - (double)y0, wx = fx - (double)x0;
      double top = (1 - wx) * src[y0 * stride + x0] + wx * src[y0 * stride + x1];
      double bottom = (1 - wx) * src[y1 * stride + x0] + wx * src[y1 * stride + x1];
      dst[y * dw + x] = (float)((1 - wy) * top + wy * bottom);
    }
}

START_TEST(test_resample_matches_definition) {
  /* Up, down, odd ratios, single rows/columns, identity and outputs wider than the
   * stack tables (600 > 512 columns), from a window inside a wider band (stride). */
  static const int64_t sizes[][4] = {
      {60, 60, 120, 120}, {20, 20, 120, 120}, {120, 120, 120, 120}, {97, 83, 120, 120},
      {120, 120, 61, 47}, {1, 1, 5, 7},       {1, 9, 4, 3},         {9, 1, 3, 4},
      {7, 5, 1, 1},       {37, 41, 600, 13},  {3, 700, 5, 600},     {256, 256, 120, 120}};
  const int64_t pad = 5;
  for (size_t t = 0; t < sizeof sizes / sizeof *sizes; ++t) {
    const int64_t sh = sizes[t][0], sw = sizes[t][1], dh = sizes[t][2], dw = sizes[t][3];
    const int64_t stride = sw + pad;
    float *src = malloc((size_t)(sh * stride) * sizeof(float));
    float *got = malloc((size_t)(dh * dw) * sizeof(float));
    float *want = malloc((size_t)(dh * dw) * sizeof(float));
    ck_assert_ptr_nonnull(src);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(want);
    uint32_t x = 12345u + (uint32_t)t;
    for (int64_t i = 0; i < sh * stride; ++i) {
      x = x * 1664525u + 1013904223u;
      src[i] = (float)((double)(x >> 8) / 16777216.0 * 2000.0 - 500.0);
    }
    for (int nearest = 0; nearest < 2; ++nearest) {
      const msci_resample_mode mode = nearest ? MSCI_RESAMPLE_NEAREST : MSCI_RESAMPLE_BILINEAR;
      ref_resample(src + pad, sh, sw, stride, want, dh, dw, nearest);
      msci_resample_strided(src + pad, sh, sw, stride, got, dh, dw, mode);
      ck_assert_msg(memcmp(got, want, (size_t)(dh * dw) * sizeof(float)) == 0,
                    "strided %lldx%lld -> %lldx%lld mode %d differs", (long long)sh,
                    (long long)sw, (long long)dh, (long long)dw, nearest);
      /* Contiguous: the window copied out, through msci_resample. */
      float *packed = malloc((size_t)(sh * sw) * sizeof(float));
      ck_assert_ptr_nonnull(packed);
      for (int64_t r = 0; r < sh; ++r)
        memcpy(packed + r * sw, src + pad + r * stride, (size_t)sw * sizeof(float));
      msci_resample(packed, sh, sw, got, dh, dw, mode);
      ck_assert_msg(memcmp(got, want, (size_t)(dh * dw) * sizeof(float)) == 0,
                    "%lldx%lld -> %lldx%lld mode %d differs", (long long)sh, (long long)sw,
                    (long long)dh, (long long)dw, nearest);
      free(packed);
    }
    free(src), free(got), free(want);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("raster");
  TCase *tc = tcase_create("raster");
  tcase_add_test(tc, test_golden_uint16);
  tcase_add_test(tc, test_golden_float32_strips);
  tcase_add_test(tc, test_golden_eurosat_13_bands);
  tcase_add_test(tc, test_golden_deflate_predictor_reference_map);
  tcase_add_test(tc, test_golden_major_tom);
  tcase_add_test(tc, test_windows_major_tom);
  tcase_add_test(tc, test_window_outside);
  tcase_add_test(tc, test_georef_major_tom);
  tcase_add_test(tc, test_georef_bigearthnet);
  tcase_add_test(tc, test_libtiff_messages_go_to_log);
  tcase_add_test(tc, test_written_files);
  tcase_add_test(tc, test_unsupported_written);
  tcase_add_test(tc, test_corrupt_files);
  tcase_add_test(tc, test_corrupt_major_tom);
  tcase_add_test(tc, test_fuzzed_files);
  tcase_add_test(tc, test_huge_dimensions_tiny_file);
  tcase_add_test(tc, test_resample);
  tcase_add_test(tc, test_resample_matches_definition);
  suite_add_tcase(s, tc);
  /* Last: it installs a process-wide tag extender (and removes it again). */
  TCase *reg = tcase_create("registered-tags");
  tcase_add_test(reg, test_georef_with_registered_tags);
  suite_add_tcase(s, reg);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
