/*
 * cpu_bnorm.c — batch normalisation over N, H, W per channel, optionally fused with the
 * ReLU that follows it in every ResNet block (oneDNN's fuse_norm_relu keeps a bit mask
 * workspace instead of a second pass over the activations).
 *
 * Primitives take the input's layout as it comes (oneDNN's batch norm has no "any"),
 * so they are made on first use and remade only if that layout changes; the one
 * exception is bf16 channels-last input (bn_layout).
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

typedef struct cpu_bnorm {
  mbk_op base;
  int32_t ndim; /* 4 (NCHW) or 2 (N×C, as in a projection head) */
  int64_t x_dims[MBK_MAX_DIMS], c_dims[1];
  dnnl_memory_desc_t train_md, infer_md; /* layouts the primitives were made for */
  cpu_prim fwd_train, fwd_infer, bwd;
  cpu_buf mean, var, ws, dgamma, dbeta; /* batch statistics saved for backward */
  cpu_reorder r_dy;
  cpu_reorder r_x; /* x in the layout of bn_layout, when it differs from x's */
  /* The last training forward ran on the project's own kernels (cpu_bnorm_c16.c: 8 or 16
   * channels, channel-blocked, AVX-512), with x in own_md: so must its backward. */
  int own;
  dnnl_memory_desc_t own_md;
  cpu_bn16_state own_state;
} cpu_bnorm;

static unsigned bn_flags(const cpu_bnorm *op) {
  unsigned f = dnnl_use_scale | dnnl_use_shift;
  if (op->base.desc.u.bn.relu) f |= dnnl_fuse_norm_relu;
  return f;
}

static void bnorm_destroy(mbk_op *base) {
  cpu_bnorm *op = (cpu_bnorm *)base;
  cpu_prim_destroy(&op->fwd_train);
  cpu_prim_destroy(&op->fwd_infer);
  cpu_prim_destroy(&op->bwd);
  cpu_buf *bufs[] = {&op->mean, &op->var, &op->ws, &op->dgamma, &op->dbeta};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; ++i) cpu_buf_destroy(bufs[i]);
  cpu_reorder_destroy(&op->r_dy);
  cpu_reorder_destroy(&op->r_x);
  free(op);
}

/* The layout the primitives run in for input layout in: in itself, except for bf16
 * 4-D activations that are not blocked by channels, i.e. the channels-last layout the
 * AMX convolutions write (precision bf16). For those oneDNN 2.6 has only slow kernels:
 * a generic one (nspc_bnorm) for small C, 0.9-1.4 s per call on 32×8×120×120 (tiny
 * encoder), and a jit one 3× slower than the blocked f32 kernel on ResNet-18
 * (onednn_verbose, bench_train). The blocked bf16 layout nChw16c costs one reorder. */
static msc_status bn_layout(const cpu_bnorm *op, const dnnl_memory_desc_t *in,
                            dnnl_memory_desc_t *out) {
  *out = *in;
  if (in->data_type != dnnl_bf16 || op->ndim != 4 || in->format_kind != dnnl_blocked ||
      in->format_desc.blocking.inner_nblks > 0)
    return MSC_OK;
  dnnl_dims_t dd = {op->x_dims[0], op->x_dims[1], op->x_dims[2], op->x_dims[3]};
  CPU_TRY(dnnl_memory_desc_init_by_tag(out, 4, dd, dnnl_bf16, dnnl_aBcd16b),
          "batchnorm layout");
  return MSC_OK;
}

static msc_status make_forward(cpu_bnorm *op, int32_t training, const dnnl_memory_desc_t *md) {
  cpu_prim *p = training ? &op->fwd_train : &op->fwd_infer;
  dnnl_memory_desc_t *made_for = training ? &op->train_md : &op->infer_md;
  if (p->prim && cpu_md_equal(made_for, md)) return MSC_OK;
  unsigned flags = bn_flags(op);
  if (!training) flags |= dnnl_use_global_stats;
  dnnl_batch_normalization_desc_t bd;
  CPU_TRY(dnnl_batch_normalization_forward_desc_init(
              &bd, training ? dnnl_forward_training : dnnl_forward_inference, md,
              op->base.desc.u.bn.eps, flags),
          "batchnorm forward descriptor");
  dnnl_primitive_desc_t pd;
  CPU_CHECK(cpu_pd_create(op->base.ctx, &pd, &bd, NULL, "batchnorm forward"));
  CPU_CHECK(cpu_prim_init(op->base.ctx, p, pd));
  *made_for = *md;
  if (training) cpu_prim_destroy(&op->bwd); /* its hint changed */
  return MSC_OK;
}

