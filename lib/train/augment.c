/*
 * augment.c — seeded, order-independent augmentations of one view (augment.h).
 */
#include "train/augment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "model/model.h"
#include "options/options.h"
#include "data/raster.h"
#include "common/rng.h"

_Static_assert(MSCI_AUG_MAX_BANDS == MSCI_MAX_BANDS, "augment.h and model.h disagree");

/* ---- configuration ------------------------------------------------------------------ */

int32_t msci_aug_kind_from_name(const char *name) {
  if (name == NULL) return -1;
  if (strcmp(name, "sar") == 0) return MSCI_KIND_SAR;
  if (strcmp(name, "optical") == 0) return MSCI_KIND_OPTICAL;
  if (strcmp(name, "other") == 0) return MSCI_KIND_OTHER;
  if (strcmp(name, "plot") == 0) return MSCI_KIND_PLOT;
  return -1;
}

static msc_status get_flag(const msc_options *o, const char *key, int32_t *out) {
  int64_t v = 0;
  MSCI_TRY(msc_options_get_int(o, key, &v));
  *out = v != 0;
  return MSC_OK;
}

/* The mean/std lists of modality k into cfg (an empty list: the default 0 or 1). */
static msc_status parse_norm(const msc_options *o, int32_t k, msci_aug_cfg *cfg) {
  static const char *const which[2] = {"mean", "std"};
  float vals[2][MSCI_AUG_MAX_BANDS];
  size_t count[2] = {0, 0};
  for (int w = 0; w < 2; ++w) {
    msc_status st = msci_options_get_floatsf(o, vals[w], MSCI_AUG_MAX_BANDS, &count[w],
                                             "modality.%d.%s", (int)k, which[w]);
    if (st == MSC_E_OUT_OF_MEMORY) return st; /* its message says so; not a bad value */
    if (st != MSC_OK)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "modality.%d.%s: more than %d values or "
                       "not a list of numbers",
                       (int)k, which[w], MSCI_AUG_MAX_BANDS);
  }
  const float *mean = vals[0], *sd = vals[1];
  size_t nm = count[0], ns = count[1];
  if (nm != 0 && ns != 0 && nm != ns)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "modality.%d.mean has %d values but "
                     "modality.%d.std has %d",
                     (int)k, (int)nm, (int)k, (int)ns);
  int32_t n = (int32_t)(nm > ns ? nm : ns);
  cfg->norm_bands[k] = n;
  for (int32_t b = 0; b < n; ++b) {
    cfg->norm_mean[k][b] = nm ? mean[b] : 0.0f;
    cfg->norm_std[k][b] = ns ? sd[b] : 1.0f;
  }
  return MSC_OK;
}

