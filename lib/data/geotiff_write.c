/*
 * geotiff_write.c — the tiled, compressed GeoTIFF writer of geotiff_write.h: rows in,
 * one row of tiles buffered, tiles encoded as soon as their row is complete, the file
 * renamed into place at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "data/geotiff_write.h"
#include "common/file_read.h"
#include "common/internal.h"

/* GeoTIFF and GDAL tags (libtiff 4.5 registers none of them). */
#define TAG_PIXEL_SCALE      33550
#define TAG_TIEPOINT         33922
#define TAG_TRANSFORMATION   34264
#define TAG_GEOKEY_DIRECTORY 34735
#define TAG_GEO_DOUBLES      34736
#define TAG_GEO_ASCII        34737
#define TAG_GDAL_METADATA    42112
#define TAG_GDAL_NODATA      42113
#define KEY_RASTER_TYPE      1025 /* GTRasterTypeGeoKey: 1 PixelIsArea, 2 PixelIsPoint */

/* ---- georeferencing ------------------------------------------------------------------ */

msc_status msci_georef_window(const msci_raster_info *in, double x0, double y0, double ratio,
                              msci_georef *out) {
  if (!in || !out || !(ratio > 0) || !isfinite(ratio) || !isfinite(x0) || !isfinite(y0))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "georef: bad arguments (ratio %g)", ratio);
  msci_georef g;
  memset(&g, 0, sizeof g);
  /* Input raster coordinate u of output coordinate u': u = r·u' + off. For PixelIsArea
   * raster coordinates are pixel corners (off = x0); for PixelIsPoint integers are pixel
   * centres, so the corner-based map is shifted by half a pixel on both sides. */
  uint16_t rt = 1;
  int point = msci_raster_info_geokey(in, KEY_RASTER_TYPE, &rt) && rt == 2;
  const double offx = point ? x0 + 0.5 * ratio - 0.5 : x0;
  const double offy = point ? y0 + 0.5 * ratio - 0.5 : y0;
  if (in->has_transformation) {
    if (in->has_tiepoints)
      return msci_fail(MSC_E_UNSUPPORTED, "georef: the input has both a ModelTransformation "
                                          "and tie points; cannot carry them over");
    const double *m = in->transformation;
    for (int i = 0; i < 4; ++i) {
      g.transformation[4 * i + 0] = ratio * m[4 * i + 0];
      g.transformation[4 * i + 1] = ratio * m[4 * i + 1];
      g.transformation[4 * i + 2] = m[4 * i + 2];
      g.transformation[4 * i + 3] = m[4 * i + 0] * offx + m[4 * i + 1] * offy + m[4 * i + 3];
    }
    g.has_transformation = 1;
  } else if (in->has_tiepoints) {
    if (in->n_tiepoints != 1)
      return msci_fail(MSC_E_UNSUPPORTED,
                       "georef: the input has %lld tie points (ground control points); only "
                       "one tie point with a pixel scale can be carried over",
                       (long long)in->n_tiepoints);
    if (!in->has_pixel_scale)
      return msci_fail(MSC_E_UNSUPPORTED,
                       "georef: the input has a tie point but no ModelPixelScale");
    const double *t = in->tiepoints;
    g.tiepoint[0] = (t[0] - offx) / ratio;
    g.tiepoint[1] = (t[1] - offy) / ratio;
    g.tiepoint[2] = t[2];
    g.tiepoint[3] = t[3], g.tiepoint[4] = t[4], g.tiepoint[5] = t[5];
    g.scale[0] = in->pixel_scale[0] * ratio;
    g.scale[1] = in->pixel_scale[1] * ratio;
    g.scale[2] = in->pixel_scale[2];
    g.has_tiepoint = g.has_scale = 1;
  } else if (in->has_pixel_scale) {
    return msci_fail(MSC_E_UNSUPPORTED, "georef: the input has a ModelPixelScale but no tie "
                                        "point");
  }
  *out = g;
  return MSC_OK;
}

/* ---- the writer ---------------------------------------------------------------------- */

