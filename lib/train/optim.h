/*
 * optim.h — the optimisers of docs/losses.md ("Optimiser"): AdamW (default) or SGD with
 * Layer: train (lib/train/README.md says what it owns and may include).
 * momentum, the learning-rate schedule (linear warm-up, then cosine) and global
 * gradient-norm clipping, all as PyTorch computes them (torch.optim.AdamW,
 * torch.optim.SGD, torch.nn.utils.clip_grad_norm_). The per-element arithmetic is in
 * optim_core.h.
 *
 * Training updates parameters on the backend (mbk_iface.optim_update, which runs the
 * optim_core.h elements) and gets the gradients' sum of squares from it
 * (mbk_iface.grad_stats); msci_optim_update is the same update over host arrays, for
 * custom loops and as the tests' reference.
 *
 * NaN and infinities are the caller's job: nothing here checks for them. A non-finite
 * gradient makes the parameters and moments it touches non-finite, and a non-finite
 * global norm gives a NaN clipping scale (as clip_grad_norm_ with
 * error_if_nonfinite=False); check the gradients first and skip the step.
 */
#ifndef MOSAIC_LIB_OPTIM_H
#define MOSAIC_LIB_OPTIM_H

#include <stdint.h>

#include "mosaic/mosaic.h"

typedef enum { MSCI_OPTIM_ADAMW = 0, MSCI_OPTIM_SGD = 1 } msci_optim_kind;

typedef struct msci_optim_cfg {
  int32_t kind;                      /* msci_optim_kind (optim.kind) */
  double lr;                         /* peak learning rate (optim.lr) */
  double beta1, beta2, eps;          /* AdamW */
  double weight_decay;               /* AdamW: decoupled; SGD: added to the gradient */
  double momentum;                   /* SGD */
  int32_t nesterov;                  /* SGD */
  int64_t warmup_steps, total_steps; /* schedule; total 0: constant after warm-up */
  double clip_norm;                  /* global gradient-norm clipping, 0 = off */
  double min_lr_ratio;               /* floor of the cosine multiplier (no key yet: 0) */
} msci_optim_cfg;

/* Reads the optim.* keys of o. Checks that total_steps is 0 or greater than
 * warmup_steps, and that SGD with nesterov has a momentum > 0 (as PyTorch). *cfg is
 * untouched on error. Returns MSC_OK or MSC_E_INVALID_ARGUMENT (NULL, inconsistent
 * keys, with a message naming them). */
msc_status msci_optim_cfg_parse(const msc_options *o, msci_optim_cfg *cfg);

/* The learning-rate multiplier of step `step` (0-based): (step + 1)/warmup while
 * step < warmup_steps; then 0.5·(1 + cos(π·t)) with t = (step − warmup)/(total −
 * warmup) clamped to [0, 1] (scaled into [min_lr_ratio, 1]); 1 after the warm-up when
 * total_steps is 0. A negative step counts as 0. */
double msci_optim_lr_mult(const msci_optim_cfg *c, int64_t step);
/* c->lr · msci_optim_lr_mult(c, step). */
double msci_optim_lr(const msci_optim_cfg *c, int64_t step);

/* One update of a parameter tensor of n floats at step `step` (0-based; AdamW's bias
 * correction uses step + 1) with learning rate lr_now (normally msci_optim_lr(c, step)).
 * decay 0 switches weight decay off (biases, BatchNorm scales and shifts). m (and, for
 * AdamW, v) are the tensor's moments, n floats each, zero before the first step; v may
 * be NULL for SGD, m too when momentum is 0. grad is not modified. No checks: the
 * arrays must be valid (see the NaN note above). Deterministic: each element depends
 * only on its own values. */
void msci_optim_update(const msci_optim_cfg *c, int64_t step, float *param, const float *grad,
                       float *m, float *v, int64_t n, int32_t decay, double lr_now);

/* The factor clip_grad_norm_ multiplies the gradients by: min(1, clip/(norm + 1e-6)); 1
 * when clip <= 0 (off). NaN when norm is NaN. norm is √(Σ g²) over every trainable
 * gradient (mbk_iface.grad_stats); the gradients are then multiplied by (float)factor
 * as they are read (mbk_optim_desc.grad_scale; exactly 1 leaves them alone). */
double msci_grad_clip_scale(double norm, double clip);

#endif /* MOSAIC_LIB_OPTIM_H */
