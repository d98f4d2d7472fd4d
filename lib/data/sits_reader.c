/*
 * sits_reader.c — computing a SITS sample when it is read (sits_reader.h; the method is in
 * docs/pimc.md, "Samples"): cloudy dates masked, the dates put on the common time axis
 * (series.h), vegetation indices and recurrence plots (sits.h) for the "rp" modality, a
 * composite or one date of the window around the pixel for the "s2" modality.
 *
 * Every read allocates its own buffers (a window of T dates is a few hundred kilobytes)
 * and frees them, so reads on any number of threads share nothing but the read-only
 * msci_sits.
 */
#include "data/sits_reader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "common/rng.h"
#include "data/raster.h"
#include "data/series.h"
#include "options/options.h"

/* ---- setup ------------------------------------------------------------------------------ */

msc_status msci_sits_add_patch(msci_sits *s, const char *path, int64_t t, int64_t h, int64_t w,
                               double *days) {
  if (s->n_patches == s->cap_patches) {
    int64_t cap = s->cap_patches ? 2 * s->cap_patches : 64;
    msci_sits_patch *p = realloc(s->patches, (size_t)cap * sizeof *p);
    if (!p) {
      free(days);
      return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
    }
    s->patches = p;
    s->cap_patches = cap;
  }
  msci_sits_patch *p = &s->patches[s->n_patches];
  size_t n = strlen(path) + 1;
  if (!(p->path = malloc(n))) {
    free(days);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
  }
  memcpy(p->path, path, n);
  p->t = t;
  p->h = h;
  p->w = w;
  p->days = days;
  s->n_patches++;
  return MSC_OK;
}

void msci_sits_free(void *state) {
  msci_sits *s = state;
  if (!s) return;
  if (s->format_free) s->format_free(s);
  for (int64_t i = 0; i < s->n_patches; ++i) {
    free(s->patches[i].path);
    free(s->patches[i].days);
  }
  free(s->patches);
  free(s->grid);
  free(s);
}

/* data.sits.indices into cfg->index (msci_vi values). */
static msc_status parse_indices(const char *text, msci_rp_cfg *cfg) {
  const char *names[MSCI_VI_COUNT];
  for (int k = 0; k < MSCI_VI_COUNT; ++k) names[k] = msci_vi_name((msci_vi)k);
  return msci_parse_name_list("data.sits.indices", text, names, MSCI_VI_COUNT, cfg->index,
                              &cfg->channels);
}

/* data.sits.modalities: rp, s2 and series (MSCI_SITS_* 0, 1, 2), in modality order. */
static msc_status parse_modalities(const char *text, msci_sits *s) {
  static const char *const names[3] = {"rp", "s2", "series"};
  _Static_assert(MSCI_SITS_RP == 0 && MSCI_SITS_IMAGE == 1 && MSCI_SITS_SERIES == 2,
                 "roles are the positions in names");
  return msci_parse_name_list("data.sits.modalities", text, names, 3, s->role, &s->n_roles);
}

static msc_status parse_image(const char *text, int64_t dates, int32_t *mode) {
  if (strcmp(text, "median") == 0)
    *mode = MSCI_SITS_IMAGE_MEDIAN;
  else if (strcmp(text, "mean") == 0)
    *mode = MSCI_SITS_IMAGE_MEAN;
  else if (strcmp(text, "first") == 0)
    *mode = 0;
  else if (strcmp(text, "middle") == 0)
    *mode = MSCI_SITS_IMAGE_MIDDLE;
  else if (strcmp(text, "last") == 0)
    *mode = MSCI_SITS_IMAGE_LAST;
  else {
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < 0 || v >= dates)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "data.sits.image: '%s' is not median, mean, first, middle, last or a "
                       "date 0..%lld",
                       text, (long long)dates - 1);
    *mode = (int32_t)v;
  }
  return MSC_OK;
}

