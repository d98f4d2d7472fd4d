/*
 * raster.c — GeoTIFF reading with libtiff and band resampling (see raster.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include "internal.h"
#include "raster.h"

/* Largest raster accepted: 2^31 floats (8 GiB) guards against absurd header values. */
#define MAX_ELEMENTS ((uint64_t)1 << 31)

typedef struct tiff_messages {
  char error[512]; /* first error libtiff reported */
} tiff_messages;

/* libtiff ≥ 4.5 hands messages to per-file handlers: nothing reaches stderr and the
 * host program's own libtiff handlers are left alone. Returning 1 stops the default. */
static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  tiff_messages *m = user;
  (void)tif;
  if (m && m->error[0] == '\0') {
    int n = snprintf(m->error, sizeof m->error, "%s: ", module ? module : "libtiff");
    if (n > 0 && (size_t)n < sizeof m->error)
      vsnprintf(m->error + n, sizeof m->error - (size_t)n, fmt, ap);
  }
  return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  char buf[512];
  (void)tif, (void)user;
  vsnprintf(buf, sizeof buf, fmt, ap);
  /* GeoTIFF tags are "unknown" to plain libtiff: routine, so only at debug level. */
  msci_log(MSC_LOG_DEBUG, "libtiff: %s: %s", module ? module : "", buf);
  return 1;
}

static msc_status tiff_fail(const char *path, const tiff_messages *m, msc_status code,
                            const char *what) {
  return msci_fail(code, "%s: %s%s%s", path, what, m->error[0] ? ": " : "", m->error);
}

/* Converts count samples of one format to float. */
static msc_status convert(const void *src, size_t count, uint16_t fmt, uint16_t bits,
                          float *dst) {
#define CONVERT(type)                                                                   \
  do {                                                                                  \
    const type *s_ = src;                                                               \
    for (size_t i_ = 0; i_ < count; ++i_) dst[i_] = (float)s_[i_];                      \
  } while (0)
  if (fmt == SAMPLEFORMAT_UINT && bits == 8) CONVERT(uint8_t);
  else if (fmt == SAMPLEFORMAT_UINT && bits == 16) CONVERT(uint16_t);
  else if (fmt == SAMPLEFORMAT_UINT && bits == 32) CONVERT(uint32_t);
  else if (fmt == SAMPLEFORMAT_INT && bits == 8) CONVERT(int8_t);
  else if (fmt == SAMPLEFORMAT_INT && bits == 16) CONVERT(int16_t);
  else if (fmt == SAMPLEFORMAT_INT && bits == 32) CONVERT(int32_t);
  else if (fmt == SAMPLEFORMAT_IEEEFP && bits == 32) CONVERT(float);
  else if (fmt == SAMPLEFORMAT_IEEEFP && bits == 64) CONVERT(double);
  else return MSC_E_UNSUPPORTED;
#undef CONVERT
  return MSC_OK;
}

typedef struct layout {
  uint32_t width, height, tile_w, tile_h; /* a strip is a tile as wide as the image */
  uint16_t spp, bits, fmt, planar;
  int tiled;
} layout;

/* Copies one decoded block (tile or strip) into the band-major float raster. */
static msc_status place_block(const layout *l, const void *buf, float *tmp, uint32_t x0,
                              uint32_t y0, uint16_t plane, float *out) {
  uint32_t spp_in_block = l->planar == PLANARCONFIG_SEPARATE ? 1 : l->spp;
  size_t count = (size_t)l->tile_w * l->tile_h * spp_in_block;
  if (convert(buf, count, l->fmt, l->bits, tmp) != MSC_OK) return MSC_E_UNSUPPORTED;
  for (uint32_t y = 0; y < l->tile_h && y0 + y < l->height; ++y)
    for (uint32_t x = 0; x < l->tile_w && x0 + x < l->width; ++x)
      for (uint32_t s = 0; s < spp_in_block; ++s) {
        uint32_t band = l->planar == PLANARCONFIG_SEPARATE ? plane : s;
        size_t dst = ((size_t)band * l->height + (y0 + y)) * l->width + (x0 + x);
        out[dst] = tmp[((size_t)y * l->tile_w + x) * spp_in_block + s];
      }
  return MSC_OK;
}

static msc_status read_layout(TIFF *t, const char *path, const tiff_messages *m, layout *l) {
  memset(l, 0, sizeof *l);
  uint16_t compression = 0;
  if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &l->width) ||
      !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &l->height))
    return tiff_fail(path, m, MSC_E_BAD_FORMAT, "no image size");
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &l->spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &l->bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &l->fmt);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &l->planar);
  TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &compression);
  if (l->width == 0 || l->height == 0 || l->spp == 0)
    return tiff_fail(path, m, MSC_E_BAD_FORMAT, "empty image");
  if ((uint64_t)l->width * l->height * l->spp > MAX_ELEMENTS)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: %ux%u pixels × %u bands is too large", path,
                     l->width, l->height, l->spp);
  float probe;
  uint8_t zero[8] = {0};
  if (convert(zero, 1, l->fmt, l->bits, &probe) != MSC_OK)
    return msci_fail(MSC_E_UNSUPPORTED, "%s: samples of %u bits in format %u are not supported",
                     path, l->bits, l->fmt);
  l->tiled = TIFFIsTiled(t);
  if (l->tiled) {
    if (!TIFFGetField(t, TIFFTAG_TILEWIDTH, &l->tile_w) ||
        !TIFFGetField(t, TIFFTAG_TILELENGTH, &l->tile_h) || l->tile_w == 0 || l->tile_h == 0)
      return tiff_fail(path, m, MSC_E_BAD_FORMAT, "bad tile size");
  } else {
    uint32_t rows = 0;
    TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &rows);
    l->tile_w = l->width;
    l->tile_h = rows == 0 || rows > l->height ? l->height : rows;
  }
  if ((uint64_t)l->tile_w * l->tile_h * l->spp > MAX_ELEMENTS)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: blocks of %ux%u are too large", path, l->tile_w,
                     l->tile_h);
  return MSC_OK;
}

