/*
 * cpu_conv.c — 2-D convolution (NCHW, OIHW weights, symmetric zero padding) as oneDNN
 * direct convolution; the forward/backward machinery is in cpu_weighted.c. Grouped and
 * depthwise convolutions (API 10, u.conv.groups) are oneDNN's grouped convolution, whose
 * 5-D weights [G, OC/G, C/G, KH, KW] (goihw) are PyTorch's [OC, C/G, KH, KW] bytes.
 */
#include <string.h>

#include "cpu_weighted.h"

static void conv_geometry(const cpu_weighted *op, dnnl_dims_t strides, dnnl_dims_t pad) {
  const mbk_op_desc *d = &op->base.desc;
  strides[0] = d->u.conv.sh;
  strides[1] = d->u.conv.sw;
  pad[0] = d->u.conv.ph;
  pad[1] = d->u.conv.pw;
}

/* The layout asked of an activation (x or y) of an op's forward and backward-data: oneDNN
 * 2.6's choice ("any") for float32 tensors of 8, 24, 40 … channels is its 16-channel
 * blocked layout padded with zeros (half of an 8-channel tensor is padding, which every
 * batch norm, ReLU and sum then reads and writes) whose 3×3 kernels read 8 channels only
 * from plain NCHW (a conversion per op) and whose backward-weights kernels are its AVX2
 * ones on the 8-channel blocked layout (two conversions per op). With narrow set, such a
 * tensor is asked in that 8-channel blocked layout (aBcd8b) instead: AVX2 kernels for the
 * three passes, no padding, no conversion between the tiny encoders' 8-channel layers
 * (bench_train --encoder tiny, docs/performance.md). bf16 keeps "any" (its kernels are
 * AVX-512 ones, 16-channel blocked). */
static msc_status act_md(const int64_t *dims, dnnl_data_type_t dt, int narrow,
                         dnnl_memory_desc_t *md) {
  if (!narrow || dt != dnnl_f32 || dims[1] % 8 != 0 || dims[1] % 16 == 0)
    return cpu_any_md_dt(4, dims, dt, md);
  dnnl_dims_t dd = {dims[0], dims[1], dims[2], dims[3]};
  CPU_TRY(dnnl_memory_desc_init_by_tag(md, 4, dd, dt, dnnl_aBcd8b), "memory descriptor");
  return MSC_OK;
}

/* Source, weights and destination in the context's compute type (cpu_op_dt), the bias
 * in float32; with grad_w (backward-weights) all in float32 (cpu_grad_w_dt); narrow:
 * act_md. */
static msc_status conv_mds(const cpu_weighted *op, int grad_w, int narrow,
                           dnnl_memory_desc_t *x, dnnl_memory_desc_t *w, dnnl_memory_desc_t *b,
                           dnnl_memory_desc_t *y) {
  dnnl_data_type_t dt = grad_w ? cpu_grad_w_dt(op->base.ctx) : cpu_op_dt(op->base.ctx);
  if (op->q && !grad_w) { /* int8 (cpu_int8.c): u8/s8 source, s8 weights, f32 output */
    CPU_CHECK(cpu_any_md_dt(4, op->x_dims, cpu_q_src_dt(op), x));
    CPU_CHECK(cpu_any_md_dt(4, op->w_dims, dnnl_s8, w));
    CPU_CHECK(cpu_plain_md(1, &op->y_dims[1], b));
    return cpu_any_md_dt(4, op->y_dims, dnnl_f32, y);
  }
  /* bf16 activations keep their layout, so does backward-weights on their copies. */
  narrow = narrow && cpu_op_dt(op->base.ctx) == dnnl_f32;
  CPU_CHECK(act_md(op->x_dims, dt, narrow, x));
  if (op->w_groups > 1) { /* oneDNN's grouped weights, format "any" */
    const int64_t g = op->w_groups;
    dnnl_dims_t wd = {g, op->w_dims[0] / g, op->w_dims[1], op->w_dims[2], op->w_dims[3]};
    CPU_TRY(dnnl_memory_desc_init_by_tag(w, 5, wd, dt, dnnl_format_tag_any),
            "grouped weights descriptor");
  } else {
    CPU_CHECK(cpu_any_md_dt(4, op->w_dims, dt, w));
  }
  CPU_CHECK(cpu_plain_md(1, &op->y_dims[1], b));
  return act_md(op->y_dims, dt, narrow, y);
}