struct msci_geotiff {
  TIFF *t;
  char *path, *tmp;
  msci_geotiff_spec s; /* pointers cleared: nothing borrowed is kept */
  int64_t tile, rows_done, buf_rows;
  int64_t lw, lh; /* the size of the level being written (the image, then overviews) */
  int32_t has_pal;
  uint8_t pal[768];
  size_t bpv;
  float *rows;        /* bands × tile × width: the current row of tiles */
  unsigned char *blk; /* one encoded tile's samples */
  char error[256];    /* libtiff's first error */
};

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  msci_geotiff *g = user;
  (void)tif, (void)module;
  if (g && !g->error[0]) vsnprintf(g->error, sizeof g->error, fmt, ap);
  return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  (void)tif, (void)user, (void)module;
  char buf[256];
  vsnprintf(buf, sizeof buf, fmt, ap);
  msci_log(MSC_LOG_DEBUG, "libtiff warning: %s", buf);
  return 1;
}

uint16_t msci_half_from_float(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
  if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));
  const int32_t E = (int32_t)e - 127 + 15;
  if (E >= 31) return (uint16_t)(sign | 0x7c00u);
  if (E <= 0) { /* subnormal: the 24-bit significand shifted to units of 2^-24 */
    if (E < -10) return (uint16_t)sign;
    const uint32_t M = m | 0x800000u, shift = (uint32_t)(14 - E);
    uint32_t h = M >> shift;
    const uint32_t rem = M & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)E << 10) | (m >> 13);
  const uint32_t rem = m & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h; /* a carry may round up to inf */
  return (uint16_t)(sign | h);
}

float msci_half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) return (sign ? -1.f : 1.f) * ldexpf((float)m, -24);
  uint32_t x = e == 31 ? sign | 0x7f800000u | (m << 13) : sign | ((e + 112) << 23) | (m << 13);
  float f;
  memcpy(&f, &x, 4);
  return f;
}

int msci_geotiff_has_zstd(void) {
  return TIFFIsCODECConfigured(COMPRESSION_ZSTD) != 0;
}

static void free_writer(msci_geotiff *g) {
  if (!g) return;
  free(g->path);
  free(g->tmp);
  free(g->rows);
  free(g->blk);
  free(g);
}

void msci_geotiff_abort(msci_geotiff *g) {
  if (!g) return;
  if (g->t) TIFFClose(g->t);
  if (g->tmp) unlink(g->tmp);
  free_writer(g);
}

static msc_status fail_abort(msci_geotiff *g, msc_status code, const char *what) {
  msc_status st =
      msci_fail(code, "%s: %s: %s", g->path, what, g->error[0] ? g->error : "libtiff error");
  msci_geotiff_abort(g);
  return st;
}

/* Appends s to the growing buffer *b (size *n, capacity *cap), XML-escaped if esc. */
static int append(char **b, size_t *n, size_t *cap, const char *s, int esc) {
  for (; *s; ++s) {
    const char *r = NULL;
    char one[2] = {*s, 0};
    if (esc && *s == '&')
      r = "&amp;";
    else if (esc && *s == '<')
      r = "&lt;";
    else if (esc && *s == '>')
      r = "&gt;";
    else if (esc && *s == '"')
      r = "&quot;";
    else
      r = one;
    size_t k = strlen(r);
    if (*n + k + 1 > *cap) {
      size_t c = *cap ? 2 * *cap : 256;
      while (c < *n + k + 1) c *= 2;
      char *nb = realloc(*b, c);
      if (!nb) return 0;
      *b = nb, *cap = c;
    }
    memcpy(*b + *n, r, k);
    *n += k;
    (*b)[*n] = '\0';
  }
  return 1;
}

