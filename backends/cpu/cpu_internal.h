/*
 * cpu_internal.h — shared pieces of the oneDNN CPU backend (layer: CPU backend; it
 * includes only the backend contract of the core: backend.h, backend_op.h). Every oneDNN
 * call of the project lives in this folder, so a move to oneDNN 3.x touches nothing else.
 *
 * Layout policy: a tensor keeps whatever layout the op that wrote it chose (oneDNN's
 * blocked formats, e.g. nChw16c). The consuming op converts an input only when its
 * primitive wants another layout, through a cpu_reorder cache that lives in the op, so
 * a chain conv → bn → relu → pool stays blocked and the steady state allocates nothing.
 * One exception: fused (inference) convolutions with at most 16 input and output
 * channels ask for NHWC in and out (cpu_conv.c, CPU_NHWC_MAX_C), which oneDNN's "any"
 * would give a plain source and a padded blocked destination, a reorder per layer.
 * Another: a float32 stem with 5 to 15 input channels (not 8) and 16k outputs (the
 * ResNet-18 S2 stem, 12 -> 64) runs its unfused forward and its backward-weights on NHWC
 * (cpu_conv.c, stem_nhwc), where oneDNN 2.6 has AVX-512 kernels for it.
 * The 3×3 stride-1 convolutions to 8 channels that run on the project's own kernels
 * (cpu_conv_k8.c) keep the 8-channel blocked layout in training and NHWC when fused,
 * as oneDNN's narrow and channels-last choices do, and read a stem's input plain; so do
 * the 16-output-channel ones of cpu_conv_c16.c (8- or 16-channel blocked in training).
 * Parameter gradients (dw, db, dgamma, dbeta) are always written in plain layout so
 * that the optimiser can treat parameters and gradients as flat arrays.
 *
 * Precision policy (the context's precision, mbk_ctx_params): the data type travels in
 * the memory descriptor like the layout. With bf16, convolution, transposed convolution
 * and linear create their primitives with bf16 source, weights and destination
 * (cpu_op_dt) and so produce bf16 activations; the ops that take their input's layout
 * as it comes (batch norm, ReLU, add, pooling, upsampling, concat) keep its data type,
 * and a consumer that wants another type gets a reorder, as for a layout. Everything
 * the host reads or the optimiser updates stays float32: uploads, downloads, the loss
 * inputs (viewed as plain f32), parameters (f32 master weights, converted to bf16 by
 * the op's cached weight reorder), their gradients (backward-weights runs in f32 on
 * converted copies of the bf16 activations: cpu_grad_w_dt),
 * batch-norm scale, shift and statistics. With f32 nothing changes.
 */
#ifndef MOSAIC_BACKENDS_CPU_INTERNAL_H
#define MOSAIC_BACKENDS_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "backend.h"
#include "backend_op.h"
#include "loss_rows.h"

/* The host services given at init (error messages, logging). */
extern const mbk_host *cpu_host;

#define CPU_FAIL(code, ...) (cpu_host->fail((code), __VA_ARGS__))

/* Storage shared by the transient conversions of a context's ops (cpu_view_shared,
 * cpu_buf_shared): a training step converts activations, gradients and weights that
 * change at every step, so a cache per op would only hold a copy of each tensor for
 * nothing; one buffer per role, as large as the largest conversion of that role, does
 * the same work. Each remembers what it holds so that two ops converting the same
 * tensor to the same layout in a row (backward-data and backward-weights reading dy)
 * convert once. */
typedef enum cpu_shared_role {
  CPU_SHARED_X,  /* an op's input activation (forward x, backward-weights x) */
  CPU_SHARED_DY, /* an incoming gradient (backward dy) */
  CPU_SHARED_W,  /* weights, and weight gradients in the primitive's layout */
  CPU_SHARED_ROLES
} cpu_shared_role;

typedef struct cpu_shared {
  void *data;
  size_t cap;
  uint64_t src_id, src_version; /* the tensor data holds a conversion of (0 = nothing) */
  dnnl_memory_desc_t md;        /* its layout there */
} cpu_shared;

