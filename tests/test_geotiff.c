/*
 * test_geotiff.c — the GeoTIFF writer (lib/data/geotiff_write.c): samples read back by the
 * reader (lib/data/raster.c, which test_raster checks against od/tiffdump), rounding and
 * clamping, NaN to nodata, streaming in uneven row chunks, tiles and compression, the
 * colour table (read with libtiff directly), atomic writes, float16 samples (bits worked
 * out by hand), overviews (against block means computed here), and the georeferencing moved
 * to an output grid against hand-computed tie points and transformations.
 * gdalinfo's view of written files is checked by tests/tool/map.sh.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "data/geotiff_write.h"
#include "data/raster.h"

static char g_dir[256];

static void setup(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/msc_geotiff_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void teardown(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  ck_assert_int_eq(system(cmd), 0);
}

static void path_in(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", g_dir, name);
}

/* Number of entries in the test directory (leftover temporary files show up here). */
static int dir_entries(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", g_dir);
  FILE *p = popen(cmd, "r");
  int n = -1;
  ck_assert_int_eq(fscanf(p, "%d", &n), 1);
  pclose(p);
  return n;
}

static msci_geotiff_spec spec_of(int64_t w, int64_t h, int64_t b, int fmt, int bits) {
  msci_geotiff_spec s;
  memset(&s, 0, sizeof s);
  s.width = w, s.height = h, s.bands = b, s.sample_format = fmt, s.bits = bits, s.tile = 16;
  return s;
}

/* ---- the Cloud-Optimised layout, read from the file's bytes (no libtiff) ------------- */

static uint32_t le16(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static uint32_t le32(const unsigned char *p) {
  return le16(p) | (uint32_t)le16(p + 2) << 16;
}

/* The whole file in memory (the test files are small). */
static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n);
  ck_assert_uint_eq(fread(b, 1, *n, f), *n);
  fclose(f);
  return b;
}

/* One entry's values (SHORT or LONG), count of them in *count. */
static void entry_values(const unsigned char *b, size_t n, const unsigned char *e,
                         uint32_t *vals, uint32_t cap, uint32_t *count, uint64_t *data_end) {
  const uint32_t type = le16(e + 2), cnt = le32(e + 4), size = type == 3 ? 2 : 4;
  ck_assert(type == 3 || type == 4);
  ck_assert_uint_le(cnt, cap);
  const unsigned char *d = (uint64_t)cnt * size <= 4 ? e + 8 : b + le32(e + 8);
  if ((uint64_t)cnt * size > 4) {
    ck_assert_uint_le((uint64_t)le32(e + 8) + (uint64_t)cnt * size, n);
    if (le32(e + 8) + (uint64_t)cnt * size > *data_end) *data_end = le32(e + 8) + cnt * size;
  }
  for (uint32_t i = 0; i < cnt; ++i) vals[i] = size == 2 ? le16(d + 2 * i) : le32(d + 4 * i);
  *count = cnt;
}

/* Checks, from the bytes of a classic little-endian TIFF, the layout GDAL's COG driver
 * writes and its validator wants: the ghost area right after the header declaring
 * IFDS_BEFORE_DATA, ROW_MAJOR, SIZE_AS_UINT4 leaders and LAST_4_BYTES_REPEATED trailers;
 * the first IFD right after it (on an even offset); every IFD and every tile offset/byte
 * count array before the first tile; the tiles of the smallest level first, each level's
 * after the next smaller one's, and within a level in increasing offsets by tile index
 * (row-major); every tile's leader equal to its byte count and its trailer equal to its
 * last 4 bytes. Returns the number of IFDs. */