/* GDAL's metadata XML: a DESCRIPTION per band, CLASS_<i> items for the class names. */
static char *metadata_xml(const msci_geotiff_spec *s) {
  char *b = NULL, num[128];
  size_t n = 0, cap = 0;
  int ok = append(&b, &n, &cap, "<GDALMetadata>\n", 0);
  for (int64_t i = 0; ok && s->class_names && i < s->n_classes; ++i) {
    snprintf(num, sizeof num, "  <Item name=\"CLASS_%lld\">", (long long)i);
    ok = append(&b, &n, &cap, num, 0) && append(&b, &n, &cap, s->class_names[i], 1) &&
         append(&b, &n, &cap, "</Item>\n", 0);
  }
  for (int64_t i = 0; ok && s->band_names && i < s->bands; ++i) {
    snprintf(num, sizeof num,
             "  <Item name=\"DESCRIPTION\" sample=\"%lld\" role=\"description\">",
             (long long)i);
    ok = append(&b, &n, &cap, num, 0) && append(&b, &n, &cap, s->band_names[i], 1) &&
         append(&b, &n, &cap, "</Item>\n", 0);
  }
  ok = ok && append(&b, &n, &cap, "</GDALMetadata>", 0);
  if (!ok) {
    free(b);
    return NULL;
  }
  return b;
}

static msc_status check_spec(const char *path, const msci_geotiff_spec *s) {
  if (s->width < 1 || s->height < 1 || s->bands < 1 || s->width > INT32_MAX ||
      s->height > INT32_MAX || s->bands > 65535)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: bad raster size %lld x %lld x %lld", path,
                     (long long)s->bands, (long long)s->height, (long long)s->width);
  int f = s->sample_format, b = s->bits;
  if (!((f == SAMPLEFORMAT_UINT && (b == 8 || b == 16)) ||
        (f == SAMPLEFORMAT_INT && (b == 16 || b == 32)) ||
        (f == SAMPLEFORMAT_IEEEFP && (b == 16 || b == 32))))
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: sample format %d with %d bits is not written (uint8, uint16, int16, "
                     "int32, float16, float32)",
                     path, f, b);
  if (s->tile < 0 || s->tile % 16 != 0 || s->tile > 4096)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: tile %lld is not a multiple of 16 (16..4096)",
                     path, (long long)s->tile);
  if (s->planar < 0 || s->planar > 2)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: planar %d", path, s->planar);
  if (s->palette && (s->bands != 1 || b != 8 || f != SAMPLEFORMAT_UINT || s->n_palette < 1 ||
                     s->n_palette > 256))
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: a colour table needs one uint8 band and 1..256 colours", path);
  int c = s->compression ? s->compression : COMPRESSION_ADOBE_DEFLATE;
  if (c != COMPRESSION_NONE && c != COMPRESSION_ADOBE_DEFLATE && c != COMPRESSION_ZSTD)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: compression %d (none 1, DEFLATE 8, ZSTD 50000)", path, c);
  if (!TIFFIsCODECConfigured((uint16_t)c))
    return msci_fail(MSC_E_UNSUPPORTED, "%s: this libtiff cannot encode compression %d", path,
                     c);
  if (s->overviews < 0 || s->overviews > MSCI_OVERVIEW_AVERAGE)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: overviews %d", path, s->overviews);
  if (s->grid && !s->geo)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: a grid without the input's info", path);
  return MSC_OK;
}

/* Registers the GeoTIFF and GDAL tags on this handle (libtiff does not know them). */
int msci_geotiff_register_tags(TIFF *t) {
  static const TIFFFieldInfo fields[] = {
      {TAG_PIXEL_SCALE, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, "ModelPixelScale"},
      {TAG_TIEPOINT, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, "ModelTiepoint"},
      {TAG_TRANSFORMATION, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, "ModelTransformation"},
      {TAG_GEOKEY_DIRECTORY, -1, -1, TIFF_SHORT, FIELD_CUSTOM, 1, 1, "GeoKeyDirectory"},
      {TAG_GEO_DOUBLES, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, "GeoDoubleParams"},
      {TAG_GEO_ASCII, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, "GeoASCIIParams"},
      {TAG_GDAL_METADATA, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, "GDALMetadata"},
      {TAG_GDAL_NODATA, -1, -1, TIFF_ASCII, FIELD_CUSTOM, 1, 0, "GDALNoDataValue"}};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; ++i)
    if (!TIFFFindField(t, fields[i].field_tag, TIFF_ANY) &&
        TIFFMergeFieldInfo(t, &fields[i], 1) != 0)
      return 0;
  return 1;
}

