/*
 * train.c — msc_train_step: augmented views, forward, the MoSAiC objective (docs/losses.md),
 * backward and the optimiser, with a non-finite step skipped and undone.
 *
 * Views of modality m: rows 0..N-1 are view a, rows N..2N-1 view b, and both views go
 * through the encoder as one batch of V·N (docs/losses.md, "Conventions"). Loss terms run on
 * the backend (mbk_iface.loss) over the projections and logits where they are, adding
 * their weighted gradients into the graph's output gradients; only the terms' values
 * come to the host. The optimiser has one path for every backend: the backend reports
 * whether the parameter gradients are finite and their sum of squares (grad_stats), a
 * non-finite one skips the step (as does a non-finite BatchNorm running statistic, checked
 * by the same grad_stats), the clipping factor follows from the sum, and the
 * backend updates each trainable parameter where it lives (optim_update, the
 * optim_core.h arithmetic), with the moments kept there. No gradient, parameter or
 * moment comes to the host in a step; the moments do for checkpoints and classifier
 * resets (msci_train_moments_to_host), and the running statistics after each step, to
 * undo a skipped one.
 */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/batch.h"
#include "backend/backend_call.h"
#include "common/internal.h"
#include "common/rng.h"
#include "train/loss.h"
#include "options/options.h"
#include "train/train.h"
#include "train/dist.h"

/* ---- configuration ------------------------------------------------------------------ */

static msc_status get_f(const msc_options *o, const char *key, double *v) {
  return msc_options_get_float(o, key, v);
}

static msc_status parse_cfg(const msc_options *o, msci_train_cfg *c) {
  double t;
  int64_t v;
  MSCI_TRY(get_f(o, "lambda.intra", &c->lambda_intra));
  MSCI_TRY(get_f(o, "lambda.inter", &c->lambda_inter));
  MSCI_TRY(get_f(o, "lambda.fused", &c->lambda_fused));
  MSCI_TRY(get_f(o, "lambda.views", &c->lambda_views));
  MSCI_TRY(get_f(o, "lambda.bce", &c->lambda_bce));
  MSCI_TRY(get_f(o, "tau.intra", &t));
  c->tau_intra = (float)t;
  MSCI_TRY(get_f(o, "tau.inter", &t));
  c->tau_inter = (float)t;
  MSCI_TRY(get_f(o, "tau.fused", &t));
  c->tau_fused = (float)t;
  MSCI_TRY(get_f(o, "tau.views", &t));
  c->tau_views = (float)t;
  MSCI_TRY(msc_options_get_int(o, "train.views", &v));
  c->views = (int32_t)v;
  MSCI_TRY(msc_options_get_int(o, "mulsupcon.per_anchor", &v));
  c->per_anchor = (int32_t)v;
  MSCI_TRY(msc_options_get_int(o, "train.freeze_encoders", &v));
  c->freeze_encoders = (int32_t)v;
  MSCI_TRY(msc_options_get_int(o, "train.sync_bn", &v));
  c->sync_bn = (int32_t)v;
  MSCI_TRY(msc_options_get_int(o, "train.dist_overlap", &v));
  c->dist_overlap = (int32_t)v;
  MSCI_TRY(msc_options_get_int(o, "train.dist_bucket", &c->dist_bucket));
  MSCI_TRY(get_f(o, "train.modality_dropout", &c->modality_dropout));
  MSCI_TRY(get_f(o, "train.drop_path", &c->drop_path));
  MSCI_TRY(get_f(o, "lambda.seg", &c->lambda_seg));
  MSCI_TRY(get_f(o, "lambda.dice", &c->lambda_dice));
  MSCI_TRY(msc_options_get_int(o, "seg.ignore_index", &v));
  c->seg_ignore = (int32_t)v;
  size_t nw = 0;
  MSCI_TRY(msci_options_get_floatsf(o, c->class_weights, MSCI_MAX_SEG_CLASSES, &nw,
                                    "seg.class_weights"));
  c->n_class_weights = (int32_t)nw;
  return MSC_OK;
}

/* A segmentation model trains the per-pixel terms (lambda.seg, lambda.dice) on single
 * views, since the mask follows one view's geometry: the other terms count only where
 * set explicitly, and two views are refused. A contrastive model has no decoder, so the
 * per-pixel weights are not used there. */
static msc_status segmentation_terms(const msc_options *o, const msc_model *m,
                                     msci_train_cfg *c) {
  if (!m->cfg.segmentation) {
    c->lambda_seg = c->lambda_dice = 0;
    return MSC_OK;
  }
  static const char *const keys[] = {"lambda.intra", "lambda.inter", "lambda.fused",
                                     "lambda.views", "lambda.bce"};
  double *vals[] = {&c->lambda_intra, &c->lambda_inter, &c->lambda_fused, &c->lambda_views,
                    &c->lambda_bce};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; ++i) {
    int32_t set = 0;
    MSCI_TRY(msc_options_is_set(o, keys[i], &set));
    if (!set) *vals[i] = 0;
  }
  int32_t set = 0;
  MSCI_TRY(msc_options_is_set(o, "train.views", &set));
  if (set && c->views != 1)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "task segmentation trains on one view (train.views = 1): the mask "
                     "would need the views' augmentations");
  c->views = 1;
  if (c->n_class_weights != 0 && c->n_class_weights != m->cfg.classes)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "option 'seg.class_weights' has %d values for %lld classes",
                     (int)c->n_class_weights, (long long)m->cfg.classes);
  return MSC_OK;
}

/* Whether the augmentations move pixels (a crop, flip or rotation). */
static int moves_pixels(const msci_aug_cfg *a) {
  return a->crop || a->hflip || a->vflip || a->rot90;
}

/* A segmentation model augments only with the aug.* keys set explicitly (the presets'
 * augmentations are for contrastive views; un-augmented stays the default), and its
 * mask takes the pixels' geometry: that needs one geometry for every modality
 * (aug.shared_geometry) and no modality that geometry does not move (recurrence
 * plots). */
static msc_status segmentation_augment(const msc_options *o, const msc_model *m,
                                       msci_aug_cfg *a) {
  if (!m->cfg.segmentation) return MSC_OK;
  static const char *const flags[] = {"aug.crop", "aug.hflip", "aug.vflip", "aug.rot90"};
  int32_t *fv[] = {&a->crop, &a->hflip, &a->vflip, &a->rot90};
  static const char *const amounts[] = {"aug.noise_std", "aug.jitter_brightness",
                                        "aug.jitter_contrast", "aug.speckle"};
  double *av[] = {&a->noise_std, &a->jitter_brightness, &a->jitter_contrast, &a->speckle};
  for (size_t i = 0; i < 4; ++i) {
    int32_t set = 0;
    MSCI_TRY(msc_options_is_set(o, flags[i], &set));
    if (!set) *fv[i] = 0;
    MSCI_TRY(msc_options_is_set(o, amounts[i], &set));
    if (!set) *av[i] = 0;
  }
  if (!moves_pixels(a)) return MSC_OK;
  if (!a->shared_geometry)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "task segmentation with a crop, flip or rotation (aug.*) needs "
                     "aug.shared_geometry = 1: the mask has one geometry for all modalities");
  for (int32_t k = 0; k < m->cfg.n_mod; ++k)
    if (a->kind[k] == MSCI_KIND_PLOT)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "task segmentation with a crop, flip or rotation (aug.*): modality %s "
                       "is of kind plot, which is never moved, so it would not match the mask",
                       m->cfg.mod[k].name);
  return MSC_OK;
}

static msc_status check_weights(const msci_train_cfg *c) {
  if (c->lambda_intra > 0 && c->views != 2)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "option 'lambda.intra' > 0 needs two views (train.views = 2)");
  if (c->lambda_intra <= 0 && c->lambda_inter <= 0 && c->lambda_fused <= 0 &&
      c->lambda_views <= 0 && c->lambda_bce <= 0 && c->lambda_seg <= 0 && c->lambda_dice <= 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "every loss term has weight 0 (lambda.intra, lambda.inter, lambda.fused, "
                     "lambda.views, lambda.bce, lambda.seg, lambda.dice): nothing would be "
                     "trained");
  return MSC_OK;
}

