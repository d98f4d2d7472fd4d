/*
 * train.h — the training state of a model: the objective's configuration, the
 * augmentation and optimiser settings, host master copies of the parameters with their
 * optimiser moments, and the training executor.
 */
#ifndef MOSAIC_LIB_TRAIN_H
#define MOSAIC_LIB_TRAIN_H

#include <stdint.h>

#include "augment.h"
#include "model.h"
#include "optim.h"

typedef struct msci_train_cfg {
  double lambda_intra, lambda_inter, lambda_fused, lambda_views, lambda_bce;
  float tau_intra, tau_inter, tau_fused, tau_views;
  int32_t views; /* 1 or 2 */
  int32_t per_anchor;
  int32_t freeze_encoders;
} msci_train_cfg;

typedef struct msci_train {
  msci_train_cfg cfg;
  msci_aug_cfg aug;
  msci_optim_cfg opt;
  msc_options *opts; /* the training keys as configured (saved in checkpoints) */
  uint64_t seed;
  int64_t step;      /* optimiser steps taken */
  int32_t ready;     /* master copies and moments exist */
  float **master;    /* per parameter: host copy (trainable ones and running stats) */
  float **m1, **m2;  /* per trainable parameter: optimiser moments (m2 unused by SGD) */
  float **grad;      /* per trainable parameter: host gradient */
  msci_exec *exec;   /* training executor (kept between steps of the same size) */
} msci_train;

/* Reads the training keys of opts into a new state for m (replacing any). */
msc_status msci_train_configure(msc_model *m, const msc_options *opts);
void msci_train_free(const msc_model *m, msci_train *t);

/* Checkpoint support (model.c): the state's tensors and metadata. */
msc_status msci_train_ensure_ready(msc_model *m);

#endif
