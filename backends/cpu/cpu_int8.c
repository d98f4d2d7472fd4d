/*
 * cpu_int8.c — post-training-quantised inference of CONV2D and LINEAR (backend.h, API
 * 9; docs/precision.md, "int8"). An op whose description carries a calibrated input
 * range q_max, on a context of precision INT8, runs as one oneDNN int8 primitive:
 *
 *  - input: quantised per tensor by a cached reorder with scale s_in = 255 / q_max into
 *    u8 when calibration saw no negative value (the input follows a ReLU), else
 *    127 / q_max into s8 (the reorder rounds to nearest and saturates);
 *  - weights: s8 per output channel, s_w[o] = 127 / max_k |w'[o, k]|, where w' are the
 *    weights after folding a fused batch norm (w·γ/√(σ²+ε)); made by one reorder with
 *    per-channel scales straight into the primitive's layout (oneDNN adds the s8-source
 *    compensation there) and kept until a source tensor's identity or version changes;
 *  - accumulation in s32 by oneDNN, output float32 through per-channel output scales
 *    1 / (s_in·s_w[o]) (mask 2: axis 1 of the destination). oneDNN 2.6 adds the bias to
 *    the s32 accumulator before the output scale, so the bias it gets is b'·s_in·s_w[o];
 *    then the residual sum and the ReLU post-ops of a fused conv2d, as in float32.
 *
 * Activations between ops stay float32, so every other op is unchanged.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_weighted.h"

enum { Q_SRC = 7 }; /* w, b, gamma, beta, running_mean, running_var: what w_q came from */

struct cpu_q {
  float s_in;    /* input quantisation scale: 255 or 127 over q_max */
  int32_t is_u8; /* the source is u8 (else s8) */
  int32_t valid; /* w_q, b_q and out_scale match the sources below */
  int32_t n_src; /* entries of id / version in use */
  uint64_t id[Q_SRC], version[Q_SRC];
  float *out_scale; /* per output channel: 1 / (s_in·s_w[o]); 1 before the first refresh */
  float *w_scale;   /* per output channel: the weight reorder's scale, fold·s_w[o] */
  float *fold;      /* scratch: the batch norm's per-channel scale */
  cpu_buf w_q;      /* s8 weights in the primitive's layout */
  cpu_buf b_q;      /* the bias in accumulator units, plain float */
  cpu_reorder r_wp; /* the weights in plain layout (to find each channel's range) */
  cpu_prim quant;   /* x (float, its layout) -> the primitive's u8/s8 source */
  dnnl_memory_desc_t quant_src;
  cpu_buf x_q; /* the quantised input */
};

static float desc_q_max(const mbk_op_desc *d) {
  if (d->type == MBK_OP_CONV2D) return d->u.conv.q_max;
  if (d->type == MBK_OP_LINEAR) return d->u.linear.q_max;
  return 0.0f;
}

static int32_t desc_q_signed(const mbk_op_desc *d) {
  return d->type == MBK_OP_CONV2D ? d->u.conv.q_signed : d->u.linear.q_signed;
}

msc_status cpu_q_create(cpu_weighted *op) {
  const mbk_op_desc *d = &op->base.desc;
  float q_max = desc_q_max(d);
  if (op->base.ctx->precision != MBK_PRECISION_INT8 || !(q_max > 0.0f)) return MSC_OK;
  cpu_q *q = calloc(1, sizeof *q);
  const int64_t oc = op->y_dims[1];
  if (q) {
    q->out_scale = malloc((size_t)oc * sizeof(float));
    q->w_scale = malloc((size_t)oc * sizeof(float));
    q->fold = malloc((size_t)oc * sizeof(float));
  }
  if (!q || !q->out_scale || !q->w_scale || !q->fold) {
    cpu_q_destroy(q);
    return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: %s int8 state", op->base.vt->name);
  }
  q->is_u8 = !desc_q_signed(d);
  q->s_in = (q->is_u8 ? 255.0f : 127.0f) / q_max;
  /* The primitive made at op_create only fixes the layouts; the first forward remakes it
   * with the scales of the weights it sees. */
  for (int64_t o = 0; o < oc; ++o) q->out_scale[o] = 1.0f;
  op->q = q;
  return MSC_OK;
}

