/*
 * cpu_eltwise.c — ReLU, GELU (API 10: the exact erf form, oneDNN's eltwise_gelu_erf) and
 * element-wise addition (the residual sum of ResNet blocks; with API 12's per-sample
 * scale, the stochastic-depth sum of ConvNeXt blocks).
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
  cpu_reorder r_a; /* add with a per-sample scale: a as plain float32 */
} cpu_elt;

static void elt_destroy(mbk_op *base) {
  cpu_elt *op = (cpu_elt *)base;
  cpu_prim_destroy(&op->fwd);
  cpu_prim_destroy(&op->bwd);
  cpu_reorder_destroy(&op->r_in);
  cpu_reorder_destroy(&op->r_dy);
  cpu_reorder_destroy(&op->r_a);
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
  /* dx may be dy's tensor (API 14; oneDNN's eltwise backward runs in place): either dy
   * is that storage in md already, or it was converted into r_dy above. */
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

/* t's contents as plain float32 (t's own storage when it is plain f32 already). */
static msc_status plain_data(cpu_elt *op, const mbk_tensor *t, cpu_reorder *r,
                             const float **data) {
  dnnl_memory_desc_t plain;
  dnnl_memory_t m;
  void *p = NULL;
  CPU_CHECK(cpu_plain_md(op->ndim, op->dims, &plain));
  CPU_CHECK(cpu_view_as(op->base.ctx, t, &plain, r, &m));
  CPU_TRY(dnnl_memory_get_data_handle(m, &p), "add input");
  *data = p;
  return MSC_OK;
}

/* The per-sample scale s[N] of an add with u.add.row_scale (a 1-D tensor is plain). */
static msc_status row_scale_of(const cpu_elt *op, const mbk_tensor *t, const float **s) {
  CPU_CHECK(cpu_tensor_expect(t, 1, op->dims, "add", "s (per-sample scale)"));
  *s = t->data;
  return MSC_OK;
}

/* y[n,...] = a[n,...] + s[n]·b[n,...] on plain float32 (API 12): the batch is the outer
 * dimension of the plain layout, so sample n is one contiguous run. A plain loop rather
 * than oneDNN's binary op, whose 2.6 post-ops cannot broadcast over the batch only. */
static msc_status add_scaled_forward(cpu_elt *op, mbk_tensor *const *in, mbk_tensor *out) {
  const float *a, *b, *s;
  CPU_CHECK(row_scale_of(op, in[2], &s));
  CPU_CHECK(plain_data(op, in[0], &op->r_a, &a));
  CPU_CHECK(plain_data(op, in[1], &op->r_in, &b));
  dnnl_memory_desc_t plain;
  CPU_CHECK(cpu_plain_md(op->ndim, op->dims, &plain));
  CPU_CHECK(cpu_tensor_set(out, op->ndim, op->dims, &plain));
  float *y = out->data;
  const int64_t per = op->ndim == 4 ? op->dims[1] * op->dims[2] * op->dims[3] : op->dims[1];
  cpu_ctx_threads(op->base.ctx);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < op->dims[0]; ++n) {
    const float sn = s[n];
    const size_t at = (size_t)n * (size_t)per;
    for (int64_t k = 0; k < per; ++k) y[at + k] = a[at + k] + sn * b[at + k];
  }
  return MSC_OK;
}

static msc_status add_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                              mbk_tensor *const *out) {
  cpu_elt *op = (cpu_elt *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->dims, "add", "a"));
  CPU_CHECK(cpu_tensor_expect(in[1], op->ndim, op->dims, "add", "b"));
  /* Without a scale tensor (inference) a scaled add is the plain sum. */
  if (base->desc.u.add.row_scale && in[2]) return add_scaled_forward(op, in, out[0]);
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
  /* Training converts b (a residual block's shortcut in another layout) into the
   * context's shared buffer, as convolutions do with x (docs/memory.md). */
  if (training)
    CPU_CHECK(cpu_view_shared(base->ctx, in[1], md, CPU_SHARED_X, &op->r_in, &b));
  else
    CPU_CHECK(cpu_view_as(base->ctx, in[1], md, &op->r_in, &b));
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->dims, md));
  dnnl_exec_arg_t args[4] = {
      {DNNL_ARG_SRC_0, in[0]->mem}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, out[0]->mem}};
  return cpu_prim_exec(base->ctx, &op->fwd, 3, args);
}

/* The gradient of a sum reaches both addends unchanged; with a per-sample scale, b's is
 * scaled by it: db[n,...] = s[n]·dy[n,...]. */
static msc_status add_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cpu_elt *op = (cpu_elt *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->dims, "add", "dy"));
  const int scaled = base->desc.u.add.row_scale && in[1];
  if (scaled && out[1]) {
    const float *dy, *s;
    CPU_CHECK(row_scale_of(op, in[1], &s));
    CPU_CHECK(plain_data(op, in[0], &op->r_in, &dy));
    dnnl_memory_desc_t plain;
    CPU_CHECK(cpu_plain_md(op->ndim, op->dims, &plain));
    CPU_CHECK(cpu_tensor_set(out[1], op->ndim, op->dims, &plain));
    float *db = out[1]->data;
    const int64_t per = op->ndim == 4 ? op->dims[1] * op->dims[2] * op->dims[3] : op->dims[1];
    cpu_ctx_threads(base->ctx);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < op->dims[0]; ++n) {
      const float sn = s[n];
      const size_t at = (size_t)n * (size_t)per;
      for (int64_t k = 0; k < per; ++k) db[at + k] = sn * dy[at + k];
    }
  }
  /* (an output that is dy's own tensor, API 14's in place, holds its value already) */
  for (int i = 0; i < 2; ++i)
    if (out[i] && out[i] != in[0] && !(i == 1 && scaled))
      CPU_CHECK(cpu_write_as(base->ctx, in[0]->mem, out[i], op->ndim, op->dims, &in[0]->md,
                             &op->r_dy));
  return MSC_OK;
}

static const mbk_op_vt add_vt = {"add", add_forward, add_backward, elt_destroy};

msc_status cpu_add_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return elt_alloc(ctx, d, &add_vt, out);
}