/* The tags of one level (the image or an overview) of size w × h: layout, samples,
 * compression and colours. */
static int set_level_tags(msci_geotiff *g, const msci_geotiff_spec *s, int64_t w, int64_t h) {
  TIFF *t = g->t;
  const int comp = s->compression ? s->compression : COMPRESSION_ADOBE_DEFLATE;
  int ok =
      TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w) &&
      TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h) &&
      TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)s->bits) &&
      TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, (uint16_t)s->sample_format) &&
      TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)s->bands) &&
      TIFFSetField(t, TIFFTAG_TILEWIDTH, (uint32_t)g->tile) &&
      TIFFSetField(t, TIFFTAG_TILELENGTH, (uint32_t)g->tile) &&
      TIFFSetField(t, TIFFTAG_PLANARCONFIG,
                   (uint16_t)(s->planar == 2 ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG)) &&
      TIFFSetField(t, TIFFTAG_COMPRESSION, (uint16_t)comp);
  if (ok && s->bands > 1) { /* extra samples: unspecified data, so no reader sees RGB(A) */
    uint16_t *extra = calloc((size_t)s->bands, sizeof *extra);
    ok = extra && TIFFSetField(t, TIFFTAG_PHOTOMETRIC, (uint16_t)PHOTOMETRIC_MINISBLACK) &&
         TIFFSetField(t, TIFFTAG_EXTRASAMPLES, (uint16_t)(s->bands - 1), extra);
    free(extra);
  } else if (ok && g->has_pal) {
    uint16_t r[256] = {0}, gr[256] = {0}, b[256] = {0};
    for (int64_t i = 0; i < 256; ++i) /* 8-bit colours to TIFF's 16-bit ones */
      r[i] = (uint16_t)(g->pal[3 * i] * 257), gr[i] = (uint16_t)(g->pal[3 * i + 1] * 257),
      b[i] = (uint16_t)(g->pal[3 * i + 2] * 257);
    ok = TIFFSetField(t, TIFFTAG_PHOTOMETRIC, (uint16_t)PHOTOMETRIC_PALETTE) &&
         TIFFSetField(t, TIFFTAG_COLORMAP, r, gr, b);
  } else if (ok) {
    ok = TIFFSetField(t, TIFFTAG_PHOTOMETRIC, (uint16_t)PHOTOMETRIC_MINISBLACK);
  }
  if (ok && comp == COMPRESSION_ADOBE_DEFLATE) ok = TIFFSetField(t, TIFFTAG_ZIPQUALITY, 6);
  return ok;
}

static int set_tags(msci_geotiff *g, const msci_geotiff_spec *s) {
  TIFF *t = g->t;
  int ok = msci_geotiff_register_tags(t) && set_level_tags(g, s, s->width, s->height);
  if (ok && s->has_nodata) {
    char txt[64];
    if (isnan(s->nodata))
      snprintf(txt, sizeof txt, "nan");
    else
      snprintf(txt, sizeof txt, "%.17g", s->nodata);
    ok = TIFFSetField(t, TAG_GDAL_NODATA, txt);
  }
  if (ok && (s->band_names || s->class_names)) {
    char *xml = metadata_xml(s);
    ok = xml && TIFFSetField(t, TAG_GDAL_METADATA, xml);
    free(xml);
  }
  if (ok && s->geo) {
    const msci_raster_info *in = s->geo;
    if (in->has_geokeys && in->n_geokeys > 0 && in->n_geokeys <= 65535)
      ok = TIFFSetField(t, TAG_GEOKEY_DIRECTORY, (int)in->n_geokeys, in->geokeys);
    if (ok && in->has_geo_doubles && in->n_geo_doubles > 0 && in->n_geo_doubles <= 65535)
      ok = TIFFSetField(t, TAG_GEO_DOUBLES, (int)in->n_geo_doubles, in->geo_doubles);
    if (ok && in->has_geo_ascii && in->geo_ascii)
      ok = TIFFSetField(t, TAG_GEO_ASCII, in->geo_ascii);
  }
  if (ok && s->grid) {
    const msci_georef *gr = s->grid;
    if (gr->has_scale) ok = TIFFSetField(t, TAG_PIXEL_SCALE, 3, gr->scale);
    if (ok && gr->has_tiepoint) ok = TIFFSetField(t, TAG_TIEPOINT, 6, gr->tiepoint);
    if (ok && gr->has_transformation)
      ok = TIFFSetField(t, TAG_TRANSFORMATION, 16, gr->transformation);
  }
  return ok;
}

