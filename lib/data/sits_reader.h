/*
 * sits_reader.h — samples of satellite image time series (SITS), whatever the format:
 * the recurrence plots of a pixel's (or a patch's mean) vegetation-index series and the
 * image patch around it, computed when a sample is read, on the reading thread (the
 * loader's workers). docs/pimc.md ("Samples") describes what is computed.
 * Layer: data (lib/data/README.md says what it owns and may include).
 *
 * A format (dataset_pastis.c, dataset_series.c) fills an msci_sits: one msci_sits_patch per series (its
 * dates and size) and a read_box function giving any window of one series as
 * T × C × h × w floats. msci_sits_setup then reads the options, builds the time grid and
 * declares the dataset's modalities, those of data.sits.modalities in its order (default
 * "rp,s2"):
 *   "rp":     K × S × S recurrence plots (K indices, S = data.sits.plot_size or the dates
 *             plotted);
 *   "s2":     C × P × P, the image patch (P = data.sits.patch) centred on the pixel;
 *   "series": (L − history)·C × P × P, every date of that patch, date-major: the time axis
 *             in the batch, for models that take the dates as channels.
 * The format adds one sample per pixel (pos = {patch, row, column}) or per patch
 * (pos = {patch, -1, -1}) and sets the dataset's reader to msci_sits_reader.
 */
#ifndef MOSAIC_LIB_SITS_READER_H
#define MOSAIC_LIB_SITS_READER_H

#include <stdint.h>

#include "data/dataset.h"
#include "data/sits.h"
#include "mosaic/mosaic.h"

/* What a modality of a SITS dataset holds (data.sits.modalities lists them in order). */
#define MSCI_SITS_RP     0 /* "rp": recurrence plots */
#define MSCI_SITS_IMAGE  1 /* "s2": the composite or one date of the window */
#define MSCI_SITS_SERIES 2 /* "series": every date of the window, date-major */

/* data.sits.image: a composite of the dates, or one date (>= 0). */
#define MSCI_SITS_IMAGE_MEDIAN (-1)
#define MSCI_SITS_IMAGE_MEAN   (-2)
#define MSCI_SITS_IMAGE_MIDDLE (-3)
#define MSCI_SITS_IMAGE_LAST   (-4)

typedef struct msci_sits_patch {
  int64_t t, h, w; /* dates and size of the series */
  double *days;    /* t strictly increasing day numbers (msci_date_days), owned */
  char *path;      /* the format's file, owned */
} msci_sits_patch;

typedef struct msci_sits msci_sits;

/* Reads the window rows y0..y0+h-1, columns x0..x0+w-1 (inside the patch) of every date
 * and band of patch p into out, T × C × h × w floats. Thread-safe. */
typedef msc_status (*msci_sits_read_box_fn)(const msci_sits *s, int64_t p, int64_t y0,
                                            int64_t x0, int64_t h, int64_t w, float *out);

struct msci_sits {
  /* Set by the format before msci_sits_setup. */
  char format[32];
  int64_t c; /* bands of every series */
  const char *const *band_names;
  msci_vi_bands bands; /* channels of the bands the indices use */
  msci_sits_patch *patches;
  int64_t n_patches, cap_patches;
  msci_sits_read_box_fn read_box;
  /* Releases what the format keeps beside the msci_sits (NULL: nothing); called by
   * msci_sits_free before it frees the rest. */
  void (*format_free)(msci_sits *s);
  /* From the options (msci_sits_setup). */
  int32_t patch_samples;    /* data.sits.sample = patch */
  int32_t pad;              /* data.sits.time = pad */
  int64_t length, history;  /* L, and the last dates left out of the plots */
  int64_t image_size;       /* P */
  int32_t image_mode;       /* MSCI_SITS_IMAGE_* or a date >= 0 */
  double cloud_blue;        /* B2 reflectance above which a date is missing; 0 off */
  msci_rp_cfg rp;           /* K indices, binary/eps, size S (0: L − history) */
  int32_t n_roles, role[3]; /* modality k holds MSCI_SITS_* role[k] */
  double *grid;             /* L days (resample mode), owned */
};

/* Reads the data.sits.* options into s (its format fields set, its patches listed),
 * builds the grid of the resample mode (data.sits.start/end, else the first and last
 * dates of all patches) and declares the modalities "rp" and "s2" of ds. Errors name the
 * option. */
msc_status msci_sits_setup(msci_sits *s, msc_dataset *ds, const msc_options *opts);

/* Appends a patch (path copied, days taken over: freed by msci_sits_free even on error). */
msc_status msci_sits_add_patch(msci_sits *s, const char *path, int64_t t, int64_t h, int64_t w,
                               double *days);

/* The series of sample pos after the time handling: L × C floats (NaN where missing) and,
 * when days is not NULL, the L times (grid days, or the padded series' own dates with
 * NaN for padding). A patch sample gives the mean over the patch's valid pixels. */
msc_status msci_sits_series(const msci_sits *s, const int64_t pos[3], float *out, double *days);

/* Adds the samples of patch pi, id its id: one patch sample (data.sits.sample = patch:
 * labels = every class of cls present, else the names), or up to `pixels` pixels drawn
 * without replacement among those with cls >= 0 (cls NULL: every pixel) by a partial
 * Fisher–Yates draw seeded by seed and the stream "<format>/pixels/<id>", ids
 * "<id>:<row>:<column>", each labelled with its class (cls) or the names (n_names class
 * names, when the dataset has classes). cand: room for the patch's H·W pixel indices. */
msc_status msci_sits_add_samples(msc_dataset *ds, const msci_sits *s, int64_t pi,
                                 const char *id, int32_t split, const int32_t *cls,
                                 int64_t pixels, int64_t seed, int64_t *cand,
                                 const char *const *names, int n_names);

/* The dataset reader of a SITS format (reader_state is the msci_sits). */
extern const msci_ds_reader msci_sits_reader;

/* Releases s (accepts NULL). */
void msci_sits_free(void *s);

#endif /* MOSAIC_LIB_SITS_READER_H */
