/*
 * options_check.c — the rules of a model configuration that tie several keys together
 * (msci_options_check_model): per modality a known encoder and block, mean/std and
 * scale/offset with one value per band or none, band names one per band or none, matching widths and depths; unique modality names; class
 * names that fit classes. The setters check each value on its own (options_keys.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"
#include "options/options.h"
#include "options/options_impl.h"

/* modality.i.band_names: empty, or exactly `bands` non-empty names, each once. */
static msc_status check_band_names(const msc_options *o, int32_t i, int64_t bands) {
  char *text = NULL, **names = NULL;
  int32_t n = 0;
  msc_status rc = msci_options_get_string_allocf(o, &text, "modality.%d.band_names", (int)i);
  if (rc == MSC_OK && text[0]) rc = msci_split_list(text, ',', &names, &n);
  free(text);
  if (rc != MSC_OK || n == 0) return rc;
  if (n != bands)
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: modality.%d.band_names has %d names but modality.%d.bands is "
                   "%lld (give one per band, or none)",
                   (int)i, (int)n, (int)i, (long long)bands);
  for (int32_t b = 0; rc == MSC_OK && b < n; b++) {
    if (names[b][0] == '\0')
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "options: modality.%d.band_names: name %d is empty", (int)i, (int)b + 1);
    for (int32_t c = 0; rc == MSC_OK && c < b; c++)
      if (strcmp(names[b], names[c]) == 0)
        rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                       "options: modality.%d.band_names: '%.100s' appears more than once",
                       (int)i, names[b]);
  }
  free(names);
  return rc;
}

/* Checks modality i: encoder, block, the lengths and values of its lists; everything
 * is reported through msci_fail. */
static msc_status check_modality(const msc_options *o, int32_t i) {
  static const char *const encoders[] = {
      "resnet18",        "resnet34",         "resnet50",        "tiny",
      "convnextv2_atto", "convnextv2_femto", "convnextv2_pico", "convnextv2_nano",
      "convnextv2_tiny"};
  enum { ENC, BLOCK, WIDTHS, DEPTHS, NTEXT };
  static const char *const suffix[NTEXT] = {"encoder", "block", "widths", "depths"};
  char *text[NTEXT] = {0};
  int64_t bands = 0;
  float vals[MSCI_OPT_MAX_FLOATS];
  msc_status rc = msci_options_get_intf(o, &bands, "modality.%d.bands", (int)i);
  for (int k = 0; rc == MSC_OK && k < NTEXT; k++)
    rc = msci_options_get_string_allocf(o, &text[k], "modality.%d.%s", (int)i, suffix[k]);
  if (rc != MSC_OK) goto done;
  const char *enc = text[ENC], *block = text[BLOCK];

  int known = 0;
  for (size_t k = 0; k < sizeof encoders / sizeof encoders[0]; k++)
    known |= strcmp(enc, encoders[k]) == 0;
  if (!known) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: modality.%d.encoder '%s' is not one of resnet18, resnet34, "
                   "resnet50, tiny, convnextv2_atto, convnextv2_femto, convnextv2_pico, "
                   "convnextv2_nano, convnextv2_tiny",
                   (int)i, enc);
    goto done;
  }
  if (strcmp(block, "basic") != 0 && strcmp(block, "bottleneck") != 0 &&
      strcmp(block, "convnext") != 0) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: modality.%d.block '%s' is not one of basic, bottleneck, convnext",
                   (int)i, block);
    goto done;
  }
  /* ConvNeXt downsamples with its strided stem and LayerNorm + 2x2 convolutions only. */
  int64_t maxpool = 0;
  rc = msci_options_get_intf(o, &maxpool, "modality.%d.maxpool", (int)i);
  if (rc != MSC_OK) goto done;
  if (strcmp(block, "convnext") == 0 && maxpool) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: modality.%d.maxpool is 1 but block convnext has no max-pool "
                   "(set modality.%d.maxpool = 0)",
                   (int)i, (int)i);
    goto done;
  }

  /* mean and std: empty, or exactly `bands` values (std > 0). */
  const char *names[2] = {"mean", "std"};
  for (int k = 0; k < 2; k++) {
    size_t n = 0;
    rc = msci_options_get_floatsf(o, vals, MSCI_OPT_MAX_FLOATS, &n, "modality.%d.%s", (int)i,
                                  names[k]);
    if (rc != MSC_OK) goto done;
    if (n != 0 && (int64_t)n != bands) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "options: modality.%d.%s has %d values but modality.%d.bands is %lld "
                     "(give one per band, or none)",
                     (int)i, names[k], (int)n, (int)i, (long long)bands);
      goto done;
    }
    for (size_t j = 0; k == 1 && j < n; j++) {
      if (!(vals[j] > 0.0) || !isfinite(vals[j])) {
        char num[32];
        msci_format_double(num, sizeof num, 9, vals[j]);
        rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                       "options: modality.%d.std value %d is %s; standard deviations must "
                       "be > 0",
                       (int)i, (int)j + 1, num);
        goto done;
      }
    }
  }

  /* scale and offset: empty, or exactly `bands` values (scale non-zero). */
  const char *conv[2] = {"scale", "offset"};
  for (int k = 0; k < 2; k++) {
    size_t n = 0;
    rc = msci_options_get_floatsf(o, vals, MSCI_OPT_MAX_FLOATS, &n, "modality.%d.%s", (int)i,
                                  conv[k]);
    if (rc != MSC_OK) goto done;
    if (n != 0 && (int64_t)n != bands) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "options: modality.%d.%s has %d values but modality.%d.bands is %lld "
                     "(give one per band, or none)",
                     (int)i, conv[k], (int)n, (int)i, (long long)bands);
      goto done;
    }
    for (size_t j = 0; k == 0 && j < n; j++)
      if (vals[j] == 0.0f) {
        rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                       "options: modality.%d.scale value %d is 0; a scale must not be 0",
                       (int)i, (int)j + 1);
        goto done;
      }
  }
  rc = check_band_names(o, i, bands);
  if (rc != MSC_OK) goto done;

  /* widths and depths: the same number of stages, 1..8, positive entries. */
  int64_t stages[2][MSCI_MAX_STAGES];
  int32_t nstages[2] = {0, 0};
  for (int k = 0; k < 2; k++) {
    msc_status r =
        msci_parse_int_list(text[WIDTHS + k], stages[k], MSCI_MAX_STAGES, &nstages[k]);
    if (r != MSC_OK && r != MSC_E_BUFFER_TOO_SMALL) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT, "options: modality.%d.%s: %s", (int)i,
                     suffix[WIDTHS + k], msc_last_error());
      goto done;
    }
  }
  const int64_t *w = stages[0], *d = stages[1];
  int32_t nw = nstages[0], nd = nstages[1];
  if (nw < 1 || nw > MSCI_MAX_STAGES) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: modality.%d.widths has %d stages, expected 1..%d", (int)i, (int)nw,
                   MSCI_MAX_STAGES);
    goto done;
  }
  if (nd != nw) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: modality.%d.widths has %d stages but modality.%d.depths has %d",
                   (int)i, (int)nw, (int)i, (int)nd);
    goto done;
  }
  for (int32_t j = 0; j < nw; j++) {
    if (w[j] < 1 || d[j] < 1) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "options: modality.%d: stage %d has width %lld and depth %lld; both "
                     "must be positive",
                     (int)i, (int)j + 1, (long long)w[j], (long long)d[j]);
      goto done;
    }
  }

