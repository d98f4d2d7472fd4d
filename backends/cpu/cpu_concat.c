/*
 * cpu_concat.c — concatenation along channels: the fusion of per-modality features
 * (2-D) and, in general, of 4-D maps. Forward is oneDNN's concat on the inputs' own
 * layouts; backward slices a plain copy of the gradient, which is contiguous per
 * sample, so each input's gradient is N memcpy calls. oneDNN's concat wants one data
 * type: with precision bf16 a float32 input (a pooled feature) next to a bf16 one (a
 * linear layer's output) is converted, in its own layout, to the first input's type.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

typedef struct cpu_concat {
  mbk_op base;
  int32_t ndim;
  int64_t y_dims[MBK_MAX_DIMS];
  dnnl_memory_desc_t made_for[MBK_MAX_CONCAT];
  cpu_prim fwd;
  cpu_reorder r_dy;
  cpu_reorder r_in[MBK_MAX_CONCAT]; /* inputs converted to the first one's data type */
} cpu_concat;

static void concat_destroy(mbk_op *base) {
  cpu_concat *op = (cpu_concat *)base;
  cpu_prim_destroy(&op->fwd);
  cpu_reorder_destroy(&op->r_dy);
  for (int32_t i = 0; i < MBK_MAX_CONCAT; ++i) cpu_reorder_destroy(&op->r_in[i]);
  free(op);
}

static void input_dims(const cpu_concat *op, int32_t i, int64_t *dims) {
  memcpy(dims, op->y_dims, sizeof op->y_dims);
  dims[1] = op->base.desc.u.concat.c[i];
}

static msc_status concat_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                                 mbk_tensor *const *out) {
  cpu_concat *op = (cpu_concat *)base;
  int32_t k = base->desc.u.concat.count;
  int same = op->fwd.prim != NULL;
  dnnl_memory_desc_t srcs[MBK_MAX_CONCAT];
  dnnl_memory_t src_mem[MBK_MAX_CONCAT];
  for (int32_t i = 0; i < k; ++i) {
    int64_t dims[MBK_MAX_DIMS];
    input_dims(op, i, dims);
    CPU_CHECK(cpu_tensor_expect(in[i], op->ndim, dims, "concat", "x_i"));
    srcs[i] = in[i]->md;
    src_mem[i] = in[i]->mem;
    if (srcs[i].data_type != in[0]->md.data_type) {
      srcs[i].data_type = in[0]->md.data_type; /* same layout, the first input's type */
      CPU_CHECK(cpu_view_as(base->ctx, in[i], &srcs[i], &op->r_in[i], &src_mem[i]));
    }
    same = same && cpu_md_equal(&op->made_for[i], &srcs[i]);
  }
  if (!same) {
    dnnl_primitive_desc_t pd;
    cpu_ctx_threads(base->ctx);
    CPU_TRY(dnnl_concat_primitive_desc_create(&pd, NULL, k, 1, srcs, base->ctx->attr,
                                              base->ctx->engine),
            "concat");
    CPU_CHECK(cpu_prim_init(base->ctx, &op->fwd, pd));
    memcpy(op->made_for, srcs, (size_t)k * sizeof srcs[0]);
  }
  CPU_CHECK(
      cpu_tensor_set(out[0], op->ndim, op->y_dims, cpu_pd_md(&op->fwd, dnnl_query_dst_md, 0)));
  dnnl_exec_arg_t args[MBK_MAX_CONCAT + 2];
  for (int32_t i = 0; i < k; ++i)
    args[i] = (dnnl_exec_arg_t){DNNL_ARG_MULTIPLE_SRC + i, src_mem[i]};
  args[k] = (dnnl_exec_arg_t){DNNL_ARG_DST, out[0]->mem};
  return cpu_prim_exec(base->ctx, &op->fwd, k + 1, args);
}

static msc_status concat_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cpu_concat *op = (cpu_concat *)base;
  CPU_CHECK(cpu_tensor_expect(in[0], op->ndim, op->y_dims, "concat", "dy"));
  dnnl_memory_desc_t plain;
  dnnl_memory_t dy;
  CPU_CHECK(cpu_plain_md(op->ndim, op->y_dims, &plain));
  CPU_CHECK(cpu_view_as(base->ctx, in[0], &plain, &op->r_dy, &dy));
  const float *src = NULL;
  CPU_TRY(dnnl_memory_get_data_handle(dy, (void **)&src), "concat gradient");
  size_t plane = op->ndim == 4 ? (size_t)(op->y_dims[2] * op->y_dims[3]) : 1;
  size_t row = (size_t)op->y_dims[1] * plane; /* floats per sample of dy */
  size_t offset = 0;                          /* channel offset of input i, in floats */
  for (int32_t i = 0; i < base->desc.u.concat.count; ++i) {
    size_t part = (size_t)base->desc.u.concat.c[i] * plane;
    if (out[i]) {
      int64_t dims[MBK_MAX_DIMS];
      dnnl_memory_desc_t md;
      input_dims(op, i, dims);
      CPU_CHECK(cpu_plain_md(op->ndim, dims, &md));
      CPU_CHECK(cpu_tensor_set(out[i], op->ndim, dims, &md));
      float *dst = out[i]->data;
      for (int64_t n = 0; n < op->y_dims[0]; ++n)
        memcpy(dst + (size_t)n * part, src + (size_t)n * row + offset, part * sizeof(float));
    }
    offset += part;
  }
  return MSC_OK;
}

static const mbk_op_vt concat_vt = {"concat", concat_forward, concat_backward, concat_destroy};

msc_status cpu_concat_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, &concat_vt, sizeof(cpu_concat), &base));
  cpu_concat *op = (cpu_concat *)base;
  op->ndim = mbk_op_out_dims(d, op->y_dims);
  *out = base;
  return MSC_OK;
}
