/*
 * fuzz_tiff.c — fuzz target for the GeoTIFF reader (lib/data/raster.c, through libtiff).
 *
 * Each input is written to a file in the scratch folder (fuzz_common.h; the reader takes
 * paths, and libtiff reads the file as the datasets do) and read three ways: the layout
 * and georeferencing alone (msci_raster_info_read), the whole first image
 * (msci_raster_read) and windows (msci_raster_read_window). A refused file must give a
 * status raster.h documents (MSC_E_IO, MSC_E_BAD_FORMAT, MSC_E_UNSUPPORTED,
 * MSC_E_OUT_OF_MEMORY) with a message, and a file whose layout is refused cannot be read.
 * An accepted file keeps the promises of raster.h: the raster has the info's size and
 * band count, the georeferencing arrays have their announced lengths, a window outside
 * the image is MSC_E_INVALID_ARGUMENT, and the window of the bottom-right quarter and of
 * the last pixel are bit for bit the matching pixels of the whole read (a window decodes
 * other blocks, or parts of them, than the whole read does). Any other status, a crash or
 * a sanitizer report is a bug.
 *
 * Built by tests/fuzz/CMakeLists.txt as a replay program (corpus/tiff) and, with
 * -DMSC_FUZZ=ON and clang, as the libFuzzer program fuzz_tiff (docs/testing.md).
 */
#include "fuzz_common.h"

#include <math.h>

#include "data/raster.h"

static int refused_ok(msc_status st) {
  return st == MSC_E_IO || st == MSC_E_BAD_FORMAT || st == MSC_E_UNSUPPORTED ||
         st == MSC_E_OUT_OF_MEMORY;
}

/* Pixel (x, y) of band b of r, as bits (NaN payloads compared too). */
static uint32_t px(const msci_raster *r, int64_t b, int64_t y, int64_t x) {
  uint32_t u;
  memcpy(&u, &r->data[(b * r->height + y) * r->width + x], sizeof u);
  return u;
}

static void check_window(const char *path, const msci_raster *all, int64_t x0, int64_t y0,
                         int64_t w, int64_t h) {
  msci_raster win;
  msc_status st = msci_raster_read_window(path, x0, y0, w, h, &win);
  /* The whole image decoded: a window of it decodes too (the reader is deterministic),
   * unless memory runs out. */
  FUZZ_CHECK(st == MSC_OK || st == MSC_E_OUT_OF_MEMORY);
  if (st != MSC_OK) return;
  FUZZ_CHECK(win.width == w && win.height == h && win.bands == all->bands);
  FUZZ_CHECK(win.x0 == x0 && win.y0 == y0);
  for (int64_t b = 0; b < all->bands; ++b)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        if (px(&win, b, y, x) != px(all, b, y0 + y, x0 + x)) {
          fprintf(stderr, "fuzz_tiff: band %lld pixel (%lld, %lld): window %08x, whole %08x\n",
                  (long long)b, (long long)(x0 + x), (long long)(y0 + y),
                  (unsigned)px(&win, b, y, x), (unsigned)px(all, b, y0 + y, x0 + x));
          FUZZ_CHECK(!"the window reads the whole image's pixels");
        }
  msci_raster_free(&win);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[256];
  fuzz_path(path, sizeof path, "in.tif");
  fuzz_write(path, data, size);

  msci_raster_info info;
  msc_status ist = msci_raster_info_read(path, &info);
  msci_raster r;
  msc_status rst = msci_raster_read(path, &r);
  if (ist != MSC_OK) {
    FUZZ_CHECK(refused_ok(ist) && msc_last_error()[0] != '\0');
    /* what has no readable layout has no readable pixels */
    FUZZ_CHECK(rst != MSC_OK);
  }
  if (rst != MSC_OK) {
    FUZZ_CHECK(refused_ok(rst));
    msci_raster_info_free(&info);
    msci_raster_free(&r); /* (safe after an error: *out was zeroed) */
    return 0;
  }
  /* accepted: the layout as the info read it */
  FUZZ_CHECK(r.width == info.width && r.height == info.height && r.bands == info.bands);
  FUZZ_CHECK(r.width >= 1 && r.height >= 1 && r.bands >= 1);
  FUZZ_CHECK(r.width * r.height * r.bands <= ((int64_t)1 << 31));
  FUZZ_CHECK(r.x0 == 0 && r.y0 == 0 && r.data != NULL);
  FUZZ_CHECK(info.bits == 8 || info.bits == 16 || info.bits == 32 || info.bits == 64);
  FUZZ_CHECK(info.sample_format >= 1 && info.sample_format <= 3);
  FUZZ_CHECK(info.block_width >= 1 && info.block_height >= 1);
  /* the georeferencing arrays are as long as announced (ASan checks the reads) */
  double acc = 0;
  if (info.has_tiepoints)
    for (int64_t i = 0; i < 6 * info.n_tiepoints; ++i) acc += info.tiepoints[i];
  if (info.has_geo_doubles)
    for (int64_t i = 0; i < info.n_geo_doubles; ++i) acc += info.geo_doubles[i];
  if (info.has_geokeys) {
    for (int64_t i = 0; i < info.n_geokeys; ++i) acc += info.geokeys[i];
    uint16_t v;
    (void)msci_raster_info_geokey(&info, 1024, &v);
  }
  if (info.has_geo_ascii) acc += (double)strlen(info.geo_ascii);
  if (info.has_nodata) acc += (double)strlen(info.nodata_text);
  (void)msci_raster_info_epsg(&info);
  (void)acc;
  /* windows: outside the image, the bottom-right quarter, the last pixel */
  msci_raster bad;
  FUZZ_CHECK(msci_raster_read_window(path, 0, 0, r.width + 1, 1, &bad) ==
             MSC_E_INVALID_ARGUMENT);
  FUZZ_CHECK(msci_raster_read_window(path, -1, 0, 1, 1, &bad) == MSC_E_INVALID_ARGUMENT);
  msci_raster_free(&bad);
  check_window(path, &r, r.width / 2, r.height / 2, r.width - r.width / 2,
               r.height - r.height / 2);
  check_window(path, &r, r.width - 1, r.height - 1, 1, 1);
  msci_raster_free(&r);
  msci_raster_info_free(&info);
  return 0;
}
