/*
 * model.c — model lifecycle: create (seeded initialisation), free, save and load as
 * safetensors, and the configuration getters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_call.h"
#include "backend/registry.h"
#include "common/internal.h"
#include "model/model.h"
#include "options/options.h"
#include "common/rng.h"
#include "model/safetensors.h"
#include "train/train.h"

#define MODEL_FORMAT_VERSION "1"

static int64_t param_count(const msci_param *p) {
  int64_t n = 1;
  for (int32_t i = 0; i < p->ndim; ++i) n *= p->dims[i];
  return n;
}

/* ---- the resolved configuration kept in model files ----------------------------------- */

static msc_status set_list(msc_options *o, const char *key, const int64_t *v, int32_t n) {
  char buf[256];
  size_t used = 0;
  buf[0] = '\0';
  for (int32_t i = 0; i < n && used < sizeof buf; ++i)
    used +=
        (size_t)snprintf(buf + used, sizeof buf - used, i ? ",%lld" : "%lld", (long long)v[i]);
  return msc_options_set_string(o, key, buf);
}

/* shortest: each value with the fewest digits (6..9) that read back as the same float
 * ("0.0001" rather than "9.99999975e-05"); else 9 digits, as every key before 0.4.0. */
static msc_status set_floats_as(msc_options *o, const char *key, const float *v, int64_t n,
                                int shortest) {
  char *buf = malloc((size_t)n * 32 + 1);
  if (!buf) return msci_fail(MSC_E_OUT_OF_MEMORY, "options");
  size_t used = 0;
  buf[0] = '\0';
  for (int64_t i = 0; i < n; ++i) {
    if (i) buf[used++] = ',';
    /* Locale-independent: a host program's decimal comma must not split values. */
    int digits = shortest ? 6 : 9;
    while (digits < 9) {
      char tmp[32];
      msci_format_double(tmp, sizeof tmp, digits, (double)v[i]);
      if ((float)msci_strtod(tmp, NULL) == v[i]) break;
      digits++;
    }
    used += (size_t)msci_format_double(buf + used, 31, digits, (double)v[i]);
  }
  msc_status st = msc_options_set_string(o, key, buf);
  free(buf);
  return st;
}

static msc_status set_floats(msc_options *o, const char *key, const float *v, int64_t n) {
  return set_floats_as(o, key, v, n, 0);
}

/* names[0..n) joined with ','. */
static msc_status set_names(msc_options *o, const char *key, char *const *names, int64_t n) {
  size_t len = 1;
  for (int64_t i = 0; i < n; ++i) len += strlen(names[i]) + 1;
  char *buf = malloc(len);
  if (!buf) return msci_fail(MSC_E_OUT_OF_MEMORY, "options");
  size_t used = 0;
  for (int64_t i = 0; i < n; ++i) {
    size_t k = strlen(names[i]);
    if (i) buf[used++] = ',';
    memcpy(buf + used, names[i], k);
    used += k;
  }
  buf[used] = '\0';
  msc_status st = msc_options_set_string(o, key, buf);
  free(buf);
  return st;
}

