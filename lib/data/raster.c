/*
 * raster.c — GeoTIFF reading with libtiff and band resampling (see raster.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "common/file_read.h"
#include "common/internal.h"
#include "data/raster.h"

/* Largest output or block accepted: 2^31 values guards against absurd header values. */
#define MAX_ELEMENTS ((uint64_t)1 << 31)
/* A window may decode to at most this many times the compressed bytes it comes from,
 * plus MAX_RATIO_SLACK: far beyond what DEFLATE (~1000:1), LZW (~1400:1) or ZSTD's RLE
 * blocks (~32768:1) reach, yet a 1 KB file cannot ask for gigabytes. */
#define MAX_RATIO       65536.0
#define MAX_RATIO_SLACK (64.0 * 1024 * 1024)
/* libtiff's own allocations (raw strip/tile buffers, tag arrays) are capped as well. */
#define MAX_LIBTIFF_ALLOC ((tmsize_t)1 << 30)

/* GeoTIFF and GDAL tags: libtiff 4.5 registers none of them (tiff.h names 42113). */
#define TAG_PIXEL_SCALE      33550
#define TAG_TIEPOINT         33922
#define TAG_TRANSFORMATION   34264
#define TAG_GEOKEY_DIRECTORY 34735
#define TAG_GEO_DOUBLES      34736
#define TAG_GEO_ASCII        34737
#define TAG_GDAL_NODATA      42113

/* One open file: libtiff's handle, the file size (to check block offsets against) and
 * the first error libtiff reported, which goes into our error message. */
typedef struct tiff_file {
  TIFF *t;
  const char *path;
  uint64_t size;
  char error[512];
} tiff_file;

/* libtiff ≥ 4.5 hands messages to per-file handlers: nothing reaches stderr and the
 * host program's own libtiff handlers are left alone. Returning 1 stops the default. */
static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  tiff_file *f = user;
  char buf[512];
  (void)tif;
  vsnprintf(buf, sizeof buf, fmt, ap);
  msci_log(MSC_LOG_DEBUG, "libtiff error: %s: %s: %s", f ? f->path : "", module ? module : "",
           buf);
  if (f && f->error[0] == '\0') {
    /* libtiff often passes the file name as the module: it is in our message already. */
    if (!module || strcmp(module, f->path) == 0)
      snprintf(f->error, sizeof f->error, "%.500s", buf);
    else /* Precisions bound the output: 100 + 2 + 400 < sizeof f->error. */
      snprintf(f->error, sizeof f->error, "%.100s: %.400s", module, buf);
  }
  return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
  tiff_file *f = user;
  char buf[512];
  (void)tif;
  vsnprintf(buf, sizeof buf, fmt, ap);
  /* GeoTIFF tags are "unknown" to plain libtiff: routine, so only at debug level. */
  msci_log(MSC_LOG_DEBUG, "libtiff: %s: %s: %s", f ? f->path : "", module ? module : "", buf);
  return 1;
}

static msc_status tiff_fail(const tiff_file *f, msc_status code, const char *what) {
  return msci_fail(code, "%s: %s%s%s", f->path, what, f->error[0] ? ": " : "", f->error);
}

static msc_status open_tiff(const char *path, tiff_file *f) {
  memset(f, 0, sizeof *f);
  f->path = path;
  /* Opened here, not by TIFFOpen: a FIFO or device is refused before any read waits on
   * it (msci_file_open_regular opens non-blocking and checks the type with fstat). */
  int fd;
  MSCI_TRY(msci_file_open_regular(path, &fd, &f->size));
  TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
  if (!opts) {
    close(fd);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: libtiff options", path);
  }
  TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, f);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, f);
  TIFFOpenOptionsSetMaxSingleMemAlloc(opts, MAX_LIBTIFF_ALLOC);
  /* "m": no memory mapping, so a file shortened while it is read is a read error rather
   * than SIGBUS. TIFFClose closes fd; a failed open leaves it to us. */
  f->t = TIFFFdOpenExt(fd, path, "rm", opts);
  TIFFOpenOptionsFree(opts);
  if (!f->t) {
    close(fd);
    return tiff_fail(f, MSC_E_BAD_FORMAT, "not a readable TIFF file");
  }
  return MSC_OK;
}

static void close_tiff(tiff_file *f) {
  if (f->t) TIFFClose(f->t);
  f->t = NULL;
}

/* ---- samples ------------------------------------------------------------------------ */

