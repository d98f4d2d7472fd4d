/*
 * cpu_backend.c — the oneDNN CPU backend's table, contexts, primitives and op dispatch
 * (layer: CPU backend). Built into libmosaic, it is still reached only through the table
 * (mbk_cpu_init) and includes nothing of the core but the backend contract.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <pthread.h>

#include "cpu_internal.h"

const mbk_host *cpu_host;

msc_status cpu_dnnl_fail(dnnl_status_t s, const char *what) {
  switch (s) {
  case dnnl_out_of_memory:
    return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: %s: oneDNN is out of memory", what);
  case dnnl_unimplemented:
    return CPU_FAIL(MSC_E_UNSUPPORTED, "cpu: %s: oneDNN has no implementation for this shape",
                    what);
  case dnnl_invalid_arguments:
    return CPU_FAIL(MSC_E_INTERNAL, "cpu: %s: oneDNN rejected the arguments", what);
  default: return CPU_FAIL(MSC_E_INTERNAL, "cpu: %s: oneDNN status %d", what, (int)s);
  }
}

/* ---- memory descriptors ------------------------------------------------------------ */

static msc_status md_init(int32_t ndim, const int64_t *dims, dnnl_format_tag_t four,
                          dnnl_data_type_t dt, dnnl_memory_desc_t *md) {
  dnnl_dims_t dd;
  dnnl_format_tag_t tag;
  switch (ndim) {
  case 1: tag = four == dnnl_format_tag_any ? four : dnnl_a; break;
  case 2: tag = four == dnnl_format_tag_any ? four : dnnl_ab; break;
  case 4: tag = four; break;
  default:
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: tensors have 1, 2 or 4 dimensions, not %d",
                    (int)ndim);
  }
  for (int32_t i = 0; i < ndim; ++i) dd[i] = dims[i];
  CPU_TRY(dnnl_memory_desc_init_by_tag(md, ndim, dd, dt, tag), "memory descriptor");
  return MSC_OK;
}

msc_status cpu_plain_md(int32_t ndim, const int64_t *dims, dnnl_memory_desc_t *md) {
  return md_init(ndim, dims, dnnl_abcd, dnnl_f32, md);
}

msc_status cpu_any_md(int32_t ndim, const int64_t *dims, dnnl_memory_desc_t *md) {
  return md_init(ndim, dims, dnnl_format_tag_any, dnnl_f32, md);
}

msc_status cpu_any_md_dt(int32_t ndim, const int64_t *dims, dnnl_data_type_t dt,
                         dnnl_memory_desc_t *md) {
  return md_init(ndim, dims, dnnl_format_tag_any, dt, md);
}

dnnl_data_type_t cpu_op_dt(const mbk_ctx *ctx) {
  return ctx->precision == MBK_PRECISION_BF16 ? dnnl_bf16 : dnnl_f32;
}

dnnl_data_type_t cpu_grad_w_dt(const mbk_ctx *ctx) {
  (void)ctx;
  /* oneDNN 2.6's bf16 convolution backward-weights kernels are 5-6x slower than its
   * f32 ones on this project's machines (bench_train --precision bf16, ResNet-18,
   * batch 32, 2 threads, onednn_verbose: 11.3 s per step with AMX
   * (jit:avx512_core_amx_bf16), 7.7-15 s with jit_bf16:avx512_core_bf16, against 1.8 s
   * for jit:avx512_core on float32 copies of the same bf16 activations). Converting x
   * and dy to float32 costs a reorder each. */
  return dnnl_f32;
}

int cpu_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b) {
  return dnnl_memory_desc_equal(a, b) != 0;
}

const dnnl_memory_desc_t *cpu_pd_md(const cpu_prim *p, dnnl_query_t what, int index) {
  return dnnl_primitive_desc_query_md(p->pd, what, index);
}

/* ---- primitives ------------------------------------------------------------------------ */

/* OpenMP's thread count is a per-thread setting: this affects only the thread that
 * drives this context, which is what a user who asked for N threads expects. oneDNN
 * plans its work split when a primitive is created, so creation sets it too. */
void cpu_ctx_threads(const mbk_ctx *ctx) {
  if (ctx->threads > 0 && omp_get_max_threads() != ctx->threads)
    omp_set_num_threads(ctx->threads);
}

