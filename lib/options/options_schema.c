/*
 * options_schema.c — every option key: type, default, rule, description.
 *
 * Adding a key is one line in msci_opt_table below, with one of the OPT_* macros:
 *   OPT_INT(pattern, "default", min, max, help)
 *   OPT_FLOAT(pattern, "default", min, max, help)       min <= v <= max
 *   OPT_FLOAT_GT(pattern, "default", min, max, help)    min <  v <= max
 *   OPT_CHOICE(pattern, "default", "a|b|c", help)      one of the listed strings
 *   OPT_STRING(pattern, "default", &check, help)        check: a msci_opt_check, or NULL
 *   OPT_FLOATS(pattern, min, open, help)              a list of floats, each >= min (> min
 *                                                     when open; -FLT_MAX: any), default none
 * and the *_FN variants, whose default is computed by a function of the other keys
 * (the text then says how, for --help and docs/options.md). A '#' in a pattern is a
 * modality index 0..7 (options.h). Keys are listed as `mosaic --help` shows them.
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "options/options.h"

/* clang-format off: one initialiser a line reads better than what the tool makes. */
#define OPT_INT(pat, def_, lo, hi, help_)                                                      \
  {                                                                                            \
    .pattern = (pat), .type = MSCI_OPT_INT, .def = (def_), .imin = (lo), .imax = (hi),         \
    .help = (help_)                                                                            \
  }
#define OPT_INT_FN(pat, how, fn, lo, hi, help_)                                                \
  {                                                                                            \
    .pattern = (pat), .type = MSCI_OPT_INT, .def = (how), .def_fn = (fn), .imin = (lo),        \
    .imax = (hi), .help = (help_)                                                              \
  }
#define OPT_FLOAT(pat, def_, lo, hi, help_)                                                    \
  {                                                                                            \
    .pattern = (pat), .type = MSCI_OPT_FLOAT, .def = (def_), .fmin = (lo), .fmax = (hi),       \
    .help = (help_)                                                                            \
  }
#define OPT_FLOAT_GT(pat, def_, lo, hi, help_)                                                 \
  {                                                                                            \
    .pattern = (pat), .type = MSCI_OPT_FLOAT, .def = (def_), .fmin = (lo), .fmax = (hi),       \
    .fmin_open = 1, .help = (help_)                                                            \
  }
#define OPT_FLOAT_FN(pat, how, fn, lo, hi, help_)                                              \
  {                                                                                            \
    .pattern = (pat), .type = MSCI_OPT_FLOAT, .def = (how), .def_fn = (fn), .fmin = (lo),      \
    .fmax = (hi), .help = (help_)                                                              \
  }
#define OPT_CHOICE(pat, def_, list, help_)                                                     \
  {                                                                                            \
    .pattern = (pat), .type = MSCI_OPT_STRING, .def = (def_), .choices = (list),               \
    .help = (help_)                                                                            \
  }
#define OPT_CHOICE_FN(pat, how, fn, list, help_)                                               \
  {                                                                                            \
    .pattern = (pat), .type = MSCI_OPT_STRING, .def = (how), .def_fn = (fn),                   \
    .choices = (list), .help = (help_)                                                         \
  }
#define OPT_FLOATS(pat, lo, lo_open, help_)                                                    \
  {                                                                                            \
    .pattern = (pat), .type = MSCI_OPT_FLOATS, .def = "", .fmin = (lo),                        \
    .fmin_open = (lo_open), .help = (help_)                                                    \
  }
#define OPT_STRING(pat, def_, chk, help_)                                                      \
  { .pattern = (pat), .type = MSCI_OPT_STRING, .def = (def_), .check = (chk), .help = (help_) }
#define OPT_STRING_FN(pat, how, fn, chk, help_)                                                \
  {                                                                                            \
    .pattern = (pat), .type = MSCI_OPT_STRING, .def = (how), .def_fn = (fn), .check = (chk),   \
    .help = (help_)                                                                            \
  }
/* clang-format on */

/* ---------------------------------------------------------------------------------- */
/* Computed defaults                                                                   */
/* ---------------------------------------------------------------------------------- */

static msc_status dup_text(const char *s, char **out) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p == NULL) return msci_fail(MSC_E_OUT_OF_MEMORY, "options: out of memory (%zu bytes)", n);
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
  if (index == 0) return dup_text("s1", out);
  if (index == 1) return dup_text("s2", out);
  char tmp[16];
  snprintf(tmp, sizeof tmp, "m%d", (int)index);
  return dup_text(tmp, out);
}

static msc_status def_modality_bands(const msc_options *o, int32_t index, char **out) {
  (void)o;
  return int_text(index == 0 ? 2 : index == 1 ? 12 : 3, out);
}