/* Every model key with its effective value, so a file never depends on defaults. */
static msc_status resolve_options(const msci_model_cfg *c, msc_options **out) {
  msc_options *o = NULL;
  MSCI_TRY(msc_options_create(&o));
  msc_status st = MSC_OK;
  char key[64];
#define SET(call)                                                                              \
  do {                                                                                         \
    if (st == MSC_OK) st = (call);                                                             \
  } while (0)
  SET(msc_options_set_int(o, "modality.count", c->n_mod));
  for (int32_t i = 0; i < c->n_mod; ++i) {
    const msci_modality_cfg *m = &c->mod[i];
    const msci_encoder_cfg *e = &m->enc;
#define KEY(suffix) (snprintf(key, sizeof key, "modality.%d." suffix, (int)i), key)
    SET(msc_options_set_string(o, KEY("name"), m->name));
    SET(msc_options_set_int(o, KEY("bands"), m->bands));
    SET(msc_options_set_int(o, KEY("size"), m->size));
    SET(set_floats(o, KEY("mean"), m->mean, m->bands));
    SET(set_floats(o, KEY("std"), m->std, m->bands));
    /* The inputs' description only where given, so that files of models made without it
     * stay byte for byte as before. */
    if (m->band_names) SET(set_names(o, KEY("band_names"), m->band_names, m->bands));
    if (m->has_scale) SET(set_floats_as(o, KEY("scale"), m->scale, m->bands, 1));
    if (m->has_offset) SET(set_floats_as(o, KEY("offset"), m->offset, m->bands, 1));
    SET(msc_options_set_int(o, KEY("stem_width"), e->stem_width));
    SET(msc_options_set_int(o, KEY("stem_kernel"), e->stem_kernel));
    SET(msc_options_set_int(o, KEY("stem_stride"), e->stem_stride));
    SET(msc_options_set_int(o, KEY("maxpool"), e->maxpool));
    SET(msc_options_set_string(o, KEY("block"),
                               e->block == MSCI_BLOCK_BOTTLENECK ? "bottleneck"
                               : e->block == MSCI_BLOCK_CONVNEXT ? "convnext"
                                                                 : "basic"));
    SET(set_list(o, KEY("widths"), e->widths, e->n_stages));
    SET(set_list(o, KEY("depths"), e->depths, e->n_stages));
#undef KEY
  }
  SET(msc_options_set_int(o, "classes", c->classes));
  size_t len = 1;
  for (int64_t k = 0; k < c->classes; ++k) len += strlen(c->class_names[k]) + 1;
  char *names = malloc(len);
  if (!names) st = msci_fail(MSC_E_OUT_OF_MEMORY, "class names");
  if (names) {
    names[0] = '\0';
    for (int64_t k = 0; k < c->classes; ++k) {
      if (k) strcat(names, ";");
      strcat(names, c->class_names[k]);
    }
  }
  SET(msc_options_set_string(o, "class_names", names));
  free(names);
  SET(msc_options_set_int(o, "proj.hidden", c->proj_hidden));
  SET(msc_options_set_int(o, "proj.dim", c->proj_dim));
  SET(msc_options_set_int(o, "proj.bn", c->proj_bn));
  SET(msc_options_set_int(o, "fused.hidden", c->fused_hidden));
  /* The fusion keys only for cross-attention: files of concatenation models stay as
   * before. */
  if (c->fusion_xattn) {
    SET(msc_options_set_string(o, "fusion", "xattn"));
    SET(msc_options_set_int(o, "fusion.dim", c->fusion_dim));
    SET(msc_options_set_int(o, "fusion.heads", c->fusion_heads));
  }
  SET(msc_options_set_string(o, "labels", c->single_label ? "single" : "multi"));
  SET(msc_options_set_int(o, "seed", (int64_t)c->seed));
  SET(msc_options_set_float(o, "bn.momentum", c->bn_momentum));
  SET(msc_options_set_float(o, "bn.eps", c->bn_eps));
  /* Only segmentation models store the task keys: contrastive files stay as before. */
  if (c->segmentation) {
    SET(msc_options_set_string(o, "task", "segmentation"));
    SET(msc_options_set_string(o, "seg.decoder", "unet"));
    SET(msc_options_set_string(o, "seg.upsample", c->seg_deconv ? "deconv" : "bilinear"));
    SET(msc_options_set_int(o, "seg.convs", c->seg_convs));
    /* The decoder's modalities, in model order (all of them when none were named). */
    char mods[MSCI_MAX_MODALITIES * (MSCI_NAME_LEN + 1)] = "";
    for (int32_t k = 0, w = 0; k < c->seg_n_mod; ++k)
      w += snprintf(mods + w, sizeof mods - (size_t)w, "%s%s", k ? "," : "",
                    c->mod[c->seg_mod[k]].name);
    SET(msc_options_set_string(o, "seg.modalities", mods));
  }
#undef SET
  if (st != MSC_OK) {
    msc_options_free(o);
    return st;
  }
  *out = o;
  return MSC_OK;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

void msc_model_free(msc_model *m) {
  if (!m) return;
  msci_train_free(m, m->train);
  msci_int8_free(m);
  while (m->pool) {
    msci_exec *e = m->pool;
    m->pool = e->next;
    msci_exec_free(m, e);
  }
  if (m->be) {
    for (int32_t i = 0; i < m->graph.n_params; ++i)
      msci_be_tensor_free(m->be, m->graph.params[i].t);
    msci_be_ctx_free(m->be, m->ctx);
  }
  pthread_mutex_destroy(&m->pool_lock);
  msci_graph_clear(&m->graph);
  msci_model_cfg_clear(&m->cfg);
  msc_options_free(m->opts);
  free(m);
}

msc_status msci_model_alloc(const msc_options *opts, const msc_options *runtime,
                            msc_model **out) {
  msc_options *defaults = NULL;
  if (!opts || !runtime) {
    MSCI_TRY(msc_options_create(&defaults));
    if (!opts) opts = defaults;
    if (!runtime) runtime = defaults;
  }
  msc_model *m = calloc(1, sizeof *m);
  if (!m) {
    msc_options_free(defaults);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "model");
  }
  pthread_mutex_init(&m->pool_lock, NULL);
  char *backend = NULL;
  int64_t threads = 0;
  char precision[8] = "f32", conv_algo[8] = "auto";
  msc_status st = msci_model_cfg_parse(opts, &m->cfg);
  if (st == MSC_OK) st = resolve_options(&m->cfg, &m->opts);
  if (st == MSC_OK) st = msci_options_get_string_alloc(runtime, "backend", &backend);
  if (st == MSC_OK) st = msc_options_get_int(runtime, "threads", &threads);
  if (st == MSC_OK)
    st = msc_options_get_string(runtime, "precision", precision, sizeof precision, NULL);
  if (st == MSC_OK)
    st = msc_options_get_string(runtime, "conv_algorithm", conv_algo, sizeof conv_algo, NULL);
  if (st == MSC_OK) st = msci_backend_resolve(backend, &m->be, &m->backend_name);
  m->threads = (int32_t)threads;
  /* The schema admits only these names (options_schema.c). */
  m->precision = strcmp(precision, "bf16") == 0   ? MBK_PRECISION_BF16
                 : strcmp(precision, "int8") == 0 ? MBK_PRECISION_INT8
                                                  : MBK_PRECISION_F32;
  m->conv_algo = strcmp(conv_algo, "direct") == 0 ? MBK_CONV_ALGO_DIRECT : MBK_CONV_ALGO_AUTO;
  free(backend);
  msc_options_free(defaults);
  if (st == MSC_OK) st = msci_graph_build(&m->cfg, &m->graph);
  /* The backend refuses a precision it cannot compute in here (MSC_E_UNSUPPORTED). */
  mbk_ctx_params p = {sizeof p, m->threads, 0, m->precision, m->conv_algo};
  if (st == MSC_OK) st = msci_be_ctx_create(m->be, &p, &m->ctx);
  for (int32_t i = 0; st == MSC_OK && i < m->graph.n_params; ++i)
    st = msci_be_tensor_create(m->be, m->ctx, &m->graph.params[i].t);
  if (st != MSC_OK) {
    msc_model_free(m);
    return st;
  }
  *out = m;
  return MSC_OK;
}