/* Converts n samples, src[first], src[first + stride], ..., to float. */
static msc_status convert_run(const void *src, size_t first, size_t stride, size_t n,
                              uint16_t fmt, uint16_t bits, float *dst) {
#define CONVERT(type)                                                                          \
  do {                                                                                         \
    const type *s_ = (const type *)src + first;                                                \
    for (size_t i_ = 0; i_ < n; ++i_) dst[i_] = (float)s_[i_ * stride];                        \
  } while (0)
  if (fmt == SAMPLEFORMAT_UINT && bits == 8)
    CONVERT(uint8_t);
  else if (fmt == SAMPLEFORMAT_UINT && bits == 16)
    CONVERT(uint16_t);
  else if (fmt == SAMPLEFORMAT_UINT && bits == 32)
    CONVERT(uint32_t);
  else if (fmt == SAMPLEFORMAT_INT && bits == 8)
    CONVERT(int8_t);
  else if (fmt == SAMPLEFORMAT_INT && bits == 16)
    CONVERT(int16_t);
  else if (fmt == SAMPLEFORMAT_INT && bits == 32)
    CONVERT(int32_t);
  else if (fmt == SAMPLEFORMAT_IEEEFP && bits == 32)
    CONVERT(float);
  else if (fmt == SAMPLEFORMAT_IEEEFP && bits == 64)
    CONVERT(double);
  else
    return MSC_E_UNSUPPORTED;
#undef CONVERT
  return MSC_OK;
}

/* ---- layout ------------------------------------------------------------------------- */

typedef struct layout {
  uint32_t width, height, tile_w, tile_h; /* a strip is a tile as wide as the image */
  uint16_t spp, bits, fmt, planar, compression, predictor;
  int tiled;
  uint32_t spp_in_block; /* samples per pixel inside one block: 1 when planar */
  uint32_t planes;       /* spp when planar, else 1 */
  uint64_t row_bytes;    /* bytes of one row of one block */
  uint32_t n_blocks;     /* strips or tiles in the file, all planes */
} layout;

static msc_status read_layout(tiff_file *f, layout *l) {
  TIFF *t = f->t;
  memset(l, 0, sizeof *l);
  if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &l->width) ||
      !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &l->height))
    return tiff_fail(f, MSC_E_BAD_FORMAT, "no image size");
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &l->spp);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &l->bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &l->fmt);
  TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &l->planar);
  TIFFGetFieldDefaulted(t, TIFFTAG_COMPRESSION, &l->compression);
  /* Predictor exists only for codecs that have one; no TIFFGetFieldDefaulted here,
   * which would report an error for the others. */
  l->predictor = PREDICTOR_NONE;
  TIFFGetField(t, TIFFTAG_PREDICTOR, &l->predictor);
  if (l->width == 0 || l->height == 0 || l->spp == 0)
    return tiff_fail(f, MSC_E_BAD_FORMAT, "empty image");
  float probe;
  uint8_t zero[8] = {0};
  if (convert_run(zero, 0, 1, 1, l->fmt, l->bits, &probe) != MSC_OK)
    return msci_fail(
        MSC_E_UNSUPPORTED,
        "%s: samples of %u bits in sample format %u are not supported (8/16/32-bit "
        "integers and 32/64-bit floats are)",
        f->path, l->bits, l->fmt);
  if (l->planar != PLANARCONFIG_CONTIG && l->planar != PLANARCONFIG_SEPARATE)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: planar configuration %u", f->path, l->planar);
  l->tiled = TIFFIsTiled(t);
  if (l->tiled) {
    if (!TIFFGetField(t, TIFFTAG_TILEWIDTH, &l->tile_w) ||
        !TIFFGetField(t, TIFFTAG_TILELENGTH, &l->tile_h) || l->tile_w == 0 || l->tile_h == 0)
      return tiff_fail(f, MSC_E_BAD_FORMAT, "bad tile size");
  } else {
    uint32_t rows = 0;
    TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &rows);
    l->tile_w = l->width;
    l->tile_h = rows == 0 || rows > l->height ? l->height : rows;
  }
  l->spp_in_block = l->planar == PLANARCONFIG_SEPARATE ? 1 : l->spp;
  l->planes = l->planar == PLANARCONFIG_SEPARATE ? l->spp : 1;
  if ((double)l->tile_w * l->tile_h * l->spp_in_block > (double)MAX_ELEMENTS)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: %s of %ux%u pixels × %u samples are too large",
                     f->path, l->tiled ? "tiles" : "strips", l->tile_w, l->tile_h,
                     l->spp_in_block);
  l->row_bytes = (uint64_t)l->tile_w * l->spp_in_block * (l->bits / 8);
  /* libtiff's idea of a row must be ours: it differs for subsampled (YCbCr) data. */
  uint64_t lib_row = l->tiled ? TIFFTileRowSize64(t) : TIFFScanlineSize64(t);
  if (lib_row != l->row_bytes)
    return msci_fail(MSC_E_UNSUPPORTED,
                     "%s: rows of %llu bytes where %ux%u samples of %u bits make %llu "
                     "(subsampled or packed data is not supported)",
                     f->path, (unsigned long long)lib_row, l->tile_w, l->spp_in_block, l->bits,
                     (unsigned long long)l->row_bytes);
  l->n_blocks = l->tiled ? TIFFNumberOfTiles(t) : TIFFNumberOfStrips(t);
  return MSC_OK;
}

