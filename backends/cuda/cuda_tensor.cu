/*
 * cuda_tensor.cu — device tensors: plain row-major float32 storage from the owning
 * context's allocator, reused while a new shape fits; cross-stream ordering through
 * one event per tensor (see cuda_internal.h, "Ordering").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

int64_t cu_numel(int32_t ndim, const int64_t *dims) {
  int64_t n = 1;
  for (int32_t i = 0; i < ndim; ++i) n *= dims[i];
  return n;
}

msc_status cu_tensor_use(mbk_ctx *ctx, const mbk_tensor *t) {
  if (t->ev_stream && t->ev_stream != ctx->stream)
    CU_RT(cudaStreamWaitEvent(ctx->stream, t->ev, 0), "wait for another context's write");
  return MSC_OK;
}

msc_status cu_tensor_wrote(mbk_ctx *ctx, mbk_tensor *t) {
  /* The owner's own writes need an event only once a foreign one exists: a third
   * stream must then wait for the newest write, not for the older foreign one. */
  if (ctx == t->ctx && !t->ev_stream) return MSC_OK;
  if (!t->ev) CU_RT(cudaEventCreateWithFlags(&t->ev, cudaEventDisableTiming), "tensor event");
  CU_RT(cudaEventRecord(t->ev, ctx->stream), "tensor event");
  t->ev_stream = ctx->stream;
  return MSC_OK;
}

msc_status cu_tensor_set(mbk_ctx *ctx, mbk_tensor *t, int32_t ndim, const int64_t *dims) {
  size_t bytes = (size_t)cu_numel(ndim, dims) * sizeof(float);
  if (bytes > t->cap || !t->data) {
    /* Growing is rare (a new batch size). The old block returns to the owner's cache,
     * whose next user runs on the owner's stream: when another context is writing,
     * both streams are drained first so that no queued work still reads it. */
    if (t->data && ctx != t->ctx) {
      CU_CHECK(cu_sync(ctx, "tensor resize"));
      CU_CHECK(cu_sync(t->ctx, "tensor resize"));
    }
    cu_alloc_put(&t->ctx->alloc, t->data, t->cap);
    t->data = NULL;
    t->cap = 0;
    void *p = NULL;
    size_t got = 0;
    CU_CHECK(cu_alloc_get(&t->ctx->alloc, bytes, &p, &got));
    t->data = (float *)p;
    t->cap = got;
  }
  t->ndim = ndim;
  for (int32_t i = 0; i < MBK_MAX_DIMS; ++i) t->dims[i] = i < ndim ? dims[i] : 0;
  return MSC_OK;
}

msc_status cu_tensor_expect(const mbk_tensor *t, int32_t ndim, const int64_t *dims,
                            const char *op, const char *arg) {
  if (!t) return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: %s: %s is NULL", op, arg);
  int same = t->ndim == ndim;
  for (int32_t i = 0; same && i < ndim; ++i) same = t->dims[i] == dims[i];
  if (same) return MSC_OK;
  char want[96], got[96];
  int w = snprintf(want, sizeof want, "[");
  for (int32_t i = 0; i < ndim && w < (int)sizeof want; ++i)
    w +=
        snprintf(want + w, sizeof want - (size_t)w, "%s%lld", i ? "," : "", (long long)dims[i]);
  int g = snprintf(got, sizeof got, "[");
  for (int32_t i = 0; i < t->ndim && g < (int)sizeof got; ++i)
    g += snprintf(got + g, sizeof got - (size_t)g, "%s%lld", i ? "," : "",
                  (long long)t->dims[i]);
  return CU_FAIL(MSC_E_SHAPE, "cuda: %s: %s has shape %s], expected %s]", op, arg, got, want);
}

