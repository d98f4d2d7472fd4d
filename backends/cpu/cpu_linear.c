/*
 * cpu_linear.c — fully connected layer y = x·wᵀ + b (w is out×in, as in PyTorch) as a
 * oneDNN inner product; the forward/backward machinery is in cpu_weighted.c.
 */
#include "cpu_weighted.h"

/* Source, weights and destination in the context's compute type (cpu_op_dt), the bias
 * in float32; with grad_w (backward-weights) all in float32 (cpu_grad_w_dt). */
static msc_status linear_mds(const cpu_weighted *op, int grad_w, dnnl_memory_desc_t *x,
                             dnnl_memory_desc_t *w, dnnl_memory_desc_t *b,
                             dnnl_memory_desc_t *y) {
  dnnl_data_type_t dt = grad_w ? cpu_grad_w_dt(op->base.ctx) : cpu_op_dt(op->base.ctx);
  /* int8 (cpu_int8.c): u8/s8 source, s8 weights, float32 output. */
  int q = op->q && !grad_w;
  CPU_CHECK(cpu_any_md_dt(2, op->x_dims, q ? cpu_q_src_dt(op) : dt, x));
  CPU_CHECK(cpu_any_md_dt(2, op->w_dims, q ? dnnl_s8 : dt, w));
  CPU_CHECK(cpu_plain_md(1, &op->y_dims[1], b));
  return cpu_any_md_dt(2, op->y_dims, q ? dnnl_f32 : dt, y);
}

static msc_status linear_fwd(cpu_weighted *op, dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t x, w, b, y;
  CPU_CHECK(linear_mds(op, 0, &x, &w, &b, &y));
  dnnl_inner_product_desc_t id;
  /* int8 always has a bias (the scaled one, cpu_int8.c) and is an inference primitive. */
  CPU_TRY(dnnl_inner_product_forward_desc_init(
              &id, op->q ? dnnl_forward_inference : dnnl_forward_training, &x, &w,
              op->bias || op->q ? &b : NULL, &y),
          "linear forward descriptor");
  if (!op->q) return cpu_pd_create(op->base.ctx, pd, &id, NULL, "linear forward");
  mbk_ctx *ctx = op->base.ctx;
  dnnl_primitive_attr_t attr = NULL;
  CPU_TRY(dnnl_primitive_attr_clone(&attr, ctx->attr), "linear attributes");
  msc_status st = cpu_q_attr(op, attr);
  if (st == MSC_OK) {
    cpu_ctx_threads(ctx);
    dnnl_status_t s = dnnl_primitive_desc_create(pd, &id, attr, ctx->engine, NULL);
    if (s != dnnl_success) st = cpu_dnnl_fail(s, "linear forward (int8)");
  }
  dnnl_primitive_attr_destroy(attr);
  return st;
}

static msc_status linear_bwd_data(cpu_weighted *op, dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t x, w, b, y;
  CPU_CHECK(linear_mds(op, 0, &x, &w, &b, &y));
  dnnl_inner_product_desc_t id;
  CPU_TRY(dnnl_inner_product_backward_data_desc_init(&id, &x, &w, &y),
          "linear backward-data descriptor");
  return cpu_pd_create(op->base.ctx, pd, &id, op->fwd.pd, "linear backward data");
}

static msc_status linear_bwd_weights(cpu_weighted *op, dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t x, w, b, y;
  CPU_CHECK(linear_mds(op, 1, &x, &w, &b, &y));
  dnnl_inner_product_desc_t id;
  CPU_TRY(dnnl_inner_product_backward_weights_desc_init(&id, &x, &w, op->bias ? &b : NULL, &y),
          "linear backward-weights descriptor");
  return cpu_pd_create(op->base.ctx, pd, &id, op->fwd.pd, "linear backward weights");
}

msc_status cpu_linear_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, &cpu_weighted_vt_linear, sizeof(cpu_weighted),
                         &base));
  cpu_weighted *op = (cpu_weighted *)base;
  op->bias = d->u.linear.bias != 0;
  op->x_ndim = 2;
  op->x_dims[0] = d->n;
  op->x_dims[1] = d->c;
  op->w_ndim = 2;
  op->w_dims[0] = d->u.linear.out_f;
  op->w_dims[1] = d->c;
  op->y_ndim = mbk_op_out_dims(d, op->y_dims);
  op->make_fwd = linear_fwd;
  op->make_bwd_data = linear_bwd_data;
  op->make_bwd_weights = linear_bwd_weights;
  msc_status st = cpu_q_create(op);
  if (st != MSC_OK) {
    mbk_op_destroy(base);
    return st;
  }
  return cpu_weighted_finish(op, out);
}