/* Whether pd is one of oneDNN's reference implementations (orders of magnitude slower):
 * a narrow layout that no optimised kernel takes falls back to "any". */
static int is_ref(const_dnnl_primitive_desc_t pd) {
  const char *impl = NULL;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success ||
      !impl)
    return 0;
  return strncmp(impl, "ref", 3) == 0;
}

/* Fused (inference) convolutions whose input and output both have at most this many
 * channels run channels-last (NHWC) in and out. With format "any" oneDNN 2.6 gives an
 * 8-channel layer a plain NCHW source (its jit kernel reads fewer than 16 input
 * channels only that way) and a 16-padded blocked destination, so each such layer
 * wrote twice its data and the next one converted it back to NCHW: in the tiny
 * encoder three 64x8x120x120 reorders per encoder per pass, as long as the
 * convolutions themselves. Channels-last needs no padding and every small layer reads
 * what the previous one wrote (tiny encoder, batch 64, 2 threads: docs/performance.md).
 * ResNet layers (64 channels and up) keep oneDNN's choice. This takes precedence over
 * act_md's 8-channel blocked layout, which is the training path's (measured slower than
 * channels-last for the fused inference forward: 16.6 ms per 8 -> 8 layer). */
enum { CPU_NHWC_MAX_C = 16 };

static int small_channels(const cpu_weighted *op) {
  return op->x_dims[1] <= CPU_NHWC_MAX_C && op->y_dims[1] <= CPU_NHWC_MAX_C;
}

/* cd with source and destination forced to NHWC; dnnl_unimplemented when oneDNN has
 * only its reference kernel for that (far slower than a reorder plus a jit kernel). */
static dnnl_status_t channels_last_pd(cpu_weighted *op, const dnnl_convolution_desc_t *cd,
                                      const_dnnl_primitive_attr_t attr,
                                      dnnl_primitive_desc_t *pd) {
  dnnl_convolution_desc_t nd = *cd;
  /* The data types cd asks for (int8: a u8/s8 source and a float32 destination). */
  dnnl_data_type_t xt = cd->src_desc.data_type, yt = cd->dst_desc.data_type;
  dnnl_dims_t xd = {0}, yd = {0}; /* the API reads dnnl_dims_t-sized arrays */
  memcpy(xd, op->x_dims, 4 * sizeof xd[0]);
  memcpy(yd, op->y_dims, 4 * sizeof yd[0]);
  dnnl_status_t st = dnnl_memory_desc_init_by_tag(&nd.src_desc, 4, xd, xt, dnnl_nhwc);
  if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&nd.dst_desc, 4, yd, yt, dnnl_nhwc);
  if (st != dnnl_success) return st;
  cpu_ctx_threads(op->base.ctx);
  st = dnnl_primitive_desc_create(pd, &nd, attr, op->base.ctx->engine, NULL);
  if (st != dnnl_success) return st;
  if (!is_ref(*pd)) return dnnl_success;
  dnnl_primitive_desc_destroy(*pd);
  *pd = NULL;
  return dnnl_unimplemented;
}