static int check_cog(const char *path) {
  size_t n;
  unsigned char *b = slurp(path, &n);
  ck_assert(b[0] == 'I' && b[1] == 'I' && le16(b + 2) == 42);
  const char *key = "GDAL_STRUCTURAL_METADATA_SIZE=";
  ck_assert(memcmp(b + 8, key, strlen(key)) == 0);
  const int size = atoi((const char *)b + 8 + strlen(key));
  ck_assert(memcmp(b + 8 + strlen(key) + 6, " bytes\n", 7) == 0);
  char *ghost = calloc(1, (size_t)size + 1);
  memcpy(ghost, b + 8 + 43, (size_t)size);
  ck_assert_ptr_nonnull(strstr(ghost, "LAYOUT=IFDS_BEFORE_DATA\n"));
  ck_assert_ptr_nonnull(strstr(ghost, "BLOCK_ORDER=ROW_MAJOR\n"));
  ck_assert_ptr_nonnull(strstr(ghost, "BLOCK_LEADER=SIZE_AS_UINT4\n"));
  ck_assert_ptr_nonnull(strstr(ghost, "BLOCK_TRAILER=LAST_4_BYTES_REPEATED\n"));
  ck_assert_ptr_nonnull(strstr(ghost, "KNOWN_INCOMPATIBLE_EDITION=NO\n"));
  free(ghost);
  const uint32_t first = (uint32_t)(8 + 43 + size + 1) & ~1u;
  ck_assert_uint_eq(le32(b + 4), first);
  uint64_t head_end = 0, prev_min = UINT64_MAX;
  static uint32_t off[4096], cnt[4096];
  int levels = 0;
  uint64_t lo[16], hi[16];
  for (uint32_t ifd = le32(b + 4); ifd; ++levels) {
    ck_assert_int_lt(levels, 16);
    const uint32_t ne = le16(b + ifd);
    const uint64_t end = ifd + 2 + 12ull * ne + 4;
    ck_assert_uint_le(end, n);
    if (end > head_end) head_end = end;
    uint32_t no = 0, nc = 0;
    for (uint32_t i = 0; i < ne; ++i) {
      const unsigned char *e = b + ifd + 2 + 12 * i;
      if (le16(e) == 324) entry_values(b, n, e, off, 4096, &no, &head_end);
      if (le16(e) == 325) entry_values(b, n, e, cnt, 4096, &nc, &head_end);
    }
    ck_assert_uint_gt(no, 0);
    ck_assert_uint_eq(no, nc);
    lo[levels] = UINT64_MAX, hi[levels] = 0;
    for (uint32_t t = 0; t < no; ++t) {
      ck_assert_uint_gt(cnt[t], 0);
      ck_assert_uint_ge(off[t], 4);
      ck_assert_uint_le((uint64_t)off[t] + cnt[t] + 4, n);
      if (t > 0) ck_assert_uint_gt(off[t], off[t - 1]); /* row-major */
      ck_assert_uint_eq(le32(b + off[t] - 4), cnt[t]);  /* the leader */
      if (cnt[t] >= 4) ck_assert(memcmp(b + off[t] + cnt[t] - 4, b + off[t] + cnt[t], 4) == 0);
      if (off[t] < lo[levels]) lo[levels] = off[t];
      if (off[t] + cnt[t] + 4 > hi[levels]) hi[levels] = off[t] + cnt[t] + 4;
    }
    ifd = le32(b + end - 4);
  }
  for (int l = 0; l < levels; ++l) {
    ck_assert_uint_le(head_end, lo[l] - 4); /* every IFD and array before any tile */
    if (l + 1 < levels) ck_assert_uint_le(hi[l + 1], lo[l] - 4); /* smaller level first */
    if (lo[l] < prev_min) prev_min = lo[l];
  }
  ck_assert_uint_eq(prev_min, lo[levels - 1]); /* the smallest level's tiles come first */
  free(b);
  return levels;
}

/* float32, 3 bands, not a multiple of the tile, written in chunks of 7 rows, both planar
 * configurations and every compression: read back exactly. */
