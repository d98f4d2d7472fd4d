/*
 * cuda_backend.cu — the CUDA backend's table, probe, contexts, error mapping and op
 * dispatch (layer: CUDA backend); the module's one exported symbol is
 * msc_backend_module_init.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

const mbk_host *cuda_host;

/* ---- errors -------------------------------------------------------------------------- */

msc_status cu_rt_fail(cudaError_t e, const char *what) {
  msc_status code = MSC_E_DEVICE;
  if (e == cudaErrorMemoryAllocation) code = MSC_E_OUT_OF_MEMORY;
  if (e == cudaErrorInvalidValue || e == cudaErrorInvalidConfiguration) code = MSC_E_INTERNAL;
  return CU_FAIL(code, "cuda: %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

msc_status cu_blas_fail(cublasStatus_t s, const char *what) {
  msc_status code = s == CUBLAS_STATUS_ALLOC_FAILED    ? MSC_E_OUT_OF_MEMORY
                    : s == CUBLAS_STATUS_INVALID_VALUE ? MSC_E_INTERNAL
                                                       : MSC_E_DEVICE;
  return CU_FAIL(code, "cuda: %s: cuBLAS: %s (%s)", what, cublasGetStatusString(s),
                 cublasGetStatusName(s));
}

msc_status cu_dnn_fail(cudnnStatus_t s, const char *what) {
  msc_status code = MSC_E_DEVICE;
  if (s == CUDNN_STATUS_ALLOC_FAILED) code = MSC_E_OUT_OF_MEMORY;
  if (s == CUDNN_STATUS_NOT_SUPPORTED) code = MSC_E_UNSUPPORTED;
  if (s == CUDNN_STATUS_BAD_PARAM) code = MSC_E_INTERNAL;
  return CU_FAIL(code, "cuda: %s: cuDNN: %s", what, cudnnGetErrorString(s));
}

/* ---- probe ----------------------------------------------------------------------------- */

static void say(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t len, const char *fmt, ...) {
  if (!why || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
}

/* Why the runtime cannot reach a device, from cudaGetDeviceCount's error. */
static void explain_no_device(cudaError_t e, char *why, size_t len) {
  int drv = 0;
  cudaDriverGetVersion(&drv); /* 0 when no driver is installed at all */
  switch (e) {
  case cudaErrorNoDevice:
    say(why, len, "no CUDA device (none present, or hidden by CUDA_VISIBLE_DEVICES)");
    return;
  case cudaErrorInsufficientDriver:
    if (drv == 0)
      say(why, len, "no NVIDIA driver (libcuda.so.1 not found)");
    else
      say(why, len, "the NVIDIA driver supports CUDA %d.%d, this module needs CUDA %d.%d",
          drv / 1000, drv % 1000 / 10, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    return;
  case cudaErrorDevicesUnavailable:
    say(why, len, "every CUDA device is busy or unavailable (compute mode)");
    return;
  default:
    say(why, len, "CUDA runtime: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    return;
  }
}

static msc_status cu_probe(char *why, size_t why_len) {
  size_t dnn = cudnnGetVersion();
  if (dnn / 10000 != CUDNN_MAJOR) {
    say(why, why_len, "cuDNN %zu.%zu is loaded, this module was built for cuDNN %d",
        dnn / 10000, dnn % 10000 / 100, CUDNN_MAJOR);
    return MSC_E_BACKEND_UNAVAILABLE;
  }
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count < 1) {
    explain_no_device(e == cudaSuccess ? cudaErrorNoDevice : e, why, why_len);
    return MSC_E_BACKEND_UNAVAILABLE;
  }
  return cu_kernel_image_check(why, why_len);
}

/* ---- contexts ---------------------------------------------------------------------------- */

msc_status cu_enter(mbk_ctx *ctx) {
  CU_RT(cudaSetDevice(ctx->device), "select device");
  return MSC_OK;
}

msc_status cu_sync(mbk_ctx *ctx, const char *what) {
  CU_RT(cudaStreamSynchronize(ctx->stream), what);
  return MSC_OK;
}

msc_status cu_buf_ensure(mbk_ctx *ctx, cu_buf *b, size_t bytes) {
  if (bytes <= b->cap && b->p) return MSC_OK;
  cu_alloc_put(&ctx->alloc, b->p, b->cap); /* same stream: later work is ordered after */
  b->p = NULL;
  b->cap = 0;
  return cu_alloc_get(&ctx->alloc, bytes ? bytes : 1, &b->p, &b->cap);
}

void cu_buf_release(mbk_ctx *ctx, cu_buf *b) {
  if (!ctx || !b) return;
  cu_alloc_put(&ctx->alloc, b->p, b->cap);
  b->p = NULL;
  b->cap = 0;
}

msc_status cu_work_ensure(mbk_ctx *ctx, size_t bytes) {
  return cu_buf_ensure(ctx, &ctx->work, bytes);
}

msc_status cu_upload_small(mbk_ctx *ctx, void *dev, const void *host, size_t n) {
  /* From pageable memory the runtime copies the source before returning, so the
   * caller's array may go away at once; the transfer itself stays stream-ordered. */
  if (n == 0) return MSC_OK;
  CU_RT(cudaMemcpyAsync(dev, host, n, cudaMemcpyHostToDevice, ctx->stream), "upload");
  return MSC_OK;
}

static void cu_ctx_free(mbk_ctx *ctx) {
  if (!ctx) return;
  cudaSetDevice(ctx->device);
  if (ctx->stream) cudaStreamSynchronize(ctx->stream);
  cu_buf_release(ctx, &ctx->work);
  cu_buf_release(ctx, &ctx->flag);
  cu_alloc_destroy(&ctx->alloc);
  if (ctx->dnn) cudnnDestroy(ctx->dnn);
  if (ctx->blas) cublasDestroy(ctx->blas);
  if (ctx->stream) cudaStreamDestroy(ctx->stream);
  free(ctx);
}

static msc_status ctx_init(mbk_ctx *ctx) {
  int count = 0;
  CU_RT(cudaGetDeviceCount(&count), "device count");
  if (ctx->device < 0 || ctx->device >= count)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: device %d does not exist (%d device%s)",
                   (int)ctx->device, count, count == 1 ? "" : "s");
  CU_CHECK(cu_enter(ctx));
  CU_RT(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking), "stream");
  CU_BLAS(cublasCreate(&ctx->blas), "cuBLAS handle");
  CU_BLAS(cublasSetStream(ctx->blas, ctx->stream), "cuBLAS stream");
  /* Plain FP32/FP64 arithmetic (no TF32), so results match the CPU backend. */
  CU_BLAS(cublasSetMathMode(ctx->blas, CUBLAS_DEFAULT_MATH), "cuBLAS math mode");
  CU_DNN(cudnnCreate(&ctx->dnn), "cuDNN handle");
  CU_DNN(cudnnSetStream(ctx->dnn, ctx->stream), "cuDNN stream");
  return cu_buf_ensure(ctx, &ctx->flag, 64); /* cuda_loss.cu keeps its results there */
}

static msc_status cu_ctx_create(const mbk_ctx_params *params, mbk_ctx **out) {
  if (!out) return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: ctx_create: out is NULL");
  const size_t need = offsetof(mbk_ctx_params, threads) + sizeof(int32_t);
  if (params && params->struct_size < need)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: ctx_create: bad params struct_size %u",
                   params->struct_size);
  /* Only float32 kernels here (API 7's precision): refuse the rest, never downgrade. */
  if (params && params->struct_size >= offsetof(mbk_ctx_params, precision) + sizeof(int32_t) &&
      params->precision != MBK_PRECISION_F32)
    return CU_FAIL(MSC_E_UNSUPPORTED,
                   "cuda: precision %s is not supported by the cuda backend (float32 only): "
                   "use precision f32 or backend cpu",
                   params->precision == MBK_PRECISION_BF16   ? "bf16"
                   : params->precision == MBK_PRECISION_INT8 ? "int8"
                                                             : "(unknown)");
  /* API 15's conv_algo: cuDNN chooses the algorithms here; only the value is checked. */
  if (params && params->struct_size >= offsetof(mbk_ctx_params, conv_algo) + sizeof(int32_t) &&
      params->conv_algo != MBK_CONV_ALGO_AUTO && params->conv_algo != MBK_CONV_ALGO_DIRECT)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: ctx_create: unknown conv_algo %d",
                   (int)params->conv_algo);
  mbk_ctx *ctx = (mbk_ctx *)calloc(1, sizeof *ctx);
  if (!ctx) return CU_FAIL(MSC_E_OUT_OF_MEMORY, "cuda: context");
  if (params && params->struct_size >= offsetof(mbk_ctx_params, device) + sizeof(int32_t))
    ctx->device = params->device;
  msc_status st = cu_alloc_init(&ctx->alloc);
  if (st != MSC_OK) {
    free(ctx);
    return st;
  }
  st = ctx_init(ctx);
  if (st != MSC_OK) {
    cu_ctx_free(ctx);
    return st;
  }
  *out = ctx;
  return MSC_OK;
}

