/*
 * raster.h — reading GeoTIFF rasters into float arrays (libtiff) and resampling them.
 * Layer: data (lib/data/README.md says what it owns and may include).
 *
 * Every band is returned as float32, band-major (bands × height × width), whatever the
 * file holds: strips or tiles (partial edge tiles included), chunky or planar samples,
 * any compression libtiff decodes (none, LZW, DEFLATE, with or without a horizontal (2)
 * or floating-point (3) predictor, ...), unsigned/signed integers of 8, 16 or 32 bits and
 * IEEE floats of 32 or 64 bits. Only the first image (IFD) of a file is read.
 *
 * Windows. msci_raster_read_window decodes only the strips or tiles that intersect the
 * window, one block at a time (a strip or tile is decoded only down to the last row the
 * window needs), so memory is the window plus one block, never the whole file;
 * msci_raster_read is the window (0, 0, width, height).
 *
 * Georeferencing. The GeoTIFF tags ModelPixelScale (33550), ModelTiepoint (33922),
 * ModelTransformation (34264), GeoKeyDirectory (34735), GeoDoubleParams (34736),
 * GeoAsciiParams (34737) and GDAL's nodata (42113) are copied, when present, into
 * msci_raster_info, so that outputs can carry them. They are read as libtiff sees them
 * (anonymous fields, or fields some other code registered), not through a tag extender:
 * nothing process-wide is installed. A malformed georeferencing tag (wrong type or
 * count) is left out with a warning in the log; it never stops the pixels being read.
 *
 * Errors name the file: MSC_E_IO (cannot open, not a regular file), MSC_E_BAD_FORMAT
 * (not a TIFF, corrupt, truncated, inconsistent tags, a block that decodes to fewer
 * bytes than its size, a block lying past the end of the file), MSC_E_UNSUPPORTED (a
 * sample format or a layout this reader does not convert: 1/4/12-bit samples, complex
 * numbers, subsampled YCbCr), MSC_E_INVALID_ARGUMENT (a window outside the image, or
 * of more than 2^31 values), MSC_E_OUT_OF_MEMORY. Sizes read from the file are checked before anything is
 * allocated: at most 2^31 values in the output or in one block, and a window whose
 * decoded size exceeds 65536 times the compressed bytes it is decoded from (plus
 * 64 MiB) is refused as corrupt, so a tiny hostile file cannot claim gigabytes.
 *
 * libtiff's messages go to per-file handlers (libtiff ≥ 4.5): warnings (e.g. "unknown
 * field with tag 33550", routine for GeoTIFF) and errors go to the log callback at debug
 * level, the first error also into the error message; nothing reaches stderr and the
 * host program's own libtiff handlers are left alone. Files are read without memory
 * mapping, so a file truncated while it is read gives an error, not SIGBUS.
 * All functions are thread-safe (no global state).
 */
#ifndef MOSAIC_LIB_RASTER_H
#define MOSAIC_LIB_RASTER_H

#include <stdint.h>

#include "mosaic/mosaic.h"

/* The layout of a file's first image and its georeferencing. Pointers are owned
 * (msci_raster_info_free); a has_* flag of 0 leaves its members zero/NULL. */