struct mbk_ctx {
  dnnl_engine_t engine; /* the process-wide CPU engine (not owned) */
  dnnl_stream_t stream;
  dnnl_primitive_attr_t attr; /* user-managed scratchpad, shared by every primitive */
  void *scratch;              /* one scratchpad for the context's primitives */
  size_t scratch_cap;
  int32_t threads;
  int32_t precision; /* mbk_precision: the data type of compute ops (cpu_op_dt) */
  int32_t conv_algo; /* mbk_conv_algo: whether conv2d may run Winograd (cpu_conv.c) */
  /* The loss terms' host scratch (cpu_loss.c), kept: steady steps allocate nothing. */
  mbk_loss_ws loss_ws;
  float *loss_buf;
  size_t loss_cap; /* floats at loss_buf */
  cpu_shared shared[CPU_SHARED_ROLES];
};

struct mbk_tensor {
  mbk_ctx *ctx;
  int32_t ndim; /* logical shape; 0 = empty */
  int64_t dims[MBK_MAX_DIMS];
  dnnl_memory_desc_t md; /* physical layout of data */
  dnnl_memory_t mem;     /* wraps data with md (NULL when empty) */
  void *data;
  size_t cap;       /* bytes allocated at data */
  uint64_t id;      /* unique per tensor, never reused */
  uint64_t version; /* bumps at every write: lets ops skip repeated reorders */
};

/* A primitive with its descriptor and its view of the context's scratchpad. */
typedef struct cpu_prim {
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t prim;
  dnnl_memory_t scratch_mem; /* NULL when the primitive needs no scratchpad */
  size_t scratch_size;
} cpu_prim;

/* A cached conversion between two layouts, plus a buffer for its result when the
 * result is a private copy (cpu_view_as). */
typedef struct cpu_reorder {
  dnnl_memory_desc_t src_md, dst_md;
  cpu_prim prim;
  void *buf;
  size_t cap;
  dnnl_memory_t buf_mem;        /* wraps buf with dst_md */
  uint64_t src_id, src_version; /* what buf currently holds (0 = nothing) */
} cpu_reorder;

/* A growable aligned buffer wrapped as a dnnl memory of a given layout. */
typedef struct cpu_buf {
  void *data;
  size_t cap;
  dnnl_memory_t mem;
  dnnl_memory_desc_t md;
} cpu_buf;

/* ---- errors ---------------------------------------------------------------------- */
msc_status cpu_dnnl_fail(dnnl_status_t s, const char *what);
#define CPU_TRY(call, what)                                                                    \
  do {                                                                                         \
    dnnl_status_t s_ = (call);                                                                 \
    if (s_ != dnnl_success) return cpu_dnnl_fail(s_, (what));                                  \
  } while (0)
#define CPU_CHECK(expr) MBK_TRY(expr)

/* ---- memory descriptors ------------------------------------------------------------ */
/* Plain row-major layout for ndim 1, 2 or 4. */
msc_status cpu_plain_md(int32_t ndim, const int64_t *dims, dnnl_memory_desc_t *md);
/* Format-"any" descriptor, letting a primitive choose. */
msc_status cpu_any_md(int32_t ndim, const int64_t *dims, dnnl_memory_desc_t *md);
/* Format "any" with data type dt (a compute op's cpu_op_dt, or its input's type). */
msc_status cpu_any_md_dt(int32_t ndim, const int64_t *dims, dnnl_data_type_t dt,
                         dnnl_memory_desc_t *md);
/* The data type of a compute op's source, weights and destination in ctx (see the
 * precision policy above): dnnl_f32, or dnnl_bf16 with precision bf16. */
dnnl_data_type_t cpu_op_dt(const mbk_ctx *ctx);
/* The data type backward-weights computes in: float32 whatever the precision (its
 * inputs are converted; the reason is in cpu_backend.c). */
