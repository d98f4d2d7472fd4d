/*
 * model_config.c — from options to a checked model configuration (msci_model_cfg).
 * Encoder presets (torchvision's ResNets and the tiny test encoder) live in the options
 * schema, as the defaults of the architecture keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "model/model.h"
#include "options/options.h"

static void key_of(char *buf, size_t n, int32_t i, const char *suffix) {
  snprintf(buf, n, "modality.%d.%s", (int)i, suffix);
}

static msc_status get_int(const msc_options *o, int32_t i, const char *suffix, int64_t *v) {
  char key[64];
  key_of(key, sizeof key, i, suffix);
  return msc_options_get_int(o, key, v);
}

static msc_status get_str(const msc_options *o, int32_t i, const char *suffix, char **v) {
  char key[64];
  key_of(key, sizeof key, i, suffix);
  return msci_options_get_string_alloc(o, key, v);
}

/* The encoder's architecture keys default to its preset (options_schema.c), so reading
 * them gives the preset with any explicit override applied. */
static msc_status parse_encoder(const msc_options *o, int32_t i, msci_encoder_cfg *e) {
  int64_t v;
  char *s = NULL;
  memset(e, 0, sizeof *e);
  MSCI_TRY(get_int(o, i, "stem_width", &e->stem_width));
  MSCI_TRY(get_int(o, i, "stem_kernel", &e->stem_kernel));
  MSCI_TRY(get_int(o, i, "stem_stride", &e->stem_stride));
  MSCI_TRY(get_int(o, i, "maxpool", &v));
  e->maxpool = v != 0;
  MSCI_TRY(get_str(o, i, "block", &s));
  e->block = strcmp(s, "bottleneck") == 0 ? MSCI_BLOCK_BOTTLENECK
             : strcmp(s, "convnext") == 0 ? MSCI_BLOCK_CONVNEXT
                                          : MSCI_BLOCK_BASIC;
  free(s);
  int32_t nw = 0, nd = 0;
  MSCI_TRY(get_str(o, i, "widths", &s));
  msc_status st = msci_parse_int_list(s, e->widths, MSCI_MAX_STAGES, &nw);
  free(s);
  MSCI_TRY(st);
  MSCI_TRY(get_str(o, i, "depths", &s));
  st = msci_parse_int_list(s, e->depths, MSCI_MAX_STAGES, &nd);
  free(s);
  MSCI_TRY(st);
  if (nw != nd) /* msci_options_check_model has refused this already */
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "options 'modality.%d.widths' and '.depths' differ "
                     "in length",
                     (int)i);
  e->n_stages = nw;
  /* ConvNeXt's stem outputs the first stage's width (docs/model.md). */
  if (e->block == MSCI_BLOCK_CONVNEXT) e->stem_width = e->widths[0];
  return MSC_OK;
}

static msc_status parse_floats_n(const msc_options *o, int32_t i, const char *suffix,
                                 int64_t bands, float fill, float *dst, int32_t *given) {
  float v[MSCI_MAX_BANDS];
  size_t n = 0;
  MSCI_TRY(
      msci_options_get_floatsf(o, v, MSCI_MAX_BANDS, &n, "modality.%d.%s", (int)i, suffix));
  for (int64_t b = 0; b < bands; ++b) dst[b] = fill;
  if (n != 0 && (int64_t)n != bands)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "option 'modality.%d.%s' has %d values for %lld bands", (int)i, suffix,
                     (int)n, (long long)bands);
  for (size_t b = 0; b < n; ++b) dst[b] = v[b];
  if (given) *given = n != 0;
  return MSC_OK;
}

static msc_status parse_floats(const msc_options *o, int32_t i, const char *suffix,
                               int64_t bands, float fill, float *dst) {
  return parse_floats_n(o, i, suffix, bands, fill, dst, NULL);
}

/* modality.i.band_names into m->band_names (NULL when empty); the count was checked by
 * msci_options_check_model. */
