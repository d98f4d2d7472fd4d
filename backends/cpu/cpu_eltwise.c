/*
 * cpu_eltwise.c — ReLU, GELU (API 10: the exact erf form, oneDNN's eltwise_gelu_erf) and
 * element-wise addition (the residual sum of ResNet blocks).
 * All work in whatever layout their first input has, so they never force a reorder
 * of the main path; a second input or an incoming gradient in another layout is
 * converted to it.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

typedef struct cpu_elt {
  mbk_op base;
  int32_t ndim;
  int64_t dims[MBK_MAX_DIMS];
  dnnl_memory_desc_t fwd_md; /* layout the forward primitive was made for */
  cpu_prim fwd, bwd;
  cpu_reorder r_in, r_dy;
} cpu_elt;

static void elt_destroy(mbk_op *base) {
  cpu_elt *op = (cpu_elt *)base;
  cpu_prim_destroy(&op->fwd);
  cpu_prim_destroy(&op->bwd);
  cpu_reorder_destroy(&op->r_in);
  cpu_reorder_destroy(&op->r_dy);
  free(op);
}

static msc_status elt_alloc(mbk_ctx *ctx, const mbk_op_desc *d, const mbk_op_vt *vt,
                            mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, vt, sizeof(cpu_elt), &base));
  cpu_elt *op = (cpu_elt *)base;
  op->ndim = mbk_op_in_dims(d, op->dims);
  *out = base;
  return MSC_OK;
}

/* ---- ReLU and GELU: one oneDNN eltwise algorithm each ------------------------------ */

static dnnl_alg_kind_t elt_alg(const cpu_elt *op) {
  return op->base.desc.type == MBK_OP_GELU ? dnnl_eltwise_gelu_erf : dnnl_eltwise_relu;
}

static msc_status elt_make_fwd(cpu_elt *op, const dnnl_memory_desc_t *md) {
  if (op->fwd.prim && cpu_md_equal(&op->fwd_md, md)) return MSC_OK;
  const char *name = op->base.vt->name;
  dnnl_eltwise_desc_t ed;
  CPU_TRY(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_training, elt_alg(op), md, 0.f, 0.f),
          name);
  dnnl_primitive_desc_t pd;
  CPU_CHECK(cpu_pd_create(op->base.ctx, &pd, &ed, NULL, name));
  CPU_CHECK(cpu_prim_init(op->base.ctx, &op->fwd, pd));
  op->fwd_md = *md;
  cpu_prim_destroy(&op->bwd);
  return MSC_OK;
}

static msc_status elt_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                              mbk_tensor *const *out) {
  cpu_elt *op = (cpu_elt *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->dims, base->vt->name, "x"));
  CPU_CHECK(elt_make_fwd(op, &in[0]->md));
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->dims, &in[0]->md));
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, in[0]->mem}, {DNNL_ARG_DST, out[0]->mem}};
  return cpu_prim_exec(base->ctx, &op->fwd, 2, args);
}

/* dx = dy·f'(x), from the source x (not the output): ReLU's mask, GELU's Φ(x) + x·φ(x). */
static msc_status elt_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cpu_elt *op = (cpu_elt *)base;
  const char *name = base->vt->name;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->dims, name, "x"));
  CPU_CHECK(cpu_tensor_expect(in[1], op->ndim, op->dims, name, "dy"));
  const dnnl_memory_desc_t *md = &in[0]->md;
  CPU_CHECK(elt_make_fwd(op, md));
  if (!op->bwd.prim) {
    dnnl_eltwise_desc_t ed;
    CPU_TRY(dnnl_eltwise_backward_desc_init(&ed, elt_alg(op), md, md, 0.f, 0.f), name);
    dnnl_primitive_desc_t pd;
    CPU_CHECK(cpu_pd_create(base->ctx, &pd, &ed, op->fwd.pd, name));
    CPU_CHECK(cpu_prim_init(base->ctx, &op->bwd, pd));
  }
  dnnl_memory_t dy;
  CPU_CHECK(cpu_view_as(base->ctx, in[1], md, &op->r_dy, &dy));
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->dims, md));
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC, in[0]->mem}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, out[0]->mem}};
  return cpu_prim_exec(base->ctx, &op->bwd, 3, args);
}

static const mbk_op_vt relu_vt = {"relu", elt_forward, elt_backward, elt_destroy};
static const mbk_op_vt gelu_vt = {"gelu", elt_forward, elt_backward, elt_destroy};

msc_status cpu_relu_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return elt_alloc(ctx, d, &relu_vt, out);
}

msc_status cpu_gelu_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return elt_alloc(ctx, d, &gelu_vt, out);
}

/* ---- add ------------------------------------------------------------------------------- */

static msc_status add_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                              mbk_tensor *const *out) {
  cpu_elt *op = (cpu_elt *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->dims, "add", "a"));
  CPU_CHECK(cpu_tensor_expect(in[1], op->ndim, op->dims, "add", "b"));
  const dnnl_memory_desc_t *md = &in[0]->md;
  if (!op->fwd.prim || !cpu_md_equal(&op->fwd_md, md)) {
    dnnl_binary_desc_t bd;
    CPU_TRY(dnnl_binary_desc_init(&bd, dnnl_binary_add, md, md, md), "add descriptor");
    dnnl_primitive_desc_t pd;
    CPU_CHECK(cpu_pd_create(base->ctx, &pd, &bd, NULL, "add"));
    CPU_CHECK(cpu_prim_init(base->ctx, &op->fwd, pd));
    op->fwd_md = *md;
  }
  dnnl_memory_t b;
  CPU_CHECK(cpu_view_as(base->ctx, in[1], md, &op->r_in, &b));
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->dims, md));
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC_0, in[0]->mem}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, out[0]->mem}};
  return cpu_prim_exec(base->ctx, &op->fwd, 3, args);
}

/* The gradient of a sum reaches both addends unchanged. */
static msc_status add_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cpu_elt *op = (cpu_elt *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->dims, "add", "dy"));
  for (int i = 0; i < 2; ++i)
    if (out[i])
      CPU_CHECK(cpu_write_as(base->ctx, in[0]->mem, out[i], op->ndim, op->dims, &in[0]->md,
                             &op->r_dy));
  return MSC_OK;
}

static const mbk_op_vt add_vt = {"add", add_forward, add_backward, elt_destroy};

msc_status cpu_add_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return elt_alloc(ctx, d, &add_vt, out);
}