dnnl_data_type_t cpu_grad_w_dt(const mbk_ctx *ctx);
int cpu_md_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b);
const dnnl_memory_desc_t *cpu_pd_md(const cpu_prim *p, dnnl_query_t what, int index);

/* Applies the context's thread count to the calling thread (before oneDNN work). */
void cpu_ctx_threads(const mbk_ctx *ctx);

/* ---- primitives ----------------------------------------------------------------------- */
/* Creates the primitive for pd, taking ownership of pd (destroyed on failure too). */
msc_status cpu_prim_init(mbk_ctx *ctx, cpu_prim *p, dnnl_primitive_desc_t pd);
void cpu_prim_destroy(cpu_prim *p);
/* Executes with the scratchpad appended to args (args has room for one more). */
msc_status cpu_prim_exec(mbk_ctx *ctx, cpu_prim *p, int nargs, dnnl_exec_arg_t *args);
/* Creates a primitive descriptor from an op descriptor with the context's attributes. */
msc_status cpu_pd_create(mbk_ctx *ctx, dnnl_primitive_desc_t *pd, const void *op_desc,
                         const_dnnl_primitive_desc_t hint, const char *what);

/* ---- tensors ------------------------------------------------------------------------ */
/* Gives t the logical shape dims and the physical layout md, (re)allocating only when
 * the storage is too small; bumps the version. t->mem is then ready to be written. */
msc_status cpu_tensor_set(mbk_tensor *t, int32_t ndim, const int64_t *dims,
                          const dnnl_memory_desc_t *md);
/* Checks t's logical shape; names the op and the argument in the error. */
msc_status cpu_tensor_expect(const mbk_tensor *t, int32_t ndim, const int64_t *dims,
                             const char *op, const char *arg);
/* A memory holding t's contents in layout want: t's own memory when the layouts match,
 * else a converted copy kept in r (reused while t's version is unchanged). */
msc_status cpu_view_as(mbk_ctx *ctx, const mbk_tensor *t, const dnnl_memory_desc_t *want,
                       cpu_reorder *r, dnnl_memory_t *out);
/* As cpu_view_as, but the converted copy lives in the context's buffer for role
 * (valid until the next conversion of that role); r keeps the primitive and the memory
 * object, whose data handle follows the shared buffer. For tensors that change between
 * two uses anyway (the training path). */
msc_status cpu_view_shared(mbk_ctx *ctx, const mbk_tensor *t, const dnnl_memory_desc_t *want,
                           cpu_shared_role role, cpu_reorder *r, dnnl_memory_t *out);
/* As cpu_buf_ensure, with b's storage the context's buffer for role (b->data stays NULL:
 * b owns only its memory object). The buffer's earlier contents are forgotten. */
msc_status cpu_buf_shared(mbk_ctx *ctx, cpu_buf *b, const dnnl_memory_desc_t *md,
                          cpu_shared_role role);
void cpu_shared_free(mbk_ctx *ctx);
/* *data: the shared buffer of role, at least bytes, as scratch: the conversion it held is
 * forgotten (cpu_prim_exec puts large scratchpads there). */
msc_status cpu_shared_take(mbk_ctx *ctx, cpu_shared_role role, size_t bytes, void **data);
/* Writes src (any layout) into t in layout md (logical shape ndim/dims). */
msc_status cpu_write_as(mbk_ctx *ctx, dnnl_memory_t src, mbk_tensor *t, int32_t ndim,
                        const int64_t *dims, const dnnl_memory_desc_t *md, cpu_reorder *r);
/* Converts src into dst through r's cached primitive. */
msc_status cpu_reorder_exec(mbk_ctx *ctx, cpu_reorder *r, dnnl_memory_t src, dnnl_memory_t dst);
void cpu_reorder_destroy(cpu_reorder *r);
/* Makes b hold at least md's size and wraps it as a memory of layout md. */
msc_status cpu_buf_ensure(mbk_ctx *ctx, cpu_buf *b, const dnnl_memory_desc_t *md);
void cpu_buf_destroy(cpu_buf *b);
void *cpu_aligned_alloc(size_t bytes);

