/*
 * cuda_eltwise.cu — ReLU and element-wise addition, plus the small kernels the other
 * ops share (per-channel sums for bias gradients, bias addition) and the probe's check
 * that this build has machine code or PTX the device can run.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cuda_internal.h"

/* Grid-stride loops: a grid of at most this many blocks covers any count. */
#define MAX_BLOCKS 65536

unsigned cu_grid(int64_t count) {
  int64_t b = (count + CU_THREADS - 1) / CU_THREADS;
  if (b < 1) b = 1;
  return (unsigned)(b < MAX_BLOCKS ? b : MAX_BLOCKS);
}

#define GRID_STRIDE(i, count)                                                                  \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (count);                \
       i += (int64_t)gridDim.x * blockDim.x)

/* ---- shared kernels ------------------------------------------------------------------ */

__global__ void k_noop(int *p) {
  if (p) *p = 0;
}

msc_status cu_kernel_image_check(char *why, size_t why_len) {
  cudaFuncAttributes attr;
  cudaError_t e = cudaFuncGetAttributes(&attr, k_noop);
  if (e == cudaSuccess) return MSC_OK;
  cudaGetLastError();
  cudaDeviceProp prop;
  int dev = 0;
  cudaGetDevice(&dev);
  if (why && why_len) {
    if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
      snprintf(why, why_len,
               "%s (compute capability %d.%d) cannot run this build of the module: %s "
               "(rebuild with CMAKE_CUDA_ARCHITECTURES=%d%d)",
               prop.name, prop.major, prop.minor, cudaGetErrorString(e), prop.major,
               prop.minor);
    else
      snprintf(why, why_len, "the device cannot run this build of the module: %s",
               cudaGetErrorString(e));
  }
  return MSC_E_BACKEND_UNAVAILABLE;
}

/* One block per channel; each thread sums a strided share in double, then a fixed
 * tree: the result does not depend on timing. */
__global__ void k_channel_sum(const float *x, int64_t n, int64_t c, int64_t s, float *out) {
  __shared__ double part[CU_THREADS];
  const int64_t ch = blockIdx.x, total = n * s;
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < total; i += blockDim.x) {
    int64_t ni = i / s, si = i - ni * s;
    acc += (double)x[(ni * c + ch) * s + si];
  }
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int w = CU_THREADS / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[ch] = (float)part[0];
}

msc_status cu_channel_sum(mbk_ctx *ctx, const float *x, int64_t n, int64_t c, int64_t s,
                          float *out) {
  k_channel_sum<<<(unsigned)c, CU_THREADS, 0, ctx->stream>>>(x, n, c, s, out);
  CU_LAUNCHED("channel sum");
  return MSC_OK;
}

__global__ void k_add_bias(float *y, const float *b, int64_t count, int64_t c, int64_t s) {
  GRID_STRIDE(i, count) y[i] += b[(i / s) % c];
}

msc_status cu_add_bias(mbk_ctx *ctx, float *y, const float *b, int64_t n, int64_t c,
                       int64_t s) {
  int64_t count = n * c * s;
  k_add_bias<<<cu_grid(count), CU_THREADS, 0, ctx->stream>>>(y, b, count, c, s);
  CU_LAUNCHED("bias");
  return MSC_OK;
}

msc_status cu_copy(mbk_ctx *ctx, void *dst, const void *src, size_t bytes) {
  if (dst == src || bytes == 0) return MSC_OK;
  CU_RT(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx->stream), "copy");
  return MSC_OK;
}

/* ---- ReLU and add -------------------------------------------------------------------- */

typedef struct cu_elt {
  mbk_op base;
  int32_t ndim;
  int64_t dims[MBK_MAX_DIMS];
} cu_elt;

static void elt_destroy(mbk_op *base) {
  free(base);
}

