/*
 * cpu_pool.c — max pooling (ResNet's 3×3 stride-2 stem pool) and global average
 * pooling (the end of every encoder), both as oneDNN pooling primitives.
 *
 * Max pooling keeps the argmax workspace of the training forward for backward. Global
 * average pooling turns [N,C,H,W] into the 2-D features [N,C] that the heads consume;
 * its 1×1 result goes through a plain N×C×1×1 view, which is byte for byte the N×C
 * matrix, so no copy is needed beyond the (tiny) layout conversion.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

typedef struct cpu_pool {
  mbk_op base;
  int global;
  int64_t x_dims[MBK_MAX_DIMS], y_dims[MBK_MAX_DIMS];
  dnnl_memory_desc_t train_md, infer_md; /* src layouts the primitives were made for */
  cpu_prim fwd_train, fwd_infer, bwd;
  cpu_buf ws;          /* max pooling's argmax, from the latest training forward */
  cpu_buf pooled;      /* global: the pooled result / its gradient in oneDNN's layout */
  dnnl_memory_t view4; /* global: a plain N×C×1×1 view of a 2-D tensor's data */
  cpu_reorder r_dy, r_out, r_dy2;
} cpu_pool;

static void pool_destroy(mbk_op *base) {
  cpu_pool *op = (cpu_pool *)base;
  cpu_prim_destroy(&op->fwd_train);
  cpu_prim_destroy(&op->fwd_infer);
  cpu_prim_destroy(&op->bwd);
  cpu_buf_destroy(&op->ws);
  cpu_buf_destroy(&op->pooled);
  if (op->view4) dnnl_memory_destroy(op->view4);
  cpu_reorder_destroy(&op->r_dy);
  cpu_reorder_destroy(&op->r_out);
  cpu_reorder_destroy(&op->r_dy2);
  free(op);
}

static void pool_geometry(const cpu_pool *op, dnnl_dims_t k, dnnl_dims_t s, dnnl_dims_t dil,
                          dnnl_dims_t pl, dnnl_dims_t pr) {
  const mbk_op_desc *d = &op->base.desc;
  dil[0] = dil[1] = 0;
  if (op->global) {
    k[0] = d->h, k[1] = d->w;
    s[0] = s[1] = 1;
    pl[0] = pl[1] = pr[0] = pr[1] = 0;
    return;
  }
  k[0] = d->u.pool.kh, k[1] = d->u.pool.kw;
  s[0] = d->u.pool.sh, s[1] = d->u.pool.sw;
  pl[0] = pr[0] = d->u.pool.ph;
  pl[1] = pr[1] = d->u.pool.pw;
}

static dnnl_alg_kind_t pool_alg(const cpu_pool *op) {
  return op->global ? dnnl_pooling_avg_exclude_padding : dnnl_pooling_max;
}

static msc_status make_forward(cpu_pool *op, int32_t training, const dnnl_memory_desc_t *md) {
  cpu_prim *p = training ? &op->fwd_train : &op->fwd_infer;
  dnnl_memory_desc_t *made_for = training ? &op->train_md : &op->infer_md;
  if (p->prim && cpu_md_equal(made_for, md)) return MSC_OK;
  dnnl_dims_t k, s, dil, pl, pr, ydims = {op->x_dims[0], op->x_dims[1], 1, 1};
  pool_geometry(op, k, s, dil, pl, pr);
  if (!op->global) memcpy(ydims, op->y_dims, 4 * sizeof(int64_t));
  dnnl_memory_desc_t y;
  CPU_CHECK(cpu_any_md_dt(4, ydims, md->data_type, &y)); /* the input's type (bf16 too) */
  dnnl_pooling_v2_desc_t pd_desc;
  CPU_TRY(dnnl_pooling_v2_forward_desc_init(
              &pd_desc, training ? dnnl_forward_training : dnnl_forward_inference, pool_alg(op),
              md, &y, s, k, dil, pl, pr),
          "pooling forward descriptor");
  dnnl_primitive_desc_t pd;
  CPU_CHECK(cpu_pd_create(op->base.ctx, &pd, &pd_desc, NULL, "pooling forward"));
  CPU_CHECK(cpu_prim_init(op->base.ctx, p, pd));
  *made_for = *md;
  if (training) cpu_prim_destroy(&op->bwd);
  return MSC_OK;
}

/* Points op->view4 (plain N×C×1×1) at data. */
static msc_status view4_at(cpu_pool *op, void *data) {
  if (!op->view4) {
    dnnl_memory_desc_t md;
    int64_t dims[4] = {op->x_dims[0], op->x_dims[1], 1, 1};
    CPU_CHECK(cpu_plain_md(4, dims, &md));
    CPU_TRY(dnnl_memory_create(&op->view4, &md, op->base.ctx->engine, data), "pool view");
    return MSC_OK;
  }
  CPU_TRY(dnnl_memory_set_data_handle(op->view4, data), "pool view");
  return MSC_OK;
}