done:
  for (int k = 0; k < NTEXT; k++) free(text[k]);
  return rc;
}

static msc_status check_names_unique(const msc_options *o, int64_t count) {
  char *names[MSCI_MAX_MODALITIES] = {0};
  msc_status rc = MSC_OK;
  for (int32_t i = 0; rc == MSC_OK && i < count; i++) {
    rc = msci_options_get_string_allocf(o, &names[i], "modality.%d.name", (int)i);
    for (int32_t j = 0; rc == MSC_OK && j < i; j++)
      if (strcmp(names[i], names[j]) == 0)
        rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                       "options: modality.%d.name and modality.%d.name are both '%s'; "
                       "modality names must be unique",
                       (int)j, (int)i, names[i]);
  }
  for (int32_t i = 0; i < MSCI_MAX_MODALITIES; i++) free(names[i]);
  return rc;
}

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static msc_status check_class_names(const msc_options *o) {
  int64_t classes = 0;
  msc_status rc = msc_options_get_int(o, "classes", &classes);
  if (rc != MSC_OK) return rc;
  char *text = NULL;
  rc = msci_options_get_string_alloc(o, "class_names", &text);
  if (rc != MSC_OK) return rc;
  char **names = NULL;
  int32_t n = 0;
  rc = msci_split_names(text, &names, &n);
  free(text);
  if (rc != MSC_OK) return rc;
  if (n != classes) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: class_names has %d names but classes is %lld", (int)n,
                   (long long)classes);
    goto done;
  }
  for (int32_t i = 0; i < n; i++) {
    if (names[i][0] == '\0') {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT, "options: class_names: name %d is empty",
                     (int)i + 1);
      goto done;
    }
  }
  /* Duplicates: sort a copy of the pointers (the block's array is ours to reorder). */
  qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
  for (int32_t i = 1; i < n; i++) {
    if (strcmp(names[i - 1], names[i]) == 0) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "options: class_names: '%.200s' appears more than once", names[i]);
      goto done;
    }
  }
done:
  free(names);
  return rc;
}

msc_status msci_options_check_model(const msc_options *o) {
  if (o == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_options_check_model: opts is NULL");
  int64_t count = 0;
  msc_status rc = msc_options_get_int(o, "modality.count", &count);
  if (rc != MSC_OK) return rc;
  if (count < 1 || count > MSCI_MAX_MODALITIES)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "options: modality.count is %lld, expected 1..%d",
                     (long long)count, MSCI_MAX_MODALITIES);
  for (int32_t i = 0; i < count; i++) {
    rc = check_modality(o, i);
    if (rc != MSC_OK) return rc;
  }
  rc = check_names_unique(o, count);
  if (rc != MSC_OK) return rc;
  return check_class_names(o);
}