/* Sentinel-1 is radar and Sentinel-2 optical (docs/data.md), "rp" holds recurrence plots
 * (docs/pimc.md): the augmentations they get. */
static msc_status def_modality_kind(const msc_options *o, int32_t index, char **out) {
  char *name = NULL;
  msc_status rc = msci_options_get_string_allocf(o, &name, "modality.%d.name", (int)index);
  if (rc != MSC_OK) return rc;
  const char *kind = strcmp(name, "s1") == 0   ? "sar"
                     : strcmp(name, "s2") == 0 ? "optical"
                     : strcmp(name, "rp") == 0 ? "plot"
                                               : "other";
  free(name);
  return dup_text(kind, out);
}

/* The architecture of each encoder preset (docs/model.md, "Presets"): torchvision's ResNets,
 * the small `tiny` test encoder and ConvNeXt-V2 (facebookresearch/ConvNeXt-V2's
 * convnextv2_atto .. _tiny: a 4x4 stride-4 stem, then stages of the widths ("dims") and
 * depths of the paper's Table). For bottleneck blocks the widths are the inner (3x3)
 * widths; a stage's output has 4x as many channels. ConvNeXt's stem outputs widths[0]
 * channels whatever stem_width says. */
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
    {"convnextv2_atto", 40, 4, 4, 0, "convnext", "40,80,160,320", "2,2,6,2"},
    {"convnextv2_femto", 48, 4, 4, 0, "convnext", "48,96,192,384", "2,2,6,2"},
    {"convnextv2_pico", 64, 4, 4, 0, "convnext", "64,128,256,512", "2,2,6,2"},
    {"convnextv2_nano", 80, 4, 4, 0, "convnext", "80,160,320,640", "2,2,8,2"},
    {"convnextv2_tiny", 96, 4, 4, 0, "convnext", "96,192,384,768", "3,3,9,3"},
};

/* The preset named by modality.<index>.encoder (always a listed one: the setter only
 * accepts those). */
static msc_status preset_of(const msc_options *o, int32_t index, const encoder_preset **p) {
  char *enc = NULL;
  msc_status rc = msci_options_get_string_allocf(o, &enc, "modality.%d.encoder", (int)index);
  if (rc != MSC_OK) return rc;
  for (size_t i = 0; i < sizeof g_presets / sizeof g_presets[0]; i++) {
    if (strcmp(enc, g_presets[i].name) == 0) {
      *p = &g_presets[i];
      free(enc);
      return MSC_OK;
    }
  }
  rc = msci_fail(MSC_E_INTERNAL, "options: modality.%d.encoder '%s' has no preset", (int)index,
                 enc);
  free(enc);
  return rc;
}

#define PRESET_DEFAULT(fname, field, conv)                                                     \
  static msc_status fname(const msc_options *o, int32_t index, char **out) {                   \
    const encoder_preset *p = NULL;                                                            \
    msc_status rc = preset_of(o, index, &p);                                                   \
    return rc != MSC_OK ? rc : conv(p->field, out);                                            \
  }
PRESET_DEFAULT(def_stem_width, stem_width, int_text)
PRESET_DEFAULT(preset_stem_kernel, stem_kernel, int_text)
PRESET_DEFAULT(preset_stem_stride, stem_stride, int_text)
PRESET_DEFAULT(preset_maxpool, maxpool, int_text)

/* Recurrence plots (kind "plot") are small, T × T with T ≈ 24–61 dates: their encoders get
 * a 3×3 stride-1 stem without max-pool, which keeps the plot's resolution (as CIFAR-style
 * ResNets do for 32 × 32 images), whatever the encoder preset (docs/pimc.md). */
static msc_status plot_stem(const msc_options *o, int32_t index, const char *value,
                            msc_status (*preset)(const msc_options *, int32_t, char **),
                            char **out) {
  char *kind = NULL;
  msc_status rc = msci_options_get_string_allocf(o, &kind, "modality.%d.kind", (int)index);
  if (rc != MSC_OK) return rc;
  const int plot = strcmp(kind, "plot") == 0;
  free(kind);
  return plot ? dup_text(value, out) : preset(o, index, out);
}
static msc_status def_stem_kernel(const msc_options *o, int32_t index, char **out) {
  return plot_stem(o, index, "3", preset_stem_kernel, out);
}
static msc_status def_stem_stride(const msc_options *o, int32_t index, char **out) {
  return plot_stem(o, index, "1", preset_stem_stride, out);
}
static msc_status def_maxpool(const msc_options *o, int32_t index, char **out) {
  return plot_stem(o, index, "0", preset_maxpool, out);
}
PRESET_DEFAULT(def_block, block, dup_text)
PRESET_DEFAULT(def_widths, widths, dup_text)
PRESET_DEFAULT(def_depths, depths, dup_text)