START_TEST(float_roundtrip) {
  const int64_t W = 37, H = 23, B = 3;
  float *x = malloc((size_t)(W * H * B) * sizeof *x);
  for (int64_t i = 0; i < W * H * B; ++i) x[i] = (float)sin(0.37 * (double)i) * 1000.f;
  x[5] = NAN;
  const int comps[3] = {COMPRESSION_NONE, COMPRESSION_ADOBE_DEFLATE, COMPRESSION_ZSTD};
  for (int planar = 1; planar <= 2; ++planar)
    for (int c = 0; c < 3; ++c) {
      if (comps[c] == COMPRESSION_ZSTD && !msci_geotiff_has_zstd()) continue;
      char path[300];
      path_in(path, sizeof path, "f.tif");
      msci_geotiff_spec s = spec_of(W, H, B, SAMPLEFORMAT_IEEEFP, 32);
      s.planar = planar, s.compression = comps[c], s.has_nodata = 1, s.nodata = NAN;
      s.overviews = MSCI_OVERVIEW_AVERAGE; /* 19 × 12 and 10 × 6 after the image */
      msci_geotiff *g;
      ck_assert_int_eq(msci_geotiff_open(path, &s, &g), MSC_OK);
      float *chunk = malloc((size_t)(W * 7 * B) * sizeof *chunk);
      for (int64_t y = 0; y < H; y += 7) {
        int64_t n = H - y < 7 ? H - y : 7;
        for (int64_t b = 0; b < B; ++b)
          memcpy(chunk + b * n * W, x + (b * H + y) * W, (size_t)(n * W) * sizeof(float));
        ck_assert_int_eq(msci_geotiff_write_rows(g, chunk, n), MSC_OK);
      }
      free(chunk);
      ck_assert_int_eq(msci_geotiff_close(g), MSC_OK);
      ck_assert_int_eq(dir_entries(), 1);
      ck_assert_int_eq(check_cog(path), 3);
      msci_raster r;
      ck_assert_int_eq(msci_raster_read(path, &r), MSC_OK);
      ck_assert_int_eq(r.width, W);
      ck_assert_int_eq(r.height, H);
      ck_assert_int_eq(r.bands, B);
      ck_assert_int_eq(r.info.tiled, 1);
      ck_assert_int_eq(r.info.block_width, 16);
      ck_assert_int_eq(r.info.planar, planar);
      ck_assert_int_eq(r.info.compression, comps[c]);
      ck_assert_int_eq(r.info.has_nodata, 1);
      ck_assert(isnan(r.info.nodata));
      ck_assert(isnan(r.data[5]));
      for (int64_t i = 0; i < W * H * B; ++i)
        if (i != 5) ck_assert_float_eq(r.data[i], x[i]);
      msci_raster_free(&r);
    }
  free(x);
}
END_TEST

/* Integer types: round to nearest, clamp to the range, NaN to the nodata value. */
START_TEST(integer_types) {
  const float in[6] = {-3.6f, 2.5f, 254.4f, 300.f, NAN, 70000.f};
  const struct {
    int fmt, bits;
    double nodata;
    float want[6];
  } cases[4] = {
      {SAMPLEFORMAT_UINT, 8, 255, {0, 2, 254, 255, 255, 255}},
      {SAMPLEFORMAT_UINT, 16, 65535, {0, 2, 254, 300, 65535, 65535}},
      {SAMPLEFORMAT_INT, 16, -1, {-4, 2, 254, 300, -1, 32767}},
      {SAMPLEFORMAT_INT, 32, -9999, {-4, 2, 254, 300, -9999, 70000}},
  };
  for (int k = 0; k < 4; ++k) {
    char path[300];
    path_in(path, sizeof path, "i.tif");
    msci_geotiff_spec s = spec_of(3, 2, 1, cases[k].fmt, cases[k].bits);
    s.has_nodata = 1, s.nodata = cases[k].nodata;
    ck_assert_int_eq(msci_geotiff_write(path, &s, in), MSC_OK);
    msci_raster r;
    ck_assert_int_eq(msci_raster_read(path, &r), MSC_OK);
    ck_assert_int_eq(r.info.bits, cases[k].bits);
    ck_assert_int_eq(r.info.sample_format, cases[k].fmt);
    ck_assert_double_eq(r.info.nodata, cases[k].nodata);
    for (int i = 0; i < 6; ++i) ck_assert_float_eq(r.data[i], cases[k].want[i]);
    msci_raster_free(&r);
  }
}
END_TEST

