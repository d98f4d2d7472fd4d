/*
 * cuda_deconv.cu — 2-D transposed convolution (backend.h, DECONV2D: PyTorch's
 * ConvTranspose2d, weights [in, out, KH, KW]) through cuDNN's convolution API, with the
 * bias added and reduced by own kernels (cuda_eltwise.cu).
 *
 * A transposed convolution is the adjoint of the convolution with the same geometry
 * that maps its output y [N, OC, OH, OW] back to its input x [N, C, H, W]. cuDNN
 * describes that convolution with y as its input, x as its output and the filter
 * [K = C, C = OC, KH, KW], which is PyTorch's layout byte for byte. So:
 *   forward          y  = cudnnConvolutionBackwardData(w, x)
 *   backward data    dx = cudnnConvolutionForward(dy, w)
 *   backward weights dw = cudnnConvolutionBackwardFilter(dy as input, x as gradient)
 * Output padding needs nothing more: the convolution of an OH-row input with padding
 * ph, stride sh and KH rows has ⌊(OH + 2ph − KH)/sh⌋ + 1 = H rows for any oph < sh.
 *
 * Algorithms are picked once per op as in cuda_conv.cu: the heuristics' first plain-FP32
 * one (no TF32, so results match the CPU backend), deterministic when there is one.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

typedef struct cu_deconv {
  mbk_op base;
  int64_t x_dims[4], w_dims[4], y_dims[4];
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  cudnnConvolutionBwdDataAlgo_t fwd_algo;     /* y from x: backward data */
  cudnnConvolutionFwdAlgo_t bwd_data_algo;    /* dx from dy: forward */
  cudnnConvolutionBwdFilterAlgo_t bwd_w_algo; /* dw: backward filter */
  size_t fwd_ws, bwd_data_ws, bwd_w_ws;
} cu_deconv;

static void deconv_destroy(mbk_op *base) {
  cu_deconv *op = (cu_deconv *)base;
  if (op->xd) cudnnDestroyTensorDescriptor(op->xd);
  if (op->yd) cudnnDestroyTensorDescriptor(op->yd);
  if (op->wd) cudnnDestroyFilterDescriptor(op->wd);
  if (op->cd) cudnnDestroyConvolutionDescriptor(op->cd);
  free(op);
}

static int fits_int(const int64_t *v, int n) {
  for (int i = 0; i < n; ++i)
    if (v[i] > 0x7fffffff) return 0;
  return 1;
}

/* Index of the heuristics' first usable result: plain FP32, deterministic if any is. */
template <typename Perf> static int pick(const Perf *p, int n) {
  int any = -1;
  for (int pass = 0; pass < 2; ++pass)
    for (int i = 0; i < n; ++i) {
      if (p[i].status != CUDNN_STATUS_SUCCESS) continue;
      if (p[i].mathType == CUDNN_TENSOR_OP_MATH ||
          p[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
        continue;
      if (pass == 0 && p[i].determinism != CUDNN_DETERMINISTIC) {
        if (any < 0) any = i;
        continue;
      }
      return i;
    }
  return any;
}

static msc_status choose_algorithms(cu_deconv *op) {
  cudnnHandle_t h = op->base.ctx->dnn;
  int n = 0;
  {
    cudnnConvolutionBwdDataAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    CU_DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(
               h, op->wd, op->xd, op->cd, op->yd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, p),
           "deconv2d forward algorithm");
    int i = pick(p, n);
    if (i < 0)
      return CU_FAIL(MSC_E_UNSUPPORTED,
                     "cuda: deconv2d: cuDNN has no FP32 forward algorithm for this shape");
    op->fwd_algo = p[i].algo;
    CU_DNN(cudnnGetConvolutionBackwardDataWorkspaceSize(h, op->wd, op->xd, op->cd, op->yd,
                                                        op->fwd_algo, &op->fwd_ws),
           "deconv2d forward workspace");
  }
  {
    cudnnConvolutionFwdAlgoPerf_t p[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    CU_DNN(cudnnGetConvolutionForwardAlgorithm_v7(h, op->yd, op->wd, op->cd, op->xd,
                                                  CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, p),
           "deconv2d backward-data algorithm");
    int i = pick(p, n);
    if (i < 0)
      return CU_FAIL(
          MSC_E_UNSUPPORTED,
          "cuda: deconv2d: cuDNN has no FP32 backward-data algorithm for this shape");
    op->bwd_data_algo = p[i].algo;
    CU_DNN(cudnnGetConvolutionForwardWorkspaceSize(h, op->yd, op->wd, op->cd, op->xd,
                                                   op->bwd_data_algo, &op->bwd_data_ws),
           "deconv2d backward-data workspace");
  }
  {
    cudnnConvolutionBwdFilterAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CU_DNN(
        cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            h, op->yd, op->xd, op->cd, op->wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, p),
        "deconv2d backward-weights algorithm");
    int i = pick(p, n);
    if (i < 0)
      return CU_FAIL(
          MSC_E_UNSUPPORTED,
          "cuda: deconv2d: cuDNN has no FP32 backward-weights algorithm for this shape");
    op->bwd_w_algo = p[i].algo;
    CU_DNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, op->yd, op->xd, op->cd, op->wd,
                                                          op->bwd_w_algo, &op->bwd_w_ws),
           "deconv2d backward-weights workspace");
  }
  return MSC_OK;
}