/* Fills buf with the seeded initial values of parameter p: Kaiming normal, fan-out, for
 * convolutions (torchvision's ResNet); PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * for linear weights and biases; batch-norm scale 1, shift 0 and running statistics 0/1;
 * ConvNeXt's convolutions N(0, 0.02²) with biases 0, its norms 1/0 and GRN 0/0.
 * The stream depends on the seed and the parameter's name only. */
static void init_values(const msci_param *p, uint64_t seed, float *buf, size_t n) {
  msci_rng r;
  msci_rng_seed(&r, seed, p->name);
  int is_conv = p->ndim == 4;
  double conv_std = sqrt(2.0 / (double)p->fan_out);
  double bound = 1.0 / sqrt((double)p->fan_in);
  for (size_t k = 0; k < n; ++k) {
    if (p->convnext_init && (p->kind == MSCI_PARAM_WEIGHT || p->kind == MSCI_PARAM_BIAS)) {
      /* ConvNeXt's _init_weights: trunc_normal_(std=.02) with timm's default bounds ±2
       * (absolute, so 100 standard deviations: a clip that never bites), biases 0. */
      double v = p->kind == MSCI_PARAM_WEIGHT ? 0.02 * msci_rng_normal(&r) : 0.0;
      buf[k] = (float)(v > 2.0 ? 2.0 : v < -2.0 ? -2.0 : v);
      continue;
    }
    switch (p->kind) {
    case MSCI_PARAM_BN_SCALE:
    case MSCI_PARAM_BN_VAR: buf[k] = 1.f; break;
    case MSCI_PARAM_BN_SHIFT:
    case MSCI_PARAM_BN_MEAN: buf[k] = 0.f; break;
    default:
      buf[k] = is_conv ? (float)(conv_std * msci_rng_normal(&r))
                       : (float)(bound * (2.0 * msci_rng_uniform(&r) - 1.0));
    }
  }
}

