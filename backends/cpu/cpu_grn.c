/*
 * cpu_grn.c — ConvNeXt-V2's Global Response Normalisation (API 10, MBK_OP_GRN) on NCHW:
 * G[n,c] = ‖x[n,c,:,:]‖₂, N[n,c] = G[n,c]/(mean_c G[n,·] + eps), y = γ[c]·x·N[n,c] +
 * β[c] + x. Plain OpenMP loops on plain float32 (an input in a blocked or bf16 layout is
 * converted first); the reductions are summed in double. Backward recomputes G from x,
 * so it needs no training forward:
 *   s[n,c] = Σ_hw dy·x,  a = γ[c]·s,  D = mean_c G + eps,
 *   ∂L/∂G[n,k] = a[n,k]/D − (Σ_c a[n,c]·G[n,c])/(C·D²),
 *   dx = dy·(1 + γ[c]·N) + ∂L/∂G·x/G (0 where G = 0),
 *   dγ[c] = Σ_n s[n,c]·N[n,c],  dβ[c] = Σ dy.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

typedef struct cpu_grn {
  mbk_op base;
  int64_t dims[MBK_MAX_DIMS], c_dims[1];
  int64_t n, c, hw;
  double *g, *s, *sb; /* per (n, c): the norm G, Σ dy·x, Σ dy */
  double *den;        /* per n: mean_c G + eps */
  cpu_reorder r_x, r_dy;
} cpu_grn;

static void grn_destroy(mbk_op *base) {
  cpu_grn *op = (cpu_grn *)base;
  cpu_reorder_destroy(&op->r_x);
  cpu_reorder_destroy(&op->r_dy);
  free(op->g);
  free(op->s);
  free(op->sb);
  free(op->den);
  free(op);
}

static msc_status plain_view(cpu_grn *op, const mbk_tensor *t, cpu_reorder *r,
                             const float **data) {
  dnnl_memory_desc_t plain;
  dnnl_memory_t m;
  void *p = NULL;
  CPU_CHECK(cpu_plain_md(4, op->dims, &plain));
  CPU_CHECK(cpu_view_as(op->base.ctx, t, &plain, r, &m));
  CPU_TRY(dnnl_memory_get_data_handle(m, &p), "grn input");
  *data = p;
  return MSC_OK;
}

/* G[n,c] for every (n, c) into op->g. */
static void norms(cpu_grn *op, const float *x) {
  const int64_t HW = op->hw;
  double *g = op->g;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < op->n * op->c; ++k) {
    const float *xk = x + (size_t)k * (size_t)HW;
    double s = 0.0;
    for (int64_t j = 0; j < HW; ++j) s += (double)xk[j] * (double)xk[j];
    g[k] = sqrt(s);
  }
}

/* eps + mean_c G[i, c]. */
static double denom(const cpu_grn *op, int64_t i) {
  double m = 0.0;
  for (int64_t c = 0; c < op->c; ++c) m += op->g[i * op->c + c];
  return m / (double)op->c + (double)op->base.desc.u.grn.eps;
}

static msc_status grn_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                              mbk_tensor *const *out) {
  (void)training; /* nothing to save */
  cpu_grn *op = (cpu_grn *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], 4, op->dims, "grn", "x"));
  CPU_CHECK(cpu_tensor_expect(in[1], 1, op->c_dims, "grn", "gamma"));
  CPU_CHECK(cpu_tensor_expect(in[2], 1, op->c_dims, "grn", "beta"));
  const float *x, *gamma = in[1]->data, *beta = in[2]->data; /* 1-D tensors are plain */
  CPU_CHECK(plain_view(op, in[0], &op->r_x, &x));
  dnnl_memory_desc_t plain;
  CPU_CHECK(cpu_plain_md(4, op->dims, &plain));
  CPU_CHECK(cpu_tensor_set(out[0], 4, op->dims, &plain));
  float *y = out[0]->data;
  const int64_t C = op->c, HW = op->hw;
  cpu_ctx_threads(base->ctx);
  norms(op, x);
  for (int64_t i = 0; i < op->n; ++i) { /* N[n,c] replaces G[n,c] */
    const double d = denom(op, i);
    for (int64_t c = 0; c < C; ++c) op->g[i * C + c] /= d;
  }
  const double *nx = op->g;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < op->n * C; ++k) {
    const int64_t c = k % C;
    const float scale = (float)(1.0 + (double)gamma[c] * nx[k]);
    const float *xk = x + (size_t)k * (size_t)HW;
    float *yk = y + (size_t)k * (size_t)HW;
    for (int64_t j = 0; j < HW; ++j) yk[j] = xk[j] * scale + beta[c];
  }
  return MSC_OK;
}

