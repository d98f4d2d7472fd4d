/*
 * synth.h — the generators behind msc_synth_write (include/mosaic/mosaic.h), one file a
 * layout: lib/data/synth.c (BigEarthNet v2, and the public entry point),
 * lib/data/synth_pastis.c (PASTIS) and lib/data/synth_floods.c (Sen1Floods11). Layer: data (lib/data/README.md says what it owns and
 * may include).
 */
#ifndef MOSAIC_LIB_SYNTH_H
#define MOSAIC_LIB_SYNTH_H

#include <stdint.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"

/* mkdir -p path. Returns MSC_OK, MSC_E_INVALID_ARGUMENT (empty or too long), MSC_E_IO. */
msc_status msci_synth_make_dirs(const char *path);

/* The directory may be written to when it is empty, holds a dataset (its metadata file
 * meta), or holds only what an interrupted run leaves: meta + ".tmp" and the folders
 * named in leftovers (NULL-terminated). MSC_E_INVALID_ARGUMENT names the first foreign
 * entry; MSC_E_IO when dir cannot be read. */
msc_status msci_synth_check_target(const char *dir, const char *meta,
                                   const char *const *leftovers);

/* The last step of an atomic write: removes tmp and fails (MSC_E_IO) when writing it
 * failed, else renames it to path. */
msc_status msci_synth_commit(const char *tmp, const char *path, int failed);

/* snprintf into out, refusing a path that does not fit (MSC_E_INVALID_ARGUMENT). */
msc_status msci_synth_join(char *out, size_t cap, const char *fmt, ...) MSCI_PRINTF(3, 4);

/* Writes a TIFF of w × h pixels and `bands` bands (pixels band-major: band 0's rows,
 * then band 1's, ...; stored pixel-interleaved in uncompressed strips of 16 rows),
 * samples of TIFF SampleFormat sample_format (1 uint, 2 int, 3 IEEE float) and `bits`
 * bits, to path + ".tmp", then renamed to path. */
msc_status msci_synth_write_tiff(const char *path, const void *pixels, int w, int h, int bands,
                                 int sample_format, int bits);

/* msci_synth_write_tiff with GeoTIFF georeferencing in EPSG:4326 (WGS 84 longitude and
 * latitude, PixelIsArea): the upper-left corner of pixel (0, 0) at lonlat_deg[0],
 * lonlat_deg[1], and square pixels of lonlat_deg[2] degrees (ModelTiepoint,
 * ModelPixelScale, GeoKeyDirectory as Google Earth Engine writes Sen1Floods11's chips).
 * lonlat_deg NULL writes no georeferencing. */
msc_status msci_synth_write_geotiff(const char *path, const void *pixels, int w, int h,
                                    int bands, int sample_format, int bits,
                                    const double *lonlat_deg);

/* Writes n (1..1000000, checked by the caller) Sen1Floods11-like chips of size × size
 * (16..512) into dir (docs/data.md, "Sen1Floods11"): S1Hand/, S2Hand/, LabelHand/ and the
 * three split lists, flood_train_data.csv last. Returns the statuses of msc_synth_write. */
msc_status msci_synth_floods(const char *dir, int64_t n, uint64_t seed, int64_t size);

/* Writes n (1..1000000, checked by the caller) synthetic patches in the PASTIS layout
 * into dir (docs/pimc.md, "Synthetic time series"): creates dir, refuses a non-empty one
 * that holds no metadata.geojson, writes DATA_S2/S2_<id>.npy, ANNOTATIONS/TARGET_<id>.npy,
 * INSTANCE_ANNOTATIONS/INSTANCES_<id>.npy, then metadata.geojson. Every file goes through
 * a temporary name. Returns the statuses of msc_synth_write. */
msc_status msci_synth_pastis(const char *dir, int64_t n, uint64_t seed);

#endif /* MOSAIC_LIB_SYNTH_H */
