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

#endif
