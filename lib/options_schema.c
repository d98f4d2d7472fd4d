/*
 * options_schema.c — every option key: type, default, rule, description.
 *
 * Adding a key is one line in msci_opt_table below, with one of the OPT_* macros:
 *   OPT_INT(pattern, "default", min, max, help)
 *   OPT_FLOAT(pattern, "default", min, max, help)       min <= v <= max
 *   OPT_FLOAT_GT(pattern, "default", min, max, help)    min <  v <= max
 *   OPT_CHOICE(pattern, "default", "a|b|c", help)      one of the listed strings
 *   OPT_STRING(pattern, "default", &check, help)        check: a msci_opt_check, or NULL
 * and the *_FN variants, whose default is computed by a function of the other keys
 * (the text then says how, for --help and docs/options.md). A '#' in a pattern is a
 * modality index 0..7 (options.h). Keys are listed as `mosaic --help` shows them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "options.h"

#define OPT_INT(pat, def_, lo, hi, help_)                                                  \
  {.pattern = (pat), .type = MSCI_OPT_INT, .def = (def_), .imin = (lo), .imax = (hi),      \
   .help = (help_)}
#define OPT_INT_FN(pat, how, fn, lo, hi, help_)                                            \
  {.pattern = (pat), .type = MSCI_OPT_INT, .def = (how), .def_fn = (fn), .imin = (lo),     \
   .imax = (hi), .help = (help_)}
#define OPT_FLOAT(pat, def_, lo, hi, help_)                                                \
  {.pattern = (pat), .type = MSCI_OPT_FLOAT, .def = (def_), .fmin = (lo), .fmax = (hi),    \
   .help = (help_)}
#define OPT_FLOAT_GT(pat, def_, lo, hi, help_)                                             \
  {.pattern = (pat), .type = MSCI_OPT_FLOAT, .def = (def_), .fmin = (lo), .fmax = (hi),    \
   .fmin_open = 1, .help = (help_)}
#define OPT_CHOICE(pat, def_, list, help_)                                                 \
  {.pattern = (pat), .type = MSCI_OPT_STRING, .def = (def_), .choices = (list),            \
   .help = (help_)}
#define OPT_CHOICE_FN(pat, how, fn, list, help_)                                           \
  {.pattern = (pat), .type = MSCI_OPT_STRING, .def = (how), .def_fn = (fn),                \
   .choices = (list), .help = (help_)}
#define OPT_STRING(pat, def_, chk, help_)                                                  \
  {.pattern = (pat), .type = MSCI_OPT_STRING, .def = (def_), .check = (chk),               \
   .help = (help_)}
#define OPT_STRING_FN(pat, how, fn, chk, help_)                                            \
  {.pattern = (pat), .type = MSCI_OPT_STRING, .def = (how), .def_fn = (fn),                \
   .check = (chk), .help = (help_)}

/* ---------------------------------------------------------------------------------- */
/* Computed defaults                                                                   */
/* ---------------------------------------------------------------------------------- */

static msc_status dup_text(const char *s, char **out) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p == NULL)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "options: out of memory (%zu bytes)", n);
  memcpy(p, s, n);
  *out = p;
  return MSC_OK;
}

static msc_status int_text(int64_t v, char **out) {
  char tmp[24];
  snprintf(tmp, sizeof tmp, "%lld", (long long)v);
  return dup_text(tmp, out);
}

/* modality.0 is Sentinel-1 (VV, VH), modality.1 Sentinel-2 (12 L2A bands). */
static msc_status def_modality_name(const msc_options *o, int32_t index, char **out) {
  (void)o;
  if (index == 0)
    return dup_text("s1", out);
  if (index == 1)
    return dup_text("s2", out);
  char tmp[16];
  snprintf(tmp, sizeof tmp, "m%d", (int)index);
  return dup_text(tmp, out);
}

static msc_status def_modality_bands(const msc_options *o, int32_t index, char **out) {
  (void)o;
  return int_text(index == 0 ? 2 : index == 1 ? 12 : 3, out);
}

/* The architecture of each encoder preset (LOSSES.md, "Model"): torchvision's ResNets
 * and the small `tiny` test encoder. For bottleneck blocks the widths are the inner
 * (3x3) widths; a stage's output has 4x as many channels. */