static msc_status parse_band_names(const msc_options *o, int32_t i, msci_modality_cfg *m) {
  char *text = NULL, **list = NULL;
  int32_t n = 0;
  MSCI_TRY(get_str(o, i, "band_names", &text));
  msc_status st = text[0] ? msci_split_list(text, ',', &list, &n) : MSC_OK;
  free(text);
  MSCI_TRY(st);
  if (n != 0 && n != m->bands) {
    free(list);
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "option 'modality.%d.band_names' has %d names for %lld bands", (int)i,
                     (int)n, (long long)m->bands);
  }
  m->band_names = n ? list : NULL;
  if (!n) free(list);
  return MSC_OK;
}

/* seg.modalities: the modalities whose levels the decoder reads (empty: all), kept in
 * model order. They concatenate at every resolution, so they need one patch size; the
 * others may have any. */
static msc_status parse_seg_modalities(const msc_options *o, msci_model_cfg *cfg) {
  cfg->seg_n_mod = cfg->n_mod; /* a contrastive model has no decoder: key ignored */
  for (int32_t i = 0; i < cfg->n_mod; ++i) cfg->seg_mod[i] = i;
  if (!cfg->segmentation) return MSC_OK;
  char *text = NULL;
  MSCI_TRY(msci_options_get_string_alloc(o, "seg.modalities", &text));
  const char *names[MSCI_MAX_MODALITIES];
  for (int32_t i = 0; i < cfg->n_mod; ++i) names[i] = cfg->mod[i].name;
  int32_t listed[MSCI_MAX_MODALITIES], count = 0;
  msc_status st = text[0] ? msci_parse_name_list("option 'seg.modalities'", text, names,
                                                 cfg->n_mod, listed, &count)
                          : MSC_OK;
  free(text);
  MSCI_TRY(st);
  uint8_t in[MSCI_MAX_MODALITIES] = {0};
  for (int32_t k = 0; k < count; ++k) in[listed[k]] = 1;
  cfg->seg_n_mod = 0;
  for (int32_t i = 0; i < cfg->n_mod; ++i)
    if (count == 0 || in[i]) cfg->seg_mod[cfg->seg_n_mod++] = i;
  const msci_modality_cfg *m0 = &cfg->mod[cfg->seg_mod[0]];
  for (int32_t k = 1; k < cfg->seg_n_mod; ++k) {
    const msci_modality_cfg *mk = &cfg->mod[cfg->seg_mod[k]];
    if (mk->size != m0->size)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "task segmentation needs one patch size for the decoder's modalities: "
                       "%s has %lld, %s %lld (modality.#.size; seg.modalities chooses the "
                       "decoder's modalities)",
                       m0->name, (long long)m0->size, mk->name, (long long)mk->size);
  }
  return MSC_OK;
}

/* Options 'fusion', 'fusion.dim' and 'fusion.heads' (docs/model.md, "Fusion"). */
static msc_status parse_fusion(const msc_options *o, msci_model_cfg *cfg) {
  char *mode = NULL;
  MSCI_TRY(msci_options_get_string_alloc(o, "fusion", &mode));
  cfg->fusion_xattn = strcmp(mode, "xattn") == 0;
  free(mode);
  int64_t v;
  MSCI_TRY(msc_options_get_int(o, "fusion.dim", &cfg->fusion_dim));
  MSCI_TRY(msc_options_get_int(o, "fusion.heads", &v));
  cfg->fusion_heads = (int32_t)v;
  if (cfg->fusion_xattn && cfg->fusion_dim % cfg->fusion_heads != 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "option 'fusion.heads' (%d) must divide 'fusion.dim' (%lld): each head "
                     "takes fusion.dim / fusion.heads channels of a token",
                     (int)cfg->fusion_heads, (long long)cfg->fusion_dim);
  if (cfg->fusion_xattn && cfg->n_mod > MBK_MAX_ATTN_SOURCES + 1)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "fusion xattn takes at most %d modalities (each attends to the other %d "
                     "at most); the model has %d",
                     MBK_MAX_ATTN_SOURCES + 1, MBK_MAX_ATTN_SOURCES, (int)cfg->n_mod);
  return MSC_OK;
}

