/*
 * geotiff_write.h — writing tiled, compressed GeoTIFF rasters (libtiff), row by row, with
 * the georeferencing of an input raster carried over to the output's grid.
 * Layer: data (lib/data/README.md says what it owns and may include).
 *
 * The writer takes float32 rows, band-major (bands × rows × width), and stores them as
 * uint8, uint16, int16, int32, float16 or float32 samples: integers are rounded to nearest and
 * clamped to the type's range; a NaN becomes the nodata value (0 without one). The file
 * is tiled (tile × tile pixels, partial edge tiles padded with nodata), compressed
 * (DEFLATE, ZSTD when libtiff has it, or none) and pixel-interleaved (PlanarConfig 1)
 * or planar (2). Rows are written as they come: memory is one row of tiles (bands ×
 * tile × width floats and one tile), never the whole image, so a scene of any height
 * streams through it. Files over 2 GiB of samples are written as BigTIFF.
 *
 * Tags: GDAL_NODATA (42113) as text ("255", "nan"); a colour table (PhotometricInterp-
 * retation palette) for a one-band uint8 class map; GDAL_METADATA (42112), GDAL's XML of
 * metadata items: a DESCRIPTION item per band (gdalinfo prints it as the band's
 * "Description") and dataset items CLASS_<i>=<name> for the class names of a class map.
 * Georeferencing (msci_georef_window): GeoKeyDirectory, GeoDoubleParams and
 * GeoAsciiParams copied as they are; ModelTiepoint + ModelPixelScale or
 * ModelTransformation moved to the output's grid. The GeoTIFF and GDAL tags are
 * registered on the file's own handle (TIFFMergeFieldInfo), never process-wide.
 *
 * Layout: a Cloud-Optimised GeoTIFF as GDAL's COG driver writes it (docs/scenes.md): the
 * header, GDAL's structural metadata ("ghost area": LAYOUT=IFDS_BEFORE_DATA,
 * BLOCK_ORDER=ROW_MAJOR, BLOCK_LEADER=SIZE_AS_UINT4, BLOCK_TRAILER=LAST_4_BYTES_REPEATED),
 * every IFD (the image's, then the overviews' from largest to smallest) with their tile
 * offset and byte count arrays, then the tiles: the smallest overview's first, the
 * image's last, each level's in row-major order (plane after plane when planar), each
 * tile between a 4-byte little-endian size and a repeat of its last 4 bytes. Without
 * overviews the single IFD still comes first.
 *
 * Atomic, with two temporary files next to path (path + ".tmpXXXXXX"): the levels, as
 * they are computed (the image streamed in, the overviews appended), and the final
 * layout, whose IFDs are written by msci_geotiff_open. msci_geotiff_close copies the
 * compressed tiles from the first into the second without decoding them, flushes it to
 * disk, renames it over path and removes the first; an error or msci_geotiff_abort
 * removes both. A half-written file never has the final name.
 * libtiff's messages go to per-file handlers (never stderr); the first error is in ours.
 * Thread-safe: one writer per thread, no global state.
 */
#ifndef MOSAIC_LIB_GEOTIFF_WRITE_H
#define MOSAIC_LIB_GEOTIFF_WRITE_H

#include <stdint.h>

#include "mosaic/mosaic.h"
#include "data/raster.h"

/* The georeferencing of an output grid: output pixel (i, j) covers the input's pixels
 * from (x0 + r·i, y0 + r·j) to (x0 + r·(i+1), y0 + r·(j+1)), r = ratio (output pixel
 * size / input pixel size; 1 for a window at the input's resolution). */
typedef struct msci_georef {
  int32_t has_scale;
  double scale[3]; /* ModelPixelScale */
  int32_t has_tiepoint;
  double tiepoint[6]; /* ModelTiepoint: I, J, K, X, Y, Z */
  int32_t has_transformation;
  double transformation[16]; /* ModelTransformation, row-major */
} msci_georef;

/* Moves the input's georeferencing (in) to the grid of a window at (x0, y0) of the input
 * with output pixels `ratio` input pixels wide (ratio > 0). A tie point + pixel scale:
 * the tie point's raster coordinates are mapped to the output's, the scale multiplied
 * by ratio; a ModelTransformation is composed with the grid's affine map. The raster
 * type (GTRasterTypeGeoKey 1025: PixelIsArea, the default, or PixelIsPoint, where
 * integer raster coordinates are pixel centres) is respected. An input without
 * georeferencing gives *out all zero. Refused (MSC_E_UNSUPPORTED, the message says why):
 * several tie points (ground control points, which a grid change would need to
 * re-fit), a tie point without a pixel scale, a transformation together with tie points.
 * A rotated or sheared transformation is fine: it is composed exactly. */