/* The loss presets of docs/losses.md: the λ of each term and the number of views. */
typedef struct loss_preset {
  const char *name;
  const char *intra, *inter, *fused, *views, *bce;
  const char *n_views;
} loss_preset;

static const loss_preset g_loss_presets[] = {
    {"mosaic1", "1", "1", "1", "0", "1", "2"},    {"mosaic2", "0", "1", "1", "1", "1", "2"},
    {"dual", "0", "1", "0", "0", "0", "1"},       {"simclr", "1", "0", "0", "0", "0", "2"},
    {"supervised", "0", "0", "0", "0", "1", "1"}, {"pimc", "0", "1", "0", "0", "0", "1"},
    {"iai", "1", "1", "0", "0", "0", "2"},
};

static msc_status loss_preset_of(const msc_options *o, const loss_preset **p) {
  char *name = NULL;
  msc_status rc = msci_options_get_string_alloc(o, "train.preset", &name);
  if (rc != MSC_OK) return rc;
  for (size_t i = 0; i < sizeof g_loss_presets / sizeof g_loss_presets[0]; i++)
    if (strcmp(name, g_loss_presets[i].name) == 0) {
      *p = &g_loss_presets[i];
      free(name);
      return MSC_OK;
    }
  rc = msci_fail(MSC_E_INTERNAL, "options: train.preset '%s' has no definition", name);
  free(name);
  return rc;
}

#define LOSS_DEFAULT(fname, field)                                                             \
  static msc_status fname(const msc_options *o, int32_t index, char **out) {                   \
    const loss_preset *p = NULL;                                                               \
    (void)index;                                                                               \
    msc_status rc = loss_preset_of(o, &p);                                                     \
    return rc != MSC_OK ? rc : dup_text(p->field, out);                                        \
  }
LOSS_DEFAULT(def_lambda_intra, intra)
LOSS_DEFAULT(def_lambda_inter, inter)
LOSS_DEFAULT(def_lambda_fused, fused)
LOSS_DEFAULT(def_lambda_views, views)
LOSS_DEFAULT(def_lambda_bce, bce)
LOSS_DEFAULT(def_views, n_views)

/* The dual-encoder paper pre-trains without hand-made augmentations: co-registered pairs
 * are the positives. The preset dual therefore turns them off by default; explicit
 * aug.* values still win (docs/losses.md, "Presets"). */
static msc_status aug_default(const msc_options *o, const char *on, char **out) {
  const loss_preset *p = NULL;
  msc_status rc = loss_preset_of(o, &p);
  if (rc != MSC_OK) return rc;
  return dup_text(strcmp(p->name, "dual") == 0 ? "0" : on, out);
}
static msc_status def_aug_on(const msc_options *o, int32_t index, char **out) {
  (void)index;
  return aug_default(o, "1", out);
}
static msc_status def_aug_jitter(const msc_options *o, int32_t index, char **out) {
  (void)index;
  return aug_default(o, "0.1", out);
}

