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
 *
 * Synchronised statistics (API 13, u.bn.reduce; the sums are those of backend.h's
 * BATCHNORM and backends/cpu/cpu_bnorm_sync.c): reduce is a host function (the core's
 * all-reduce), so a training forward computes the shifted per-channel sums {m, Σ(x − K),
 * Σ(x − K)²} on the device, copies them to the host (waiting for the stream), calls
 * reduce once, copies the group's sums back, and a kernel per channel turns them into the
 * mean, 1/√(var + eps) and the running statistics; the normalisation is the local one's.
 * Backward reduces its {Σg, Σg·x̂} (dbeta and dgamma are written from the local sums
 * first) the same way, and dx divides by the group's count M.
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
  /* Synchronised statistics (API 13) only: */
  cu_buf sums;  /* double[2C + 1]: the forward's sums, on the device */
  double *host; /* double[2C + 1]: the sums handed to reduce */
  double count; /* the group's values per channel (M) of the latest training forward */
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

/* dx = gamma·inv_std/M · (M·g − Σg − x̂·Σg·x̂), M the values per channel (the group's
 * with synchronised statistics). */
__global__ void k_bn_bwd_dx(const float *x, const float *dy, const uint8_t *mask,
                            const float *gamma, const double *stats, int64_t count, int64_t c,
                            int64_t s, double m, float *dx) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ch = (i / s) % c;
    double mean = stats[ch], inv = stats[c + ch], sg = stats[2 * c + ch],
           sgx = stats[3 * c + ch];
    double g = (mask && !mask[i]) ? 0.0 : (double)dy[i];
    double xhat = ((double)x[i] - mean) * inv;
    dx[i] = (float)((double)gamma[ch] * inv / m * (m * g - sg - xhat * sgx));
  }
}

/* Shifted sums of channel blockIdx.x, K = the running mean: sums[1 + ch] = Σ(x − K),
 * sums[1 + C + ch] = Σ(x − K)² (API 13). */
__global__ void k_bns_sums(const float *x, int64_t n, int64_t c, int64_t s, const float *rmean,
                           double *sums) {
  const int64_t ch = blockIdx.x, total = n * s;
  const double k = rmean[ch];
  double s1 = 0.0, s2 = 0.0;
  for (int64_t i = threadIdx.x; i < total; i += blockDim.x) {
    int64_t ni = i / s, si = i - ni * s;
    double v = (double)x[(ni * c + ch) * s + si] - k;
    s1 += v;
    s2 += v * v;
  }
  double t1 = 0.0, t2 = 0.0;
  block_sum2(s1, s2, &t1, &t2);
  if (threadIdx.x != 0) return;
  sums[1 + ch] = t1;
  sums[1 + c + ch] = t2;
}

/* From the group's sums (M = sums[0]): mean and 1/√(var + eps) into stats, and the
 * running statistics with the unbiased global variance, one thread per channel. */
__global__ void k_bns_finish(const double *sums, int64_t c, float eps, float momentum,
                             double *stats, float *rmean, float *rvar) {
  const int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const double M = sums[0], e1 = sums[1 + ch] / M;
  double var = sums[1 + c + ch] / M - e1 * e1; /* biased; the shift keeps it exact */
  if (var < 0.0) var = 0.0;
  const double mean = (double)rmean[ch] + e1;
  stats[ch] = mean;
  stats[c + ch] = 1.0 / sqrt(var + (double)eps);
  /* In float, as cpu_bnorm_sync.c. */
  float m = momentum, unbias = (float)(M / (M - 1.0));
  rmean[ch] = (1.0f - m) * rmean[ch] + m * (float)mean;
  rvar[ch] = (1.0f - m) * rvar[ch] + m * (float)var * unbias;
}

/* n doubles at dev go through the group's reduce and come back (API 13): the stream is
 * drained first, since reduce reads host memory. */
static msc_status bns_reduce(cu_bnorm *op, double *dev, int64_t n, double first) {
  mbk_ctx *ctx = op->base.ctx;
  const mbk_op_desc *d = &op->base.desc;
  CU_RT(cudaMemcpyAsync(op->host, dev, (size_t)n * sizeof(double), cudaMemcpyDeviceToHost,
                        ctx->stream),
        "batchnorm sums to the host");
  CU_CHECK(cu_sync(ctx, "batchnorm sums to the host"));
  if (first >= 0.0) op->host[0] = first; /* the local count, which no kernel wrote */
  CU_CHECK(d->u.bn.reduce(d->u.bn.reduce_user, op->host, n));
  return cu_upload_small(ctx, dev, op->host, (size_t)n * sizeof(double));
}

