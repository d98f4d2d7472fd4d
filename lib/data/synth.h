/*
 * synth.h — the generators behind msc_synth_write (include/mosaic/mosaic.h), one file a
 * layout: lib/data/synth.c (BigEarthNet v2, and the public entry point) and
 * lib/data/synth_pastis.c (PASTIS). Layer: data (lib/data/README.md says what it owns and
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

/* Writes n (1..1000000, checked by the caller) synthetic patches in the PASTIS layout
 * into dir (docs/pimc.md, "Synthetic time series"): creates dir, refuses a non-empty one
 * that holds no metadata.geojson, writes DATA_S2/S2_<id>.npy, ANNOTATIONS/TARGET_<id>.npy,
 * INSTANCE_ANNOTATIONS/INSTANCES_<id>.npy, then metadata.geojson. Every file goes through
 * a temporary name. Returns the statuses of msc_synth_write. */
msc_status msci_synth_pastis(const char *dir, int64_t n, uint64_t seed);

#endif /* MOSAIC_LIB_SYNTH_H */