/* BigEarthNet v2's 19 classes, in index order (docs/data.md, "Classes"). */
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
  if (rc != MSC_OK) return rc;
  if (classes == 19) return dup_text(g_bigearthnet_names, out);
  /* "class0;class1;...": at most 10 bytes per name ("class4095;") for classes <= 4096;
   * 24 per name leaves room for any int64. */
  size_t cap = (size_t)(classes > 0 ? classes : 0) * 24 + 1;
  char *p = malloc(cap);
  if (p == NULL)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "options: out of memory (%zu bytes)", cap);
  size_t len = 0;
  p[0] = '\0';
  for (int64_t c = 0; c < classes; c++)
    len += (size_t)snprintf(p + len, cap - len, "%sclass%lld", c > 0 ? ";" : "", (long long)c);
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
    OPT_CHOICE("precision", "f32", "f32|bf16|int8",
               "arithmetic of convolutions and linear layers: \"f32\", \"bf16\" (bfloat16 "
               "activations and weights, float32 parameters, gradients and statistics; cpu "
               "backend with AVX-512 or AMX) or \"int8\" (inference only, after "
               "msc_model_calibrate: 8-bit inputs and weights; cpu backend with AVX2); else "
               "MSC_E_UNSUPPORTED; docs/precision.md"),
    OPT_CHOICE("conv_algorithm", "auto", "auto|direct",
               "how convolutions compute: \"auto\" (the backend picks per layer; the cpu "
               "backend runs float32 3x3 stride-1 layers of 64 channels and more, in calls "
               "of 32 output tiles of 4x4 or more, as Winograd F(4x4,3x3) where oneDNN has "
               "it, AVX-512) or \"direct\" (the direct "
               "sum only: the rounding of earlier versions); the cuda backend leaves the "
               "choice to cuDNN; docs/performance.md"),
    OPT_INT("seed", "42", 0, INT64_MAX, "initialisation and sampling seed"),
    /* modalities */
    OPT_INT("modality.count", "2", 1, MSCI_MAX_MODALITIES, "number of modalities"),
    OPT_STRING_FN("modality.#.name", "s1, s2, then m<i>", def_modality_name, &msci_check_name,
                  "name of modality i (unique)"),
    OPT_INT_FN("modality.#.bands", "2, 12, then 3", def_modality_bands, 1, 64,
               "input channels (bands) of modality i"),
    OPT_INT("modality.#.size", "120", 8, 4096, "patch height = width in pixels"),
    OPT_CHOICE("modality.#.encoder", "resnet18",
               "resnet18|resnet34|resnet50|tiny|convnextv2_atto|convnextv2_femto|"
               "convnextv2_pico|convnextv2_nano|convnextv2_tiny",
               "encoder preset of modality i (docs/model.md, \"Presets\")"),
    OPT_FLOATS("modality.#.mean", -FLT_MAX, 0,
               "per-band means subtracted from the input (none: 0)"),
    OPT_FLOATS("modality.#.std", 0.0, 1,
               "per-band standard deviations dividing the input (none: 1)"),
    OPT_STRING("modality.#.band_names", "", NULL,
               "the input bands by name, in order, joined with ',' (none: unnamed); "
               "msc_options_from_dataset fills it"),
    OPT_FLOATS("modality.#.scale", -FLT_MAX, 0,
               "per-band scale of the raw input: physical = raw * scale + offset "
               "(none: 1; recorded, not applied)"),
    OPT_FLOATS("modality.#.offset", -FLT_MAX, 0, "per-band offset, see scale (none: 0)"),
    OPT_CHOICE_FN("modality.#.kind",
                  "sar for a modality named s1, optical for s2, plot for rp, else other",
                  def_modality_kind, "sar|optical|other|plot",
                  "sensor kind for augmentations: sar speckle, optical brightness/contrast, "
                  "plot none at all (recurrence plots)"),
    OPT_INT_FN("modality.#.stem_width", "the encoder's: 64 (tiny: 8; convnextv2: widths[0])",
               def_stem_width, 1, 4096, "output channels of the stem convolution"),
    OPT_INT_FN("modality.#.stem_kernel",
               "the encoder's: 7 (convnextv2: 4; tiny and kind plot: 3)", def_stem_kernel, 1,
               15, "kernel size of the stem convolution"),
    OPT_INT_FN("modality.#.stem_stride",
               "the encoder's: 2 (convnextv2: 4; tiny and kind plot: 1)", def_stem_stride, 1, 8,
               "stride of the stem convolution"),
    OPT_INT_FN("modality.#.maxpool", "the encoder's: 1 (tiny and kind plot: 0)", def_maxpool, 0,
               1, "3x3 stride-2 max-pool after the stem (0/1)"),
    OPT_CHOICE_FN("modality.#.block",
                  "the encoder's: basic (resnet50: bottleneck; convnextv2: convnext)",
                  def_block, "basic|bottleneck|convnext",
                  "residual block of the encoder's stages (convnext: ConvNeXt-V2's, with "
                  "its LayerNorm stem and downsampling layers; docs/model.md)"),
    OPT_STRING_FN("modality.#.widths",
                  "the encoder's: 64,128,256,512 (tiny: 8,16; convnextv2: its dims)",
                  def_widths, &msci_check_pos_ints,
                  "channels of each stage (bottleneck: inner width, output 4x)"),
    OPT_STRING_FN("modality.#.depths",
                  "the encoder's: 2,2,2,2 (resnet34, resnet50: 3,4,6,3; tiny: 1,1; "
                  "convnextv2: its depths)",
                  def_depths, &msci_check_pos_ints, "blocks in each stage"),
    OPT_FLOAT_GT("bn.momentum", "0.1", 0.0, 1.0, "BatchNorm running-statistics momentum"),
    OPT_FLOAT_GT("bn.eps", "1e-05", 0.0, 1.0, "BatchNorm epsilon"),
    /* heads */
    OPT_INT("classes", "19", 1, 4096, "number of classes C"),
    OPT_STRING_FN("class_names",
                  "BigEarthNet's 19 names when classes = 19, else class0;class1;...",
                  def_class_names, &msci_check_names_list, "class names joined with ';'"),
    OPT_CHOICE("labels", "multi", "multi|single",
               "label mode: multi (any number of classes per sample, sigmoid outputs) or "
               "single (exactly one class per sample, softmax outputs)"),
    OPT_INT("proj.hidden", "0", 0, 65536, "hidden width H of each projection head (0: D_m)"),
    OPT_INT("proj.dim", "128", 1, 65536, "projection size P"),
    OPT_INT("proj.bn", "0", 0, 1,
            "BatchNorm between the projection heads' first Linear and ReLU (0/1)"),
    OPT_INT("fused.hidden", "0", 0, 65536, "hidden width H_f of the fused head (0: D_f)"),
    OPT_CHOICE("fusion", "concat", "concat|xattn",
               "how h_f fuses the modalities: concat (their pooled features concatenated) or "
               "xattn (each modality's token map attends to the others', multi-head, then "
               "pooled; docs/model.md)"),
    OPT_INT("fusion.dim", "128", 1, 4096,
            "fusion xattn: token width d (every token map is projected to it; h_f has "
            "d per modality)"),
    OPT_INT("fusion.heads", "4", 1, 64,
            "fusion xattn: attention heads (must divide fusion.dim)"),
    /* dense prediction (docs/segmentation.md) */
    OPT_CHOICE("task", "contrastive", "contrastive|segmentation",
               "model task: contrastive (encoders, heads, classifier) or segmentation (also "
               "a U-Net decoder giving per-pixel logits N x C x H x W)"),
    OPT_CHOICE("seg.decoder", "unet", "unet", "segmentation decoder architecture"),
    OPT_CHOICE("seg.upsample", "bilinear", "bilinear|deconv",
               "decoder upsampling: bilinear to the next level's size, or a learnt 2x2 "
               "stride-2 transposed convolution (x2 exactly)"),
    OPT_INT("seg.convs", "2", 1, 2, "conv3x3+BN+ReLU layers per decoder level"),
    OPT_STRING("seg.modalities", "", NULL,
               "modalities the decoder reads, names joined with ',' (empty: all)"),
    /* training objective (docs/losses.md) */
    OPT_CHOICE("train.preset", "mosaic1", "mosaic1|mosaic2|dual|simclr|iai|supervised|pimc",
               "loss preset: the weights of the terms and the number of views"),
    OPT_INT_FN("train.views", "the preset's: 2 (dual, supervised, pimc: 1)", def_views, 1, 2,
               "augmented views per sample and modality"),
    OPT_FLOAT_FN("lambda.intra", "the preset's", def_lambda_intra, 0.0, 1e6,
                 "weight of the intra-modal NT-Xent term"),
    OPT_FLOAT_FN("lambda.inter", "the preset's", def_lambda_inter, 0.0, 1e6,
                 "weight of the inter-modal InfoNCE term"),
    OPT_FLOAT_FN("lambda.fused", "the preset's", def_lambda_fused, 0.0, 1e6,
                 "weight of MulSupCon on the fused projections"),
    OPT_FLOAT_FN("lambda.views", "the preset's", def_lambda_views, 0.0, 1e6,
                 "weight of MulSupCon on each modality's projections"),
    OPT_FLOAT_FN("lambda.bce", "the preset's", def_lambda_bce, 0.0, 1e6,
                 "weight of the classification (BCE) term"),
    OPT_FLOAT("lambda.seg", "1", 0.0, 1e6,
              "weight of the per-pixel softmax cross-entropy of a segmentation model"),
    OPT_FLOAT("lambda.dice", "0", 0.0, 1e6,
              "weight of the soft multi-class Dice loss of a segmentation model"),
    OPT_INT("seg.ignore_index", "-1", INT32_MIN, INT32_MAX,
            "mask value of pixels the segmentation loss does not count"),
    OPT_FLOATS("seg.class_weights", 0.0, 0,
               "per-class weights of the segmentation loss (none: all 1)"),
    OPT_CHOICE("train.labels", "auto", "auto|multi|single",
               "classification term: multi = sigmoid BCE, single = softmax cross-entropy; "
               "auto: the model's labels"),
    OPT_FLOAT_GT("tau.intra", "0.1", 0.0, 100.0, "temperature of NT-Xent"),
    OPT_FLOAT_GT("tau.inter", "0.1", 0.0, 100.0, "temperature of InfoNCE"),
    OPT_FLOAT_GT("tau.fused", "0.1", 0.0, 100.0, "temperature of fused MulSupCon"),
    OPT_FLOAT_GT("tau.views", "0.1", 0.0, 100.0, "temperature of per-modality MulSupCon"),
    OPT_INT("mulsupcon.per_anchor", "0", 0, 1,
            "weight MulSupCon rows per anchor (1/(|y_i| K_a)) instead of per row"),
    OPT_INT("train.freeze_encoders", "0", 0, 1,
            "train the heads only, encoders frozen (linear probe)"),
    OPT_FLOAT("train.drop_path", "0.1", 0.0, 0.9,
              "stochastic depth of ConvNeXt encoders: the largest per-sample probability "
              "of dropping a block's branch, reached by the last block (rates rise "
              "linearly from 0 at the first; docs/model.md); other encoders ignore it"),
    OPT_INT("train.sync_bn", "0", 0, 1,
            "data-parallel training: BatchNorm normalises with the statistics of the global "
            "batch (all ranks; PyTorch's SyncBatchNorm) instead of each rank's own; one more "
            "all-reduce per BatchNorm layer in each pass; cpu backend only "
            "(docs/distributed.md)"),
    OPT_INT("train.dist_overlap", "1", 0, 1,
            "data-parallel training: start each gradient bucket's all-reduce as soon as the "
            "backward pass has completed it, overlapping communication with the rest of the "
            "pass; 0: sum the buckets after the pass (the same sums; docs/distributed.md)"),
    OPT_INT("train.dist_bucket", "4194304", 1, INT32_MAX,
            "data-parallel training: values (float32) per gradient all-reduce bucket; a "
            "larger parameter gets a bucket of its own (docs/distributed.md)"),
    OPT_FLOAT("train.modality_dropout", "0", 0.0, 1.0,
              "per sample, drop each modality from the fused features with this "
              "probability (never all; docs/losses.md)"),
    OPT_STRING("train.run_config", "", NULL,
               "text a checkpoint carries with its training options and gives back on "
               "load; the mosaic tool keeps its run's configuration there (JSON) so that "
               "--resume never pairs a checkpoint with another run's (docs/training.md)"),
    /* augmentations (docs/data.md, lib/train/augment.h) */
    OPT_INT_FN("aug.crop", "1 (dual: 0)", def_aug_on, 0, 1,
               "random resized crop, resampled back to the patch size (0/1)"),
    OPT_FLOAT_GT("aug.crop_scale_min", "0.5", 0.0, 1.0,
                 "smallest crop area, fraction of the patch"),
    OPT_FLOAT_GT("aug.crop_scale_max", "1", 0.0, 1.0,
                 "largest crop area, fraction of the patch"),
    OPT_FLOAT_GT("aug.crop_ratio_min", "0.75", 0.0, 100.0,
                 "smallest crop aspect ratio (width/height, log-uniform)"),
    OPT_FLOAT_GT("aug.crop_ratio_max", "1.3333", 0.0, 100.0,
                 "largest crop aspect ratio (width/height, log-uniform)"),
    OPT_INT_FN("aug.hflip", "1 (dual: 0)", def_aug_on, 0, 1,
               "random horizontal flip, probability 1/2 (0/1)"),
    OPT_INT_FN("aug.vflip", "1 (dual: 0)", def_aug_on, 0, 1,
               "random vertical flip, probability 1/2 (0/1)"),
    OPT_INT_FN("aug.rot90", "1 (dual: 0)", def_aug_on, 0, 1,
               "random rotation by 0, 90, 180 or 270 degrees, square patches (0/1)"),
    OPT_FLOAT("aug.noise_std", "0", 0.0, 100.0,
              "std of additive Gaussian noise, in normalised units"),
    OPT_FLOAT_FN("aug.jitter_brightness", "0.1 (dual: 0)", def_aug_jitter, 0.0, 100.0,
                 "optical: per-band offset ~ U(-b, b), in normalised units"),
    OPT_FLOAT_FN("aug.jitter_contrast", "0.1 (dual: 0)", def_aug_jitter, 0.0, 1.0,
                 "optical: per-band gain ~ U(1-c, 1+c) around the band mean"),
    OPT_FLOAT_FN("aug.speckle", "0.1 (dual: 0)", def_aug_jitter, 0.0, 10.0,
                 "SAR: x(1 + s N(0,1)) in input units, i.e. before normalisation"),
    OPT_INT("aug.shared_geometry", "1", 0, 1,
            "the modalities of a sample share crop, flips and rotation (0/1)"),
    /* optimiser (docs/losses.md, lib/train/optim.h) */
    OPT_CHOICE("optim.kind", "adamw", "adamw|sgd", "optimiser: AdamW, or SGD with momentum"),
    OPT_FLOAT_GT("optim.lr", "0.001", 0.0, 1000.0, "peak learning rate"),
    OPT_FLOAT("optim.beta1", "0.9", 0.0, 0.999999, "AdamW: decay of the first moment"),
    OPT_FLOAT("optim.beta2", "0.999", 0.0, 0.999999, "AdamW: decay of the second moment"),
    OPT_FLOAT_GT("optim.eps", "1e-08", 0.0, 1.0, "AdamW: added to the denominator"),
    OPT_FLOAT("optim.weight_decay", "0.0001", 0.0, 10.0,
              "weight decay (AdamW: decoupled; none on biases and norm parameters)"),
    OPT_FLOAT("optim.momentum", "0.9", 0.0, 1.0, "SGD: momentum"),
    OPT_INT("optim.nesterov", "0", 0, 1, "SGD: Nesterov momentum (0/1)"),
    OPT_INT("optim.warmup_steps", "0", 0, INT64_MAX, "steps of linear learning-rate warm-up"),
    OPT_INT("optim.total_steps", "0", 0, INT64_MAX,
            "steps of the whole schedule, warm-up included (0: constant after warm-up)"),
    OPT_FLOAT("optim.clip_norm", "0", 0.0, 1e9,
              "clip the global gradient norm to this value (0: off)"),
    /* datasets (docs/data.md, lib/data/dataset.h) */
    OPT_CHOICE("data.split", "train", "train|validation|test|all",
               "dataset split to open (formats without splits: all)"),
    OPT_FLOAT_GT("data.fraction", "1", 0.0, 1.0,
                 "share of the split kept, drawn by iterative stratification with seed"),
    OPT_FLOAT_GT("data.labeled_fraction", "1", 0.0, 1.0,
                 "share of the split that keeps its labels (stratified, seeded); the others "
                 "stay as unlabelled samples for the self-supervised terms"),
    OPT_CHOICE("data.resample", "bilinear", "bilinear|nearest",
               "resampling of bands below the patch size"),
    OPT_CHOICE("data.on_missing", "fail", "fail|skip",
               "a patch with a missing file fails the open, or is skipped and counted"),
    OPT_INT("data.allow_outside_root", "0", 0, 1,
            "files named by a table (manifest, series table) may lie outside the dataset "
            "root (0: refused before anything is opened; symbolic links are resolved)"),
    OPT_INT("data.include_snow_cloud", "0", 0, 1,
            "BigEarthNet v2: keep patches with seasonal snow, cloud or shadow (0/1)"),
    OPT_STRING("data.metadata", "", NULL,
               "metadata table (TSV, or zstd-compressed TSV) instead of the one in the root: "
               "BigEarthNet v2's metadata.tsv, the manifest's manifest.tsv, SEN12MS's IGBP "
               "fraction table"),
    OPT_STRING("data.s1_bands", "default", NULL,
               "S1 bands in order, ','-separated (e.g. \"VH,VV\"); \"default\": the format's "
               "set (VV,VH); \"none\": no S1 modality"),
    OPT_STRING("data.s2_bands", "default", NULL,
               "S2 bands in order, ','-separated (e.g. \"B04,B03,B02\"); \"default\": the "
               "format's set (BigEarthNet: its 12 bands; SEN12MS: the standard 10; EuroSAT: "
               "all 13, B8A after B08); \"none\": no S2 modality"),
    OPT_INT("data.masks", "0", 0, 1,
            "read the optional per-pixel masks of a format (docs/data.md \"Masks\"): "
            "BigEarthNet v2 reference maps, SEN12MS land cover (0/1)"),
    OPT_STRING("data.mask_classes", "", NULL,
               "manifest with a mask column: the mask's class names, ','-separated; value i of "
               "a mask raster is class i, any other value is ignored (-1)"),
    /* scenes (msc_scene_open, docs/scenes.md) */
    OPT_INT(
        "scene.stride", "0", 0, 4096,
        "pixels between tiles of a scene (0: the patch size, no overlap; smaller: overlap)"),
    OPT_INT("scene.batch", "8", 1, 1024, "tiles of a scene inferred at once"),
    OPT_CHOICE("scene.resample", "bilinear", "bilinear|nearest",
               "resampling of a scene's coarser modalities to the finest grid"),
    OPT_CHOICE("scene.blend", "centre", "centre|mean",
               "overlapping tiles: the tile whose centre is nearest, or the mean probability"),
    OPT_STRING("scene.mask", "", NULL,
               "a scene's cloud / no-data mask: a one-band GeoTIFF on the scene's grid (or "
               "coarser by an integer factor), nonzero = masked (\"\": none)"),
    OPT_FLOAT("scene.max_masked", "0.5", 0, 1,
              "a tile whose masked share (scene.mask) exceeds this is not run: nodata"),
    OPT_INT("scene.overviews", "1", 0, 1,
            "scene outputs get reduced-resolution overviews (halving down to one 256-pixel "
            "tile; 0/1); the files are Cloud-Optimised GeoTIFFs either way"),
    OPT_INT("scene.harmonize", "1", 0, 1,
            "scene: subtract the 1000 offset from a Sentinel-2 modality (named s2...) whose "
            "raster is of processing baseline 04.00 or later (metadata.json beside the file, "
            "or _N0400_ in its path), as data.series.harmonize does (0/1)"),
    OPT_CHOICE("scene.embedding_type", "float32", "float32|float16",
               "sample type of a scene's embedding map (msc_scene_write_embeddings)"),
    /* synthetic datasets (msc_synth_write, docs/data.md "Synthetic data") */
    OPT_INT("synth.size", "512", 16, 512,
            "sen1floods11 synthetic data: chip size in pixels (the real chips are 512)"),
    /* satellite image time series: PASTIS (docs/pimc.md, lib/data/sits_reader.h) */
    OPT_STRING("data.pastis.folds", "1,2,3;4;5", NULL,
               "PASTIS: the official folds (1-5) of the train, validation and test splits, "
               "';'-separated lists of ','-separated folds"),
    /* the series manifest (docs/data.md "Series manifest", lib/data/dataset_series.c) */
    OPT_STRING("data.series.bands", "B2,B3,B4,B5,B6,B7,B8,B8A,B11,B12", NULL,
               "series manifest: the names of the bands in file order, ','-separated (the "
               "indices find B2, B3, B4, B8, B12 by name; B02 etc. also match)"),
    OPT_STRING("data.series.classes", "", NULL,
               "series manifest with a target column: class names, ','-separated, in the "
               "order of the target's values 0, 1, ... (\"\": numbered by value, 0..the "
               "largest found)"),
    OPT_INT("data.series.harmonize", "1", 0, 1,
            "series: subtract the 1000 offset of Sentinel-2 dates of processing baseline "
            "04.00 or later (metadata.json beside the file, or _N0400_ in its path), so that "
            "every date is in the earlier convention (0/1)"),
    OPT_INT("data.series.ignore", "-1", -1, 65535,
            "series manifest: the target value never drawn nor counted as a class (-1: none)"),
    OPT_STRING("data.sits.modalities", "rp,s2", NULL,
               "the modalities of a time-series sample, in order: rp (recurrence plots), s2 "
               "(the image: a composite or one date), series (every date of the window as "
               "channels, date-major)"),
    OPT_CHOICE("data.sits.sample", "pixel", "pixel|patch",
               "time series samples: a pixel (its series and the patch around it) or a whole "
               "patch (its mean series and the patch)"),
    OPT_INT("data.sits.pixels", "16", 1, 1000000,
            "pixel samples drawn per patch (seeded, distinct, void pixels excluded)"),
    OPT_CHOICE(
        "data.sits.time", "resample", "resample|pad",
        "different numbers of dates: resample onto a regular grid of data.sits.length "
        "days (linear interpolation), or pad with missing dates (cut beyond the length)"),
    OPT_INT("data.sits.length", "32", 2, 4096, "dates per series after resampling or padding"),
    OPT_INT("data.sits.start", "0", 0, 99991231,
            "first day of the resampling grid, YYYYMMDD (0: the dataset's first date)"),
    OPT_INT("data.sits.end", "0", 0, 99991231,
            "last day of the resampling grid, YYYYMMDD (0: the dataset's last date)"),
    OPT_INT("data.sits.history", "0", 0, 4095,
            "leave the last N dates of the series out of the recurrence plots (forecasting)"),
    OPT_STRING("data.sits.indices", "ndvi,evi,savi", NULL,
               "vegetation indices of the recurrence plots, one channel each "
               "(ndvi, evi, savi, ndwi, nbr)"),
    OPT_CHOICE("data.sits.plot", "continuous", "continuous|binary",
               "recurrence plot: |x_i - x_j| or the threshold of it at eps"),
    OPT_FLOAT("data.sits.eps", "0.1", 0.0, 1e9, "binary plots: the threshold eps"),
    OPT_FLOAT("data.sits.eps_percentile", "0", 0.0, 100.0,
              "binary plots: eps as this percentile of each plot's distances (0: use "
              "data.sits.eps)"),
    OPT_INT("data.sits.plot_size", "0", 0, 4096,
            "recurrence plots resized to this side (0: the number of dates plotted)"),
    OPT_INT("data.sits.patch", "32", 8, 4096, "side of the image patch around a pixel"),
    OPT_STRING("data.sits.image", "median", NULL,
               "the image of a sample: \"median\" or \"mean\" of the dates, or one date: "
               "\"first\", \"middle\", \"last\" or its position 0..length-1"),
    OPT_FLOAT_GT("data.sits.scale", "10000", 0.0, 1e12,
                 "reflectance = (value + offset) / scale, for the indices"),
    OPT_FLOAT("data.sits.offset", "0", -1e12, 1e12,
              "see data.sits.scale (-1000 for Sentinel-2 processing baseline 04.00 and later)"),
    OPT_FLOAT("data.sits.cloud_blue", "0", 0.0, 1e9,
              "a date whose blue (B2) reflectance exceeds this is cloudy: missing for that "
              "pixel (0: off)"),
};

const int32_t msci_opt_table_count =
    (int32_t)(sizeof msci_opt_table / sizeof msci_opt_table[0]);
