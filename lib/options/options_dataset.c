/*
 * options_dataset.c — msc_options_from_dataset: the model keys a dataset determines
 * (modalities with their names, bands and patch size, and their inputs' band names,
 * scale and offset; classes and class names; the
 * label mode, single for a single-label format unless set; the normalisation statistics, published or computed), set on a copy of the handle that
 * replaces its contents only when every key was accepted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"
#include "options/options.h"
#include "options/options_impl.h"

#define MSCI_KEY_CAP 64

/* "<what>: <msc_last_error() or the status's description>", with code st. */
static msc_status wrap(msc_status st, const char *what) {
  const char *msg = msc_last_error();
  return msci_fail(st, "%s: %s", what, msg[0] ? msg : msc_status_string(st));
}

/* The normalisation of modality i into mean/sd (bands values): the published
 * statistics, else (or with MSC_STATS_COMPUTED) computed over max_samples samples, a
 * constant band (std <= 1e-6) getting std 1. */
static msc_status modality_stats(const msc_dataset *ds, int32_t i, int32_t mode,
                                 int64_t max_samples, float *mean, float *sd, int64_t bands) {
  const char *name = msc_dataset_modality_name(ds, i);
  char what[96];
  msc_status st = MSC_E_NOT_FOUND;
  if (mode != MSC_STATS_COMPUTED) st = msc_dataset_stats(ds, i, mean, sd, (size_t)bands);
  if (st == MSC_OK) return MSC_OK;
  if (mode == MSC_STATS_PUBLISHED) {
    snprintf(what, sizeof what, "published statistics of %s", name);
    return wrap(st, what);
  }
  msci_log(MSC_LOG_DEBUG, "computing the normalisation of %s from %lld samples", name,
           (long long)max_samples);
  st = msc_dataset_compute_stats(ds, i, max_samples, mean, sd, (size_t)bands);
  if (st != MSC_OK) {
    snprintf(what, sizeof what, "normalisation statistics of %s", name);
    return wrap(st, what);
  }
  for (int64_t b = 0; b < bands; ++b)
    if (!(sd[b] > 1e-6f)) sd[b] = 1.0f; /* a constant band */
  return MSC_OK;
}

/* The inputs' description of modality i: band_names (cleared for a dataset without
 * names, so that none of another dataset stays), scale and offset. */
static msc_status set_inputs(msc_options *o, const msc_dataset *ds, int32_t i, int64_t bands) {
  char key[MSCI_KEY_CAP];
  size_t len = 1;
  int named = 1;
  for (int64_t b = 0; b < bands; ++b) {
    const char *n = msc_dataset_band_name(ds, i, b);
    named &= n != NULL;
    len += n ? strlen(n) + 1 : 0;
  }
  char *names = malloc(len);
  float *conv = malloc(2 * (size_t)bands * sizeof *conv);
  msc_status st = names && conv ? MSC_OK : msci_opt_oom(len);
  size_t at = 0;
  if (names) names[0] = '\0';
  for (int64_t b = 0; st == MSC_OK && named && b < bands; ++b) {
    const char *n = msc_dataset_band_name(ds, i, b);
    size_t k = strlen(n);
    if (b > 0) names[at++] = ',';
    memcpy(names + at, n, k + 1);
    at += k;
  }
  snprintf(key, sizeof key, "modality.%d.band_names", (int)i);
  if (st == MSC_OK) st = msc_options_set_string(o, key, named ? names : "");
  for (int64_t b = 0; st == MSC_OK && b < bands; ++b) {
    double scale = 1, offset = 0;
    st = msc_dataset_band_scale(ds, i, b, &scale, &offset);
    conv[b] = (float)scale;
    conv[bands + b] = (float)offset;
  }
  snprintf(key, sizeof key, "modality.%d.scale", (int)i);
  if (st == MSC_OK) st = msc_options_set_floats(o, key, conv, (size_t)bands);
  snprintf(key, sizeof key, "modality.%d.offset", (int)i);
  if (st == MSC_OK) st = msc_options_set_floats(o, key, conv + bands, (size_t)bands);
  free(names);
  free(conv);
  return st;
}

