/*
 * cuda_optim.cu — the optimiser step on device tensors (mbk_iface.optim_update): one
 * thread per element running msci_adamw_elem / msci_sgd_elem of optim_core.h, with the
 * step's scalars computed once on the host by msci_adamw_coefs, exactly as
 * msci_optim_update does. This file is compiled without FMA contraction (see
 * CMakeLists.txt), so every element rounds as on the host: the same bits.
 */
#include <math.h>
#include <stdlib.h>

#define MSCI_HD __host__ __device__
#include "optim_core.h"

#include "cuda_internal.h"

__global__ void k_adamw(float *p, const float *g, float *m, float *v, int64_t n,
                        msci_adamw_coef k, int32_t scaled, float gs) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float gi = scaled ? g[i] * gs : g[i];
    msci_adamw_elem(&p[i], &m[i], &v[i], gi, &k);
  }
}

__global__ void k_sgd(float *p, const float *g, float *buf, int64_t n, float lr, float wd,
                      float momentum, int32_t nesterov, int32_t scaled, float gs) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float gi = scaled ? g[i] * gs : g[i];
    msci_sgd_elem(&p[i], buf ? &buf[i] : NULL, gi, lr, wd, momentum, nesterov);
  }
}

static msc_status expect_count(const mbk_tensor *t, int64_t n, const char *name) {
  if (!t) return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: optim_update: %s is NULL", name);
  if (t->ndim == 0 || cu_numel(t->ndim, t->dims) != n)
    return CU_FAIL(MSC_E_SHAPE, "cuda: optim_update: %s holds %lld floats, expected %lld", name,
                   (long long)(t->ndim ? cu_numel(t->ndim, t->dims) : 0), (long long)n);
  return MSC_OK;
}

msc_status cu_optim_update(mbk_ctx *ctx, const mbk_optim_desc *d, mbk_tensor *param,
                           const mbk_tensor *grad, mbk_tensor *m1, mbk_tensor *m2) {
  if (!ctx || !d) return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: optim_update: NULL argument");
  if (d->type != MBK_OPTIM_ADAMW && d->type != MBK_OPTIM_SGD)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: optim_update: unknown optimiser %d",
                   (int)d->type);
  if (d->n <= 0)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: optim_update: n = %lld", (long long)d->n);
  const int adamw = d->type == MBK_OPTIM_ADAMW;
  const int momentum = !adamw && (float)d->momentum != 0.0f;
  CU_CHECK(expect_count(param, d->n, "param"));
  CU_CHECK(expect_count(grad, d->n, "grad"));
  if (adamw || momentum) CU_CHECK(expect_count(m1, d->n, "m1"));
  if (adamw) CU_CHECK(expect_count(m2, d->n, "m2"));
  CU_CHECK(cu_enter(ctx));
  mbk_tensor *touched[3] = {param, momentum || adamw ? m1 : NULL, adamw ? m2 : NULL};
  CU_CHECK(cu_tensor_use(ctx, grad));
  for (int i = 0; i < 3; ++i)
    if (touched[i]) CU_CHECK(cu_tensor_use(ctx, touched[i]));
  /* msci_grad_scale leaves the gradient alone at exactly 1, else multiplies in float. */
  const int32_t scaled = d->grad_scale != 1.0;
  const float gs = (float)d->grad_scale;
  if (adamw) {
    msci_adamw_coef k =
        msci_adamw_coefs(d->lr, d->beta1, d->beta2, d->eps, d->weight_decay, d->step);
    k_adamw<<<cu_grid(d->n), CU_THREADS, 0, ctx->stream>>>(param->data, grad->data, m1->data,
                                                           m2->data, d->n, k, scaled, gs);
  } else {
    k_sgd<<<cu_grid(d->n), CU_THREADS, 0, ctx->stream>>>(
        param->data, grad->data, momentum ? m1->data : NULL, d->n, (float)d->lr,
        (float)d->weight_decay, (float)d->momentum, d->nesterov, scaled, gs);
  }
  CU_LAUNCHED("optimiser update");
  for (int i = 0; i < 3; ++i)
    if (touched[i]) CU_CHECK(cu_tensor_wrote(ctx, touched[i]));
  return MSC_OK;
}
