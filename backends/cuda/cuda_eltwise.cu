/*
 * cuda_eltwise.cu — ReLU, GELU (API 10), element-wise addition with ADD's optional
 * per-sample scale (API 12, stochastic depth), plus the small kernels the other
 * ops share (per-channel sums for bias gradients, bias addition) and the probe's check
 * that this build has machine code or PTX the device can run.
 */
#include <math.h>
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

/* ---- ReLU, GELU and add -------------------------------------------------------------------- */

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

/* GELU's exact form (backend.h: PyTorch's nn.GELU(), oneDNN's gelu_erf on the CPU), in
 * double: y = x/2·(1 + erf(x/√2)); dx = dy·(Φ(x) + x·φ(x)), φ the normal density. */
__global__ void k_gelu_fwd(const float *x, float *y, int64_t count) {
  GRID_STRIDE(i, count) {
    const double v = x[i];
    y[i] = (float)(0.5 * v * (1.0 + erf(v * M_SQRT1_2)));
  }
}

__global__ void k_gelu_bwd(const float *x, const float *dy, float *dx, int64_t count) {
  GRID_STRIDE(i, count) {
    const double v = x[i];
    const double cdf = 0.5 * (1.0 + erf(v * M_SQRT1_2));
    const double pdf = exp(-0.5 * v * v) * (0.5 * M_2_SQRTPI * M_SQRT1_2); /* 1/√(2π) */
    dx[i] = (float)((double)dy[i] * (cdf + v * pdf));
  }
}

/* y = a + s[n]·b (API 12), per = the elements of one sample (the outer dimension). */
__global__ void k_add_scaled(const float *a, const float *b, const float *s, float *y,
                             int64_t count, int64_t per) {
  GRID_STRIDE(i, count) y[i] = a[i] + s[i / per] * b[i];
}

/* db = s[n]·dy (API 12). */
__global__ void k_scale_rows(const float *dy, const float *s, float *db, int64_t count,
                             int64_t per) {
  GRID_STRIDE(i, count) db[i] = s[i / per] * dy[i];
}

/* ReLU and GELU (API 10) share the shape checks; the op type picks the kernel. */
static msc_status act_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                              mbk_tensor *const *out) {
  cu_elt *op = (cu_elt *)base;
  const int gelu = base->desc.type == MBK_OP_GELU;
  const char *name = gelu ? "gelu" : "relu";
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->dims, name, "x"));
  CU_CHECK(cu_tensor_set(base->ctx, out[0], op->ndim, op->dims));
  int64_t count = cu_numel(op->ndim, op->dims);
  if (gelu)
    k_gelu_fwd<<<cu_grid(count), CU_THREADS, 0, base->ctx->stream>>>(in[0]->data, out[0]->data,
                                                                     count);
  else
    k_relu_fwd<<<cu_grid(count), CU_THREADS, 0, base->ctx->stream>>>(in[0]->data, out[0]->data,
                                                                     count);
  CU_LAUNCHED(gelu ? "gelu forward" : "relu forward");
  return MSC_OK;
}

static msc_status act_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_elt *op = (cu_elt *)base;
  const int gelu = base->desc.type == MBK_OP_GELU;
  const char *name = gelu ? "gelu" : "relu";
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->dims, name, "x"));
  CU_CHECK(cu_tensor_expect(in[1], op->ndim, op->dims, name, "dy"));
  CU_CHECK(cu_tensor_set(base->ctx, out[0], op->ndim, op->dims));
  int64_t count = cu_numel(op->ndim, op->dims);
  if (gelu)
    k_gelu_bwd<<<cu_grid(count), CU_THREADS, 0, base->ctx->stream>>>(in[0]->data, in[1]->data,
                                                                     out[0]->data, count);
  else
    k_relu_bwd<<<cu_grid(count), CU_THREADS, 0, base->ctx->stream>>>(in[0]->data, in[1]->data,
                                                                     out[0]->data, count);
  CU_LAUNCHED(gelu ? "gelu backward" : "relu backward");
  return MSC_OK;
}

/* The elements of one sample: the batch is the outer dimension of the plain layout. */
static int64_t per_sample(const cu_elt *op) {
  return cu_numel(op->ndim, op->dims) / op->dims[0];
}

static msc_status add_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                              mbk_tensor *const *out) {
  cu_elt *op = (cu_elt *)base;
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->dims, "add", "a"));
  CU_CHECK(cu_tensor_expect(in[1], op->ndim, op->dims, "add", "b"));
  CU_CHECK(cu_tensor_set(base->ctx, out[0], op->ndim, op->dims));
  int64_t count = cu_numel(op->ndim, op->dims);
  /* A scaled add (API 12) without its scale tensor (inference) is the plain sum. */
  if (base->desc.u.add.row_scale && in[2]) {
    CU_CHECK(cu_tensor_expect(in[2], 1, op->dims, "add", "s (per-sample scale)"));
    k_add_scaled<<<cu_grid(count), CU_THREADS, 0, base->ctx->stream>>>(
        in[0]->data, in[1]->data, in[2]->data, out[0]->data, count, per_sample(op));
    CU_LAUNCHED("add forward (per-sample scale)");
    return MSC_OK;
  }
  k_add<<<cu_grid(count), CU_THREADS, 0, base->ctx->stream>>>(in[0]->data, in[1]->data,
                                                              out[0]->data, count);
  CU_LAUNCHED("add forward");
  return MSC_OK;
}

/* The gradient of a sum reaches both addends unchanged; with a per-sample scale (API 12)
 * b's is scaled by it: db[n,...] = s[n]·dy[n,...]. */
static msc_status add_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_elt *op = (cu_elt *)base;
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->dims, "add", "dy"));
  const int scaled = base->desc.u.add.row_scale && in[1];
  if (scaled) CU_CHECK(cu_tensor_expect(in[1], 1, op->dims, "add", "s (per-sample scale)"));
  const int64_t count = cu_numel(op->ndim, op->dims);
  size_t bytes = (size_t)count * sizeof(float);
  for (int i = 0; i < 2; ++i) {
    /* (an output that is dy's own tensor, API 14's in place, holds its value already) */
    if (!out[i] || (out[i] == in[0] && !(i == 1 && scaled))) continue;
    CU_CHECK(cu_tensor_set(base->ctx, out[i], op->ndim, op->dims));
    if (i == 1 && scaled) {
      k_scale_rows<<<cu_grid(count), CU_THREADS, 0, base->ctx->stream>>>(
          in[0]->data, in[1]->data, out[1]->data, count, per_sample(op));
      CU_LAUNCHED("add backward (per-sample scale)");
    } else {
      CU_CHECK(cu_copy(base->ctx, out[i]->data, in[0]->data, bytes));
    }
  }
  return MSC_OK;
}

static const mbk_op_vt relu_vt = {"relu", act_forward, act_backward, elt_destroy};
static const mbk_op_vt gelu_vt = {"gelu", act_forward, act_backward, elt_destroy};
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

msc_status cu_gelu_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return elt_create(ctx, d, &gelu_vt, out);
}

msc_status cu_add_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return elt_create(ctx, d, &add_vt, out);
}
