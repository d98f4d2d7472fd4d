/*
 * dataset.h — datasets inside the library: one table of samples, whatever the format.
 * Layer: data (lib/data/README.md says what it owns and may include).
 *
 * A format's opener (dataset_<format>.c) fills the table: per sample an id, the files
 * that hold each modality's bands (a band is a file, or one band of a multi-band file),
 * a multi-hot label vector and a split. Reading is generic: msci_dataset_read_sample
 * reads every band of a modality with libtiff (lib/data/raster.h), resamples it to the
 * modality's patch size and returns raw values (reflectance, dB); the model applies its
 * normalisation (modality.i.mean/std). So a new format is one opener, nothing else.
 */
#ifndef MOSAIC_LIB_DATASET_H
#define MOSAIC_LIB_DATASET_H

#include <stdint.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"
#include "data/dataset_files.h"
#include "data/raster.h"

#define MSCI_SPLIT_TRAIN      0
#define MSCI_SPLIT_VALIDATION 1
#define MSCI_SPLIT_TEST       2
#define MSCI_SPLIT_NONE       3 /* a format without splits: every sample is in "all" */

/* One band of a sample: a file and the band (0-based) to take from it. */
typedef struct msci_band_source {
  char *path; /* owned */
  int32_t band;
} msci_band_source;

typedef struct msci_sample {
  char *id;                                     /* owned, e.g. the patch name */
  msci_band_source *bands[MSCI_MAX_MODALITIES]; /* modality k: ds->mod[k].bands entries */
  uint8_t *labels;                              /* ds->classes bytes, owned */
  int32_t split;                                /* MSCI_SPLIT_* */
  msci_band_source mask; /* the label map (path owned, NULL without), ds->mask_* */
  /* Where a computed sample comes from, for formats with a reader (below): PASTIS
   * pixel samples are {patch, row, column}, patch samples {patch, -1, -1}. */
  int64_t pos[3];
  uint8_t unlabeled; /* data.labeled_fraction left its labels out of the supervised terms */
} msci_sample;

/* A format whose modalities are computed rather than read from band files (PASTIS:
 * recurrence plots and image patches from a time series) sets msc_dataset.reader; its
 * samples then have no band files and msci_dataset_read calls reader->read. */
typedef struct msci_ds_reader {
  /* Modality k of sample i into dst (bands × size × size). Called from several threads at
   * once: must be thread-safe. Errors name the sample. */
  msc_status (*read)(const msc_dataset *ds, int64_t i, int32_t k, float *dst);
  /* Releases reader_state (at msc_dataset_free). */
  void (*free)(void *state);
  /* The mask of sample i into dst (mask_size × mask_size), for a reader format whose
   * dataset declares masks (msci_dataset_set_mask); NULL otherwise. Thread-safe. */
  msc_status (*read_mask)(const msc_dataset *ds, int64_t i, int32_t *dst);
} msci_ds_reader;

typedef struct msci_ds_modality {
  char name[MSCI_NAME_LEN];
  int64_t bands, size; /* bands per sample, patch size after resampling */
  char **band_names;   /* bands names, owned ("B02", "VV", ...) */
  /* What the values read measure: physical = value * scale + offset (1 and 0 unless the
   * opener sets them after msci_dataset_set_modality; msc_dataset_band_scale). */
  double scale, offset;
  /* Fix-ups applied before resampling (SEN12MS S1 has NaN: 0, then clip to [-25, 0]). */
  int32_t nan_to_zero;      /* replace NaN by 0 (else a NaN is an error naming the file) */
  int32_t nan_ignores_mask; /* with nan_to_zero: a NaN pixel (any band) sets the mask
                               pixels it covers to the ignore value (Sen1Floods11 S1) */
  int32_t clip;             /* clip to [clip_lo, clip_hi] */
  float clip_lo, clip_hi;
  /* Per band, the size its files must have (msci_band_info.file_px); 0: any. A file of
   * another size is refused, not resampled into the band's slot. */
  int32_t file_px[MSCI_MAX_BANDS];
  /* Published statistics for this band order, when the format has them (has_stats). */
  int32_t has_stats;
  float *mean, *std; /* bands values, owned */
} msci_ds_modality;

