/*
 * cpu_weighted.h — convolution, transposed convolution and linear share one
 * implementation (cpu_weighted.c); each fills in the shapes and the three descriptor
 * builders.
 */
#ifndef MOSAIC_BACKENDS_CPU_WEIGHTED_H
#define MOSAIC_BACKENDS_CPU_WEIGHTED_H

#include "cpu_internal.h"

typedef struct cpu_weighted cpu_weighted;
typedef struct cpu_conv_fold cpu_conv_fold;
typedef struct cpu_q cpu_q;
typedef struct cpu_k8 cpu_k8;
typedef struct cpu_c16 cpu_c16;
typedef msc_status (*cpu_weighted_pd_fn)(cpu_weighted *op, dnnl_primitive_desc_t *pd);

struct cpu_weighted {
  mbk_op base;
  int32_t bias;
  int32_t x_ndim, w_ndim, y_ndim;
  int64_t x_dims[MBK_MAX_DIMS], w_dims[MBK_MAX_DIMS], y_dims[MBK_MAX_DIMS];
  /* w_swap: the weight tensors (w and dw) hold the first two axes of w_dims (oneDNN's
   * order) swapped, in w_user_dims: deconvolution takes PyTorch's [in, out, KH, KW]
   * while oneDNN's deconvolution wants [out, in, KH, KW]. The data are read and written
   * through views with permuted axes (w_view, dw_view), not copied. */
  int32_t w_swap;
  /* w_groups > 1 (grouped conv2d, API 10): the weight tensors hold PyTorch's [OC, C/G,
   * KH, KW] (w_dims and w_user_dims) while oneDNN wants 5-D [G, OC/G, C/G, KH, KW], the
   * same bytes: the views then reshape instead of permuting. */
  int64_t w_groups;
  int64_t w_user_dims[MBK_MAX_DIMS];
  dnnl_memory_t w_view, dw_view;
  cpu_weighted_pd_fn make_fwd, make_bwd_data, make_bwd_weights;
  cpu_prim fwd, bwd_data, bwd_weights; /* backward ones are made on first use */
  /* r_x, r_w: inference forward, with a buffer of their own; the others (training)
   * convert into the context's shared buffers (cpu_view_shared). */
  cpu_reorder r_x, r_w, r_xs, r_ws, r_dy, r_wd, r_xw, r_dyw, r_dw;
  /* Gradients in the primitive's layout before going plain: dw in the context's shared
   * buffer (cpu_buf_shared), db (small) in its own. */
  cpu_buf dw_buf, db_buf;
  cpu_conv_fold *fold; /* a fused conv2d's state (cpu_conv_fused.c); NULL otherwise */
  cpu_q *q;            /* int8 state (cpu_int8.c) when the op computes in int8; else NULL */
  cpu_k8 *k8;   /* the project's own 8-channel 3×3 kernels run it (cpu_conv_k8.c); else NULL */
  cpu_c16 *c16; /* its own 16-output-channel kernels do (cpu_conv_c16.c); else NULL */
};

extern const mbk_op_vt cpu_weighted_vt_conv;
extern const mbk_op_vt cpu_weighted_vt_linear;
extern const mbk_op_vt cpu_weighted_vt_deconv;

/* Creates the forward primitive and hands the op out; frees op on failure. */
msc_status cpu_weighted_finish(cpu_weighted *op, mbk_op **out);

/* CONV2D's inference fusions (cpu_conv_fused.c). */
msc_status cpu_conv_fold_create(cpu_weighted *op);
void cpu_conv_fold_destroy(cpu_conv_fold *f); /* accepts NULL */
/* The context's attributes plus the post-ops of d's residual and relu (caller destroys). */
msc_status cpu_conv_post_ops(mbk_ctx *ctx, const mbk_op_desc *d, dnnl_primitive_attr_t *out);
/* The forward of a fused conv2d: inputs as in backend.h's table. */
msc_status cpu_conv_fused_forward(cpu_weighted *op, mbk_tensor *const *in,
                                  mbk_tensor *const *out);

/* Shared with cpu_int8.c: the folded batch norm's per-channel scale and bias (float, as
 * oneDNN's batch norm computes them), a reorder src -> dst scaling output channel o
 * (axis 0 of the weights) by scale[o], and the residual r copied into y's layout md. */
void cpu_conv_fold_arith(const float *gamma, const float *beta, const float *mean,
                         const float *var, float eps, int64_t oc, float *scale, float *bf);
msc_status cpu_scaled_reorder(mbk_ctx *ctx, dnnl_memory_t src, dnnl_memory_t dst, int64_t oc,
                              const float *scale);
msc_status cpu_conv_residual_into(cpu_weighted *op, const mbk_tensor *r, mbk_tensor *y,
                                  const dnnl_memory_desc_t *md);

/* The 8-channel 3×3 kernels (cpu_conv_k8.c): whether they take op (its shape, the
 * context's precision and the CPU), their state, and the op's forward and backward
 * through them (inputs and outputs as in backend.h's table; checked by the caller). */
