/*
 * cpu_weighted.c — the machinery shared by convolution, transposed convolution and
 * linear (inner product):
 * both are "y = W ⊛ x + b" with a forward primitive, a backward-data primitive and a
 * backward-weights primitive, all created with format "any" so that oneDNN picks its
 * fastest layouts, and inputs converted only when they arrive in another layout.
 * cpu_conv.c, cpu_deconv.c and cpu_linear.c only say how to build the three oneDNN
 * descriptors (and cpu_deconv.c that its weights come with two axes swapped).
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_weighted.h"

static const char *const ARG_NAMES[3] = {"x", "w", "b"};

static void weighted_destroy(mbk_op *base) {
  cpu_weighted *op = (cpu_weighted *)base;
  cpu_prim_destroy(&op->fwd);
  cpu_prim_destroy(&op->bwd_data);
  cpu_prim_destroy(&op->bwd_weights);
  cpu_reorder *rs[] = {&op->r_x,  &op->r_w,  &op->r_xs,  &op->r_ws, &op->r_dy,
                       &op->r_wd, &op->r_xw, &op->r_dyw, &op->r_dw};
  for (size_t i = 0; i < sizeof rs / sizeof rs[0]; ++i) cpu_reorder_destroy(rs[i]);
  cpu_buf_destroy(&op->dw_buf);
  cpu_buf_destroy(&op->db_buf);
  if (op->w_view) dnnl_memory_destroy(op->w_view);
  if (op->dw_view) dnnl_memory_destroy(op->dw_view);
  cpu_conv_fold_destroy(op->fold);
  cpu_q_destroy(op->q);
  cpu_k8_destroy(op->k8);
  cpu_c16_destroy(op->c16);
  free(op);
}

/* Points *view (a memory of layout md) at data, making it when the layout changed. */
static msc_status view_at(mbk_ctx *ctx, dnnl_memory_t *view, const dnnl_memory_desc_t *md,
                          void *data) {
  const dnnl_memory_desc_t *cur = NULL;
  if (*view) dnnl_memory_get_memory_desc(*view, &cur);
  if (*view && cpu_md_equal(cur, md)) {
    CPU_TRY(dnnl_memory_set_data_handle(*view, data), "weight view");
    return MSC_OK;
  }
  if (*view) dnnl_memory_destroy(*view);
  *view = NULL;
  CPU_TRY(dnnl_memory_create(view, md, ctx->engine, data), "weight view");
  return MSC_OK;
}

/* 1 when the weight tensors are read and written through a view (w_swap, w_groups). */
static int w_viewed(const cpu_weighted *op) {
  return op->w_swap || op->w_groups > 1;
}

/* The md of a weight tensor's bytes (layout md) in oneDNN's terms: the first two axes
 * swapped (w_swap, any blocked layout), or the first axis split into [G, OC/G] (w_groups;
 * oneDNN reshapes plain layouts, which is what weights are uploaded in). */
static msc_status swapped_md(const cpu_weighted *op, const dnnl_memory_desc_t *md,
                             dnnl_memory_desc_t *out) {
  if (op->w_groups > 1) {
    const int64_t g = op->w_groups;
    dnnl_dims_t dd = {g, op->w_dims[0] / g, op->w_dims[1], op->w_dims[2], op->w_dims[3]};
    CPU_TRY(dnnl_memory_desc_reshape(out, md, 5, dd), "grouped weight view");
    return MSC_OK;
  }
  static const int perm[4] = {1, 0, 2, 3};
  CPU_TRY(dnnl_memory_desc_permute_axes(out, md, perm), "weight axes");
  return MSC_OK;
}

/* A view of t in layout want: in r's own buffer (cached while t is unchanged) when
 * shared is 0, else in the context's buffer for role (cpu_view_shared). */
static msc_status view_of(mbk_ctx *ctx, const mbk_tensor *t, const dnnl_memory_desc_t *want,
                          int shared, cpu_shared_role role, cpu_reorder *r,
                          dnnl_memory_t *out) {
  return shared ? cpu_view_shared(ctx, t, want, role, r, out)
                : cpu_view_as(ctx, t, want, r, out);
}

/* The weights of t in layout want, as view_of, through the swapped view if w_swap. */
static msc_status weights_as(cpu_weighted *op, const mbk_tensor *t,
                             const dnnl_memory_desc_t *want, int shared, cpu_reorder *r,
                             dnnl_memory_t *out) {
  mbk_ctx *ctx = op->base.ctx;
  if (!w_viewed(op)) return view_of(ctx, t, want, shared, CPU_SHARED_W, r, out);
  /* A stand-in for t with the same identity (so r's cache still applies) whose memory
   * is the permuted view of t's bytes. */
  mbk_tensor v = *t;
  CPU_CHECK(swapped_md(op, &t->md, &v.md));
  CPU_CHECK(view_at(ctx, &op->w_view, &v.md, t->data));
  v.mem = op->w_view;
  return view_of(ctx, &v, want, shared, CPU_SHARED_W, r, out);
}