msc_status msci_geotiff_open(const char *path, const msci_geotiff_spec *spec,
                             msci_geotiff **out) {
  if (!path || !spec || !out)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "geotiff: NULL argument");
  MSCI_TRY(check_spec(path, spec));
  msci_geotiff *g = calloc(1, sizeof *g);
  if (!g) return msci_fail(MSC_E_OUT_OF_MEMORY, "geotiff: writer");
  g->s = *spec;
  g->tile = spec->tile ? spec->tile : 256;
  g->bpv = (size_t)spec->bits / 8;
  g->lw = spec->width, g->lh = spec->height;
  if (spec->palette) {
    g->has_pal = 1;
    memcpy(g->pal, spec->palette, (size_t)spec->n_palette * 3);
  }
  size_t plen = strlen(path);
  g->path = malloc(plen + 1);
  g->tmp = malloc(plen + 16);
  g->rows = malloc((size_t)spec->bands * (size_t)g->tile * (size_t)spec->width * sizeof(float));
  g->blk = malloc((size_t)g->tile * (size_t)g->tile * (size_t)spec->bands * g->bpv);
  if (!g->path || !g->tmp || !g->rows || !g->blk) {
    const long long tile = (long long)g->tile;
    free_writer(g);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: writer buffers (%lld bands x %lld x %lld)", path,
                     (long long)spec->bands, tile, (long long)spec->width);
  }
  memcpy(g->path, path, plen + 1);
  snprintf(g->tmp, plen + 16, "%s.tmpXXXXXX", path);
  int fd = mkstemp(g->tmp);
  if (fd < 0) {
    msc_status st =
        msci_fail(MSC_E_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
    free(g->tmp);
    g->tmp = NULL;
    free_writer(g);
    return st;
  }
  (void)fchmod(fd, 0644); /* mkstemp's 0600 would hide the map from other users */
  /* BigTIFF once the samples pass 2 GiB (compression may not save us below 4 GiB). */
  double bytes =
      (double)spec->width * (double)spec->height * (double)spec->bands * (double)g->bpv;
  TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
  if (o) {
    TIFFOpenOptionsSetErrorHandlerExtR(o, on_error, g);
    TIFFOpenOptionsSetWarningHandlerExtR(o, on_warning, g);
    g->t = TIFFFdOpenExt(fd, g->tmp, bytes > 2147483648.0 ? "w8" : "w", o);
    TIFFOpenOptionsFree(o);
  }
  if (!g->t) {
    close(fd);
    return fail_abort(g, MSC_E_IO, "cannot open for writing");
  }
  if (!set_tags(g, spec)) return fail_abort(g, MSC_E_IO, "cannot set the tags");
  g->s.geo = NULL, g->s.grid = NULL, g->s.palette = NULL; /* borrowed: not kept */
  g->s.band_names = NULL, g->s.class_names = NULL;
  *out = g;
  return MSC_OK;
}