static msc_status read_blocks(TIFF *t, const char *path, const tiff_messages *m,
                              const layout *l, float *out) {
  uint32_t spp_in_block = l->planar == PLANARCONFIG_SEPARATE ? 1 : l->spp;
  size_t block_bytes = (size_t)l->tile_w * l->tile_h * spp_in_block * (l->bits / 8);
  size_t lib_size = (size_t)(l->tiled ? TIFFTileSize(t) : TIFFStripSize(t));
  if (lib_size > block_bytes) block_bytes = lib_size;
  void *buf = malloc(block_bytes);
  float *tmp = malloc((size_t)l->tile_w * l->tile_h * spp_in_block * sizeof(float));
  msc_status st = (buf && tmp) ? MSC_OK : msci_fail(MSC_E_OUT_OF_MEMORY, "%s: read buffer", path);
  uint16_t planes = l->planar == PLANARCONFIG_SEPARATE ? l->spp : 1;
  for (uint16_t p = 0; st == MSC_OK && p < planes; ++p)
    for (uint32_t y = 0; st == MSC_OK && y < l->height; y += l->tile_h)
      for (uint32_t x = 0; st == MSC_OK && x < l->width; x += l->tile_w) {
        /* Zeroed first, so a short final strip never leaves stale bytes behind. */
        memset(buf, 0, block_bytes);
        tmsize_t got = l->tiled
                           ? TIFFReadEncodedTile(t, TIFFComputeTile(t, x, y, 0, p), buf,
                                                 (tmsize_t)block_bytes)
                           : TIFFReadEncodedStrip(t, TIFFComputeStrip(t, y, p), buf,
                                                  (tmsize_t)block_bytes);
        if (got < 0) {
          char what[96];
          snprintf(what, sizeof what, "cannot decode the %s at (%u, %u)",
                   l->tiled ? "tile" : "strip", x, y);
          st = tiff_fail(path, m, MSC_E_BAD_FORMAT, what);
        } else {
          st = place_block(l, buf, tmp, x, y, p, out);
        }
      }
  free(buf);
  free(tmp);
  return st;
}

msc_status msci_raster_read(const char *path, msci_raster *out) {
  if (!path || !out) return msci_fail(MSC_E_INVALID_ARGUMENT, "raster read: NULL argument");
  tiff_messages m = {{0}};
  TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
  if (!opts) return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: libtiff options", path);
  TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, &m);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, NULL);
  FILE *probe = fopen(path, "rb");
  if (!probe) {
    TIFFOpenOptionsFree(opts);
    return msci_fail(MSC_E_IO, "%s: cannot open", path);
  }
  fclose(probe);
  TIFF *t = TIFFOpenExt(path, "r", opts);
  TIFFOpenOptionsFree(opts);
  if (!t) return tiff_fail(path, &m, MSC_E_BAD_FORMAT, "not a readable TIFF file");
  layout l;
  msc_status st = read_layout(t, path, &m, &l);
  float *data = NULL;
  if (st == MSC_OK) {
    data = malloc((size_t)l.width * l.height * l.spp * sizeof(float));
    if (!data) st = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: %ux%u×%u floats", path, l.width, l.height, l.spp);
  }
  if (st == MSC_OK) st = read_blocks(t, path, &m, &l, data);
  TIFFClose(t);
  if (st != MSC_OK) {
    free(data);
    return st;
  }
  out->width = l.width;
  out->height = l.height;
  out->bands = l.spp;
  out->data = data;
  return MSC_OK;
}

void msci_raster_free(msci_raster *r) {
  if (!r) return;
  free(r->data);
  memset(r, 0, sizeof *r);
}

/* Source coordinate of destination index i (align_corners = False). */
static double source_coord(int64_t i, int64_t src, int64_t dst) {
  double c = ((double)i + 0.5) * (double)src / (double)dst - 0.5;
  return c < 0 ? 0 : c;
}

void msci_resample(const float *src, int64_t sh, int64_t sw, float *dst, int64_t dh,
                   int64_t dw, msci_resample_mode mode) {
  for (int64_t y = 0; y < dh; ++y)
    for (int64_t x = 0; x < dw; ++x) {
      if (mode == MSCI_RESAMPLE_NEAREST) {
        int64_t sy = (int64_t)floor((double)y * (double)sh / (double)dh);
        int64_t sx = (int64_t)floor((double)x * (double)sw / (double)dw);
        dst[y * dw + x] = src[(sy < sh ? sy : sh - 1) * sw + (sx < sw ? sx : sw - 1)];
        continue;
      }
      double fy = source_coord(y, sh, dh), fx = source_coord(x, sw, dw);
      int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
      int64_t y1 = y0 + 1 < sh ? y0 + 1 : y0, x1 = x0 + 1 < sw ? x0 + 1 : x0;
      double wy = fy - (double)y0, wx = fx - (double)x0;
      double top = (1 - wx) * src[y0 * sw + x0] + wx * src[y0 * sw + x1];
      double bottom = (1 - wx) * src[y1 * sw + x0] + wx * src[y1 * sw + x1];
      dst[y * dw + x] = (float)((1 - wy) * top + wy * bottom);
    }
}