msc_status msci_aug_cfg_parse(const msc_options *o, msci_aug_cfg *cfg) {
  if (o == NULL || cfg == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_aug_cfg_parse: NULL argument");
  msci_aug_cfg *c = calloc(1, sizeof *c);
  if (c == NULL) return msci_fail(MSC_E_OUT_OF_MEMORY, "augmentation settings");
  msc_status st = get_flag(o, "aug.crop", &c->crop);
  if (st == MSC_OK) st = msc_options_get_float(o, "aug.crop_scale_min", &c->crop_scale_min);
  if (st == MSC_OK) st = msc_options_get_float(o, "aug.crop_scale_max", &c->crop_scale_max);
  if (st == MSC_OK) st = msc_options_get_float(o, "aug.crop_ratio_min", &c->crop_ratio_min);
  if (st == MSC_OK) st = msc_options_get_float(o, "aug.crop_ratio_max", &c->crop_ratio_max);
  if (st == MSC_OK) st = get_flag(o, "aug.hflip", &c->hflip);
  if (st == MSC_OK) st = get_flag(o, "aug.vflip", &c->vflip);
  if (st == MSC_OK) st = get_flag(o, "aug.rot90", &c->rot90);
  if (st == MSC_OK) st = msc_options_get_float(o, "aug.noise_std", &c->noise_std);
  if (st == MSC_OK)
    st = msc_options_get_float(o, "aug.jitter_brightness", &c->jitter_brightness);
  if (st == MSC_OK) st = msc_options_get_float(o, "aug.jitter_contrast", &c->jitter_contrast);
  if (st == MSC_OK) st = msc_options_get_float(o, "aug.speckle", &c->speckle);
  if (st == MSC_OK) st = get_flag(o, "aug.shared_geometry", &c->shared_geometry);
  if (st == MSC_OK && c->crop_scale_min > c->crop_scale_max)
    st = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "aug.crop_scale_min (%g) is greater than aug.crop_scale_max (%g)",
                   c->crop_scale_min, c->crop_scale_max);
  if (st == MSC_OK && c->crop_ratio_min > c->crop_ratio_max)
    st = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "aug.crop_ratio_min (%g) is greater than aug.crop_ratio_max (%g)",
                   c->crop_ratio_min, c->crop_ratio_max);
  for (int32_t k = 0; st == MSC_OK && k < MSCI_MAX_MODALITIES; ++k) {
    char *kind = NULL;
    st = msci_options_get_string_allocf(o, &kind, "modality.%d.kind", (int)k);
    if (st != MSC_OK) break;
    int32_t kv = msci_aug_kind_from_name(kind);
    if (kv < 0)
      st = msci_fail(MSC_E_INVALID_ARGUMENT, "modality.%d.kind: unknown kind '%s'", (int)k,
                     kind);
    free(kind);
    c->kind[k] = kv;
    if (st == MSC_OK) st = parse_norm(o, k, c);
  }
  if (st == MSC_OK) *cfg = *c;
  free(c);
  return st;
}

msc_status msci_aug_cfg_set_norm(msci_aug_cfg *cfg, int32_t modality, int32_t bands,
                                 const float *mean, const float *std) {
  if (cfg == NULL || modality < 0 || modality >= MSCI_MAX_MODALITIES || bands < 0 ||
      bands > MSCI_AUG_MAX_BANDS || (bands > 0 && (mean == NULL || std == NULL)))
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msci_aug_cfg_set_norm: bad argument (modality %d, %d bands)",
                     (int)modality, (int)bands);
  for (int32_t b = 0; b < bands; ++b)
    if (!(std[b] > 0) || !isfinite(std[b]) || !isfinite(mean[b]))
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "msci_aug_cfg_set_norm: modality %d band %d: mean %g, std %g",
                       (int)modality, (int)b, (double)mean[b], (double)std[b]);
  cfg->norm_bands[modality] = bands;
  for (int32_t b = 0; b < bands; ++b) {
    cfg->norm_mean[modality][b] = mean[b];
    cfg->norm_std[modality][b] = std[b];
  }
  return MSC_OK;
}

/* ---- random streams -------------------------------------------------------------------
 */

/* Seeds r with the stream "aug/<sample>/<view>[/m<modality>]/<what>" (modality < 0:
 * the part is left out). */
static void seed_stream(msci_rng *r, uint64_t seed, int64_t sample, int32_t view,
                        int32_t modality, const char *what) {
  char label[96];
  if (modality < 0)
    snprintf(label, sizeof label, "aug/%lld/%d/%s", (long long)sample, (int)view, what);
  else
    snprintf(label, sizeof label, "aug/%lld/%d/m%d/%s", (long long)sample, (int)view,
             (int)modality, what);
  msci_rng_seed(r, seed, label);
}

/* ---- geometry -------------------------------------------------------------------------
 */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

void msci_aug_crop_window(const msci_aug_params *p, int64_t h, int64_t w, int64_t *y0,
                          int64_t *x0, int64_t *ch, int64_t *cw) {
  if (!p->crop) {
    *y0 = *x0 = 0;
    *ch = h;
    *cw = w;
    return;
  }
  int64_t wh = clamp64((int64_t)llround(p->crop_h * (double)h), 1, h);
  int64_t ww = clamp64((int64_t)llround(p->crop_w * (double)w), 1, w);
  if (p->crop_centre) {
    *y0 = (h - wh) / 2;
    *x0 = (w - ww) / 2;
  } else {
    *y0 = clamp64((int64_t)floor(p->crop_y * (double)(h - wh + 1)), 0, h - wh);
    *x0 = clamp64((int64_t)floor(p->crop_x * (double)(w - ww + 1)), 0, w - ww);
  }
  *ch = wh;
  *cw = ww;
}