typedef struct encoder_preset {
  const char *name;
  int64_t stem_width, stem_kernel, stem_stride, maxpool;
  const char *block, *widths, *depths;
} encoder_preset;

static const encoder_preset g_presets[] = {
    {"resnet18", 64, 7, 2, 1, "basic", "64,128,256,512", "2,2,2,2"},
    {"resnet34", 64, 7, 2, 1, "basic", "64,128,256,512", "3,4,6,3"},
    {"resnet50", 64, 7, 2, 1, "bottleneck", "64,128,256,512", "3,4,6,3"},
    {"tiny", 8, 3, 1, 0, "basic", "8,16", "1,1"},
};

/* The preset named by modality.<index>.encoder (always a listed one: the setter only
 * accepts those). */
static msc_status preset_of(const msc_options *o, int32_t index, const encoder_preset **p) {
  char *enc = NULL;
  msc_status rc = msci_options_get_string_allocf(o, &enc, "modality.%d.encoder", (int)index);
  if (rc != MSC_OK)
    return rc;
  for (size_t i = 0; i < sizeof g_presets / sizeof g_presets[0]; i++) {
    if (strcmp(enc, g_presets[i].name) == 0) {
      *p = &g_presets[i];
      free(enc);
      return MSC_OK;
    }
  }
  rc = msci_fail(MSC_E_INTERNAL, "options: modality.%d.encoder '%s' has no preset",
                 (int)index, enc);
  free(enc);
  return rc;
}

#define PRESET_DEFAULT(fname, field, conv)                                                 \
  static msc_status fname(const msc_options *o, int32_t index, char **out) {               \
    const encoder_preset *p = NULL;                                                        \
    msc_status rc = preset_of(o, index, &p);                                               \
    return rc != MSC_OK ? rc : conv(p->field, out);                                        \
  }
PRESET_DEFAULT(def_stem_width, stem_width, int_text)
PRESET_DEFAULT(def_stem_kernel, stem_kernel, int_text)
PRESET_DEFAULT(def_stem_stride, stem_stride, int_text)
PRESET_DEFAULT(def_maxpool, maxpool, int_text)
PRESET_DEFAULT(def_block, block, dup_text)
PRESET_DEFAULT(def_widths, widths, dup_text)
PRESET_DEFAULT(def_depths, depths, dup_text)

/* BigEarthNet v2's 19 classes, in index order (DATA.md). */
static const char g_bigearthnet_names[] =
    "Urban fabric;"
    "Industrial or commercial units;"
    "Arable land;"
    "Permanent crops;"
    "Pastures;"
    "Complex cultivation patterns;"
    "Land principally occupied by agriculture, with significant areas of natural "
    "vegetation;"
    "Agro-forestry areas;"
    "Broad-leaved forest;"
    "Coniferous forest;"
    "Mixed forest;"
    "Natural grassland and sparsely vegetated areas;"
    "Moors, heathland and sclerophyllous vegetation;"
    "Transitional woodland, shrub;"
    "Beaches, dunes, sands;"
    "Inland wetlands;"
    "Coastal wetlands;"
    "Inland waters;"
    "Marine waters";

static msc_status def_class_names(const msc_options *o, int32_t index, char **out) {
  (void)index;
  int64_t classes = 0;
  msc_status rc = msc_options_get_int(o, "classes", &classes);
  if (rc != MSC_OK)
    return rc;
  if (classes == 19)
    return dup_text(g_bigearthnet_names, out);
  /* "class0;class1;...": at most 10 bytes per name ("class4095;") for classes <= 4096;
   * 24 per name leaves room for any int64. */
  size_t cap = (size_t)(classes > 0 ? classes : 0) * 24 + 1;
  char *p = malloc(cap);
  if (p == NULL)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "options: out of memory (%zu bytes)", cap);
  size_t len = 0;
  p[0] = '\0';
  for (int64_t c = 0; c < classes; c++)
    len += (size_t)snprintf(p + len, cap - len, "%sclass%lld", c > 0 ? ";" : "",
                            (long long)c);
  *out = p;
  return MSC_OK;
}