/* ---- georeferencing ----------------------------------------------------------------- */

/*
 * libtiff 4.5 registers neither the GeoTIFF tags nor GDAL_NODATA. Two ways to read them:
 * register them with a tag extender (TIFFSetTagExtender, process-wide, must chain the
 * previous extender, must be installed once and before any file is opened, and clashes
 * with a host program's own definitions, e.g. libgeotiff's XTIFFInitialize, which
 * declares them with a 16-bit count), or take them as the anonymous fields libtiff
 * creates for unknown tags (type from the file, 32-bit count, "unknown field" warning).
 * We do the latter, but ask libtiff how this file's field is declared
 * (TIFFFindField: silent when absent, unlike TIFFFieldWithTag) and pass the count type
 * that declaration expects, so the same code works whether the tags are anonymous or
 * were registered by someone else in the process. Nothing global is installed.
 */
typedef struct tag_values {
  uint32_t count;
  const void *data;
  TIFFDataType type;
} tag_values;

static int get_tag(TIFF *t, uint32_t tag, tag_values *v) {
  memset(v, 0, sizeof *v);
  const TIFFField *fld = TIFFFindField(t, tag, TIFF_ANY);
  if (!fld) return 0;
  v->type = TIFFFieldDataType(fld);
  void *p = NULL;
  if (TIFFFieldPassCount(fld)) {
    if (TIFFFieldReadCount(fld) == TIFF_VARIABLE2) {
      uint32_t n = 0;
      if (!TIFFGetField(t, tag, &n, &p)) return 0;
      v->count = n;
    } else {
      uint16_t n = 0;
      if (!TIFFGetField(t, tag, &n, &p)) return 0;
      v->count = n;
    }
  } else if (v->type == TIFF_ASCII) {
    char *s = NULL;
    if (!TIFFGetField(t, tag, &s) || !s) return 0;
    p = s;
    v->count = (uint32_t)strlen(s) + 1;
  } else if (TIFFFieldReadCount(fld) > 1) {
    if (!TIFFGetField(t, tag, &p)) return 0;
    v->count = (uint32_t)TIFFFieldReadCount(fld);
  } else {
    return 0; /* a single value: not a georeferencing tag as we know it */
  }
  v->data = p;
  return p != NULL && v->count > 0;
}

static void ignore_tag(const tiff_file *f, uint32_t tag, const char *why) {
  msci_log(MSC_LOG_WARNING, "%s: GeoTIFF tag %u ignored: %s", f->path, tag, why);
}

/* Up to n values of a numeric tag as doubles: 1, or 0 for a type we do not convert. */
static int as_doubles(const tag_values *v, double *dst, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) switch (v->type) {
    case TIFF_DOUBLE: dst[i] = ((const double *)v->data)[i]; break;
    case TIFF_FLOAT: dst[i] = ((const float *)v->data)[i]; break;
    default: return 0;
    }
  return 1;
}

/* A NUL-terminated copy of an ASCII tag's count bytes (or NULL if out of memory). */
static char *ascii_copy(const tag_values *v) {
  const char *s = v->data;
  size_t n = 0;
  while (n < v->count && s[n]) n++;
  char *c = malloc(n + 1);
  if (c) {
    memcpy(c, s, n);
    c[n] = '\0';
  }
  return c;
}

