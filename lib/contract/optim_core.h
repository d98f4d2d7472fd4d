/*
 * optim_core.h — the per-element arithmetic of the optimisers (docs/losses.md, "Optimiser"),
 * Layer: contract (lib/contract/README.md): shared with every backend.
 * as pure inline functions with no dependency on the rest of the library, so that the
 * same code runs on host arrays (lib/train/optim.c), in the CPU backend's update
 * (backends/cpu/cpu_optim.c) and in the CUDA kernels of backends/cuda/cuda_optim.cu,
 * which define MSCI_HD as `__host__ __device__` before including this header and are
 * compiled without FMA contraction, so every backend rounds each element alike.
 *
 * The formulas and their order of float operations follow PyTorch's single-tensor
 * (foreach=False) torch.optim.AdamW and torch.optim.SGD (dampening 0):
 *
 *   AdamW, step t = step + 1 (1-based), lr and wd of this step:
 *     p ← p·(1 − lr·wd)                      decoupled weight decay (wd = 0: no decay)
 *     m ← lerp(m, g, 1 − β1)                 = β1·m + (1 − β1)·g
 *     v ← v·β2 + (1 − β2)·g·g
 *     p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 *
 *   SGD with momentum μ (buffer b starts at 0, which equals PyTorch's b ← g on the first
 *   step), weight decay coupled into the gradient as in PyTorch:
 *     d ← g + wd·p
 *     b ← μ·b + d                             (μ = 0: no buffer, b unused)
 *     d ← nesterov ? d + μ·b : b
 *     p ← p − lr·d
 *
 * The scalars that depend only on the step (bias corrections) are computed once per
 * tensor in double by msci_adamw_coefs and applied in float, like PyTorch's Python
 * scalars. Nothing here checks for NaN or infinity: a non-finite gradient gives
 * non-finite parameters and moments, and deciding to skip a step is the caller's job.
 */
#ifndef MSCI_HD
#define MSCI_HD
#endif

#ifndef MOSAIC_LIB_OPTIM_CORE_H
#define MOSAIC_LIB_OPTIM_CORE_H

#include <math.h>
#include <stdint.h>

/* The scalars of one AdamW step for one tensor. */
typedef struct msci_adamw_coef {
  float decay_mul;   /* 1 − lr·wd (1 for a tensor without decay) */
  float one_m_beta1; /* 1 − β1: the lerp weight of the first moment */
  float beta2;
  float one_m_beta2; /* 1 − β2 */
  float neg_step;    /* −lr / (1 − β1^t) */
  float bc2_sqrt;    /* √(1 − β2^t) */
  float eps;
} msci_adamw_coef;

/* The coefficients of AdamW step `step` (0-based; t = step + 1) at learning rate lr and
 * weight decay wd (pass 0 for biases and norm parameters). */
static inline MSCI_HD msci_adamw_coef msci_adamw_coefs(double lr, double beta1, double beta2,
                                                       double eps, double wd, int64_t step) {
  double t = (double)(step + 1);
  double bc1 = 1.0 - pow(beta1, t), bc2 = 1.0 - pow(beta2, t);
  msci_adamw_coef k;
  k.decay_mul = (float)(1.0 - lr * wd);
  k.one_m_beta1 = (float)(1.0 - beta1);
  k.beta2 = (float)beta2;
  k.one_m_beta2 = (float)(1.0 - beta2);
  k.neg_step = (float)(-(lr / bc1));
  k.bc2_sqrt = (float)sqrt(bc2);
  k.eps = (float)eps;
  return k;
}

/* torch.lerp(a, b, w) for float: exact at both ends. */
static inline MSCI_HD float msci_lerpf(float a, float b, float w) {
  return (w < 0.5f && w > -0.5f) ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

/* One AdamW update of one element: parameter *p, gradient g, moments *m and *v. */
static inline MSCI_HD void msci_adamw_elem(float *p, float *m, float *v, float g,
                                           const msci_adamw_coef *k) {
  float pp = *p * k->decay_mul;
  float mm = msci_lerpf(*m, g, k->one_m_beta1);
  float vv = *v * k->beta2 + k->one_m_beta2 * g * g;
  float denom = sqrtf(vv) / k->bc2_sqrt + k->eps;
  *p = pp + k->neg_step * (mm / denom);
  *m = mm;
  *v = vv;
}

/* One SGD update of one element: parameter *p, gradient g, momentum buffer *buf (unused
 * and may be NULL when momentum is 0), weight decay wd (0: none), nesterov 0/1. */
static inline MSCI_HD void msci_sgd_elem(float *p, float *buf, float g, float lr, float wd,
                                         float momentum, int32_t nesterov) {
  float d = g;
  if (wd != 0.0f) d = d + wd * *p;
  if (momentum != 0.0f) {
    float b = *buf * momentum + d;
    *buf = b;
    d = nesterov ? d + momentum * b : b;
  }
  *p = *p + (-lr) * d;
}

#endif /* MOSAIC_LIB_OPTIM_CORE_H */