/* Backward-weights (float32 whatever the precision: cpu_grad_w_dt) and the float32
 * unfused forward of a stem with 5 to 15 input channels (other than 8) and a
 * multiple of 16 output channels reads x and dy channels-last (NHWC). With "any",
 * oneDNN 2.6 has no AVX-512 kernel for it (its first-layer kernel takes up to 4 input
 * channels) and picks its AVX2 one on 8-channel blocked copies of x and dy: the
 * ResNet-18 S2 stem (12 -> 64, 7x7 s2, 64x120x120) took 473 ms of a 6.1 s train step
 * there, against 120-164 ms for the AVX-512 kernel on NHWC (versus 130-185 ms on a
 * copy padded to 16 channels, which needs the gradient sliced back; batch 32, 2
 * threads, interleaved). The conversions cost what the 8-channel ones did. The tiny
 * encoder's stem (12 -> 8) keeps its AVX2 kernel: NHWC measured slower there (58-75
 * vs 36-39 ms). The forward, on NHWC in and out, gets oneDNN's brgconv kernel instead of
 * its first-layer one on plain NCHW: 107-124 vs 150-165 ms (same setting); its NHWC
 * output goes on through batch norm, ReLU and pooling as it is (layout policy,
 * cpu_internal.h), and comes back to the stem's backward-weights as an NHWC dy. */
static int stem_nhwc(const cpu_weighted *op) {
  int64_t c = op->x_dims[1];
  return op->w_groups == 1 && c > 4 && c < 16 && c != 8 && op->y_dims[1] % 16 == 0;
}

/* Winograd F(4×4, 3×3) (oneDNN's jit_wino_4x3, AVX-512 float32 only) for 3×3 stride-1
 * layers of 64 channels and more, forward, backward-data and backward-weights: about 4×
 * fewer multiplications than the direct sum, paid in transforms. ResNet-18 at batch 64
 * (2 threads, onednn_verbose, ms per call direct → Winograd): 64 ch 30×30 forward 10.2
 * → 7.0, backward-data 11.4 → 6.3, backward-weights 11.3 → 9.7; 256 ch 8×8 11.4 → 4.3,
 * 11.3 → 4.4, 11.9 → 5.8; 512 ch 4×4 11.3 → 6.7, 9.2 → 6.7, 14.0 → 6.5
 * (docs/performance.md, "Winograd"). Below 64 channels the layers are the project's own
 * kernels' or too small to gain. Its rounding differs from the direct sum's (a sum of
 * transformed terms): the "conv_algorithm" option "direct" (MBK_CONV_ALGO_DIRECT) turns
 * it off. A Winograd primitive whose scratchpad would pass CPU_WINO_SCRATCH_MAX stays
 * direct: the scratchpad holds the transformed tiles of the whole batch, and the
 * 512-channel backward-weights at batch 64 asks 125 MiB for 45 ms of a 1 s step (the
 * training step's peak memory, docs/memory.md). */
#define CPU_WINO_SCRATCH_MAX ((size_t)64 << 20)
enum { CPU_WINO_MIN_C = 64 };

/* Winograd transforms the weights on every call (IC·OC·36 values) and each 4×4 output
 * tile's input and output: with few tiles the weight transform is not paid back.
 * Measured per layer (bench_embed, fused forward, 2 threads, direct / Winograd time):
 * 512 ch at 4² (1 tile an image) 0.30× at 2 tiles, 0.60× at 8, 0.73× at 16, 1.21× at 32;
 * 256 ch at 8² (4 tiles) 0.56× at 8 tiles, 1.20× at 32, 1.53× at 64; 128 ch at 15² (16
 * tiles) 1.00× at 32, 1.43× at 128; 64 ch at 30² (64 tiles) 1.07× at 128, 1.39× at 512.
 * Without this rule ResNet-18 embedded one sample at a time at half the direct rate
 * (42–45 against 83–86 samples/s). A layer runs Winograd from this many tiles in a call
 * (N · ⌈OH/4⌉ · ⌈OW/4⌉). */
enum { CPU_WINO_MIN_TILES = 32 };

