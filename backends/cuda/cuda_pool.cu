/*
 * cuda_pool.cu — max pooling (ResNet's 3×3 stride-2 stem pool) and global average
 * pooling, as own kernels: both are memory-bound one-pass loops, and doing them here
 * fixes the semantics exactly (padding never wins the max; ties go to the first element
 * of the window in row-major order) instead of depending on cuDNN's choices.
 *
 * Max pooling's training forward saves the argmax of every window (its offset in the
 * H×W plane). Backward gathers rather than scatters: each input element sums the dy of
 * the windows whose argmax it is, in a fixed order, so no atomics and the same bits on
 * every run.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

typedef struct cu_pool {
  mbk_op base;
  int64_t x_dims[MBK_MAX_DIMS], y_dims[MBK_MAX_DIMS];
  cu_buf argmax; /* int32 per output element, from the latest training forward */
} cu_pool;

typedef struct pool_geom {
  int64_t nc, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
} pool_geom;

static pool_geom geometry(const cu_pool *op) {
  const mbk_op_desc *d = &op->base.desc;
  pool_geom g;
  g.nc = d->n * d->c;
  g.h = d->h, g.w = d->w;
  g.oh = op->y_dims[2], g.ow = op->y_dims[3];
  g.kh = d->u.pool.kh, g.kw = d->u.pool.kw;
  g.sh = d->u.pool.sh, g.sw = d->u.pool.sw;
  g.ph = d->u.pool.ph, g.pw = d->u.pool.pw;
  return g;
}

__global__ void k_maxpool_fwd(pool_geom g, const float *x, float *y, int32_t *argmax) {
  const int64_t count = g.nc * g.oh * g.ow;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t ow = i % g.ow, oh = (i / g.ow) % g.oh, p = i / (g.ow * g.oh);
    const float *xp = x + p * g.h * g.w;
    float best = -INFINITY;
    int64_t where = -1;
    for (int64_t a = 0; a < g.kh; ++a) {
      int64_t ih = oh * g.sh - g.ph + a;
      if (ih < 0 || ih >= g.h) continue;
      for (int64_t b = 0; b < g.kw; ++b) {
        int64_t iw = ow * g.sw - g.pw + b;
        if (iw < 0 || iw >= g.w) continue;
        float v = xp[ih * g.w + iw];
        if (where < 0 || v > best) {
          best = v;
          where = ih * g.w + iw;
        }
      }
    }
    y[i] = where < 0 ? 0.f : best;
    if (argmax) argmax[i] = (int32_t)where;
  }
}

__global__ void k_maxpool_bwd(pool_geom g, const float *dy, const int32_t *argmax, float *dx) {
  const int64_t count = g.nc * g.h * g.w;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t iw = i % g.w, ih = (i / g.w) % g.h, p = i / (g.w * g.h);
    int32_t self = (int32_t)(ih * g.w + iw);
    /* Windows that contain (ih, iw): oh·sh − ph <= ih <= oh·sh − ph + kh − 1. */
    int64_t oh0 = ih + g.ph - g.kh + 1, oh1 = (ih + g.ph) / g.sh;
    oh0 = oh0 <= 0 ? 0 : (oh0 + g.sh - 1) / g.sh;
    int64_t ow0 = iw + g.pw - g.kw + 1, ow1 = (iw + g.pw) / g.sw;
    ow0 = ow0 <= 0 ? 0 : (ow0 + g.sw - 1) / g.sw;
    if (oh1 >= g.oh) oh1 = g.oh - 1;
    if (ow1 >= g.ow) ow1 = g.ow - 1;
    const int64_t base = p * g.oh * g.ow;
    float acc = 0.f;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        int64_t o = base + oh * g.ow + ow;
        if (argmax[o] == self) acc += dy[o];
      }
    dx[i] = acc;
  }
}