static msc_status check_params(cpu_weighted *op, mbk_tensor *const *in) {
  const char *name = op->base.vt->name;
  CPU_CHECK(cpu_tensor_expect(in[0], op->x_ndim, op->x_dims, name, ARG_NAMES[0]));
  CPU_CHECK(cpu_tensor_expect(in[1], op->w_ndim, op->w_swap ? op->w_user_dims : op->w_dims,
                              name, ARG_NAMES[1]));
  return MSC_OK;
}

static msc_status weighted_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                   mbk_tensor *const *out) {
  cpu_weighted *op = (cpu_weighted *)base;
  mbk_ctx *ctx = base->ctx;
  const char *name = base->vt->name;
  CPU_CHECK(check_params(op, in));
  if (op->q) {
    if (training)
      return CPU_FAIL(MSC_E_UNSUPPORTED, "cpu: %s: an int8 op runs in inference only", name);
    return cpu_q_forward(op, in, out);
  }
  if (op->fold) {
    if (training)
      return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: %s: a fused op runs in inference only",
                      name);
    if (op->k8) return cpu_k8_fused_forward(op, in, out);
    if (op->c16) return cpu_c16_fused_forward(op, in, out);
    return cpu_conv_fused_forward(op, in, out);
  }
  if (op->bias) {
    CPU_CHECK(cpu_tensor_expect(in[2], 1, &op->y_dims[1], name, ARG_NAMES[2]));
  } else if (in[2]) {
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: %s: b given to an op without bias", name);
  }
  if (op->k8) return cpu_k8_forward(op, training, in, out);
  if (op->c16) return cpu_c16_forward(op, training, in, out);
  dnnl_memory_t x, w, b = NULL;
  /* Training: x and w change at every step, so their conversions go to the context's
   * shared buffers; inference keeps them per op (frozen weights convert once). */
  CPU_CHECK(view_of(ctx, in[0], cpu_pd_md(&op->fwd, dnnl_query_src_md, 0), training,
                    CPU_SHARED_X, training ? &op->r_xs : &op->r_x, &x));
  CPU_CHECK(weights_as(op, in[1], cpu_pd_md(&op->fwd, dnnl_query_weights_md, 0), training,
                       training ? &op->r_ws : &op->r_w, &w));
  if (op->bias) b = in[2]->mem; /* 1-D tensors are always plain */
  CPU_CHECK(cpu_tensor_set(out[0], op->y_ndim, op->y_dims,
                           cpu_pd_md(&op->fwd, dnnl_query_dst_md, 0)));
  dnnl_exec_arg_t args[5] = {
      {DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, out[0]->mem}};
  int n = 3;
  if (b) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, b};
  return cpu_prim_exec(ctx, &op->fwd, n, args);
}

static msc_status backward_data(cpu_weighted *op, mbk_tensor *w_t, mbk_tensor *dy_t,
                                mbk_tensor *dx_t) {
  mbk_ctx *ctx = op->base.ctx;
  if (!op->bwd_data.prim) {
    dnnl_primitive_desc_t pd;
    CPU_CHECK(op->make_bwd_data(op, &pd));
    CPU_CHECK(cpu_prim_init(ctx, &op->bwd_data, pd));
  }
  dnnl_memory_t w, dy;
  /* Backward is training: every conversion goes to the context's shared buffers. */
  CPU_CHECK(cpu_view_shared(ctx, dy_t, cpu_pd_md(&op->bwd_data, dnnl_query_diff_dst_md, 0),
                            CPU_SHARED_DY, &op->r_dy, &dy));
  CPU_CHECK(weights_as(op, w_t, cpu_pd_md(&op->bwd_data, dnnl_query_weights_md, 0), 1,
                       &op->r_wd, &w));
  CPU_CHECK(cpu_tensor_set(dx_t, op->x_ndim, op->x_dims,
                           cpu_pd_md(&op->bwd_data, dnnl_query_diff_src_md, 0)));
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx_t->mem}};
  return cpu_prim_exec(ctx, &op->bwd_data, 3, args);
}