__global__ void k_relu_fwd(const float *x, float *y, int64_t count) {
  GRID_STRIDE(i, count) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

__global__ void k_relu_bwd(const float *x, const float *dy, float *dx, int64_t count) {
  GRID_STRIDE(i, count) dx[i] = x[i] > 0.f ? dy[i] : 0.f;
}

__global__ void k_add(const float *a, const float *b, float *y, int64_t count) {
  GRID_STRIDE(i, count) y[i] = a[i] + b[i];
}

static msc_status relu_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                               mbk_tensor *const *out) {
  cu_elt *op = (cu_elt *)base;
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->dims, "relu", "x"));
  CU_CHECK(cu_tensor_set(base->ctx, out[0], op->ndim, op->dims));
  int64_t count = cu_numel(op->ndim, op->dims);
  k_relu_fwd<<<cu_grid(count), CU_THREADS, 0, base->ctx->stream>>>(in[0]->data, out[0]->data,
                                                                   count);
  CU_LAUNCHED("relu forward");
  return MSC_OK;
}

static msc_status relu_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_elt *op = (cu_elt *)base;
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->dims, "relu", "x"));
  CU_CHECK(cu_tensor_expect(in[1], op->ndim, op->dims, "relu", "dy"));
  CU_CHECK(cu_tensor_set(base->ctx, out[0], op->ndim, op->dims));
  int64_t count = cu_numel(op->ndim, op->dims);
  k_relu_bwd<<<cu_grid(count), CU_THREADS, 0, base->ctx->stream>>>(in[0]->data, in[1]->data,
                                                                   out[0]->data, count);
  CU_LAUNCHED("relu backward");
  return MSC_OK;
}

static msc_status add_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                              mbk_tensor *const *out) {
  cu_elt *op = (cu_elt *)base;
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->dims, "add", "a"));
  CU_CHECK(cu_tensor_expect(in[1], op->ndim, op->dims, "add", "b"));
  CU_CHECK(cu_tensor_set(base->ctx, out[0], op->ndim, op->dims));
  int64_t count = cu_numel(op->ndim, op->dims);
  k_add<<<cu_grid(count), CU_THREADS, 0, base->ctx->stream>>>(in[0]->data, in[1]->data,
                                                              out[0]->data, count);
  CU_LAUNCHED("add forward");
  return MSC_OK;
}

/* The gradient of a sum reaches both addends unchanged. */
static msc_status add_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_elt *op = (cu_elt *)base;
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->dims, "add", "dy"));
  size_t bytes = (size_t)cu_numel(op->ndim, op->dims) * sizeof(float);
  for (int i = 0; i < 2; ++i) {
    if (!out[i]) continue;
    CU_CHECK(cu_tensor_set(base->ctx, out[i], op->ndim, op->dims));
    CU_CHECK(cu_copy(base->ctx, out[i]->data, in[0]->data, bytes));
  }
  return MSC_OK;
}

static const mbk_op_vt relu_vt = {"relu", relu_forward, relu_backward, elt_destroy};
static const mbk_op_vt add_vt = {"add", add_forward, add_backward, elt_destroy};

static msc_status elt_create(mbk_ctx *ctx, const mbk_op_desc *d, const mbk_op_vt *vt,
                             mbk_op **out) {
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, vt, sizeof(cu_elt), &base));
  cu_elt *op = (cu_elt *)base;
  op->ndim = mbk_op_in_dims(d, op->dims);
  *out = base;
  return MSC_OK;
}

msc_status cu_relu_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return elt_create(ctx, d, &relu_vt, out);
}

msc_status cu_add_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  /* Stochastic depth's per-sample scale (API 12) is a ConvNeXt op, as those of API 10. */
  if (d->u.add.row_scale)
    return CU_FAIL(MSC_E_UNSUPPORTED,
                   "cuda: add with a per-sample scale (row_scale, API 12: stochastic depth "
                   "of ConvNeXt blocks) is not supported by the cuda backend: use backend cpu");
  return elt_create(ctx, d, &add_vt, out);
}
