/*
 * cpu_loss.c — the loss terms on CPU tensors (layer: CPU backend). The tensors live in
 * host memory, so the terms run the contract's host driver (loss_rows.h, the same code
 * as the core's msc_loss_* functions, hence the same bits) on their rows directly, and
 * the weighted gradient is added into the gradient tensor in place.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "loss_rows.h"

msc_status cpu_tensor_zero(mbk_tensor *t, int32_t ndim, const int64_t *dims) {
  if (!t || !dims) return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: tensor_zero: NULL argument");
  for (int32_t i = 0; i < ndim; ++i)
    if (dims[i] <= 0)
      return CPU_FAIL(MSC_E_SHAPE, "cpu: tensor_zero: dimension %d is %lld", (int)i,
                      (long long)dims[i]);
  dnnl_memory_desc_t md;
  CPU_CHECK(cpu_plain_md(ndim, dims, &md));
  CPU_CHECK(cpu_tensor_set(t, ndim, dims, &md));
  memset(t->data, 0, dnnl_memory_desc_get_size(&md));
  return MSC_OK;
}

/* The plain row-major contents of a 2-D tensor of `cols` columns and at least `rows`
 * rows: its own data when plain, else a converted copy made in r. */
static msc_status plain_rows(mbk_ctx *ctx, const mbk_tensor *t, int64_t rows, int64_t cols,
                             const char *what, cpu_reorder *r, const float **out) {
  if (!t || t->ndim != 2 || t->dims[1] != cols || t->dims[0] < rows)
    return CPU_FAIL(MSC_E_SHAPE,
                    "cpu: loss: %s must be a 2-D tensor of >= %lld rows and %lld "
                    "columns",
                    what, (long long)rows, (long long)cols);
  dnnl_memory_desc_t plain;
  dnnl_memory_t mem;
  CPU_CHECK(cpu_plain_md(2, t->dims, &plain));
  CPU_CHECK(cpu_view_as(ctx, t, &plain, r, &mem));
  void *h = NULL;
  CPU_TRY(dnnl_memory_get_data_handle(mem, &h), "loss input");
  *out = h;
  return MSC_OK;
}

/* The plain NCHW contents of a 4-D tensor of c channels, h × w pixels and at least n
 * images: its own data when plain, else a converted copy made in r. */
static msc_status plain_images(mbk_ctx *ctx, const mbk_tensor *t, int64_t n, int64_t c,
                               int64_t h, int64_t w, cpu_reorder *r, const float **out) {
  if (!t || t->ndim != 4 || t->dims[0] < n || t->dims[1] != c || t->dims[2] != h ||
      t->dims[3] != w)
    return CPU_FAIL(MSC_E_SHAPE,
                    "cpu: loss: logits must be a 4-D tensor of >= %lld images × %lld "
                    "channels × %lld × %lld",
                    (long long)n, (long long)c, (long long)h, (long long)w);
  dnnl_memory_desc_t plain;
  dnnl_memory_t mem;
  CPU_CHECK(cpu_plain_md(4, t->dims, &plain));
  CPU_CHECK(cpu_view_as(ctx, t, &plain, r, &mem));
  void *p = NULL;
  CPU_TRY(dnnl_memory_get_data_handle(mem, &p), "loss input");
  *out = p;
  return MSC_OK;
}

/* grad[rows r0..] += weight × g, for a plain gradient tensor shaped like x (2-D rows, or
 * 4-D images of cols = C·H·W floats each). */
static msc_status add_into(mbk_tensor *grad, const mbk_tensor *x, int64_t r0, int64_t n,
                           int64_t cols, const float *g, double weight) {
  dnnl_memory_desc_t plain;
  CPU_CHECK(cpu_plain_md(x->ndim, x->dims, &plain));
  int same = grad && grad->ndim == x->ndim;
  for (int32_t i = 0; same && i < x->ndim; ++i) same = grad->dims[i] == x->dims[i];
  if (!same || !cpu_md_equal(&grad->md, &plain))
    return CPU_FAIL(MSC_E_INVALID_ARGUMENT,
                    "cpu: loss: the gradient tensor must be a plain "
                    "tensor shaped like its input (made by tensor_zero)");
  float *dst = (float *)grad->data + r0 * cols;
  for (int64_t i = 0; i < n * cols; ++i) dst[i] += (float)(weight * g[i]);
  grad->version++;
  return MSC_OK;
}