/* Initialises the parameters whose names start with prefix ("" = all) from seed; with
 * training state, their master copies follow and their optimiser moments restart at 0. */
static msc_status init_params_matching(msc_model *m, const char *prefix, uint64_t seed) {
  float *buf = NULL;
  size_t cap = 0, plen = strlen(prefix);
  msc_status st = MSC_OK;
  msci_train *t = m->train;
  /* The moments of the other parameters must survive: bring those a backend holds to
   * the host first, since the next step uploads them all from there. */
  if (t) st = msci_train_moments_to_host(m);
  for (int32_t i = 0; st == MSC_OK && i < m->graph.n_params; ++i) {
    msci_param *p = &m->graph.params[i];
    if (strncmp(p->name, prefix, plen) != 0) continue;
    size_t n = (size_t)param_count(p);
    if (n > cap) {
      free(buf);
      buf = malloc(n * sizeof(float));
      cap = buf ? n : 0;
      if (!buf) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "parameter %s", p->name);
        break;
      }
    }
    init_values(p, seed, buf, n);
    st = msci_be_tensor_upload(m->be, p->t, p->ndim, p->dims, buf);
    if (st == MSC_OK && t && t->master && t->master[i])
      memcpy(t->master[i], buf, n * sizeof(float));
    if (st == MSC_OK && t && t->m1 && t->m1[i]) memset(t->m1[i], 0, n * sizeof(float));
    if (st == MSC_OK && t && t->m2 && t->m2[i]) memset(t->m2[i], 0, n * sizeof(float));
  }
  if (t) t->dm_valid = 0;
  free(buf);
  return st;
}

msc_status msci_model_init_params(msc_model *m) {
  return init_params_matching(m, "", m->cfg.seed);
}

MSC_API msc_status msc_model_reset_classifier(msc_model *m, uint64_t seed) {
  if (!m) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_reset_classifier: model is NULL");
  return init_params_matching(m, "classifier.", seed);
}

MSC_API int64_t msc_model_step(const msc_model *m) {
  return m && m->train ? m->train->step : 0;
}

MSC_API msc_status msc_model_create(const msc_options *opts, msc_model **out) {
  if (!out) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_create: out is NULL");
  msc_model *m = NULL;
  MSCI_TRY(msci_model_alloc(opts, opts, &m));
  msc_status st = msci_model_init_params(m);
  if (st == MSC_OK) st = msci_train_configure(m, opts);
  if (st != MSC_OK) {
    msc_model_free(m);
    return st;
  }
  *out = m;
  return MSC_OK;
}

/* ---- files ------------------------------------------------------------------------------------- */

/* The index of the first NaN or infinity of x[0..n), or n when every value is finite:
 * what msc_model_load refuses in any tensor it reads, and so what msc_model_save refuses
 * to write (a save must never produce a file that load refuses). */
static size_t first_non_finite(const float *x, size_t n) {
  for (size_t k = 0; k < n; ++k)
    if (!isfinite(x[k])) return k;
  return n;
}

/* Whether the tensor called name is a variance: batch norm's running variance or Adam's
 * second moment. Neither is ever negative (training writes averages of squares), and a
 * negative one would turn every output into NaN through its square root, so load refuses
 * it and save refuses to write it, as for non-finite values. */
static int is_variance(const char *name) {
  const size_t n = strlen(name), k = strlen(".running_var");
  return strncmp(name, "optim.m2.", 9) == 0 ||
         (n >= k && strcmp(name + n - k, ".running_var") == 0);
}

