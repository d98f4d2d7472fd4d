/*
 * cpu_lnorm.c — layer normalisation over the channels (API 10, MBK_OP_LAYERNORM): at
 * every position (n, h, w) of NCHW, or every row of N×C, y = (x − μ)/√(σ² + eps)·γ + β
 * with μ and the biased σ² over c (ConvNeXt's channels_first LayerNorm; nn.LayerNorm on
 * rows).
 *
 * Plain OpenMP loops on plain float32 (an input in a blocked or bf16 layout is converted
 * first): oneDNN's layer normalisation normalises the innermost dimension, which on
 * NCHW would cost a conversion to NHWC and back around every call. The loops walk NCHW
 * in blocks of LN_BLOCK positions of one image, channel by channel, so every access is
 * contiguous; statistics are summed in double. Backward recomputes the statistics from
 * x (the contract gives it x), so it needs no training forward.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

enum { LN_BLOCK = 64 };

typedef struct cpu_lnorm {
  mbk_op base;
  int32_t ndim;
  int64_t dims[MBK_MAX_DIMS], c_dims[1];
  int64_t n, c, hw;   /* x as [N, C, HW] (HW = 1 for 2-D) */
  float *mean, *rstd; /* per position (N·HW), written by backward */
  double *dg, *db;    /* per channel sums of backward */
  cpu_reorder r_x, r_dy;
} cpu_lnorm;

static void lnorm_destroy(mbk_op *base) {
  cpu_lnorm *op = (cpu_lnorm *)base;
  cpu_reorder_destroy(&op->r_x);
  cpu_reorder_destroy(&op->r_dy);
  free(op->mean);
  free(op->rstd);
  free(op->dg);
  free(op->db);
  free(op);
}

/* t's contents as plain float32 (t's own storage when it is plain already). */
static msc_status plain_view(cpu_lnorm *op, const mbk_tensor *t, cpu_reorder *r,
                             const float **data) {
  dnnl_memory_desc_t plain;
  dnnl_memory_t m;
  void *p = NULL;
  CPU_CHECK(cpu_plain_md(op->ndim, op->dims, &plain));
  CPU_CHECK(cpu_view_as(op->base.ctx, t, &plain, r, &m));
  CPU_TRY(dnnl_memory_get_data_handle(m, &p), "layernorm input");
  *data = p;
  return MSC_OK;
}

/* Mean and 1/√(σ² + eps) of the positions [j0, j0 + nb) of image i, into mean/rstd. */
static void block_stats(const cpu_lnorm *op, const float *x, int64_t i, int64_t j0, int64_t nb,
                        float eps, float *mean, float *rstd) {
  double s[LN_BLOCK] = {0}, v[LN_BLOCK] = {0};
  const float *xi = x + (size_t)i * (size_t)(op->c * op->hw) + j0;
  for (int64_t c = 0; c < op->c; ++c)
    for (int64_t j = 0; j < nb; ++j) s[j] += xi[c * op->hw + j];
  for (int64_t j = 0; j < nb; ++j) s[j] /= (double)op->c;
  for (int64_t c = 0; c < op->c; ++c)
    for (int64_t j = 0; j < nb; ++j) {
      const double d = xi[c * op->hw + j] - s[j];
      v[j] += d * d;
    }
  for (int64_t j = 0; j < nb; ++j) {
    mean[j] = (float)s[j];
    rstd[j] = (float)(1.0 / sqrt(v[j] / (double)op->c + (double)eps));
  }
}

static msc_status lnorm_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                mbk_tensor *const *out) {
  (void)training; /* nothing to save: backward recomputes the statistics */
  cpu_lnorm *op = (cpu_lnorm *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->dims, "layernorm", "x"));
  CPU_CHECK(cpu_tensor_expect(in[1], 1, op->c_dims, "layernorm", "gamma"));
  CPU_CHECK(cpu_tensor_expect(in[2], 1, op->c_dims, "layernorm", "beta"));
  const float *x, *gamma = in[1]->data, *beta = in[2]->data; /* 1-D tensors are plain */
  CPU_CHECK(plain_view(op, in[0], &op->r_x, &x));
  dnnl_memory_desc_t plain;
  CPU_CHECK(cpu_plain_md(op->ndim, op->dims, &plain));
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->dims, &plain));
  float *y = out[0]->data;
  const int64_t nblk = (op->hw + LN_BLOCK - 1) / LN_BLOCK, C = op->c, HW = op->hw;
  const float eps = base->desc.u.ln.eps;
  cpu_ctx_threads(base->ctx);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < op->n * nblk; ++t) {
    const int64_t i = t / nblk, j0 = (t % nblk) * LN_BLOCK;
    const int64_t nb = HW - j0 < LN_BLOCK ? HW - j0 : LN_BLOCK;
    float mean[LN_BLOCK], rstd[LN_BLOCK];
    block_stats(op, x, i, j0, nb, eps, mean, rstd);
    const size_t base_ix = (size_t)i * (size_t)(C * HW) + (size_t)j0;
    for (int64_t c = 0; c < C; ++c) {
      const float *xc = x + base_ix + (size_t)(c * HW);
      float *yc = y + base_ix + (size_t)(c * HW);
      for (int64_t j = 0; j < nb; ++j) yc[j] = (xc[j] - mean[j]) * rstd[j] * gamma[c] + beta[c];
    }
  }
  return MSC_OK;
}