/* Stores v as one sample of the file's type at p. */
static void put(const msci_geotiff *g, unsigned char *p, float v) {
  const msci_geotiff_spec *s = &g->s;
  if (isnan(v)) v = s->has_nodata ? (float)s->nodata : 0.f;
  if (s->sample_format == SAMPLEFORMAT_IEEEFP && s->bits == 16) {
    uint16_t h = msci_half_from_float(v);
    memcpy(p, &h, 2);
    return;
  }
  if (s->sample_format == SAMPLEFORMAT_IEEEFP) {
    memcpy(p, &v, 4);
    return;
  }
  double lo = 0, hi = 255;
  if (s->sample_format == SAMPLEFORMAT_UINT && s->bits == 16) hi = 65535;
  if (s->sample_format == SAMPLEFORMAT_INT)
    lo = s->bits == 16 ? -32768.0 : -2147483648.0, hi = s->bits == 16 ? 32767.0 : 2147483647.0;
  double d = isnan(v) ? 0 : nearbyint((double)v);
  d = d < lo ? lo : d > hi ? hi : d;
  if (s->sample_format == SAMPLEFORMAT_UINT && s->bits == 8)
    *p = (uint8_t)d;
  else if (s->sample_format == SAMPLEFORMAT_UINT) {
    uint16_t u = (uint16_t)d;
    memcpy(p, &u, 2);
  } else if (s->bits == 16) {
    int16_t u = (int16_t)d;
    memcpy(p, &u, 2);
  } else {
    int32_t u = (int32_t)d;
    memcpy(p, &u, 4);
  }
}

/* Encodes the buffered row of tiles (buf_rows rows starting at row y0). */
static int flush_tiles(msci_geotiff *g, int64_t y0) {
  const msci_geotiff_spec *s = &g->s;
  const int64_t T = g->tile, W = g->lw, B = s->bands, R = g->buf_rows;
  const float pad = s->has_nodata ? (float)s->nodata : 0.f;
  const int64_t planes = s->planar == 2 ? B : 1, per = s->planar == 2 ? 1 : B;
  for (int64_t x0 = 0; x0 < W; x0 += T)
    for (int64_t pl = 0; pl < planes; ++pl) {
      for (int64_t r = 0; r < T; ++r)
        for (int64_t c = 0; c < T; ++c)
          for (int64_t k = 0; k < per; ++k) {
            const int64_t b = pl + k, x = x0 + c;
            float v = r < R && x < W ? g->rows[(b * T + r) * W + x] : pad;
            put(g, g->blk + ((size_t)((r * T + c) * per + k)) * g->bpv, v);
          }
      uint32_t tile = TIFFComputeTile(g->t, (uint32_t)x0, (uint32_t)y0, 0, (uint16_t)pl);
      if (TIFFWriteEncodedTile(g->t, tile, g->blk, (tmsize_t)((size_t)(T * T * per) * g->bpv)) <
          0)
        return 0;
    }
  return 1;
}

msc_status msci_geotiff_write_rows(msci_geotiff *g, const float *rows, int64_t n) {
  if (!g || (!rows && n > 0) || n < 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "geotiff: bad rows");
  const msci_geotiff_spec *s = &g->s;
  if (g->rows_done + n > g->lh) {
    msc_status st = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %lld rows past the height %lld",
                              g->path, (long long)(g->rows_done + n), (long long)g->lh);
    msci_geotiff_abort(g);
    return st;
  }
  const int64_t W = g->lw, T = g->tile;
  int64_t done = 0;
  while (done < n) {
    int64_t k = T - g->buf_rows < n - done ? T - g->buf_rows : n - done;
    for (int64_t b = 0; b < s->bands; ++b)
      memcpy(g->rows + (b * T + g->buf_rows) * W, rows + (b * n + done) * W,
             (size_t)(k * W) * sizeof(float));
    g->buf_rows += k, done += k, g->rows_done += k;
    if (g->buf_rows == T || g->rows_done == g->lh) {
      if (!flush_tiles(g, g->rows_done - g->buf_rows))
        return fail_abort(g, MSC_E_IO, "cannot write a tile");
      g->buf_rows = 0;
    }
  }
  return MSC_OK;
}

/* ---- overviews ------------------------------------------------------------------------ */