/* Terms that cannot be computed on this model are refused rather than trained at 0: the
 * cross-modal InfoNCE needs two modalities (docs/losses.md). */
static msc_status check_terms(const msci_train_cfg *c, const msc_model *m) {
  if (c->lambda_inter > 0 && m->cfg.n_mod < 2)
    return msci_fail(
        MSC_E_INVALID_ARGUMENT,
        "lambda.inter > 0 (the cross-modal InfoNCE term of presets mosaic1, mosaic2, "
        "dual and pimc) needs two modalities; this model has one (%s): set "
        "lambda.inter = 0 or choose simclr or supervised",
        m->cfg.mod[0].name);
  return MSC_OK;
}

/* train.labels: multi or single, auto following the model's own label mode (the option
 * 'labels', stored in model files). */
static msc_status parse_labels(const msc_model *m, const msc_options *o, msci_train_cfg *c) {
  char *mode = NULL;
  MSCI_TRY(msci_options_get_string_alloc(o, "train.labels", &mode));
  c->single_label =
      strcmp(mode, "auto") == 0 ? m->cfg.single_label : strcmp(mode, "single") == 0;
  free(mode);
  return MSC_OK;
}

static int is_trainable(const msc_model *m, const msci_train *t, int32_t p) {
  const msci_param *pr = &m->graph.params[p];
  if (pr->kind == MSCI_PARAM_BN_MEAN || pr->kind == MSCI_PARAM_BN_VAR) return 0;
  return !(t->cfg.freeze_encoders && strncmp(pr->name, "enc.", 4) == 0);
}

static int64_t count_of(const msci_param *p) {
  int64_t n = 1;
  for (int32_t i = 0; i < p->ndim; ++i) n *= p->dims[i];
  return n;
}

void msci_train_free(const msc_model *m, msci_train *t) {
  if (!t) return;
  for (int32_t p = 0; p < m->graph.n_params; ++p) {
    if (t->master) free(t->master[p]);
    if (t->m1) free(t->m1[p]);
    if (t->m2) free(t->m2[p]);
    if (t->dm1) msci_be_tensor_free(m->be, t->dm1[p]);
    if (t->dm2) msci_be_tensor_free(m->be, t->dm2[p]);
  }
  free(t->dm1);
  free(t->dm2);
  free(t->master);
  free(t->m1);
  free(t->m2);
  for (int32_t i = 0; (t->gact || t->ggrad) && i < m->graph.n_nodes; ++i) {
    if (t->gact) msci_be_tensor_free(m->be, t->gact[i]);
    if (t->ggrad) msci_be_tensor_free(m->be, t->ggrad[i]);
  }
  free(t->gact);
  free(t->ggrad);
  free(t->dist_host);
  msci_exec_free(m, t->exec);
  msc_options_free(t->opts);
  free(t);
}

/* train.preset "pimc" needs a recurrence-plot modality (kind "plot") and another one. */
static msc_status check_pimc(const msc_options *opts, const msc_model *m,
                             const msci_aug_cfg *aug) {
  char *preset = NULL;
  MSCI_TRY(msci_options_get_string_alloc(opts, "train.preset", &preset));
  const int pimc = strcmp(preset, "pimc") == 0;
  free(preset);
  if (!pimc) return MSC_OK;
  int32_t plots = 0;
  char names[256] = "";
  size_t len = 0;
  for (int32_t k = 0; k < m->cfg.n_mod; ++k) {
    plots += aug->kind[k] == MSCI_KIND_PLOT;
    len += (size_t)snprintf(names + len, len < sizeof names ? sizeof names - len : 0, "%s%s",
                            k ? ", " : "", m->cfg.mod[k].name);
  }
  if (plots == 0 || m->cfg.n_mod < 2)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "train.preset pimc aligns recurrence plots (a modality of kind \"plot\", "
                     "e.g. \"rp\" of the pastis format) with the images around the pixels; "
                     "this model's modalities are %s",
                     names);
  return MSC_OK;
}

msc_status msci_train_configure(msc_model *m, const msc_options *opts) {
  msc_options *empty = NULL;
  if (!opts) {
    MSCI_TRY(msc_options_create(&empty));
    opts = empty;
  }
  msci_train *t = calloc(1, sizeof *t);
  msc_status st = t ? MSC_OK : msci_fail(MSC_E_OUT_OF_MEMORY, "training state");
  int64_t seed = 0;
  if (st == MSC_OK) st = parse_cfg(opts, &t->cfg);
  if (st == MSC_OK) st = segmentation_terms(opts, m, &t->cfg);
  /* Cross-attention mixes every modality into every block of h_f: dropping one block,
   * as modality dropout does for concatenated features, would not remove the modality. */
  if (st == MSC_OK && m->cfg.fusion_xattn && t->cfg.modality_dropout > 0)
    st = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "option 'train.modality_dropout' (%g) needs fusion concat: with fusion "
                   "xattn every modality attends to every other (docs/model.md, \"Fusion\")",
                   t->cfg.modality_dropout);
  if (st == MSC_OK) st = check_weights(&t->cfg);
  if (st == MSC_OK) st = parse_labels(m, opts, &t->cfg);
  if (st == MSC_OK) st = msci_aug_cfg_parse(opts, &t->aug);
  /* The kind of a modality follows the model's own names unless set explicitly (the
   * options given here need not name the modalities as the model does). */
  for (int32_t k = 0; st == MSC_OK && k < m->cfg.n_mod; ++k) {
    char key[48];
    int32_t set = 0;
    snprintf(key, sizeof key, "modality.%d.kind", (int)k);
    st = msc_options_is_set(opts, key, &set);
    if (st == MSC_OK && !set) {
      const char *name = m->cfg.mod[k].name;
      t->aug.kind[k] = strcmp(name, "s1") == 0   ? MSCI_KIND_SAR
                       : strcmp(name, "s2") == 0 ? MSCI_KIND_OPTICAL
                       : strcmp(name, "rp") == 0 ? MSCI_KIND_PLOT
                                                 : MSCI_KIND_OTHER;
    }
  }
  if (st == MSC_OK) st = segmentation_augment(opts, m, &t->aug);
  /* PIMC aligns a pixel's recurrence plots with the image around it: without a plot
   * modality it would silently be the dual-encoder objective (docs/pimc.md). */
  if (st == MSC_OK) st = check_pimc(opts, m, &t->aug);
  if (st == MSC_OK) st = check_terms(&t->cfg, m);
  /* Speckle works in input units: it needs the model's own normalisation. */
  for (int32_t k = 0; st == MSC_OK && k < m->cfg.n_mod; ++k)
    st = msci_aug_cfg_set_norm(&t->aug, k, (int32_t)m->cfg.mod[k].bands, m->cfg.mod[k].mean,
                               m->cfg.mod[k].std);
  if (st == MSC_OK) st = msci_optim_cfg_parse(opts, &t->opt);
  if (st == MSC_OK) st = msc_options_get_int(opts, "seed", &seed);
  if (st == MSC_OK) st = msci_options_copy(opts, &t->opts);
  msc_options_free(empty);
  if (st != MSC_OK) {
    msci_train_free(m, t);
    return st;
  }
  t->seed = (uint64_t)seed;
  /* A new configuration keeps what was learnt: step, running statistics and moments. */
  if (m->train) {
    t->step = m->train->step;
    t->ready = m->train->ready;
    t->master = m->train->master, m->train->master = NULL;
    t->m1 = m->train->m1, m->train->m1 = NULL;
    t->m2 = m->train->m2, m->train->m2 = NULL;
    t->dm1 = m->train->dm1, m->train->dm1 = NULL;
    t->dm2 = m->train->dm2, m->train->dm2 = NULL;
    t->dm_valid = m->train->dm_valid;
    msci_train_free(m, m->train);
  }
  m->train = t;
  return MSC_OK;
}

/* Host copies of the running statistics (to undo a skipped step), made on the first step
 * or before a checkpoint is read or written, and the tables of the moments' host copies
 * (made by msci_train_moments_to_host when needed: checkpoints, classifier resets). */
