/*
 * cpu_optim.c — the optimiser step (mbk_iface.optim_update) and the gradient statistics
 * (mbk_iface.grad_stats) on CPU tensors, where they live: training moves no gradient,
 * parameter or moment through a host copy.
 *
 * optim_update runs msci_adamw_elem / msci_sgd_elem of optim_core.h on every element,
 * with the step's scalars from msci_adamw_coefs, exactly as msci_optim_update does: each
 * element depends only on its own values, so an OpenMP loop gives the same bits as the
 * serial host loop. It works in the parameter's own storage and layout. Parameters and
 * their gradients are plain today (cpu_internal.h), but a tensor may hold a blocked
 * oneDNN layout: the gradient is then read through a conversion to the parameter's
 * layout, and a moment in another layout is converted once and keeps the parameter's
 * layout afterwards. The loop then covers the layout's padding too: padding is zero in
 * all four tensors (oneDNN zero-pads what it writes), and both updates map zeros to zeros
 * (AdamW: 0·decay − step·(0/ε) = 0; SGD: 0 + (−lr)·0 = 0), so it stays zero.
 *
 * grad_stats adds the squares in double one by one, tensor by tensor in the order given
 * and element by element in plain row-major order: the host's order before the update
 * moved to the backends (API 3), so the clipping norm has the bits it had then. That sum is
 * serial (its rounding depends on the order); without it (no clipping) the finite check
 * runs in parallel.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "optim_core.h"

/* Below this many elements the loops stay on the calling thread. */
#define CPU_OPTIM_PAR_MIN 16384

static int64_t count_of(const mbk_tensor *t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t->ndim; ++i) n *= t->dims[i];
  return t->ndim ? n : 0;
}

/* t must hold the parameter's logical shape (and n elements). */
static msc_status expect_like(const mbk_tensor *t, const mbk_tensor *param, int64_t n,
                              const char *name) {
  if (!t) return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: optim_update: %s is NULL", name);
  if (count_of(t) != n)
    return CPU_FAIL(MSC_E_SHAPE, "cpu: optim_update: %s holds %lld floats, expected %lld", name,
                    (long long)count_of(t), (long long)n);
  if (param && t != param)
    return cpu_tensor_expect(t, param->ndim, param->dims, "optim_update", name);
  return MSC_OK;
}

static float *data_of(dnnl_memory_t mem) {
  void *h = NULL;
  if (dnnl_memory_get_data_handle(mem, &h) != dnnl_success) return NULL;
  return (float *)h;
}

/* Gives the moment t the layout of param, keeping its values (a no-op when they share
 * it already, as they do for plain parameters). */
static msc_status adopt_layout(mbk_ctx *ctx, mbk_tensor *t, const mbk_tensor *param) {
  if (cpu_md_equal(&t->md, &param->md)) return MSC_OK;
  cpu_reorder r;
  memset(&r, 0, sizeof r);
  dnnl_memory_t conv = NULL;
  msc_status st = cpu_view_as(ctx, t, &param->md, &r, &conv); /* a copy, in r's buffer */
  if (st == MSC_OK) st = cpu_tensor_set(t, param->ndim, param->dims, &param->md);
  if (st == MSC_OK) memcpy(t->data, r.buf, dnnl_memory_desc_get_size(&param->md));
  cpu_reorder_destroy(&r);
  return st;
}