static msc_status pool_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                               mbk_tensor *const *out) {
  cpu_pool *op = (cpu_pool *)base;
  mbk_ctx *ctx = base->ctx;
  const char *name = base->vt->name;
  CPU_CHECK(cpu_tensor_expect(in[0], 4, op->x_dims, name, "x"));
  CPU_CHECK(make_forward(op, training, &in[0]->md));
  cpu_prim *p = training ? &op->fwd_train : &op->fwd_infer;
  dnnl_memory_t dst;
  if (op->global) {
    CPU_CHECK(cpu_buf_ensure(ctx, &op->pooled, cpu_pd_md(p, dnnl_query_dst_md, 0)));
    dst = op->pooled.mem;
  } else {
    CPU_CHECK(cpu_tensor_set(out[0], 4, op->y_dims, cpu_pd_md(p, dnnl_query_dst_md, 0)));
    dst = out[0]->mem;
  }
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, in[0]->mem}, {DNNL_ARG_DST, dst}};
  int n = 2;
  if (training && !op->global) {
    CPU_CHECK(cpu_buf_ensure(ctx, &op->ws, cpu_pd_md(p, dnnl_query_workspace_md, 0)));
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, op->ws.mem};
  }
  CPU_CHECK(cpu_prim_exec(ctx, p, n, args));
  if (!op->global) return MSC_OK;
  dnnl_memory_desc_t plain2;
  CPU_CHECK(cpu_plain_md(2, op->y_dims, &plain2));
  CPU_CHECK(cpu_tensor_set(out[0], 2, op->y_dims, &plain2));
  CPU_CHECK(view4_at(op, out[0]->data));
  return cpu_reorder_exec(ctx, &op->r_out, op->pooled.mem, op->view4);
}

static msc_status pool_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cpu_pool *op = (cpu_pool *)base;
  mbk_ctx *ctx = base->ctx;
  const char *name = base->vt->name;
  CPU_CHECK(cpu_tensor_expect(in[0], op->global ? 2 : 4, op->y_dims, name, "dy"));
  if (!base->trained)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: %s backward needs a training forward first",
                    name);
  if (!op->bwd.prim) {
    dnnl_dims_t k, s, dil, pl, pr;
    pool_geometry(op, k, s, dil, pl, pr);
    dnnl_pooling_v2_desc_t pd_desc;
    CPU_TRY(dnnl_pooling_v2_backward_desc_init(&pd_desc, pool_alg(op), &op->train_md,
                                               cpu_pd_md(&op->fwd_train, dnnl_query_dst_md, 0),
                                               s, k, dil, pl, pr),
            "pooling backward descriptor");
    dnnl_primitive_desc_t pd;
    CPU_CHECK(cpu_pd_create(ctx, &pd, &pd_desc, op->fwd_train.pd, "pooling backward"));
    CPU_CHECK(cpu_prim_init(ctx, &op->bwd, pd));
  }
  const dnnl_memory_desc_t *dy_md = cpu_pd_md(&op->bwd, dnnl_query_diff_dst_md, 0);
  dnnl_memory_t dy;
  if (op->global) {
    /* dy is [N,C]: make it plain, view it as N×C×1×1, convert to the pool's layout. */
    dnnl_memory_desc_t plain2;
    dnnl_memory_t dy2;
    CPU_CHECK(cpu_plain_md(2, op->y_dims, &plain2));
    CPU_CHECK(cpu_view_as(ctx, in[0], &plain2, &op->r_dy2, &dy2));
    void *h = NULL;
    CPU_TRY(dnnl_memory_get_data_handle(dy2, &h), "pool view");
    CPU_CHECK(view4_at(op, h));
    CPU_CHECK(cpu_buf_ensure(ctx, &op->pooled, dy_md));
    CPU_CHECK(cpu_reorder_exec(ctx, &op->r_dy, op->view4, op->pooled.mem));
    dy = op->pooled.mem;
  } else {
    /* (the context's shared buffer, as convolutions' dy: docs/memory.md) */
    CPU_CHECK(cpu_view_shared(ctx, in[0], dy_md, CPU_SHARED_DY, &op->r_dy, &dy));
  }
  CPU_CHECK(
      cpu_tensor_set(out[0], 4, op->x_dims, cpu_pd_md(&op->bwd, dnnl_query_diff_src_md, 0)));
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, out[0]->mem}};
  int n = 2;
  if (!op->global) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, op->ws.mem};
  return cpu_prim_exec(ctx, &op->bwd, n, args);
}

static const mbk_op_vt maxpool_vt = {"maxpool", pool_forward, pool_backward, pool_destroy};
static const mbk_op_vt gavgpool_vt = {"gavgpool", pool_forward, pool_backward, pool_destroy};

static msc_status pool_create(mbk_ctx *ctx, const mbk_op_desc *d, const mbk_op_vt *vt,
                              int global, mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, vt, sizeof(cpu_pool), &base));
  cpu_pool *op = (cpu_pool *)base;
  op->global = global;
  mbk_op_in_dims(d, op->x_dims);
  mbk_op_out_dims(d, op->y_dims);
  *out = base;
  return MSC_OK;
}

msc_status cpu_maxpool_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return pool_create(ctx, d, &maxpool_vt, 0, out);
}

msc_status cpu_gavgpool_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return pool_create(ctx, d, &gavgpool_vt, 1, out);
}
