/*
 * cpu_bnorm_sync.c — batch normalisation with synchronised statistics (API 13,
 * u.bn.reduce; the contract is at BATCHNORM in lib/contract/backend.h): the per-channel
 * sums of a training forward and its backward go through the core's reduction, so that
 * every process of a data-parallel group normalises with the statistics of the global
 * batch (PyTorch's SyncBatchNorm, docs/distributed.md).
 *
 * oneDNN's batch norm computes its statistics and its backward sums inside one
 * primitive, with no way to finish them elsewhere, so this op is plain loops over the
 * plain float32 layout (sums in double, one channel per OpenMP iteration). cpu_bnorm.c
 * makes it only when reduce is set: local BatchNorm keeps oneDNN's kernels. Inference
 * needs no reduction and runs through the same loops with the running statistics.
 *
 * Training forward saves the global mean, 1/√(var + eps) and count, and with the fused
 * ReLU a byte mask of y > 0 (backward's inputs have no beta to recompute it from).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

typedef struct cpu_bnsync {
  mbk_op base;
  int32_t ndim;
  int64_t x_dims[MBK_MAX_DIMS], c_dims[1];
  int64_t n, c, s;       /* x viewed as [N, C, S] */
  double *buf;           /* 2C + 1: the sums handed to reduce */
  double *mean, *inv;    /* C each: the global batch's mean and 1/√(var + eps) */
  double count;          /* the global batch's values per channel (M) */
  uint8_t *mask;         /* N·C·S: y > 0 (fused ReLU only) */
  cpu_reorder r_x, r_dy; /* x and dy in the plain float32 layout */
} cpu_bnsync;

static void bnsync_destroy(mbk_op *base) {
  cpu_bnsync *op = (cpu_bnsync *)base;
  free(op->buf);
  free(op->mean);
  free(op->inv);
  free(op->mask);
  cpu_reorder_destroy(&op->r_x);
  cpu_reorder_destroy(&op->r_dy);
  free(op);
}

/* t's contents in the plain float32 layout (t itself when it is plain already). */
static msc_status plain_view(cpu_bnsync *op, const mbk_tensor *t, cpu_reorder *r,
                             const float **data) {
  dnnl_memory_desc_t plain;
  dnnl_memory_t m;
  void *p = NULL;
  CPU_CHECK(cpu_plain_md(op->ndim, op->x_dims, &plain));
  CPU_CHECK(cpu_view_as(op->base.ctx, t, &plain, r, &m));
  CPU_TRY(dnnl_memory_get_data_handle(m, &p), "batchnorm input");
  *data = p;
  return MSC_OK;
}

/* buf = {local count, Σ(x − K)[c], Σ(x − K)²[c]}, K = the running mean (backend.h). */
static void local_sums(cpu_bnsync *op, const float *x, const float *shift) {
  const int64_t N = op->n, C = op->c, S = op->s;
  double *buf = op->buf;
  buf[0] = (double)(N * S);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const double k = shift[c];
    double s1 = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < N; ++i) {
      const float *xc = x + (size_t)(i * C + c) * (size_t)S;
      for (int64_t j = 0; j < S; ++j) {
        const double v = (double)xc[j] - k;
        s1 += v;
        s2 += v * v;
      }
    }
    buf[1 + c] = s1;
    buf[1 + C + c] = s2;
  }
}

/* y = γ·(x − mean)·inv + β, then ReLU (recording the mask when mask is not NULL). */
static void apply(const cpu_bnsync *op, const float *x, const double *mean, const double *inv,
                  const float *gamma, const float *beta, float *y, uint8_t *mask) {
  const int64_t N = op->n, C = op->c, S = op->s;
  const int relu = op->base.desc.u.bn.relu != 0;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < N * C; ++k) {
    const int64_t c = k % C;
    const size_t at = (size_t)k * (size_t)S;
    for (int64_t j = 0; j < S; ++j) {
      float v = (float)(((double)x[at + j] - mean[c]) * inv[c]) * gamma[c] + beta[c];
      if (relu) {
        const uint8_t pos = v > 0.f;
        if (mask) mask[at + j] = pos;
        v = pos ? v : 0.f;
      }
      y[at + j] = v;
    }
  }
}

static msc_status bnsync_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                 mbk_tensor *const *out) {
  cpu_bnsync *op = (cpu_bnsync *)base;
  static const char *const names[5] = {"x", "gamma", "beta", "running_mean", "running_var"};
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->x_dims, "batchnorm", names[0]));
  for (int i = 1; i < 5; ++i)
    CPU_CHECK(cpu_tensor_expect(in[i], 1, op->c_dims, "batchnorm", names[i]));
  const mbk_op_desc *d = &base->desc;
  const int64_t C = op->c;
  /* 1-D tensors are plain float32 (cpu_tensor.c). */
  const float *x, *gamma = in[1]->data, *beta = in[2]->data;
  float *rm = in[3]->data, *rv = in[4]->data;
  CPU_CHECK(plain_view(op, in[0], &op->r_x, &x));
  dnnl_memory_desc_t plain;
  CPU_CHECK(cpu_plain_md(op->ndim, op->x_dims, &plain));
  cpu_ctx_threads(base->ctx);
  if (!training) {
    for (int64_t c = 0; c < C; ++c) {
      op->mean[c] = rm[c];
      op->inv[c] = 1.0 / sqrt((double)rv[c] + (double)d->u.bn.eps);
    }
    CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->x_dims, &plain));
    apply(op, x, op->mean, op->inv, gamma, beta, out[0]->data, NULL);
    return MSC_OK;
  }
  local_sums(op, x, rm);
  CPU_CHECK(d->u.bn.reduce(d->u.bn.reduce_user, op->buf, 2 * C + 1));
  const double M = op->buf[0];
  if (!(M >= 2.0))
    return CPU_FAIL(MSC_E_SHAPE,
                    "cpu: batchnorm: training needs more than one value per channel in the "
                    "synchronised batch (N·H·W = %.0f over every process)",
                    M);
  for (int64_t c = 0; c < C; ++c) {
    const double e1 = op->buf[1 + c] / M;
    double var = op->buf[1 + C + c] / M - e1 * e1; /* biased; shifted sums keep it exact */
    if (var < 0.0) var = 0.0;
    op->mean[c] = (double)rm[c] + e1;
    op->inv[c] = 1.0 / sqrt(var + (double)d->u.bn.eps);
    op->buf[1 + C + c] = var; /* kept for the running variance below */
  }
  op->count = M;
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->x_dims, &plain));
  apply(op, x, op->mean, op->inv, gamma, beta, out[0]->data, op->mask);
  /* PyTorch's rule with the unbiased global variance, in float as cpu_bnorm.c's. */
  const float m = d->u.bn.momentum, unbias = (float)(M / (M - 1.0));
  for (int64_t c = 0; c < C; ++c) {
    rm[c] = (1.0f - m) * rm[c] + m * (float)op->mean[c];
    rv[c] = (1.0f - m) * rv[c] + m * (float)op->buf[1 + C + c] * unbias;
  }
  in[3]->version++;
  in[4]->version++;
  return MSC_OK;
}

