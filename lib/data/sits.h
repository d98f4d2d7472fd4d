/*
 * sits.h — satellite image time series (SITS): vegetation indices on Sentinel-2 digital
 * numbers, and recurrence plots of a pixel's index series, the inputs of PIMC's pixel
 * encoder. Layer: data (lib/data/README.md says what it owns and may include).
 * docs/pimc.md has the formulas, the policies and the percentile definition.
 *
 * Arrays. A series is T × C × H × W float32, row-major (a PASTIS DATA_S2 array: T dates,
 * C = 10 bands B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12, raw L2A digital numbers); a
 * single image is the case T = 1. A band table (msci_vi_bands) says which channel holds
 * which band and how digital numbers become reflectance:
 *
 *   reflectance = (DN + offset) / scale      (default scale 10000, offset 0)
 *
 * Sentinel-2 products of processing baseline 04.00 or later (from 25 January 2022) carry
 * BOA_ADD_OFFSET = -1000: set offset = -1000 for them (PASTIS, 2018-2019, predates it).
 *
 * Invalid values. An index is NaN, and its valid flag 0, where an input band is not
 * finite or the denominator's magnitude is below MSCI_VI_DEN_MIN; otherwise the value is
 * finite and the flag 1. No clamp is applied (EVI can be large where its denominator is
 * small). In a recurrence plot's series, a NaN (or infinite) date is filled by linear
 * interpolation in time between the nearest finite dates (the nearest finite value before
 * the first or after the last); a series with no finite date gives a plot of zeros with
 * its valid flag 0.
 *
 * Errors: MSC_E_INVALID_ARGUMENT (NULL, a negative or too large size, a band absent from
 * the table or out of range, a pixel outside the image, a bad configuration; the message
 * names it), MSC_E_BUFFER_TOO_SMALL (a scratch buffer smaller than
 * msci_rp_scratch_floats), MSC_E_OUT_OF_MEMORY. Outputs are untouched on error.
 * Every function is thread-safe (no state); msci_rp_pixels runs OpenMP threads.
 */
#ifndef MOSAIC_LIB_SITS_H
#define MOSAIC_LIB_SITS_H

#include <stddef.h>
#include <stdint.h>

#include "mosaic/mosaic.h"

/* Vegetation and water indices (reflectances ρ):
 *   NDVI = (ρ8 − ρ4) / (ρ8 + ρ4)
 *   EVI  = 2.5 (ρ8 − ρ4) / (ρ8 + 6 ρ4 − 7.5 ρ2 + 1)
 *   SAVI = 1.5 (ρ8 − ρ4) / (ρ8 + ρ4 + 0.5)
 *   NDWI = (ρ3 − ρ8) / (ρ3 + ρ8)          (McFeeters: green / NIR)
 *   NBR  = (ρ8 − ρ12) / (ρ8 + ρ12) */
typedef enum {
  MSCI_VI_NDVI = 0,
  MSCI_VI_EVI = 1,
  MSCI_VI_SAVI = 2,
  MSCI_VI_NDWI = 3,
  MSCI_VI_NBR = 4,
  MSCI_VI_COUNT = 5
} msci_vi;

/* A denominator of smaller magnitude than this makes the index invalid (NaN). */
#define MSCI_VI_DEN_MIN 1e-12

/* Which channel holds each band an index needs (-1: absent), and the reflectance scale. */
typedef struct msci_vi_bands {
  int32_t b2, b3, b4, b8, b12; /* channel of B2 (blue), B3 (green), B4 (red), B8, B12 */
  double scale;                /* reflectance = (DN + offset) / scale; > 0, finite */
  double offset;               /* 0; -1000 for processing baseline >= 04.00 */
} msci_vi_bands;

/* The PASTIS DATA_S2 table: B2..B12 as channels 0..9 (B2 0, B3 1, B4 2, B8 6, B12 9),
 * scale 10000, offset 0. */
msci_vi_bands msci_vi_bands_pastis(void);

/* "ndvi", "evi", "savi", "ndwi", "nbr"; "?" for another value. */
const char *msci_vi_name(msci_vi kind);

/* The index of one pixel from its reflectances (ρ2, ρ3, ρ4, ρ8, ρ12; those the index does
 * not use are ignored). Returns NaN under the policy above. */
double msci_vi_value(msci_vi kind, double r2, double r3, double r4, double r8, double r12);