static msc_status run_loss(mbk_ctx *ctx, const mbk_loss_desc *d, const mbk_tensor *x,
                           const mbk_tensor *x2, double *value, mbk_tensor *grad,
                           mbk_tensor *grad2, cpu_reorder *r1, cpu_reorder *r2, float *ga,
                           float *gb, float *e) {
  const float *a = NULL, *b = NULL;
  switch (d->type) {
  case MBK_LOSS_NTXENT:
    CPU_CHECK(plain_rows(ctx, x, d->row0 + 2 * d->n, d->d, "x", r1, &a));
    a += d->row0 * d->d;
    CPU_CHECK(mbk_loss_rows_ntxent(cpu_host->fail, &ctx->loss_ws, a, a + d->n * d->d, d->n,
                                   d->d, d->tau, value, ga, gb));
    CPU_CHECK(add_into(grad, x, d->row0, d->n, d->d, ga, d->weight));
    return add_into(grad, x, d->row0 + d->n, d->n, d->d, gb, d->weight);
  case MBK_LOSS_INFONCE:
    CPU_CHECK(plain_rows(ctx, x, d->row0 + d->n, d->d, "x", r1, &a));
    CPU_CHECK(plain_rows(ctx, x2, d->row0 + d->n, d->d, "x2", r2, &b));
    CPU_CHECK(mbk_loss_rows_infonce(cpu_host->fail, &ctx->loss_ws, a + d->row0 * d->d,
                                    b + d->row0 * d->d, d->n, d->d, d->tau, value, ga, gb));
    CPU_CHECK(add_into(grad, x, d->row0, d->n, d->d, ga, d->weight));
    return add_into(grad2, x2, d->row0, d->n, d->d, gb, d->weight);
  case MBK_LOSS_MULSUPCON: {
    CPU_CHECK(plain_rows(ctx, x, 1, d->d, "x", r1, &a));
    for (int64_t k = 0; k < d->n; ++k) {
      if (d->rows[k] < 0 || d->rows[k] >= x->dims[0])
        return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: mulsupcon: row %d out of range",
                        (int)d->rows[k]);
      memcpy(e + k * d->d, a + (int64_t)d->rows[k] * d->d, (size_t)d->d * sizeof(float));
    }
    CPU_CHECK(mbk_loss_rows_mulsupcon(cpu_host->fail, &ctx->loss_ws, e, d->labels, d->n, d->d,
                                      d->c, d->tau, d->per_anchor, value, ga));
    for (int64_t k = 0; k < d->n; ++k)
      CPU_CHECK(add_into(grad, x, d->rows[k], 1, d->d, ga + k * d->d, d->weight));
    return MSC_OK;
  }
  case MBK_LOSS_BCE:
    CPU_CHECK(plain_rows(ctx, x, d->row0 + d->n, d->c, "logits", r1, &a));
    CPU_CHECK(mbk_loss_rows_bce(cpu_host->fail, &ctx->loss_ws, a + d->row0 * d->c, d->labels,
                                d->n, d->c, d->row_mask, value, ga));
    return add_into(grad, x, d->row0, d->n, d->c, ga, d->weight);
  case MBK_LOSS_SOFTMAX_CE:
    CPU_CHECK(plain_rows(ctx, x, d->row0 + d->n, d->c, "logits", r1, &a));
    CPU_CHECK(mbk_loss_rows_softmax_ce(cpu_host->fail, &ctx->loss_ws, a + d->row0 * d->c,
                                       d->labels, d->n, d->c, d->row_mask, value, ga));
    return add_into(grad, x, d->row0, d->n, d->c, ga, d->weight);
  case MBK_LOSS_PIXEL_CE:
  case MBK_LOSS_PIXEL_BCE:
  case MBK_LOSS_DICE: {
    const int64_t img = d->c * d->h * d->w;
    CPU_CHECK(plain_images(ctx, x, d->row0 + d->n, d->c, d->h, d->w, r1, &a));
    a += d->row0 * img;
    if (d->type == MBK_LOSS_PIXEL_CE)
      CPU_CHECK(mbk_loss_rows_pixel_ce(cpu_host->fail, &ctx->loss_ws, a, d->targets, d->n, d->c,
                                       d->h, d->w, d->ignore_index, d->class_weight, value,
                                       ga));
    else if (d->type == MBK_LOSS_PIXEL_BCE)
      CPU_CHECK(mbk_loss_rows_pixel_bce(cpu_host->fail, &ctx->loss_ws, a, d->soft_targets,
                                        d->pixel_mask, d->n, d->c, d->h, d->w, d->pos_weight,
                                        value, ga));
    else
      CPU_CHECK(mbk_loss_rows_dice(cpu_host->fail, &ctx->loss_ws, a, d->targets, d->n, d->c,
                                   d->h, d->w, d->ignore_index, value, ga));
    return add_into(grad, x, d->row0, d->n, img, ga, d->weight);
  }
  default: return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: unknown loss type %d", (int)d->type);
  }
}

msc_status cpu_loss(mbk_ctx *ctx, const mbk_loss_desc *d, const mbk_tensor *x,
                    const mbk_tensor *x2, double *value, mbk_tensor *grad, mbk_tensor *grad2) {
  /* The core's frame checked these already; the entry is also called directly (tests). */
  char why[256];
  msc_status bad = mbk_loss_desc_validate(d, x, x2, value, grad, grad2, why, sizeof why);
  if (bad != MSC_OK) return CPU_FAIL(bad, "cpu: %s", why);
  int64_t width = d->type == MBK_LOSS_BCE || d->type == MBK_LOSS_SOFTMAX_CE ? d->c : d->d;
  if (d->type >= MBK_LOSS_PIXEL_CE) { /* one "row" per image: C·H·W floats */
    if (d->c > INT64_MAX / d->h || d->c * d->h > INT64_MAX / d->w ||
        d->n > (int64_t)(PTRDIFF_MAX / (3 * (int64_t)sizeof(float))) / (d->c * d->h * d->w))
      return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: loss: n × c × h × w is too large");
    width = d->c * d->h * d->w;
  }
  size_t count = (size_t)d->n * (size_t)width;
  /* ga, gb and e in the context's buffer, grown when a call needs more and kept. */
  if (ctx->loss_cap < 3 * count) {
    float *p = malloc(3 * count * sizeof(float));
    if (!p) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: loss scratch");
    free(ctx->loss_buf);
    ctx->loss_buf = p;
    ctx->loss_cap = 3 * count;
  }
  float *ga = ctx->loss_buf, *gb = ga + count, *e = gb + count;
  cpu_reorder r1, r2;
  memset(&r1, 0, sizeof r1);
  memset(&r2, 0, sizeof r2);
  msc_status st = run_loss(ctx, d, x, x2, value, grad, grad2, &r1, &r2, ga, gb, e);
  cpu_reorder_destroy(&r1);
  cpu_reorder_destroy(&r2);
  return st;
}