struct msc_dataset {
  char format[32];
  char *root;
  /* realpath of root, and data.allow_outside_root: the files a table names must lie
   * under root_real unless allow_outside (msci_dataset_check_path; docs/data.md). */
  char *root_real;
  int32_t allow_outside;
  int32_t n_mod;
  msci_ds_modality mod[MSCI_MAX_MODALITIES];
  int64_t classes;
  char **class_names;   /* owned */
  int32_t single_label; /* exactly one label per sample: EuroSAT, PASTIS pixel samples */
  msci_sample *samples; /* the selected samples (split, exclusions, fraction) */
  int64_t n_samples, cap_samples;
  int64_t n_unlabeled; /* samples marked unlabelled by data.labeled_fraction */
  int64_t n_skipped;   /* patches dropped for missing or unreadable files */
  char **skipped_ids;  /* their ids (first 1000), owned */
  msci_resample_mode resample;
  /* Per-pixel label maps (docs/data.md, "Masks"), when mask_classes > 0: every sample's
   * mask is mask_size × mask_size class indices, mask_ignore where a pixel has none. A
   * file's raw value v (an integer) becomes mask_lut[v - mask_lut_lo] when 0 <= v -
   * mask_lut_lo < mask_lut_n, else mask_ignore (a lut entry may be mask_ignore too). */
  int64_t mask_classes;
  char **mask_class_names; /* owned */
  int32_t mask_ignore;
  int64_t mask_size;
  int32_t *mask_lut; /* owned */
  int64_t mask_lut_lo, mask_lut_n;
  /* Every band and mask file must be exactly its modality's (the mask's) size: another
   * size is an error naming the file rather than resampled (Sen1Floods11 chips). */
  int32_t exact_size;
  const msci_ds_reader *reader; /* NULL: modalities are read from band files */
  void *reader_state;           /* the reader's, released by reader->free */
};

/* ---- building the table (used by the openers) ------------------------------------------ */

/* MSC_OK if path, a file named by a table (a manifest cell, a series table cell), may be
 * opened: it lies under the dataset root once symbolic links are resolved
 * (msci_path_inside), or data.allow_outside_root is set. Else MSC_E_BAD_FORMAT naming the
 * path, the root and the option. Checked before anything is opened or stat'ed as a data
 * file, so that a table cannot make the library read /etc/passwd or /proc/self/environ. */
msc_status msci_dataset_check_path(const msc_dataset *ds, const char *path);

/* Appends a zeroed sample with id (copied) and returns it, or NULL (out of memory). */
msci_sample *msci_dataset_add(msc_dataset *ds, const char *id);
/* Removes the last sample (an opener that found it incomplete). */
void msci_dataset_drop_last(msc_dataset *ds);
/* Records a skipped patch (counted; its id kept for the first 1000). */
void msci_dataset_note_skipped(msc_dataset *ds, const char *id);
/* Sets band b of modality k of sample s to (path, band in file). */
msc_status msci_sample_set_band(msci_sample *s, const msc_dataset *ds, int32_t k, int32_t b,
                                const char *path, int32_t band_in_file);
/* Sets up modality k: name, band names (copied), patch size. */
msc_status msci_dataset_set_modality(msc_dataset *ds, int32_t k, const char *name, int64_t size,
                                     const char *const *band_names, int64_t bands);
/* Sets the class names (copied). */
msc_status msci_dataset_set_classes(msc_dataset *ds, const char *const *names, int64_t n);
/* Declares per-pixel masks: class names (copied), ignore value, size, and the table of
 * raw values lo .. lo + lut_n - 1 (copied; NULL: identity, value v is class v - lo). */
msc_status msci_dataset_set_mask(msc_dataset *ds, const char *const *names, int64_t classes,
                                 int32_t ignore, int64_t size, int64_t lo, const int32_t *lut,
                                 int64_t lut_n);
/* Sets the mask file of sample s (band band_in_file, 0-based). */
msc_status msci_sample_set_mask(msci_sample *s, const char *path, int32_t band_in_file);
/* A label vector for sample s from class names (unknown names are an error naming the
 * sample and the name). */
msc_status msci_sample_set_label_names(msci_sample *s, const msc_dataset *ds,
                                       const char *const *names, int32_t n);

/* ---- band selection (data.s1_bands / data.s2_bands) ------------------------------------ */

/* A band a format offers: its name, and the published statistics when there are some. */
typedef struct msci_band_info {
  const char *name;
  int has_stats;
  float mean, std;
  /* The width and height every file of this band has in the format (BigEarthNet: 120, 60
   * or 20 pixels for 10, 20 or 60 m); 0: any size, resampled to the patch size. */
  int32_t file_px;
} msci_band_info;