msc_status cpu_pd_create(mbk_ctx *ctx, dnnl_primitive_desc_t *pd, const void *op_desc,
                         const_dnnl_primitive_desc_t hint, const char *what) {
  cpu_ctx_threads(ctx);
  CPU_TRY(dnnl_primitive_desc_create(pd, op_desc, ctx->attr, ctx->engine, hint), what);
  return MSC_OK;
}

msc_status cpu_prim_init(mbk_ctx *ctx, cpu_prim *p, dnnl_primitive_desc_t pd) {
  cpu_prim_destroy(p);
  p->pd = pd;
  CPU_TRY(dnnl_primitive_create(&p->prim, pd), "primitive creation");
  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  p->scratch_size = smd ? dnnl_memory_desc_get_size(smd) : 0;
  if (p->scratch_size > 0) {
    CPU_TRY(dnnl_memory_create(&p->scratch_mem, smd, ctx->engine, DNNL_MEMORY_NONE),
            "scratchpad memory");
  }
  return MSC_OK;
}

void cpu_prim_destroy(cpu_prim *p) {
  if (p->scratch_mem) dnnl_memory_destroy(p->scratch_mem);
  if (p->prim) dnnl_primitive_destroy(p->prim);
  if (p->pd) dnnl_primitive_desc_destroy(p->pd);
  memset(p, 0, sizeof *p);
}

static msc_status ctx_scratch_ensure(mbk_ctx *ctx, size_t bytes) {
  if (bytes <= ctx->scratch_cap) return MSC_OK;
  void *n = cpu_aligned_alloc(bytes);
  if (!n) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: scratchpad of %zu bytes", bytes);
  free(ctx->scratch);
  ctx->scratch = n;
  ctx->scratch_cap = bytes;
  return MSC_OK;
}

/* 1 when an argument's memory lies in [lo, lo + len) (or cannot be told). */
static int args_in(const dnnl_exec_arg_t *args, int nargs, const void *lo, size_t len) {
  if (!lo) return 0; /* nothing allocated there yet */
  for (int i = 0; i < nargs; ++i) {
    void *h = NULL;
    if (!args[i].memory) continue;
    if (dnnl_memory_get_data_handle(args[i].memory, &h) != dnnl_success) return 1;
    if (h && (const char *)h >= (const char *)lo && (const char *)h < (const char *)lo + len)
      return 1;
  }
  return 0;
}

/* Where a scratchpad of p's goes. A large one (Winograd's transformed tiles: 7 to 55
 * MiB for ResNet-18 at batch 64, cpu_conv.c) takes the shared input-conversion buffer
 * when this execution neither reads nor writes a conversion held there (that conversion
 * is forgotten, and made again by whoever needs it next): the training step's largest
 * conversion there (the S2 stem's channels-last input, 42 MiB at batch 32) and the
 * largest scratchpad then share their memory instead of adding up (docs/memory.md,
 * "Winograd's scratchpad"). Small ones, and those of an execution that uses that buffer,
 * take the context's own scratchpad. */
enum { CPU_SCRATCH_SHARED_MIN = 1 << 20 };

static msc_status scratch_for(mbk_ctx *ctx, const cpu_prim *p, int nargs,
                              const dnnl_exec_arg_t *args, void **out) {
  const cpu_shared *sx = &ctx->shared[CPU_SHARED_X];
  if (p->scratch_size >= CPU_SCRATCH_SHARED_MIN && !args_in(args, nargs, sx->data, sx->cap))
    return cpu_shared_take(ctx, CPU_SHARED_X, p->scratch_size, out);
  CPU_CHECK(ctx_scratch_ensure(ctx, p->scratch_size));
  *out = ctx->scratch;
  return MSC_OK;
}

msc_status cpu_prim_exec(mbk_ctx *ctx, cpu_prim *p, int nargs, dnnl_exec_arg_t *args) {
  if (p->scratch_size > 0) {
    void *at = NULL, *cur = NULL;
    CPU_CHECK(scratch_for(ctx, p, nargs, args, &at));
    CPU_TRY(dnnl_memory_get_data_handle(p->scratch_mem, &cur), "scratchpad");
    if (cur != at) CPU_TRY(dnnl_memory_set_data_handle(p->scratch_mem, at), "scratchpad");
    args[nargs].arg = DNNL_ARG_SCRATCHPAD;
    args[nargs].memory = p->scratch_mem;
    nargs++;
  }
  cpu_ctx_threads(ctx);
  CPU_TRY(dnnl_primitive_execute(p->prim, ctx->stream, nargs, args), "execution");
  CPU_TRY(dnnl_stream_wait(ctx->stream), "stream wait");
  return MSC_OK;
}