static int wino_fits(const cpu_weighted *op) {
  const mbk_op_desc *d = &op->base.desc;
  return op->base.ctx->conv_algo == MBK_CONV_ALGO_AUTO && !op->q &&
         cpu_op_dt(op->base.ctx) == dnnl_f32 && op->w_groups == 1 && d->u.conv.kh == 3 &&
         d->u.conv.kw == 3 && d->u.conv.sh == 1 && d->u.conv.sw == 1 &&
         op->x_dims[1] >= CPU_WINO_MIN_C && op->y_dims[1] >= CPU_WINO_MIN_C &&
         op->x_dims[1] % 16 == 0 && op->y_dims[1] % 16 == 0 &&
         op->y_dims[0] * ((op->y_dims[2] + 3) / 4) * ((op->y_dims[3] + 3) / 4) >=
             CPU_WINO_MIN_TILES;
}

/* A Winograd primitive descriptor for cd, or MSC_E_UNSUPPORTED (quietly, no message: the
 * caller goes on with the direct one) where oneDNN has none here (no AVX-512) or its
 * scratchpad is too large. */
static msc_status wino_pd(cpu_weighted *op, const void *cd, const_dnnl_primitive_attr_t attr,
                          const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd) {
  cpu_ctx_threads(op->base.ctx);
  if (dnnl_primitive_desc_create(pd, cd, attr, op->base.ctx->engine, hint) != dnnl_success) {
    *pd = NULL;
    return MSC_E_UNSUPPORTED;
  }
  const dnnl_memory_desc_t *smd =
      dnnl_primitive_desc_query_md(*pd, dnnl_query_scratchpad_md, 0);
  if (!is_ref(*pd) && (!smd || dnnl_memory_desc_get_size(smd) <= CPU_WINO_SCRATCH_MAX))
    return MSC_OK;
  dnnl_primitive_desc_destroy(*pd);
  *pd = NULL;
  return MSC_E_UNSUPPORTED;
}

static msc_status conv_fwd_as(cpu_weighted *op, int narrow, dnnl_alg_kind_t alg,
                              dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t x, w, b, y;
  dnnl_dims_t s, p;
  CPU_CHECK(conv_mds(op, 0, narrow, &x, &w, &b, &y));
  conv_geometry(op, s, p);
  dnnl_convolution_desc_t cd;
  /* forward_training for inference too: with forward_inference oneDNN 2.6 picks its
   * brgconv kernels, which embed ResNet-18 about 15 % slower on this project's AVX-512
   * machines (bench_embed, batch 16, 1 thread: 40-42 vs 47-48 samples/s); the jit
   * direct kernels it picks for training are the faster ones here. */
  const mbk_op_desc *d = &op->base.desc;
  /* A folded batch norm brings a bias, and so does int8 (the scaled one, cpu_int8.c).
   * oneDNN's int8 convolutions are inference ones. */
  int with_b = op->bias || d->u.conv.fold_bn || op->q;
  dnnl_prop_kind_t prop = op->q ? dnnl_forward_inference : dnnl_forward_training;
  CPU_TRY(dnnl_convolution_forward_desc_init(&cd, prop, alg, &x, &w, with_b ? &b : NULL, &y, s,
                                             p, p),
          "conv2d forward descriptor");
  const int wino = alg == dnnl_convolution_winograd;
  if (wino && !mbk_conv_fused(d)) return wino_pd(op, &cd, op->base.ctx->attr, NULL, pd);
  if (!mbk_conv_fused(d) && !op->q) {
    if (stem_nhwc(op) && cpu_op_dt(op->base.ctx) == dnnl_f32 &&
        channels_last_pd(op, &cd, op->base.ctx->attr, pd) == dnnl_success)
      return MSC_OK;
    return cpu_pd_create(op->base.ctx, pd, &cd, NULL, "conv2d forward");
  }
  /* The fused ones keep forward_training too: brgconv with the post-ops measured 10-15 %
   * slower than the jit direct kernels (ResNet-18, batch 64, 2 threads, 2026-12-04). */
  dnnl_primitive_attr_t attr;
  CPU_CHECK(cpu_conv_post_ops(op->base.ctx, d, &attr));
  if (op->q) {
    msc_status qs = cpu_q_attr(op, attr);
    if (qs != MSC_OK) {
      dnnl_primitive_attr_destroy(attr);
      return qs;
    }
  }
  if (wino) {
    msc_status ws = wino_pd(op, &cd, attr, NULL, pd);
    dnnl_primitive_attr_destroy(attr);
    return ws;
  }
  dnnl_status_t st = dnnl_unimplemented;
  if (small_channels(op)) st = channels_last_pd(op, &cd, attr, pd);
  if (st != dnnl_success) {
    cpu_ctx_threads(op->base.ctx);
    st = dnnl_primitive_desc_create(pd, &cd, attr, op->base.ctx->engine, NULL);
  }
  dnnl_primitive_attr_destroy(attr);
  CPU_TRY(st, "conv2d forward (fused)");
  return MSC_OK;
}