static msc_status bnsync_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cpu_bnsync *op = (cpu_bnsync *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->x_dims, "batchnorm", "x"));
  CPU_CHECK(cpu_tensor_expect(in[1], 1, op->c_dims, "batchnorm", "gamma"));
  CPU_CHECK(cpu_tensor_expect(in[2], op->ndim, op->x_dims, "batchnorm", "dy"));
  if (!base->trained)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT,
                    "cpu: batchnorm backward needs a training forward on the same x first");
  const int64_t N = op->n, C = op->c, S = op->s;
  const float *x, *dy, *gamma = in[1]->data;
  CPU_CHECK(plain_view(op, in[0], &op->r_x, &x));
  CPU_CHECK(plain_view(op, in[2], &op->r_dy, &dy));
  const uint8_t *mask = base->desc.u.bn.relu ? op->mask : NULL;
  const double *mean = op->mean, *inv = op->inv;
  double *buf = op->buf;
  cpu_ctx_threads(base->ctx);
  /* Local Σdy' and Σdy'·x̂: dbeta and dgamma, and this process's share of the sums. */
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    double sg = 0.0, sgx = 0.0;
    for (int64_t i = 0; i < N; ++i) {
      const size_t at = (size_t)(i * C + c) * (size_t)S;
      for (int64_t j = 0; j < S; ++j) {
        const double g = mask && !mask[at + j] ? 0.0 : (double)dy[at + j];
        sg += g;
        sgx += g * ((double)x[at + j] - mean[c]) * inv[c];
      }
    }
    buf[c] = sg;
    buf[C + c] = sgx;
  }
  dnnl_memory_desc_t cmd, plain;
  CPU_CHECK(cpu_plain_md(1, op->c_dims, &cmd));
  if (out[1]) {
    CPU_CHECK(cpu_tensor_set(out[1], 1, op->c_dims, &cmd));
    for (int64_t c = 0; c < C; ++c) ((float *)out[1]->data)[c] = (float)buf[C + c];
  }
  if (out[2]) {
    CPU_CHECK(cpu_tensor_set(out[2], 1, op->c_dims, &cmd));
    for (int64_t c = 0; c < C; ++c) ((float *)out[2]->data)[c] = (float)buf[c];
  }
  const mbk_op_desc *d = &base->desc;
  CPU_CHECK(d->u.bn.reduce(d->u.bn.reduce_user, buf, 2 * C));
  CPU_CHECK(cpu_plain_md(op->ndim, op->x_dims, &plain));
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->x_dims, &plain));
  float *dx = out[0]->data;
  const double M = op->count;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < N * C; ++k) {
    const int64_t c = k % C;
    const size_t at = (size_t)k * (size_t)S;
    const double mg = buf[c] / M, mgx = buf[C + c] / M, scale = (double)gamma[c] * inv[c];
    for (int64_t j = 0; j < S; ++j) {
      const double g = mask && !mask[at + j] ? 0.0 : (double)dy[at + j];
      const double xh = ((double)x[at + j] - mean[c]) * inv[c];
      dx[at + j] = (float)(scale * (g - mg - xh * mgx));
    }
  }
  return MSC_OK;
}

static const mbk_op_vt bnsync_vt = {"batchnorm", bnsync_forward, bnsync_backward,
                                    bnsync_destroy};

msc_status cpu_bnorm_sync_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, &bnsync_vt, sizeof(cpu_bnsync), &base));
  cpu_bnsync *op = (cpu_bnsync *)base;
  op->ndim = mbk_op_in_dims(d, op->x_dims);
  op->c_dims[0] = d->c;
  op->n = d->n;
  op->c = d->c;
  op->s = d->ndim == 4 ? d->h * d->w : 1;
  const size_t C = (size_t)d->c;
  op->buf = malloc((2 * C + 1) * sizeof(double));
  op->mean = malloc(C * sizeof(double));
  op->inv = malloc(C * sizeof(double));
  if (d->u.bn.relu) op->mask = malloc((size_t)(op->n * op->c * op->s));
  if (!op->buf || !op->mean || !op->inv || (d->u.bn.relu && !op->mask)) {
    bnsync_destroy(base);
    return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: batchnorm (synchronised) op");
  }
  *out = base;
  return MSC_OK;
}