void msci_aug_draw_geometry(const msci_aug_cfg *cfg, uint64_t seed, int64_t sample_index,
                            int32_t view, int32_t modality, int64_t h, int64_t w,
                            msci_aug_params *p) {
  msci_rng r;
  seed_stream(&r, seed, sample_index, view, cfg->shared_geometry ? -1 : modality, "geom");
  memset(p, 0, sizeof *p);
  /* Always three draws first, so the crop's numbers do not depend on these options. */
  double uh = msci_rng_uniform(&r), uv = msci_rng_uniform(&r), ur = msci_rng_uniform(&r);
  p->hflip = cfg->hflip && uh < 0.5;
  p->vflip = cfg->vflip && uv < 0.5;
  int32_t k = (int32_t)(ur * 4.0);
  p->rot = (cfg->rot90 && h == w) ? (k > 3 ? 3 : k) : 0;
  if (!cfg->crop) return;
  p->crop = 1;
  /* torchvision's RandomResizedCrop.get_params, with the window as fractions of the
   * image: target area s·h·w, width sqrt(area·ratio) = w·sqrt(s·ratio·h/w). */
  double hw = (double)h / (double)w;
  double lr0 = log(cfg->crop_ratio_min), lr1 = log(cfg->crop_ratio_max);
  for (int tries = 0; tries < 10; ++tries) {
    double s = cfg->crop_scale_min +
               (cfg->crop_scale_max - cfg->crop_scale_min) * msci_rng_uniform(&r);
    double ratio = exp(lr0 + (lr1 - lr0) * msci_rng_uniform(&r));
    double fw = sqrt(s * ratio * hw), fh = sqrt(s / ratio / hw);
    if (fw <= 1.0 && fh <= 1.0) {
      p->crop_w = fw;
      p->crop_h = fh;
      p->crop_y = msci_rng_uniform(&r); /* torchvision draws the row first */
      p->crop_x = msci_rng_uniform(&r);
      return;
    }
  }
  /* Fallback: the central crop whose aspect ratio is the nearest allowed one. */
  double in_ratio = (double)w / (double)h;
  p->crop_centre = 1;
  p->crop_w = p->crop_h = 1.0;
  if (in_ratio < cfg->crop_ratio_min)
    p->crop_h = in_ratio / cfg->crop_ratio_min; /* width w, height w / ratio_min */
  else if (in_ratio > cfg->crop_ratio_max)
    p->crop_w = cfg->crop_ratio_max / in_ratio; /* height h, width h · ratio_max */
}

static void hflip_plane(float *x, int64_t h, int64_t w) {
  for (int64_t y = 0; y < h; ++y) {
    float *row = x + y * w;
    for (int64_t a = 0, b = w - 1; a < b; ++a, --b) {
      float t = row[a];
      row[a] = row[b];
      row[b] = t;
    }
  }
}

static void vflip_plane(float *x, int64_t h, int64_t w) {
  for (int64_t a = 0, b = h - 1; a < b; ++a, --b)
    for (int64_t i = 0; i < w; ++i) {
      float t = x[a * w + i];
      x[a * w + i] = x[b * w + i];
      x[b * w + i] = t;
    }
}

static void transpose_square(float *x, int64_t n) {
  for (int64_t y = 0; y < n; ++y)
    for (int64_t i = y + 1; i < n; ++i) {
      float t = x[y * n + i];
      x[y * n + i] = x[i * n + y];
      x[i * n + y] = t;
    }
}

/* Flips then the quarter turns in one pass: d[i][j] = t[Y][X] with (Y, X) the source of
 * (i, j) under the rotation undone, then the vertical and horizontal flips undone (as
 * msci_augment_mask). Along an output row the source index moves by a constant step:
 * ±1 (no turn, half turn) or ±w (quarter turns, square images), so a row is one strided
 * copy. t and d must not overlap. */
