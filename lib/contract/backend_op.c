/*
 * backend_op.c — the op frame of backend_op.h (layer: backend contract, compiled into
 * every backend: the CPU backend's objects and each module).
 */
#include <stdlib.h>

#include "backend_op.h"

msc_status mbk_op_alloc(const mbk_host *host, const char *backend, mbk_ctx *ctx,
                        const mbk_op_desc *d, const mbk_op_vt *vt, size_t size, mbk_op **out) {
  mbk_op *op = (mbk_op *)calloc(1, size);
  if (!op) return host->fail(MSC_E_OUT_OF_MEMORY, "%s: %s op", backend, vt->name);
  op->ctx = ctx;
  op->desc = *d;
  op->vt = vt;
  *out = op;
  return MSC_OK;
}

msc_status mbk_op_create_by_type(const mbk_host *host, const char *backend,
                                 const mbk_op_create_fn *create, mbk_ctx *ctx,
                                 const mbk_op_desc *d, mbk_op **out) {
  if (d->type <= 0 || d->type >= MBK_OP_COUNT_ || !create[d->type])
    return host->fail(MSC_E_UNSUPPORTED, "%s: op type %d (%s) is not supported", backend,
                      (int)d->type, mbk_op_name(d->type));
  return create[d->type](ctx, d, out);
}

msc_status mbk_op_run_forward(mbk_op *op, int32_t training, mbk_tensor *const *in,
                              mbk_tensor *const *out) {
  msc_status st = op->vt->forward(op, training, in, out);
  if (st == MSC_OK && training) op->trained = 1;
  return st;
}

msc_status mbk_op_run_backward(mbk_op *op, mbk_tensor *const *in, mbk_tensor *const *out) {
  return op->vt->backward(op, in, out);
}

void mbk_op_destroy(mbk_op *op) {
  if (op) op->vt->destroy(op);
}
