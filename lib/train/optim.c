/*
 * optim.c — AdamW / SGD updates on host arrays, the learning-rate schedule and the
 * gradient-clipping factor (optim.h); the per-element formulas live in optim_core.h.
 */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "contract/optim_core.h"
#include "options/options.h"

msc_status msci_optim_cfg_parse(const msc_options *o, msci_optim_cfg *cfg) {
  if (o == NULL || cfg == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_optim_cfg_parse: NULL argument");
  msci_optim_cfg c;
  memset(&c, 0, sizeof c);
  char *kind = NULL;
  int64_t nesterov = 0;
  msc_status st = msci_options_get_string_alloc(o, "optim.kind", &kind);
  if (st == MSC_OK) {
    if (strcmp(kind, "adamw") == 0)
      c.kind = MSCI_OPTIM_ADAMW;
    else if (strcmp(kind, "sgd") == 0)
      c.kind = MSCI_OPTIM_SGD;
    else
      st = msci_fail(MSC_E_INVALID_ARGUMENT, "optim.kind: unknown optimiser '%s'", kind);
    free(kind);
  }
  if (st == MSC_OK) st = msc_options_get_float(o, "optim.lr", &c.lr);
  if (st == MSC_OK) st = msc_options_get_float(o, "optim.beta1", &c.beta1);
  if (st == MSC_OK) st = msc_options_get_float(o, "optim.beta2", &c.beta2);
  if (st == MSC_OK) st = msc_options_get_float(o, "optim.eps", &c.eps);
  if (st == MSC_OK) st = msc_options_get_float(o, "optim.weight_decay", &c.weight_decay);
  if (st == MSC_OK) st = msc_options_get_float(o, "optim.momentum", &c.momentum);
  if (st == MSC_OK) st = msc_options_get_int(o, "optim.nesterov", &nesterov);
  if (st == MSC_OK) st = msc_options_get_int(o, "optim.warmup_steps", &c.warmup_steps);
  if (st == MSC_OK) st = msc_options_get_int(o, "optim.total_steps", &c.total_steps);
  if (st == MSC_OK) st = msc_options_get_float(o, "optim.clip_norm", &c.clip_norm);
  if (st != MSC_OK) return st;
  c.nesterov = nesterov != 0;
  c.min_lr_ratio = 0.0;
  if (c.total_steps > 0 && c.total_steps <= c.warmup_steps)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "optim.total_steps (%lld) must be 0 or greater than "
                     "optim.warmup_steps (%lld)",
                     (long long)c.total_steps, (long long)c.warmup_steps);
  if (c.kind == MSCI_OPTIM_SGD && c.nesterov && !(c.momentum > 0))
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "optim.nesterov needs optim.momentum > 0 (it is %g)", c.momentum);
  *cfg = c;
  return MSC_OK;
}

double msci_optim_lr_mult(const msci_optim_cfg *c, int64_t step) {
  if (step < 0) step = 0;
  if (c->warmup_steps > 0 && step < c->warmup_steps)
    return (double)(step + 1) / (double)c->warmup_steps;
  if (c->total_steps <= 0) return 1.0;
  double t = 1.0;
  if (c->total_steps > c->warmup_steps)
    t = (double)(step - c->warmup_steps) / (double)(c->total_steps - c->warmup_steps);
  if (t < 0) t = 0;
  if (t > 1) t = 1;
  double cosine = 0.5 * (1.0 + cos(M_PI * t));
  return c->min_lr_ratio + (1.0 - c->min_lr_ratio) * cosine;
}

double msci_optim_lr(const msci_optim_cfg *c, int64_t step) {
  return c->lr * msci_optim_lr_mult(c, step);
}

void msci_optim_update(const msci_optim_cfg *c, int64_t step, float *param, const float *grad,
                       float *m, float *v, int64_t n, int32_t decay, double lr_now) {
  double wd = decay ? c->weight_decay : 0.0;
  if (c->kind == MSCI_OPTIM_SGD) {
    float lr = (float)lr_now, wdf = (float)wd, mom = (float)c->momentum;
    for (int64_t i = 0; i < n; ++i)
      msci_sgd_elem(&param[i], m ? &m[i] : NULL, grad[i], lr, wdf, mom, c->nesterov);
    return;
  }
  msci_adamw_coef k = msci_adamw_coefs(lr_now, c->beta1, c->beta2, c->eps, wd, step);
  for (int64_t i = 0; i < n; ++i) msci_adamw_elem(&param[i], &m[i], &v[i], grad[i], &k);
}

double msci_grad_clip_scale(double norm, double clip) {
  if (!(clip > 0)) return 1.0;
  double coef = clip / (norm + 1e-6);
  return coef > 1.0 ? 1.0 : coef; /* NaN stays NaN, as torch.clamp(max=1) */
}
