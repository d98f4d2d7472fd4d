/*
 * train.h — the training state of a model: the objective's configuration, the
 * Layer: train (lib/train/README.md says what it owns and may include).
 * augmentation and optimiser settings, the optimiser moments (on the backend, with host
 * staging copies for checkpoints), host copies of the running statistics, and the
 * training executor.
 */
#ifndef MOSAIC_LIB_TRAIN_H
#define MOSAIC_LIB_TRAIN_H

#include <stdint.h>

#include "train/augment.h"
#include "model/model.h"
#include "train/optim.h"

/* The most classes seg.class_weights may list. */
#define MSCI_MAX_SEG_CLASSES 256

typedef struct msci_train_cfg {
  double lambda_intra, lambda_inter, lambda_fused, lambda_views, lambda_bce;
  float tau_intra, tau_inter, tau_fused, tau_views;
  int32_t views; /* 1 or 2 */
  int32_t per_anchor;
  int32_t freeze_encoders;
  int32_t sync_bn;         /* train.sync_bn: data-parallel BatchNorm on the global batch */
  int32_t dist_overlap;    /* train.dist_overlap: gradient all-reduce during the backward */
  int64_t dist_bucket;     /* train.dist_bucket: values per gradient bucket */
  double modality_dropout; /* train.modality_dropout: per sample and modality */
  double drop_path;        /* train.drop_path: stochastic depth of ConvNeXt encoders */
  int32_t single_label;    /* classification term: 1 = softmax CE, 0 = BCE (train.labels) */
  /* Segmentation models (docs/segmentation.md): per-pixel softmax CE and soft Dice on
   * the decoder's logits. */
  double lambda_seg, lambda_dice;
  int32_t seg_ignore;                        /* seg.ignore_index */
  int32_t n_class_weights;                   /* 0: all 1 */
  float class_weights[MSCI_MAX_SEG_CLASSES]; /* seg.class_weights */
} msci_train_cfg;

typedef struct msci_train {
  msci_train_cfg cfg;
  msci_aug_cfg aug;
  msci_optim_cfg opt;
  msc_options *opts; /* the training keys as configured (saved in checkpoints) */
  uint64_t seed;
  int64_t step;     /* optimiser steps taken */
  int32_t ready;    /* master copies and host moments exist */
  float **master;   /* per parameter: host copy of the running statistics (BatchNorm
                      * mean and variance, to undo a skipped step); NULL for the others */
  float **m1, **m2; /* per parameter that is not a running statistic: host copies of the
                      * optimiser moments (m2 unused by SGD), for checkpoints and resets;
                      * NULL while the backend's copies alone hold them (below) */
  /* The moments as backend tensors, owned by the model's context: the optimiser
   * (optim_update) updates them there. While dm_valid is 1 they are the truth and m1/m2
   * above may be stale or absent: msci_train_moments_to_host makes and refreshes them;
   * whoever writes m1/m2 sets dm_valid to 0 so that the next step uploads them, after
   * which the step frees the host copies (docs/memory.md). */
  mbk_tensor **dm1, **dm2;
  int32_t dm_valid;
  msci_exec *exec; /* training executor (kept between steps of the same size) */
  /* Segmentation: the n × H × W mask the last step trained on, under its view's
   * geometry (the batch's own array, or a copy in exec's workspace); NULL otherwise. */
  const int32_t *view_mask;
  /* Data-parallel training (train/dist.h): the index in the global batch of this
   * process's first sample (0 alone), which the augmentations and the modality-dropout
   * draw use; the global batch's host arrays and backend tensors (per graph node: the
   * gathered outputs and their gradients), kept between steps. */
  int64_t sample0;
  void *dist_host;
  size_t dist_host_cap;
  mbk_tensor **gact, **ggrad;
} msci_train;

/* Reads the training keys of opts into a new state for m (replacing any). */
msc_status msci_train_configure(msc_model *m, const msc_options *opts);
void msci_train_free(const msc_model *m, msci_train *t);

/* The modality-dropout draw of the coming step (docs/losses.md, "Modality dropout"):
 * keep[i · n_mod + k] = 0 when sample i of an n-sample batch drops modality k. A
 * function of (seed, step, sample) only, the sample counted in the global batch
 * (sample0 + i); never all of a sample's modalities. */
void msci_train_dropout_draw(const msc_model *m, int64_t n, uint8_t *keep);

/* Checkpoint support (model.c): the state's tensors and metadata. */
msc_status msci_train_ensure_ready(msc_model *m);
/* Makes the host copies m1/m2 of the moments (freed by each step) and copies the
 * backend's (dm1/dm2) into them when those hold the truth; a no-op before the training
 * state exists (msci_train_ensure_ready). */
msc_status msci_train_moments_to_host(const msc_model *m);

#endif