msc_status msci_train_ensure_ready(msc_model *m) {
  msci_train *t = m->train;
  if (t->ready) return MSC_OK;
  int32_t np = m->graph.n_params;
  if (!t->master) {
    t->master = calloc((size_t)np, sizeof(float *));
    t->m1 = calloc((size_t)np, sizeof(float *));
    t->m2 = calloc((size_t)np, sizeof(float *));
    if (!t->master || !t->m1 || !t->m2) return msci_fail(MSC_E_OUT_OF_MEMORY, "training state");
  }
  for (int32_t p = 0; p < np; ++p) {
    const msci_param *pr = &m->graph.params[p];
    size_t n = (size_t)count_of(pr);
    if (pr->kind == MSCI_PARAM_BN_MEAN || pr->kind == MSCI_PARAM_BN_VAR) {
      if (!t->master[p]) t->master[p] = malloc(n * sizeof(float));
      if (!t->master[p]) return msci_fail(MSC_E_OUT_OF_MEMORY, "training state: %s", pr->name);
      MSCI_TRY(msci_be_tensor_download(m->be, pr->t, t->master[p], n));
      continue;
    }
  }
  t->ready = 1;
  return MSC_OK;
}

/* ---- moments on the backend ---------------------------------------------------------------- */

/* Whether parameter p has optimiser moments (every one but the running statistics). */
static int has_moments(const msci_param *pr) {
  return pr->kind != MSCI_PARAM_BN_MEAN && pr->kind != MSCI_PARAM_BN_VAR;
}

/* Held while host copies are made: msc_model_save takes a const model, and const calls
 * may run concurrently (mosaic.h); two of them must not both make a copy. */
static pthread_mutex_t host_moments_lock = PTHREAD_MUTEX_INITIALIZER;

static msc_status moments_to_host_locked(const msc_model *m) {
  msci_train *t = m->train;
  for (int32_t p = 0; p < m->graph.n_params; ++p) {
    const msci_param *pr = &m->graph.params[p];
    if (!has_moments(pr)) continue;
    size_t n = (size_t)count_of(pr);
    if (!t->m1[p]) t->m1[p] = calloc(n, sizeof(float));
    if (!t->m2[p]) t->m2[p] = calloc(n, sizeof(float));
    if (!t->m1[p] || !t->m2[p])
      return msci_fail(MSC_E_OUT_OF_MEMORY, "training state: %s", pr->name);
    /* (no backend copies, or stale ones: the host copies, or zeros, are the truth) */
    if (!t->dm_valid || !t->dm1 || !t->dm1[p]) continue;
    MSCI_TRY(msci_be_tensor_download(m->be, t->dm1[p], t->m1[p], n));
    MSCI_TRY(msci_be_tensor_download(m->be, t->dm2[p], t->m2[p], n));
  }
  return MSC_OK;
}

msc_status msci_train_moments_to_host(const msc_model *m) {
  /* (before the first step and a resume there are no moments anywhere yet) */
  if (!m->train || !m->train->ready) return MSC_OK;
  pthread_mutex_lock(&host_moments_lock);
  msc_status st = moments_to_host_locked(m);
  pthread_mutex_unlock(&host_moments_lock);
  return st;
}

/* Backend tensors for the moments of every parameter that has host moments; uploads
 * the host copies into new ones, and into all of them when the host copies are newer. */
static msc_status device_moments_ready(msc_model *m) {
  msci_train *t = m->train;
  int32_t np = m->graph.n_params;
  if (!t->dm1) {
    t->dm1 = calloc((size_t)np, sizeof(mbk_tensor *));
    t->dm2 = calloc((size_t)np, sizeof(mbk_tensor *));
    if (!t->dm1 || !t->dm2) {
      free(t->dm1), free(t->dm2);
      t->dm1 = t->dm2 = NULL;
      return msci_fail(MSC_E_OUT_OF_MEMORY, "training state: moments");
    }
  }
  for (int32_t p = 0; p < np; ++p) {
    const msci_param *pr = &m->graph.params[p];
    if (!has_moments(pr)) continue; /* running statistics */
    int fresh = !t->dm1[p];
    if (fresh) {
      msc_status st = msci_be_tensor_create(m->be, m->ctx, &t->dm1[p]);
      if (st == MSC_OK) st = msci_be_tensor_create(m->be, m->ctx, &t->dm2[p]);
      if (st != MSC_OK) {
        msci_be_tensor_free(m->be, t->dm1[p]), msci_be_tensor_free(m->be, t->dm2[p]);
        t->dm1[p] = t->dm2[p] = NULL;
        return st;
      }
    }
    if (fresh || !t->dm_valid) {
      if (t->m1[p]) {
        MSCI_TRY(msci_be_tensor_upload(m->be, t->dm1[p], pr->ndim, pr->dims, t->m1[p]));
        MSCI_TRY(msci_be_tensor_upload(m->be, t->dm2[p], pr->ndim, pr->dims, t->m2[p]));
      } else { /* no host copies: the moments start at zero */
        MSCI_TRY(msci_be_tensor_zero(m->be, t->dm1[p], pr->ndim, pr->dims));
        MSCI_TRY(msci_be_tensor_zero(m->be, t->dm2[p], pr->ndim, pr->dims));
      }
    }
    /* The backend's copies are the truth from now on: host copies kept beside them would
     * double the optimiser state during the steps (170 MiB for the two ResNet-18
     * encoders; docs/memory.md). A save or a reset makes them again when it needs them
     * (msci_train_moments_to_host). Freed one by one, so the next tensor reuses them. */
    free(t->m1[p]), free(t->m2[p]);
    t->m1[p] = t->m2[p] = NULL;
  }
  t->dm_valid = 1;
  return MSC_OK;
}

/* ---- views ------------------------------------------------------------------------------ */

/* The augmentations' seed of the coming step: every modality and the mask draw from it. */
static uint64_t step_seed(const msc_model *m) {
  return m->train->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(m->train->step + 1));
}

/* Normalises and augments every sample of modality k into the executor's input:
 * V·N rows, view a first. Streams depend on (seed, step, sample, view), never on the
 * thread that computes them. The normalised sample and the augmentation's scratch live
 * in the executor's workspace, one pair per OpenMP thread, so a steady step allocates
 * nothing; a non-finite input pixel is found by the normalising pass itself. */
static msc_status stage_views(msc_model *m, msci_exec *e, int32_t k, const msc_batch *b) {
  const msci_modality_cfg *mc = &m->cfg.mod[k];
  const msci_batch_modality *bm = NULL;
  MSCI_TRY(msci_model_input(m, k, b, &bm));
  int32_t views = m->train->cfg.views;
  size_t chw = (size_t)(bm->c * bm->h * bm->w);
  int64_t dims[4] = {views * b->n, bm->c, bm->h, bm->w};
  /* The views go straight into the input tensor where the backend keeps it in host
   * memory (API 14), else into the executor's stage, then uploaded: a copy of the
   * largest modality's views less (docs/memory.md). */
  float *dst = NULL;
  MSCI_TRY(msci_exec_input_at(m, e, k, dims, &dst));
  /* A team never has more threads than omp_get_max_threads() says here. */
  const size_t threads = (size_t)omp_get_max_threads();
  float *work = msci_exec_host(e, MSCI_EXEC_HOST_AUG, threads * 2 * chw * sizeof(float));
  if (!work) return MSC_E_OUT_OF_MEMORY;
  uint64_t seed = step_seed(m);
  /* The error of the lowest failing sample wins, whatever the threads did. */
  int64_t err_at = b->n, err_pixel = -1;
  msc_status err = MSC_OK;
#pragma omp parallel for schedule(dynamic) if (b->n > 1)
  for (int64_t i = 0; i < b->n; ++i) {
    float *norm = work + (size_t)omp_get_thread_num() * 2 * chw, *scratch = norm + chw;
    int64_t at = msci_model_normalise(m, k, bm, i, norm);
    msc_status local = at >= 0 ? MSC_E_NUMERICAL : MSC_OK;
    for (int32_t v = 0; local == MSC_OK && v < views; ++v)
      local = msci_augment_view(&m->train->aug, seed, m->train->sample0 + i, v, k,
                                m->train->aug.kind[k], norm, bm->c, bm->h, bm->w,
                                dst + ((size_t)v * (size_t)b->n + (size_t)i) * chw, scratch);
    if (local != MSC_OK) {
#pragma omp critical(msci_stage_views)
      if (i < err_at) {
        err_at = i;
        err_pixel = at;
        err = local;
      }
    }
  }
  if (err_pixel >= 0) return msci_model_nonfinite(m, k, bm, err_at, err_pixel);
  if (err != MSC_OK) return msci_fail(err, "modality %s: augmentation failed", mc->name);
  return msci_exec_input_done(m, e, k, dims, dst);
}

