/*
 * cpu_own.c — what the project's own convolution kernels (cpu_conv_k8.c, cpu_conv_c16.c)
 * share around their arithmetic: the instruction set they may use, the views of their
 * inputs in the layouts they read, the fused forward's folded batch norm and residual,
 * backward-weights' scratch and the parameter gradients written out plain.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_weighted.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define OWN_X86 1
#include <omp.h>
#else
#define OWN_X86 0
#endif

int cpu_own_kernels_isa(void) {
  const char *off = secure_getenv("MSC_CPU_OWN_KERNELS"); /* (mosaic.h, "Backends") */
  if (off && strcmp(off, "0") == 0) return 0;
#if OWN_X86
  const unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
  __builtin_cpu_init();
  if ((isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core &&
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("fma"))
    return 2;
  if ((isa & (unsigned)dnnl_cpu_isa_avx2) == (unsigned)dnnl_cpu_isa_avx2 &&
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return 1;
#endif
  return 0;
}

msc_status cpu_own_absent(const cpu_weighted *op) {
  return CPU_FAIL(MSC_E_INTERNAL, "cpu: %s: the project's own kernels are not built here",
                  op->base.vt->name);
}

msc_status cpu_own_md(const int64_t *dims, dnnl_format_tag_t tag, dnnl_memory_desc_t *md) {
  dnnl_dims_t dd = {dims[0], dims[1], dims[2], dims[3]};
  CPU_TRY(dnnl_memory_desc_init_by_tag(md, 4, dd, dnnl_f32, tag), "memory descriptor");
  return MSC_OK;
}

void *cpu_own_data(dnnl_memory_t m) {
  void *p = NULL;
  dnnl_memory_get_data_handle(m, &p);
  return p;
}

msc_status cpu_own_weights(cpu_weighted *op, cpu_own_io *io, const mbk_tensor *t,
                           const float **out) {
  dnnl_memory_desc_t plain;
  CPU_CHECK(cpu_plain_md(4, op->w_dims, &plain));
  dnnl_memory_t m;
  CPU_CHECK(cpu_view_shared(op->base.ctx, t, &plain, CPU_SHARED_W, &io->r_w, &m));
  *out = cpu_own_data(m);
  return MSC_OK;
}

msc_status cpu_own_x(cpu_weighted *op, cpu_own_io *io, int32_t training, const mbk_tensor *t,
                     const dnnl_memory_desc_t *md, const float **out) {
  dnnl_memory_t x;
  /* As the oneDNN path (cpu_weighted.c): training converts into the shared buffer,
   * inference keeps its own copy. */
  CPU_CHECK(training ? cpu_view_shared(op->base.ctx, t, md, CPU_SHARED_X, &io->r_x, &x)
                     : cpu_view_as(op->base.ctx, t, md, &io->r_x, &x));
  *out = cpu_own_data(x);
  return MSC_OK;
}

msc_status cpu_own_fused_inputs(cpu_weighted *op, cpu_own_io *io, mbk_tensor *const *in,
                                mbk_tensor *const *out, const dnnl_memory_desc_t *xmd,
                                const dnnl_memory_desc_t *ymd, float *wf, float *bf,
                                cpu_own_fused *f) {
  mbk_ctx *ctx = op->base.ctx;
  const mbk_op_desc *d = &op->base.desc;
  const char *name = op->base.vt->name;
  static const char *const bn_names[4] = {"gamma", "beta", "running_mean", "running_var"};
  const int64_t oc = op->y_dims[1], per = op->w_dims[1] * op->w_dims[2] * op->w_dims[3];
  CPU_CHECK(cpu_own_weights(op, io, in[1], &f->w));
  f->bias = op->bias ? (const float *)in[2]->data : NULL;
  int32_t at = 3;
  if (d->u.conv.fold_bn) {
    /* The batch norm folded (cpu_conv_fused.c's arithmetic): W·s[o] and β − μ·s[o]; the
     * weights are folded again at every call (at most a few thousand values). */
    float scale[CPU_OWN_OC_MAX];
    for (int i = 0; i < 4; ++i)
      CPU_CHECK(cpu_tensor_expect(in[3 + i], 1, &op->y_dims[1], name, bn_names[i]));
    /* 1-D tensors are always plain (cpu_internal.h). */
    cpu_conv_fold_arith(in[3]->data, in[4]->data, in[5]->data, in[6]->data, d->u.conv.bn_eps,
                        oc, scale, bf);
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t i = 0; i < per; ++i) wf[o * per + i] = f->w[o * per + i] * scale[o];
    f->w = wf;
    f->bias = bf;
    at += 4;
  }
  dnnl_memory_t x, r = NULL;
  CPU_CHECK(cpu_view_as(ctx, in[0], xmd, &io->r_x, &x));
  if (d->u.conv.residual) {
    CPU_CHECK(cpu_tensor_expect(in[at], op->y_ndim, op->y_dims, name, "r"));
    /* before y is touched: the core may hand the residual's own tensor over as y, which
     * the epilogue then reads each value of before writing it */
    CPU_CHECK(cpu_view_as(ctx, in[at], ymd, &io->r_res, &r));
  }
  f->x = cpu_own_data(x);
  f->res = r ? cpu_own_data(r) : NULL;
  if ((const void *)f->x == out[0]->data && out[0]->data)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: %s: x and y are one tensor", name);
  return cpu_tensor_set(out[0], op->y_ndim, op->y_dims, ymd);
}

msc_status cpu_own_scratch(cpu_own_io *io, size_t per_thread, int *threads) {
#if OWN_X86
  *threads = omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;
#else
  *threads = 1;
#endif
  if (*threads > io->part_threads) {
    float *p = realloc(io->part, (size_t)*threads * per_thread * sizeof *p);
    if (!p) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: conv2d backward-weights scratch");
    io->part = p;
    io->part_threads = *threads;
  }
  return MSC_OK;
}

msc_status cpu_own_grads(cpu_weighted *op, mbk_tensor *const *out, const float *dw,
                         const float *db) {
  dnnl_memory_desc_t plain;
  if (out[1]) {
    const int64_t n = op->w_dims[0] * op->w_dims[1] * op->w_dims[2] * op->w_dims[3];
    CPU_CHECK(cpu_plain_md(4, op->w_dims, &plain));
    CPU_CHECK(cpu_tensor_set(out[1], 4, op->w_dims, &plain));
    memcpy(out[1]->data, dw, (size_t)n * sizeof *dw);
  }
  if (out[2]) {
    CPU_CHECK(cpu_plain_md(1, &op->y_dims[1], &plain));
    CPU_CHECK(cpu_tensor_set(out[2], 1, &op->y_dims[1], &plain));
    memcpy(out[2]->data, db, (size_t)op->y_dims[1] * sizeof *db);
  }
  return MSC_OK;
}

void cpu_own_io_free(cpu_own_io *io) {
  cpu_reorder *rs[] = {&io->r_x, &io->r_w, &io->r_dy, &io->r_xw, &io->r_res};
  for (size_t i = 0; i < sizeof rs / sizeof rs[0]; ++i) cpu_reorder_destroy(rs[i]);
  free(io->part);
  io->part = NULL;
  io->part_threads = 0;
}