msc_status cpu_optim_update(mbk_ctx *ctx, const mbk_optim_desc *d, mbk_tensor *param,
                            const mbk_tensor *grad, mbk_tensor *m1, mbk_tensor *m2) {
  if (!ctx || !d) return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: optim_update: NULL argument");
  if (d->type != MBK_OPTIM_ADAMW && d->type != MBK_OPTIM_SGD)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: optim_update: unknown optimiser %d",
                    (int)d->type);
  if (d->n <= 0)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: optim_update: n = %lld", (long long)d->n);
  const int adamw = d->type == MBK_OPTIM_ADAMW;
  const int momentum = !adamw && (float)d->momentum != 0.0f;
  CPU_CHECK(expect_like(param, NULL, d->n, "param"));
  CPU_CHECK(expect_like(grad, param, d->n, "grad"));
  if (adamw || momentum) CPU_CHECK(expect_like(m1, param, d->n, "m1"));
  if (adamw) CPU_CHECK(expect_like(m2, param, d->n, "m2"));
  if (grad == param || m1 == param || m2 == param || (m1 && m1 == m2 && adamw))
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: optim_update: tensors alias each other");
  if (adamw || momentum) CPU_CHECK(adopt_layout(ctx, m1, param));
  if (adamw) CPU_CHECK(adopt_layout(ctx, m2, param));
  cpu_reorder r;
  memset(&r, 0, sizeof r);
  dnnl_memory_t gmem = NULL;
  msc_status st = cpu_view_as(ctx, grad, &param->md, &r, &gmem);
  const float *g = st == MSC_OK ? data_of(gmem) : NULL;
  if (st == MSC_OK && !g) st = CPU_FAIL(MSC_E_INTERNAL, "cpu: optim_update: gradient data");
  if (st != MSC_OK) {
    cpu_reorder_destroy(&r);
    return st;
  }
  /* Every float of the layout, padding included (see the file comment). */
  const int64_t count = (int64_t)(dnnl_memory_desc_get_size(&param->md) / sizeof(float));
  float *p = param->data;
  float *a = (adamw || momentum) ? m1->data : NULL, *v = adamw ? m2->data : NULL;
  /* The clipping factor: exactly 1 leaves the gradient alone, else g·(float)scale. */
  const int scaled = d->grad_scale != 1.0;
  const float gs = (float)d->grad_scale;
  cpu_ctx_threads(ctx);
  if (adamw) {
    const msci_adamw_coef k =
        msci_adamw_coefs(d->lr, d->beta1, d->beta2, d->eps, d->weight_decay, d->step);
#pragma omp parallel for schedule(static) if (count >= CPU_OPTIM_PAR_MIN)
    for (int64_t i = 0; i < count; ++i) {
      float gi = scaled ? g[i] * gs : g[i];
      msci_adamw_elem(&p[i], &a[i], &v[i], gi, &k);
    }
  } else {
    const float lr = (float)d->lr, wd = (float)d->weight_decay, mom = (float)d->momentum;
    const int32_t nesterov = d->nesterov;
#pragma omp parallel for schedule(static) if (count >= CPU_OPTIM_PAR_MIN)
    for (int64_t i = 0; i < count; ++i) {
      float gi = scaled ? g[i] * gs : g[i];
      msci_sgd_elem(&p[i], a ? &a[i] : NULL, gi, lr, wd, mom, nesterov);
    }
  }
  cpu_reorder_destroy(&r);
  /* Written in place: ops that cache converted copies of these must see the change. */
  param->version++;
  if (a) m1->version++;
  if (v) m2->version++;
  return MSC_OK;
}

msc_status cpu_grad_stats(mbk_ctx *ctx, const mbk_tensor *const *t, int32_t n,
                          int32_t *first_bad, double *sumsq) {
  if (!ctx || !first_bad || n < 0 || (n > 0 && !t))
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: grad_stats: bad argument");
  for (int32_t i = 0; i < n; ++i)
    if (!t[i] || t[i]->ndim == 0)
      return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: grad_stats: tensor %d is %s", (int)i,
                      t[i] ? "empty" : "NULL");
  int32_t bad = -1;
  double s = 0.0;
  cpu_reorder r;
  memset(&r, 0, sizeof r);
  msc_status st = MSC_OK;
  cpu_ctx_threads(ctx);
  for (int32_t i = 0; st == MSC_OK && bad < 0 && i < n; ++i) {
    /* The plain row-major contents: the tensor's own data, or a converted copy. */
    dnnl_memory_desc_t plain;
    dnnl_memory_t mem = NULL;
    st = cpu_plain_md(t[i]->ndim, t[i]->dims, &plain);
    if (st == MSC_OK) st = cpu_view_as(ctx, t[i], &plain, &r, &mem);
    const float *g = st == MSC_OK ? data_of(mem) : NULL;
    if (st == MSC_OK && !g) st = CPU_FAIL(MSC_E_INTERNAL, "cpu: grad_stats: tensor data");
    if (st != MSC_OK) break;
    const int64_t count = count_of(t[i]);
    if (sumsq) {
      /* Serial, in order: each square is exact in double, the sum rounds as the host's.
       * Finite squares cannot overflow a double, so the sum stops being finite exactly
       * when it meets a NaN or an infinity. */
      for (int64_t j = 0; j < count; ++j) s += (double)g[j] * (double)g[j];
      if (!isfinite(s)) bad = i;
    } else {
      int finite = 1;
#pragma omp parallel for schedule(static) reduction(& : finite) if (count >= CPU_OPTIM_PAR_MIN)
      for (int64_t j = 0; j < count; ++j) finite &= isfinite(g[j]) ? 1 : 0;
      if (!finite) bad = i;
    }
  }
  cpu_reorder_destroy(&r);
  if (st != MSC_OK) return st;
  *first_bad = bad;
  if (sumsq) *sumsq = s;
  return MSC_OK;
}