/* ---- ops ----------------------------------------------------------------------------------- */
/* The core's frame has validated the description and the arguments (backend.h); this
 * part only selects the device and orders the op's tensors between streams. */

/* Every kind of the contract: those of API 5 (MBK_OP_KINDS), LAYERNORM, GELU and GRN (API
 * 10, MBK_OP_KINDS_10) and ATTN (API 11, MBK_OP_KINDS_11), in mbk_op_type order. */
#define CU_CREATOR(kind) cu_##kind##_create,
static const mbk_op_create_fn cu_creators[MBK_OP_COUNT_] = {
    NULL, MBK_OP_KINDS(CU_CREATOR) MBK_OP_KINDS_10(CU_CREATOR) MBK_OP_KINDS_11(CU_CREATOR)};

static msc_status cu_op_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  CU_CHECK(cu_enter(ctx));
  return mbk_op_create_by_type(cuda_host, "cuda", cu_creators, ctx, d, out);
}

static void cu_op_free(mbk_op *op) {
  if (!op) return;
  cudaSetDevice(op->ctx->device);
  mbk_op_destroy(op);
}

/* Waits for pending foreign writes of every tensor an op touches. */
static msc_status use_all(mbk_ctx *ctx, mbk_tensor *const *ts, int32_t n) {
  for (int32_t i = 0; ts && i < n; ++i)
    if (ts[i]) CU_CHECK(cu_tensor_use(ctx, ts[i]));
  return MSC_OK;
}