/* Training forward with the group's statistics (API 13). */
static msc_status bns_forward(cu_bnorm *op, mbk_tensor *const *in, mbk_tensor *out) {
  mbk_ctx *ctx = op->base.ctx;
  const mbk_op_desc *d = &op->base.desc;
  const int64_t count = op->n * op->s * op->c;
  CU_CHECK(cu_buf_ensure(ctx, &op->stats, 4 * (size_t)op->c * sizeof(double)));
  CU_CHECK(cu_buf_ensure(ctx, &op->sums, (2 * (size_t)op->c + 1) * sizeof(double)));
  uint8_t *mask = NULL;
  if (d->u.bn.relu) {
    CU_CHECK(cu_buf_ensure(ctx, &op->mask, (size_t)count));
    mask = (uint8_t *)op->mask.p;
  }
  double *sums = (double *)op->sums.p, *stats = (double *)op->stats.p;
  k_bns_sums<<<(unsigned)op->c, CU_THREADS, 0, ctx->stream>>>(in[0]->data, op->n, op->c, op->s,
                                                              in[3]->data, sums);
  CU_LAUNCHED("batchnorm synchronised sums");
  CU_CHECK(bns_reduce(op, sums, 2 * op->c + 1, (double)(op->n * op->s)));
  const double M = op->host[0];
  if (!(M >= 2.0))
    return CU_FAIL(MSC_E_SHAPE,
                   "cuda: batchnorm: training needs more than one value per channel in the "
                   "synchronised batch (N·H·W = %.0f over every process)",
                   M);
  op->count = M;
  k_bns_finish<<<cu_grid(op->c), CU_THREADS, 0, ctx->stream>>>(
      sums, op->c, d->u.bn.eps, d->u.bn.momentum, stats, in[3]->data, in[4]->data);
  CU_LAUNCHED("batchnorm synchronised statistics");
  CU_CHECK(cu_tensor_set(ctx, out, op->ndim, op->x_dims));
  k_bn_apply_train<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(
      in[0]->data, in[1]->data, in[2]->data, stats, count, op->c, op->s, d->u.bn.relu,
      out->data, mask);
  CU_LAUNCHED("batchnorm forward");
  return MSC_OK;
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
  if (training && d->u.bn.reduce) return bns_forward(op, in, out[0]);
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
  /* Synchronised (API 13): the group's Σg and Σg·x̂ (stats[2C..4C), backend.h's order),
   * over the group's count; dgamma and dbeta above stay local. */
  double mm = (double)m;
  if (base->desc.u.bn.reduce) {
    CU_CHECK(bns_reduce(op, stats + 2 * op->c, 2 * op->c, -1.0));
    mm = op->count;
  }
  k_bn_bwd_dx<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(in[0]->data, in[2]->data, mask,
                                                              in[1]->data, stats, count, op->c,
                                                              op->s, mm, out[0]->data);
  CU_LAUNCHED("batchnorm backward");
  return MSC_OK;
}

static void bnorm_destroy(mbk_op *base) {
  cu_bnorm *op = (cu_bnorm *)base;
  cu_buf_release(base->ctx, &op->stats);
  cu_buf_release(base->ctx, &op->mask);
  cu_buf_release(base->ctx, &op->sums);
  free(op->host);
  free(op);
}

static const mbk_op_vt bnorm_vt = {"batchnorm", bnorm_forward, bnorm_backward, bnorm_destroy};

msc_status cu_bnorm_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, &bnorm_vt, sizeof(cu_bnorm), &base));
  cu_bnorm *op = (cu_bnorm *)base;
  op->ndim = mbk_op_in_dims(d, op->x_dims);
  op->c_dims[0] = d->c;
  op->n = d->n;
  op->c = d->c;
  op->s = d->ndim == 4 ? d->h * d->w : 1;
  if (d->u.bn.reduce) { /* made here: steady training steps allocate nothing */
    op->host = (double *)malloc((2 * (size_t)d->c + 1) * sizeof(double));
    if (!op->host) {
      bnorm_destroy(base);
      return CU_FAIL(MSC_E_OUT_OF_MEMORY, "cuda: batchnorm (synchronised) op");
    }
  }
  *out = base;
  return MSC_OK;
}