static int64_t source_index(int64_t i, int64_t j, int64_t h, int64_t w, int hflip, int vflip,
                            int rot) {
  int64_t y = i, x = j;
  if (rot == 1)
    y = j, x = w - 1 - i;
  else if (rot == 2)
    y = h - 1 - i, x = w - 1 - j;
  else if (rot == 3)
    y = h - 1 - j, x = i;
  if (vflip) y = h - 1 - y;
  if (hflip) x = w - 1 - x;
  return y * w + x;
}

static void permute_plane(const float *restrict t, float *restrict d, int64_t h, int64_t w,
                          int hflip, int vflip, int rot) {
  for (int64_t i = 0; i < h; ++i) {
    const int64_t first = source_index(i, 0, h, w, hflip, vflip, rot);
    const int64_t step = w > 1 ? source_index(i, 1, h, w, hflip, vflip, rot) - first : 0;
    const float *s = t + first;
    float *o = d + i * w;
    if (step == 1)
      memcpy(o, s, (size_t)w * sizeof(float));
    else
      for (int64_t j = 0; j < w; ++j) o[j] = s[j * step];
  }
}

msc_status msci_augment_apply(const msci_aug_params *p, const float *src, int64_t c, int64_t h,
                              int64_t w, float *dst, float *scratch) {
  if (p == NULL || src == NULL || dst == NULL || c < 1 || h < 1 || w < 1 ||
      (p->crop && scratch == NULL))
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msci_augment_apply: bad argument (%lldx%lldx%lld)", (long long)c,
                     (long long)h, (long long)w);
  int64_t y0, x0, ch, cw;
  msci_aug_crop_window(p, h, w, &y0, &x0, &ch, &cw);
  int full = (ch == h && cw == w);
  int rot = (h == w) ? (p->rot & 3) : 0;
  int permute = p->hflip || p->vflip || rot;
  size_t plane = (size_t)h * (size_t)w;
  for (int64_t b = 0; b < c; ++b) {
    const float *s = src + (size_t)b * plane;
    float *d = dst + (size_t)b * plane;
    if (scratch == NULL) {
      /* No crop and nowhere to stage a copy: the flips and turns in place. */
      if (d != s) memcpy(d, s, plane * sizeof(float));
      if (p->hflip) hflip_plane(d, h, w);
      if (p->vflip) vflip_plane(d, h, w);
      /* Counter-clockwise quarter turns: out[i][j] = in[j][n-1-i] is the transpose with
       * its rows reversed; a half turn reverses both axes; three quarters is the
       * transpose with its columns reversed. */
      if (rot == 1) {
        transpose_square(d, h);
        vflip_plane(d, h, w);
      } else if (rot == 2) {
        hflip_plane(d, h, w);
        vflip_plane(d, h, w);
      } else if (rot == 3) {
        transpose_square(d, h);
        hflip_plane(d, h, w);
      }
      continue;
    }
    /* The geometry as at most two passes: the window resampled straight from the band
     * (msci_resample_strided reads it in place), then one permuting copy. In place
     * (d == s) the source goes through scratch first. */
    const float *from = s;
    if (!full) {
      const float *win = s + (size_t)(y0 * w + x0);
      int64_t stride = w;
      if (d == s) {
        for (int64_t y = 0; y < ch; ++y)
          memcpy(scratch + (size_t)(y * cw), win + (size_t)(y * w), (size_t)cw * sizeof(float));
        win = scratch;
        stride = cw;
      }
      if (!permute || d == s) {
        msci_resample_strided(win, ch, cw, stride, d, h, w, MSCI_RESAMPLE_BILINEAR);
        if (!permute) continue;
        memcpy(scratch, d, plane * sizeof(float));
      } else {
        msci_resample_strided(win, ch, cw, stride, scratch, h, w, MSCI_RESAMPLE_BILINEAR);
      }
      from = scratch;
    } else if (!permute) {
      if (d != s) memcpy(d, s, plane * sizeof(float));
      continue;
    } else if (d == s) {
      memcpy(scratch, s, plane * sizeof(float));
      from = scratch;
    }
    permute_plane(from, d, h, w, p->hflip, p->vflip, rot);
  }
  return MSC_OK;
}