/* Modality dropout: sample i draws u_k ~ U[0, 1) per modality k from its own stream of
 * the step's seed and drops k when u_k < p; when that would drop them all it keeps
 * modality floor(u · n_mod) of one more draw u. */
void msci_train_dropout_draw(const msc_model *m, int64_t n, uint8_t *keep) {
  const int32_t nm = m->cfg.n_mod;
  const double p = m->train->cfg.modality_dropout;
  const uint64_t seed = step_seed(m);
  for (int64_t i = 0; i < n; ++i) {
    msci_rng r;
    const uint64_t s = (uint64_t)(m->train->sample0 + i);
    msci_rng_seed(&r, seed ^ (0xd1b54a32d192ed03ull * (s + 1)), "modality_dropout");
    int32_t kept = 0;
    for (int32_t k = 0; k < nm; ++k) {
      keep[i * nm + k] = msci_rng_uniform(&r) >= p;
      kept += keep[i * nm + k];
    }
    if (kept == 0) {
      int32_t k = (int32_t)(msci_rng_uniform(&r) * nm);
      keep[i * nm + (k < nm ? k : nm - 1)] = 1;
    }
  }
}

/* Sets the training executor's scaling of h_f for this step: the dropout draw of each
 * sample, shared by its views (row r is sample r mod N); none when nothing reads h_f or
 * p = 0. */
static msc_status fuse_dropout(msc_model *m, msci_exec *e, const msc_batch *b,
                               const uint8_t *need) {
  const int32_t nm = m->cfg.n_mod;
  e->fuse_scale = NULL;
  if (m->train->cfg.modality_dropout <= 0 || nm < 2 || !need[m->graph.fused]) return MSC_OK;
  /* The draw (N rows) and its copy per view (V·N rows) are scratch of this call only:
   * the optimiser's workspace, whose lists are made after the backward pass. */
  const size_t rows = (size_t)e->n;
  uint8_t *keep = msci_exec_host(e, MSCI_EXEC_HOST_OPTIM, (rows + (size_t)b->n) * (size_t)nm);
  if (!keep) return MSC_E_OUT_OF_MEMORY;
  uint8_t *draw = keep + rows * (size_t)nm;
  msci_train_dropout_draw(m, b->n, draw);
  for (size_t r = 0; r < rows; ++r)
    memcpy(keep + r * (size_t)nm, draw + (r % (size_t)b->n) * (size_t)nm, (size_t)nm);
  return msci_exec_set_fuse_mask(m, e, (int64_t)rows, keep);
}

/* ---- the objective ------------------------------------------------------------------------ */

/* Whether a per-pixel term on the decoder's logits trains (it needs the batch's mask). */
static int per_pixel(const msci_train_cfg *c) {
  return c->lambda_seg > 0 || c->lambda_dice > 0;
}

/* Host-side facts about the batch's labels; the embeddings stay on the backend. */
typedef struct objective {
  int64_t n, rows; /* samples, rows = V·N */
  int64_t p, c;    /* projection size, classes */
  uint8_t *y;      /* rows × c labels (row r is sample r mod N) */
  uint8_t *lab;    /* rows: labelled? */
  int32_t *keys;   /* labelled rows, in row order */
  int64_t n_keys;
  uint8_t *ey;         /* the keys' labels */
  const int32_t *mask; /* segmentation: the n × H × W mask of the view (the batch's own
                          mask, or its copy under the view's geometry) */
  /* Per graph node: the outputs the terms read and the gradients they add into (the
   * executor's, or the global batch's of a data-parallel step). */
  mbk_tensor *const *act, *const *grad;
} objective;

/* The rows' labels, flags and keys from the samples' labels (n × c) and labelled flags
 * (NULL: all labelled); row r is sample r mod n. */
static void label_rows(objective *o, const uint8_t *labels, const uint8_t *labeled) {
  o->n_keys = 0;
  for (int64_t r = 0; r < o->rows; ++r) {
    int64_t i = r % o->n;
    o->lab[r] = labeled ? labeled[i] : 1;
    memcpy(o->y + r * o->c, labels + i * o->c, (size_t)o->c);
    if (o->lab[r]) {
      memcpy(o->ey + o->n_keys * o->c, o->y + r * o->c, (size_t)o->c);
      o->keys[o->n_keys++] = (int32_t)r;
    }
  }
}

/* The objective's arrays, in the executor's workspace (kept from step to step). */
static msc_status alloc_objective(const msc_model *m, msci_exec *e, const msc_batch *b,
                                  objective *o) {
  memset(o, 0, sizeof *o);
  o->act = e->act;
  o->grad = e->grad;
  o->n = b->n;
  o->rows = m->train->cfg.views * b->n;
  o->p = m->graph.proj_dim;
  o->c = m->graph.classes;
  const size_t rows = (size_t)o->rows, yc = rows * (size_t)o->c;
  /* A mask under augmented geometry: n × H × W more int32, after the keys. */
  const msci_train *t = m->train;
  const size_t moved = per_pixel(&t->cfg) && b->mask && moves_pixels(&t->aug)
                           ? (size_t)(b->n * b->mask_h * b->mask_w)
                           : 0;
  uint8_t *w = msci_exec_host(e, MSCI_EXEC_HOST_OBJECTIVE,
                              (rows + moved) * sizeof(int32_t) + 2 * yc + rows);
  if (!w) return MSC_E_OUT_OF_MEMORY;
  o->keys = (int32_t *)w;
  int32_t *view_mask = o->keys + rows;
  o->y = w + (rows + moved) * sizeof(int32_t);
  o->ey = o->y + yc;
  o->lab = o->ey + yc;
  memset(o->y, 0, yc);
  memset(o->lab, 0, rows);
  if (per_pixel(&m->train->cfg)) {
    const msci_node *sl = &m->graph.nodes[m->graph.seg_logits];
    if (!b->mask)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "task segmentation: the batch has no mask (msc_batch_set_mask)");
    if (b->mask_h != sl->out[2] || b->mask_w != sl->out[3])
      return msci_fail(MSC_E_SHAPE,
                       "the batch's mask is %lldx%lld, the model's output %lldx%lld",
                       (long long)b->mask_h, (long long)b->mask_w, (long long)sl->out[2],
                       (long long)sl->out[3]);
    o->mask = b->mask;
    if (moved) {
      /* The pixels' geometry of each sample (one view, shared by the modalities:
       * stage_views draws the same), applied to its mask by nearest neighbour. */
      const int64_t hw = b->mask_h * b->mask_w;
      for (int64_t i = 0; i < b->n; ++i) {
        msci_aug_params p;
        msci_aug_draw_geometry(&t->aug, step_seed(m), t->sample0 + i, 0, 0, b->mask_h,
                               b->mask_w, &p);
        MSCI_TRY(
            msci_augment_mask(&p, b->mask + i * hw, b->mask_h, b->mask_w, view_mask + i * hw));
      }
      o->mask = view_mask;
    }
  }
  m->train->view_mask = o->mask;
  /* Labels: a sample is labelled when the batch has labels and its flag (if any) is set.
   * Unlabelled samples feed only the self-supervised terms. */
  if (b->labels) {
    if (b->classes != o->c)
      return msci_fail(MSC_E_SHAPE, "labels have %lld classes, the model %lld",
                       (long long)b->classes, (long long)o->c);
    /* Single-label training needs one class per labelled sample: say which one has not. */
    const msci_train_cfg *tc = &m->train->cfg;
    for (int64_t i = 0; tc->single_label && tc->lambda_bce > 0 && i < o->n; ++i) {
      if (b->labeled && !b->labeled[i]) continue;
      int64_t pos = 0;
      for (int64_t k = 0; k < o->c; ++k) pos += b->labels[i * o->c + k] != 0;
      if (pos != 1)
        return msci_fail(MSC_E_INVALID_ARGUMENT,
                         "single-label training (train.labels): sample %lld of the batch has "
                         "%lld labels, expected exactly one",
                         (long long)i, (long long)pos);
    }
    label_rows(o, b->labels, b->labeled);
  }
  return MSC_OK;
}