/* ---- ops ------------------------------------------------------------------------------ */
/* Every op starts with struct mbk_op and has an mbk_op_vt (backend_op.h); they are made
 * with mbk_op_alloc(cpu_host, "cpu", ...) and find their input shape with
 * mbk_op_in_dims (backend.h). Their arguments were checked by the core's frame. */
/* cpu_conv_create, cpu_bnorm_create, ... cpu_deconv_create (cpu_conv.c, cpu_bnorm.c,
 * cpu_eltwise.c, cpu_pool.c, cpu_linear.c, cpu_concat.c, cpu_upsample.c,
 * cpu_deconv.c); cpu_layernorm_create, cpu_gelu_create, cpu_grn_create (API 10:
 * cpu_lnorm.c, cpu_eltwise.c, cpu_grn.c). */
#define CPU_DECLARE_CREATE(kind) MBK_OP_DECLARE_CREATE(cpu, kind)
MBK_OP_KINDS(CPU_DECLARE_CREATE)
MBK_OP_KINDS_10(CPU_DECLARE_CREATE)
MBK_OP_KINDS_11(CPU_DECLARE_CREATE) /* cpu_attn_create (API 11: cpu_attn.c) */
/* The instruction set the project's own kernels (cpu_conv_k8.c, cpu_conv_c16.c,
 * cpu_bnorm_c16.c) run with here: 2 AVX-512VL, 1 AVX2, 0 none or switched off
 * (MSC_CPU_OWN_KERNELS=0, read at each call: mosaic.h, "Backends"); cpu_own.c. */
int cpu_own_kernels_isa(void);

/* The training batch norm of 8 or 16 channels in the channel-blocked layout
 * (cpu_bnorm_c16.c): whether it takes a tensor of layout md and c channels, and its
 * passes over the t floats of x. The forward keeps in st what the backward needs (the
 * batch's mean, biased variance and 1/√(var + ε), γ/√(var + ε) and β). */
typedef struct cpu_bn16_state {
  float mean[16], var[16], inv[16], a[16], beta[16];
} cpu_bn16_state;
int cpu_bn16_fits(const dnnl_memory_desc_t *md, int64_t c);
/* Whether op's last training forward ran on them (tests/test_train_memory.c). */
int cpu_bnorm_own(const mbk_op *op);
void cpu_bn16_forward(const float *x, int64_t t, int64_t c, const float *gamma,
                      const float *beta, const float *shift, float eps, int relu, float *y,
                      cpu_bn16_state *st);
void cpu_bn16_backward(const float *x, const float *dy, int64_t t, int64_t c,
                       const float *gamma, int relu, const cpu_bn16_state *st, float *dx,
                       float *dgamma, float *dbeta);

/* BATCHNORM with u.bn.reduce (API 13, cpu_bnorm_sync.c); cpu_bnorm_create hands over. */
msc_status cpu_bnorm_sync_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out);

/* The backend's entry (same contract as a module's init; the registry calls it). */
msc_status mbk_cpu_init(const mbk_host *host, const mbk_iface **out);

/* Loss terms and zeroed tensors (cpu_loss.c). */
msc_status cpu_tensor_zero(mbk_tensor *t, int32_t ndim, const int64_t *dims);
msc_status cpu_loss(mbk_ctx *ctx, const mbk_loss_desc *d, const mbk_tensor *x,
                    const mbk_tensor *x2, double *value, mbk_tensor *grad, mbk_tensor *grad2);

/* The optimiser step and the gradient statistics (cpu_optim.c). */
msc_status cpu_optim_update(mbk_ctx *ctx, const mbk_optim_desc *d, mbk_tensor *param,
                            const mbk_tensor *grad, mbk_tensor *m1, mbk_tensor *m2);
msc_status cpu_grad_stats(mbk_ctx *ctx, const mbk_tensor *const *t, int32_t n,
                          int32_t *first_bad, double *sumsq);

#endif /* MOSAIC_BACKENDS_CPU_INTERNAL_H */