static msc_status read_georef(const tiff_file *f, msci_raster_info *info) {
  TIFF *t = f->t;
  tag_values v;
  if (get_tag(t, TAG_PIXEL_SCALE, &v)) {
    if (v.count < 2 || !as_doubles(&v, info->pixel_scale, v.count < 3 ? v.count : 3))
      ignore_tag(f, TAG_PIXEL_SCALE, "not 3 doubles");
    else
      info->has_pixel_scale = 1;
  }
  if (get_tag(t, TAG_TIEPOINT, &v)) {
    uint32_t n = v.count / 6;
    if (n == 0 || (v.type != TIFF_DOUBLE && v.type != TIFF_FLOAT)) {
      ignore_tag(f, TAG_TIEPOINT, "not 6 × K doubles");
    } else {
      if (v.count % 6) ignore_tag(f, TAG_TIEPOINT, "a trailing partial tie point");
      info->tiepoints = malloc((size_t)n * 6 * sizeof(double));
      if (!info->tiepoints) return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: tie points", f->path);
      as_doubles(&v, info->tiepoints, n * 6);
      info->n_tiepoints = n;
      info->has_tiepoints = 1;
    }
  }
  if (get_tag(t, TAG_TRANSFORMATION, &v)) {
    if (v.count < 16 || !as_doubles(&v, info->transformation, 16))
      ignore_tag(f, TAG_TRANSFORMATION, "not 16 doubles");
    else
      info->has_transformation = 1;
  }
  if (get_tag(t, TAG_GEOKEY_DIRECTORY, &v)) {
    const uint16_t *k = v.data;
    if (v.type != TIFF_SHORT || v.count < 4 || (uint64_t)4 * (k[3] + 1u) > v.count) {
      ignore_tag(f, TAG_GEOKEY_DIRECTORY, "not a key directory (uint16, 4 × (keys + 1))");
    } else {
      info->geokeys = malloc((size_t)v.count * sizeof(uint16_t));
      if (!info->geokeys) return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: GeoKeys", f->path);
      memcpy(info->geokeys, k, (size_t)v.count * sizeof(uint16_t));
      info->n_geokeys = v.count;
      info->has_geokeys = 1;
    }
  }
  if (get_tag(t, TAG_GEO_DOUBLES, &v)) {
    if (v.type != TIFF_DOUBLE && v.type != TIFF_FLOAT) {
      ignore_tag(f, TAG_GEO_DOUBLES, "not doubles");
    } else {
      info->geo_doubles = malloc((size_t)v.count * sizeof(double));
      if (!info->geo_doubles)
        return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: GeoDoubleParams", f->path);
      as_doubles(&v, info->geo_doubles, v.count);
      info->n_geo_doubles = v.count;
      info->has_geo_doubles = 1;
    }
  }
  if (get_tag(t, TAG_GEO_ASCII, &v)) {
    if (v.type != TIFF_ASCII) {
      ignore_tag(f, TAG_GEO_ASCII, "not ASCII");
    } else {
      if (!(info->geo_ascii = ascii_copy(&v)))
        return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: GeoAsciiParams", f->path);
      info->has_geo_ascii = 1;
    }
  }
  if (get_tag(t, TAG_GDAL_NODATA, &v)) {
    if (v.type != TIFF_ASCII) {
      ignore_tag(f, TAG_GDAL_NODATA, "not ASCII");
    } else {
      if (!(info->nodata_text = ascii_copy(&v)))
        return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: GDAL_NODATA", f->path);
      char *end = NULL;
      double d = strtod(info->nodata_text, &end);
      while (end && (*end == ' ' || *end == '\t')) end++;
      info->nodata = end == info->nodata_text || (end && *end) ? NAN : d;
      info->has_nodata = 1;
    }
  }
  return MSC_OK;
}

static void fill_info(const layout *l, msci_raster_info *info) {
  info->width = l->width;
  info->height = l->height;
  info->bands = l->spp;
  info->bits = l->bits;
  info->sample_format = l->fmt;
  info->tiled = l->tiled;
  info->block_width = l->tile_w;
  info->block_height = l->tile_h;
  info->compression = l->compression;
  info->predictor = l->predictor;
  info->planar = l->planar;
}

void msci_raster_info_free(msci_raster_info *info) {
  if (!info) return;
  free(info->tiepoints);
  free(info->geokeys);
  free(info->geo_doubles);
  free(info->geo_ascii);
  free(info->nodata_text);
  memset(info, 0, sizeof *info);
}