/* Zeroed gradient tensors for the outputs the objective reads. */
static msc_status zero_grad_of(msc_model *m, msci_exec *e, int32_t node, int64_t rows,
                               int64_t cols) {
  mbk_tensor *t = NULL;
  int64_t dims[2] = {rows, cols};
  MSCI_TRY(msci_exec_grad_for(m, e, node, &t));
  return msci_be_tensor_zero(m->be, t, 2, dims);
}

/* One term on the backend: value into *value, weight × gradient into the nodes' grads. */
static msc_status term(msc_model *m, msci_exec *e, const objective *o, mbk_loss_desc *d,
                       int32_t node, int32_t node2, double *value) {
  return msci_be_loss(m->be, e->ctx, d, o->act[node], node2 >= 0 ? o->act[node2] : NULL, value,
                      o->grad[node], node2 >= 0 ? o->grad[node2] : NULL);
}

static msc_status compute_objective(msc_model *m, msci_exec *e, const objective *o,
                                    msc_step_result *res, double *total) {
  const msci_train_cfg *c = &m->train->cfg;
  const msci_graph *g = &m->graph;
  int32_t nm = m->cfg.n_mod, views = c->views;
  int64_t n = o->n;
  double l;
  double l_intra = 0, l_inter = 0, l_fused = 0, l_views = 0, l_bce = 0;
  if (c->lambda_intra > 0)
    for (int32_t k = 0; k < nm; ++k) {
      mbk_loss_desc d = {.type = MBK_LOSS_NTXENT,
                         .n = n,
                         .d = o->p,
                         .tau = c->tau_intra,
                         .weight = c->lambda_intra / nm};
      MSCI_TRY(term(m, e, o, &d, g->proj[k], -1, &l));
      l_intra += l / nm;
    }
  int32_t combos = nm * (nm - 1) / 2 * views;
  if (c->lambda_inter > 0 && combos > 0)
    for (int32_t a = 0; a < nm; ++a)
      for (int32_t b = a + 1; b < nm; ++b)
        for (int32_t v = 0; v < views; ++v) {
          mbk_loss_desc d = {.type = MBK_LOSS_INFONCE,
                             .n = n,
                             .row0 = v * n,
                             .d = o->p,
                             .tau = c->tau_inter,
                             .weight = c->lambda_inter / combos};
          MSCI_TRY(term(m, e, o, &d, g->proj[a], g->proj[b], &l));
          l_inter += l / combos;
        }
  /* MulSupCon needs two labelled rows at least; otherwise R = 0 and the term is 0. */
  mbk_loss_desc msc = {.type = MBK_LOSS_MULSUPCON,
                       .n = o->n_keys,
                       .d = o->p,
                       .c = o->c,
                       .per_anchor = c->per_anchor,
                       .rows = o->keys,
                       .labels = o->ey};
  if (c->lambda_fused > 0 && o->n_keys >= 2) {
    msc.tau = c->tau_fused;
    msc.weight = c->lambda_fused;
    MSCI_TRY(term(m, e, o, &msc, g->fused_proj, -1, &l_fused));
  }
  if (c->lambda_views > 0 && o->n_keys >= 2)
    for (int32_t k = 0; k < nm; ++k) {
      msc.tau = c->tau_views;
      msc.weight = c->lambda_views / nm;
      MSCI_TRY(term(m, e, o, &msc, g->proj[k], -1, &l));
      l_views += l / nm;
    }
  if (c->lambda_bce > 0) {
    /* The classification term: sigmoid BCE, or softmax CE for single-label training. */
    mbk_loss_desc d = {.type = c->single_label ? MBK_LOSS_SOFTMAX_CE : MBK_LOSS_BCE,
                       .n = o->rows,
                       .c = o->c,
                       .d = o->c,
                       .weight = c->lambda_bce,
                       .labels = o->y,
                       .row_mask = o->lab};
    MSCI_TRY(term(m, e, o, &d, g->logits, -1, &l_bce));
  }
  double l_seg = 0, l_dice = 0;
  const int64_t *sdims = per_pixel(c) ? g->nodes[g->seg_logits].out : NULL;
  if (c->lambda_seg > 0) {
    /* Per-pixel softmax cross-entropy of the decoder's logits against the batch's mask. */
    mbk_loss_desc d = {.type = MBK_LOSS_PIXEL_CE,
                       .n = o->rows,
                       .c = sdims[1],
                       .h = sdims[2],
                       .w = sdims[3],
                       .weight = c->lambda_seg,
                       .targets = o->mask,
                       .ignore_index = c->seg_ignore,
                       .class_weight = c->n_class_weights ? c->class_weights : NULL};
    MSCI_TRY(term(m, e, o, &d, g->seg_logits, -1, &l_seg));
  }
  if (c->lambda_dice > 0) {
    /* Soft Dice of the decoder's softmax against the mask (the batch's counted pixels). */
    mbk_loss_desc d = {.type = MBK_LOSS_DICE,
                       .n = o->rows,
                       .c = sdims[1],
                       .h = sdims[2],
                       .w = sdims[3],
                       .weight = c->lambda_dice,
                       .targets = o->mask,
                       .ignore_index = c->seg_ignore};
    MSCI_TRY(term(m, e, o, &d, g->seg_logits, -1, &l_dice));
  }
  double sum = c->lambda_intra * l_intra + c->lambda_inter * l_inter +
               c->lambda_fused * l_fused + c->lambda_views * l_views + c->lambda_bce * l_bce +
               c->lambda_seg * l_seg + c->lambda_dice * l_dice;
  res->loss = sum;
  res->loss_intra = l_intra;
  res->loss_inter = l_inter;
  res->loss_fused = l_fused;
  res->loss_views = l_views;
  res->loss_bce = l_bce;
  res->loss_seg = l_seg;
  res->loss_dice = l_dice;
  *total = sum;
  return MSC_OK;
}

/* ---- the data-parallel step (docs/distributed.md) ------------------------------------------ */

/* The nodes whose outputs the objective reads; their count. */
static int32_t loss_nodes(const msc_model *m, int32_t *nodes) {
  const msci_train_cfg *c = &m->train->cfg;
  const msci_graph *g = &m->graph;
  int32_t k = 0;
  if (c->lambda_intra > 0 || c->lambda_inter > 0 || c->lambda_views > 0)
    for (int32_t i = 0; i < m->cfg.n_mod; ++i) nodes[k++] = g->proj[i];
  if (c->lambda_fused > 0) nodes[k++] = g->fused_proj;
  if (c->lambda_bce > 0) nodes[k++] = g->logits;
  if (per_pixel(c)) nodes[k++] = g->seg_logits;
  return k;
}

/* Values per row of a node's output (its shape without the batch dimension). */
static int64_t row_values(const msc_model *m, msci_exec *e, int32_t node, int64_t *dims,
                          int32_t *ndim) {
  *ndim = msci_be_tensor_shape(m->be, e->act[node], dims);
  int64_t v = 1;
  for (int32_t i = 1; i < *ndim; ++i) v *= dims[i];
  return v;
}

/* The global batch of a data-parallel step: every rank's outputs of the loss nodes
 * gathered into backend tensors (gact) with zeroed gradients beside them (ggrad), and
 * the global objective og over them: rows view-major as one process's (view v of
 * global sample j is row v·N + j), labels, flags and masks gathered alike. The host
 * arrays live in t->dist_host, kept from step to step. */