static msc_status backward_weights(cpu_weighted *op, mbk_tensor *x_t, mbk_tensor *dy_t,
                                   mbk_tensor *dw_t, mbk_tensor *db_t) {
  mbk_ctx *ctx = op->base.ctx;
  if (!op->bwd_weights.prim) {
    dnnl_primitive_desc_t pd;
    CPU_CHECK(op->make_bwd_weights(op, &pd));
    CPU_CHECK(cpu_prim_init(ctx, &op->bwd_weights, pd));
  }
  dnnl_memory_t x, dy;
  CPU_CHECK(cpu_view_shared(ctx, x_t, cpu_pd_md(&op->bwd_weights, dnnl_query_src_md, 0),
                            CPU_SHARED_X, &op->r_xw, &x));
  CPU_CHECK(cpu_view_shared(ctx, dy_t, cpu_pd_md(&op->bwd_weights, dnnl_query_diff_dst_md, 0),
                            CPU_SHARED_DY, &op->r_dyw, &dy));
  /* dw in the primitive's layout lives only until it is written out plain below. */
  CPU_CHECK(cpu_buf_shared(ctx, &op->dw_buf,
                           cpu_pd_md(&op->bwd_weights, dnnl_query_diff_weights_md, 0),
                           CPU_SHARED_W));
  dnnl_exec_arg_t args[5] = {
      {DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, op->dw_buf.mem}};
  int n = 3;
  if (op->bias) {
    CPU_CHECK(cpu_buf_ensure(ctx, &op->db_buf,
                             cpu_pd_md(&op->bwd_weights, dnnl_query_diff_weights_md, 1)));
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, op->db_buf.mem};
  }
  CPU_CHECK(cpu_prim_exec(ctx, &op->bwd_weights, n, args));
  /* Parameter gradients leave in plain layout (see cpu_internal.h). */
  if (dw_t && w_viewed(op)) {
    /* Plain in the user's axis order; written through a view with oneDNN's order. */
    dnnl_memory_desc_t plain, swapped;
    CPU_CHECK(cpu_plain_md(op->w_ndim, op->w_user_dims, &plain));
    CPU_CHECK(cpu_tensor_set(dw_t, op->w_ndim, op->w_user_dims, &plain));
    CPU_CHECK(swapped_md(op, &plain, &swapped));
    CPU_CHECK(view_at(ctx, &op->dw_view, &swapped, dw_t->data));
    CPU_CHECK(cpu_reorder_exec(ctx, &op->r_dw, op->dw_buf.mem, op->dw_view));
  } else if (dw_t) {
    dnnl_memory_desc_t plain;
    CPU_CHECK(cpu_plain_md(op->w_ndim, op->w_dims, &plain));
    CPU_CHECK(
        cpu_write_as(ctx, op->dw_buf.mem, dw_t, op->w_ndim, op->w_dims, &plain, &op->r_dw));
  }
  if (db_t) {
    CPU_CHECK(cpu_tensor_set(db_t, 1, &op->y_dims[1], &op->db_buf.md));
    memcpy(db_t->data, op->db_buf.data, (size_t)op->y_dims[1] * sizeof(float));
  }
  return MSC_OK;
}

static msc_status weighted_backward(mbk_op *base, mbk_tensor *const *in,
                                    mbk_tensor *const *out) {
  cpu_weighted *op = (cpu_weighted *)base;
  const char *name = base->vt->name;
  if (op->fold || op->q)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: %s: a fused or int8 op has no backward",
                    name);
  CPU_CHECK(check_params(op, in));
  CPU_CHECK(cpu_tensor_expect(in[2], op->y_ndim, op->y_dims, name, "dy"));
  if (out[2] && !op->bias)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: %s: db asked of an op without bias", name);
  if (op->k8) return cpu_k8_backward(op, in, out);
  if (op->c16) return cpu_c16_backward(op, in, out);
  if (out[0]) CPU_CHECK(backward_data(op, in[1], in[2], out[0]));
  if (out[1] || out[2]) CPU_CHECK(backward_weights(op, in[0], in[2], out[1], out[2]));
  return MSC_OK;
}

const mbk_op_vt cpu_weighted_vt_conv = {"conv2d", weighted_forward, weighted_backward,
                                        weighted_destroy};
const mbk_op_vt cpu_weighted_vt_linear = {"linear", weighted_forward, weighted_backward,
                                          weighted_destroy};
const mbk_op_vt cpu_weighted_vt_deconv = {"deconv2d", weighted_forward, weighted_backward,
                                          weighted_destroy};

msc_status cpu_weighted_finish(cpu_weighted *op, mbk_op **out) {
  if (op->k8 || op->c16) { /* (no oneDNN primitive: cpu_conv_k8.c or _c16.c runs it) */
    *out = &op->base;
    return MSC_OK;
  }
  dnnl_primitive_desc_t pd;
  msc_status st = op->make_fwd(op, &pd);
  if (st == MSC_OK) st = cpu_prim_init(op->base.ctx, &op->fwd, pd);
  if (st != MSC_OK) {
    weighted_destroy(&op->base);
    return st;
  }
  *out = &op->base;
  return MSC_OK;
}