int msci_raster_info_geokey(const msci_raster_info *info, uint16_t key, uint16_t *value) {
  if (!info || !info->has_geokeys || info->n_geokeys < 4) return 0;
  const uint16_t *k = info->geokeys;
  int64_t n = k[3];
  for (int64_t i = 1; i <= n && 4 * i + 3 < info->n_geokeys; ++i) {
    const uint16_t *e = k + 4 * i; /* KeyID, TIFFTagLocation, Count, Value_Offset */
    if (e[0] == key) {
      if (e[1] != 0 || e[2] != 1) return 0;
      if (value) *value = e[3];
      return 1;
    }
  }
  return 0;
}

int32_t msci_raster_info_epsg(const msci_raster_info *info) {
  uint16_t v = 0;
  if (msci_raster_info_geokey(info, 3072, &v) && v != 0 && v != 32767) return v;
  if (msci_raster_info_geokey(info, 2048, &v) && v != 0 && v != 32767) return v;
  return 0;
}

msc_status msci_raster_info_read(const char *path, msci_raster_info *out) {
  if (!path || !out) return msci_fail(MSC_E_INVALID_ARGUMENT, "raster info: NULL argument");
  memset(out, 0, sizeof *out);
  tiff_file f;
  MSCI_TRY(open_tiff(path, &f));
  layout l;
  msc_status st = read_layout(&f, &l);
  if (st == MSC_OK) {
    fill_info(&l, out);
    st = read_georef(&f, out);
  }
  close_tiff(&f);
  if (st != MSC_OK) msci_raster_info_free(out);
  return st;
}

/* ---- pixels ------------------------------------------------------------------------- */

static uint32_t block_index(TIFF *t, const layout *l, uint32_t bx, uint32_t by, uint32_t p) {
  return l->tiled ? TIFFComputeTile(t, bx * l->tile_w, by * l->tile_h, 0, (uint16_t)p)
                  : TIFFComputeStrip(t, by * l->tile_h, (uint16_t)p);
}

/* Rows of block row by that the window [y0, y1) needs decoded, from the block's top. */
static uint32_t rows_needed(const layout *l, uint32_t by, uint32_t y1) {
  uint64_t top = (uint64_t)by * l->tile_h, end = top + l->tile_h;
  if (end > y1) end = y1;
  return (uint32_t)(end - top);
}

/* Checks, before anything is allocated, that every block the window needs exists and
 * lies inside the file, and that the decoded size is plausible for the compressed
 * bytes it comes from. */
static msc_status check_blocks(const tiff_file *f, const layout *l, uint32_t x0, uint32_t y0,
                               uint32_t w, uint32_t h) {
  const char *kind = l->tiled ? "tile" : "strip";
  double raw = 0, decoded = 0;
  for (uint32_t p = 0; p < l->planes; ++p)
    for (uint32_t by = y0 / l->tile_h; by <= (y0 + h - 1) / l->tile_h; ++by)
      for (uint32_t bx = x0 / l->tile_w; bx <= (x0 + w - 1) / l->tile_w; ++bx) {
        uint32_t idx = block_index(f->t, l, bx, by, p);
        if (idx >= l->n_blocks)
          return msci_fail(MSC_E_BAD_FORMAT, "%s: %s %u is missing (the file lists %u)",
                           f->path, kind, idx, l->n_blocks);
        int err = 0;
        uint64_t off = TIFFGetStrileOffsetWithErr(f->t, idx, &err);
        uint64_t cnt = err ? 0 : TIFFGetStrileByteCountWithErr(f->t, idx, &err);
        if (err) return tiff_fail(f, MSC_E_BAD_FORMAT, "unreadable block offsets");
        if (cnt == 0 || off == 0)
          return msci_fail(MSC_E_BAD_FORMAT,
                           "%s: %s %u is missing or empty (offset %llu, %llu bytes)", f->path,
                           kind, idx, (unsigned long long)off, (unsigned long long)cnt);
        if (off > f->size || cnt > f->size - off)
          return msci_fail(MSC_E_BAD_FORMAT,
                           "%s: %s %u (bytes %llu to %llu) lies beyond the end of the file "
                           "(%llu bytes): truncated or corrupt",
                           f->path, kind, idx, (unsigned long long)off,
                           (unsigned long long)(off + cnt), (unsigned long long)f->size);
        raw += (double)cnt;
        decoded += (double)rows_needed(l, by, y0 + h) * (double)l->row_bytes;
      }
  if (decoded > raw * MAX_RATIO + MAX_RATIO_SLACK)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: the window would decode %.0f bytes from %.0f compressed bytes: "
                     "corrupt sizes",
                     f->path, decoded, raw);
  return MSC_OK;
}