static msc_status set4(cudnnTensorDescriptor_t t, const int64_t *d, const char *what) {
  CU_DNN(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)d[0],
                                    (int)d[1], (int)d[2], (int)d[3]),
         what);
  return MSC_OK;
}

static msc_status make_descriptors(cu_deconv *op) {
  const mbk_op_desc *d = &op->base.desc;
  if (!fits_int(op->x_dims, 4) || !fits_int(op->w_dims, 4) || !fits_int(op->y_dims, 4))
    return CU_FAIL(MSC_E_UNSUPPORTED, "cuda: deconv2d: a dimension exceeds cuDNN's int range");
  CU_DNN(cudnnCreateTensorDescriptor(&op->xd), "deconv2d descriptor");
  CU_DNN(cudnnCreateTensorDescriptor(&op->yd), "deconv2d descriptor");
  CU_DNN(cudnnCreateFilterDescriptor(&op->wd), "deconv2d descriptor");
  CU_DNN(cudnnCreateConvolutionDescriptor(&op->cd), "deconv2d descriptor");
  CU_CHECK(set4(op->xd, op->x_dims, "deconv2d input descriptor"));
  CU_CHECK(set4(op->yd, op->y_dims, "deconv2d output descriptor"));
  CU_DNN(cudnnSetFilter4dDescriptor(op->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                    (int)op->w_dims[0], (int)op->w_dims[1], (int)op->w_dims[2],
                                    (int)op->w_dims[3]),
         "deconv2d weight descriptor");
  CU_DNN(cudnnSetConvolution2dDescriptor(op->cd, (int)d->u.deconv.ph, (int)d->u.deconv.pw,
                                         (int)d->u.deconv.sh, (int)d->u.deconv.sw, 1, 1,
                                         CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
         "deconv2d descriptor");
  CU_DNN(cudnnSetConvolutionMathType(op->cd, CUDNN_FMA_MATH), "deconv2d math type");
  /* The adjoint convolution must map y's shape onto x's (see the top of the file). */
  int on, oc, oh, ow;
  CU_DNN(cudnnGetConvolution2dForwardOutputDim(op->cd, op->yd, op->wd, &on, &oc, &oh, &ow),
         "deconv2d shape");
  if (on != op->x_dims[0] || oc != op->x_dims[1] || oh != op->x_dims[2] || ow != op->x_dims[3])
    return CU_FAIL(MSC_E_INTERNAL,
                   "cuda: deconv2d: cuDNN maps the output back to %dx%dx%dx%d, not the input's "
                   "shape",
                   on, oc, oh, ow);
  return choose_algorithms(op);
}

static msc_status deconv_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                 mbk_tensor *const *out) {
  (void)training;
  cu_deconv *op = (cu_deconv *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->x_dims, "deconv2d", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 4, op->w_dims, "deconv2d", "w"));
  const int bias = base->desc.u.deconv.bias != 0;
  if (bias)
    CU_CHECK(cu_tensor_expect(in[2], 1, &op->y_dims[1], "deconv2d", "b"));
  else if (in[2])
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: deconv2d: b given to an op without bias");
  CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->y_dims));
  CU_CHECK(cu_work_ensure(ctx, op->fwd_ws));
  const float one = 1.f, zero = 0.f;
  CU_DNN(cudnnConvolutionBackwardData(ctx->dnn, &one, op->wd, in[1]->data, op->xd, in[0]->data,
                                      op->cd, op->fwd_algo, ctx->work.p, op->fwd_ws, &zero,
                                      op->yd, out[0]->data),
         "deconv2d forward");
  if (bias)
    CU_CHECK(cu_add_bias(ctx, out[0]->data, in[2]->data, op->y_dims[0], op->y_dims[1],
                         op->y_dims[2] * op->y_dims[3]));
  return MSC_OK;
}