/* running = (1 - m)·running + m·batch, with the unbiased variance (PyTorch's rule). */
static void update_running(cpu_bnorm *op, mbk_tensor *rmean, mbk_tensor *rvar) {
  const mbk_op_desc *d = &op->base.desc;
  double count = (double)d->n * (d->ndim == 4 ? (double)d->h * (double)d->w : 1.0);
  float m = d->u.bn.momentum;
  float unbias = (float)(count / (count - 1.0));
  const float *mean = op->mean.data, *var = op->var.data;
  float *rm = rmean->data, *rv = rvar->data;
  for (int64_t c = 0; c < d->c; ++c) {
    rm[c] = (1.0f - m) * rm[c] + m * mean[c];
    rv[c] = (1.0f - m) * rv[c] + m * var[c] * unbias;
  }
  rmean->version++;
  rvar->version++;
}

/* The training forward on cpu_bnorm_c16.c's kernels, x viewed in md (its own layout). */
static msc_status bn16_forward(cpu_bnorm *op, dnnl_memory_t x, const dnnl_memory_desc_t *md,
                               mbk_tensor *const *in, mbk_tensor *const *out) {
  mbk_ctx *ctx = op->base.ctx;
  const mbk_op_desc *d = &op->base.desc;
  void *xp = NULL;
  CPU_TRY(dnnl_memory_get_data_handle(x, &xp), "batchnorm input");
  dnnl_memory_desc_t cmd;
  CPU_CHECK(cpu_plain_md(1, op->c_dims, &cmd));
  CPU_CHECK(cpu_buf_ensure(ctx, &op->mean, &cmd));
  CPU_CHECK(cpu_buf_ensure(ctx, &op->var, &cmd));
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->x_dims, md));
  cpu_ctx_threads(ctx);
  const int64_t t = op->x_dims[0] * op->x_dims[1] * op->x_dims[2] * op->x_dims[3];
  /* 1-D tensors are plain float32 (cpu_tensor.c). */
  cpu_bn16_forward(xp, t, d->c, in[1]->data, in[2]->data, in[3]->data, d->u.bn.eps,
                   d->u.bn.relu != 0, out[0]->data, &op->own_state);
  memcpy(op->mean.data, op->own_state.mean, (size_t)d->c * sizeof(float));
  memcpy(op->var.data, op->own_state.var, (size_t)d->c * sizeof(float));
  op->own_md = *md;
  update_running(op, in[3], in[4]);
  return MSC_OK;
}