/* Index kind over a T × C × (hw) series x (hw = H·W pixels per band): out[t·hw + p] for
 * every date t and pixel p (T × H × W values). valid (NULL or T·hw bytes) receives 1
 * where the value is finite, 0 where it is NaN. Returns MSC_OK, MSC_E_INVALID_ARGUMENT. */
msc_status msci_vi_compute(msci_vi kind, const msci_vi_bands *b, const float *x, int64_t t,
                           int64_t c, int64_t hw, float *out, uint8_t *valid);

/* Percentile p in [0, 100] of v[0..m-1] (m >= 1) with numpy's default (linear)
 * definition: sorted ascending as s_0..s_{m-1}, h = (m − 1)·p/100, the result is
 * s_⌊h⌋ + (h − ⌊h⌋)(s_⌊h⌋+1 − s_⌊h⌋). Reorders v (selection, no full sort). v must hold
 * no NaN. */
double msci_percentile_linear(float *v, int64_t m, double p);

/* Fills the NaN and infinite values of x[0..t-1] by linear interpolation in time
 * (days: NULL for dates 0, 1, ..., t−1, or t strictly increasing times), holding the
 * nearest finite value before the first and after the last finite one. Returns the
 * number of finite values found; with none, x is left as it was. */
int64_t msci_series_fill(float *x, int64_t t, const double *days);

/* Largest series and plot side. */
#define MSCI_RP_MAX_T 4096
#define MSCI_RP_MAX_S 4096

/* A recurrence plot configuration. */
typedef struct msci_rp_cfg {
  int32_t channels;             /* K, 1..MSCI_VI_COUNT */
  int32_t index[MSCI_VI_COUNT]; /* msci_vi of channel k < K */
  int32_t binary;            /* 0: R = |xi − xj|; 1: R = Θ(ε − |xi − xj|), Θ(0) = 1 */
  int32_t eps_is_percentile; /* binary: ε is the percentile eps of the T(T−1)/2
                                    off-diagonal distances of each channel (0: ε = eps) */
  double eps;                /* binary: ε >= 0, or a percentile in [0, 100] */
  int64_t size;              /* S: plots resized to S × S (bilinear, align_corners =
                                    False, no antialiasing); 0 keeps T × T */
  const double *days;        /* NULL or T strictly increasing times, for the filling */
} msci_rp_cfg;

/* Three channels NDVI, EVI, SAVI; continuous; no resize; equally spaced dates. */
msci_rp_cfg msci_rp_cfg_default(void);

/* Floats of scratch one thread needs for series of T dates (0 for a bad size or cfg). */
size_t msci_rp_scratch_floats(int64_t t, const msci_rp_cfg *cfg);

/* The recurrence plots of K index series (series: K × T, row k the series of channel k;
 * cfg->index is not used) into out, K × S × S. The series are copied into scratch
 * (msci_rp_scratch_floats(t, cfg) floats) before their gaps are filled; valid (NULL or
 * K bytes) receives 0 for a series with no finite date (its plot is zeros), 1
 * otherwise. Returns MSC_OK, MSC_E_INVALID_ARGUMENT. */
msc_status msci_rp_series(const float *series, int64_t t, const msci_rp_cfg *cfg, float *out,
                          uint8_t *valid, float *scratch);

/* Recurrence plots of n pixels of a T × C × H × W series x: pixel i at row yx[2i], column
 * yx[2i+1] gives out[i·K·S·S ...], the plots of its index series (msci_vi_compute, then
 * msci_rp_series), and valid[i·K + k] (valid may be NULL). Pixels are shared among OpenMP
 * threads (at most omp_get_max_threads()); each pixel is computed by one thread alone, so
 * the result does not depend on the thread count. scratch: NULL (allocated here), or
 * scratch_cap floats holding one msci_rp_scratch_floats(t, cfg) block per thread; no
 * allocation is made when it is given, and fewer threads are used when it holds fewer
 * blocks than omp_get_max_threads() (MSC_E_BUFFER_TOO_SMALL when not even one).
 * Returns MSC_OK, MSC_E_INVALID_ARGUMENT, MSC_E_BUFFER_TOO_SMALL, MSC_E_OUT_OF_MEMORY. */
msc_status msci_rp_pixels(const float *x, int64_t t, int64_t c, int64_t h, int64_t w,
                          const msci_vi_bands *b, const msci_rp_cfg *cfg, const int64_t *yx,
                          int64_t n, float *out, uint8_t *valid, float *scratch,
                          size_t scratch_cap);

#endif /* MOSAIC_LIB_SITS_H */
