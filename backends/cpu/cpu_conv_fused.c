/*
 * cpu_conv_fused.c — CONV2D's inference fusions (backend.h, API 8): an inference batch
 * norm folded into the weights and bias, a residual input added through oneDNN's sum
 * post-op and a ReLU through an eltwise post-op, so that conv → BN (→ ReLU) and
 * conv → BN → add → ReLU each run as one convolution (docs/performance.md).
 *
 * The folded weights are made by one reorder with per-channel scales straight into the
 * primitive's layout; they are kept until one of the five tensors they come from (w,
 * gamma, beta, running_mean, running_var) changes identity or version. Every write to a
 * CPU tensor bumps its version (upload, optimiser step, a training batch norm's
 * running statistics), so a forward after any of those refolds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_weighted.h"

enum { FOLD_SRC = 5 }; /* w, gamma, beta, running_mean, running_var */

struct cpu_conv_fold {
  int32_t valid;
  uint64_t id[FOLD_SRC], version[FOLD_SRC]; /* what w_buf and b_buf were folded from */
  cpu_buf w_buf;                            /* folded weights in the primitive's layout */
  cpu_buf b_buf;                            /* folded bias, plain */
  cpu_buf scale;                            /* per output channel: γ/√(σ²+ε) */
  cpu_reorder r_res;                        /* the residual in the output's layout */
};

msc_status cpu_conv_fold_create(cpu_weighted *op) {
  op->fold = calloc(1, sizeof *op->fold);
  if (!op->fold) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: conv2d fusion state");
  return MSC_OK;
}

void cpu_conv_fold_destroy(cpu_conv_fold *f) {
  if (!f) return;
  cpu_buf_destroy(&f->w_buf);
  cpu_buf_destroy(&f->b_buf);
  cpu_buf_destroy(&f->scale);
  cpu_reorder_destroy(&f->r_res);
  free(f);
}

msc_status cpu_conv_post_ops(mbk_ctx *ctx, const mbk_op_desc *d, dnnl_primitive_attr_t *out) {
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  *out = NULL;
  /* A clone keeps the context's user-managed scratchpad. */
  CPU_TRY(dnnl_primitive_attr_clone(&attr, ctx->attr), "conv2d attributes");
  dnnl_status_t s = dnnl_post_ops_create(&po);
  /* oneDNN applies post-ops in order: the sum adds what dst holds (the residual) to
   * conv + bias, then the ReLU sees that sum. */
  if (s == dnnl_success && d->u.conv.residual) s = dnnl_post_ops_append_sum(po, 1.0f);
  if (s == dnnl_success && d->u.conv.relu)
    s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
  if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, po);
  if (po) dnnl_post_ops_destroy(po);
  if (s != dnnl_success) {
    dnnl_primitive_attr_destroy(attr);
    return cpu_dnnl_fail(s, "conv2d post-ops");
  }
  *out = attr;
  return MSC_OK;
}

/* s[o] = γ[o]/√(σ²[o]+ε) and b'[o] = β[o] − μ[o]·s[o], in float as oneDNN's batch norm
 * computes its scale. */
void cpu_conv_fold_arith(const float *gamma, const float *beta, const float *mean,
                         const float *var, float eps, int64_t oc, float *scale, float *bf) {
  for (int64_t o = 0; o < oc; ++o) {
    scale[o] = gamma[o] / sqrtf(var[o] + eps);
    bf[o] = beta[o] - mean[o] * scale[o];
  }
}

static int fold_fresh(const cpu_conv_fold *f, const mbk_tensor *const *src) {
  if (!f->valid) return 0;
  for (int i = 0; i < FOLD_SRC; ++i)
    if (f->id[i] != src[i]->id || f->version[i] != src[i]->version) return 0;
  return 1;
}

/* dst = w·scale[o] per output channel, converted into dst's layout by one reorder with
 * per-channel output scales (mask 1: axis 0), so no plain copy of the weights is kept.
 * The scales are baked into the primitive: it is made for each fold (rare). */
msc_status cpu_scaled_reorder(mbk_ctx *ctx, dnnl_memory_t src, dnnl_memory_t dst, int64_t oc,
                              const float *scale) {
  const dnnl_memory_desc_t *smd, *dmd;
  CPU_TRY(dnnl_memory_get_memory_desc(src, &smd), "conv2d fold");
  CPU_TRY(dnnl_memory_get_memory_desc(dst, &dmd), "conv2d fold");
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  CPU_TRY(dnnl_primitive_attr_clone(&attr, ctx->attr), "conv2d fold attributes");
  cpu_ctx_threads(ctx);
  dnnl_status_t s = dnnl_primitive_attr_set_output_scales(attr, oc, 1, scale);
  if (s == dnnl_success)
    s = dnnl_reorder_primitive_desc_create(&pd, smd, ctx->engine, dmd, ctx->engine, attr);
  dnnl_primitive_attr_destroy(attr);
  if (s != dnnl_success) return cpu_dnnl_fail(s, "conv2d fold reorder");
  cpu_prim p;
  memset(&p, 0, sizeof p);
  msc_status st = cpu_prim_init(ctx, &p, pd);
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  if (st == MSC_OK) st = cpu_prim_exec(ctx, &p, 2, args);
  cpu_prim_destroy(&p);
  return st;
}

