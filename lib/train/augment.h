/*
 * augment.h — the training augmentations of docs/data.md ("Augmentations"): random resized
 * Layer: train (lib/train/README.md says what it owns and may include).
 * crop, flips, quarter-turn rotations, Gaussian noise, brightness/contrast jitter for
 * optical modalities and multiplicative speckle for SAR, all seeded and reproducible.
 *
 * A view's random numbers come from streams whose labels are built from (seed, sample
 * index, view, modality) only (rng.h), never from a thread or from the order in which
 * samples are processed, so a batch gives the same bytes on any thread count:
 *
 *   aug/<sample>/<view>/geom             geometry, shared by the modalities
 *                                        (aug.shared_geometry = 1)
 *   aug/<sample>/<view>/m<k>/geom        geometry of modality k (shared_geometry = 0)
 *   aug/<sample>/<view>/m<k>/speckle     SAR speckle of modality k
 *   aug/<sample>/<view>/m<k>/jitter      optical brightness/contrast of modality k
 *   aug/<sample>/<view>/m<k>/noise       Gaussian noise of modality k
 *
 * Each transform has its own stream, so switching one off never changes what another
 * draws. The geometry stream always draws hflip, vflip and the rotation first (3
 * numbers, drawn even when the option is off), then the crop.
 *
 * Order of a view: crop (resampled back to h × w, bilinear, align_corners = False),
 * horizontal flip, vertical flip, rotation, then speckle (SAR), brightness/contrast
 * (optical) and Gaussian noise (every kind). Geometry is identical for every band.
 *
 * Units. The input of msci_augment_view is the NORMALISED image z = (x − mean)/std
 * (modality.#.mean / modality.#.std). Brightness, contrast and Gaussian noise act in
 * those normalised units. Speckle is defined in INPUT units, before normalisation:
 * x' = x·(1 + s·n), n ~ N(0, 1); on the normalised image this is exactly
 * z' = z + (z + mean/std)·s·n, which is what is computed, with the mean/std held in
 * the configuration (norm_mean/norm_std, from the options or msci_aug_cfg_set_norm).
 *
 * Everything here is thread-safe: the functions keep no state. The training step runs
 * them for the samples of a batch on its OpenMP threads (lib/train/train.c, stage_views),
 * each thread with its own scratch, so the views are the same bytes on any thread count.
 */
#ifndef MOSAIC_LIB_AUGMENT_H
#define MOSAIC_LIB_AUGMENT_H

#include <stdint.h>

#include "mosaic/mosaic.h"
#include "options/options.h"

/* Most bands of a modality (modality.#.bands' maximum; model.h's MSCI_MAX_BANDS). */
#define MSCI_AUG_MAX_BANDS 64

/* modality.#.kind */
typedef enum {
  MSCI_KIND_OTHER = 0,   /* "other": geometry and Gaussian noise only */
  MSCI_KIND_SAR = 1,     /* "sar": + speckle */
  MSCI_KIND_OPTICAL = 2, /* "optical": + brightness/contrast jitter */
  MSCI_KIND_PLOT = 3     /* "plot": recurrence plots, never augmented (a flipped, cropped,
                            rotated or noisy plot is the plot of no series) */
} msci_modality_kind;

typedef struct msci_aug_cfg {
  int32_t crop;                          /* aug.crop */
  double crop_scale_min, crop_scale_max; /* area fraction, (0, 1], min <= max */
  double crop_ratio_min, crop_ratio_max; /* width/height, > 0, min <= max */
  int32_t hflip, vflip, rot90;           /* each with probability 1/2 (rot: k in 0..3) */
  double noise_std;                      /* Gaussian, normalised units */
  double jitter_brightness;              /* offset ~ U(-b, b), normalised units, optical */
  double jitter_contrast;                /* gain ~ U(1-c, 1+c) around the band mean */
  double speckle;                        /* x(1 + s N(0,1)) in input units, SAR */
  int32_t shared_geometry;               /* modalities of a sample share the geometry */
  int32_t kind[MSCI_MAX_MODALITIES];     /* msci_modality_kind of modality k */
  /* The normalisation of modality k's input, for speckle: norm_bands[k] values, or 0
   * for mean 0 and std 1. */
  int32_t norm_bands[MSCI_MAX_MODALITIES];
  float norm_mean[MSCI_MAX_MODALITIES][MSCI_AUG_MAX_BANDS];
  float norm_std[MSCI_MAX_MODALITIES][MSCI_AUG_MAX_BANDS];
} msci_aug_cfg;

/* Reads the aug.* keys, and modality.#.kind, modality.#.mean and modality.#.std of
 * every modality index 0..MSCI_MAX_MODALITIES-1 (set or default), from o. Checks
 * crop_scale_min <= crop_scale_max and crop_ratio_min <= crop_ratio_max. *cfg is
 * untouched on error. Returns MSC_OK, MSC_E_INVALID_ARGUMENT (NULL, inconsistent
 * keys; the message names them), MSC_E_OUT_OF_MEMORY. */
msc_status msci_aug_cfg_parse(const msc_options *o, msci_aug_cfg *cfg);

/* Sets the normalisation of modality k used by speckle (bands values of mean and std;
 * bands 0 = mean 0, std 1), e.g. from the model's configuration when the options given
 * to msci_aug_cfg_parse are not the model's. Returns MSC_OK or MSC_E_INVALID_ARGUMENT
 * (k or bands out of range, NULL arrays with bands > 0, a std that is not > 0). */
