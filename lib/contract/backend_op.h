/*
 * backend_op.h — the op frame a backend builds its ops on (layer: backend contract;
 * included by backends only, never by the core, which sees mbk_op as opaque).
 *
 * Every op of a backend that uses it starts with struct mbk_op below and has a table
 * mbk_op_vt. The backend's op_create hands the description to mbk_op_create_by_type with
 * its own creators; its op_forward / op_backward do their own setup (a device, streams)
 * around mbk_op_run_forward / mbk_op_run_backward; its op_free calls mbk_op_destroy.
 * Argument counts, NULL entries and the description were checked by the core's frame
 * before the call (backend.h, "Who checks what"), so none of these checks them again.
 * Defined in backend_op.c, which every backend compiles in.
 */
#ifndef MOSAIC_LIB_BACKEND_OP_H
#define MOSAIC_LIB_BACKEND_OP_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What each op type implements. in and out hold the counts of mbk_op_arity. */
typedef struct mbk_op_vt {
  const char *name; /* in messages: "conv2d", "maxpool", ... */
  msc_status (*forward)(mbk_op *op, int32_t training, mbk_tensor *const *in,
                        mbk_tensor *const *out);
  msc_status (*backward)(mbk_op *op, mbk_tensor *const *in, mbk_tensor *const *out);
  void (*destroy)(mbk_op *op); /* frees op and what it holds */
} mbk_op_vt;

/* The common header of every op. */
struct mbk_op {
  mbk_ctx *ctx;
  mbk_op_desc desc;
  const mbk_op_vt *vt;
  int32_t trained; /* a training forward has run: backward may use its state */
};

/* Makes an op of one type for a validated description. */
typedef msc_status (*mbk_op_create_fn)(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out);

/* The op kinds of a complete backend in mbk_op_type order (CONV2D = 1 ... DECONV2D = 10),
 * as X(kind) for each. A backend names its creators <prefix>_<kind>_create, declares
 * them with MBK_OP_DECLARE_CREATE and builds its table for mbk_op_create_by_type as
 * {NULL, MBK_OP_KINDS(X)} with X(kind) expanding to `<prefix>_<kind>_create,`. */
#define MBK_OP_KINDS(X)                                                                        \
  X(conv)                                                                                      \
  X(bnorm) X(relu) X(maxpool) X(gavgpool) X(linear) X(add) X(concat) X(upsample) X(deconv)
/* The kinds API 10 appended (LAYERNORM = 11, GELU = 12, GRN = 13), in the same manner: a
 * backend that has them builds {NULL, MBK_OP_KINDS(X) MBK_OP_KINDS_10(X)}; one whose table
 * stops at MBK_OP_KINDS leaves their entries NULL, which refuses them with
 * MSC_E_UNSUPPORTED naming the op (mbk_op_create_by_type). */
#define MBK_OP_KINDS_10(X) X(layernorm) X(gelu) X(grn)
/* The kind API 11 appended (ATTN = 14), in the same manner. */
#define MBK_OP_KINDS_11(X) X(attn)
#define MBK_OP_DECLARE_CREATE(prefix, kind)                                                    \
  msc_status prefix##_##kind##_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out);

/* Allocates a zeroed op of size bytes (>= sizeof(struct mbk_op)) and fills the header;
 * on failure reports "<backend>: <vt name> op" as out of memory through host. */
msc_status mbk_op_alloc(const mbk_host *host, const char *backend, mbk_ctx *ctx,
                        const mbk_op_desc *d, const mbk_op_vt *vt, size_t size, mbk_op **out);

/* Calls create[d->type] (a table of MBK_OP_COUNT_ entries indexed by mbk_op_type; a NULL
 * entry: the backend lacks the op, MSC_E_UNSUPPORTED). */
msc_status mbk_op_create_by_type(const mbk_host *host, const char *backend,
                                 const mbk_op_create_fn *create, mbk_ctx *ctx,
                                 const mbk_op_desc *d, mbk_op **out);

/* The op's forward; marks the op trained after a successful training forward. */
msc_status mbk_op_run_forward(mbk_op *op, int32_t training, mbk_tensor *const *in,
                              mbk_tensor *const *out);
/* The op's backward. */
msc_status mbk_op_run_backward(mbk_op *op, mbk_tensor *const *in, mbk_tensor *const *out);
/* Destroys op (NULL is ignored). */
void mbk_op_destroy(mbk_op *op);

#ifdef __cplusplus
}
#endif

#endif /* MOSAIC_LIB_BACKEND_OP_H */