/* Each output pixel reads its source pixel: the transforms undone in reverse order
 * (rotation, vertical flip, horizontal flip), then the nearest pixel of the crop window. */
msc_status msci_augment_mask(const msci_aug_params *p, const int32_t *src, int64_t h, int64_t w,
                             int32_t *dst) {
  if (p == NULL || src == NULL || dst == NULL || h < 1 || w < 1 || src == dst)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_augment_mask: bad argument (%lldx%lld)",
                     (long long)h, (long long)w);
  int64_t y0, x0, ch, cw;
  msci_aug_crop_window(p, h, w, &y0, &x0, &ch, &cw);
  int rot = (h == w) ? (p->rot & 3) : 0;
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) {
      /* Inverse rotation (msci_augment_apply's counter-clockwise quarter turns). */
      int64_t y = i, x = j;
      if (rot == 1)
        y = j, x = w - 1 - i;
      else if (rot == 2)
        y = h - 1 - i, x = w - 1 - j;
      else if (rot == 3)
        y = h - 1 - j, x = i;
      if (p->vflip) y = h - 1 - y;
      if (p->hflip) x = w - 1 - x;
      int64_t sy = (int64_t)floor((double)y * (double)ch / (double)h);
      int64_t sx = (int64_t)floor((double)x * (double)cw / (double)w);
      sy = sy < ch ? sy : ch - 1;
      sx = sx < cw ? sx : cw - 1;
      dst[i * w + j] = src[(y0 + sy) * w + (x0 + sx)];
    }
  return MSC_OK;
}

/* ---- photometric ----------------------------------------------------------------------
 */

/* The means of n <= 4 consecutive bands, each the double sum of its pixels in order
 * (the rounding of the definition: a sum is never reassociated), four sums advancing
 * together so that their additions overlap instead of waiting on one another. */
static void band_means(const float *x, int64_t n, size_t plane, double *mean) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  if (n == 4) {
    const float *x1 = x + plane, *x2 = x1 + plane, *x3 = x2 + plane;
    for (size_t i = 0; i < plane; ++i) {
      s0 += (double)x[i];
      s1 += (double)x1[i];
      s2 += (double)x2[i];
      s3 += (double)x3[i];
    }
    mean[0] = s0, mean[1] = s1, mean[2] = s2, mean[3] = s3;
  } else {
    for (int64_t k = 0; k < n; ++k) {
      double sum = 0;
      for (size_t i = 0; i < plane; ++i) sum += (double)x[(size_t)k * plane + i];
      mean[k] = sum;
    }
  }
  for (int64_t k = 0; k < n; ++k) mean[k] /= (double)plane;
}