/* The index of the first negative value of x[0..n), or n. */
static size_t first_negative(const float *x, size_t n) {
  for (size_t k = 0; k < n; ++k)
    if (x[k] < 0.0f) return k;
  return n;
}

/* Names of a checkpoint's optimiser tensors: optim.m1.<param>, optim.m2.<param>. */
static void optim_name(char *buf, size_t n, int which, const char *param) {
  snprintf(buf, n, "optim.m%d.%s", which, param);
}

MSC_API msc_status msc_model_save(const msc_model *m, const char *path) {
  if (!m || !path) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_save: NULL argument");
  const msci_graph *g = &m->graph;
  const msci_train *t = m->train;
  int with_optim = t && t->ready && t->step > 0;
  size_t n_ts = (size_t)g->n_params * (with_optim ? 3 : 1);
  msci_st_tensor_in *ts = calloc(n_ts, sizeof *ts);
  char(*names)[MSCI_PARAM_NAME_LEN + 16] =
      with_optim ? calloc((size_t)g->n_params * 2, sizeof *names) : NULL;
  float **data = calloc((size_t)g->n_params, sizeof *data);
  char *config = NULL, *train_config = NULL, step[32];
  size_t count = (size_t)g->n_params;
  msc_status st = (ts && data) ? MSC_OK : msci_fail(MSC_E_OUT_OF_MEMORY, "msc_model_save");
  for (int32_t i = 0; st == MSC_OK && i < g->n_params; ++i) {
    const msci_param *p = &g->params[i];
    size_t n = (size_t)param_count(p);
    data[i] = malloc(n * sizeof(float));
    if (!data[i]) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "msc_model_save: %s", p->name);
      break;
    }
    st = msci_be_tensor_download(m->be, p->t, data[i], n);
    ts[i] = (msci_st_tensor_in){p->name, p->ndim, p->dims, data[i]};
  }
  if (st == MSC_OK && with_optim && !names)
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "msc_model_save");
  /* A checkpoint: the optimiser's moments of every trainable parameter and the step, so
   * that training resumes exactly (the augmentation streams derive from seed and step). */
  if (st == MSC_OK && with_optim) st = msci_train_moments_to_host(m);
  for (int32_t i = 0; st == MSC_OK && with_optim && i < g->n_params; ++i) {
    const msci_param *p = &g->params[i];
    if (!t->m1[i]) continue;
    for (int which = 1; which <= 2; ++which) {
      char *name = names[2 * i + which - 1];
      optim_name(name, MSCI_PARAM_NAME_LEN + 16, which, p->name);
      ts[count++] =
          (msci_st_tensor_in){name, p->ndim, p->dims, which == 1 ? t->m1[i] : t->m2[i]};
    }
  }
  /* Every tensor finite, checked before anything is written: the file at path, if any,
   * stays as it was. */
  for (size_t i = 0; st == MSC_OK && i < count; ++i) {
    size_t n = 1;
    for (int32_t d = 0; d < ts[i].ndim; ++d) n *= (size_t)ts[i].dims[d];
    size_t k = first_non_finite(ts[i].data, n);
    if (k < n)
      st = msci_fail(MSC_E_NUMERICAL,
                     "msc_model_save: tensor '%s' holds a NaN or infinity at %zu: %s not "
                     "written (msc_model_load would refuse it)",
                     ts[i].name, k, path);
    else if (is_variance(ts[i].name) && (k = first_negative(ts[i].data, n)) < n)
      st = msci_fail(MSC_E_NUMERICAL,
                     "msc_model_save: tensor '%s' holds a negative variance at %zu: %s not "
                     "written (msc_model_load would refuse it)",
                     ts[i].name, k, path);
  }
  if (st == MSC_OK) st = msci_options_to_json_alloc(m->opts, &config);
  if (st == MSC_OK && t) st = msci_options_to_json_alloc(t->opts, &train_config);
  if (st == MSC_OK) {
    snprintf(step, sizeof step, "%lld", (long long)(t ? t->step : 0));
    msci_st_meta meta[] = {{"mosaic.format", MODEL_FORMAT_VERSION},
                           {"mosaic.version", msc_version_string()},
                           {"mosaic.config", config},
                           {"mosaic.step", step},
                           {"mosaic.train", train_config ? train_config : "{}"}};
    st = msci_st_write(path, meta, sizeof meta / sizeof meta[0], ts, count);
  }
  free(train_config);
  free(names);
  for (int32_t i = 0; data && i < g->n_params; ++i) free(data[i]);
  free(data);
  free(ts);
  free(config);
  return st;
}