static msc_status bnorm_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                mbk_tensor *const *out) {
  cpu_bnorm *op = (cpu_bnorm *)base;
  mbk_ctx *ctx = base->ctx;
  static const char *const names[5] = {"x", "gamma", "beta", "running_mean", "running_var"};
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->x_dims, "batchnorm", names[0]));
  for (int i = 1; i < 5; ++i)
    CPU_CHECK(cpu_tensor_expect(in[i], 1, op->c_dims, "batchnorm", names[i]));
  const mbk_op_desc *d = &base->desc;
  int64_t count = d->n * (d->ndim == 4 ? d->h * d->w : 1);
  if (training && count < 2)
    return CPU_FAIL(MSC_E_SHAPE,
                    "cpu: batchnorm: training needs more than one value per "
                    "channel (N·H·W = %lld)",
                    (long long)count);
  dnnl_memory_desc_t md;
  dnnl_memory_t x;
  CPU_CHECK(bn_layout(op, &in[0]->md, &md));
  CPU_CHECK(cpu_view_as(ctx, in[0], &md, &op->r_x, &x));
  if (training) op->own = cpu_bn16_fits(&md, d->c);
  if (training && op->own) return bn16_forward(op, x, &md, in, out);
  CPU_CHECK(make_forward(op, training, &md));
  cpu_prim *p = training ? &op->fwd_train : &op->fwd_infer;
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->x_dims, cpu_pd_md(p, dnnl_query_dst_md, 0)));
  dnnl_exec_arg_t args[9] = {{DNNL_ARG_SRC, x},
                             {DNNL_ARG_DST, out[0]->mem},
                             {DNNL_ARG_SCALE, in[1]->mem},
                             {DNNL_ARG_SHIFT, in[2]->mem}};
  int n = 4;
  if (training) {
    dnnl_memory_desc_t cmd;
    CPU_CHECK(cpu_plain_md(1, op->c_dims, &cmd));
    CPU_CHECK(cpu_buf_ensure(ctx, &op->mean, &cmd));
    CPU_CHECK(cpu_buf_ensure(ctx, &op->var, &cmd));
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_MEAN, op->mean.mem};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_VARIANCE, op->var.mem};
    if (d->u.bn.relu) {
      CPU_CHECK(cpu_buf_ensure(ctx, &op->ws, cpu_pd_md(p, dnnl_query_workspace_md, 0)));
      args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, op->ws.mem};
    }
  } else {
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_MEAN, in[3]->mem};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_VARIANCE, in[4]->mem};
  }
  CPU_CHECK(cpu_prim_exec(ctx, p, n, args));
  if (training) update_running(op, in[3], in[4]);
  return MSC_OK;
}

static msc_status copy_param_grad(cpu_bnorm *op, const cpu_buf *src, mbk_tensor *dst) {
  if (!dst) return MSC_OK;
  CPU_CHECK(cpu_tensor_set(dst, 1, op->c_dims, &src->md));
  memcpy(dst->data, src->data, (size_t)op->c_dims[0] * sizeof(float));
  return MSC_OK;
}

/* The backward of bn16_forward: dy converted to x's layout md where it is not in it; dx
 * in md (it may be dy's tensor: each value is read before it is written). */
static msc_status bn16_backward(cpu_bnorm *op, const dnnl_memory_desc_t *md,
                                mbk_tensor *const *in, mbk_tensor *const *out) {
  mbk_ctx *ctx = op->base.ctx;
  const mbk_op_desc *d = &op->base.desc;
  dnnl_memory_t x, dy;
  void *xp = NULL, *dyp = NULL;
  CPU_CHECK(cpu_view_as(ctx, in[0], md, &op->r_x, &x));
  CPU_CHECK(cpu_view_as(ctx, in[2], md, &op->r_dy, &dy));
  CPU_TRY(dnnl_memory_get_data_handle(x, &xp), "batchnorm input");
  CPU_TRY(dnnl_memory_get_data_handle(dy, &dyp), "batchnorm dy");
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->x_dims, md));
  cpu_ctx_threads(ctx);
  const int64_t t = op->x_dims[0] * op->x_dims[1] * op->x_dims[2] * op->x_dims[3];
  dnnl_memory_desc_t cmd;
  CPU_CHECK(cpu_plain_md(1, op->c_dims, &cmd));
  CPU_CHECK(cpu_buf_ensure(ctx, &op->dgamma, &cmd));
  CPU_CHECK(cpu_buf_ensure(ctx, &op->dbeta, &cmd));
  cpu_bn16_backward(xp, dyp, t, d->c, in[1]->data, d->u.bn.relu != 0, &op->own_state,
                    out[0]->data, op->dgamma.data, op->dbeta.data);
  CPU_CHECK(copy_param_grad(op, &op->dgamma, out[1]));
  return copy_param_grad(op, &op->dbeta, out[2]);
}