/* Refolds when a source changed; *w and *b are then the primitive's weights and bias. */
static msc_status fold_refresh(cpu_weighted *op, const mbk_tensor *const *src, dnnl_memory_t *w,
                               dnnl_memory_t *b) {
  mbk_ctx *ctx = op->base.ctx;
  cpu_conv_fold *f = op->fold;
  if (!fold_fresh(f, src)) {
    f->valid = 0;
    const int64_t oc = op->y_dims[1];
    dnnl_memory_desc_t bmd;
    CPU_CHECK(cpu_plain_md(1, &op->y_dims[1], &bmd));
    CPU_CHECK(cpu_buf_ensure(ctx, &f->b_buf, &bmd));
    CPU_CHECK(cpu_buf_ensure(ctx, &f->scale, &bmd));
    /* 1-D tensors are always plain (cpu_internal.h). */
    cpu_conv_fold_arith(src[1]->data, src[2]->data, src[3]->data, src[4]->data,
                        op->base.desc.u.conv.bn_eps, oc, f->scale.data, f->b_buf.data);
    CPU_CHECK(cpu_buf_ensure(ctx, &f->w_buf, cpu_pd_md(&op->fwd, dnnl_query_weights_md, 0)));
    CPU_CHECK(cpu_scaled_reorder(ctx, src[0]->mem, f->w_buf.mem, oc, f->scale.data));
    for (int i = 0; i < FOLD_SRC; ++i) f->id[i] = src[i]->id, f->version[i] = src[i]->version;
    f->valid = 1;
  }
  *w = f->w_buf.mem;
  *b = f->b_buf.mem;
  return MSC_OK;
}

/* Gives y the output layout md holding r's values (the sum post-op adds what dst holds).
 * r may be y itself (the core hands the residual's tensor over when nothing reads it
 * later): then nothing is copied when the layouts agree. */
msc_status cpu_conv_residual_into(cpu_weighted *op, const mbk_tensor *r, mbk_tensor *y,
                                  const dnnl_memory_desc_t *md) {
  mbk_ctx *ctx = op->base.ctx;
  dnnl_memory_t rv;
  void *h = NULL;
  CPU_CHECK(cpu_view_as(ctx, r, md, &op->fold->r_res, &rv)); /* before y is touched */
  CPU_CHECK(cpu_tensor_set(y, op->y_ndim, op->y_dims, md));
  CPU_TRY(dnnl_memory_get_data_handle(rv, &h), "conv2d residual");
  if (h != y->data) memcpy(y->data, h, dnnl_memory_desc_get_size(md));
  return MSC_OK;
}

msc_status cpu_conv_fused_forward(cpu_weighted *op, mbk_tensor *const *in,
                                  mbk_tensor *const *out) {
  mbk_ctx *ctx = op->base.ctx;
  const mbk_op_desc *d = &op->base.desc;
  const char *name = op->base.vt->name;
  static const char *const bn_names[4] = {"gamma", "beta", "running_mean", "running_var"};
  int32_t k = 3;
  dnnl_memory_t x, w, b = NULL;
  CPU_CHECK(cpu_view_as(ctx, in[0], cpu_pd_md(&op->fwd, dnnl_query_src_md, 0), &op->r_x, &x));
  if (d->u.conv.fold_bn) {
    const mbk_tensor *src[FOLD_SRC] = {in[1], in[3], in[4], in[5], in[6]};
    for (int i = 0; i < 4; ++i)
      CPU_CHECK(cpu_tensor_expect(in[3 + i], 1, &op->y_dims[1], name, bn_names[i]));
    CPU_CHECK(fold_refresh(op, src, &w, &b));
    k += 4;
  } else {
    CPU_CHECK(
        cpu_view_as(ctx, in[1], cpu_pd_md(&op->fwd, dnnl_query_weights_md, 0), &op->r_w, &w));
    if (op->bias) b = in[2]->mem;
  }
  const dnnl_memory_desc_t *ymd = cpu_pd_md(&op->fwd, dnnl_query_dst_md, 0);
  if (d->u.conv.residual) {
    CPU_CHECK(cpu_tensor_expect(in[k], op->y_ndim, op->y_dims, name, "r"));
    CPU_CHECK(cpu_conv_residual_into(op, in[k], out[0], ymd));
  } else {
    CPU_CHECK(cpu_tensor_set(out[0], op->y_ndim, op->y_dims, ymd));
  }
  dnnl_exec_arg_t args[5] = {
      {DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, out[0]->mem}};
  int n = 3;
  if (b) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, b};
  return cpu_prim_exec(ctx, &op->fwd, n, args);
}