/* Load's refusal of a non-finite value, the same for every tensor of the file, and of a
 * negative variance (is_variance). */
static msc_status check_finite(const float *x, size_t n, const char *path, const char *name) {
  size_t k = first_non_finite(x, n);
  if (k < n)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor '%s' holds a NaN or infinity at %zu", path,
                     name, k);
  if (is_variance(name) && (k = first_negative(x, n)) < n)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor '%s' holds a negative variance at %zu", path,
                     name, k);
  return MSC_OK;
}

/* Whether a file's tensor of shape a fits a parameter of shape b: the same sizes once
 * the dimensions of size 1 are dropped, so the same row-major values. PyTorch's
 * ConvNeXt-V2 stores what the model holds as [4C, C, 1, 1] (its pointwise nn.Linear) as
 * [4C, C] and GRN's [C] as [1, 1, 1, C]: a state dict converted as it is loads
 * (docs/model.md, "Parameter names of ConvNeXt encoders"). */
static int same_squeezed(int32_t na, const int64_t *a, int32_t nb, const int64_t *b) {
  int32_t i = 0, j = 0;
  for (;;) {
    while (i < na && a[i] == 1) ++i;
    while (j < nb && b[j] == 1) ++j;
    if (i == na || j == nb) return i == na && j == nb;
    if (a[i++] != b[j++]) return 0;
  }
}

static msc_status load_params(msc_model *m, const msci_st_file *f, const char *path) {
  const msci_graph *g = &m->graph;
  size_t matched = 0;
  float *buf = NULL;
  size_t cap = 0;
  msc_status st = MSC_OK;
  for (int32_t i = 0; st == MSC_OK && i < g->n_params; ++i) {
    const msci_param *p = &g->params[i];
    int32_t ndim = 0;
    int64_t dims[8];
    st = msci_st_shape(f, p->name, &ndim, dims);
    if (st != MSC_OK) {
      st = msci_fail(MSC_E_BAD_FORMAT, "%s: tensor '%s' is missing", path, p->name);
      break;
    }
    if (!same_squeezed(ndim, dims, p->ndim, p->dims)) {
      st = msci_fail(MSC_E_BAD_FORMAT,
                     "%s: tensor '%s' has %d dimensions or a size that does "
                     "not match the configuration",
                     path, p->name, (int)ndim);
      break;
    }
    size_t n = (size_t)param_count(p);
    if (n > cap) {
      free(buf);
      buf = malloc(n * sizeof(float));
      cap = buf ? n : 0;
      if (!buf) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: tensor '%s'", path, p->name);
        break;
      }
    }
    st = msci_st_read_f32(f, p->name, buf, n);
    if (st == MSC_OK) st = check_finite(buf, n, path, p->name);
    if (st == MSC_OK) st = msci_be_tensor_upload(m->be, p->t, p->ndim, p->dims, buf);
    matched++;
  }
  free(buf);
  if (st != MSC_OK) return st;
  /* Tensors under "optim." are a checkpoint's optimiser state, read by training. */
  for (size_t i = 0; i < msci_st_count(f); ++i) {
    const char *name = msci_st_name(f, i);
    if (strncmp(name, "optim.", 6) == 0) continue;
    int known = 0;
    for (int32_t k = 0; !known && k < g->n_params; ++k)
      known = strcmp(g->params[k].name, name) == 0;
    if (!known)
      return msci_fail(MSC_E_BAD_FORMAT, "%s: unexpected tensor '%s' for this configuration",
                       path, name);
  }
  return MSC_OK;
}

/* A metadata entry of path that could not be applied: MSC_E_BAD_FORMAT naming it — unless
 * memory ran out, which says nothing about the file and stays MSC_E_OUT_OF_MEMORY. */
