/*
 * compare_arms.c — the arms of `mosaic compare` (docs/compare.md, "The rows"): an arm is
 * a loss preset with the run's encoders (PRESET) or with an encoder of its own
 * (PRESET@ENCODER, e.g. supervised@convnextv2_atto for the paper's supervised ConvNeXt-V2
 * row), and runs "where the data allows": an arm that cannot run on the data or the
 * backend is skipped with its reason instead of failing the comparison.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The library's own check of a preset or encoder name: its message lists the names and
 * suggests the closest one. */
static int check_name(const char *key, const char *value, const char *spec) {
  msc_options *o = NULL;
  if (msc_options_create(&o) != MSC_OK) return cli_error("out of memory");
  msc_status st = msc_options_set_string(o, key, value);
  msc_options_free(o);
  if (st == MSC_OK) return -1;
  return cli_usage("compare", "--presets: arm '%s': %s", spec, msc_last_error());
}

int cli_arms_parse(const char *list, cli_arm *arms, int cap, int *n) {
  *n = 0;
  const char *p = list;
  while (1) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0) { /* "a,,b", a trailing comma or an empty list */
      if (!end && *n > 0) return cli_usage("compare", "--presets: '%s' ends with ','", list);
      if (!end) return cli_usage("compare", "--presets is empty");
      return cli_usage("compare", "--presets: '%s' has an empty arm", list);
    }
    if (*n == cap) return cli_usage("compare", "--presets: at most %d arms", cap);
    cli_arm *a = &arms[*n];
    memset(a, 0, sizeof *a);
    if (len >= sizeof a->spec)
      return cli_usage("compare", "--presets: arm '%.*s' is too long", (int)len, p);
    memcpy(a->spec, p, len);
    const char *at = strchr(a->spec, '@');
    size_t plen = at ? (size_t)(at - a->spec) : len;
    if (plen == 0 || (at && (at[1] == 0 || strchr(at + 1, '@'))))
      return cli_usage("compare",
                       "--presets: arm '%s' is not PRESET or PRESET@ENCODER (e.g. "
                       "supervised@convnextv2_atto)",
                       a->spec);
    memcpy(a->preset, a->spec, plen);
    if (at) snprintf(a->encoder, sizeof a->encoder, "%s", at + 1);
    int rc = check_name("train.preset", a->preset, a->spec);
    if (rc < 0 && at) rc = check_name("modality.0.encoder", a->encoder, a->spec);
    if (rc >= 0) return rc;
    for (int i = 0; i < *n; ++i)
      if (strcmp(arms[i].spec, a->spec) == 0)
        return cli_usage("compare", "--presets: arm '%s' is given twice", a->spec);
    (*n)++;
    if (!end) return -1;
    p = end + 1;
  }
}

/* Whether the stages of a ConvNeXt encoder fit a patch of `size` pixels: the stem (kernel
 * k, stride s, padding (k − s)/2, model.md "ConvNeXt-V2 encoders") and each later stage's
 * 2×2 stride-2 downsampling without padding must leave at least one pixel; a ResNet
 * always does (its convolutions are padded). *stride gets the total stride. */
static int convnext_fits(const msc_options *o, int32_t m, int64_t size, int64_t *stride) {
  char key[64];
  snprintf(key, sizeof key, "modality.%d.stem_kernel", (int)m);
  int64_t k = cli_opt_int(o, key, 4);
  snprintf(key, sizeof key, "modality.%d.stem_stride", (int)m);
  int64_t s = cli_opt_int(o, key, 4);
  snprintf(key, sizeof key, "modality.%d.widths", (int)m);
  const char *w = cli_opt_str(o, key);
  int64_t stages = 1;
  for (; *w; ++w) stages += *w == ',';
  int64_t side = s > 0 ? (size + 2 * ((k - s) / 2) - k) / s + 1 : 0;
  *stride = s;
  for (int64_t i = 1; i < stages; ++i) side /= 2, *stride *= 2;
  return side >= 1;
}

/* The backend a ConvNeXt encoder or cross-attention fusion runs on: the CUDA backend has
 * their ops (grouped convolution, LayerNorm, GELU, GRN, ATTN, the per-sample scaled ADD)
 * but they are not yet verified on a GPU (docs/cuda.md), so with backend auto such an arm
 * runs on the CPU, saying so; an explicit --backend cuda is honoured. */