static msc_status maxpool_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                  mbk_tensor *const *out) {
  cu_pool *op = (cu_pool *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->x_dims, "maxpool", "x"));
  CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->y_dims));
  int64_t count = cu_numel(4, op->y_dims);
  int32_t *argmax = NULL;
  if (training) {
    CU_CHECK(cu_buf_ensure(ctx, &op->argmax, (size_t)count * sizeof(int32_t)));
    argmax = (int32_t *)op->argmax.p;
  }
  k_maxpool_fwd<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(geometry(op), in[0]->data,
                                                                out[0]->data, argmax);
  CU_LAUNCHED("maxpool forward");
  return MSC_OK;
}

static msc_status maxpool_backward(mbk_op *base, mbk_tensor *const *in,
                                   mbk_tensor *const *out) {
  cu_pool *op = (cu_pool *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->y_dims, "maxpool", "dy"));
  if (!base->trained || !op->argmax.p)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                   "cuda: maxpool backward needs a training forward first");
  CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->x_dims));
  int64_t count = cu_numel(4, op->x_dims);
  k_maxpool_bwd<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(
      geometry(op), in[0]->data, (const int32_t *)op->argmax.p, out[0]->data);
  CU_LAUNCHED("maxpool backward");
  return MSC_OK;
}

/* ---- global average pooling ------------------------------------------------------------ */

__global__ void k_gavg_fwd(const float *x, float *y, int64_t planes, int64_t hw) {
  for (int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; p < planes;
       p += (int64_t)gridDim.x * blockDim.x) {
    const float *xp = x + p * hw;
    double s = 0.0;
    for (int64_t i = 0; i < hw; ++i) s += (double)xp[i];
    y[p] = (float)(s / (double)hw);
  }
}

__global__ void k_gavg_bwd(const float *dy, float *dx, int64_t count, int64_t hw) {
  const float inv = 1.0f / (float)hw;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    dx[i] = dy[i / hw] * inv;
}

static msc_status gavg_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                               mbk_tensor *const *out) {
  cu_pool *op = (cu_pool *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->x_dims, "gavgpool", "x"));
  CU_CHECK(cu_tensor_set(ctx, out[0], 2, op->y_dims));
  int64_t planes = op->x_dims[0] * op->x_dims[1], hw = op->x_dims[2] * op->x_dims[3];
  k_gavg_fwd<<<cu_grid(planes), CU_THREADS, 0, ctx->stream>>>(in[0]->data, out[0]->data, planes,
                                                              hw);
  CU_LAUNCHED("gavgpool forward");
  return MSC_OK;
}

static msc_status gavg_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_pool *op = (cu_pool *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 2, op->y_dims, "gavgpool", "dy"));
  if (!base->trained)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT,
                   "cuda: gavgpool backward needs a training forward first");
  CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->x_dims));
  int64_t count = cu_numel(4, op->x_dims), hw = op->x_dims[2] * op->x_dims[3];
  k_gavg_bwd<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(in[0]->data, out[0]->data, count,
                                                             hw);
  CU_LAUNCHED("gavgpool backward");
  return MSC_OK;
}

static void pool_destroy(mbk_op *base) {
  cu_pool *op = (cu_pool *)base;
  cu_buf_release(base->ctx, &op->argmax);
  free(op);
}

static const mbk_op_vt maxpool_vt = {"maxpool", maxpool_forward, maxpool_backward,
                                     pool_destroy};
static const mbk_op_vt gavgpool_vt = {"gavgpool", gavg_forward, gavg_backward, pool_destroy};

static msc_status pool_create(mbk_ctx *ctx, const mbk_op_desc *d, const mbk_op_vt *vt,
                              mbk_op **out) {
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, vt, sizeof(cu_pool), &base));
  cu_pool *op = (cu_pool *)base;
  mbk_op_in_dims(d, op->x_dims);
  mbk_op_out_dims(d, op->y_dims);
  *out = base;
  return MSC_OK;
}

msc_status cu_maxpool_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return pool_create(ctx, d, &maxpool_vt, out);
}

msc_status cu_gavgpool_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return pool_create(ctx, d, &gavgpool_vt, out);
}