/* The unit of an image or series modality: the files' values, reflectance = (value +
 * data.sits.offset) / data.sits.scale, i.e. value * (1 / scale) + offset / scale. The
 * plots (vegetation indices) are physical already: 1 and 0. */
static void set_units(msc_dataset *ds, int32_t k, const msci_sits *s) {
  ds->mod[k].scale = 1.0 / s->bands.scale;
  ds->mod[k].offset = s->bands.offset / s->bands.scale;
}

msc_status msci_sits_setup(msci_sits *s, msc_dataset *ds, const msc_options *o) {
  char *sample = NULL, *time = NULL, *indices = NULL, *plot = NULL, *image = NULL;
  char *modalities = NULL;
  int64_t start = 0, end = 0, plot_size = 0;
  double eps = 0, eps_pct = 0;
  msc_status st = MSC_OK;
  if ((st = msci_options_get_string_alloc(o, "data.sits.sample", &sample)) != MSC_OK ||
      (st = msci_options_get_string_alloc(o, "data.sits.modalities", &modalities)) != MSC_OK ||
      (st = msci_options_get_string_alloc(o, "data.sits.time", &time)) != MSC_OK ||
      (st = msci_options_get_string_alloc(o, "data.sits.indices", &indices)) != MSC_OK ||
      (st = msci_options_get_string_alloc(o, "data.sits.plot", &plot)) != MSC_OK ||
      (st = msci_options_get_string_alloc(o, "data.sits.image", &image)) != MSC_OK ||
      (st = msc_options_get_int(o, "data.sits.length", &s->length)) != MSC_OK ||
      (st = msc_options_get_int(o, "data.sits.history", &s->history)) != MSC_OK ||
      (st = msc_options_get_int(o, "data.sits.start", &start)) != MSC_OK ||
      (st = msc_options_get_int(o, "data.sits.end", &end)) != MSC_OK ||
      (st = msc_options_get_int(o, "data.sits.plot_size", &plot_size)) != MSC_OK ||
      (st = msc_options_get_int(o, "data.sits.patch", &s->image_size)) != MSC_OK ||
      (st = msc_options_get_float(o, "data.sits.eps", &eps)) != MSC_OK ||
      (st = msc_options_get_float(o, "data.sits.eps_percentile", &eps_pct)) != MSC_OK ||
      (st = msc_options_get_float(o, "data.sits.scale", &s->bands.scale)) != MSC_OK ||
      (st = msc_options_get_float(o, "data.sits.offset", &s->bands.offset)) != MSC_OK ||
      (st = msc_options_get_float(o, "data.sits.cloud_blue", &s->cloud_blue)) != MSC_OK)
    goto done;
  if ((st = parse_modalities(modalities, s)) != MSC_OK) goto done;
  s->patch_samples = strcmp(sample, "patch") == 0;
  s->pad = strcmp(time, "pad") == 0;
  const int64_t plotted = s->length - s->history;
  if (plotted < 2) {
    st = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "data.sits.history: %lld of %lld dates left out leaves fewer than 2 to plot",
                   (long long)s->history, (long long)s->length);
    goto done;
  }
  s->rp = msci_rp_cfg_default();
  if ((st = parse_indices(indices, &s->rp)) != MSC_OK) goto done;
  if ((st = parse_image(image, plotted, &s->image_mode)) != MSC_OK) goto done;
  s->rp.binary = strcmp(plot, "binary") == 0;
  s->rp.eps_is_percentile = eps_pct > 0;
  s->rp.eps = eps_pct > 0 ? eps_pct : eps;
  s->rp.size = plot_size;
  if (s->cloud_blue > 0 && s->bands.b2 < 0) {
    st = msci_fail(MSC_E_INVALID_ARGUMENT, "data.sits.cloud_blue: %s has no blue band",
                   s->format);
    goto done;
  }
  if (s->n_patches == 0) goto declare;

  if (!s->pad) {
    /* The grid spans every patch of the table (all splits), so that the train and test
     * datasets of one root share it. */
    double first = s->patches[0].days[0], last = first;
    for (int64_t i = 0; i < s->n_patches; ++i) {
      const msci_sits_patch *p = &s->patches[i];
      if (p->days[0] < first) first = p->days[0];
      if (p->days[p->t - 1] > last) last = p->days[p->t - 1];
    }
    int64_t d;
    if (start > 0) {
      if ((st = msci_date_days(start, &d)) != MSC_OK) goto done;
      first = (double)d;
    }
    if (end > 0) {
      if ((st = msci_date_days(end, &d)) != MSC_OK) goto done;
      last = (double)d;
    }
    if (last < first) {
      st = msci_fail(MSC_E_INVALID_ARGUMENT, "data.sits.end (%lld) is before data.sits.start",
                     (long long)end);
      goto done;
    }
    if (!(s->grid = malloc((size_t)s->length * sizeof *s->grid))) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
      goto done;
    }
    msci_series_grid(first, last, s->length, s->grid);
  }

