/*
 * cuda_conv.cu — 2-D convolution (NCHW, OIHW weights, symmetric zero padding) through
 * cuDNN's convolution API, with the bias added and reduced by own kernels.
 *
 * Grouped and depthwise convolutions (API 10, u.conv.groups = G > 1) are the same calls
 * with cudnnSetConvolutionGroupCount(G) on the descriptor and the filter descriptor of
 * PyTorch's layout [OC, C/G, KH, KW]: cuDNN splits input and output channels into G
 * contiguous groups exactly as backend.h's CONV2D defines them, in every pass.
 *
 * Algorithms are picked once per op from cuDNN's heuristics (no benchmarking, which
 * would allocate and take time at every op creation): the first one the heuristics rank
 * that runs in plain FP32 (CUDNN_FMA_MATH: no TF32, so results match the CPU backend),
 * preferring deterministic ones so that training is reproducible run to run.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

typedef struct cu_conv {
  mbk_op base;
  int64_t x_dims[4], w_dims[4], y_dims[4];
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  cudnnConvolutionFwdAlgo_t fwd_algo;
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo;
  size_t fwd_ws, bwd_data_ws, bwd_filter_ws;
} cu_conv;

static void conv_destroy(mbk_op *base) {
  cu_conv *op = (cu_conv *)base;
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

static msc_status choose_algorithms(cu_conv *op) {
  cudnnHandle_t h = op->base.ctx->dnn;
  int n = 0;
  {
    cudnnConvolutionFwdAlgoPerf_t p[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    CU_DNN(cudnnGetConvolutionForwardAlgorithm_v7(h, op->xd, op->wd, op->cd, op->yd,
                                                  CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, p),
           "conv2d forward algorithm");
    int i = pick(p, n);
    if (i < 0)
      return CU_FAIL(MSC_E_UNSUPPORTED,
                     "cuda: conv2d: cuDNN has no FP32 forward algorithm for this shape");
    op->fwd_algo = p[i].algo;
    CU_DNN(cudnnGetConvolutionForwardWorkspaceSize(h, op->xd, op->wd, op->cd, op->yd,
                                                   op->fwd_algo, &op->fwd_ws),
           "conv2d forward workspace");
  }
  {
    cudnnConvolutionBwdDataAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    CU_DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(
               h, op->wd, op->yd, op->cd, op->xd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, p),
           "conv2d backward-data algorithm");
    int i = pick(p, n);
    if (i < 0)
      return CU_FAIL(MSC_E_UNSUPPORTED,
                     "cuda: conv2d: cuDNN has no FP32 backward-data algorithm for this shape");
    op->bwd_data_algo = p[i].algo;
    CU_DNN(cudnnGetConvolutionBackwardDataWorkspaceSize(h, op->wd, op->yd, op->cd, op->xd,
                                                        op->bwd_data_algo, &op->bwd_data_ws),
           "conv2d backward-data workspace");
  }
  {
    cudnnConvolutionBwdFilterAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CU_DNN(
        cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            h, op->xd, op->yd, op->cd, op->wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, p),
        "conv2d backward-weights algorithm");
    int i = pick(p, n);
    if (i < 0)
      return CU_FAIL(
          MSC_E_UNSUPPORTED,
          "cuda: conv2d: cuDNN has no FP32 backward-weights algorithm for this shape");
    op->bwd_filter_algo = p[i].algo;
    CU_DNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(
               h, op->xd, op->yd, op->cd, op->wd, op->bwd_filter_algo, &op->bwd_filter_ws),
           "conv2d backward-weights workspace");
  }
  return MSC_OK;
}

static msc_status make_descriptors(cu_conv *op) {
  const mbk_op_desc *d = &op->base.desc;
  if (!fits_int(op->x_dims, 4) || !fits_int(op->w_dims, 4) || !fits_int(op->y_dims, 4))
    return CU_FAIL(MSC_E_UNSUPPORTED, "cuda: conv2d: a dimension exceeds cuDNN's int range");
  CU_DNN(cudnnCreateTensorDescriptor(&op->xd), "conv2d descriptor");
  CU_DNN(cudnnCreateTensorDescriptor(&op->yd), "conv2d descriptor");
  CU_DNN(cudnnCreateFilterDescriptor(&op->wd), "conv2d descriptor");
  CU_DNN(cudnnCreateConvolutionDescriptor(&op->cd), "conv2d descriptor");
  CU_DNN(cudnnSetTensor4dDescriptor(op->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                    (int)op->x_dims[0], (int)op->x_dims[1], (int)op->x_dims[2],
                                    (int)op->x_dims[3]),
         "conv2d input descriptor");
  CU_DNN(cudnnSetFilter4dDescriptor(op->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                    (int)op->w_dims[0], (int)op->w_dims[1], (int)op->w_dims[2],
                                    (int)op->w_dims[3]),
         "conv2d weight descriptor");
  CU_DNN(cudnnSetConvolution2dDescriptor(op->cd, (int)d->u.conv.ph, (int)d->u.conv.pw,
                                         (int)d->u.conv.sh, (int)d->u.conv.sw, 1, 1,
                                         CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
         "conv2d descriptor");
  CU_DNN(cudnnSetConvolutionMathType(op->cd, CUDNN_FMA_MATH), "conv2d math type");
  if (mbk_conv_groups(d) > 1)
    CU_DNN(cudnnSetConvolutionGroupCount(op->cd, (int)mbk_conv_groups(d)), "conv2d groups");
  int on, oc, oh, ow;
  CU_DNN(cudnnGetConvolution2dForwardOutputDim(op->cd, op->xd, op->wd, &on, &oc, &oh, &ow),
         "conv2d output shape");
  if (on != op->y_dims[0] || oc != op->y_dims[1] || oh != op->y_dims[2] || ow != op->y_dims[3])
    return CU_FAIL(MSC_E_INTERNAL,
                   "cuda: conv2d: cuDNN's output shape %dx%dx%dx%d differs "
                   "from the description's",
                   on, oc, oh, ow);
  CU_DNN(
      cudnnSetTensor4dDescriptor(op->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, on, oc, oh, ow),
      "conv2d output descriptor");
  return choose_algorithms(op);
}

static msc_status conv_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                               mbk_tensor *const *out) {
  cu_conv *op = (cu_conv *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->x_dims, "conv2d", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 4, op->w_dims, "conv2d", "w"));
  const int bias = base->desc.u.conv.bias != 0;
  if (bias)
    CU_CHECK(cu_tensor_expect(in[2], 1, &op->y_dims[1], "conv2d", "b"));
  else if (in[2])
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: conv2d: b given to an op without bias");
  CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->y_dims));
  CU_CHECK(cu_work_ensure(ctx, op->fwd_ws));
  const float one = 1.f, zero = 0.f;
  CU_DNN(cudnnConvolutionForward(ctx->dnn, &one, op->xd, in[0]->data, op->wd, in[1]->data,
                                 op->cd, op->fwd_algo, ctx->work.p, op->fwd_ws, &zero, op->yd,
                                 out[0]->data),
         "conv2d forward");
  if (bias)
    CU_CHECK(cu_add_bias(ctx, out[0]->data, in[2]->data, op->y_dims[0], op->y_dims[1],
                         op->y_dims[2] * op->y_dims[3]));
  return MSC_OK;
}

static msc_status conv_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_conv *op = (cu_conv *)base;
  mbk_ctx *ctx = base->ctx;
  CU_CHECK(cu_tensor_expect(in[0], 4, op->x_dims, "conv2d", "x"));
  CU_CHECK(cu_tensor_expect(in[1], 4, op->w_dims, "conv2d", "w"));
  CU_CHECK(cu_tensor_expect(in[2], 4, op->y_dims, "conv2d", "dy"));
  if (out[2] && !base->desc.u.conv.bias)
    return CU_FAIL(MSC_E_INVALID_ARGUMENT, "cuda: conv2d: db asked of an op without bias");
  const float one = 1.f, zero = 0.f;
  if (out[0]) {
    CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->x_dims));
    CU_CHECK(cu_work_ensure(ctx, op->bwd_data_ws));
    CU_DNN(cudnnConvolutionBackwardData(ctx->dnn, &one, op->wd, in[1]->data, op->yd,
                                        in[2]->data, op->cd, op->bwd_data_algo, ctx->work.p,
                                        op->bwd_data_ws, &zero, op->xd, out[0]->data),
           "conv2d backward data");
  }
  if (out[1]) {
    CU_CHECK(cu_tensor_set(ctx, out[1], 4, op->w_dims));
    CU_CHECK(cu_work_ensure(ctx, op->bwd_filter_ws));
    CU_DNN(cudnnConvolutionBackwardFilter(ctx->dnn, &one, op->xd, in[0]->data, op->yd,
                                          in[2]->data, op->cd, op->bwd_filter_algo, ctx->work.p,
                                          op->bwd_filter_ws, &zero, op->wd, out[1]->data),
           "conv2d backward weights");
  }
  if (out[2]) {
    CU_CHECK(cu_tensor_set(ctx, out[2], 1, &op->y_dims[1]));
    CU_CHECK(cu_channel_sum(ctx, in[2]->data, op->y_dims[0], op->y_dims[1],
                            op->y_dims[2] * op->y_dims[3], out[2]->data));
  }
  return MSC_OK;
}

static const mbk_op_vt conv_vt = {"conv2d", conv_forward, conv_backward, conv_destroy};

msc_status cu_conv_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, &conv_vt, sizeof(cu_conv), &base));
  cu_conv *op = (cu_conv *)base;
  mbk_op_in_dims(d, op->x_dims);
  op->w_dims[0] = d->u.conv.out_c;
  op->w_dims[1] = d->c / mbk_conv_groups(d); /* groups (API 10): C/G inputs each */
  op->w_dims[2] = d->u.conv.kh;
  op->w_dims[3] = d->u.conv.kw;
  mbk_op_out_dims(d, op->y_dims);
  msc_status st = make_descriptors(op);
  if (st != MSC_OK) {
    conv_destroy(base);
    return st;
  }
  *out = base;
  return MSC_OK;
}
