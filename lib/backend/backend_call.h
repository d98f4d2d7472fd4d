/*
 * backend_call.h — the core's frame around a backend table (layer: backend).
 *
 * The core calls a backend's table (mbk_iface, backend.h) only through these functions;
 * nothing else in lib/ dereferences an mbk_iface's function pointers but registry.c,
 * which accepts and probes a table. The frame checks every argument once, for every
 * backend (the built-in CPU backend and each module alike), so backends need not:
 *  - op_create: the description (mbk_op_desc_validate); the frame keeps a copy with the
 *    backend's op, in an msci_be_op;
 *  - op_forward / op_backward: the argument counts of the op type and pass
 *    (mbk_op_arity, with the concat count) and every entry that must not be NULL
 *    (mbk_op_arg_optional);
 *  - loss: mbk_loss_desc_validate;
 *  - NULL tables, contexts, tensors and output pointers.
 * A rejected call returns MSC_E_INVALID_ARGUMENT with a message that names the backend,
 * the op and the argument ("cpu: conv2d forward takes 3 inputs and 1 output, got 1
 * and 1"); the backend is not called. Otherwise the backend's status and message come
 * back unchanged.
 */
#ifndef MOSAIC_LIB_BACKEND_CALL_H
#define MOSAIC_LIB_BACKEND_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "contract/backend.h"

/* A backend op with its table and the description it was made for. */
typedef struct msci_be_op msci_be_op;

msc_status msci_be_ctx_create(const mbk_iface *be, const mbk_ctx_params *params, mbk_ctx **out);
void msci_be_ctx_free(const mbk_iface *be, mbk_ctx *ctx); /* accepts NULL */

msc_status msci_be_tensor_create(const mbk_iface *be, mbk_ctx *ctx, mbk_tensor **out);
void msci_be_tensor_free(const mbk_iface *be, mbk_tensor *t); /* accepts NULL */
msc_status msci_be_tensor_upload(const mbk_iface *be, mbk_tensor *t, int32_t ndim,
                                 const int64_t *dims, const float *src);
msc_status msci_be_tensor_download(const mbk_iface *be, const mbk_tensor *t, float *dst,
                                   size_t n);
/* The logical shape (dims[MBK_MAX_DIMS]); 0 when empty or t is NULL. */
int32_t msci_be_tensor_shape(const mbk_iface *be, const mbk_tensor *t, int64_t *dims);
/* The host memory of t's plain contents, shaped dims (tensor_host_data, API 14);
 * MSC_E_UNSUPPORTED, without a message, when the backend does not offer it. */
msc_status msci_be_tensor_host_data(const mbk_iface *be, mbk_tensor *t, int32_t ndim,
                                    const int64_t *dims, float **data);
msc_status msci_be_tensor_zero(const mbk_iface *be, mbk_tensor *t, int32_t ndim,
                               const int64_t *dims);

/* Validates desc and makes the op; *out untouched on error. */
msc_status msci_be_op_create(const mbk_iface *be, mbk_ctx *ctx, const mbk_op_desc *desc,
                             msci_be_op **out);
void msci_be_op_free(msci_be_op *op); /* accepts NULL */
msc_status msci_be_op_forward(msci_be_op *op, int32_t training, mbk_tensor *const *in,
                              int32_t n_in, mbk_tensor *const *out, int32_t n_out);
msc_status msci_be_op_backward(msci_be_op *op, mbk_tensor *const *in, int32_t n_in,
                               mbk_tensor *const *out, int32_t n_out);

msc_status msci_be_loss(const mbk_iface *be, mbk_ctx *ctx, const mbk_loss_desc *desc,
                        const mbk_tensor *x, const mbk_tensor *x2, double *value,
                        mbk_tensor *grad, mbk_tensor *grad2);

/* MSC_OK when the backend can train (it has optim_update and grad_stats); otherwise
 * MSC_E_UNSUPPORTED naming what it lacks. */
msc_status msci_be_can_train(const mbk_iface *be);
/* The finite check and sum of squares of n gradient tensors (mbk_iface.grad_stats). */
msc_status msci_be_grad_stats(const mbk_iface *be, mbk_ctx *ctx, const mbk_tensor *const *t,
                              int32_t n, int32_t *first_bad, double *sumsq);
msc_status msci_be_optim_update(const mbk_iface *be, mbk_ctx *ctx, const mbk_optim_desc *desc,
                                mbk_tensor *param, const mbk_tensor *grad, mbk_tensor *m1,
                                mbk_tensor *m2);

#endif /* MOSAIC_LIB_BACKEND_CALL_H */
