/*
 * scene.h — msc_scene, whole-scene mapping (docs/scenes.md): the opened scene shared by
 * scene.c (open: rasters checked against the model and each other, the tile grid) and
 * scene_run.c (msc_scene_write: tiled inference, blending, GeoTIFF output).
 * Layer: model (lib/model/README.md).
 */
#ifndef MOSAIC_LIB_SCENE_H
#define MOSAIC_LIB_SCENE_H

#include <stdint.h>

#include "mosaic/mosaic.h"
#include "common/internal.h"
#include "data/geotiff_write.h"
#include "data/raster.h"

typedef struct msci_scene_mod {
  char *path;            /* owned; NULL for an absent modality */
  int32_t absent;        /* no raster (msc_scene_open got a NULL path): not read, not batched */
  msci_raster_info info; /* layout and georeferencing, owned */
  int64_t factor;        /* scene pixels per raster pixel (1: the scene's grid) */
  int64_t bands;
  float fill[MSCI_MAX_BANDS]; /* the model's mean of each band: missing pixels get it */
  float shift; /* subtracted from every value read (S2 baseline ≥ 04.00: 1000), or 0 */
} msci_scene_mod;

struct msc_scene {
  msc_model *model; /* borrowed */
  int32_t n;
  msci_scene_mod mod[MSCI_MAX_MODALITIES];
  int32_t grid;          /* the modality whose raster defines the grid (a present one) */
  int64_t width, height; /* the scene's grid */
  int64_t P, stride, batch;
  int32_t nearest;  /* scene.resample = nearest */
  int32_t mean;     /* scene.blend = mean */
  int64_t nx, ny;   /* tiles per row and per column */
  int64_t *xs, *ys; /* tile origins, owned */
  int32_t has_georef;
  msci_georef georef;  /* the output grid (that of the grid raster) */
  int32_t has_mask;    /* scene.mask: a cloud / no-data mask (nonzero = masked) */
  msci_scene_mod mask; /* its raster (one band; factor as a modality's) */
  double max_masked;   /* scene.max_masked: a tile with a larger masked share is skipped */
  int32_t overviews;   /* scene.overviews */
  int32_t half;        /* scene.embedding_type = float16 */
  int32_t harmonize;   /* scene.harmonize */
};

/* Origin of tile k of n along an axis of `size` pixels: k·stride, the last one at
 * size − P. */
int64_t msci_scene_tile_origin(int64_t k, int64_t n, int64_t size, int64_t P, int64_t stride);

/* Number of tiles along an axis of `size` ≥ P pixels. */
int64_t msci_scene_tile_count(int64_t size, int64_t P, int64_t stride);

/* Centre-crop ownership along an axis: tile k of the origins pos[0..n) provides the
 * pixels [*lo, *hi), those whose centre is nearest to its centre (ties: the lower k). */
void msci_scene_owned(const int64_t *pos, int64_t n, int64_t k, int64_t P, int64_t size,
                      int64_t *lo, int64_t *hi);

#endif