/* Decodes the blocks the window (x0, y0, w, h) intersects, one at a time, each only down
 * to the last row the window needs, and converts the intersecting part into out
 * (bands × h × w). */
static msc_status read_blocks(tiff_file *f, const layout *l, uint32_t x0, uint32_t y0,
                              uint32_t w, uint32_t h, float *out) {
  const uint32_t by_first = y0 / l->tile_h, by_last = (y0 + h - 1) / l->tile_h;
  const uint32_t bx_first = x0 / l->tile_w, bx_last = (x0 + w - 1) / l->tile_w;
  uint32_t max_rows = 0;
  for (uint32_t by = by_first; by <= by_last; ++by) {
    uint32_t r = rows_needed(l, by, y0 + h);
    if (r > max_rows) max_rows = r;
  }
  uint8_t *buf = malloc((size_t)max_rows * l->row_bytes);
  if (!buf)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: a block buffer of %llu bytes", f->path,
                     (unsigned long long)max_rows * l->row_bytes);
  msc_status st = MSC_OK;
  for (uint32_t p = 0; st == MSC_OK && p < l->planes; ++p)
    for (uint32_t by = by_first; st == MSC_OK && by <= by_last; ++by)
      for (uint32_t bx = bx_first; st == MSC_OK && bx <= bx_last; ++bx) {
        uint32_t idx = block_index(f->t, l, bx, by, p);
        tmsize_t want = (tmsize_t)((uint64_t)rows_needed(l, by, y0 + h) * l->row_bytes);
        /* libtiff can report a corrupt DEFLATE block as fully decoded yet leave its last
         * bytes unwritten (tests/fuzz/corpus/tiff/deflate_pred2_short_strip.tif): cleared
         * first, such bytes read as 0, never as what the buffer held before (the previous
         * block's pixels, or uninitialised memory), so a window reads what the whole
         * image does. */
        memset(buf, 0, (size_t)want);
        tmsize_t got = l->tiled ? TIFFReadEncodedTile(f->t, idx, buf, want)
                                : TIFFReadEncodedStrip(f->t, idx, buf, want);
        if (got != want) {
          char what[160];
          if (got < 0)
            snprintf(what, sizeof what, "cannot decode the %s at (%u, %u)",
                     l->tiled ? "tile" : "strip", bx * l->tile_w, by * l->tile_h);
          else
            snprintf(what, sizeof what, "the %s at (%u, %u) decodes to %lld bytes, not %lld",
                     l->tiled ? "tile" : "strip", bx * l->tile_w, by * l->tile_h,
                     (long long)got, (long long)want);
          st = tiff_fail(f, MSC_E_BAD_FORMAT, what);
          break;
        }
        const uint32_t bx0 = bx * l->tile_w, by0 = by * l->tile_h;
        const uint32_t cx0 = x0 > bx0 ? x0 : bx0;
        const uint32_t cx1 =
            (uint64_t)bx0 + l->tile_w < (uint64_t)x0 + w ? bx0 + l->tile_w : x0 + w;
        const uint32_t cy0 = y0 > by0 ? y0 : by0;
        const uint32_t cy1 = by0 + rows_needed(l, by, y0 + h);
        for (uint32_t y = cy0; y < cy1; ++y) {
          const uint8_t *row = buf + (size_t)(y - by0) * l->row_bytes;
          for (uint32_t s = 0; s < l->spp_in_block; ++s) {
            uint32_t band = l->planar == PLANARCONFIG_SEPARATE ? p : s;
            float *dst = out + ((size_t)band * h + (y - y0)) * w + (cx0 - x0);
            convert_run(row, (size_t)(cx0 - bx0) * l->spp_in_block + s, l->spp_in_block,
                        cx1 - cx0, l->fmt, l->bits, dst);
          }
        }
      }
  free(buf);
  return st;
}