static msc_status check_shape(const char *fn, int32_t ndim, const int64_t *dims) {
  if (ndim != 1 && ndim != 2 && ndim != 4)
    return CU_FAIL(MSC_E_SHAPE, "cuda: %s: %d dimensions (1, 2 or 4 allowed)", fn, (int)ndim);
  for (int32_t i = 0; i < ndim; ++i)
    if (dims[i] <= 0)
      return CU_FAIL(MSC_E_SHAPE, "cuda: %s: dimension %d is %lld", fn, (int)i,
                     (long long)dims[i]);
  return MSC_OK;
}

msc_status cu_tensor_create(mbk_ctx *ctx, mbk_tensor **out) {
  if (!ctx || !out)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: tensor_create: NULL argument");
  mbk_tensor *t = (mbk_tensor *)calloc(1, sizeof *t);
  if (!t) return CU_FAIL(MSC_E_OUT_OF_MEMORY, "cuda: tensor");
  t->ctx = ctx;
  *out = t;
  return MSC_OK;
}

void cu_tensor_free(mbk_tensor *t) {
  if (!t) return;
  cudaSetDevice(t->ctx->device);
  cu_alloc_put(&t->ctx->alloc, t->data, t->cap);
  if (t->ev) cudaEventDestroy(t->ev);
  free(t);
}

/* Upload and zero wait for their copy: the tensor may be read next by another
 * context's stream (parameters are owned by the model's context). */
msc_status cu_tensor_upload(mbk_tensor *t, int32_t ndim, const int64_t *dims,
                            const float *src) {
  if (!t || !dims || !src)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: tensor_upload: NULL argument");
  CU_CHECK(check_shape("tensor_upload", ndim, dims));
  mbk_ctx *ctx = t->ctx;
  CU_CHECK(cu_enter(ctx));
  CU_CHECK(cu_tensor_use(ctx, t));
  CU_CHECK(cu_tensor_set(ctx, t, ndim, dims));
  size_t bytes = (size_t)cu_numel(ndim, dims) * sizeof(float);
  CU_RT(cudaMemcpyAsync(t->data, src, bytes, cudaMemcpyHostToDevice, ctx->stream),
        "tensor_upload");
  CU_CHECK(cu_tensor_wrote(ctx, t));
  return cu_sync(ctx, "tensor_upload");
}

msc_status cu_tensor_zero(mbk_tensor *t, int32_t ndim, const int64_t *dims) {
  if (!t || !dims) return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: tensor_zero: NULL argument");
  CU_CHECK(check_shape("tensor_zero", ndim, dims));
  mbk_ctx *ctx = t->ctx;
  CU_CHECK(cu_enter(ctx));
  CU_CHECK(cu_tensor_use(ctx, t));
  CU_CHECK(cu_tensor_set(ctx, t, ndim, dims));
  CU_RT(cudaMemsetAsync(t->data, 0, (size_t)cu_numel(ndim, dims) * sizeof(float), ctx->stream),
        "tensor_zero");
  CU_CHECK(cu_tensor_wrote(ctx, t));
  return cu_sync(ctx, "tensor_zero");
}

msc_status cu_tensor_download(const mbk_tensor *t, float *dst, size_t n) {
  if (!t || !dst)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: tensor_download: NULL argument");
  if (t->ndim == 0)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: tensor_download: empty tensor");
  size_t count = (size_t)cu_numel(t->ndim, t->dims);
  if (n < count)
    return CU_FAIL(MSC_E_BUFFER_TOO_SMALL,
                   "cuda: tensor_download: %zu floats needed, %zu given", count, n);
  mbk_ctx *ctx = t->ctx;
  CU_CHECK(cu_enter(ctx));
  CU_CHECK(cu_tensor_use(ctx, t));
  CU_RT(
      cudaMemcpyAsync(dst, t->data, count * sizeof(float), cudaMemcpyDeviceToHost, ctx->stream),
      "tensor_download");
  return cu_sync(ctx, "tensor_download");
}

int32_t cu_tensor_shape(const mbk_tensor *t, int64_t *dims) {
  if (!t) return 0;
  for (int32_t i = 0; i < t->ndim; ++i) dims[i] = t->dims[i];
  return t->ndim;
}
