/*
 * cuda_grn.cu — ConvNeXt-V2's Global Response Normalisation (API 10, MBK_OP_GRN; backend.h)
 * on NCHW, as backends/cpu/cpu_grn.c: G[n,c] = ‖x[n,c,:,:]‖₂, D[n] = mean_c G[n,·] + eps,
 * y = γ[c]·x·G[n,c]/D[n] + β[c] + x.
 *
 * Own kernels in small steps, each obviously one formula: one block per (n, c) reduces
 * over H·W in a fixed tree (G, and in backward s = Σ dy·x and Σ dy), one thread per sample
 * sums over the channels (D, and in backward Σ_c γ·s·G), one thread per element applies,
 * one thread per channel sums over the batch (dγ, dβ). Everything reduced is double.
 * Backward recomputes G from x (no training forward):
 *   ∂L/∂G[n,k] = γ[k]·s[n,k]/D − (Σ_c γ[c]·s[n,c]·G[n,c])/(C·D²),
 *   dx = dy·(1 + γ·G/D) + ∂L/∂G·x/G (0 where G = 0),
 *   dγ[c] = Σ_n s[n,c]·G[n,c]/D[n],  dβ[c] = Σ dy.
 */
#include <math.h>
#include <stdlib.h>

#include "cuda_internal.h"

typedef struct cu_grn {
  mbk_op base;
  int64_t dims[MBK_MAX_DIMS], c_dims[1];
  int64_t n, c, hw;
  cu_buf red; /* double: G, s, Σdy per (n, c) (3·N·C), then D and Σ_c γ·s·G per n (2·N) */
} cu_grn;

/* Per (n, c) = blockIdx.x: G, and with dy also Σ dy·x and Σ dy. */
__global__ void k_grn_reduce(const float *x, const float *dy, int64_t nc, int64_t hw,
                             double *red) {
  const int64_t k = blockIdx.x;
  const float *xk = x + k * hw;
  double sq = 0.0, sdx = 0.0;
  for (int64_t j = threadIdx.x; j < hw; j += blockDim.x) {
    sq += (double)xk[j] * (double)xk[j];
    if (dy) sdx += (double)dy[k * hw + j] * (double)xk[j];
  }
  double tsq = 0.0, tsdx = 0.0;
  cu_block_sum2(sq, sdx, &tsq, &tsdx);
  if (dy) {
    double sb = 0.0;
    for (int64_t j = threadIdx.x; j < hw; j += blockDim.x) sb += (double)dy[k * hw + j];
    double tsb = 0.0, unused = 0.0;
    __syncthreads(); /* cu_block_sum2's shared arrays are reused */
    cu_block_sum2(sb, 0.0, &tsb, &unused);
    if (threadIdx.x == 0) {
      red[nc + k] = tsdx;
      red[2 * nc + k] = tsb;
    }
  }
  if (threadIdx.x == 0) red[k] = sqrt(tsq);
}

/* Per sample i: D = mean_c G + eps, and with s the sum Σ_c γ·s·G. */
__global__ void k_grn_per_sample(const float *gamma, int64_t n, int64_t c, float eps,
                                 int32_t with_s, double *red) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t nc = n * c;
  double m = 0.0, ag = 0.0;
  for (int64_t k = 0; k < c; ++k) {
    m += red[i * c + k];
    if (with_s) ag += (double)gamma[k] * red[nc + i * c + k] * red[i * c + k];
  }
  red[3 * nc + i] = m / (double)c + (double)eps;
  red[3 * nc + n + i] = ag;
}

__global__ void k_grn_fwd(const float *x, const float *gamma, const float *beta,
                          const double *red, int64_t n, int64_t c, int64_t hw, float *y) {
  const int64_t count = n * c * hw;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < count;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = e / hw, ch = k % c, i = k / c;
    const double nx = red[k] / red[3 * n * c + i];
    y[e] = (float)((double)x[e] * (1.0 + (double)gamma[ch] * nx) + (double)beta[ch]);
  }
}

__global__ void k_grn_bwd_dx(const float *x, const float *gamma, const float *dy,
                             const double *red, int64_t n, int64_t c, int64_t hw, float *dx) {
  const int64_t count = n * c * hw, nc = n * c;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < count;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = e / hw, ch = k % c, i = k / c;
    const double g = red[k], s = red[nc + k], d = red[3 * nc + i], ag = red[3 * nc + n + i];
    const double dg = (double)gamma[ch] * s / d - ag / ((double)c * d * d);
    const double direct = 1.0 + (double)gamma[ch] * g / d;
    const double via = g > 0.0 ? dg / g : 0.0;
    dx[e] = (float)((double)dy[e] * direct + via * (double)x[e]);
  }
}