/* A uint8 class map with a colour table: TIFF stores 16-bit colours (v · 257). */
START_TEST(palette) {
  char path[300];
  path_in(path, sizeof path, "p.tif");
  const float px[4] = {0, 1, 1, 0};
  const uint8_t pal[6] = {10, 20, 30, 0, 0, 255};
  const char *names[2] = {"not water", "water & <lakes>"};
  msci_geotiff_spec s = spec_of(2, 2, 1, SAMPLEFORMAT_UINT, 8);
  s.palette = pal, s.n_palette = 2, s.class_names = names, s.n_classes = 2;
  s.band_names = names + 1;
  ck_assert_int_eq(msci_geotiff_write(path, &s, px), MSC_OK);
  TIFF *t = TIFFOpen(path, "r");
  ck_assert_ptr_nonnull(t);
  uint16_t photo = 0, *r = NULL, *g = NULL, *b = NULL;
  ck_assert(TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photo));
  ck_assert_int_eq(photo, PHOTOMETRIC_PALETTE);
  ck_assert(TIFFGetField(t, TIFFTAG_COLORMAP, &r, &g, &b));
  ck_assert_int_eq(r[0], 10 * 257);
  ck_assert_int_eq(g[0], 20 * 257);
  ck_assert_int_eq(b[1], 65535);
  ck_assert_int_eq(r[5], 0);
  TIFFClose(t);
  /* The metadata XML, escaped, read back as raw bytes of the file. */
  FILE *f = fopen(path, "rb");
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  for (size_t i = 0; i < n; ++i)
    if (!buf[i]) buf[i] = ' ';
  ck_assert_ptr_nonnull(strstr(buf, "<Item name=\"CLASS_1\">water &amp; &lt;lakes&gt;</Item>"));
  ck_assert_ptr_nonnull(strstr(buf,
                               "<Item name=\"DESCRIPTION\" sample=\"0\" role=\"description\">"
                               "water &amp; &lt;lakes&gt;</Item>"));
}
END_TEST

/* Refusals, and nothing left behind by an unfinished or failed write. */
START_TEST(refusals_and_atomicity) {
  char path[300];
  path_in(path, sizeof path, "a.tif");
  msci_geotiff *g;
  msci_geotiff_spec s = spec_of(4, 4, 1, SAMPLEFORMAT_UINT, 32);
  ck_assert_int_eq(msci_geotiff_open(path, &s, &g), MSC_E_INVALID_ARGUMENT);
  s = spec_of(4, 4, 1, SAMPLEFORMAT_IEEEFP, 32);
  s.tile = 20;
  ck_assert_int_eq(msci_geotiff_open(path, &s, &g), MSC_E_INVALID_ARGUMENT);
  s.tile = 16;
  ck_assert_int_eq(msci_geotiff_open(path, &s, &g), MSC_OK);
  float rows[8] = {0};
  ck_assert_int_eq(msci_geotiff_write_rows(g, rows, 2), MSC_OK);
  ck_assert_int_eq(dir_entries(), 2); /* the temporary files only (levels, final layout) */
  ck_assert_int_eq(access(path, F_OK), -1);
  ck_assert_int_eq(msci_geotiff_close(g), MSC_E_INVALID_ARGUMENT); /* 2 of 4 rows */
  ck_assert_int_eq(dir_entries(), 0);
  ck_assert_int_eq(msci_geotiff_open(path, &s, &g), MSC_OK);
  msci_geotiff_abort(g);
  ck_assert_int_eq(dir_entries(), 0);
  ck_assert_int_eq(msci_geotiff_open(path, &s, &g), MSC_OK);
  float many[20] = {0};
  ck_assert_int_eq(msci_geotiff_write_rows(g, many, 5), MSC_E_INVALID_ARGUMENT); /* aborted */
  ck_assert_int_eq(dir_entries(), 0);
  ck_assert_int_eq(msci_geotiff_open("/nonexistent-dir/x.tif", &s, &g), MSC_E_IO);
}
END_TEST

static msci_raster_info geo_info(int point) {
  msci_raster_info in;
  memset(&in, 0, sizeof in);
  static uint16_t keys_area[8] = {1, 1, 0, 1, 1025, 0, 1, 1};
  static uint16_t keys_point[8] = {1, 1, 0, 1, 1025, 0, 1, 2};
  in.has_geokeys = 1, in.n_geokeys = 8, in.geokeys = point ? keys_point : keys_area;
  return in;
}