void cpu_q_destroy(cpu_q *q) {
  if (!q) return;
  free(q->out_scale);
  free(q->w_scale);
  free(q->fold);
  cpu_buf_destroy(&q->w_q);
  cpu_buf_destroy(&q->b_q);
  cpu_reorder_destroy(&q->r_wp);
  cpu_prim_destroy(&q->quant);
  cpu_buf_destroy(&q->x_q);
  free(q);
}

dnnl_data_type_t cpu_q_src_dt(const cpu_weighted *op) {
  return op->q->is_u8 ? dnnl_u8 : dnnl_s8;
}

msc_status cpu_q_attr(const cpu_weighted *op, dnnl_primitive_attr_t attr) {
  CPU_TRY(dnnl_primitive_attr_set_output_scales(attr, op->y_dims[1], 1 << 1, op->q->out_scale),
          "int8 output scales");
  return MSC_OK;
}

/* The tensors the quantised weights and bias come from, in a fixed order. */
static int32_t q_sources(const cpu_weighted *op, mbk_tensor *const *in,
                         const mbk_tensor **src) {
  int32_t n = 0;
  src[n++] = in[1];
  if (op->bias) src[n++] = in[2];
  if (op->fold && op->base.desc.u.conv.fold_bn)
    for (int i = 3; i < 7; ++i) src[n++] = in[i];
  return n;
}

static int q_fresh(const cpu_q *q, const mbk_tensor *const *src, int32_t n) {
  if (!q->valid || q->n_src != n) return 0;
  for (int32_t i = 0; i < n; ++i)
    if (q->id[i] != src[i]->id || q->version[i] != src[i]->version) return 0;
  return 1;
}

/* Requantises the weights and remakes the primitive with their output scales. */
static msc_status q_refresh(cpu_weighted *op, mbk_tensor *const *in) {
  mbk_ctx *ctx = op->base.ctx;
  cpu_q *q = op->q;
  const mbk_tensor *src[Q_SRC];
  int32_t n = q_sources(op, in, src);
  if (q_fresh(q, src, n)) return MSC_OK;
  q->valid = 0;
  const int64_t oc = op->y_dims[1];
  int64_t k = 1;
  for (int32_t i = 1; i < op->w_ndim; ++i) k *= op->w_dims[i];
  dnnl_memory_desc_t pmd, bmd;
  dnnl_memory_t wm;
  void *wh = NULL;
  CPU_CHECK(cpu_plain_md(op->w_ndim, op->w_dims, &pmd));
  CPU_CHECK(cpu_view_as(ctx, in[1], &pmd, &q->r_wp, &wm));
  CPU_TRY(dnnl_memory_get_data_handle(wm, &wh), "int8 weights");
  const float *w = wh;
  CPU_CHECK(cpu_plain_md(1, &op->y_dims[1], &bmd));
  CPU_CHECK(cpu_buf_ensure(ctx, &q->b_q, &bmd));
  float *b = q->b_q.data;
  /* The folded batch norm (scale, bias), else scale 1 and the op's own bias. 1-D tensors
   * are always plain (cpu_internal.h). */
  if (op->fold && op->base.desc.u.conv.fold_bn) {
    cpu_conv_fold_arith(in[3]->data, in[4]->data, in[5]->data, in[6]->data,
                        op->base.desc.u.conv.bn_eps, oc, q->fold, b);
  } else {
    for (int64_t o = 0; o < oc; ++o) {
      q->fold[o] = 1.0f;
      b[o] = op->bias ? ((const float *)in[2]->data)[o] : 0.0f;
    }
  }
  for (int64_t o = 0; o < oc; ++o) {
    float mx = 0.0f;
    for (int64_t j = 0; j < k; ++j) mx = fmaxf(mx, fabsf(w[o * k + j]));
    mx *= fabsf(q->fold[o]);
    /* An all-zero channel quantises to zeros whatever its scale. */
    const float s_w = mx > 0.0f && isfinite(mx) ? 127.0f / mx : 1.0f;
    q->w_scale[o] = q->fold[o] * s_w;
    q->out_scale[o] = 1.0f / (q->s_in * s_w);
    b[o] *= q->s_in * s_w;
  }
  dnnl_primitive_desc_t pd;
  CPU_CHECK(op->make_fwd(op, &pd));
  CPU_CHECK(cpu_prim_init(ctx, &op->fwd, pd));
  CPU_CHECK(cpu_buf_ensure(ctx, &q->w_q, cpu_pd_md(&op->fwd, dnnl_query_weights_md, 0)));
  CPU_CHECK(cpu_scaled_reorder(ctx, in[1]->mem, q->w_q.mem, oc, q->w_scale));
  q->n_src = n;
  for (int32_t i = 0; i < n; ++i) q->id[i] = src[i]->id, q->version[i] = src[i]->version;
  q->valid = 1;
  return MSC_OK;
}