declare:;
  const char *rp_names[MSCI_VI_COUNT];
  for (int k = 0; k < s->rp.channels; ++k) rp_names[k] = msci_vi_name((msci_vi)s->rp.index[k]);
  const int64_t S = plot_size > 0 ? plot_size : plotted;
  for (int32_t k = 0; k < s->n_roles && st == MSC_OK; ++k) {
    if (s->role[k] == MSCI_SITS_RP) {
      st = msci_dataset_set_modality(ds, k, "rp", S, rp_names, s->rp.channels);
    } else if (s->role[k] == MSCI_SITS_IMAGE) {
      st = msci_dataset_set_modality(ds, k, "s2", s->image_size, s->band_names, s->c);
      if (st == MSC_OK) set_units(ds, k, s);
    } else {
      /* The stack's bands are named <band>@<date>, date-major. */
      const int64_t nb = plotted * s->c;
      char **names = calloc((size_t)nb, sizeof *names);
      for (int64_t b = 0; names && b < nb; ++b) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s@%lld", s->band_names[b % s->c], (long long)(b / s->c));
        names[b] = strdup(buf);
      }
      st = names ? msci_dataset_set_modality(ds, k, "series", s->image_size,
                                             (const char *const *)names, nb)
                 : msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
      for (int64_t b = 0; names && b < nb; ++b) free(names[b]);
      free(names);
      if (st == MSC_OK) set_units(ds, k, s);
    }
  }
done:
  free(sample);
  free(modalities);
  free(time);
  free(indices);
  free(plot);
  free(image);
  return st;
}

/* ---- samples ----------------------------------------------------------------------------- */

msc_status msci_sits_add_samples(msc_dataset *ds, const msci_sits *s, int64_t pi,
                                 const char *id, int32_t split, const int32_t *cls,
                                 int64_t pixels, int64_t seed, int64_t *cand,
                                 const char *const *names, int n_names) {
  const msci_sits_patch *p = &s->patches[pi];
  const int64_t hw = p->h * p->w;
  char sid[600];
  if (s->patch_samples) {
    msci_sample *smp = msci_dataset_add(ds, id);
    if (!smp) return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
    smp->split = split;
    smp->pos[0] = pi;
    smp->pos[1] = smp->pos[2] = -1;
    if (cls) {
      if (!(smp->labels = calloc((size_t)ds->classes, 1)))
        return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
      for (int64_t q = 0; q < hw; ++q)
        if (cls[q] >= 0) smp->labels[cls[q]] = 1;
      return MSC_OK;
    }
    return ds->classes > 0 ? msci_sample_set_label_names(smp, ds, names, n_names) : MSC_OK;
  }
  /* Candidates: the pixels not ignored; a seeded partial Fisher–Yates draw of them. */
  int64_t n = 0;
  for (int64_t q = 0; q < hw; ++q)
    if (!cls || cls[q] >= 0) cand[n++] = q;
  const int64_t take = pixels < n ? pixels : n;
  char stream[600];
  snprintf(stream, sizeof stream, "%s/pixels/%s", s->format, id);
  msci_rng rng;
  msci_rng_seed(&rng, (uint64_t)seed, stream);
  for (int64_t j = 0; j < take; ++j) {
    int64_t r = j + (int64_t)(msci_rng_next(&rng) % (uint64_t)(n - j));
    int64_t q = cand[r];
    cand[r] = cand[j];
    cand[j] = q;
    snprintf(sid, sizeof sid, "%s:%lld:%lld", id, (long long)(q / p->w), (long long)(q % p->w));
    msci_sample *smp = msci_dataset_add(ds, sid);
    if (!smp) return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
    smp->split = split;
    smp->pos[0] = pi;
    smp->pos[1] = q / p->w;
    smp->pos[2] = q % p->w;
    if (cls) {
      if (!(smp->labels = calloc((size_t)ds->classes, 1)))
        return msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
      smp->labels[cls[q]] = 1;
    } else if (ds->classes > 0) {
      MSCI_TRY(msci_sample_set_label_names(smp, ds, names, n_names));
    }
  }
  return MSC_OK;
}