static msc_status deconv_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_deconv *op = (cu_deconv *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->x_dims, "deconv2d", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 4, op->w_dims, "deconv2d", "w"));
  CU_CHECK(cu_tensor_expect(in[2], 4, op->y_dims, "deconv2d", "dy"));
  if (out[2] && !base->desc.u.deconv.bias)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: deconv2d: db asked of an op without bias");
  const float one = 1.f, zero = 0.f;
  if (out[0]) {
    CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->x_dims));
    CU_CHECK(cu_work_ensure(ctx, op->bwd_data_ws));
    CU_DNN(cudnnConvolutionForward(ctx->dnn, &one, op->yd, in[2]->data, op->wd, in[1]->data,
                                   op->cd, op->bwd_data_algo, ctx->work.p, op->bwd_data_ws,
                                   &zero, op->xd, out[0]->data),
           "deconv2d backward data");
  }
  if (out[1]) {
    CU_CHECK(cu_tensor_set(ctx, out[1], 4, op->w_dims));
    CU_CHECK(cu_work_ensure(ctx, op->bwd_w_ws));
    CU_DNN(cudnnConvolutionBackwardFilter(ctx->dnn, &one, op->yd, in[2]->data, op->xd,
                                          in[0]->data, op->cd, op->bwd_w_algo, ctx->work.p,
                                          op->bwd_w_ws, &zero, op->wd, out[1]->data),
           "deconv2d backward weights");
  }
  if (out[2]) {
    CU_CHECK(cu_tensor_set(ctx, out[2], 1, &op->y_dims[1]));
    CU_CHECK(cu_channel_sum(ctx, in[2]->data, op->y_dims[0], op->y_dims[1],
                            op->y_dims[2] * op->y_dims[3], out[2]->data));
  }
  return MSC_OK;
}

static const mbk_op_vt deconv_vt = {"deconv2d", deconv_forward, deconv_backward,
                                    deconv_destroy};

msc_status cu_deconv_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, &deconv_vt, sizeof(cu_deconv), &base));
  cu_deconv *op = (cu_deconv *)base;
  mbk_op_in_dims(d, op->x_dims);
  op->w_dims[0] = d->c; /* PyTorch's [in, out, KH, KW] */
  op->w_dims[1] = d->u.deconv.out_c;
  op->w_dims[2] = d->u.deconv.kh;
  op->w_dims[3] = d->u.deconv.kw;
  mbk_op_out_dims(d, op->y_dims);
  msc_status st = make_descriptors(op);
  if (st != MSC_OK) {
    deconv_destroy(base);
    return st;
  }
  *out = base;
  return MSC_OK;
}