/* Tie point + scale. PixelIsArea: output raster coordinate u' is input u = r·u' + x0, so
 * the tie point (I, J) = (2, 3) moves to ((2 − 10)/4, (3 − 6)/4) = (−2, −0.75) and the
 * scale becomes 4 × (10, 20). PixelIsPoint: u = r·u' + x0 + r/2 − 1/2 = 4u' + 11.5, so
 * I' = (2 − 11.5)/4 = −2.375 and J' = (3 − 7.5)/4 = −1.125. */
START_TEST(georef_tiepoint) {
  double tie[6] = {2, 3, 0, 500000, 4000000, 0};
  for (int point = 0; point <= 1; ++point) {
    msci_raster_info in = geo_info(point);
    in.has_tiepoints = 1, in.n_tiepoints = 1, in.tiepoints = tie;
    in.has_pixel_scale = 1, in.pixel_scale[0] = 10, in.pixel_scale[1] = 20;
    msci_georef g;
    ck_assert_int_eq(msci_georef_window(&in, 10, 6, 4, &g), MSC_OK);
    ck_assert(g.has_tiepoint && g.has_scale && !g.has_transformation);
    ck_assert_double_eq_tol(g.tiepoint[0], point ? -2.375 : -2.0, 1e-12);
    ck_assert_double_eq_tol(g.tiepoint[1], point ? -1.125 : -0.75, 1e-12);
    ck_assert_double_eq(g.tiepoint[3], 500000);
    ck_assert_double_eq(g.tiepoint[4], 4000000);
    ck_assert_double_eq(g.scale[0], 40);
    ck_assert_double_eq(g.scale[1], 80);
    /* The same ground point: output pixel corner (0, 0) in the input's coordinates. For
     * area: X = 500000 + (0 − (−2))·40 = 500080 = 500000 + (10 − 2)·10. */
    if (!point)
      ck_assert_double_eq_tol(500000 + (0 - g.tiepoint[0]) * g.scale[0],
                              500000 + (10 - 2) * 10.0, 1e-9);
  }
  /* Ground control points and half georeferencing are refused. */
  msci_raster_info in = geo_info(0);
  double gcps[12] = {0};
  in.has_tiepoints = 1, in.n_tiepoints = 2, in.tiepoints = gcps, in.has_pixel_scale = 1;
  msci_georef g;
  ck_assert_int_eq(msci_georef_window(&in, 0, 0, 1, &g), MSC_E_UNSUPPORTED);
  in.n_tiepoints = 1, in.has_pixel_scale = 0;
  ck_assert_int_eq(msci_georef_window(&in, 0, 0, 1, &g), MSC_E_UNSUPPORTED);
  ck_assert_int_eq(msci_georef_window(&in, 0, 0, 0, &g), MSC_E_INVALID_ARGUMENT);
  msci_raster_info none = geo_info(0);
  ck_assert_int_eq(msci_georef_window(&none, 5, 5, 2, &g), MSC_OK);
  ck_assert(!g.has_tiepoint && !g.has_scale && !g.has_transformation);
}
END_TEST

/* A rotated ModelTransformation: the output's map must send output (u', v') to the same
 * ground point as the input's map at (x0 + r·u', y0 + r·v'), checked at four points. */
START_TEST(georef_transformation) {
  msci_raster_info in = geo_info(0);
  const double m[16] = {8.66, -5, 0, 300000, 5, 8.66, 0, 5000000, 0, 0, 1, 0, 0, 0, 0, 1};
  in.has_transformation = 1;
  memcpy(in.transformation, m, sizeof m);
  msci_georef g;
  ck_assert_int_eq(msci_georef_window(&in, 7, 3, 2, &g), MSC_OK);
  ck_assert(g.has_transformation && !g.has_tiepoint);
  const double pts[4][2] = {{0, 0}, {1, 0}, {0, 1}, {13.5, 7.25}};
  for (int k = 0; k < 4; ++k) {
    double u = 7 + 2 * pts[k][0], v = 3 + 2 * pts[k][1];
    for (int row = 0; row < 2; ++row) {
      double want = m[4 * row] * u + m[4 * row + 1] * v + m[4 * row + 3];
      double got = g.transformation[4 * row] * pts[k][0] +
                   g.transformation[4 * row + 1] * pts[k][1] + g.transformation[4 * row + 3];
      ck_assert_double_eq_tol(got, want, 1e-6);
    }
  }
  double tie[6] = {0};
  in.has_tiepoints = 1, in.n_tiepoints = 1, in.tiepoints = tie;
  ck_assert_int_eq(msci_georef_window(&in, 0, 0, 1, &g), MSC_E_UNSUPPORTED);
}
END_TEST