/* ---- contexts --------------------------------------------------------------------------- */

static msc_status cpu_probe(char *why, size_t why_len) {
  if (dnnl_engine_get_count(dnnl_cpu) < 1) {
    if (why && why_len) snprintf(why, why_len, "oneDNN reports no CPU engine");
    return MSC_E_BACKEND_UNAVAILABLE;
  }
  return MSC_OK;
}

/* One engine for the process: tensors made in one context (a model's parameters) are
 * then valid in every other (the per-thread contexts of concurrent msc_embed calls).
 * oneDNN engines are thread-safe; it lives until the process ends. */
static dnnl_engine_t shared_engine;
static dnnl_status_t shared_engine_status = dnnl_runtime_error;
static pthread_once_t shared_engine_once = PTHREAD_ONCE_INIT;

static void shared_engine_create(void) {
  shared_engine_status = dnnl_engine_create(&shared_engine, dnnl_cpu, 0);
}

static void cpu_ctx_free(mbk_ctx *ctx) {
  if (!ctx) return;
  if (ctx->attr) dnnl_primitive_attr_destroy(ctx->attr);
  if (ctx->stream) dnnl_stream_destroy(ctx->stream);
  free(ctx->scratch);
  cpu_shared_free(ctx);
  mbk_loss_ws_free(&ctx->loss_ws);
  free(ctx->loss_buf);
  free(ctx);
}

static msc_status ctx_init(mbk_ctx *ctx) {
  pthread_once(&shared_engine_once, shared_engine_create);
  CPU_TRY(shared_engine_status, "engine");
  ctx->engine = shared_engine;
  CPU_TRY(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags), "stream");
  CPU_TRY(dnnl_primitive_attr_create(&ctx->attr), "attributes");
  CPU_TRY(dnnl_primitive_attr_set_scratchpad_mode(ctx->attr, dnnl_scratchpad_mode_user),
          "scratchpad mode");
  return MSC_OK;
}

/* 1 when oneDNN can run bf16 convolutions, inner products and batch norms here: from
 * AVX-512 (avx512_core: bf16 emulated in f32 registers; avx512_core_bf16: native dot
 * products; avx512_core_amx: AMX tiles). The effective ISA honours ONEDNN_MAX_CPU_ISA,
 * which is how tests/test_precision.c sees a CPU without bf16. */
static int cpu_has_bf16(void) {
  unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
  return (isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core;
}

/* 1 when oneDNN has int8 convolutions and inner products here: from AVX2 (u8·s8 pairs
 * summed in 16 bits), AVX-512, VNNI (native u8·s8 dot products) or AMX int8 tiles. */
static int cpu_has_int8(void) {
  unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
  return (isa & (unsigned)dnnl_cpu_isa_avx2) == (unsigned)dnnl_cpu_isa_avx2;
}

static msc_status ctx_precision(const mbk_ctx_params *params, int32_t *out) {
  *out = MBK_PRECISION_F32;
  /* A caller built before API 7 has no precision field: float32. */
  if (!params || params->struct_size < offsetof(mbk_ctx_params, precision) + sizeof(int32_t))
    return MSC_OK;
  switch (params->precision) {
  case MBK_PRECISION_F32: return MSC_OK;
  case MBK_PRECISION_BF16:
    if (!cpu_has_bf16())
      return CPU_FAIL(MSC_E_UNSUPPORTED,
                      "cpu: precision bf16 needs AVX-512 (avx512_core, avx512_bf16 or AMX); "
                      "oneDNN reports ISA 0x%x on this CPU: use precision f32",
                      (unsigned)dnnl_get_effective_cpu_isa());
    *out = MBK_PRECISION_BF16;
    return MSC_OK;
  case MBK_PRECISION_INT8:
    if (!cpu_has_int8())
      return CPU_FAIL(MSC_E_UNSUPPORTED,
                      "cpu: precision int8 needs AVX2 or later (avx2, avx512_core, VNNI or "
                      "AMX); oneDNN reports ISA 0x%x on this CPU: use precision f32",
                      (unsigned)dnnl_get_effective_cpu_isa());
    *out = MBK_PRECISION_INT8;
    return MSC_OK;
  default:
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: ctx_create: unknown precision %d",
                    (int)params->precision);
  }
}