int cpu_k8_fits(const cpu_weighted *op);
msc_status cpu_k8_create(cpu_weighted *op);
void cpu_k8_destroy(cpu_k8 *k); /* accepts NULL */
msc_status cpu_k8_forward(cpu_weighted *op, int32_t training, mbk_tensor *const *in,
                          mbk_tensor *const *out);
msc_status cpu_k8_fused_forward(cpu_weighted *op, mbk_tensor *const *in,
                                mbk_tensor *const *out);
msc_status cpu_k8_backward(cpu_weighted *op, mbk_tensor *const *in, mbk_tensor *const *out);

/* ---- shared by the project's own kernels (cpu_own.c) ---- */

/* What an op on them keeps: its conversions (x, w, dy, x of backward-weights, the fused
 * forward's residual) and backward-weights' per-thread scratch, kept from call to call
 * so that a steady training step allocates nothing (tests/test_alloc.c). */
typedef struct cpu_own_io {
  cpu_reorder r_x, r_w, r_dy, r_xw, r_res;
  float *part;
  int part_threads;
} cpu_own_io;
void cpu_own_io_free(cpu_own_io *io);
/* The largest output channel count of the fused forward's folding (cpu_own_fused_inputs). */
enum { CPU_OWN_OC_MAX = 16 };
/* The error of an entry point where the kernels are not compiled in (never reached: the
 * ISA is then 0 and the op is oneDNN's). */
msc_status cpu_own_absent(const cpu_weighted *op);
/* A float32 [n, c, h, w] descriptor in layout tag. */
msc_status cpu_own_md(const int64_t *dims, dnnl_format_tag_t tag, dnnl_memory_desc_t *md);
void *cpu_own_data(dnnl_memory_t m);
/* The plain float32 weights of t (converted in the shared buffer when they are not). */
msc_status cpu_own_weights(cpu_weighted *op, cpu_own_io *io, const mbk_tensor *t,
                           const float **out);
/* x (tensor t) in layout md: in the shared buffer in training, a copy of the op's own in
 * inference, as the oneDNN path (cpu_weighted.c). */
msc_status cpu_own_x(cpu_weighted *op, cpu_own_io *io, int32_t training, const mbk_tensor *t,
                     const dnnl_memory_desc_t *md, const float **out);
/* The fused forward's inputs (backend.h's table): the weights, with the batch norm folded
 * into wf (OC · C·KH·KW floats) and bf (OC) when fold_bn, the bias, x in xmd and the
 * residual in ymd (before y is touched: it may be y's own tensor); out[0] is set to ymd.
 * x and y being one tensor is refused. */
typedef struct cpu_own_fused {
  const float *w, *bias, *x, *res;
} cpu_own_fused;
msc_status cpu_own_fused_inputs(cpu_weighted *op, cpu_own_io *io, mbk_tensor *const *in,
                                mbk_tensor *const *out, const dnnl_memory_desc_t *xmd,
                                const dnnl_memory_desc_t *ymd, float *wf, float *bf,
                                cpu_own_fused *f);
/* io->part sized for the thread count of the next parallel region (*threads) times
 * per_thread floats. */
msc_status cpu_own_scratch(cpu_own_io *io, size_t per_thread, int *threads);
/* dw (OIHW) into out[1] and db into out[2], plain, where asked. */
msc_status cpu_own_grads(cpu_weighted *op, mbk_tensor *const *out, const float *dw,
                         const float *db);

/* The 16-output-channel kernels of the tiny encoder's second stage (cpu_conv_c16.c):
 * 3×3 stride 2 and 1×1 stride 2 from 8 channels, 3×3 stride 1 from 16; AVX-512 only. */
int cpu_c16_fits(const cpu_weighted *op);
msc_status cpu_c16_create(cpu_weighted *op);
void cpu_c16_destroy(cpu_c16 *k); /* accepts NULL */
msc_status cpu_c16_forward(cpu_weighted *op, int32_t training, mbk_tensor *const *in,
                           mbk_tensor *const *out);
msc_status cpu_c16_fused_forward(cpu_weighted *op, mbk_tensor *const *in,
                                 mbk_tensor *const *out);
msc_status cpu_c16_backward(cpu_weighted *op, mbk_tensor *const *in, mbk_tensor *const *out);

/* Quantised inference (cpu_int8.c; docs/precision.md, "int8"). cpu_q_create gives op a
 * cpu_q when its context computes in INT8 and its description carries a calibrated
 * input range (q_max > 0); before the forward primitive is made. */
msc_status cpu_q_create(cpu_weighted *op);
void cpu_q_destroy(cpu_q *q); /* accepts NULL */
/* The source data type of a quantised op: u8 (input known >= 0) or s8. */
dnnl_data_type_t cpu_q_src_dt(const cpu_weighted *op);
/* Sets the per-output-channel output scales (mask 2) of the quantised op on attr. */
msc_status cpu_q_attr(const cpu_weighted *op, dnnl_primitive_attr_t attr);
/* The forward of a quantised op (inputs as in backend.h's table, fusions included). */
msc_status cpu_q_forward(cpu_weighted *op, mbk_tensor *const *in, mbk_tensor *const *out);

#endif
