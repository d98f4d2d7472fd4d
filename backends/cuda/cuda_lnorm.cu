/*
 * cuda_lnorm.cu — layer normalisation over the channels (API 10, MBK_OP_LAYERNORM;
 * backend.h): at every position (n, h, w) of NCHW, or every row of N×C, y = (x − μ)/√(σ² +
 * eps)·γ + β with μ and the biased σ² over c, as backends/cpu/cpu_lnorm.c.
 *
 * Own kernels, no cuDNN (its normalisation API wants the normalised axis innermost):
 * one thread per position walks the C channels of that position (stride H·W; neighbouring
 * threads read neighbouring addresses), statistics and sums in double. Backward recomputes
 * the statistics from x (no training forward) and keeps them per position for the
 * parameter gradients, which one block per channel reduces in a fixed tree:
 *   g = dy·γ,  dx = rstd·(g − mean_c g − x̂·mean_c(g·x̂)),
 *   dγ[c] = Σ dy·x̂,  dβ[c] = Σ dy over every position.
 */
#include <math.h>
#include <stdlib.h>

#include "cuda_internal.h"

typedef struct cu_lnorm {
  mbk_op base;
  int32_t ndim;
  int64_t dims[MBK_MAX_DIMS], c_dims[1];
  int64_t n, c, hw; /* x as [N, C, HW] (HW = 1 for 2-D) */
  cu_buf stats; /* double[2·N·HW]: mean, then 1/√(σ² + eps), per position (backward) */
} cu_lnorm;

/* Mean and 1/√(σ² + eps) of position p = i·HW + j (two passes over the channels). */
__device__ void ln_stats(const float *x, int64_t c, int64_t hw, int64_t p, float eps,
                         double *mean, double *rstd) {
  const int64_t i = p / hw, j = p - i * hw;
  const float *xp = x + i * c * hw + j;
  double s = 0.0;
  for (int64_t k = 0; k < c; ++k) s += (double)xp[k * hw];
  const double m = s / (double)c;
  double v = 0.0;
  for (int64_t k = 0; k < c; ++k) {
    const double d = (double)xp[k * hw] - m;
    v += d * d;
  }
  *mean = m;
  *rstd = 1.0 / sqrt(v / (double)c + (double)eps);
}

__global__ void k_ln_fwd(const float *x, const float *gamma, const float *beta, int64_t n,
                         int64_t c, int64_t hw, float eps, float *y) {
  const int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= n * hw) return;
  double mean, rstd;
  ln_stats(x, c, hw, p, eps, &mean, &rstd);
  const int64_t i = p / hw, at = i * c * hw + (p - i * hw);
  for (int64_t k = 0; k < c; ++k) {
    const int64_t e = at + k * hw;
    y[e] = (float)(((double)x[e] - mean) * rstd * (double)gamma[k] + (double)beta[k]);
  }
}

/* Statistics of every position into stats; dx when dx is not NULL. */
__global__ void k_ln_bwd_dx(const float *x, const float *gamma, const float *dy, int64_t n,
                            int64_t c, int64_t hw, float eps, double *stats, float *dx) {
  const int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= n * hw) return;
  double mean, rstd;
  ln_stats(x, c, hw, p, eps, &mean, &rstd);
  stats[p] = mean;
  stats[n * hw + p] = rstd;
  if (!dx) return;
  const int64_t i = p / hw, at = i * c * hw + (p - i * hw);
  double a = 0.0, b = 0.0;
  for (int64_t k = 0; k < c; ++k) {
    const int64_t e = at + k * hw;
    const double g = (double)dy[e] * (double)gamma[k];
    a += g;
    b += g * ((double)x[e] - mean) * rstd;
  }
  a /= (double)c;
  b /= (double)c;
  for (int64_t k = 0; k < c; ++k) {
    const int64_t e = at + k * hw;
    const double g = (double)dy[e] * (double)gamma[k];
    const double xhat = ((double)x[e] - mean) * rstd;
    dx[e] = (float)(rstd * (g - a - xhat * b));
  }
}