/* ---------------------------------------------------------------------------------- */
/* The keys                                                                            */
/* ---------------------------------------------------------------------------------- */

const msci_opt_def msci_opt_table[] = {
    /* run time */
    OPT_STRING("backend", "auto", &msci_check_name,
               "backend: \"auto\" (cuda when usable, else cpu), \"cpu\", \"cuda\" or a "
               "module's name"),
    OPT_INT("threads", "0", 0, 4096, "CPU threads per call (0: the OpenMP default)"),
    OPT_INT("seed", "42", 0, INT64_MAX, "initialisation and sampling seed"),
    /* modalities */
    OPT_INT("modality.count", "2", 1, MSCI_MAX_MODALITIES, "number of modalities"),
    OPT_STRING_FN("modality.#.name", "s1, s2, then m<i>", def_modality_name,
                  &msci_check_name, "name of modality i (unique)"),
    OPT_INT_FN("modality.#.bands", "2, 12, then 3", def_modality_bands, 1, 64,
               "input channels (bands) of modality i"),
    OPT_INT("modality.#.size", "120", 8, 4096, "patch height = width in pixels"),
    OPT_CHOICE("modality.#.encoder", "resnet18", "resnet18|resnet34|resnet50|tiny",
               "encoder preset of modality i"),
    OPT_STRING("modality.#.mean", "", &msci_check_floats,
               "per-band means subtracted from the input (\"\": 0)"),
    OPT_STRING("modality.#.std", "", &msci_check_pos_floats,
               "per-band standard deviations dividing the input (\"\": 1)"),
    OPT_INT_FN("modality.#.stem_width", "the encoder's: 64 (tiny: 8)", def_stem_width, 1,
               4096, "output channels of the stem convolution"),
    OPT_INT_FN("modality.#.stem_kernel", "the encoder's: 7 (tiny: 3)", def_stem_kernel, 1,
               15, "kernel size of the stem convolution"),
    OPT_INT_FN("modality.#.stem_stride", "the encoder's: 2 (tiny: 1)", def_stem_stride, 1,
               8, "stride of the stem convolution"),
    OPT_INT_FN("modality.#.maxpool", "the encoder's: 1 (tiny: 0)", def_maxpool, 0, 1,
               "3x3 stride-2 max-pool after the stem (0/1)"),
    OPT_CHOICE_FN("modality.#.block", "the encoder's: basic (resnet50: bottleneck)",
                  def_block, "basic|bottleneck", "residual block of the encoder's stages"),
    OPT_STRING_FN("modality.#.widths", "the encoder's: 64,128,256,512 (tiny: 8,16)",
                  def_widths, &msci_check_pos_ints,
                  "channels of each stage (bottleneck: inner width, output 4x)"),
    OPT_STRING_FN("modality.#.depths",
                  "the encoder's: 2,2,2,2 (resnet34, resnet50: 3,4,6,3; tiny: 1,1)",
                  def_depths, &msci_check_pos_ints, "blocks in each stage"),
    OPT_FLOAT_GT("bn.momentum", "0.1", 0.0, 1.0,
                 "BatchNorm running-statistics momentum"),
    OPT_FLOAT_GT("bn.eps", "1e-05", 0.0, 1.0, "BatchNorm epsilon"),
    /* heads */
    OPT_INT("classes", "19", 1, 4096, "number of classes C"),
    OPT_STRING_FN("class_names",
                  "BigEarthNet's 19 names when classes = 19, else class0;class1;...",
                  def_class_names, &msci_check_names_list, "class names joined with ';'"),
    OPT_INT("proj.hidden", "0", 0, 65536, "hidden width H of each projection head (0: D_m)"),
    OPT_INT("proj.dim", "128", 1, 65536, "projection size P"),
    OPT_INT("proj.bn", "0", 0, 1,
            "BatchNorm between the projection heads' first Linear and ReLU (0/1)"),
    OPT_INT("fused.hidden", "0", 0, 65536, "hidden width H_f of the fused head (0: D_f)"),
};

const int32_t msci_opt_table_count =
    (int32_t)(sizeof msci_opt_table / sizeof msci_opt_table[0]);