static msc_status cpu_ctx_create(const mbk_ctx_params *params, mbk_ctx **out) {
  if (!out) return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: ctx_create: out is NULL");
  if (params && params->struct_size < sizeof(uint32_t) + sizeof(int32_t))
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: ctx_create: bad params struct_size %u",
                    params->struct_size);
  int32_t precision;
  CPU_CHECK(ctx_precision(params, &precision));
  if (params && params->struct_size >= offsetof(mbk_ctx_params, conv_algo) + sizeof(int32_t) &&
      params->conv_algo != MBK_CONV_ALGO_AUTO && params->conv_algo != MBK_CONV_ALGO_DIRECT)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: ctx_create: unknown conv_algo %d",
                    (int)params->conv_algo);
  mbk_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: context");
  ctx->threads = params ? params->threads : 0;
  ctx->precision = precision;
  /* A caller built before API 15 has no conv_algo field: AUTO. */
  if (params && params->struct_size >= offsetof(mbk_ctx_params, conv_algo) + sizeof(int32_t))
    ctx->conv_algo = params->conv_algo;
  msc_status st = ctx_init(ctx);
  if (st != MSC_OK) {
    cpu_ctx_free(ctx);
    return st;
  }
  *out = ctx;
  return MSC_OK;
}

/* ---- ops ------------------------------------------------------------------------------ */
/* The core's frame has validated the description and the arguments (backend.h). */

#define CPU_CREATOR(kind) cpu_##kind##_create,
static const mbk_op_create_fn cpu_creators[MBK_OP_COUNT_] = {
    NULL, MBK_OP_KINDS(CPU_CREATOR) MBK_OP_KINDS_10(CPU_CREATOR) MBK_OP_KINDS_11(CPU_CREATOR)};

static msc_status cpu_op_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  return mbk_op_create_by_type(cpu_host, "cpu", cpu_creators, ctx, d, out);
}

static msc_status cpu_op_forward(mbk_op *op, int32_t training, mbk_tensor *const *in,
                                 int32_t n_in, mbk_tensor *const *out, int32_t n_out) {
  return mbk_op_run_forward(op, training, in, out);
}

static msc_status cpu_op_backward(mbk_op *op, mbk_tensor *const *in, int32_t n_in,
                                  mbk_tensor *const *out, int32_t n_out) {
  return mbk_op_run_backward(op, in, out);
}

/* ---- tensors (public part of the table; helpers in cpu_tensor.c) ----------------------- */

static msc_status cpu_tensor_create(mbk_ctx *ctx, mbk_tensor **out) {
  static uint64_t next_id = 1; /* atomic: contexts may live on different threads */
  if (!ctx || !out)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: tensor_create: NULL argument");
  mbk_tensor *t = calloc(1, sizeof *t);
  if (!t) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: tensor");
  t->ctx = ctx;
  t->id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
  *out = t;
  return MSC_OK;
}

static void cpu_tensor_free(mbk_tensor *t) {
  if (!t) return;
  if (t->mem) dnnl_memory_destroy(t->mem);
  free(t->data);
  free(t);
}

/* Shapes t as a plain float32 tensor of dims (what tensor_upload and tensor_host_data
 * share); *bytes: its size. */
static msc_status plain_shape(mbk_tensor *t, int32_t ndim, const int64_t *dims,
                              const char *what, size_t *bytes) {
  if (ndim != 1 && ndim != 2 && ndim != 4)
    return CPU_FAIL(MSC_E_SHAPE, "cpu: %s: %d dimensions (1, 2 or 4 allowed)", what, (int)ndim);
  for (int32_t i = 0; i < ndim; ++i)
    if (dims[i] <= 0)
      return CPU_FAIL(MSC_E_SHAPE, "cpu: %s: dimension %d is %lld", what, (int)i,
                      (long long)dims[i]);
  dnnl_memory_desc_t md;
  CPU_CHECK(cpu_plain_md(ndim, dims, &md));
  CPU_CHECK(cpu_tensor_set(t, ndim, dims, &md));
  *bytes = dnnl_memory_desc_get_size(&md);
  return MSC_OK;
}

