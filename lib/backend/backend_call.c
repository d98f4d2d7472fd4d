/*
 * backend_call.c — the core's frame around a backend table (backend_call.h; layer:
 * backend): argument checks done once, for every backend, then the table's function.
 */
#include <stddef.h>
#include <stdlib.h>

#include "backend/backend_call.h"
#include "common/internal.h"

struct msci_be_op {
  const mbk_iface *be;
  mbk_op *op;
  mbk_op_desc desc;
};

#define NEED(cond, be, what)                                                                   \
  do {                                                                                         \
    if (!(cond))                                                                               \
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s: NULL argument", be_name(be), (what));  \
  } while (0)

static const char *be_name(const mbk_iface *be) {
  return be && be->name ? be->name : "backend";
}

/* ---- contexts and tensors: pass-through with the table checked ---------------------- */

msc_status msci_be_ctx_create(const mbk_iface *be, const mbk_ctx_params *params,
                              mbk_ctx **out) {
  NEED(be && out, be, "ctx_create");
  return be->ctx_create(params, out);
}

void msci_be_ctx_free(const mbk_iface *be, mbk_ctx *ctx) {
  if (be && ctx) be->ctx_free(ctx);
}

msc_status msci_be_tensor_create(const mbk_iface *be, mbk_ctx *ctx, mbk_tensor **out) {
  NEED(be && ctx && out, be, "tensor_create");
  return be->tensor_create(ctx, out);
}

void msci_be_tensor_free(const mbk_iface *be, mbk_tensor *t) {
  if (be && t) be->tensor_free(t);
}

msc_status msci_be_tensor_upload(const mbk_iface *be, mbk_tensor *t, int32_t ndim,
                                 const int64_t *dims, const float *src) {
  NEED(be && t && dims && src, be, "tensor_upload");
  return be->tensor_upload(t, ndim, dims, src);
}

msc_status msci_be_tensor_download(const mbk_iface *be, const mbk_tensor *t, float *dst,
                                   size_t n) {
  NEED(be && t && dst, be, "tensor_download");
  return be->tensor_download(t, dst, n);
}

int32_t msci_be_tensor_shape(const mbk_iface *be, const mbk_tensor *t, int64_t *dims) {
  return be && t && dims ? be->tensor_shape(t, dims) : 0;
}

msc_status msci_be_tensor_host_data(const mbk_iface *be, mbk_tensor *t, int32_t ndim,
                                    const int64_t *dims, float **data) {
  NEED(be && t && dims && data, be, "tensor_host_data");
  if (be->struct_size < offsetof(mbk_iface, tensor_host_data) + sizeof be->tensor_host_data ||
      !be->tensor_host_data)
    return MSC_E_UNSUPPORTED;
  return be->tensor_host_data(t, ndim, dims, data);
}

msc_status msci_be_tensor_zero(const mbk_iface *be, mbk_tensor *t, int32_t ndim,
                               const int64_t *dims) {
  NEED(be && t && dims, be, "tensor_zero");
  return be->tensor_zero(t, ndim, dims);
}

/* ---- ops ---------------------------------------------------------------------------- */

msc_status msci_be_op_create(const mbk_iface *be, mbk_ctx *ctx, const mbk_op_desc *desc,
                             msci_be_op **out) {
  NEED(be && ctx && desc && out, be, "op_create");
  char why[256];
  msc_status st = mbk_op_desc_validate(desc, why, sizeof why);
  if (st != MSC_OK) return msci_fail(st, "%s: %s", be_name(be), why);
  if (mbk_conv_fused(desc) && !(be->caps & MBK_CAP_CONV_FUSED))
    return msci_fail(MSC_E_UNSUPPORTED,
                     "%s: conv2d fusions (fold_bn, residual, relu) are "
                     "not supported by this backend",
                     be_name(be));
  msci_be_op *op = calloc(1, sizeof *op);
  if (!op)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: %s op", be_name(be), mbk_op_name(desc->type));
  op->be = be;
  op->desc = *desc;
  st = be->op_create(ctx, &op->desc, &op->op);
  if (st != MSC_OK) {
    free(op);
    return st;
  }
  *out = op;
  return MSC_OK;
}

void msci_be_op_free(msci_be_op *op) {
  if (!op) return;
  op->be->op_free(op->op);
  free(op);
}

/* Counts of the pass, then the entries of in and out that must be there. */
static msc_status check_args(const msci_be_op *op, int32_t backward, mbk_tensor *const *in,
                             int32_t n_in, mbk_tensor *const *out, int32_t n_out) {
  const char *be = be_name(op->be), *name = mbk_op_name(op->desc.type);
  const char *pass = backward ? "backward" : "forward";
  int32_t want_in = 0, want_out = 0;
  mbk_op_arity(&op->desc, backward, &want_in, &want_out);
  if (n_in != want_in || n_out != want_out)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: %s %s takes %d input%s and %d output%s, got %d and %d", be, name,
                     pass, (int)want_in, want_in == 1 ? "" : "s", (int)want_out,
                     want_out == 1 ? "" : "s", (int)n_in, (int)n_out);
  if ((n_in > 0 && !in) || (n_out > 0 && !out))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s %s: the %s array is NULL", be, name, pass,
                     n_in > 0 && !in ? "input" : "output");
  for (int32_t i = 0; i < n_in; ++i)
    if (!in[i] && !mbk_op_arg_optional(&op->desc, backward, 0, i))
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s %s: input %d is NULL", be, name, pass,
                       (int)i);
  for (int32_t i = 0; i < n_out; ++i)
    if (!out[i] && !mbk_op_arg_optional(&op->desc, backward, 1, i))
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s %s: output %d is NULL", be, name, pass,
                       (int)i);
  return MSC_OK;
}