static msc_status dist_gather(msc_model *m, msci_exec *e, const objective *o, objective *og,
                              float **local_f, float **global_f) {
  msci_train *t = m->train;
  msc_dist *d = m->dist;
  const int32_t V = t->cfg.views, nn = m->graph.n_nodes;
  const int64_t n = o->n, N = d->n_global, c = o->c;
  int32_t nodes[MSCI_MAX_MODALITIES + 3];
  const int32_t k = loss_nodes(m, nodes);
  int64_t dims[MBK_MAX_DIMS];
  int32_t ndim = 0;
  int64_t cols = 1, hw = 0;
  for (int32_t i = 0; i < k; ++i) {
    int64_t v = row_values(m, e, nodes[i], dims, &ndim);
    if (v > cols) cols = v;
  }
  if (o->mask)
    hw =
        m->graph.nodes[m->graph.seg_logits].out[2] * m->graph.nodes[m->graph.seg_logits].out[3];
  /* Carved as: local floats, global floats, global keys, global mask, then bytes. */
  const size_t lf = (size_t)(V * n * cols), gf = (size_t)(V * N * cols);
  const size_t rows = (size_t)(V * N), sb = (size_t)(1 + c);
  const size_t bytes = (lf + gf) * sizeof(float) + rows * sizeof(int32_t) +
                       (size_t)(N * hw) * sizeof(int32_t) + 2 * rows * (size_t)c + rows +
                       (size_t)(n + N) * sb;
  if (t->dist_host_cap < bytes) {
    void *p = realloc(t->dist_host, bytes);
    if (!p) return msci_fail(MSC_E_OUT_OF_MEMORY, "distributed step: %zu bytes", bytes);
    t->dist_host = p;
    t->dist_host_cap = bytes;
  }
  if (!t->gact) {
    t->gact = calloc((size_t)nn, sizeof(mbk_tensor *));
    t->ggrad = calloc((size_t)nn, sizeof(mbk_tensor *));
    if (!t->gact || !t->ggrad) return msci_fail(MSC_E_OUT_OF_MEMORY, "distributed step");
  }
  *local_f = t->dist_host;
  *global_f = *local_f + lf;
  int32_t *keys = (int32_t *)(*global_f + gf);
  int32_t *mask = keys + rows;
  uint8_t *y = (uint8_t *)(mask + N * hw), *ey = y + rows * (size_t)c,
          *lab = ey + rows * (size_t)c;
  uint8_t *ls = lab + rows, *gs = ls + (size_t)n * sb;
  /* The outputs. */
  for (int32_t i = 0; i < k; ++i) {
    const int32_t node = nodes[i];
    const int64_t v = row_values(m, e, node, dims, &ndim);
    MSCI_TRY(msci_be_tensor_download(m->be, e->act[node], *local_f, (size_t)(V * n * v)));
    MSCI_TRY(msci_dist_gather_rows(d, V, *local_f, *global_f, (size_t)v * sizeof(float)));
    if (!t->gact[node]) MSCI_TRY(msci_be_tensor_create(m->be, m->ctx, &t->gact[node]));
    if (!t->ggrad[node]) MSCI_TRY(msci_be_tensor_create(m->be, m->ctx, &t->ggrad[node]));
    dims[0] = V * N;
    MSCI_TRY(msci_be_tensor_upload(m->be, t->gact[node], ndim, dims, *global_f));
    MSCI_TRY(msci_be_tensor_zero(m->be, t->ggrad[node], ndim, dims));
  }
  /* Per sample: its labelled flag (0 in a batch without labels) and its labels. */
  for (int64_t i = 0; i < n; ++i) {
    ls[i * (int64_t)sb] = o->lab[i];
    memcpy(ls + i * (int64_t)sb + 1, o->y + i * c, (size_t)c);
  }
  MSCI_TRY(msci_dist_gather_rows(d, 1, ls, gs, sb));
  *og = *o;
  og->n = N;
  og->rows = (int64_t)rows;
  og->keys = keys;
  og->y = y;
  og->ey = ey;
  og->lab = lab;
  og->act = t->gact;
  og->grad = t->ggrad;
  /* Row r is global sample r mod N, as label_rows does for one process. */
  for (int64_t r = 0; r < (int64_t)rows; ++r) {
    const uint8_t *src = gs + (r % N) * (int64_t)sb;
    lab[r] = src[0];
    memcpy(y + r * c, src + 1, (size_t)c);
  }
  og->n_keys = 0;
  for (int64_t r = 0; r < (int64_t)rows; ++r)
    if (lab[r]) {
      memcpy(ey + og->n_keys * c, y + r * c, (size_t)c);
      keys[og->n_keys++] = (int32_t)r;
    }
  if (o->mask) {
    MSCI_TRY(msci_dist_gather_rows(d, 1, o->mask, mask, (size_t)hw * sizeof(int32_t)));
    og->mask = mask;
  }
  return MSC_OK;
}

/* This rank's rows of the global gradients into the executor's output gradients. */
static msc_status dist_scatter(msc_model *m, msci_exec *e, float *local_f, float *global_f) {
  msci_train *t = m->train;
  const int32_t V = t->cfg.views;
  const int64_t n = e->n / V, N = m->dist->n_global;
  int32_t nodes[MSCI_MAX_MODALITIES + 3];
  const int32_t k = loss_nodes(m, nodes);
  for (int32_t i = 0; i < k; ++i) {
    int64_t dims[MBK_MAX_DIMS];
    int32_t ndim = 0;
    const int32_t node = nodes[i];
    const int64_t v = row_values(m, e, node, dims, &ndim);
    MSCI_TRY(msci_be_tensor_download(m->be, t->ggrad[node], global_f, (size_t)(V * N * v)));
    msci_dist_pick_rows(m->dist, V, global_f, local_f, (size_t)v * sizeof(float));
    dims[0] = V * n;
    MSCI_TRY(msci_be_tensor_upload(m->be, e->grad[node], ndim, dims, local_f));
  }
  return MSC_OK;
}

/* The running statistics averaged over the ranks (local BatchNorm keeps one set). */
static msc_status dist_average_stats(msc_model *m) {
  msci_train *t = m->train;
  const int32_t np = m->graph.n_params;
  size_t total = 0;
  for (int32_t p = 0; p < np; ++p) {
    const msci_param *pr = &m->graph.params[p];
    if (pr->kind == MSCI_PARAM_BN_MEAN || pr->kind == MSCI_PARAM_BN_VAR)
      total += (size_t)count_of(pr);
  }
  if (!total) return MSC_OK;
  if (t->dist_host_cap < total * sizeof(float)) {
    void *q = realloc(t->dist_host, total * sizeof(float));
    if (!q) return msci_fail(MSC_E_OUT_OF_MEMORY, "distributed step: running statistics");
    t->dist_host = q;
    t->dist_host_cap = total * sizeof(float);
  }
  float *h = t->dist_host;
  size_t at = 0;
  for (int32_t p = 0; p < np; ++p) {
    const msci_param *pr = &m->graph.params[p];
    if (pr->kind != MSCI_PARAM_BN_MEAN && pr->kind != MSCI_PARAM_BN_VAR) continue;
    MSCI_TRY(msci_be_tensor_download(m->be, pr->t, h + at, (size_t)count_of(pr)));
    at += (size_t)count_of(pr);
  }
  MSCI_TRY(msci_dist_all_reduce(m->dist, h, total, MCM_F32));
  const float inv = 1.0f / (float)m->dist->size;
  for (size_t i = 0; i < total; ++i) h[i] *= inv;
  at = 0;
  for (int32_t p = 0; p < np; ++p) {
    const msci_param *pr = &m->graph.params[p];
    if (pr->kind != MSCI_PARAM_BN_MEAN && pr->kind != MSCI_PARAM_BN_VAR) continue;
    MSCI_TRY(msci_be_tensor_upload(m->be, pr->t, pr->ndim, pr->dims, h + at));
    at += (size_t)count_of(pr);
  }
  return MSC_OK;
}

/* ---- the step ----------------------------------------------------------------------------- */

static void mark_union(const msc_model *m, int32_t target, uint8_t *need, uint8_t *scratch,
                       uint8_t *need_input) {
  uint8_t in[MSCI_MAX_MODALITIES];
  msci_graph_mark(&m->graph, target, scratch, in);
  for (int32_t i = 0; i < m->graph.n_nodes; ++i) need[i] |= scratch[i];
  for (int32_t k = 0; k < MSCI_MAX_MODALITIES; ++k) need_input[k] |= in[k];
}