static msc_status read_raster(const char *path, int whole, int64_t x0, int64_t y0, int64_t w,
                              int64_t h, msci_raster *out) {
  if (!path || !out) return msci_fail(MSC_E_INVALID_ARGUMENT, "raster read: NULL argument");
  memset(out, 0, sizeof *out);
  tiff_file f;
  MSCI_TRY(open_tiff(path, &f));
  layout l;
  msc_status st = read_layout(&f, &l);
  if (st == MSC_OK) {
    fill_info(&l, &out->info);
    st = read_georef(&f, &out->info);
  }
  if (st == MSC_OK && whole) {
    x0 = y0 = 0;
    w = l.width;
    h = l.height;
  }
  if (st == MSC_OK && (x0 < 0 || y0 < 0 || w < 1 || h < 1 || x0 >= l.width || y0 >= l.height ||
                       w > (int64_t)l.width - x0 || h > (int64_t)l.height - y0))
    st = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "%s: the window of %lldx%lld pixels at (%lld, %lld) is not inside the "
                   "image of %ux%u pixels",
                   path, (long long)w, (long long)h, (long long)x0, (long long)y0, l.width,
                   l.height);
  /* In double: w·h·spp can pass 2^64. A whole file that large is a corrupt header (or
   * a file to read by windows); a window that large is the caller's to make smaller. */
  if (st == MSC_OK && (double)w * (double)h * l.spp > (double)MAX_ELEMENTS)
    st = msci_fail(whole ? MSC_E_BAD_FORMAT : MSC_E_INVALID_ARGUMENT,
                   "%s: %lldx%lld pixels × %u bands is too large to read at once (at most "
                   "2^31 values)",
                   path, (long long)w, (long long)h, l.spp);
  if (st == MSC_OK)
    st = check_blocks(&f, &l, (uint32_t)x0, (uint32_t)y0, (uint32_t)w, (uint32_t)h);
  if (st == MSC_OK) {
    out->data = malloc((size_t)w * (size_t)h * l.spp * sizeof(float));
    if (!out->data)
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: %lldx%lld×%u floats", path, (long long)w,
                     (long long)h, l.spp);
  }
  if (st == MSC_OK)
    st = read_blocks(&f, &l, (uint32_t)x0, (uint32_t)y0, (uint32_t)w, (uint32_t)h, out->data);
  close_tiff(&f);
  if (st != MSC_OK) {
    msci_raster_free(out);
    return st;
  }
  out->width = w;
  out->height = h;
  out->bands = l.spp;
  out->x0 = x0;
  out->y0 = y0;
  return MSC_OK;
}

msc_status msci_raster_read(const char *path, msci_raster *out) {
  return read_raster(path, 1, 0, 0, 0, 0, out);
}

msc_status msci_raster_read_window(const char *path, int64_t x0, int64_t y0, int64_t w,
                                   int64_t h, msci_raster *out) {
  return read_raster(path, 0, x0, y0, w, h, out);
}

void msci_raster_free(msci_raster *r) {
  if (!r) return;
  free(r->data);
  msci_raster_info_free(&r->info);
  memset(r, 0, sizeof *r);
}

/* Source coordinate of destination index i (align_corners = False). */
static double source_coord(int64_t i, int64_t src, int64_t dst) {
  double c = ((double)i + 0.5) * (double)src / (double)dst - 0.5;
  return c < 0 ? 0 : c;
}

/* Destination columns whose tables live on the stack; wider outputs allocate them. */
#define RESAMPLE_STACK_COLS 512

/* The per-pixel definition, for outputs too wide for the tables when memory is short:
 * the table-driven path below computes exactly these doubles, in this order. */
static void resample_pixels(const float *src, int64_t sh, int64_t sw, int64_t stride,
                            float *dst, int64_t dh, int64_t dw, msci_resample_mode mode) {
  for (int64_t y = 0; y < dh; ++y)
    for (int64_t x = 0; x < dw; ++x) {
      if (mode == MSCI_RESAMPLE_NEAREST) {
        int64_t sy = (int64_t)floor((double)y * (double)sh / (double)dh);
        int64_t sx = (int64_t)floor((double)x * (double)sw / (double)dw);
        dst[y * dw + x] = src[(sy < sh ? sy : sh - 1) * stride + (sx < sw ? sx : sw - 1)];
        continue;
      }
      double fy = source_coord(y, sh, dh), fx = source_coord(x, sw, dw);
      int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
      int64_t y1 = y0 + 1 < sh ? y0 + 1 : y0, x1 = x0 + 1 < sw ? x0 + 1 : x0;
      double wy = fy - (double)y0, wx = fx - (double)x0;
      double top = (1 - wx) * src[y0 * stride + x0] + wx * src[y0 * stride + x1];
      double bottom = (1 - wx) * src[y1 * stride + x0] + wx * src[y1 * stride + x1];
      dst[y * dw + x] = (float)((1 - wy) * top + wy * bottom);
    }
}

/* One source row interpolated across: out[x] = a[x]·row[x0[x]] + b[x]·row[x1[x]], the
 * "top" (or "bottom") double of the per-pixel definition. */
