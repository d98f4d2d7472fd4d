/*
 * raster.h — reading GeoTIFF rasters into float arrays (libtiff) and resampling them.
 *
 * Every band is returned as float32, band-major (bands × height × width), whatever the
 * file holds: strips or tiles (partial edge tiles included), chunky or planar samples,
 * any compression libtiff decodes, unsigned/signed integers of 8, 16 or 32 bits and
 * IEEE floats of 32 or 64 bits. libtiff's own messages go to the log callback (warnings
 * at debug level) or into the error message, never to stderr.
 */
#ifndef MOSAIC_LIB_RASTER_H
#define MOSAIC_LIB_RASTER_H

#include <stdint.h>

#include "mosaic/mosaic.h"

typedef struct msci_raster {
  int64_t width, height, bands;
  float *data; /* bands × height × width, owned */
} msci_raster;

/* Reads the first image of a TIFF file. Errors name the file: MSC_E_IO (cannot open),
 * MSC_E_BAD_FORMAT (corrupt, truncated, inconsistent tags), MSC_E_UNSUPPORTED (a
 * sample format this reader does not convert), MSC_E_OUT_OF_MEMORY. */
msc_status msci_raster_read(const char *path, msci_raster *out);
void msci_raster_free(msci_raster *r);

typedef enum { MSCI_RESAMPLE_NEAREST = 0, MSCI_RESAMPLE_BILINEAR = 1 } msci_resample_mode;

/* Resamples one band of sh × sw pixels to dh × dw. Pixel centres are aligned as in
 * PyTorch's interpolate(align_corners=False), so a 60 px band and its 120 px
 * neighbours cover the same ground. */
void msci_resample(const float *src, int64_t sh, int64_t sw, float *dst, int64_t dh,
                   int64_t dw, msci_resample_mode mode);

#endif