/* Parses the value s of option key into indices of table[0..nt): "default" gives the
 * format's default list def[0..ndef) (def NULL: 0..ndef-1), "none" or "" gives 0 (no such
 * modality), else a ','-separated list of band names in the wanted order. Returns the
 * count, or -1 with the error set (an unknown or repeated name; the message lists the
 * bands). idx needs nt entries. */
int msci_parse_bands(const char *key, const char *s, const msci_band_info *table, int nt,
                     const int *def, int ndef, int *idx);
/* msci_dataset_set_modality with the names of table[idx[0..n)], and their statistics when
 * every selected band has some. */
msc_status msci_dataset_set_bands(msc_dataset *ds, int32_t k, const char *name, int64_t size,
                                  const msci_band_info *table, const int *idx, int n);

/* ---- reading -------------------------------------------------------------------------------- */

/* Reads modality k of sample i into dst (bands × size × size), resampled. Errors name
 * the sample and the file. */
msc_status msci_dataset_read(const msc_dataset *ds, int64_t i, int32_t k, float *dst);
/* As msci_dataset_read; mask (the sample's mask, already read, or NULL) gets the ignore
 * value where a NaN pixel of a nan_ignores_mask modality lies. */
msc_status msci_dataset_read_masked(const msc_dataset *ds, int64_t i, int32_t k, float *dst,
                                    int32_t *mask);
/* Reads the mask of sample i into dst (mask_size × mask_size), raw values mapped through
 * the dataset's table; a file of another size is resampled by nearest neighbour. */
msc_status msci_dataset_read_mask(const msc_dataset *ds, int64_t i, int32_t *dst);

/* ---- openers (one per format), called by msc_dataset_open after the common options ------ */

/* BigEarthNet's 19 classes in index order (docs/data.md), shared by v1, v2 and synthetic data. */
extern const char *const msci_ben_classes[19];
/* BigEarthNet's bands (v1 and v2) with the published statistics. */
extern const msci_band_info msci_ben_s1_bands[2];
extern const msci_band_info msci_ben_s2_bands[12];
/* The v2 class index of a v1 (43-class) label name; -1 for the 11 names that drop out,
 * -2 for a name that is not a v1 label. */
int msci_ben1_map_label(const char *name);
/* The same for a CORINE level-3 code (111 .. 523) of a reference map pixel: the class
 * index, -1 for the codes of the 11 dropped names, -2 for any other value. */
int msci_ben_corine_class(int code);

/* SEN12MS labels: IGBP fractions (codes 1..17) → the 10 simplified classes, present at a
 * fraction >= 0.1. */
void msci_sen12ms_labels(const double *frac17, uint8_t *labels10);

/* Optional split lists: files[i] (train, validation, test) in root, each read into
 * sets[i] when present (names without extension when strip_ext). *found is set when
 * any list exists; sets are sealed. */
msc_status msci_split_lists_load(const char *root, const char *const files[3], int strip_ext,
                                 msci_name_set sets[3], int *found);
/* The split of name by the lists: MSCI_SPLIT_NONE without lists, -1 when in none. */
int msci_split_lists_find(const msci_name_set sets[3], int found, const char *name);

/* The Sentinel-2 processing baseline of the date whose (first) file is path (4.0 for
 * "04.00"), 0 when unknown: PROCESSING_BASELINE of metadata.json in the file's folder,
 * else the N<xxyy> field of a product name (..._MSIL2A_..._N0400_...) in the path.
 * Sets no error (dataset_series.c; docs/data.md, "Processing baselines"). */
double msci_series_baseline(const char *path);

typedef msc_status (*msci_dataset_opener)(msc_dataset *ds, const char *root,
                                          const msc_options *opts);
msc_status msci_open_bigearthnet_v2(msc_dataset *ds, const char *root, const msc_options *opts);
msc_status msci_open_bigearthnet_v1(msc_dataset *ds, const char *root, const msc_options *opts);
msc_status msci_open_sen12ms(msc_dataset *ds, const char *root, const msc_options *opts);
msc_status msci_open_eurosat(msc_dataset *ds, const char *root, const msc_options *opts);
msc_status msci_open_manifest(msc_dataset *ds, const char *root, const msc_options *opts);
msc_status msci_open_pastis(msc_dataset *ds, const char *root, const msc_options *opts);
msc_status msci_open_series(msc_dataset *ds, const char *root, const msc_options *opts);
msc_status msci_open_sen1floods11(msc_dataset *ds, const char *root, const msc_options *opts);

#endif