static msc_status bad_entry(msc_status st, const char *path, const char *entry) {
  if (st == MSC_E_OUT_OF_MEMORY)
    return msci_fail(st, "%s: reading '%s': %s", path, entry, msc_last_error());
  return msci_fail(MSC_E_BAD_FORMAT, "%s: bad '%s': %s", path, entry, msc_last_error());
}

/* Training state of a checkpoint: its training options, step and optimiser moments. */
static msc_status load_training(msc_model *m, const msci_st_file *f, const char *path,
                                const msc_options *runtime) {
  const char *train = msci_st_meta_get(f, "mosaic.train");
  const char *step = msci_st_meta_get(f, "mosaic.step");
  msc_options *o = NULL;
  MSCI_TRY(msc_options_create(&o));
  msc_status st = MSC_OK;
  if (train) {
    st = msc_options_from_json(o, train);
    if (st != MSC_OK) st = bad_entry(st, path, "mosaic.train");
  }
  /* The run-time keys the caller gave win over those saved. */
  char backend[64], precision[8], conv_algo[8];
  int64_t threads = 0;
  if (st == MSC_OK && runtime) {
    st = msc_options_get_string(runtime, "backend", backend, sizeof backend, NULL);
    if (st == MSC_OK) st = msc_options_set_string(o, "backend", backend);
    if (st == MSC_OK) st = msc_options_get_int(runtime, "threads", &threads);
    if (st == MSC_OK) st = msc_options_set_int(o, "threads", threads);
    if (st == MSC_OK)
      st = msc_options_get_string(runtime, "precision", precision, sizeof precision, NULL);
    if (st == MSC_OK) st = msc_options_set_string(o, "precision", precision);
    if (st == MSC_OK)
      st = msc_options_get_string(runtime, "conv_algorithm", conv_algo, sizeof conv_algo, NULL);
    if (st == MSC_OK) st = msc_options_set_string(o, "conv_algorithm", conv_algo);
  }
  if (st == MSC_OK) st = msci_train_configure(m, o);
  msc_options_free(o);
  MSCI_TRY(st);
  char *end = NULL;
  long long n = step ? strtoll(step, &end, 10) : 0;
  if (step && (*end != '\0' || n < 0))
    return msci_fail(MSC_E_BAD_FORMAT, "%s: bad 'mosaic.step' '%s'", path, step);
  if (n == 0) return MSC_OK;
  msci_train *t = m->train;
  MSCI_TRY(msci_train_ensure_ready(m));
  MSCI_TRY(msci_train_moments_to_host(m)); /* (zeros: the model was just made) */
  t->step = n;
  for (int32_t i = 0; i < m->graph.n_params; ++i) {
    const msci_param *p = &m->graph.params[i];
    if (!t->m1[i]) continue;
    size_t count = (size_t)param_count(p);
    for (int which = 1; which <= 2; ++which) {
      char name[MSCI_PARAM_NAME_LEN + 16];
      int32_t ndim = 0;
      int64_t dims[8];
      optim_name(name, sizeof name, which, p->name);
      if (msci_st_shape(f, name, &ndim, dims) != MSC_OK)
        return msci_fail(MSC_E_BAD_FORMAT, "%s: checkpoint at step %lld lacks '%s'", path, n,
                         name);
      float *dst = which == 1 ? t->m1[i] : t->m2[i];
      MSCI_TRY(msci_st_read_f32(f, name, dst, count));
      MSCI_TRY(check_finite(dst, count, path, name));
    }
  }
  return MSC_OK;
}