/* The forward in the narrow layouts (act_md), or in "any" where no kernel or only a
 * reference one takes them. */
static msc_status conv_fwd(cpu_weighted *op, dnnl_primitive_desc_t *pd) {
  if (wino_fits(op) && conv_fwd_as(op, 0, dnnl_convolution_winograd, pd) == MSC_OK)
    return MSC_OK;
  *pd = NULL;
  if (conv_fwd_as(op, 1, dnnl_convolution_direct, pd) == MSC_OK) {
    if (!is_ref(*pd)) return MSC_OK;
    dnnl_primitive_desc_destroy(*pd);
  }
  *pd = NULL;
  return conv_fwd_as(op, 0, dnnl_convolution_direct, pd);
}

static msc_status conv_bwd_data_as(cpu_weighted *op, int narrow, dnnl_alg_kind_t alg,
                                   dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t x, w, b, y;
  dnnl_dims_t s, p;
  CPU_CHECK(conv_mds(op, 0, narrow, &x, &w, &b, &y));
  conv_geometry(op, s, p);
  dnnl_convolution_desc_t cd;
  CPU_TRY(dnnl_convolution_backward_data_desc_init(&cd, alg, &x, &w, &y, s, p, p),
          "conv2d backward-data descriptor");
  if (alg == dnnl_convolution_winograd)
    return wino_pd(op, &cd, op->base.ctx->attr, op->fwd.pd, pd);
  return cpu_pd_create(op->base.ctx, pd, &cd, op->fwd.pd, "conv2d backward data");
}

/* As conv_fwd: Winograd where it fits, else narrow layouts unless only a reference
 * kernel takes them. */
static msc_status conv_bwd_data(cpu_weighted *op, dnnl_primitive_desc_t *pd) {
  if (wino_fits(op) && conv_bwd_data_as(op, 0, dnnl_convolution_winograd, pd) == MSC_OK)
    return MSC_OK;
  *pd = NULL;
  if (conv_bwd_data_as(op, 1, dnnl_convolution_direct, pd) == MSC_OK) {
    if (!is_ref(*pd)) return MSC_OK;
    dnnl_primitive_desc_destroy(*pd);
  }
  *pd = NULL;
  return conv_bwd_data_as(op, 0, dnnl_convolution_direct, pd);
}

static msc_status conv_bwd_weights_as(cpu_weighted *op, int narrow, dnnl_alg_kind_t alg,
                                      dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t x, w, b, y;
  dnnl_dims_t s, p;
  CPU_CHECK(conv_mds(op, 1, narrow, &x, &w, &b, &y));
  conv_geometry(op, s, p);
  dnnl_convolution_desc_t cd;
  CPU_TRY(dnnl_convolution_backward_weights_desc_init(&cd, alg, &x, &w, op->bias ? &b : NULL,
                                                      &y, s, p, p),
          "conv2d backward-weights descriptor");
  if (alg == dnnl_convolution_winograd)
    return wino_pd(op, &cd, op->base.ctx->attr, op->fwd.pd, pd);
  return cpu_pd_create(op->base.ctx, pd, &cd, op->fwd.pd, "conv2d backward weights");
}