/* One stored sample at p as a float; the nodata value becomes NaN. */
static float get(const msci_geotiff *g, const unsigned char *p) {
  const msci_geotiff_spec *s = &g->s;
  float v;
  if (s->sample_format == SAMPLEFORMAT_IEEEFP && s->bits == 16) {
    uint16_t h;
    memcpy(&h, p, 2);
    v = msci_half_to_float(h);
  } else if (s->sample_format == SAMPLEFORMAT_IEEEFP) {
    memcpy(&v, p, 4);
  } else if (s->sample_format == SAMPLEFORMAT_UINT && s->bits == 8) {
    v = *p;
  } else if (s->sample_format == SAMPLEFORMAT_UINT) {
    uint16_t u;
    memcpy(&u, p, 2);
    v = u;
  } else if (s->bits == 16) {
    int16_t u;
    memcpy(&u, p, 2);
    v = u;
  } else {
    int32_t u;
    memcpy(&u, p, 4);
    v = (float)u;
  }
  if (s->has_nodata && (v == (float)s->nodata || (isnan(s->nodata) && isnan(v)))) return NAN;
  return v;
}

/* Rows [y0, y0 + T) ∩ [0, h) of directory `dir` (w × h) re-read from the temporary file
 * into out (bands × T × w floats). */
static int read_tile_row(msci_geotiff *g, TIFF *rd, int64_t w, int64_t h, int64_t y0,
                         float *out) {
  const msci_geotiff_spec *s = &g->s;
  const int64_t T = g->tile, B = s->bands, planes = s->planar == 2 ? B : 1;
  const int64_t per = s->planar == 2 ? 1 : B;
  for (int64_t x0 = 0; x0 < w; x0 += T)
    for (int64_t pl = 0; pl < planes; ++pl) {
      uint32_t tile = TIFFComputeTile(rd, (uint32_t)x0, (uint32_t)y0, 0, (uint16_t)pl);
      if (TIFFReadEncodedTile(rd, tile, g->blk, (tmsize_t)((size_t)(T * T * per) * g->bpv)) < 0)
        return 0;
      for (int64_t r = 0; r < T && y0 + r < h; ++r)
        for (int64_t c = 0; c < T && x0 + c < w; ++c)
          for (int64_t k = 0; k < per; ++k)
            out[((pl + k) * T + r) * w + x0 + c] =
                get(g, g->blk + ((size_t)((r * T + c) * per + k)) * g->bpv);
    }
  return 1;
}

/* Level `level` (≥ 1) of size w × h from level − 1 (pw × ph, directory level − 1). */
static msc_status write_level(msci_geotiff *g, int level, int64_t pw, int64_t ph, int64_t w,
                              int64_t h, float *src, float *dst) {
  const msci_geotiff_spec *s = &g->s;
  const int64_t T = g->tile, B = s->bands;
  TIFF *rd = NULL;
  TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
  if (o) {
    TIFFOpenOptionsSetErrorHandlerExtR(o, on_error, g);
    TIFFOpenOptionsSetWarningHandlerExtR(o, on_warning, g);
    rd = TIFFOpenExt(g->tmp, "r", o);
    TIFFOpenOptionsFree(o);
  }
  if (!rd || !TIFFSetDirectory(rd, (tdir_t)(level - 1))) {
    if (rd) TIFFClose(rd);
    return fail_abort(g, MSC_E_IO, "cannot re-read the previous level for the overviews");
  }
  int ok = TIFFSetField(g->t, TIFFTAG_SUBFILETYPE, (uint32_t)FILETYPE_REDUCEDIMAGE) &&
           set_level_tags(g, s, w, h);
  g->lw = w, g->lh = h, g->rows_done = 0, g->buf_rows = 0;
  /* A row of tiles of the previous level (T rows, T even) gives T / 2 rows of this one. */
  for (int64_t y0 = 0; ok && y0 < ph; y0 += T) {
    ok = read_tile_row(g, rd, pw, ph, y0, src);
    const int64_t n = ((y0 + T < ph ? y0 + T : ph) - y0 + 1) / 2;
    for (int64_t b = 0; ok && b < B; ++b)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t x = 0; x < w; ++x) {
          const float *p = src + (b * T + 2 * r) * pw + 2 * x;
          float v = p[0];
          if (s->overviews == MSCI_OVERVIEW_AVERAGE) {
            const int right = 2 * x + 1 < pw, down = y0 + 2 * r + 1 < ph;
            const float q[4] = {p[0], right ? p[1] : NAN, down ? p[pw] : NAN,
                                right && down ? p[pw + 1] : NAN};
            double sum = 0;
            int cnt = 0;
            for (int i = 0; i < 4; ++i)
              if (!isnan(q[i])) sum += q[i], ++cnt;
            v = cnt ? (float)(sum / cnt) : NAN;
          }
          dst[(b * n + r) * w + x] = v;
        }
    if (ok && msci_geotiff_write_rows(g, dst, n) != MSC_OK) {
      TIFFClose(rd);
      return MSC_E_IO; /* the writer aborted itself */
    }
  }
  TIFFClose(rd);
  if (!ok || TIFFWriteDirectory(g->t) == 0)
    return fail_abort(g, MSC_E_IO, "cannot write an overview");
  return MSC_OK;
}