/* x (float, any layout) -> q->x_q in the primitive's u8/s8 source layout, ·s_in. */
static msc_status q_input(cpu_weighted *op, const mbk_tensor *x) {
  mbk_ctx *ctx = op->base.ctx;
  cpu_q *q = op->q;
  const dnnl_memory_desc_t *want = cpu_pd_md(&op->fwd, dnnl_query_src_md, 0);
  CPU_CHECK(cpu_buf_ensure(ctx, &q->x_q, want));
  if (!q->quant.prim || !cpu_md_equal(&q->quant_src, &x->md)) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    CPU_TRY(dnnl_primitive_attr_clone(&attr, ctx->attr), "int8 input attributes");
    cpu_ctx_threads(ctx);
    dnnl_status_t s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &q->s_in);
    if (s == dnnl_success)
      s = dnnl_reorder_primitive_desc_create(&pd, &x->md, ctx->engine, want, ctx->engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return cpu_dnnl_fail(s, "int8 input reorder");
    CPU_CHECK(cpu_prim_init(ctx, &q->quant, pd));
    q->quant_src = x->md;
  }
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, x->mem}, {DNNL_ARG_DST, q->x_q.mem}};
  return cpu_prim_exec(ctx, &q->quant, 2, args);
}

msc_status cpu_q_forward(cpu_weighted *op, mbk_tensor *const *in, mbk_tensor *const *out) {
  mbk_ctx *ctx = op->base.ctx;
  const mbk_op_desc *d = &op->base.desc;
  const char *name = op->base.vt->name;
  static const char *const bn_names[4] = {"gamma", "beta", "running_mean", "running_var"};
  int32_t k = 3;
  if (op->bias) CPU_CHECK(cpu_tensor_expect(in[2], 1, &op->y_dims[1], name, "b"));
  if (op->fold && d->u.conv.fold_bn) {
    for (int i = 0; i < 4; ++i)
      CPU_CHECK(cpu_tensor_expect(in[3 + i], 1, &op->y_dims[1], name, bn_names[i]));
    k += 4;
  }
  CPU_CHECK(q_refresh(op, in));
  CPU_CHECK(q_input(op, in[0]));
  const dnnl_memory_desc_t *ymd = cpu_pd_md(&op->fwd, dnnl_query_dst_md, 0);
  if (op->fold && d->u.conv.residual) {
    CPU_CHECK(cpu_tensor_expect(in[k], op->y_ndim, op->y_dims, name, "r"));
    CPU_CHECK(cpu_conv_residual_into(op, in[k], out[0], ymd));
  } else {
    CPU_CHECK(cpu_tensor_set(out[0], op->y_ndim, op->y_dims, ymd));
  }
  dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, op->q->x_q.mem},
                             {DNNL_ARG_WEIGHTS, op->q->w_q.mem},
                             {DNNL_ARG_BIAS, op->q->b_q.mem},
                             {DNNL_ARG_DST, out[0]->mem}};
  return cpu_prim_exec(ctx, &op->fwd, 4, args);
}