/* ---- reading ---------------------------------------------------------------------------- */

/* Marks cloudy dates missing: where the blue reflectance of a pixel exceeds cloud_blue,
 * every band of that pixel and date becomes NaN. x is T × C × np. */
static void mask_clouds(const msci_sits *s, float *x, int64_t t, int64_t np) {
  if (s->cloud_blue <= 0) return;
  const int64_t c = s->c;
  for (int64_t d = 0; d < t; ++d) {
    float *xd = x + (size_t)(d * c * np);
    for (int64_t q = 0; q < np; ++q) {
      double blue = ((double)xd[s->bands.b2 * np + q] + s->bands.offset) / s->bands.scale;
      if (blue > s->cloud_blue)
        for (int64_t b = 0; b < c; ++b) xd[b * np + q] = NAN;
    }
  }
}

/* T × (C·np) onto the L dates of the time axis. */
static msc_status to_axis(const msci_sits *s, const msci_sits_patch *p, const float *x,
                          int64_t np, float *out) {
  const int64_t per = s->c * np;
  if (s->pad) {
    msci_series_pad(x, p->t, per, s->length, out, NULL);
    return MSC_OK;
  }
  return msci_series_resample(x, p->t, per, p->days, s->grid, s->length, out);
}

msc_status msci_sits_series(const msci_sits *s, const int64_t pos[3], float *out,
                            double *days) {
  if (pos[0] < 0 || pos[0] >= s->n_patches)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "dataset %s: no patch %lld", s->format,
                     (long long)pos[0]);
  const msci_sits_patch *p = &s->patches[pos[0]];
  const int64_t c = s->c, t = p->t;
  const int pixel = pos[1] >= 0;
  const int64_t np = pixel ? 1 : p->h * p->w;
  float *box = malloc((size_t)(t * c * np) * sizeof *box);
  float *mean = pixel ? box : malloc((size_t)(t * c) * sizeof *mean);
  msc_status st = MSC_OK;
  if (!box || !mean) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
    goto done;
  }
  if ((st = s->read_box(s, pos[0], pixel ? pos[1] : 0, pixel ? pos[2] : 0, pixel ? 1 : p->h,
                        pixel ? 1 : p->w, box)) != MSC_OK)
    goto done;
  mask_clouds(s, box, t, np);
  if (!pixel) /* the patch's mean series over its valid pixels, per date and band */
    for (int64_t i = 0; i < t * c; ++i) {
      double sum = 0;
      int64_t n = 0;
      for (int64_t q = 0; q < np; ++q) {
        float v = box[i * np + q];
        if (isfinite(v)) sum += v, n++;
      }
      mean[i] = n ? (float)(sum / (double)n) : NAN;
    }
  if ((st = to_axis(s, p, mean, 1, out)) != MSC_OK) goto done;
  if (days)
    for (int64_t l = 0; l < s->length; ++l)
      days[l] = !s->pad ? s->grid[l] : l < t ? p->days[l] : NAN;