msc_status msci_be_op_forward(msci_be_op *op, int32_t training, mbk_tensor *const *in,
                              int32_t n_in, mbk_tensor *const *out, int32_t n_out) {
  NEED(op, (const mbk_iface *)NULL, "op_forward");
  MSCI_TRY(check_args(op, 0, in, n_in, out, n_out));
  if (training && mbk_conv_fused(&op->desc))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: a fused conv2d runs in inference only",
                     be_name(op->be));
  return op->be->op_forward(op->op, training, in, n_in, out, n_out);
}

msc_status msci_be_op_backward(msci_be_op *op, mbk_tensor *const *in, int32_t n_in,
                               mbk_tensor *const *out, int32_t n_out) {
  NEED(op, (const mbk_iface *)NULL, "op_backward");
  MSCI_TRY(check_args(op, 1, in, n_in, out, n_out));
  if (mbk_conv_fused(&op->desc))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: a fused conv2d has no backward",
                     be_name(op->be));
  return op->be->op_backward(op->op, in, n_in, out, n_out);
}

/* ---- loss terms and the optimiser --------------------------------------------------- */

msc_status msci_be_loss(const mbk_iface *be, mbk_ctx *ctx, const mbk_loss_desc *desc,
                        const mbk_tensor *x, const mbk_tensor *x2, double *value,
                        mbk_tensor *grad, mbk_tensor *grad2) {
  NEED(be && ctx, be, "loss");
  char why[256];
  msc_status st = mbk_loss_desc_validate(desc, x, x2, value, grad, grad2, why, sizeof why);
  if (st != MSC_OK) return msci_fail(st, "%s: %s", be_name(be), why);
  return be->loss(ctx, desc, x, x2, value, grad, grad2);
}

msc_status msci_be_can_train(const mbk_iface *be) {
  NEED(be, be, "can_train");
  if (be->optim_update && be->grad_stats) return MSC_OK;
  return msci_fail(MSC_E_UNSUPPORTED, "backend '%s' cannot train: it has no %s", be_name(be),
                   be->optim_update ? "grad_stats" : "optim_update");
}

msc_status msci_be_grad_stats(const mbk_iface *be, mbk_ctx *ctx, const mbk_tensor *const *t,
                              int32_t n, int32_t *first_bad, double *sumsq) {
  NEED(be && ctx && first_bad && (n == 0 || t), be, "grad_stats");
  for (int32_t i = 0; i < n; ++i)
    if (!t[i])
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: grad_stats: tensor %d is NULL", be_name(be),
                       (int)i);
  if (!be->grad_stats)
    return msci_fail(MSC_E_UNSUPPORTED, "%s: grad_stats: the backend has none", be_name(be));
  return be->grad_stats(ctx, t, n, first_bad, sumsq);
}

msc_status msci_be_optim_update(const mbk_iface *be, mbk_ctx *ctx, const mbk_optim_desc *desc,
                                mbk_tensor *param, const mbk_tensor *grad, mbk_tensor *m1,
                                mbk_tensor *m2) {
  NEED(be && ctx && desc && param && grad, be, "optim_update");
  if (!be->optim_update)
    return msci_fail(MSC_E_UNSUPPORTED, "%s: optim_update: the backend has none", be_name(be));
  return be->optim_update(ctx, desc, param, grad, m1, m2);
}
