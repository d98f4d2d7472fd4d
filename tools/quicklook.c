/*
 * quicklook.c — `mosaic map --quicklook`: a PNG preview of a scene output that
 * msc_scene_write / msc_scene_write_embeddings has written (docs/scenes.md "Quicklooks").
 *
 * The preview is the first level of the GeoTIFF (the image, then its overviews) whose
 * width and height are both at most max_side pixels (the smallest level when none is),
 * so a whole Sentinel-2 scene is previewed from an overview without reading the map.
 * A class map (uint8 with a colour table) is drawn in the table's colours (nodata black);
 * float rasters (probabilities, embeddings) as RGB from their first three bands (two:
 * red and green; one: grey), each band scaled linearly from its minimum to its maximum
 * over the level's finite pixels; NaN (nodata) is black.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include "cli.h"

static int quiet(TIFF *t, void *user, const char *module, const char *fmt, va_list ap) {
  (void)t, (void)user, (void)module, (void)fmt, (void)ap;
  return 1;
}

/* IEEE half precision bits to float (the float16 embedding maps). */
static float half_to_float(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  float f = e == 31 ? (m ? NAN : INFINITY)
            : e     ? ldexpf((float)(1024 + m), e - 25)
                    : ldexpf((float)m, -24);
  return h & 0x8000 ? -f : f;
}

#ifdef MOSAIC_TOOL_PNG
/* The current directory's first `nb` bands as floats (nb × h × w); NaN where the value
 * is the class map's nodata (255) or not a number. */
static int read_level(TIFF *t, int64_t w, int64_t h, int64_t bands, int64_t nb, float *out) {
  uint32_t tw = 0, th = 0;
  uint16_t bits = 8, fmt = SAMPLEFORMAT_UINT, planar = PLANARCONFIG_CONTIG;
  TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
  TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &fmt);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
  if (!tw || !th) return cli_error("quicklook: the raster is not tiled");
  const int64_t per = planar == PLANARCONFIG_SEPARATE ? 1 : bands;
  const int64_t planes = planar == PLANARCONFIG_SEPARATE ? nb : 1;
  const size_t bpv = bits / 8u;
  unsigned char *buf = malloc((size_t)TIFFTileSize(t));
  if (!buf) return cli_error("out of memory");
  for (int64_t pl = 0; pl < planes; ++pl)
    for (uint32_t y0 = 0; y0 < h; y0 += th)
      for (uint32_t x0 = 0; x0 < w; x0 += tw) {
        if (TIFFReadEncodedTile(t, TIFFComputeTile(t, x0, y0, 0, (uint16_t)pl), buf,
                                TIFFTileSize(t)) < 0) {
          free(buf);
          return cli_error("quicklook: cannot read a tile");
        }
        for (uint32_t r = 0; r < th && y0 + r < h; ++r)
          for (uint32_t c = 0; c < tw && x0 + c < w; ++c)
            for (int64_t k = 0; k < per && pl + k < nb; ++k) {
              const unsigned char *p = buf + ((size_t)(r * tw + c) * (size_t)per + k) * bpv;
              float v;
              if (fmt == SAMPLEFORMAT_IEEEFP && bits == 16) {
                uint16_t u;
                memcpy(&u, p, 2);
                v = half_to_float(u);
              } else if (fmt == SAMPLEFORMAT_IEEEFP) {
                memcpy(&v, p, 4);
              } else if (bits == 8) {
                v = *p == 255 ? NAN : (float)*p;
              } else {
                uint16_t u;
                memcpy(&u, p, 2);
                v = u == 65535 ? NAN : (float)u;
              }
              out[((pl + k) * h + y0 + r) * w + x0 + c] = v;
            }
      }
  free(buf);
  return EXIT_OK;
}
#endif

int cli_quicklook(const char *tif, const char *png, int64_t max_side) {
#ifndef MOSAIC_TOOL_PNG
  (void)tif, (void)png, (void)max_side, (void)half_to_float;
  return cli_error("--quicklook: this mosaic was built without libpng (install libpng-dev)");
#else
  TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
  if (!o) return cli_error("out of memory");
  TIFFOpenOptionsSetErrorHandlerExtR(o, quiet, NULL);
  TIFFOpenOptionsSetWarningHandlerExtR(o, quiet, NULL);
  TIFF *t = TIFFOpenExt(tif, "r", o);
  TIFFOpenOptionsFree(o);
  if (!t) return cli_error("quicklook: cannot open %s", tif);
  /* The first level that fits, else the last (smallest). */
  uint32_t w = 0, h = 0;
  do {
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  } while ((w > max_side || h > max_side) && TIFFReadDirectory(t));
  uint16_t spp = 1;
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  const int64_t nb = spp < 3 ? spp : 3, n = (int64_t)w * h;
  uint16_t *cr = NULL, *cg = NULL, *cb = NULL;
  const int pal = TIFFGetField(t, TIFFTAG_COLORMAP, &cr, &cg, &cb) && spp == 1;
  float *v = malloc((size_t)(nb * n) * sizeof *v);
  unsigned char *img = malloc((size_t)n * 3);
  int rc = v && img ? read_level(t, w, h, spp, nb, v) : cli_error("out of memory");
  for (int64_t b = 0; rc == EXIT_OK && b < 3; ++b) {
    const int64_t sb = nb == 1 ? 0 : b < nb ? b : -1; /* the band drawn in channel b */
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; sb >= 0 && i < n; ++i)
      if (isfinite(v[sb * n + i])) lo = fminf(lo, v[sb * n + i]), hi = fmaxf(hi, v[sb * n + i]);
    for (int64_t i = 0; i < n; ++i) {
      const float x = sb >= 0 ? v[sb * n + i] : NAN;
      unsigned char c = 0;
      if (pal && isfinite(x)) {
        const uint16_t *map = b == 0 ? cr : b == 1 ? cg : cb;
        c = (unsigned char)(map[(int)x] >> 8);
      } else if (isfinite(x)) {
        c = hi > lo ? (unsigned char)lrintf(255.f * (x - lo) / (hi - lo)) : 128;
      }
      img[i * 3 + b] = c;
    }
  }
  TIFFClose(t);
  if (rc == EXIT_OK) rc = cli_write_png(png, img, h, w, 3);
  free(v);
  free(img);
  return rc;
#endif
}