typedef struct msci_raster_info {
  int64_t width, height, bands;      /* bands = SamplesPerPixel */
  int32_t bits;                      /* BitsPerSample: 8, 16, 32, 64 */
  int32_t sample_format;             /* TIFF SampleFormat: 1 uint, 2 int, 3 IEEE float */
  int32_t tiled;                     /* 1: tiles, 0: strips */
  int64_t block_width, block_height; /* tile size, or width × RowsPerStrip */
  int32_t compression;               /* TIFF Compression: 1 none, 5 LZW, 8 DEFLATE, ... */
  int32_t predictor;                 /* 1 none, 2 horizontal, 3 floating point */
  int32_t planar;                    /* TIFF PlanarConfig: 1 chunky, 2 separate planes */

  int32_t has_pixel_scale;
  double pixel_scale[3]; /* ScaleX, ScaleY, ScaleZ (33550) */
  int32_t has_tiepoints;
  int64_t n_tiepoints; /* number of tie points: 6 doubles each */
  double *tiepoints;   /* I, J, K, X, Y, Z per point (33922) */
  int32_t has_transformation;
  double transformation[16]; /* 4 × 4 row-major model transformation (34264) */
  int32_t has_geokeys;
  int64_t n_geokeys; /* number of uint16 values: 4 × (NumberOfKeys + 1) */
  uint16_t *geokeys; /* the raw GeoKeyDirectory (34735), header included */
  int32_t has_geo_doubles;
  int64_t n_geo_doubles;
  double *geo_doubles; /* GeoDoubleParams (34736) */
  int32_t has_geo_ascii;
  char *geo_ascii; /* GeoAsciiParams (34737), NUL-terminated, '|' kept */
  int32_t has_nodata;
  char *nodata_text; /* GDAL_NODATA (42113) as stored, e.g. "0", "nan" */
  double nodata;     /* nodata_text parsed (strtod; NaN if unparsable) */
} msci_raster_info;

typedef struct msci_raster {
  int64_t width, height, bands;
  float *data;           /* bands × height × width, owned */
  int64_t x0, y0;        /* where the window starts in the file (0, 0 for a whole read) */
  msci_raster_info info; /* the whole file's layout and georeferencing, owned: for a
                            window, the file's pixel (x0 + x, y0 + y) is (x, y) here */
} msci_raster;

/* Reads the layout and georeferencing of the first image without decoding pixels.
 * *out is zeroed first, so msci_raster_info_free is safe after an error too. */
msc_status msci_raster_info_read(const char *path, msci_raster_info *out);
void msci_raster_info_free(msci_raster_info *info);

/* The value of a GeoKey held in the directory itself (TIFFTagLocation 0, count 1):
 * 1 and *value set, or 0 if the key is absent or stored elsewhere. */
int msci_raster_info_geokey(const msci_raster_info *info, uint16_t key, uint16_t *value);

/* The EPSG code of the coordinate system: ProjectedCSTypeGeoKey (3072), else
 * GeographicTypeGeoKey (2048); 0 if neither is set or it is user-defined (32767). */
int32_t msci_raster_info_epsg(const msci_raster_info *info);

/* Reads the first image of a TIFF file, all bands, with its info. *out is zeroed
 * first (msci_raster_free is safe after an error). */
msc_status msci_raster_read(const char *path, msci_raster *out);

/* Reads the window of w × h pixels at (x0, y0) of the first image, all bands, decoding
 * only the strips/tiles it intersects. A window not inside the image (negative origin,
 * w or h < 1, or beyond the right/bottom edge) is MSC_E_INVALID_ARGUMENT naming the
 * file, the window and the image size. */
msc_status msci_raster_read_window(const char *path, int64_t x0, int64_t y0, int64_t w,
                                   int64_t h, msci_raster *out);
void msci_raster_free(msci_raster *r);

typedef enum { MSCI_RESAMPLE_NEAREST = 0, MSCI_RESAMPLE_BILINEAR = 1 } msci_resample_mode;

/* Resamples one band of sh × sw pixels to dh × dw. Pixel centres are aligned as in
 * PyTorch's interpolate(align_corners=False), so a 60 px band and its 120 px
 * neighbours cover the same ground. */
void msci_resample(const float *src, int64_t sh, int64_t sw, float *dst, int64_t dh, int64_t dw,
                   msci_resample_mode mode);

/* msci_resample of the sh × sw window whose rows start stride floats apart (a crop of a
 * larger band, read in place). dst (dh × dw, contiguous) must not overlap the window.
 * Allocates nothing for dw <= 512; wider outputs allocate their column tables (and fall
 * back to a per-pixel loop, same results, when that fails). */
void msci_resample_strided(const float *src, int64_t sh, int64_t sw, int64_t stride, float *dst,
                           int64_t dh, int64_t dw, msci_resample_mode mode);

#endif