msc_status msci_georef_window(const msci_raster_info *in, double x0, double y0, double ratio,
                              msci_georef *out);

/* What to write. Pointers are borrowed until msci_geotiff_open returns (copied). */
typedef struct msci_geotiff_spec {
  int64_t width, height, bands;
  int32_t sample_format; /* TIFF SampleFormat: 1 uint (8, 16 bits), 2 int (16, 32), 3 float
                          * (32, or 16: IEEE half precision, rounded to nearest even) */
  int32_t bits;
  int32_t planar;      /* 0 or 1: pixel-interleaved; 2: planar */
  int64_t tile;        /* tile size, a multiple of 16 (0: 256) */
  int32_t compression; /* TIFF Compression: 1 none, 8 DEFLATE, 50000 ZSTD (0: DEFLATE) */
  int32_t has_nodata;
  double nodata;
  /* Georeferencing: NULL for none; else the input's info (geokeys, doubles, ascii are
   * copied) and the output grid's tie point/scale/transformation from msci_georef_window. */
  const msci_raster_info *geo;
  const msci_georef *grid;
  const uint8_t
      *palette; /* n_palette RGB triples (index = pixel value), or NULL; uint8 1 band */
  int64_t n_palette;
  const char *const *band_names;  /* bands descriptions, or NULL */
  const char *const *class_names; /* n_classes class names (CLASS_<i> items), or NULL */
  int64_t n_classes;
  /* Reduced-resolution levels computed by msci_geotiff_close (GDAL reads them as
   * overviews): 0 none; MSCI_OVERVIEW_NEAREST (the upper-left pixel of every
   * 2 × 2 block: class maps) or MSCI_OVERVIEW_AVERAGE (the mean of the block's valid
   * samples, nodata where none is). Each level halves the previous one (sizes rounded
   * up) until it fits one tile. */
  int32_t overviews;
} msci_geotiff_spec;

#define MSCI_OVERVIEW_NEAREST 1
#define MSCI_OVERVIEW_AVERAGE 2

typedef struct msci_geotiff msci_geotiff;

/* Creates the temporary file and writes the tags. Refuses (MSC_E_INVALID_ARGUMENT) a bad
 * size, sample type, tile or palette; MSC_E_UNSUPPORTED a compression libtiff lacks;
 * MSC_E_IO a file that cannot be created. */
msc_status msci_geotiff_open(const char *path, const msci_geotiff_spec *spec,
                             msci_geotiff **out);

/* Appends n rows: bands × n × width floats, band-major. More rows than the height is
 * MSC_E_INVALID_ARGUMENT. On any error the writer is aborted (its file removed): only
 * msci_geotiff_abort may follow. */
msc_status msci_geotiff_write_rows(msci_geotiff *g, const float *rows, int64_t n);

/* Finishes the file and renames it to its final path; every row must have been written
 * (MSC_E_INVALID_ARGUMENT otherwise, the files removed). With spec.overviews, the levels
 * are computed first, each from the previous one re-read from the levels' temporary file
 * one row of tiles at a time (memory: two rows of tiles), as further IFDs (NewSubfileType
 * 1, reduced image): GDAL lists them under "Overviews". Then every level's compressed
 * tiles are copied into the final layout (memory: one compressed tile). Frees g in every
 * case. */
msc_status msci_geotiff_close(msci_geotiff *g);

/* Removes the temporary file and frees g; NULL is accepted. */
void msci_geotiff_abort(msci_geotiff *g);

/* The whole image at once: open, write_rows(data, height), close. */
msc_status msci_geotiff_write(const char *path, const msci_geotiff_spec *spec,
                              const float *data);

/* Registers the GeoTIFF tags (33550, 33922, 34264, 34735-34737) and GDAL's (42112,
 * 42113) on one libtiff handle opened for writing, so TIFFSetField accepts them (counted
 * arrays: an int count, then the values); 1 on success. */
struct tiff;
int msci_geotiff_register_tags(struct tiff *t);

/* IEEE half precision: float to its bits (rounded to nearest even, overflow to ±inf,
 * NaN kept) and back. */
uint16_t msci_half_from_float(float f);
float msci_half_to_float(uint16_t h);

/* 1 if this libtiff encodes ZSTD (COMPRESSION_ZSTD, 50000). */
int msci_geotiff_has_zstd(void);

#endif