/* The levels after the image, each half the previous one, until one fits a tile. */
static msc_status write_overviews(msci_geotiff *g) {
  const size_t B = (size_t)g->s.bands, T = (size_t)g->tile, W = (size_t)g->s.width;
  const int64_t tile = g->tile;
  int64_t pw = g->s.width, ph = g->s.height;
  float *src = malloc(B * T * W * sizeof(float)), *dst = malloc(B * T * W * sizeof(float));
  msc_status st = MSC_OK;
  if (!src || !dst) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: overview buffers", g->path);
    msci_geotiff_abort(g);
  }
  for (int level = 1; st == MSC_OK && (pw > tile || ph > tile); ++level) {
    const int64_t w = (pw + 1) / 2, h = (ph + 1) / 2;
    st = write_level(g, level, pw, ph, w, h, src, dst);
    pw = w, ph = h;
  }
  free(src);
  free(dst);
  return st;
}

msc_status msci_geotiff_close(msci_geotiff *g) {
  if (!g) return msci_fail(MSC_E_INVALID_ARGUMENT, "geotiff: NULL writer");
  if (g->rows_done != g->s.height) {
    msc_status st = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %lld of %lld rows written", g->path,
                              (long long)g->rows_done, (long long)g->s.height);
    msci_geotiff_abort(g);
    return st;
  }
  if (TIFFWriteDirectory(g->t) == 0)
    return fail_abort(g, MSC_E_IO, "cannot write the directory");
  if (g->s.overviews) MSCI_TRY(write_overviews(g));
  TIFFClose(g->t);
  g->t = NULL;
  /* On disk before the rename, so a crash leaves the old file or the whole new one. */
  int fd = -1;
  uint64_t size = 0;
  if (msci_file_open_regular(g->tmp, &fd, &size) != MSC_OK || fsync(fd) != 0) {
    snprintf(g->error, sizeof g->error, "%s", fd < 0 ? msc_last_error() : strerror(errno));
    if (fd >= 0) close(fd);
    return fail_abort(g, MSC_E_IO, "cannot flush to disk");
  }
  close(fd);
  if (rename(g->tmp, g->path) != 0) {
    snprintf(g->error, sizeof g->error, "%s", strerror(errno));
    return fail_abort(g, MSC_E_IO, "cannot rename the temporary file");
  }
  free_writer(g);
  return MSC_OK;
}

msc_status msci_geotiff_write(const char *path, const msci_geotiff_spec *spec,
                              const float *data) {
  if (!data) return msci_fail(MSC_E_INVALID_ARGUMENT, "geotiff: NULL data");
  msci_geotiff *g;
  MSCI_TRY(msci_geotiff_open(path, spec, &g));
  MSCI_TRY(msci_geotiff_write_rows(g, data, spec->height));
  return msci_geotiff_close(g);
}
