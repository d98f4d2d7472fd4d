/*
 * cuda_concat.cu — concatenation along channels. In plain NCHW (or N×C) each input is,
 * per sample, one contiguous run of the output, so forward and backward are each one
 * strided 2-D copy per input (N rows) and need no kernel.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

typedef struct cu_concat {
  mbk_op base;
  int32_t ndim;
  int64_t y_dims[MBK_MAX_DIMS];
} cu_concat;

static void concat_destroy(mbk_op *base) {
  free(base);
}

static void input_dims(const cu_concat *op, int32_t i, int64_t *dims) {
  memcpy(dims, op->y_dims, sizeof op->y_dims);
  dims[1] = op->base.desc.u.concat.c[i];
}

static size_t plane(const cu_concat *op) {
  return op->ndim == 4 ? (size_t)(op->y_dims[2] * op->y_dims[3]) : 1;
}

static msc_status concat_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                 mbk_tensor *const *out) {
  cu_concat *op = (cu_concat *)base;
  mbk_ctx *ctx = base->ctx;
  int32_t k = base->desc.u.concat.count;
  for (int32_t i = 0; i < k; ++i) {
    int64_t dims[MBK_MAX_DIMS];
    input_dims(op, i, dims);
    CU_CHECK(cu_tensor_expect(in[i], op->ndim, dims, "concat", "x_i"));
  }
  CU_CHECK(cu_tensor_set(ctx, out[0], op->ndim, op->y_dims));
  const size_t row = (size_t)op->y_dims[1] * plane(op) * sizeof(float);
  size_t offset = 0;
  for (int32_t i = 0; i < k; ++i) {
    const size_t part = (size_t)base->desc.u.concat.c[i] * plane(op) * sizeof(float);
    CU_RT(cudaMemcpy2DAsync((char *)out[0]->data + offset, row, in[i]->data, part, part,
                            (size_t)op->y_dims[0], cudaMemcpyDeviceToDevice, ctx->stream),
          "concat forward");
    offset += part;
  }
  return MSC_OK;
}

static msc_status concat_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_concat *op = (cu_concat *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], op->ndim, op->y_dims, "concat", "dy"));
  const size_t row = (size_t)op->y_dims[1] * plane(op) * sizeof(float);
  size_t offset = 0;
  for (int32_t i = 0; i < base->desc.u.concat.count; ++i) {
    const size_t part = (size_t)base->desc.u.concat.c[i] * plane(op) * sizeof(float);
    if (out[i]) {
      int64_t dims[MBK_MAX_DIMS];
      input_dims(op, i, dims);
      CU_CHECK(cu_tensor_set(ctx, out[i], op->ndim, dims));
      CU_RT(cudaMemcpy2DAsync(out[i]->data, part, (const char *)in[0]->data + offset, row, part,
                              (size_t)op->y_dims[0], cudaMemcpyDeviceToDevice, ctx->stream),
            "concat backward");
    }
    offset += part;
  }
  return MSC_OK;
}

static const mbk_op_vt concat_vt = {"concat", concat_forward, concat_backward, concat_destroy};

msc_status cu_concat_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, &concat_vt, sizeof(cu_concat), &base));
  cu_concat *op = (cu_concat *)base;
  op->ndim = mbk_op_out_dims(d, op->y_dims);
  *out = base;
  return MSC_OK;
}