static msc_status lnorm_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cpu_lnorm *op = (cpu_lnorm *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->dims, "layernorm", "x"));
  CPU_CHECK(cpu_tensor_expect(in[1], 1, op->c_dims, "layernorm", "gamma"));
  CPU_CHECK(cpu_tensor_expect(in[2], op->ndim, op->dims, "layernorm", "dy"));
  const float *x, *dy, *gamma = in[1]->data;
  CPU_CHECK(plain_view(op, in[0], &op->r_x, &x));
  CPU_CHECK(plain_view(op, in[2], &op->r_dy, &dy));
  dnnl_memory_desc_t plain, cmd;
  CPU_CHECK(cpu_plain_md(op->ndim, op->dims, &plain));
  CPU_CHECK(cpu_plain_md(1, op->c_dims, &cmd));
  float *dx = NULL;
  if (out[0]) {
    CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->dims, &plain));
    dx = out[0]->data;
  }
  const int64_t nblk = (op->hw + LN_BLOCK - 1) / LN_BLOCK, C = op->c, HW = op->hw;
  const float eps = base->desc.u.ln.eps;
  float *mean_all = op->mean, *rstd_all = op->rstd;
  cpu_ctx_threads(base->ctx);
  /* Statistics per position, and dx = rstd·(g − mean_c g − x̂·mean_c(g·x̂)), g = dy·γ. */
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < op->n * nblk; ++t) {
    const int64_t i = t / nblk, j0 = (t % nblk) * LN_BLOCK;
    const int64_t nb = HW - j0 < LN_BLOCK ? HW - j0 : LN_BLOCK;
    float *mean = mean_all + i * HW + j0, *rstd = rstd_all + i * HW + j0;
    block_stats(op, x, i, j0, nb, eps, mean, rstd);
    if (!dx) continue;
    double a[LN_BLOCK] = {0}, b[LN_BLOCK] = {0};
    const size_t base_ix = (size_t)i * (size_t)(C * HW) + (size_t)j0;
    for (int64_t c = 0; c < C; ++c) {
      const float *xc = x + base_ix + (size_t)(c * HW), *gc = dy + base_ix + (size_t)(c * HW);
      for (int64_t j = 0; j < nb; ++j) {
        const double g = (double)gc[j] * gamma[c];
        a[j] += g;
        b[j] += g * (double)((xc[j] - mean[j]) * rstd[j]);
      }
    }
    for (int64_t j = 0; j < nb; ++j) a[j] /= (double)C, b[j] /= (double)C;
    for (int64_t c = 0; c < C; ++c) {
      const float *xc = x + base_ix + (size_t)(c * HW), *gc = dy + base_ix + (size_t)(c * HW);
      float *dc = dx + base_ix + (size_t)(c * HW);
      for (int64_t j = 0; j < nb; ++j) {
        const double xhat = (double)((xc[j] - mean[j]) * rstd[j]);
        dc[j] = (float)(rstd[j] * ((double)gc[j] * gamma[c] - a[j] - xhat * b[j]));
      }
    }
  }
  if (!out[1] && !out[2]) return MSC_OK;
  /* dγ[c] = Σ dy·x̂, dβ[c] = Σ dy over all positions. */
  double *dg = op->dg, *db = op->db;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    double sg = 0.0, sb = 0.0;
    for (int64_t i = 0; i < op->n; ++i) {
      const size_t o = ((size_t)i * (size_t)C + (size_t)c) * (size_t)HW;
      const float *mean = mean_all + i * HW, *rstd = rstd_all + i * HW;
      for (int64_t j = 0; j < HW; ++j) {
        sg += (double)dy[o + j] * (double)((x[o + j] - mean[j]) * rstd[j]);
        sb += dy[o + j];
      }
    }
    dg[c] = sg;
    db[c] = sb;
  }
  for (int k = 1; k < 3; ++k) {
    if (!out[k]) continue;
    CPU_CHECK(cpu_tensor_set(out[k], 1, op->c_dims, &cmd));
    float *o = out[k]->data;
    const double *src = k == 1 ? dg : db;
    for (int64_t c = 0; c < C; ++c) o[c] = (float)src[c];
  }
  return MSC_OK;
}

static const mbk_op_vt lnorm_vt = {"layernorm", lnorm_forward, lnorm_backward, lnorm_destroy};

msc_status cpu_layernorm_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, &lnorm_vt, sizeof(cpu_lnorm), &base));
  cpu_lnorm *op = (cpu_lnorm *)base;
  op->ndim = mbk_op_in_dims(d, op->dims);
  op->c_dims[0] = d->c;
  op->n = d->n;
  op->c = d->c;
  op->hw = d->ndim == 4 ? d->h * d->w : 1;
  /* Made here, so that steady training steps allocate nothing. */
  op->mean = malloc((size_t)(op->n * op->hw) * sizeof(float));
  op->rstd = malloc((size_t)(op->n * op->hw) * sizeof(float));
  op->dg = malloc((size_t)op->c * sizeof(double));
  op->db = malloc((size_t)op->c * sizeof(double));
  if (!op->mean || !op->rstd || !op->dg || !op->db) {
    const long long hw = (long long)op->hw;
    lnorm_destroy(base);
    return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: layernorm op (n=%lld c=%lld hw=%lld)",
                    (long long)d->n, (long long)d->c, hw);
  }
  *out = base;
  return MSC_OK;
}
