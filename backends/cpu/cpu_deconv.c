/*
 * cpu_deconv.c — 2-D transposed convolution (PyTorch's ConvTranspose2d: NCHW, weights
 * [in, out, KH, KW], padding, output padding) as oneDNN direct deconvolution; the
 * forward/backward machinery is in cpu_weighted.c.
 *
 * oneDNN's deconvolution computes the same sum but names its weights [out, in, KH, KW];
 * the op keeps PyTorch's order for its tensors (so weights move between the two
 * frameworks as they are) and cpu_weighted.c reads them through a permuted view
 * (w_swap). Output padding becomes oneDNN's right padding: PyTorch's output size
 * (H − 1)·s − 2p + k + op is oneDNN's (H − 1)·s − p_l − p_r + k with p_l = p and
 * p_r = p − op (negative when op > p, which oneDNN 2.6 accepts: it derives the
 * computation from the sizes and p_l; tests/test_dense_ops.c has such a case).
 */
#include "cpu_weighted.h"

static void deconv_geometry(const cpu_weighted *op, dnnl_dims_t strides, dnnl_dims_t pl,
                            dnnl_dims_t pr) {
  const mbk_op_desc *d = &op->base.desc;
  strides[0] = d->u.deconv.sh;
  strides[1] = d->u.deconv.sw;
  pl[0] = d->u.deconv.ph;
  pl[1] = d->u.deconv.pw;
  pr[0] = d->u.deconv.ph - d->u.deconv.oph;
  pr[1] = d->u.deconv.pw - d->u.deconv.opw;
}

/* Source, weights and destination in the context's compute type (cpu_op_dt), the bias
 * in float32; with grad_w (backward-weights) all in float32 (cpu_grad_w_dt). */
static msc_status deconv_mds(const cpu_weighted *op, int grad_w, dnnl_memory_desc_t *x,
                             dnnl_memory_desc_t *w, dnnl_memory_desc_t *b,
                             dnnl_memory_desc_t *y) {
  dnnl_data_type_t dt = grad_w ? cpu_grad_w_dt(op->base.ctx) : cpu_op_dt(op->base.ctx);
  CPU_CHECK(cpu_any_md_dt(4, op->x_dims, dt, x));
  CPU_CHECK(cpu_any_md_dt(4, op->w_dims, dt, w));
  CPU_CHECK(cpu_plain_md(1, &op->y_dims[1], b));
  return cpu_any_md_dt(4, op->y_dims, dt, y);
}

static msc_status deconv_fwd(cpu_weighted *op, dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t x, w, b, y;
  dnnl_dims_t s, pl, pr;
  CPU_CHECK(deconv_mds(op, 0, &x, &w, &b, &y));
  deconv_geometry(op, s, pl, pr);
  dnnl_deconvolution_desc_t dd;
  /* forward_training for inference too, as conv2d (cpu_conv.c): one primitive. */
  CPU_TRY(dnnl_deconvolution_forward_desc_init(&dd, dnnl_forward_training,
                                               dnnl_deconvolution_direct, &x, &w,
                                               op->bias ? &b : NULL, &y, s, pl, pr),
          "deconv2d forward descriptor");
  return cpu_pd_create(op->base.ctx, pd, &dd, NULL, "deconv2d forward");
}

static msc_status deconv_bwd_data(cpu_weighted *op, dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t x, w, b, y;
  dnnl_dims_t s, pl, pr;
  CPU_CHECK(deconv_mds(op, 0, &x, &w, &b, &y));
  deconv_geometry(op, s, pl, pr);
  dnnl_deconvolution_desc_t dd;
  CPU_TRY(dnnl_deconvolution_backward_data_desc_init(&dd, dnnl_deconvolution_direct, &x, &w, &y,
                                                     s, pl, pr),
          "deconv2d backward-data descriptor");
  return cpu_pd_create(op->base.ctx, pd, &dd, op->fwd.pd, "deconv2d backward data");
}

static msc_status deconv_bwd_weights(cpu_weighted *op, dnnl_primitive_desc_t *pd) {
  dnnl_memory_desc_t x, w, b, y;
  dnnl_dims_t s, pl, pr;
  CPU_CHECK(deconv_mds(op, 1, &x, &w, &b, &y));
  deconv_geometry(op, s, pl, pr);
  dnnl_deconvolution_desc_t dd;
  CPU_TRY(dnnl_deconvolution_backward_weights_desc_init(&dd, dnnl_deconvolution_direct, &x, &w,
                                                        op->bias ? &b : NULL, &y, s, pl, pr),
          "deconv2d backward-weights descriptor");
  return cpu_pd_create(op->base.ctx, pd, &dd, op->fwd.pd, "deconv2d backward weights");
}

msc_status cpu_deconv_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, &cpu_weighted_vt_deconv, sizeof(cpu_weighted),
                         &base));
  cpu_weighted *op = (cpu_weighted *)base;
  op->bias = d->u.deconv.bias != 0;
  op->x_ndim = mbk_op_in_dims(d, op->x_dims);
  op->w_ndim = 4;
  op->w_dims[0] = d->u.deconv.out_c; /* oneDNN's order */
  op->w_dims[1] = d->c;
  op->w_dims[2] = d->u.deconv.kh;
  op->w_dims[3] = d->u.deconv.kw;
  op->w_swap = 1;
  op->w_user_dims[0] = d->c; /* PyTorch's order, the tensors' */
  op->w_user_dims[1] = d->u.deconv.out_c;
  op->w_user_dims[2] = d->u.deconv.kh;
  op->w_user_dims[3] = d->u.deconv.kw;
  op->y_ndim = mbk_op_out_dims(d, op->y_dims);
  op->make_fwd = deconv_fwd;
  op->make_bwd_data = deconv_bwd_data;
  op->make_bwd_weights = deconv_bwd_weights;
  return cpu_weighted_finish(op, out);
}
