/*
 * cuda_bnorm.cu — batch normalisation over N, H, W per channel (or over N for N×C),
 * optionally fused with the ReLU that follows it, as own kernels.
 *
 * Why not cuDNN: its fused BN+activation exists only for NHWC half precision, and its
 * plain NCHW path would need the ReLU mask kept separately anyway; two small kernels per
 * pass (a per-channel reduction, then an element-wise pass) do the whole job, with the
 * statistics in double and PyTorch's running-statistics rule spelled out here.
 *
 * Training forward saves the batch mean and 1/sqrt(var + eps) (double) and, with the
 * fused ReLU, a byte mask of y > 0, which backward needs because beta is not among its
 * inputs. Reductions run one block per channel with a fixed tree, so results are the
 * same on every run.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

typedef struct cu_bnorm {
  mbk_op base;
  int32_t ndim;
  int64_t x_dims[MBK_MAX_DIMS], c_dims[1];
  int64_t n, c, s; /* x viewed as [N, C, S] */
  cu_buf stats;    /* double[4C]: mean, inv_std, then backward's Σg, Σg·x̂ */
  cu_buf mask;     /* uint8 per element: y > 0 (fused ReLU only) */
} cu_bnorm;

/* Sums of one channel over a block: Σ a and Σ b in double, written by thread 0. */
__device__ void block_sum2(double a, double b, double *out_a, double *out_b) {
  __shared__ double sa[CU_THREADS], sb[CU_THREADS];
  sa[threadIdx.x] = a;
  sb[threadIdx.x] = b;
  __syncthreads();
  for (int w = CU_THREADS / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) {
      sa[threadIdx.x] += sa[threadIdx.x + w];
      sb[threadIdx.x] += sb[threadIdx.x + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    *out_a = sa[0];
    *out_b = sb[0];
  }
}

/* Batch statistics of channel blockIdx.x; updates the running statistics in place. */
__global__ void k_bn_stats(const float *x, int64_t n, int64_t c, int64_t s, float eps,
                           float momentum, double *stats, float *rmean, float *rvar) {
  const int64_t ch = blockIdx.x, total = n * s;
  double sum = 0.0, sq = 0.0;
  for (int64_t i = threadIdx.x; i < total; i += blockDim.x) {
    int64_t ni = i / s, si = i - ni * s;
    double v = (double)x[(ni * c + ch) * s + si];
    sum += v;
    sq += v * v;
  }
  double tsum = 0.0, tsq = 0.0;
  block_sum2(sum, sq, &tsum, &tsq);
  if (threadIdx.x != 0) return;
  double mean = tsum / (double)total;
  double var = tsq / (double)total - mean * mean;
  if (var < 0.0) var = 0.0;
  stats[ch] = mean;
  stats[c + ch] = 1.0 / sqrt(var + (double)eps);
  /* PyTorch's rule, in float like the CPU backend: the unbiased variance for running. */
  float m = momentum, unbias = (float)((double)total / (double)(total - 1));
  rmean[ch] = (1.0f - m) * rmean[ch] + m * (float)mean;
  rvar[ch] = (1.0f - m) * rvar[ch] + m * (float)var * unbias;
}

/* y = gamma (x − mean) inv_std + beta, then ReLU with a mask when mask is not NULL. */
__global__ void k_bn_apply_train(const float *x, const float *gamma, const float *beta,
                                 const double *stats, int64_t count, int64_t c, int64_t s,
                                 int32_t relu, float *y, uint8_t *mask) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ch = (i / s) % c;
    float v = (float)(((double)x[i] - stats[ch]) * stats[c + ch]) * gamma[ch] + beta[ch];
    if (relu) {
      uint8_t pos = v > 0.f;
      if (mask) mask[i] = pos;
      v = pos ? v : 0.f;
    }
    y[i] = v;
  }
}

__global__ void k_bn_apply_infer(const float *x, const float *gamma, const float *beta,
                                 const float *rmean, const float *rvar, float eps,
                                 int64_t count, int64_t c, int64_t s, int32_t relu, float *y) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ch = (i / s) % c;
    float inv = 1.0f / sqrtf(rvar[ch] + eps);
    float v = gamma[ch] * (x[i] - rmean[ch]) * inv + beta[ch];
    y[i] = relu && !(v > 0.f) ? 0.f : v;
  }
}

/* Σ g and Σ g·x̂ of channel blockIdx.x, g = dy masked by the ReLU. */
__global__ void k_bn_bwd_sums(const float *x, const float *dy, const uint8_t *mask, int64_t n,
                              int64_t c, int64_t s, double *stats, float *dgamma,
                              float *dbeta) {
  const int64_t ch = blockIdx.x, total = n * s;
  const double mean = stats[ch], inv = stats[c + ch];
  double sg = 0.0, sgx = 0.0;
  for (int64_t i = threadIdx.x; i < total; i += blockDim.x) {
    int64_t ni = i / s, si = i - ni * s, at = (ni * c + ch) * s + si;
    double g = (mask && !mask[at]) ? 0.0 : (double)dy[at];
    sg += g;
    sgx += g * ((double)x[at] - mean) * inv;
  }
  double tg = 0.0, tgx = 0.0;
  block_sum2(sg, sgx, &tg, &tgx);
  if (threadIdx.x != 0) return;
  stats[2 * c + ch] = tg;
  stats[3 * c + ch] = tgx;
  if (dgamma) dgamma[ch] = (float)tgx;
  if (dbeta) dbeta[ch] = (float)tg;
}