done:
  if (mean != box) free(mean);
  free(box);
  return st;
}

/* The K × S × S recurrence plots of sample pos into dst. */
static msc_status read_plots(const msci_sits *s, const int64_t pos[3], float *dst) {
  const int64_t L = s->length, Lh = L - s->history, K = s->rp.channels;
  float *series = malloc((size_t)(L * s->c) * sizeof *series);
  float *idx = malloc((size_t)(K * Lh) * sizeof *idx);
  float *scratch = malloc(msci_rp_scratch_floats(Lh, &s->rp) * sizeof *scratch);
  msc_status st = MSC_OK;
  if (!series || !idx || !scratch) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
    goto done;
  }
  if ((st = msci_sits_series(s, pos, series, NULL)) != MSC_OK) goto done;
  for (int64_t k = 0; k < K && st == MSC_OK; ++k)
    st = msci_vi_compute((msci_vi)s->rp.index[k], &s->bands, series, Lh, s->c, 1, idx + k * Lh,
                         NULL);
  if (st == MSC_OK) st = msci_rp_series(idx, Lh, &s->rp, dst, NULL, scratch);
done:
  free(series);
  free(idx);
  free(scratch);
  return st;
}

/* One image value from the dates v[0..n) (stride apart) of one band and pixel: the
 * composite or the chosen date; 0 where nothing valid is left. */
static float image_value(const msci_sits *s, const float *v, int64_t n, int64_t stride,
                         float *tmp) {
  float r = NAN;
  if (s->image_mode == MSCI_SITS_IMAGE_MEDIAN || s->image_mode == MSCI_SITS_IMAGE_MEAN) {
    int64_t m = 0;
    double sum = 0;
    for (int64_t d = 0; d < n; ++d) {
      float x = v[d * stride];
      if (isfinite(x)) tmp[m++] = x, sum += x;
    }
    if (m > 0)
      r = s->image_mode == MSCI_SITS_IMAGE_MEAN ? (float)(sum / (double)m)
                                                : (float)msci_percentile_linear(tmp, m, 50.0);
  } else {
    int64_t d = s->image_mode == MSCI_SITS_IMAGE_MIDDLE ? (n - 1) / 2
                : s->image_mode == MSCI_SITS_IMAGE_LAST ? n - 1
                                                        : s->image_mode;
    r = v[d * stride];
  }
  return isfinite(r) ? r : 0.0f;
}

/* The C × P × P image of sample pos into dst, or with stack set the (L − history)·C × P × P
 * stack of its dates (date-major: plane l·C + b is band b on date l; missing values 0). */