static msc_status grn_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cpu_grn *op = (cpu_grn *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], 4, op->dims, "grn", "x"));
  CPU_CHECK(cpu_tensor_expect(in[1], 1, op->c_dims, "grn", "gamma"));
  CPU_CHECK(cpu_tensor_expect(in[2], 4, op->dims, "grn", "dy"));
  const float *x, *dy, *gamma = in[1]->data;
  CPU_CHECK(plain_view(op, in[0], &op->r_x, &x));
  CPU_CHECK(plain_view(op, in[2], &op->r_dy, &dy));
  const int64_t C = op->c, HW = op->hw;
  double *g = op->g, *s = op->s, *sb = op->sb;
  cpu_ctx_threads(base->ctx);
  norms(op, x);
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < op->n * C; ++k) {
    const float *xk = x + (size_t)k * (size_t)HW, *dk = dy + (size_t)k * (size_t)HW;
    double a = 0.0, b = 0.0;
    for (int64_t j = 0; j < HW; ++j) {
      a += (double)dk[j] * (double)xk[j];
      b += dk[j];
    }
    s[k] = a;
    sb[k] = b;
  }
  if (out[0]) {
    dnnl_memory_desc_t plain;
    CPU_CHECK(cpu_plain_md(4, op->dims, &plain));
    CPU_CHECK(cpu_tensor_set(out[0], 4, op->dims, &plain));
    float *dx = out[0]->data;
    for (int64_t i = 0; i < op->n; ++i) {
      const double d = denom(op, i);
      double ag = 0.0; /* Σ_c a[i,c]·G[i,c] */
      for (int64_t c = 0; c < C; ++c) ag += (double)gamma[c] * s[i * C + c] * g[i * C + c];
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t k = i * C + c;
        const double dg = (double)gamma[c] * s[k] / d - ag / ((double)C * d * d);
        const float direct = (float)(1.0 + (double)gamma[c] * g[k] / d);
        const float via = g[k] > 0.0 ? (float)(dg / g[k]) : 0.0f;
        const float *xk = x + (size_t)k * (size_t)HW, *dk = dy + (size_t)k * (size_t)HW;
        float *ok = dx + (size_t)k * (size_t)HW;
        for (int64_t j = 0; j < HW; ++j) ok[j] = dk[j] * direct + via * xk[j];
      }
    }
  }
  if (!out[1] && !out[2]) return MSC_OK;
  dnnl_memory_desc_t cmd;
  CPU_CHECK(cpu_plain_md(1, op->c_dims, &cmd));
  float *dgamma = NULL, *dbeta = NULL;
  if (out[1]) {
    CPU_CHECK(cpu_tensor_set(out[1], 1, op->c_dims, &cmd));
    dgamma = out[1]->data;
  }
  if (out[2]) {
    CPU_CHECK(cpu_tensor_set(out[2], 1, op->c_dims, &cmd));
    dbeta = out[2]->data;
  }
  for (int64_t i = 0; i < op->n; ++i) op->den[i] = denom(op, i);
  for (int64_t c = 0; c < C; ++c) {
    double sg = 0.0, sbeta = 0.0;
    for (int64_t i = 0; i < op->n; ++i) {
      sg += s[i * C + c] * g[i * C + c] / op->den[i];
      sbeta += sb[i * C + c];
    }
    if (dgamma) dgamma[c] = (float)sg;
    if (dbeta) dbeta[c] = (float)sbeta;
  }
  return MSC_OK;
}

static const mbk_op_vt grn_vt = {"grn", grn_forward, grn_backward, grn_destroy};

msc_status cpu_grn_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, &grn_vt, sizeof(cpu_grn), &base));
  cpu_grn *op = (cpu_grn *)base;
  mbk_op_in_dims(d, op->dims);
  op->c_dims[0] = d->c;
  op->n = d->n;
  op->c = d->c;
  op->hw = d->h * d->w;
  const size_t nc = (size_t)(d->n * d->c);
  op->g = malloc(nc * sizeof(double));
  op->s = malloc(nc * sizeof(double));
  op->sb = malloc(nc * sizeof(double));
  op->den = malloc((size_t)d->n * sizeof(double));
  if (!op->g || !op->s || !op->sb || !op->den) {
    grn_destroy(base);
    return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: grn op (n=%lld c=%lld)", (long long)d->n,
                    (long long)d->c);
  }
  *out = base;
  return MSC_OK;
}