/* The keys of modality i; mean and std only where o does not hold them yet. */
static msc_status set_modality(msc_options *o, const msc_dataset *ds, int32_t i, int32_t mode,
                               int64_t max_samples) {
  char key[MSCI_KEY_CAP];
  int64_t bands = 0, size = 0;
  MSCI_TRY(msc_dataset_modality_shape(ds, i, &bands, &size));
  snprintf(key, sizeof key, "modality.%d.name", (int)i);
  MSCI_TRY(msc_options_set_string(o, key, msc_dataset_modality_name(ds, i)));
  snprintf(key, sizeof key, "modality.%d.bands", (int)i);
  MSCI_TRY(msc_options_set_int(o, key, bands));
  snprintf(key, sizeof key, "modality.%d.size", (int)i);
  MSCI_TRY(msc_options_set_int(o, key, size));

  MSCI_TRY(set_inputs(o, ds, i, bands));

  static const char *const which[2] = {"mean", "std"};
  int32_t set[2] = {0, 0};
  for (int k = 0; k < 2; k++) {
    snprintf(key, sizeof key, "modality.%d.%s", (int)i, which[k]);
    MSCI_TRY(msc_options_is_set(o, key, &set[k]));
  }
  if (set[0] && set[1]) return MSC_OK;
  float *vals = malloc(2 * (size_t)bands * sizeof *vals);
  if (vals == NULL) return msci_opt_oom(2 * (size_t)bands * sizeof *vals);
  msc_status st = modality_stats(ds, i, mode, max_samples, vals, vals + bands, bands);
  for (int k = 0; st == MSC_OK && k < 2; k++) {
    if (set[k]) continue;
    snprintf(key, sizeof key, "modality.%d.%s", (int)i, which[k]);
    st = msc_options_set_floats(o, key, vals + k * bands, (size_t)bands);
  }
  free(vals);
  return st;
}

/* The name of class k: of the patch labels, or of the mask when there are none. */
static const char *class_name(const msc_dataset *ds, int32_t from_mask, int64_t k) {
  return from_mask ? msc_dataset_mask_class_name(ds, k) : msc_dataset_class_name(ds, k);
}

/* classes and class_names (joined with ';'): the patch labels', or, for a dataset with
 * masks and no patch labels (Sen1Floods11), the mask's classes (a segmentation model's
 * per-pixel classes, docs/segmentation.md). */
static msc_status set_classes(msc_options *o, const msc_dataset *ds) {
  int64_t c = msc_dataset_class_count(ds), mc = 0, msize = 0;
  int32_t ignore = 0, from_mask = 0;
  if (c == 0 && msc_dataset_mask_info(ds, &mc, &ignore, &msize) == MSC_OK && mc > 0)
    c = mc, from_mask = 1;
  msc_clear_error();
  MSCI_TRY(msc_options_set_int(o, "classes", c));
  size_t len = 1;
  for (int64_t k = 0; k < c; ++k) len += strlen(class_name(ds, from_mask, k)) + 1;
  char *names = malloc(len);
  if (names == NULL) return msci_opt_oom(len);
  size_t at = 0;
  names[0] = '\0';
  for (int64_t k = 0; k < c; ++k) {
    const char *name = class_name(ds, from_mask, k);
    size_t n = strlen(name);
    if (k > 0) names[at++] = ';';
    memcpy(names + at, name, n + 1);
    at += n;
  }
  msc_status st = msc_options_set_string(o, "class_names", names);
  free(names);
  return st;
}

msc_status msc_options_from_dataset(msc_options *opts, const msc_dataset *ds, int32_t stats,
                                    int64_t stats_samples) {
  static const char fn[] = "msc_options_from_dataset";
  if (opts == NULL || ds == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                     opts == NULL ? "opts" : "ds");
  if (stats != MSC_STATS_AUTO && stats != MSC_STATS_PUBLISHED && stats != MSC_STATS_COMPUTED)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: stats is %d, expected MSC_STATS_AUTO (0), MSC_STATS_PUBLISHED (1) "
                     "or MSC_STATS_COMPUTED (2)",
                     fn, (int)stats);
  if (stats_samples < 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: stats_samples is %lld, expected >= 0 (0: all)", fn,
                     (long long)stats_samples);
  msc_options *o = NULL;
  MSCI_TRY(msci_options_copy(opts, &o));
  int32_t nm = msc_dataset_modality_count(ds);
  msc_status st = msc_options_set_int(o, "modality.count", nm);
  for (int32_t i = 0; st == MSC_OK && i < nm; ++i)
    st = set_modality(o, ds, i, stats, stats_samples);
  if (st == MSC_OK) st = set_classes(o, ds);
  /* The label mode, unless the caller chose one (labels = single on a manifest). */
  int32_t mode_set = 0;
  if (st == MSC_OK) st = msc_options_is_set(o, "labels", &mode_set);
  if (st == MSC_OK && !mode_set)
    st = msc_options_set_string(o, "labels", msc_dataset_single_label(ds) ? "single" : "multi");
  if (st != MSC_OK) {
    msc_options_free(o);
    return st;
  }
  msci_opt_replace(opts, o);
  return MSC_OK;
}