msc_status msci_aug_cfg_set_norm(msci_aug_cfg *cfg, int32_t modality, int32_t bands,
                                 const float *mean, const float *std);

/* "sar" / "optical" / "other" to msci_modality_kind; -1 for anything else. */
int32_t msci_aug_kind_from_name(const char *name);

/* The geometric parameters of one view, independent of the image size so that
 * modalities of different resolutions can share them. */
typedef struct msci_aug_params {
  int32_t crop;          /* 0: no crop (the whole image, copied exactly) */
  double crop_w, crop_h; /* window size, fractions of the width and height, (0, 1] */
  double crop_x, crop_y; /* window position in [0, 1): left column
                            floor(crop_x·(w − cw + 1)) (at most w − cw), top row alike */
  int32_t crop_centre;   /* 1: the window is centred instead ((w − cw)/2 rounded down,
                            as torchvision's fallback), crop_x/crop_y unused */
  int32_t hflip, vflip;  /* mirror left-right / top-bottom */
  int32_t rot;           /* quarter turns, 0..3, counter-clockwise as torch.rot90(x, k,
                            dims=(-2, -1)); applied after the flips, square images only */
} msci_aug_params;

/* The crop window that p gives on an h × w image: size ch × cw (each at least 1, at
 * most the image; round to nearest of the fractions) and top-left corner (y0, x0). */
void msci_aug_crop_window(const msci_aug_params *p, int64_t h, int64_t w, int64_t *y0,
                          int64_t *x0, int64_t *ch, int64_t *cw);

/* Draws the geometry of (seed, sample_index, view) — and modality unless
 * cfg->shared_geometry — for an h × w image, as torchvision's RandomResizedCrop (up to
 * 10 tries of area scale ~ U(scale_min, scale_max) and log-uniform aspect ratio, a try
 * accepted when the window fits; then the central crop of the nearest allowed aspect
 * ratio) followed by RandomHorizontalFlip, RandomVerticalFlip and a uniform quarter
 * turn (none when h != w). A try depends on the aspect ratio h/w only, so modalities
 * of the same aspect share their windows whatever their sizes. Disabled transforms
 * come out as 0. */
void msci_aug_draw_geometry(const msci_aug_cfg *cfg, uint64_t seed, int64_t sample_index,
                            int32_t view, int32_t modality, int64_t h, int64_t w,
                            msci_aug_params *p);

/* Applies explicit geometric parameters to src (c × h × w) into dst (c × h × w):
 * crop window resampled back to h × w (bilinear, msci_resample), then flips, then the
 * rotation (skipped when h != w). A crop covering the whole image and no flip or
 * rotation copy src exactly. scratch holds at least h × w floats; it may be NULL when
 * p has no crop (the flips and turns then run in place in dst, a little slower). src may
 * equal dst (then scratch must not overlap them). A band costs at most two passes: the
 * window resampled straight from src (msci_resample_strided), then one copy that does
 * the flips and the turn together; nothing is allocated. Returns MSC_OK or
 * MSC_E_INVALID_ARGUMENT. */
msc_status msci_augment_apply(const msci_aug_params *p, const float *src, int64_t c, int64_t h,
                              int64_t w, float *dst, float *scratch);

/* Applies the geometry p to one h × w map of class indices (a segmentation mask), src
 * into dst, as msci_augment_apply does to a band but with the crop window resampled by
 * nearest neighbour (msci_resample's MSCI_RESAMPLE_NEAREST rule: source row
 * floor(y·ch/h), as PyTorch's "nearest"), so that a class is never blended; flips and
 * the rotation as msci_augment_apply. The same p on the pixels and on their mask keeps
 * them aligned. src and dst must not overlap. Returns MSC_OK or MSC_E_INVALID_ARGUMENT. */
msc_status msci_augment_mask(const msci_aug_params *p, const int32_t *src, int64_t h, int64_t w,
                             int32_t *dst);

/* The photometric part of a view, in place on x (c × h × w, normalised): speckle
 * (kind SAR, speckle > 0), brightness/contrast (kind optical, either > 0), Gaussian
 * noise (noise_std > 0), from the streams of (seed, sample_index, view, modality).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (modality out of range, NULL);
 * MSC_E_SHAPE (speckle needs the normalisation and norm_bands[modality] is neither 0
 * nor c). */
msc_status msci_augment_photometric(const msci_aug_cfg *cfg, uint64_t seed,
                                    int64_t sample_index, int32_t view, int32_t modality,
                                    int32_t kind, float *x, int64_t c, int64_t h, int64_t w);

/* One augmented view of one sample of modality `modality` (0..MSCI_MAX_MODALITIES-1)
 * of kind `kind` (msci_modality_kind; normally cfg->kind[modality]): draws the
 * geometry, applies it (msci_augment_apply) and the photometric transforms. src and
 * dst are c × h × w (normalised values), scratch holds c × h × w floats; src may
 * equal dst. With every option off dst equals src bit for bit. The result depends
 * only on the arguments, never on the thread or on other calls. NaN in src is
 * propagated, not checked. Returns MSC_OK, MSC_E_INVALID_ARGUMENT (NULL, dimension
 * < 1, modality or kind out of range), MSC_E_SHAPE (see msci_augment_photometric). */
msc_status msci_augment_view(const msci_aug_cfg *cfg, uint64_t seed, int64_t sample_index,
                             int32_t view, int32_t modality, int32_t kind, const float *src,
                             int64_t c, int64_t h, int64_t w, float *dst, float *scratch);

#endif /* MOSAIC_LIB_AUGMENT_H */