msc_status msci_model_cfg_parse(const msc_options *o, msci_model_cfg *cfg) {
  memset(cfg, 0, sizeof *cfg);
  msc_status st = msci_options_check_model(o);
  if (st != MSC_OK) return st;
  int64_t v;
  MSCI_TRY(msc_options_get_int(o, "modality.count", &v));
  cfg->n_mod = (int32_t)v;
  for (int32_t i = 0; i < cfg->n_mod; ++i) {
    msci_modality_cfg *m = &cfg->mod[i];
    char *name = NULL;
    MSCI_TRY(get_str(o, i, "name", &name));
    snprintf(m->name, sizeof m->name, "%s", name);
    free(name);
    MSCI_TRY(get_int(o, i, "bands", &m->bands));
    MSCI_TRY(get_int(o, i, "size", &m->size));
    MSCI_TRY(parse_floats(o, i, "mean", m->bands, 0.f, m->mean));
    MSCI_TRY(parse_floats(o, i, "std", m->bands, 1.f, m->std));
    MSCI_TRY(parse_floats_n(o, i, "scale", m->bands, 1.f, m->scale, &m->has_scale));
    MSCI_TRY(parse_floats_n(o, i, "offset", m->bands, 0.f, m->offset, &m->has_offset));
    MSCI_TRY(parse_band_names(o, i, m));
    MSCI_TRY(parse_encoder(o, i, &m->enc));
  }
  MSCI_TRY(msc_options_get_int(o, "classes", &cfg->classes));
  MSCI_TRY(msc_options_get_int(o, "proj.hidden", &cfg->proj_hidden));
  MSCI_TRY(msc_options_get_int(o, "proj.dim", &cfg->proj_dim));
  MSCI_TRY(msc_options_get_int(o, "proj.bn", &v));
  cfg->proj_bn = v != 0;
  MSCI_TRY(msc_options_get_int(o, "fused.hidden", &cfg->fused_hidden));
  MSCI_TRY(parse_fusion(o, cfg));
  char *mode = NULL;
  MSCI_TRY(msci_options_get_string_alloc(o, "labels", &mode));
  cfg->single_label = strcmp(mode, "single") == 0;
  free(mode);
  double f;
  MSCI_TRY(msc_options_get_float(o, "bn.momentum", &f));
  cfg->bn_momentum = (float)f;
  MSCI_TRY(msc_options_get_float(o, "bn.eps", &f));
  cfg->bn_eps = (float)f;
  MSCI_TRY(msc_options_get_int(o, "seed", &v));
  cfg->seed = (uint64_t)v;
  char *task = NULL;
  MSCI_TRY(msci_options_get_string_alloc(o, "task", &task));
  cfg->segmentation = strcmp(task, "segmentation") == 0;
  free(task);
  MSCI_TRY(msci_options_get_string_alloc(o, "seg.upsample", &task));
  cfg->seg_deconv = strcmp(task, "deconv") == 0;
  free(task);
  MSCI_TRY(msc_options_get_int(o, "seg.convs", &v));
  cfg->seg_convs = (int32_t)v;
  MSCI_TRY(parse_seg_modalities(o, cfg));
  char *names = NULL, **list = NULL;
  int32_t count = 0;
  MSCI_TRY(msci_options_get_string_alloc(o, "class_names", &names));
  st = msci_split_names(names, &list, &count);
  free(names);
  MSCI_TRY(st);
  if (count != cfg->classes) { /* msci_options_check_model has refused this already */
    free(list);
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "option 'class_names' has %d names for %lld classes", (int)count,
                     (long long)cfg->classes);
  }
  cfg->class_names = calloc((size_t)count, sizeof(char *));
  for (int32_t c = 0; cfg->class_names && c < count; ++c) {
    cfg->class_names[c] = strdup(list[c]);
    if (!cfg->class_names[c]) st = MSC_E_OUT_OF_MEMORY;
  }
  free(list);
  if (!cfg->class_names || st != MSC_OK) {
    msci_model_cfg_clear(cfg);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "class names");
  }
  return MSC_OK;
}

void msci_model_cfg_clear(msci_model_cfg *cfg) {
  for (int32_t i = 0; i < cfg->n_mod && i < MSCI_MAX_MODALITIES; ++i) {
    free(cfg->mod[i].band_names);
    cfg->mod[i].band_names = NULL;
  }
  if (cfg->class_names)
    for (int64_t c = 0; c < cfg->classes; ++c) free(cfg->class_names[c]);
  free(cfg->class_names);
  cfg->class_names = NULL;
}