static msc_status read_window(const msci_sits *s, const int64_t pos[3], int stack, float *dst) {
  const msci_sits_patch *p = &s->patches[pos[0]];
  const int64_t c = s->c, t = p->t, L = s->length, Lh = L - s->history, P = s->image_size;
  const int pixel = pos[1] >= 0;
  /* The window: P × P with the pixel at row and column P/2, cut to the patch (the rest is
   * filled from the nearest edge pixel below); a patch sample takes the whole patch. */
  const int64_t y0 = pixel ? pos[1] - P / 2 : 0, x0 = pixel ? pos[2] - P / 2 : 0;
  const int64_t by0 = y0 < 0 ? 0 : y0, bx0 = x0 < 0 ? 0 : x0;
  const int64_t by1 = pixel ? (y0 + P < p->h ? y0 + P : p->h) : p->h;
  const int64_t bx1 = pixel ? (x0 + P < p->w ? x0 + P : p->w) : p->w;
  const int64_t bh = by1 - by0, bw = bx1 - bx0, np = bh * bw;
  float *box = malloc((size_t)(t * c * np) * sizeof *box);
  float *axis = malloc((size_t)(L * c * np) * sizeof *axis);
  const int64_t planes = stack ? Lh * c : c;
  float *img = malloc((size_t)(planes * np) * sizeof *img);
  float *tmp = malloc((size_t)L * sizeof *tmp);
  msc_status st = MSC_OK;
  if (!box || !axis || !img || !tmp) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "dataset %s: out of memory", s->format);
    goto done;
  }
  if ((st = s->read_box(s, pos[0], by0, bx0, bh, bw, box)) != MSC_OK) goto done;
  mask_clouds(s, box, t, np);
  if ((st = to_axis(s, p, box, np, axis)) != MSC_OK) goto done;
  if (stack) /* the axis is already date-major L × C × np: its first Lh dates */
    for (int64_t i = 0; i < planes * np; ++i) img[i] = isfinite(axis[i]) ? axis[i] : 0.0f;
  else
    for (int64_t i = 0; i < c * np; ++i) img[i] = image_value(s, axis + i, Lh, c * np, tmp);
  if (!pixel) {
    for (int64_t b = 0; b < planes; ++b)
      msci_resample(img + b * np, bh, bw, dst + b * P * P, P, P, MSCI_RESAMPLE_BILINEAR);
  } else {
    for (int64_t b = 0; b < planes; ++b)
      for (int64_t y = 0; y < P; ++y) {
        int64_t sy = y0 + y < by0 ? by0 : y0 + y >= by1 ? by1 - 1 : y0 + y;
        for (int64_t x = 0; x < P; ++x) {
          int64_t sx = x0 + x < bx0 ? bx0 : x0 + x >= bx1 ? bx1 - 1 : x0 + x;
          dst[(b * P + y) * P + x] = img[(b * bh + (sy - by0)) * bw + (sx - bx0)];
        }
      }
  }
done:
  free(box);
  free(axis);
  free(img);
  free(tmp);
  return st;
}

static msc_status sits_read(const msc_dataset *ds, int64_t i, int32_t k, float *dst) {
  const msci_sits *s = ds->reader_state;
  const msci_sample *smp = &ds->samples[i];
  const int32_t role = s->role[k];
  msc_status st = role == MSCI_SITS_RP
                      ? read_plots(s, smp->pos, dst)
                      : read_window(s, smp->pos, role == MSCI_SITS_SERIES, dst);
  if (st != MSC_OK) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", msc_last_error());
    return msci_fail(st, "dataset %s: sample %s: %s", ds->format, smp->id, msg);
  }
  return MSC_OK;
}

const msci_ds_reader msci_sits_reader = {sits_read, msci_sits_free, NULL}; /* no masks */

/* ---- public ------------------------------------------------------------------------------ */

MSC_API msc_status msc_dataset_series(const msc_dataset *ds, int64_t i, float *out, size_t cap,
                                      double *days, int64_t *t, int64_t *c) {
  if (!ds || !t || !c || (!out && cap > 0))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_series: NULL argument");
  if (ds->reader != &msci_sits_reader)
    return msci_fail(
        MSC_E_UNSUPPORTED,
        "msc_dataset_series: format %s holds no time series (pastis and series do)",
        ds->format);
  if (i < 0 || i >= ds->n_samples)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dataset_series: index %lld outside 0..%lld",
                     (long long)i, (long long)ds->n_samples - 1);
  const msci_sits *s = ds->reader_state;
  *t = s->length;
  *c = s->c;
  const size_t need = (size_t)(s->length * s->c);
  if (!out) return MSC_OK;
  if (cap < need)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL, "msc_dataset_series: %zu values, room for %zu",
                     need, cap);
  msc_status st = msci_sits_series(s, ds->samples[i].pos, out, days);
  if (st != MSC_OK) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", msc_last_error());
    return msci_fail(st, "dataset %s: sample %s: %s", ds->format, ds->samples[i].id, msg);
  }
  return MSC_OK;
}
