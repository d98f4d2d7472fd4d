/*
 * cpu_upsample.c — nearest and bilinear upsampling to an output size (a decoder's
 * "make it bigger again") as oneDNN resampling primitives.
 *
 * The primitives get the destination's dimensions and no factors, so oneDNN takes the
 * ratio OH/H itself and no float factor can round the output size off by one.
 * resampling_nearest picks source row round((i + 0.5)·H/OH − 0.5), which for an integer
 * ratio s is ⌊i/s⌋ (PyTorch's nearest; the contract allows nearest only there);
 * resampling_linear is PyTorch's bilinear with align_corners=False (half-pixel centres,
 * edges clamped), any ratio. Backward needs
 * nothing saved from a forward (the op is linear in x), so it does not ask for one: its
 * primitive is made from a forward descriptor of its own, as oneDNN wants a hint.
 */
#include <stdlib.h>

#include "cpu_internal.h"

typedef struct cpu_upsample {
  mbk_op base;
  int64_t x_dims[MBK_MAX_DIMS], y_dims[MBK_MAX_DIMS];
  dnnl_memory_desc_t fwd_md; /* src layout the forward primitive was made for */
  cpu_prim fwd, bwd;
  cpu_reorder r_dy;
} cpu_upsample;

static void upsample_destroy(mbk_op *base) {
  cpu_upsample *op = (cpu_upsample *)base;
  cpu_prim_destroy(&op->fwd);
  cpu_prim_destroy(&op->bwd);
  cpu_reorder_destroy(&op->r_dy);
  free(op);
}

static dnnl_alg_kind_t upsample_alg(const cpu_upsample *op) {
  return op->base.desc.u.upsample.mode == MBK_UPSAMPLE_BILINEAR ? dnnl_resampling_linear
                                                                : dnnl_resampling_nearest;
}

/* A forward primitive descriptor for source layout src (destination: oneDNN's choice). */
static msc_status forward_pd(cpu_upsample *op, const dnnl_memory_desc_t *src,
                             dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t y;
  CPU_CHECK(cpu_any_md_dt(4, op->y_dims, src->data_type, &y)); /* the input's type */
  dnnl_resampling_desc_t rd;
  CPU_TRY(dnnl_resampling_forward_desc_init(&rd, dnnl_forward_training, upsample_alg(op), NULL,
                                            src, &y),
          "upsample forward descriptor");
  return cpu_pd_create(op->base.ctx, pd, &rd, NULL, "upsample forward");
}

static msc_status upsample_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                   mbk_tensor *const *out) {
  (void)training; /* nothing to save */
  cpu_upsample *op = (cpu_upsample *)base;
  mbk_ctx *ctx = base->ctx;
  CPU_CHECK(cpu_tensor_expect(in[0], 4, op->x_dims, "upsample", "x"));
  /* Made for the layout x arrives in (blocked after a conv), so x is never converted. */
  if (!op->fwd.prim || !cpu_md_equal(&op->fwd_md, &in[0]->md)) {
    dnnl_primitive_desc_t pd;
    CPU_CHECK(forward_pd(op, &in[0]->md, &pd));
    CPU_CHECK(cpu_prim_init(ctx, &op->fwd, pd));
    op->fwd_md = in[0]->md;
  }
  CPU_CHECK(cpu_tensor_set(out[0], 4, op->y_dims, cpu_pd_md(&op->fwd, dnnl_query_dst_md, 0)));
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, in[0]->mem}, {DNNL_ARG_DST, out[0]->mem}};
  return cpu_prim_exec(ctx, &op->fwd, 2, args);
}

static msc_status make_backward(cpu_upsample *op) {
  mbk_ctx *ctx = op->base.ctx;
  dnnl_memory_desc_t plain, dx, dy;
  CPU_CHECK(cpu_plain_md(4, op->x_dims, &plain));
  CPU_CHECK(cpu_any_md(4, op->x_dims, &dx));
  CPU_CHECK(cpu_any_md(4, op->y_dims, &dy));
  dnnl_resampling_desc_t rd;
  CPU_TRY(dnnl_resampling_backward_desc_init(&rd, upsample_alg(op), NULL, &dx, &dy),
          "upsample backward descriptor");
  dnnl_primitive_desc_t hint, pd;
  CPU_CHECK(forward_pd(op, &plain, &hint));
  msc_status st = cpu_pd_create(ctx, &pd, &rd, hint, "upsample backward");
  dnnl_primitive_desc_destroy(hint);
  if (st != MSC_OK) return st;
  return cpu_prim_init(ctx, &op->bwd, pd);
}

static msc_status upsample_backward(mbk_op *base, mbk_tensor *const *in,
                                    mbk_tensor *const *out) {
  cpu_upsample *op = (cpu_upsample *)base;
  mbk_ctx *ctx = base->ctx;
  CPU_CHECK(cpu_tensor_expect(in[0], 4, op->y_dims, "upsample", "dy"));
  if (!op->bwd.prim) CPU_CHECK(make_backward(op));
  dnnl_memory_t dy;
  CPU_CHECK(
      cpu_view_as(ctx, in[0], cpu_pd_md(&op->bwd, dnnl_query_diff_dst_md, 0), &op->r_dy, &dy));
  CPU_CHECK(
      cpu_tensor_set(out[0], 4, op->x_dims, cpu_pd_md(&op->bwd, dnnl_query_diff_src_md, 0)));
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, out[0]->mem}};
  return cpu_prim_exec(ctx, &op->bwd, 2, args);
}

static const mbk_op_vt upsample_vt = {"upsample", upsample_forward, upsample_backward,
                                      upsample_destroy};

msc_status cpu_upsample_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, &upsample_vt, sizeof(cpu_upsample), &base));
  cpu_upsample *op = (cpu_upsample *)base;
  mbk_op_in_dims(d, op->x_dims);
  mbk_op_out_dims(d, op->y_dims);
  *out = base;
  return MSC_OK;
}