static msc_status cpu_tensor_upload(mbk_tensor *t, int32_t ndim, const int64_t *dims,
                                    const float *src) {
  if (!t || !dims || !src)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: tensor_upload: NULL argument");
  size_t bytes = 0;
  CPU_CHECK(plain_shape(t, ndim, dims, "tensor_upload", &bytes));
  memcpy(t->data, src, bytes);
  return MSC_OK;
}

/* The tensor's own storage (API 14): cpu_tensor_set bumped its version, so no cached
 * conversion of the old contents is taken for the new ones the caller writes. */
static msc_status cpu_tensor_host_data(mbk_tensor *t, int32_t ndim, const int64_t *dims,
                                       float **data) {
  if (!t || !dims || !data)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: tensor_host_data: NULL argument");
  size_t bytes = 0;
  CPU_CHECK(plain_shape(t, ndim, dims, "tensor_host_data", &bytes));
  *data = t->data;
  return MSC_OK;
}

static int32_t cpu_tensor_shape(const mbk_tensor *t, int64_t *dims) {
  if (!t) return 0;
  for (int32_t i = 0; i < t->ndim; ++i) dims[i] = t->dims[i];
  return t->ndim;
}

static msc_status cpu_tensor_download(const mbk_tensor *t, float *dst, size_t n) {
  if (!t || !dst)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: tensor_download: NULL argument");
  if (t->ndim == 0)
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: tensor_download: empty tensor");
  size_t count = 1;
  for (int32_t i = 0; i < t->ndim; ++i) count *= (size_t)t->dims[i];
  if (n < count)
    return CPU_FAIL(MSC_E_BUFFER_TOO_SMALL,
                    "cpu: tensor_download: %zu floats needed, %zu given", count, n);
  dnnl_memory_desc_t plain;
  CPU_CHECK(cpu_plain_md(t->ndim, t->dims, &plain));
  if (cpu_md_equal(&plain, &t->md)) {
    memcpy(dst, t->data, count * sizeof(float));
    return MSC_OK;
  }
  /* Downloads are rare (model edges, tests): a one-off reorder is fine here. */
  dnnl_memory_t dmem = NULL;
  cpu_reorder r;
  memset(&r, 0, sizeof r);
  msc_status st = MSC_OK;
  if (dnnl_memory_create(&dmem, &plain, t->ctx->engine, dst) != dnnl_success)
    st = CPU_FAIL(MSC_E_INTERNAL, "cpu: tensor_download: memory");
  if (st == MSC_OK) st = cpu_reorder_exec(t->ctx, &r, t->mem, dmem);
  cpu_reorder_destroy(&r);
  if (dmem) dnnl_memory_destroy(dmem);
  return st;
}

static const mbk_iface cpu_iface = {
    .api_version = MBK_API_VERSION,
    .struct_size = sizeof(mbk_iface),
    .name = "cpu",
    .probe = cpu_probe,
    .ctx_create = cpu_ctx_create,
    .ctx_free = cpu_ctx_free,
    .tensor_create = cpu_tensor_create,
    .tensor_free = cpu_tensor_free,
    .tensor_upload = cpu_tensor_upload,
    .tensor_download = cpu_tensor_download,
    .tensor_shape = cpu_tensor_shape,
    .op_create = cpu_op_create,
    .op_free = mbk_op_destroy,
    .op_forward = cpu_op_forward,
    .op_backward = cpu_op_backward,
    .tensor_zero = cpu_tensor_zero,
    .loss = cpu_loss,
    .optim_update = cpu_optim_update,
    .grad_stats = cpu_grad_stats,
    .caps = MBK_CAP_CONV_FUSED,
    .tensor_host_data = cpu_tensor_host_data,
};

msc_status mbk_cpu_init(const mbk_host *host, const mbk_iface **out) {
  if (!host || !out || host->api_version != MBK_API_VERSION) return MSC_E_VERSION;
  cpu_host = host;
  *out = &cpu_iface;
  return MSC_OK;
}