static msc_status wrote_all(mbk_ctx *ctx, mbk_tensor *const *ts, int32_t n) {
  for (int32_t i = 0; ts && i < n; ++i)
    if (ts[i]) CU_CHECK(cu_tensor_wrote(ctx, ts[i]));
  return MSC_OK;
}

static msc_status cu_op_forward(mbk_op *op, int32_t training, mbk_tensor *const *in,
                                int32_t n_in, mbk_tensor *const *out, int32_t n_out) {
  mbk_ctx *ctx = op->ctx;
  CU_CHECK(cu_enter(ctx));
  CU_CHECK(use_all(ctx, in, n_in));
  CU_CHECK(use_all(ctx, out, n_out));
  CU_CHECK(mbk_op_run_forward(op, training, in, out));
  CU_CHECK(wrote_all(ctx, out, n_out));
  /* Batch norm updates its running statistics (inputs 3 and 4) in training. */
  if (training && op->desc.type == MBK_OP_BATCHNORM) CU_CHECK(wrote_all(ctx, in + 3, 2));
  return MSC_OK;
}

static msc_status cu_op_backward(mbk_op *op, mbk_tensor *const *in, int32_t n_in,
                                 mbk_tensor *const *out, int32_t n_out) {
  mbk_ctx *ctx = op->ctx;
  CU_CHECK(cu_enter(ctx));
  CU_CHECK(use_all(ctx, in, n_in));
  CU_CHECK(use_all(ctx, out, n_out));
  CU_CHECK(mbk_op_run_backward(op, in, out));
  return wrote_all(ctx, out, n_out);
}

/* ---- the table ------------------------------------------------------------------------------ */

msc_status cu_tensor_create(mbk_ctx *ctx, mbk_tensor **out);
void cu_tensor_free(mbk_tensor *t);
msc_status cu_tensor_upload(mbk_tensor *t, int32_t ndim, const int64_t *dims, const float *src);
msc_status cu_tensor_download(const mbk_tensor *t, float *dst, size_t n);
int32_t cu_tensor_shape(const mbk_tensor *t, int64_t *dims);

static mbk_iface g_iface;

extern "C" __attribute__((visibility("default"))) msc_status
msc_backend_module_init(const mbk_host *host, const mbk_iface **out);

extern "C" msc_status msc_backend_module_init(const mbk_host *host, const mbk_iface **out) {
  if (!host || !out) return MSC_E_INVALID_ARGUMENT;
  if (host->api_version != MBK_API_VERSION || host->struct_size < sizeof(mbk_host))
    return MSC_E_VERSION;
  cuda_host = host;
  *out = &g_iface;
  /* Another init (the module opened twice) must not blank a table already in use. */
  if (g_iface.api_version == MBK_API_VERSION) return MSC_OK;
  /* Filled here rather than by a C++ initializer list: member order stays explicit. */
  g_iface.struct_size = sizeof(mbk_iface);
  g_iface.name = "cuda";
  g_iface.probe = cu_probe;
  g_iface.ctx_create = cu_ctx_create;
  g_iface.ctx_free = cu_ctx_free;
  g_iface.tensor_create = cu_tensor_create;
  g_iface.tensor_free = cu_tensor_free;
  g_iface.tensor_upload = cu_tensor_upload;
  g_iface.tensor_download = cu_tensor_download;
  g_iface.tensor_shape = cu_tensor_shape;
  g_iface.op_create = cu_op_create;
  g_iface.op_free = cu_op_free;
  g_iface.op_forward = cu_op_forward;
  g_iface.op_backward = cu_op_backward;
  g_iface.tensor_zero = cu_tensor_zero;
  g_iface.loss = cu_loss;
  g_iface.optim_update = cu_optim_update;
  g_iface.grad_stats = cu_grad_stats;
  g_iface.api_version = MBK_API_VERSION; /* last: marks the table complete */
  return MSC_OK;
}