msc_status msci_augment_photometric(const msci_aug_cfg *cfg, uint64_t seed,
                                    int64_t sample_index, int32_t view, int32_t modality,
                                    int32_t kind, float *x, int64_t c, int64_t h, int64_t w) {
  if (cfg == NULL || x == NULL || c < 1 || h < 1 || w < 1 || modality < 0 ||
      modality >= MSCI_MAX_MODALITIES)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msci_augment_photometric: bad argument (modality %d, %lldx%lldx%lld)",
                     (int)modality, (long long)c, (long long)h, (long long)w);
  size_t plane = (size_t)h * (size_t)w;
  msci_rng r;
  /* Speckle and noise draw their normals a block at a time (msci_rng_normals, the polar
   * method; NORMALS is even, so a band's speckle, or the whole noise, gets the numbers of
   * one call for all its pixels). */
  enum { NORMALS = 512 };
  double normals[NORMALS];
  if (kind == MSCI_KIND_SAR && cfg->speckle > 0) {
    int32_t nb = cfg->norm_bands[modality];
    if (nb != 0 && nb != c)
      return msci_fail(MSC_E_SHAPE,
                       "augmentation: modality %d has %lld bands but %d "
                       "normalisation values",
                       (int)modality, (long long)c, (int)nb);
    seed_stream(&r, seed, sample_index, view, modality, "speckle");
    /* x' = x(1 + s n) in input units; with x = z·std + mean that is
     * z' = z + (z + mean/std)·s·n on the normalised values. */
    for (int64_t b = 0; b < c; ++b) {
      double off =
          nb ? (double)cfg->norm_mean[modality][b] / (double)cfg->norm_std[modality][b] : 0;
      float *xb = x + (size_t)b * plane;
      for (size_t at = 0; at < plane; at += NORMALS) {
        const size_t m = plane - at < NORMALS ? plane - at : NORMALS;
        msci_rng_normals(&r, normals, m);
#pragma omp simd
        for (size_t i = 0; i < m; ++i) {
          double z = xb[at + i];
          xb[at + i] = (float)(z + (z + off) * cfg->speckle * normals[i]);
        }
      }
    }
  }
  if (kind == MSCI_KIND_OPTICAL && (cfg->jitter_brightness > 0 || cfg->jitter_contrast > 0)) {
    seed_stream(&r, seed, sample_index, view, modality, "jitter");
    double cb = cfg->jitter_brightness, cc = cfg->jitter_contrast;
    double means[4] = {0, 0, 0, 0}; /* of bands b - b % 4 .. + 3 */
    for (int64_t b = 0; b < c; ++b) {
      /* Two draws per band whatever is enabled: gain, then offset. */
      double gain = 1.0 - cc + 2.0 * cc * msci_rng_uniform(&r);
      double offset = -cb + 2.0 * cb * msci_rng_uniform(&r);
      float *xb = x + (size_t)b * plane;
      if (cc > 0) {
        if (b % 4 == 0) band_means(xb, c - b < 4 ? c - b : 4, plane, means);
        const double mean = means[b % 4];
#pragma omp simd
        for (size_t i = 0; i < plane; ++i)
          xb[i] = (float)(mean + gain * ((double)xb[i] - mean) + offset);
      } else {
#pragma omp simd
        for (size_t i = 0; i < plane; ++i) xb[i] = (float)((double)xb[i] + offset);
      }
    }
  }
  if (cfg->noise_std > 0) {
    seed_stream(&r, seed, sample_index, view, modality, "noise");
    size_t n = (size_t)c * plane;
    for (size_t at = 0; at < n; at += NORMALS) {
      const size_t m = n - at < NORMALS ? n - at : NORMALS;
      msci_rng_normals(&r, normals, m);
#pragma omp simd
      for (size_t i = 0; i < m; ++i)
        x[at + i] = (float)((double)x[at + i] + cfg->noise_std * normals[i]);
    }
  }
  return MSC_OK;
}

/* ---- one view ---------------------------------------------------------------------------
 */

msc_status msci_augment_view(const msci_aug_cfg *cfg, uint64_t seed, int64_t sample_index,
                             int32_t view, int32_t modality, int32_t kind, const float *src,
                             int64_t c, int64_t h, int64_t w, float *dst, float *scratch) {
  if (cfg == NULL || src == NULL || dst == NULL || scratch == NULL || c < 1 || h < 1 || w < 1 ||
      modality < 0 || modality >= MSCI_MAX_MODALITIES || kind < MSCI_KIND_OTHER ||
      kind > MSCI_KIND_PLOT)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msci_augment_view: bad argument (modality %d, kind %d, %lldx%lldx%lld)",
                     (int)modality, (int)kind, (long long)c, (long long)h, (long long)w);
  if (kind == MSCI_KIND_PLOT) {
    memcpy(dst, src, (size_t)(c * h * w) * sizeof *dst);
    return MSC_OK;
  }
  msci_aug_params p;
  msci_aug_draw_geometry(cfg, seed, sample_index, view, modality, h, w, &p);
  MSCI_TRY(msci_augment_apply(&p, src, c, h, w, dst, scratch));
  return msci_augment_photometric(cfg, seed, sample_index, view, modality, kind, dst, c, h, w);
}