static msc_status restore_running_stats(msc_model *m) {
  for (int32_t p = 0; p < m->graph.n_params; ++p) {
    msci_param *pr = &m->graph.params[p];
    if (pr->kind == MSCI_PARAM_BN_MEAN || pr->kind == MSCI_PARAM_BN_VAR)
      MSCI_TRY(msci_be_tensor_upload(m->be, pr->t, pr->ndim, pr->dims, m->train->master[p]));
  }
  return MSC_OK;
}

/* Training runs through the backend's optim_update and grad_stats (mbk_iface). */
static msc_status check_can_train(const msc_model *m) {
  return msci_be_can_train(m->be);
}

/* One optimiser step on the backend: the gradients' finiteness and sum of squares
 * (grad_stats; a non-finite gradient skips the step), the running statistics'
 * finiteness (grad_stats again; a non-finite one skips it too), the clipping factor as PyTorch's
 * clip_grad_norm_ (optim.clip_norm; 0 = off), then optim_update on every trainable
 * parameter with a gradient, the moments resident on the backend. */
static msc_status optimiser_step(msc_model *m, msci_exec *e, int *skipped) {
  msci_train *t = m->train;
  int32_t np = m->graph.n_params, n_used = 0;
  *skipped = 0;
  /* The lists live in the executor's workspace: a steady step allocates nothing. */
  const mbk_tensor **grads = msci_exec_host(
      e, MSCI_EXEC_HOST_OPTIM, (size_t)np * (sizeof(const mbk_tensor *) + sizeof(int32_t)));
  if (!grads) return MSC_E_OUT_OF_MEMORY;
  int32_t *which = (int32_t *)(grads + np);
  for (int32_t p = 0; p < np; ++p) {
    if (!is_trainable(m, t, p) || !e->pgrad_valid[p]) continue;
    grads[n_used] = e->pgrad[p];
    which[n_used++] = p;
  }
  const int clip = t->opt.clip_norm > 0;
  int32_t bad = -1;
  double sumsq = 0.0;
  msc_status st = msci_be_grad_stats(m->be, e->ctx, grads, n_used, &bad, clip ? &sumsq : NULL);
  if (st == MSC_OK && bad >= 0) {
    *skipped = 1;
    st = msci_fail(MSC_E_NUMERICAL, "gradient of %s is not finite: step %lld skipped",
                   m->graph.params[which[bad]].name, (long long)t->step);
  }
  MSCI_TRY(st);
  /* The running statistics the forward pass updated are state too: finite inputs large
   * enough to overflow a batch's variance (pixels of 1e20) make them infinite while the
   * loss and every gradient stay finite. Such a step is skipped like a non-finite
   * gradient, so that no model holds what msc_model_load refuses. The same finiteness
   * check on the backend, over a few small vectors; the lists are reused. */
  /* Data-parallel: one set of running statistics, the ranks' mean (a non-finite one
   * reaches every rank, so all skip alike). Synchronised BatchNorm updated them from the
   * global batch's statistics, the same on every rank already. */
  if (m->dist && !t->cfg.sync_bn) MSCI_TRY(dist_average_stats(m));
  int32_t n_stats = 0;
  for (int32_t p = 0; p < np; ++p) {
    const msci_param *pr = &m->graph.params[p];
    if (pr->kind != MSCI_PARAM_BN_MEAN && pr->kind != MSCI_PARAM_BN_VAR) continue;
    grads[n_stats] = pr->t;
    which[n_stats++] = p;
  }
  bad = -1;
  st = msci_be_grad_stats(m->be, e->ctx, grads, n_stats, &bad, NULL);
  if (st == MSC_OK && bad >= 0) {
    *skipped = 1;
    st = msci_fail(MSC_E_NUMERICAL, "running statistic %s is not finite: step %lld skipped",
                   m->graph.params[which[bad]].name, (long long)t->step);
  }
  MSCI_TRY(st);
  /* The factor the gradients are multiplied by (in float, as they are read): the norm
   * is √Σg² over every trainable gradient, as clip_grad_norm_'s. */
  double scale = clip ? msci_grad_clip_scale(sqrt(sumsq), t->opt.clip_norm) : 1.0;
  MSCI_TRY(device_moments_ready(m));
  double lr = msci_optim_lr(&t->opt, t->step);
  const int sgd = t->opt.kind == MSCI_OPTIM_SGD;
  for (int32_t p = 0; p < np; ++p) {
    msci_param *pr = &m->graph.params[p];
    if (pr->kind == MSCI_PARAM_BN_MEAN || pr->kind == MSCI_PARAM_BN_VAR) {
      /* Accepted step: the running statistics the forward updated are the new state. */
      MSCI_TRY(msci_be_tensor_download(m->be, pr->t, t->master[p], (size_t)count_of(pr)));
      continue;
    }
    if (!is_trainable(m, t, p) || !e->pgrad_valid[p]) continue;
    mbk_optim_desc d = {
        .type = sgd ? MBK_OPTIM_SGD : MBK_OPTIM_ADAMW,
        .nesterov = t->opt.nesterov,
        .n = count_of(pr),
        .step = t->step,
        .lr = lr,
        .weight_decay = pr->kind == MSCI_PARAM_WEIGHT ? t->opt.weight_decay : 0.0,
        .beta1 = t->opt.beta1,
        .beta2 = t->opt.beta2,
        .eps = t->opt.eps,
        .momentum = t->opt.momentum,
        .grad_scale = scale,
    };
    mbk_tensor *m1 = sgd && t->opt.momentum == 0 ? NULL : t->dm1[p];
    MSCI_TRY(msci_be_optim_update(m->be, e->ctx, &d, pr->t, e->pgrad[p], m1, t->dm2[p]));
  }
  t->step++;
  return MSC_OK;
}

