/*
 * cuda_linear.cu — fully connected layer y = x·wᵀ + b (w is out×in, as in PyTorch) on
 * cuBLAS, and the row-major double products the loss terms use.
 *
 * cuBLAS is column-major: a row-major M×N matrix is, byte for byte, its N×M transpose
 * in column-major. So every row-major product C = A·B is issued as Cᵀ = Bᵀ·Aᵀ with the
 * operands swapped, and no data is ever transposed.
 */
#include <stdlib.h>

#include "cuda_internal.h"

static msc_status check_int(const char *what, int64_t a, int64_t b, int64_t c) {
  if (a > 0x7fffffff || b > 0x7fffffff || c > 0x7fffffff)
    return CU_FAIL(MSC_E_UNSUPPORTED, "cuda: %s: a dimension exceeds cuBLAS's int range", what);
  return MSC_OK;
}

msc_status cu_dgemm_abt(mbk_ctx *ctx, int64_t m, int64_t n, int64_t p, double alpha,
                        const double *a, const double *b, double *c) {
  CU_CHECK(check_int("loss product", m, n, p));
  const double zero = 0.0;
  /* Cᵀ (n×m) = B (n×p, column-major view pᵀ) · Aᵀ */
  CU_BLAS(cublasDgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, (int)m, (int)p, &alpha, b,
                      (int)p, a, (int)p, &zero, c, (int)n),
          "loss product");
  return MSC_OK;
}

msc_status cu_dgemm_ab(mbk_ctx *ctx, int64_t m, int64_t n, int64_t p, double alpha,
                       const double *a, const double *b, double *c) {
  CU_CHECK(check_int("loss product", m, n, p));
  const double zero = 0.0;
  CU_BLAS(cublasDgemm(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)m, (int)p, &alpha, b,
                      (int)n, a, (int)p, &zero, c, (int)n),
          "loss product");
  return MSC_OK;
}

typedef struct cu_linear {
  mbk_op base;
  int64_t n, k, o; /* batch, in features, out features */
  int64_t x_dims[2], w_dims[2], y_dims[2], b_dims[1];
} cu_linear;

static void linear_destroy(mbk_op *base) {
  free(base);
}

static msc_status linear_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                 mbk_tensor *const *out) {
  cu_linear *op = (cu_linear *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 2, op->x_dims, "linear", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 2, op->w_dims, "linear", "w"));
  const int bias = base->desc.u.linear.bias != 0;
  if (bias)
    CU_CHECK(cu_tensor_expect(in[2], 1, op->b_dims, "linear", "b"));
  else if (in[2])
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: linear: b given to an op without bias");
  CU_CHECK(cu_tensor_set(ctx, out[0], 2, op->y_dims));
  const float one = 1.f, zero = 0.f;
  const int n = (int)op->n, k = (int)op->k, o = (int)op->o;
  /* yᵀ (o×n) = w (column-major k×o, transposed) · xᵀ (k×n) */
  CU_BLAS(cublasSgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, o, n, k, &one, in[1]->data, k,
                      in[0]->data, k, &zero, out[0]->data, o),
          "linear forward");
  if (bias) CU_CHECK(cu_add_bias(ctx, out[0]->data, in[2]->data, op->n, op->o, 1));
  return MSC_OK;
}

static msc_status linear_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_linear *op = (cu_linear *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 2, op->x_dims, "linear", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 2, op->w_dims, "linear", "w"));
  CU_CHECK(cu_tensor_expect(in[2], 2, op->y_dims, "linear", "dy"));
  if (out[2] && !base->desc.u.linear.bias)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: linear: db asked of an op without bias");
  const float one = 1.f, zero = 0.f;
  const int n = (int)op->n, k = (int)op->k, o = (int)op->o;
  if (out[0]) { /* dx = dy·w: dxᵀ (k×n) = wᵀ-view (k×o) · dyᵀ (o×n) */
    CU_CHECK(cu_tensor_set(ctx, out[0], 2, op->x_dims));
    CU_BLAS(cublasSgemm(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N, k, n, o, &one, in[1]->data, k,
                        in[2]->data, o, &zero, out[0]->data, k),
            "linear backward data");
  }
  if (out[1]) { /* dw = dyᵀ·x: dwᵀ (k×o) = xᵀ (k×n) · dy (n×o) */
    CU_CHECK(cu_tensor_set(ctx, out[1], 2, op->w_dims));
    CU_BLAS(cublasSgemm(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_T, k, o, n, &one, in[0]->data, k,
                        in[2]->data, o, &zero, out[1]->data, k),
            "linear backward weights");
  }
  if (out[2]) {
    CU_CHECK(cu_tensor_set(ctx, out[2], 1, op->b_dims));
    CU_CHECK(cu_channel_sum(ctx, in[2]->data, op->n, op->o, 1, out[2]->data));
  }
  return MSC_OK;
}

static const mbk_op_vt linear_vt = {"linear", linear_forward, linear_backward, linear_destroy};

msc_status cu_linear_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  CU_CHECK(check_int("linear", d->n, d->c, d->u.linear.out_f));
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, &linear_vt, sizeof(cu_linear), &base));
  cu_linear *op = (cu_linear *)base;
  op->n = d->n;
  op->k = d->c;
  op->o = d->u.linear.out_f;
  op->x_dims[0] = op->n, op->x_dims[1] = op->k;
  op->w_dims[0] = op->o, op->w_dims[1] = op->k;
  op->y_dims[0] = op->n, op->y_dims[1] = op->o;
  op->b_dims[0] = op->o;
  *out = base;
  return MSC_OK;
}