/* dγ and dβ of channel blockIdx.x (either may be NULL). */
__global__ void k_ln_bwd_params(const float *x, const float *dy, const double *stats, int64_t n,
                                int64_t c, int64_t hw, float *dgamma, float *dbeta) {
  const int64_t ch = blockIdx.x, total = n * hw;
  double sg = 0.0, sb = 0.0;
  for (int64_t p = threadIdx.x; p < total; p += blockDim.x) {
    const int64_t i = p / hw, e = (i * c + ch) * hw + (p - i * hw);
    const double xhat = ((double)x[e] - stats[p]) * stats[total + p];
    sg += (double)dy[e] * xhat;
    sb += (double)dy[e];
  }
  double tg = 0.0, tb = 0.0;
  cu_block_sum2(sg, sb, &tg, &tb);
  if (threadIdx.x != 0) return;
  if (dgamma) dgamma[ch] = (float)tg;
  if (dbeta) dbeta[ch] = (float)tb;
}

static unsigned blocks_for(int64_t count) {
  return (unsigned)((count + CU_THREADS - 1) / CU_THREADS);
}

static msc_status lnorm_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                mbk_tensor *const *out) {
  (void)training; /* nothing to save: backward recomputes the statistics */
  cu_lnorm *op = (cu_lnorm *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->dims, "layernorm", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 1, op->c_dims, "layernorm", "gamma"));
  CU_CHECK(cu_tensor_expect(in[2], 1, op->c_dims, "layernorm", "beta"));
  CU_CHECK(cu_tensor_set(ctx, out[0], op->ndim, op->dims));
  k_ln_fwd<<<blocks_for(op->n * op->hw), CU_THREADS, 0, ctx->stream>>>(
      in[0]->data, in[1]->data, in[2]->data, op->n, op->c, op->hw, base->desc.u.ln.eps,
      out[0]->data);
  CU_LAUNCHED("layernorm forward");
  return MSC_OK;
}

static msc_status lnorm_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_lnorm *op = (cu_lnorm *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->dims, "layernorm", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 1, op->c_dims, "layernorm", "gamma"));
  CU_CHECK(cu_tensor_expect(in[2], op->ndim, op->dims, "layernorm", "dy"));
  if (!out[0] && !out[1] && !out[2]) return MSC_OK;
  const int64_t pos = op->n * op->hw;
  CU_CHECK(cu_buf_ensure(ctx, &op->stats, 2 * (size_t)pos * sizeof(double)));
  if (out[0]) CU_CHECK(cu_tensor_set(ctx, out[0], op->ndim, op->dims));
  for (int k = 1; k < 3; ++k)
    if (out[k]) CU_CHECK(cu_tensor_set(ctx, out[k], 1, op->c_dims));
  double *stats = (double *)op->stats.p;
  k_ln_bwd_dx<<<blocks_for(pos), CU_THREADS, 0, ctx->stream>>>(
      in[0]->data, in[1]->data, in[2]->data, op->n, op->c, op->hw, base->desc.u.ln.eps, stats,
      out[0] ? out[0]->data : NULL);
  CU_LAUNCHED("layernorm backward");
  if (!out[1] && !out[2]) return MSC_OK;
  k_ln_bwd_params<<<(unsigned)op->c, CU_THREADS, 0, ctx->stream>>>(
      in[0]->data, in[2]->data, stats, op->n, op->c, op->hw, out[1] ? out[1]->data : NULL,
      out[2] ? out[2]->data : NULL);
  CU_LAUNCHED("layernorm backward (parameters)");
  return MSC_OK;
}

static void lnorm_destroy(mbk_op *base) {
  cu_lnorm *op = (cu_lnorm *)base;
  cu_buf_release(base->ctx, &op->stats);
  free(op);
}

static const mbk_op_vt lnorm_vt = {"layernorm", lnorm_forward, lnorm_backward, lnorm_destroy};

msc_status cu_layernorm_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, &lnorm_vt, sizeof(cu_lnorm), &base));
  cu_lnorm *op = (cu_lnorm *)base;
  op->ndim = mbk_op_in_dims(d, op->dims);
  op->c_dims[0] = d->c;
  op->n = d->n;
  op->c = d->c;
  op->hw = d->ndim == 4 ? d->h * d->w : 1;
  *out = base;
  return MSC_OK;
}