static msc_status bnorm_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cpu_bnorm *op = (cpu_bnorm *)base;
  mbk_ctx *ctx = base->ctx;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->x_dims, "batchnorm", "x"));
  CPU_CHECK(cpu_tensor_expect(in[1], 1, op->c_dims, "batchnorm", "gamma"));
  CPU_CHECK(cpu_tensor_expect(in[2], op->ndim, op->x_dims, "batchnorm", "dy"));
  dnnl_memory_desc_t md;
  CPU_CHECK(bn_layout(op, &in[0]->md, &md));
  if (!base->trained || !cpu_md_equal(op->own ? &op->own_md : &op->train_md, &md))
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT,
                    "cpu: batchnorm backward needs a training forward on the same x first");
  if (op->own) return bn16_backward(op, &md, in, out);
  dnnl_memory_t x; /* the forward's converted copy while x is unchanged */
  CPU_CHECK(cpu_view_as(ctx, in[0], &md, &op->r_x, &x));
  if (!op->bwd.prim) {
    dnnl_batch_normalization_desc_t bd;
    CPU_TRY(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &op->train_md,
                                                        &op->train_md, base->desc.u.bn.eps,
                                                        bn_flags(op)),
            "batchnorm backward descriptor");
    dnnl_primitive_desc_t pd;
    CPU_CHECK(cpu_pd_create(ctx, &pd, &bd, op->fwd_train.pd, "batchnorm backward"));
    CPU_CHECK(cpu_prim_init(ctx, &op->bwd, pd));
  }
  dnnl_memory_t dy;
  CPU_CHECK(
      cpu_view_as(ctx, in[2], cpu_pd_md(&op->bwd, dnnl_query_diff_dst_md, 0), &op->r_dy, &dy));
  /* Statistics and per-channel parameters are plain 1-D arrays of C floats. */
  dnnl_memory_desc_t cmd;
  CPU_CHECK(cpu_plain_md(1, op->c_dims, &cmd));
  CPU_CHECK(cpu_buf_ensure(ctx, &op->dgamma, &cmd));
  CPU_CHECK(cpu_buf_ensure(ctx, &op->dbeta, &cmd));
  /* dx may be dy's tensor (API 14; oneDNN's batch norm runs in place): diff_src and
   * diff_dst share one layout, so either dy is that tensor's storage, unchanged here, or
   * dy was converted into r_dy above before the storage is overwritten. */
  CPU_CHECK(cpu_tensor_set(out[0], op->ndim, op->x_dims,
                           cpu_pd_md(&op->bwd, dnnl_query_diff_src_md, 0)));
  dnnl_exec_arg_t args[12] = {{DNNL_ARG_SRC, x},
                              {DNNL_ARG_MEAN, op->mean.mem},
                              {DNNL_ARG_VARIANCE, op->var.mem},
                              {DNNL_ARG_DIFF_DST, dy},
                              {DNNL_ARG_SCALE, in[1]->mem},
                              /* oneDNN 2.6 insists on a shift argument whenever use_shift
                               * is set, though backward never reads it (the ReLU mask
                               * comes from the workspace): gamma has the right shape. */
                              {DNNL_ARG_SHIFT, in[1]->mem},
                              {DNNL_ARG_DIFF_SRC, out[0]->mem},
                              {DNNL_ARG_DIFF_SCALE, op->dgamma.mem},
                              {DNNL_ARG_DIFF_SHIFT, op->dbeta.mem}};
  int n = 9;
  if (base->desc.u.bn.relu) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WORKSPACE, op->ws.mem};
  CPU_CHECK(cpu_prim_exec(ctx, &op->bwd, n, args));
  CPU_CHECK(copy_param_grad(op, &op->dgamma, out[1]));
  return copy_param_grad(op, &op->dbeta, out[2]);
}

static const mbk_op_vt bnorm_vt = {"batchnorm", bnorm_forward, bnorm_backward, bnorm_destroy};

int cpu_bnorm_own(const mbk_op *op) {
  return op && op->vt == &bnorm_vt && ((const cpu_bnorm *)op)->own;
}

msc_status cpu_bnorm_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  /* Synchronised statistics (API 13) need the sums outside oneDNN: cpu_bnorm_sync.c. */
  if (d->u.bn.reduce) return cpu_bnorm_sync_create(ctx, d, out);
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, &bnorm_vt, sizeof(cpu_bnorm), &base));
  cpu_bnorm *op = (cpu_bnorm *)base;
  op->ndim = mbk_op_in_dims(d, op->x_dims);
  op->c_dims[0] = d->c;
  *out = base;
  return MSC_OK;
}