static int place(const cli_arm *arm, msc_options *o, int convnext, int xattn, char *why,
                 size_t why_cap, char *note, size_t note_cap) {
  (void)why, (void)why_cap;
  if (!convnext && !xattn) return EXIT_OK;
  char request[64];
  snprintf(request, sizeof request, "%s", cli_opt_str(o, "backend"));
  const char *chosen = NULL;
  if (strcmp(request, "auto") != 0 || msc_backend_select(request, &chosen) != MSC_OK ||
      strcmp(chosen, "cuda") != 0)
    return EXIT_OK; /* as asked; an unusable explicit backend fails at creation */
  const char *what = convnext && xattn ? "ConvNeXt and cross-attention"
                     : convnext        ? "ConvNeXt"
                                       : "cross-attention";
  msc_status st = msc_options_set_string(o, "backend", "cpu");
  if (st != MSC_OK) return cli_lib_error(st, "%s: backend cpu", arm->spec);
  snprintf(note, note_cap,
           "on the CPU: the cuda backend's %s kernels are not yet verified on a GPU "
           "(docs/cuda.md; --backend cuda runs them)",
           what);
  return EXIT_OK;
}

int cli_arm_options(const cli_arm *arm, const msc_options *base, const msc_dataset *ds,
                    msc_options **out, cli_arm_info *info) {
  *out = NULL;
  memset(info, 0, sizeof *info);
  msc_options *o = cli_opts_copy(base);
  if (!o) return cli_error("out of memory");
  const int32_t nm = msc_dataset_modality_count(ds);
  char key[64];
  msc_status st = msc_options_set_string(o, "train.preset", arm->preset);
  for (int32_t m = 0; st == MSC_OK && arm->encoder[0] && m < nm; ++m) {
    snprintf(key, sizeof key, "modality.%d.encoder", (int)m);
    st = msc_options_set_string(o, key, arm->encoder);
  }
  if (st != MSC_OK) {
    msc_options_free(o);
    return cli_lib_error(st, "%s", arm->spec);
  }
  /* The label names the encoders: "supervised (convnextv2_atto)", "iai (resnet18/tiny)"
   * when the modalities differ. */
  size_t used = 0;
  int convnext = 0, fits = 1;
  int64_t small = 0, stride = 0;
  int32_t small_m = 0;
  for (int32_t m = 0; m < nm; ++m) {
    char enc[48];
    snprintf(key, sizeof key, "modality.%d.encoder", (int)m);
    snprintf(enc, sizeof enc, "%s", cli_opt_str(o, key));
    int same = 0;
    for (int32_t j = 0; j < m && !same; ++j) {
      snprintf(key, sizeof key, "modality.%d.encoder", (int)j);
      same = strcmp(cli_opt_str(o, key), enc) == 0;
    }
    if (!same && used < sizeof info->encoder)
      used += (size_t)snprintf(info->encoder + used, sizeof info->encoder - used, "%s%s",
                               m ? "/" : "", enc);
    snprintf(key, sizeof key, "modality.%d.block", (int)m);
    if (strcmp(cli_opt_str(o, key), "convnext") != 0) continue;
    convnext = 1;
    snprintf(key, sizeof key, "modality.%d.size", (int)m);
    int64_t size = cli_opt_int(o, key, 0), s = 0;
    if (!convnext_fits(o, m, size, &s) && fits) fits = 0, small = size, stride = s, small_m = m;
  }
  snprintf(info->label, sizeof info->label, "%s (%s)", arm->preset, info->encoder);
  const int xattn = strcmp(cli_opt_str(o, "fusion"), "xattn") == 0;
  if (nm < 2 && cli_opt_float(o, "lambda.inter", 0) > 0) {
    const char *name = nm == 1 ? msc_dataset_modality_name(ds, 0) : NULL;
    snprintf(info->why, sizeof info->why,
             "%s aligns two modalities (lambda.inter > 0); the dataset has one (%s)",
             arm->preset, name ? name : "?");
  } else if (!fits) {
    const char *name = msc_dataset_modality_name(ds, small_m);
    snprintf(info->why, sizeof info->why,
             "the %s patches are %lld x %lld pixels, smaller than the ConvNeXt encoder's "
             "total stride %lld",
             name ? name : "?", (long long)small, (long long)small, (long long)stride);
  } else {
    int rc = place(arm, o, convnext, xattn, info->why, sizeof info->why, info->note,
                   sizeof info->note);
    if (rc != EXIT_OK) {
      msc_options_free(o);
      return rc;
    }
  }
  if (info->why[0]) {
    msc_options_free(o);
    return EXIT_OK;
  }
  *out = o;
  return EXIT_OK;
}