static void resample_row(const float *row, const int32_t *x0, const int32_t *x1,
                         const double *a, const double *b, int64_t dw, double *out) {
#pragma omp simd
  for (int64_t x = 0; x < dw; ++x)
    out[x] = a[x] * (double)row[x0[x]] + b[x] * (double)row[x1[x]];
}

/* Separable and table-driven: the column indices and weights are computed once per call
 * (not per pixel, with two divisions each), each source row is interpolated across once
 * and kept while consecutive output rows use it, and the output rows blend two of them.
 * Every value is the same double expression as resample_pixels, evaluated in the same
 * order (the library is compiled without floating-point contraction), so the results
 * are bit for bit those of the per-pixel definition. */
void msci_resample_strided(const float *src, int64_t sh, int64_t sw, int64_t stride, float *dst,
                           int64_t dh, int64_t dw, msci_resample_mode mode) {
  if (sh < 1 || sw < 1 || dh < 1 || dw < 1) return;
  /* x0, x1 (int32) and a, b, two rows (double) per destination column. */
  const size_t per_col = 2 * sizeof(int32_t) + 4 * sizeof(double);
  _Alignas(
      64) unsigned char stack[RESAMPLE_STACK_COLS * (2 * sizeof(int32_t) + 4 * sizeof(double))];
  unsigned char *mem = stack;
  if (dw > RESAMPLE_STACK_COLS || sw > INT32_MAX) {
    mem = sw > INT32_MAX || (uint64_t)dw > SIZE_MAX / per_col ? NULL
                                                              : malloc((size_t)dw * per_col);
    if (!mem) {
      resample_pixels(src, sh, sw, stride, dst, dh, dw, mode);
      return;
    }
  }
  double *a = (double *)mem, *b = a + dw, *row_a = b + dw, *row_b = row_a + dw;
  int32_t *x0 = (int32_t *)(row_b + dw), *x1 = x0 + dw;
  if (mode == MSCI_RESAMPLE_NEAREST) {
    for (int64_t x = 0; x < dw; ++x) {
      int64_t sx = (int64_t)floor((double)x * (double)sw / (double)dw);
      x0[x] = (int32_t)(sx < sw ? sx : sw - 1);
    }
    for (int64_t y = 0; y < dh; ++y) {
      int64_t sy = (int64_t)floor((double)y * (double)sh / (double)dh);
      const float *row = src + (sy < sh ? sy : sh - 1) * stride;
      float *out = dst + y * dw;
      for (int64_t x = 0; x < dw; ++x) out[x] = row[x0[x]];
    }
  } else {
    for (int64_t x = 0; x < dw; ++x) {
      double fx = source_coord(x, sw, dw);
      int64_t i0 = (int64_t)fx;
      double wx = fx - (double)i0;
      x0[x] = (int32_t)i0;
      x1[x] = (int32_t)(i0 + 1 < sw ? i0 + 1 : i0);
      a[x] = 1 - wx;
      b[x] = wx;
    }
    /* top holds source row top_y interpolated across, bottom row bottom_y (-1: none). */
    double *top = row_a, *bottom = row_b;
    int64_t top_y = -1, bottom_y = -1;
    for (int64_t y = 0; y < dh; ++y) {
      double fy = source_coord(y, sh, dh);
      int64_t y0 = (int64_t)fy, y1 = y0 + 1 < sh ? y0 + 1 : y0;
      double wy = fy - (double)y0, wt = 1 - wy;
      if (top_y != y0) {
        if (bottom_y == y0) { /* moving down by one row: the old bottom is the new top */
          double *t = top;
          top = bottom;
          bottom = t;
          top_y = y0;
          bottom_y = -1;
        } else {
          resample_row(src + y0 * stride, x0, x1, a, b, dw, top);
          top_y = y0;
        }
      }
      const double *bot = top;
      if (y1 != y0) {
        if (bottom_y != y1) {
          resample_row(src + y1 * stride, x0, x1, a, b, dw, bottom);
          bottom_y = y1;
        }
        bot = bottom;
      }
      float *out = dst + y * dw;
#pragma omp simd
      for (int64_t x = 0; x < dw; ++x) out[x] = (float)(wt * top[x] + wy * bot[x]);
    }
  }
  if (mem != stack) free(mem);
}

void msci_resample(const float *src, int64_t sh, int64_t sw, float *dst, int64_t dh, int64_t dw,
                   msci_resample_mode mode) {
  msci_resample_strided(src, sh, sw, sw, dst, dh, dw, mode);
}