/* Per channel: dγ = Σ_n s·G/D, dβ = Σ_n Σdy (either may be NULL). */
__global__ void k_grn_bwd_params(const double *red, int64_t n, int64_t c, float *dgamma,
                                 float *dbeta) {
  const int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const int64_t nc = n * c;
  double sg = 0.0, sb = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = i * c + ch;
    sg += red[nc + k] * red[k] / red[3 * nc + i];
    sb += red[2 * nc + k];
  }
  if (dgamma) dgamma[ch] = (float)sg;
  if (dbeta) dbeta[ch] = (float)sb;
}

static unsigned blocks_for(int64_t count) {
  return (unsigned)((count + CU_THREADS - 1) / CU_THREADS);
}

/* G (and with dy the backward sums) into op->red. */
static msc_status reduce(cu_grn *op, const float *x, const float *dy, const float *gamma) {
  mbk_ctx *ctx = op->base.ctx;
  const int64_t nc = op->n * op->c;
  CU_CHECK(cu_buf_ensure(ctx, &op->red, (size_t)(3 * nc + 2 * op->n) * sizeof(double)));
  double *red = (double *)op->red.p;
  k_grn_reduce<<<(unsigned)nc, CU_THREADS, 0, ctx->stream>>>(x, dy, nc, op->hw, red);
  CU_LAUNCHED("grn norms");
  k_grn_per_sample<<<blocks_for(op->n), CU_THREADS, 0, ctx->stream>>>(
      gamma, op->n, op->c, op->base.desc.u.grn.eps, dy != NULL, red);
  CU_LAUNCHED("grn per-sample sums");
  return MSC_OK;
}

static msc_status grn_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                              mbk_tensor *const *out) {
  (void)training; /* nothing to save */
  cu_grn *op = (cu_grn *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->dims, "grn", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 1, op->c_dims, "grn", "gamma"));
  CU_CHECK(cu_tensor_expect(in[2], 1, op->c_dims, "grn", "beta"));
  CU_CHECK(reduce(op, in[0]->data, NULL, in[1]->data));
  CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->dims));
  const int64_t count = op->n * op->c * op->hw;
  k_grn_fwd<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(
      in[0]->data, in[1]->data, in[2]->data, (const double *)op->red.p, op->n, op->c, op->hw,
      out[0]->data);
  CU_LAUNCHED("grn forward");
  return MSC_OK;
}

static msc_status grn_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_grn *op = (cu_grn *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->dims, "grn", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 1, op->c_dims, "grn", "gamma"));
  CU_CHECK(cu_tensor_expect(in[2], 4, op->dims, "grn", "dy"));
  if (!out[0] && !out[1] && !out[2]) return MSC_OK;
  CU_CHECK(reduce(op, in[0]->data, in[2]->data, in[1]->data));
  const double *red = (const double *)op->red.p;
  if (out[0]) {
    CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->dims));
    const int64_t count = op->n * op->c * op->hw;
    k_grn_bwd_dx<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(
        in[0]->data, in[1]->data, in[2]->data, red, op->n, op->c, op->hw, out[0]->data);
    CU_LAUNCHED("grn backward");
  }
  if (!out[1] && !out[2]) return MSC_OK;
  for (int k = 1; k < 3; ++k)
    if (out[k]) CU_CHECK(cu_tensor_set(ctx, out[k], 1, op->c_dims));
  k_grn_bwd_params<<<blocks_for(op->c), CU_THREADS, 0, ctx->stream>>>(
      red, op->n, op->c, out[1] ? out[1]->data : NULL, out[2] ? out[2]->data : NULL);
  CU_LAUNCHED("grn backward (parameters)");
  return MSC_OK;
}

static void grn_destroy(mbk_op *base) {
  cu_grn *op = (cu_grn *)base;
  cu_buf_release(base->ctx, &op->red);
  free(op);
}

static const mbk_op_vt grn_vt = {"grn", grn_forward, grn_backward, grn_destroy};

msc_status cu_grn_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, &grn_vt, sizeof(cu_grn), &base));
  cu_grn *op = (cu_grn *)base;
  mbk_op_in_dims(d, op->dims);
  op->c_dims[0] = d->c;
  op->n = d->n;
  op->c = d->c;
  op->hw = d->h * d->w;
  *out = base;
  return MSC_OK;
}