MSC_API msc_status msc_model_load(const char *path, const msc_options *runtime,
                                  msc_model **out) {
  if (!path || !out) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_load: NULL argument");
  msci_st_file *f = NULL;
  MSCI_TRY(msci_st_open(path, &f));
  const char *format = msci_st_meta_get(f, "mosaic.format");
  const char *config = msci_st_meta_get(f, "mosaic.config");
  msc_status st = MSC_OK;
  if (!config)
    st = msci_fail(MSC_E_BAD_FORMAT,
                   "%s: not a libmosaic model (no 'mosaic.config' in "
                   "__metadata__)",
                   path);
  else if (format && strcmp(format, MODEL_FORMAT_VERSION) != 0)
    st = msci_fail(MSC_E_VERSION, "%s: model format %s, this libmosaic reads format %s", path,
                   format, MODEL_FORMAT_VERSION);
  msc_options *opts = NULL;
  msc_model *m = NULL;
  if (st == MSC_OK) st = msc_options_create(&opts);
  if (st == MSC_OK) {
    st = msc_options_from_json(opts, config);
    if (st != MSC_OK) st = bad_entry(st, path, "mosaic.config");
  }
  if (st == MSC_OK) {
    st = msci_model_alloc(opts, runtime, &m);
    if (st == MSC_E_INVALID_ARGUMENT || st == MSC_E_NOT_FOUND)
      st = bad_entry(st, path, "mosaic.config");
  }
  if (st == MSC_OK) st = load_params(m, f, path);
  if (st == MSC_OK) st = load_training(m, f, path, runtime);
  msc_options_free(opts);
  msci_st_close(f);
  if (st != MSC_OK) {
    msc_model_free(m);
    return st;
  }
  *out = m;
  return MSC_OK;
}

/* ---- getters ---------------------------------------------------------------------------------- */

MSC_API const char *msc_model_backend(const msc_model *m) {
  return m ? m->backend_name : NULL;
}

MSC_API int32_t msc_model_modality_count(const msc_model *m) {
  return m ? m->cfg.n_mod : 0;
}

MSC_API const char *msc_model_modality_name(const msc_model *m, int32_t i) {
  return (m && i >= 0 && i < m->cfg.n_mod) ? m->cfg.mod[i].name : NULL;
}

MSC_API msc_status msc_model_modality_shape(const msc_model *m, int32_t i, int64_t *bands,
                                            int64_t *size) {
  if (!m || !bands || !size)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_modality_shape: NULL argument");
  if (i < 0 || i >= m->cfg.n_mod)
    return msci_fail(MSC_E_NOT_FOUND, "modality index %d (the model has %d)", (int)i,
                     (int)m->cfg.n_mod);
  *bands = m->cfg.mod[i].bands;
  *size = m->cfg.mod[i].size;
  return MSC_OK;
}

MSC_API const char *msc_model_band_name(const msc_model *m, int32_t i, int64_t b) {
  if (!m || i < 0 || i >= m->cfg.n_mod) return NULL;
  const msci_modality_cfg *c = &m->cfg.mod[i];
  return (c->band_names && b >= 0 && b < c->bands) ? c->band_names[b] : NULL;
}

MSC_API msc_status msc_model_band_info(const msc_model *m, int32_t i, int64_t b, double *scale,
                                       double *offset, double *mean, double *std) {
  if (!m || !scale || !offset || !mean || !std)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_band_info: NULL argument");
  if (i < 0 || i >= m->cfg.n_mod)
    return msci_fail(MSC_E_NOT_FOUND, "modality index %d (the model has %d)", (int)i,
                     (int)m->cfg.n_mod);
  const msci_modality_cfg *c = &m->cfg.mod[i];
  if (b < 0 || b >= c->bands)
    return msci_fail(MSC_E_NOT_FOUND, "band %lld of modality %s (it has %lld)", (long long)b,
                     c->name, (long long)c->bands);
  *scale = c->scale[b];
  *offset = c->offset[b];
  *mean = c->mean[b];
  *std = c->std[b];
  return MSC_OK;
}

MSC_API int64_t msc_model_class_count(const msc_model *m) {
  return m ? m->cfg.classes : 0;
}

MSC_API const char *msc_model_class_name(const msc_model *m, int64_t i) {
  return (m && i >= 0 && i < m->cfg.classes) ? m->cfg.class_names[i] : NULL;
}

MSC_API int64_t msc_model_parameter_count(const msc_model *m) {
  if (!m) return 0;
  int64_t total = 0;
  for (int32_t i = 0; i < m->graph.n_params; ++i) {
    const msci_param *p = &m->graph.params[i];
    if (p->kind != MSCI_PARAM_BN_MEAN && p->kind != MSCI_PARAM_BN_VAR) total += param_count(p);
  }
  return total;
}

MSC_API msc_status msc_model_options(const msc_model *m, msc_options **out) {
  if (!m || !out) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_options: NULL argument");
  return msci_options_copy(m->opts, out);
}