static msc_status conv_bwd_weights_nhwc(cpu_weighted *op, dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t x, w, b, y;
  dnnl_dims_t s, p;
  dnnl_dims_t xd = {0}, yd = {0}; /* the API reads dnnl_dims_t-sized arrays */
  memcpy(xd, op->x_dims, 4 * sizeof xd[0]);
  memcpy(yd, op->y_dims, 4 * sizeof yd[0]);
  CPU_CHECK(conv_mds(op, 1, 0, &x, &w, &b, &y));
  CPU_TRY(dnnl_memory_desc_init_by_tag(&x, 4, xd, dnnl_f32, dnnl_nhwc), "memory descriptor");
  CPU_TRY(dnnl_memory_desc_init_by_tag(&y, 4, yd, dnnl_f32, dnnl_nhwc), "memory descriptor");
  conv_geometry(op, s, p);
  dnnl_convolution_desc_t cd;
  CPU_TRY(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &x, &w,
                                                      op->bias ? &b : NULL, &y, s, p, p),
          "conv2d backward-weights descriptor");
  return cpu_pd_create(op->base.ctx, pd, &cd, op->fwd.pd, "conv2d backward weights");
}

/* x and dy as they arrive from the narrow forward and backward-data when x itself is
 * narrow (no conversion: the 1×1 8 → 16 shortcut took a 64×8×120×120 one per step with
 * "any"), unless only a reference kernel takes them. A stem (2 or 12 channels in) keeps
 * "any": oneDNN's first-layer kernel for 2 channels beats its AVX2 one on an 8-channel dy
 * by more than the dy conversion costs (bench_train --encoder tiny, onednn_verbose);
 * except the wider stems of stem_nhwc. */
static msc_status conv_bwd_weights(cpu_weighted *op, dnnl_primitive_desc_t *pd) {
  if (wino_fits(op) && conv_bwd_weights_as(op, 0, dnnl_convolution_winograd, pd) == MSC_OK)
    return MSC_OK;
  *pd = NULL;
  int narrow_x = op->x_dims[1] % 8 == 0 && op->x_dims[1] % 16 != 0;
  if (narrow_x && conv_bwd_weights_as(op, 1, dnnl_convolution_direct, pd) == MSC_OK) {
    if (!is_ref(*pd)) return MSC_OK;
    dnnl_primitive_desc_destroy(*pd);
  }
  *pd = NULL;
  if (stem_nhwc(op) && conv_bwd_weights_nhwc(op, pd) == MSC_OK) {
    if (!is_ref(*pd)) return MSC_OK;
    dnnl_primitive_desc_destroy(*pd);
  }
  *pd = NULL;
  return conv_bwd_weights_as(op, 0, dnnl_convolution_direct, pd);
}

msc_status cpu_conv_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, &cpu_weighted_vt_conv, sizeof(cpu_weighted),
                         &base));
  cpu_weighted *op = (cpu_weighted *)base;
  op->bias = d->u.conv.bias != 0;
  op->x_ndim = mbk_op_in_dims(d, op->x_dims);
  op->w_ndim = 4;
  op->w_groups = mbk_conv_groups(d);
  op->w_dims[0] = d->u.conv.out_c;
  op->w_dims[1] = d->c / op->w_groups;
  op->w_dims[2] = d->u.conv.kh;
  op->w_dims[3] = d->u.conv.kw;
  memcpy(op->w_user_dims, op->w_dims, sizeof op->w_dims);
  op->y_ndim = mbk_op_out_dims(d, op->y_dims);
  op->make_fwd = conv_fwd;
  op->make_bwd_data = conv_bwd_data;
  op->make_bwd_weights = conv_bwd_weights;
  msc_status st = mbk_conv_fused(d) ? cpu_conv_fold_create(op) : MSC_OK;
  if (st == MSC_OK) st = cpu_q_create(op);
  if (st == MSC_OK && cpu_k8_fits(op))
    st = cpu_k8_create(op);
  else if (st == MSC_OK && cpu_c16_fits(op))
    st = cpu_c16_create(op);
  if (st != MSC_OK) {
    mbk_op_destroy(base);
    return st;
  }
  return cpu_weighted_finish(op, out);
}