/* Georeferencing written and read back by the reader: keys, ascii and the moved grid. */
START_TEST(georef_written) {
  char path[300];
  path_in(path, sizeof path, "g.tif");
  msci_raster_info in = geo_info(0);
  double tie[6] = {0, 0, 0, 10.5, 45.25, 0}, dbl[2] = {6378137.0, 298.257223563};
  char ascii[] = "WGS 84|";
  in.has_tiepoints = 1, in.n_tiepoints = 1, in.tiepoints = tie;
  in.has_pixel_scale = 1, in.pixel_scale[0] = in.pixel_scale[1] = 0.001;
  in.has_geo_doubles = 1, in.n_geo_doubles = 2, in.geo_doubles = dbl;
  in.has_geo_ascii = 1, in.geo_ascii = ascii;
  msci_georef grid;
  ck_assert_int_eq(msci_georef_window(&in, 32, 16, 2, &grid), MSC_OK);
  float px[4] = {1, 2, 3, 4};
  msci_geotiff_spec s = spec_of(2, 2, 1, SAMPLEFORMAT_IEEEFP, 32);
  s.geo = &in, s.grid = &grid;
  ck_assert_int_eq(msci_geotiff_write(path, &s, px), MSC_OK);
  msci_raster_info out;
  ck_assert_int_eq(msci_raster_info_read(path, &out), MSC_OK);
  ck_assert(out.has_geokeys && out.n_geokeys == 8);
  ck_assert_int_eq(out.geokeys[7], 1);
  ck_assert(out.has_geo_doubles && out.geo_doubles[1] == 298.257223563);
  ck_assert_str_eq(out.geo_ascii, "WGS 84|");
  ck_assert(out.has_tiepoints && out.n_tiepoints == 1);
  ck_assert_double_eq(out.tiepoints[0], -16);
  ck_assert_double_eq(out.tiepoints[1], -8);
  ck_assert_double_eq(out.tiepoints[3], 10.5);
  ck_assert_double_eq(out.pixel_scale[0], 0.002);
  msci_raster_info_free(&out);
}
END_TEST

/* IEEE half precision: bits worked out by hand (1 = 0x3c00, −2 = 0xc000, 65504 the
 * largest = 0x7bff, 65520 rounds up to inf 0x7c00, 0.1 = 0x2e66 (0.0999755859375),
 * 2^−24 the smallest subnormal = 0x0001, 1e−7 = 1.68 × 2^−24 → 0x0002), written by the
 * writer as float16 samples and read back raw with libtiff. */