/* dx = gamma·inv_std/M · (M·g − Σg − x̂·Σg·x̂). */
__global__ void k_bn_bwd_dx(const float *x, const float *dy, const uint8_t *mask,
                            const float *gamma, const double *stats, int64_t count, int64_t c,
                            int64_t s, int64_t m, float *dx) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ch = (i / s) % c;
    double mean = stats[ch], inv = stats[c + ch], sg = stats[2 * c + ch],
           sgx = stats[3 * c + ch];
    double g = (mask && !mask[i]) ? 0.0 : (double)dy[i];
    double xhat = ((double)x[i] - mean) * inv;
    dx[i] = (float)((double)gamma[ch] * inv / (double)m * ((double)m * g - sg - xhat * sgx));
  }
}

static msc_status bnorm_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                mbk_tensor *const *out) {
  cu_bnorm *op = (cu_bnorm *)base;
  mbk_ctx *ctx = base->ctx;
  static const char *const names[5] = {"x", "gamma", "beta", "running_mean", "running_var"};
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->x_dims, "batchnorm", names[0]));
  for (int i = 1; i < 5; ++i)
    CU_CHECK(cu_tensor_expect(in[i], 1, op->c_dims, "batchnorm", names[i]));
  const int64_t m = op->n * op->s, count = m * op->c;
  const mbk_op_desc *d = &base->desc;
  if (training && m < 2)
    return CU_FAIL(MSC_E_SHAPE,
                   "cuda: batchnorm: training needs more than one value per "
                   "channel (N·H·W = %lld)",
                   (long long)m);
  CU_CHECK(cu_tensor_set(ctx, out[0], op->ndim, op->x_dims));
  if (!training) {
    k_bn_apply_infer<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(
        in[0]->data, in[1]->data, in[2]->data, in[3]->data, in[4]->data, d->u.bn.eps, count,
        op->c, op->s, d->u.bn.relu, out[0]->data);
    CU_LAUNCHED("batchnorm forward");
    return MSC_OK;
  }
  CU_CHECK(cu_buf_ensure(ctx, &op->stats, 4 * (size_t)op->c * sizeof(double)));
  uint8_t *mask = NULL;
  if (d->u.bn.relu) {
    CU_CHECK(cu_buf_ensure(ctx, &op->mask, (size_t)count));
    mask = (uint8_t *)op->mask.p;
  }
  double *stats = (double *)op->stats.p;
  k_bn_stats<<<(unsigned)op->c, CU_THREADS, 0, ctx->stream>>>(in[0]->data, op->n, op->c, op->s,
                                                              d->u.bn.eps, d->u.bn.momentum,
                                                              stats, in[3]->data, in[4]->data);
  CU_LAUNCHED("batchnorm statistics");
  k_bn_apply_train<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(
      in[0]->data, in[1]->data, in[2]->data, stats, count, op->c, op->s, d->u.bn.relu,
      out[0]->data, mask);
  CU_LAUNCHED("batchnorm forward");
  return MSC_OK;
}

static msc_status bnorm_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_bnorm *op = (cu_bnorm *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->x_dims, "batchnorm", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 1, op->c_dims, "batchnorm", "gamma"));
  CU_CHECK(cu_tensor_expect(in[2], op->ndim, op->x_dims, "batchnorm", "dy"));
  if (!base->trained || !op->stats.p)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                   "cuda: batchnorm backward needs a training forward on the same x first");
  const int64_t m = op->n * op->s, count = m * op->c;
  for (int i = 1; i < 3; ++i)
    if (out[i]) CU_CHECK(cu_tensor_set(ctx, out[i], 1, op->c_dims));
  CU_CHECK(cu_tensor_set(ctx, out[0], op->ndim, op->x_dims));
  const uint8_t *mask = base->desc.u.bn.relu ? (const uint8_t *)op->mask.p : NULL;
  double *stats = (double *)op->stats.p;
  k_bn_bwd_sums<<<(unsigned)op->c, CU_THREADS, 0, ctx->stream>>>(
      in[0]->data, in[2]->data, mask, op->n, op->c, op->s, stats, out[1] ? out[1]->data : NULL,
      out[2] ? out[2]->data : NULL);
  CU_LAUNCHED("batchnorm backward sums");
  k_bn_bwd_dx<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(
      in[0]->data, in[2]->data, mask, in[1]->data, stats, count, op->c, op->s, m, out[0]->data);
  CU_LAUNCHED("batchnorm backward");
  return MSC_OK;
}

static void bnorm_destroy(mbk_op *base) {
  cu_bnorm *op = (cu_bnorm *)base;
  cu_buf_release(base->ctx, &op->stats);
  cu_buf_release(base->ctx, &op->mask);
  free(op);
}

static const mbk_op_vt bnorm_vt = {"batchnorm", bnorm_forward, bnorm_backward, bnorm_destroy};

msc_status cu_bnorm_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  /* Synchronised statistics (API 13, train.sync_bn) are CPU-only for now (docs/cuda.md). */
  if (d->u.bn.reduce)
    return CU_FAIL(MSC_E_UNSUPPORTED,
                   "cuda: batchnorm with synchronised statistics (train.sync_bn = 1, "
                   "docs/distributed.md) is not implemented: train with train.sync_bn = 0 "
                   "or on the cpu backend");
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, &bnorm_vt, sizeof(cu_bnorm), &base));
  cu_bnorm *op = (cu_bnorm *)base;
  op->ndim = mbk_op_in_dims(d, op->x_dims);
  op->c_dims[0] = d->c;
  op->n = d->n;
  op->c = d->c;
  op->s = d->ndim == 4 ? d->h * d->w : 1;
  *out = base;
  return MSC_OK;
}