static msc_status train_step(msc_model *m, const msc_batch *b, msc_step_result *res) {
  msci_train *t = m->train;
  const msci_train_cfg *c = &t->cfg;
  const msci_graph *g = &m->graph;
  msc_dist *d = m->dist;
  msc_status pre = MSC_OK;
  if (b->n < 2)
    pre = msci_fail(MSC_E_INVALID_ARGUMENT, "training needs a batch of at least 2 samples");
  if (pre == MSC_OK) pre = check_can_train(m);
  if (pre == MSC_OK) pre = msci_train_ensure_ready(m);
  /* Data-parallel: the ranks' sample counts (and their failures) before anything runs;
   * this rank's samples start at its offset in the global batch. */
  t->sample0 = 0;
  if (d) {
    MSCI_TRY(msci_dist_begin(d, b->n, pre, t->seed, t->step));
    t->sample0 = d->offsets[d->rank];
  }
  MSCI_TRY(pre);
  int64_t rows = c->views * b->n;
  if (t->exec && t->exec->n != rows) {
    msci_exec_free(m, t->exec);
    t->exec = NULL;
  }
  if (!t->exec) MSCI_TRY(msci_exec_acquire(m, rows, 1, &t->exec));
  msci_exec *e = t->exec;
  e->frozen_encoders = c->freeze_encoders;

  /* Marks and objective arrays are the executor's: a steady step allocates nothing. */
  uint8_t *need = e->need, *scratch = e->mark;
  uint8_t need_input[MSCI_MAX_MODALITIES] = {0};
  memset(need, 0, (size_t)g->n_nodes);
  objective o;
  msc_status st = alloc_objective(m, e, b, &o);
  int want_proj = c->lambda_intra > 0 || c->lambda_inter > 0 || c->lambda_views > 0;
  /* Marked whatever st: synchronised BatchNorm drains its reductions along need. The
   * targets are the nodes the objective gives a gradient (zero_grad_of below). */
  int32_t seeds[MSCI_MAX_MODALITIES + 3], n_seeds = 0;
  for (int32_t k = 0; want_proj && k < m->cfg.n_mod; ++k) seeds[n_seeds++] = g->proj[k];
  if (c->lambda_fused > 0) seeds[n_seeds++] = g->fused_proj;
  if (c->lambda_bce > 0) seeds[n_seeds++] = g->logits;
  if (per_pixel(c)) seeds[n_seeds++] = g->seg_logits;
  for (int32_t s = 0; s < n_seeds; ++s) mark_union(m, seeds[s], need, scratch, need_input);
  /* Data-parallel: the gradient buckets, planned before anything runs (dist_grad.c), so
   * that a failure here is caught by the forward's agreement and a rank whose backward
   * fails still knows the buckets its peers start. */
  if (st == MSC_OK && d)
    st = msci_dist_grad_plan(d, m, e, need, seeds, n_seeds, (size_t)c->dist_bucket);
  /* Synchronised BatchNorm (dist_bn.c): the training-mode batch norms sum their
   * statistics and backward sums over the ranks. One process with train.sync_bn runs
   * the same kernels with nothing to sum, so that the arithmetic does not depend on the
   * number of ranks (test_dist_equiv compares the two). */
  const int sync_bn = d && c->sync_bn;
  e->bn_reduce = sync_bn ? msci_dist_bn_reduce : c->sync_bn ? msci_dist_bn_alone : NULL;
  e->bn_reduce_user = sync_bn ? d : NULL;
  if (sync_bn) d->bn_done = d->bn_peer_failed = 0;
  for (int32_t k = 0; st == MSC_OK && k < m->cfg.n_mod; ++k)
    if (need_input[k]) st = stage_views(m, e, k, b);
  if (st == MSC_OK) st = fuse_dropout(m, e, b, need);
  /* Stochastic depth's draws (model_exec.c): from the step's seed, per global sample. */
  e->drop_path = c->drop_path;
  e->drop_seed = step_seed(m) ^ 0x6a09e667f3bcc909ull;
  e->drop_samples = b->n;
  e->drop_sample0 = t->sample0;
  if (st == MSC_OK) st = msci_exec_forward(m, e, need);
  /* A rank whose forward stopped early makes its remaining reductions, flagged. */
  if (sync_bn && st != MSC_OK) (void)msci_dist_bn_drain(d, m, e, need, 0);
  /* Stopped by another rank's flag: the agreement names that rank and its error. */
  if (sync_bn && d->bn_peer_failed) st = MSC_OK;
  if (d) st = msci_dist_agree(d, st);
  const int forward_agreed = st == MSC_OK;
  /* The objective reads the projections and logits where they are and adds the
   * weighted gradients of its terms into zeroed gradient tensors. */
  if (st == MSC_OK) msci_exec_zero_grad(m, e);
  for (int32_t k = 0; st == MSC_OK && want_proj && k < m->cfg.n_mod; ++k)
    st = zero_grad_of(m, e, g->proj[k], rows, o.p);
  if (st == MSC_OK && c->lambda_fused > 0) st = zero_grad_of(m, e, g->fused_proj, rows, o.p);
  if (st == MSC_OK && c->lambda_bce > 0) st = zero_grad_of(m, e, g->logits, rows, o.c);
  if (st == MSC_OK && per_pixel(c)) {
    mbk_tensor *sg = NULL;
    const int64_t *od = g->nodes[g->seg_logits].out;
    int64_t dims[4] = {rows, od[1], od[2], od[3]};
    st = msci_exec_grad_for(m, e, g->seg_logits, &sg);
    if (st == MSC_OK) st = msci_be_tensor_zero(m->be, sg, 4, dims);
  }
  double total = 0;
  int skipped = 0;
  /* Data-parallel: the terms run on the global batch; this rank keeps its rows'
   * gradients. */
  objective og = {0};
  float *local_f = NULL, *global_f = NULL;
  if (st == MSC_OK && d) st = dist_gather(m, e, &o, &og, &local_f, &global_f);
  if (st == MSC_OK) {
    st = compute_objective(m, e, d ? &og : &o, res, &total);
    if (st == MSC_OK && d) st = dist_scatter(m, e, local_f, global_f);
    /* A term that meets non-finite projections reports MSC_E_NUMERICAL: a skipped step
     * (unlike a non-finite input pixel, refused above before anything ran). */
    skipped = st == MSC_E_NUMERICAL;
  }
  if (st == MSC_OK && !isfinite(total)) {
    skipped = 1;
    st = msci_fail(MSC_E_NUMERICAL, "the loss is not finite: step %lld skipped",
                   (long long)t->step);
  }
  if (sync_bn) d->bn_done = d->bn_peer_failed = 0;
  /* Overlap (dist_grad.c): each gradient bucket's all-reduce starts as soon as the
   * backward pass completed it. */
  const int overlap = d && c->dist_overlap;
  if (overlap) msci_dist_grad_overlap(d, e, 1);
  if (st == MSC_OK) st = msci_exec_backward(m, e, need);
  if (overlap) msci_dist_grad_overlap(d, e, 0);
  /* Every rank ran the backward pass (the skip follows from the global loss): one whose
   * pass stopped early makes its remaining reductions, flagged, and starts the buckets
   * its peers start. */
  if (forward_agreed && !skipped && st != MSC_OK) {
    if (overlap)
      (void)msci_dist_grad_drain(d, m, e, need, sync_bn);
    else if (sync_bn)
      (void)msci_dist_bn_drain(d, m, e, need, 1);
  }
  if (sync_bn && d->bn_peer_failed) st = MSC_OK;
  /* No bucket is left in flight, whatever happened. */
  if (overlap && forward_agreed && !skipped) {
    msc_status ws = msci_dist_grad_wait(d);
    if (st == MSC_OK) st = ws;
  }
  if (d && !skipped) st = msci_dist_agree(d, st);
  if (st == MSC_OK && d) st = msci_dist_grad_finish(d, m, e, overlap);
  if (st == MSC_OK) st = optimiser_step(m, e, &skipped);
  if (skipped) {
    /* Undo the running statistics the forward pass already updated. */
    msc_status keep = st;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", msc_last_error());
    if (restore_running_stats(m) != MSC_OK) keep = MSC_E_INTERNAL;
    msci_fail(keep, "%s", msg);
    st = keep;
  }
  res->step = t->step;
  res->lr = msci_optim_lr(&t->opt, skipped ? t->step : t->step - 1);
  res->skipped = skipped;
  return st;
}

/* The bytes of msc_step_result that a caller's struct_size holds whole fields of (the
 * header's rule: fields are appended, a field past struct_size is not written); 0 when
 * struct_size is below the 0.1.0 size. Each entry is the end of one version's struct. */
static size_t step_result_fits(uint32_t struct_size) {
  static const size_t ends[] = {
      offsetof(msc_step_result, loss_seg),  /* 0.1.0: up to and including lr */
      offsetof(msc_step_result, loss_dice), /* 0.4.0: loss_seg */
      sizeof(msc_step_result),              /* 0.4.0: loss_dice */
  };
  size_t fits = 0;
  for (size_t i = 0; i < sizeof ends / sizeof ends[0]; ++i)
    if (struct_size >= ends[i]) fits = ends[i];
  return fits;
}

/* int8 is post-training quantisation: inference only (docs/precision.md). */
static msc_status refuse_int8(const msc_model *m, const char *fn) {
  if (m->precision != MBK_PRECISION_INT8) return MSC_OK;
  return msci_fail(MSC_E_UNSUPPORTED,
                   "%s: the model runs in precision int8, which is for inference only (embed, "
                   "predict): train in f32 or bf16, then load the model with precision int8",
                   fn);
}

MSC_API msc_status msc_train_configure(msc_model *m, const msc_options *opts) {
  if (!m) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_train_configure: model is NULL");
  MSCI_TRY(refuse_int8(m, "msc_train_configure"));
  return msci_train_configure(m, opts);
}

MSC_API msc_status msc_train_step(msc_model *m, const msc_batch *b, msc_step_result *out) {
  if (!m || !b || !out)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_train_step: NULL argument");
  MSCI_TRY(refuse_int8(m, "msc_train_step"));
  const size_t fits = step_result_fits(out->struct_size);
  if (fits == 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msc_train_step: out->struct_size is %u, this library needs at least "
                     "%zu (set it to sizeof(msc_step_result))",
                     out->struct_size, offsetof(msc_step_result, loss_seg));
  if (!m->train) MSCI_TRY(msci_train_configure(m, NULL));
  msc_step_result res;
  memset(&res, 0, sizeof res);
  res.struct_size = out->struct_size;
  msc_status st = train_step(m, b, &res);
  /* A skipped step still reports its losses; other errors leave *out untouched. */
  if (st == MSC_OK || res.skipped) memcpy(out, &res, fits);
  return st;
}