START_TEST(float16) {
  const float v[8] = {1.f, -2.f, 65504.f, 65520.f, 0.1f, 5.9604644775390625e-8f, 1e-7f, NAN};
  const uint16_t want[8] = {0x3c00, 0xc000, 0x7bff, 0x7c00, 0x2e66, 0x0001, 0x0002, 0x7e00};
  for (int i = 0; i < 7; ++i) {
    ck_assert_uint_eq(msci_half_from_float(v[i]), want[i]);
    if (i != 3)
      ck_assert_float_eq(msci_half_to_float(want[i]), i == 4   ? 0.0999755859375f
                                                      : i == 6 ? 1.1920928955078125e-7f
                                                               : v[i]);
  }
  ck_assert(isnan(msci_half_to_float(msci_half_from_float(NAN))));
  char path[300];
  path_in(path, sizeof path, "h.tif");
  msci_geotiff_spec s = spec_of(8, 1, 1, SAMPLEFORMAT_IEEEFP, 16);
  s.has_nodata = 1, s.nodata = NAN;
  ck_assert_int_eq(msci_geotiff_write(path, &s, v), MSC_OK);
  TIFF *t = TIFFOpen(path, "r");
  ck_assert_ptr_nonnull(t);
  uint16_t bits = 0, fmt = 0;
  TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetField(t, TIFFTAG_SAMPLEFORMAT, &fmt);
  ck_assert(bits == 16 && fmt == SAMPLEFORMAT_IEEEFP);
  uint16_t tile[16 * 16];
  ck_assert_int_ge(TIFFReadEncodedTile(t, 0, tile, sizeof tile), 0);
  for (int i = 0; i < 7; ++i) ck_assert_uint_eq(tile[i], want[i]);
  ck_assert_uint_eq(tile[7] & 0x7c00, 0x7c00); /* NaN: exponent all ones, */
  ck_assert_uint_ne(tile[7] & 0x3ff, 0);       /* a nonzero significand */
  TIFFClose(t);
}
END_TEST

/* Reads directory `dir` of path (one band, float32 or uint8) whole into a w × h array. */
static float *read_level(const char *path, int dir, uint32_t *w, uint32_t *h, uint32_t *sub) {
  TIFF *t = TIFFOpen(path, "r");
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(TIFFSetDirectory(t, (tdir_t)dir), 1);
  uint32_t tw = 0, th = 0;
  uint16_t bits = 0;
  *sub = 0;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, h);
  TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
  TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
  TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetField(t, TIFFTAG_SUBFILETYPE, sub);
  float *out = malloc((size_t)*w * *h * sizeof *out);
  unsigned char *buf = malloc((size_t)tw * th * 4);
  for (uint32_t y0 = 0; y0 < *h; y0 += th)
    for (uint32_t x0 = 0; x0 < *w; x0 += tw) {
      ck_assert_int_ge(TIFFReadEncodedTile(t, TIFFComputeTile(t, x0, y0, 0, 0), buf,
                                           (tmsize_t)tw * th * bits / 8),
                       0);
      for (uint32_t r = 0; r < th && y0 + r < *h; ++r)
        for (uint32_t c = 0; c < tw && x0 + c < *w; ++c) {
          float v;
          if (bits == 8)
            v = buf[r * tw + c];
          else
            memcpy(&v, buf + 4 * (r * tw + c), 4);
          out[(size_t)(y0 + r) * *w + x0 + c] = v;
        }
    }
  free(buf);
  TIFFClose(t);
  return out;
}

/* Overviews: a 75 × 37 image with 16-pixel tiles has levels of 38 × 19, 19 × 10 and
 * 10 × 5 (each halves the previous one, rounded up, until it fits a tile: 19 > 16 still
 * halves).
 * Average: the mean of the valid samples of each 2 × 2 block of the previous level (a
 * block partly outside, or with NaN, averages what it has; all NaN stays nodata),
 * computed here from the full image by hand. Nearest (uint8): level k is pixel
 * (2^k·i, 2^k·j) of the image. Levels are NewSubfileType 1. */
START_TEST(overviews) {
  const int64_t W = 75, H = 37;
  float *x = malloc((size_t)(W * H) * sizeof *x);
  for (int64_t i = 0; i < W * H; ++i) x[i] = (float)((i * 37) % 101);
  for (int64_t y = 0; y < 4; ++y) /* a 4 × 4 block of NaN: nodata at level 1 and 2 */
    for (int64_t c = 8; c < 12; ++c) x[y * W + c] = NAN;
  x[20 * W + 30] = NAN; /* one NaN in a block: the mean of the other three */
  char path[300];
  path_in(path, sizeof path, "o.tif");
  msci_geotiff_spec s = spec_of(W, H, 1, SAMPLEFORMAT_IEEEFP, 32);
  s.has_nodata = 1, s.nodata = NAN, s.overviews = MSCI_OVERVIEW_AVERAGE;
  ck_assert_int_eq(msci_geotiff_write(path, &s, x), MSC_OK);
  ck_assert_int_eq(check_cog(path), 4);
  const float *prev = x;
  float *lv[4] = {x, NULL, NULL, NULL};
  int64_t pw = W, ph = H;
  for (int k = 1; k <= 3; ++k) {
    uint32_t w, h, sub;
    lv[k] = read_level(path, k, &w, &h, &sub);
    ck_assert_uint_eq(sub, FILETYPE_REDUCEDIMAGE);
    ck_assert_uint_eq(w, (uint32_t)((pw + 1) / 2));
    ck_assert_uint_eq(h, (uint32_t)((ph + 1) / 2));
    for (int64_t j = 0; j < h; ++j)
      for (int64_t i = 0; i < w; ++i) {
        double sum = 0;
        int n = 0;
        for (int64_t dy = 0; dy < 2; ++dy)
          for (int64_t dx = 0; dx < 2; ++dx) {
            int64_t yy = 2 * j + dy, xx = 2 * i + dx;
            if (yy < ph && xx < pw && !isnan(prev[yy * pw + xx]))
              sum += prev[yy * pw + xx], ++n;
          }
        const float got = lv[k][j * w + i];
        if (n == 0)
          ck_assert(isnan(got));
        else
          ck_assert_float_eq_tol(got, (float)(sum / n), 1e-4f);
      }
    prev = lv[k], pw = w, ph = h;
  }
  ck_assert(isnan(lv[1][0 * 38 + 4]) && isnan(lv[2][0 * 19 + 2]));
  ck_assert_float_eq_tol(lv[1][10 * 38 + 15],
                         (x[20 * W + 31] + x[21 * W + 30] + x[21 * W + 31]) / 3.f, 1e-4f);
  TIFF *t = TIFFOpen(path, "r");
  ck_assert_int_eq(TIFFNumberOfDirectories(t), 4);
  TIFFClose(t);
  free(lv[1]), free(lv[2]), free(lv[3]);
  /* Nearest, uint8 with a colour table (a class map). */
  for (int64_t i = 0; i < W * H; ++i) x[i] = (float)((i * 7) % 5);
  uint8_t pal[3 * 5] = {0};
  s = spec_of(W, H, 1, SAMPLEFORMAT_UINT, 8);
  s.has_nodata = 1, s.nodata = 255, s.overviews = MSCI_OVERVIEW_NEAREST;
  s.palette = pal, s.n_palette = 5;
  ck_assert_int_eq(msci_geotiff_write(path, &s, x), MSC_OK);
  ck_assert_int_eq(check_cog(path), 4);
  for (int k = 1; k <= 3; ++k) {
    uint32_t w, h, sub;
    float *l = read_level(path, k, &w, &h, &sub);
    for (int64_t j = 0; j < h; ++j)
      for (int64_t i = 0; i < w; ++i)
        ck_assert_float_eq(l[j * w + i], x[(j << k) * W + (i << k)]);
    free(l);
  }
  /* No overviews for an image that fits a tile; none without the option. */
  s.overviews = 0; /* one level: its IFD still before its tiles */
  ck_assert_int_eq(msci_geotiff_write(path, &s, x), MSC_OK);
  ck_assert_int_eq(check_cog(path), 1);
  t = TIFFOpen(path, "r");
  ck_assert_int_eq(TIFFNumberOfDirectories(t), 1);
  TIFFClose(t);
  s = spec_of(16, 16, 1, SAMPLEFORMAT_UINT, 8);
  s.overviews = MSCI_OVERVIEW_NEAREST;
  ck_assert_int_eq(msci_geotiff_write(path, &s, x), MSC_OK);
  t = TIFFOpen(path, "r");
  ck_assert_int_eq(TIFFNumberOfDirectories(t), 1);
  TIFFClose(t);
  ck_assert_int_eq(dir_entries(), 1);
  free(x);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("geotiff");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, float_roundtrip);
  tcase_add_test(tc, integer_types);
  tcase_add_test(tc, palette);
  tcase_add_test(tc, refusals_and_atomicity);
  tcase_add_test(tc, georef_tiepoint);
  tcase_add_test(tc, georef_transformation);
  tcase_add_test(tc, georef_written);
  tcase_add_test(tc, float16);
  tcase_add_test(tc, overviews);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? 1 : 0;
}
