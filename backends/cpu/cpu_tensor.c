/*
 * cpu_tensor.c — tensor storage, layout conversions (cached reorders) and buffers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

void *cpu_aligned_alloc(size_t bytes) {
  /* 64-byte alignment suits AVX-512 kernels; aligned_alloc wants a multiple of it. */
  size_t rounded = (bytes + 63) & ~(size_t)63;
  return aligned_alloc(64, rounded ? rounded : 64);
}

msc_status cpu_tensor_set(mbk_tensor *t, int32_t ndim, const int64_t *dims,
                          const dnnl_memory_desc_t *md) {
  size_t bytes = dnnl_memory_desc_get_size(md);
  int same_layout = t->mem && cpu_md_equal(&t->md, md);
  if (bytes > t->cap) {
    void *n = cpu_aligned_alloc(bytes);
    if (!n) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: tensor of %zu bytes", bytes);
    free(t->data);
    t->data = n;
    t->cap = bytes;
    same_layout = 0;
  }
  if (!same_layout) {
    if (t->mem) dnnl_memory_destroy(t->mem);
    t->mem = NULL;
    CPU_TRY(dnnl_memory_create(&t->mem, md, t->ctx->engine, t->data), "tensor memory");
    t->md = *md;
  }
  t->ndim = ndim;
  for (int32_t i = 0; i < ndim; ++i) t->dims[i] = dims[i];
  t->version++;
  return MSC_OK;
}

static void format_dims(char *buf, size_t n, int32_t ndim, const int64_t *dims) {
  size_t used = 0;
  buf[0] = '\0';
  for (int32_t i = 0; i < ndim && used < n; ++i) {
    int w = snprintf(buf + used, n - used, i ? "x%lld" : "%lld", (long long)dims[i]);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (ndim == 0) snprintf(buf, n, "empty");
}

msc_status cpu_tensor_expect(const mbk_tensor *t, int32_t ndim, const int64_t *dims,
                             const char *op, const char *arg) {
  if (!t) return CPU_FAIL(MSC_E_INVALID_ARGUMENT, "cpu: %s: %s is NULL", op, arg);
  int ok = t->ndim == ndim;
  for (int32_t i = 0; ok && i < ndim; ++i) ok = t->dims[i] == dims[i];
  if (ok) return MSC_OK;
  char want[96], got[96];
  format_dims(want, sizeof want, ndim, dims);
  format_dims(got, sizeof got, t->ndim, t->dims);
  return CPU_FAIL(MSC_E_SHAPE, "cpu: %s: %s has shape %s, expected %s", op, arg, got, want);
}

msc_status cpu_reorder_exec(mbk_ctx *ctx, cpu_reorder *r, dnnl_memory_t src,
                            dnnl_memory_t dst) {
  const dnnl_memory_desc_t *smd, *dmd;
  CPU_TRY(dnnl_memory_get_memory_desc(src, &smd), "reorder source");
  CPU_TRY(dnnl_memory_get_memory_desc(dst, &dmd), "reorder destination");
  if (!r->prim.prim || !cpu_md_equal(&r->src_md, smd) || !cpu_md_equal(&r->dst_md, dmd)) {
    dnnl_primitive_desc_t pd;
    cpu_ctx_threads(ctx);
    CPU_TRY(
        dnnl_reorder_primitive_desc_create(&pd, smd, ctx->engine, dmd, ctx->engine, ctx->attr),
        "reorder");
    CPU_CHECK(cpu_prim_init(ctx, &r->prim, pd));
    r->src_md = *smd;
    r->dst_md = *dmd;
  }
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  return cpu_prim_exec(ctx, &r->prim, 2, args);
}

msc_status cpu_buf_ensure(mbk_ctx *ctx, cpu_buf *b, const dnnl_memory_desc_t *md) {
  size_t bytes = dnnl_memory_desc_get_size(md);
  if (b->mem && cpu_md_equal(&b->md, md) && bytes <= b->cap) return MSC_OK;
  if (bytes > b->cap) {
    void *n = cpu_aligned_alloc(bytes);
    if (!n) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: buffer of %zu bytes", bytes);
    free(b->data);
    b->data = n;
    b->cap = bytes;
  }
  if (b->mem) dnnl_memory_destroy(b->mem);
  b->mem = NULL;
  CPU_TRY(dnnl_memory_create(&b->mem, md, ctx->engine, b->data), "buffer memory");
  b->md = *md;
  return MSC_OK;
}

void cpu_buf_destroy(cpu_buf *b) {
  if (b->mem) dnnl_memory_destroy(b->mem);
  free(b->data);
  memset(b, 0, sizeof *b);
}

msc_status cpu_view_as(mbk_ctx *ctx, const mbk_tensor *t, const dnnl_memory_desc_t *want,
                       cpu_reorder *r, dnnl_memory_t *out) {
  if (cpu_md_equal(&t->md, want)) {
    *out = t->mem;
    return MSC_OK;
  }
  if (r->buf_mem && r->src_id == t->id && r->src_version == t->version &&
      cpu_md_equal(&r->dst_md, want)) {
    *out = r->buf_mem; /* unchanged since the last conversion (e.g. frozen weights) */
    return MSC_OK;
  }
  size_t bytes = dnnl_memory_desc_get_size(want);
  if (bytes > r->cap) {
    void *n = cpu_aligned_alloc(bytes);
    if (!n) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: reorder buffer of %zu bytes", bytes);
    free(r->buf);
    r->buf = n;
    r->cap = bytes;
    if (r->buf_mem) dnnl_memory_destroy(r->buf_mem);
    r->buf_mem = NULL;
  }
  const dnnl_memory_desc_t *cur = NULL;
  if (r->buf_mem) dnnl_memory_get_memory_desc(r->buf_mem, &cur);
  if (!r->buf_mem || !cpu_md_equal(cur, want)) {
    if (r->buf_mem) dnnl_memory_destroy(r->buf_mem);
    r->buf_mem = NULL;
    CPU_TRY(dnnl_memory_create(&r->buf_mem, want, ctx->engine, r->buf), "reorder buffer");
  }
  r->src_id = 0; /* invalid until the conversion succeeds */
  CPU_CHECK(cpu_reorder_exec(ctx, r, t->mem, r->buf_mem));
  r->src_id = t->id;
  r->src_version = t->version;
  *out = r->buf_mem;
  return MSC_OK;
}

/* Makes the shared buffer of role hold bytes (forgetting its contents when it moves). */
static msc_status shared_reserve(mbk_ctx *ctx, cpu_shared_role role, size_t bytes) {
  cpu_shared *s = &ctx->shared[role];
  if (bytes <= s->cap) return MSC_OK;
  void *n = cpu_aligned_alloc(bytes);
  if (!n) return CPU_FAIL(MSC_E_OUT_OF_MEMORY, "cpu: shared buffer of %zu bytes", bytes);
  free(s->data);
  s->data = n;
  s->cap = bytes;
  s->src_id = 0;
  return MSC_OK;
}

/* Points *mem (a memory of layout md, made when absent or of another layout) at data.
 * The handle is set only when it moves: setting it zero-fills a padded layout's tail. */
static msc_status memory_at(mbk_ctx *ctx, dnnl_memory_t *mem, const dnnl_memory_desc_t *md,
                            void *data) {
  const dnnl_memory_desc_t *cur = NULL;
  if (*mem) dnnl_memory_get_memory_desc(*mem, &cur);
  if (*mem && !cpu_md_equal(cur, md)) {
    dnnl_memory_destroy(*mem);
    *mem = NULL;
  }
  if (!*mem) {
    CPU_TRY(dnnl_memory_create(mem, md, ctx->engine, data), "shared buffer memory");
    return MSC_OK;
  }
  void *h = NULL;
  CPU_TRY(dnnl_memory_get_data_handle(*mem, &h), "shared buffer memory");
  if (h != data) CPU_TRY(dnnl_memory_set_data_handle(*mem, data), "shared buffer memory");
  return MSC_OK;
}

msc_status cpu_view_shared(mbk_ctx *ctx, const mbk_tensor *t, const dnnl_memory_desc_t *want,
                           cpu_shared_role role, cpu_reorder *r, dnnl_memory_t *out) {
  if (cpu_md_equal(&t->md, want)) {
    *out = t->mem;
    return MSC_OK;
  }
  CPU_CHECK(shared_reserve(ctx, role, dnnl_memory_desc_get_size(want)));
  cpu_shared *s = &ctx->shared[role];
  CPU_CHECK(memory_at(ctx, &r->buf_mem, want, s->data));
  *out = r->buf_mem;
  if (s->src_id == t->id && s->src_version == t->version && cpu_md_equal(&s->md, want))
    return MSC_OK; /* the previous conversion of this role was the same one */
  s->src_id = 0;   /* invalid until the conversion succeeds */
  CPU_CHECK(cpu_reorder_exec(ctx, r, t->mem, r->buf_mem));
  s->src_id = t->id;
  s->src_version = t->version;
  s->md = *want;
  return MSC_OK;
}

msc_status cpu_buf_shared(mbk_ctx *ctx, cpu_buf *b, const dnnl_memory_desc_t *md,
                          cpu_shared_role role) {
  void *data = NULL; /* (whoever writes b overwrites the conversion held there) */
  CPU_CHECK(cpu_shared_take(ctx, role, dnnl_memory_desc_get_size(md), &data));
  CPU_CHECK(memory_at(ctx, &b->mem, md, data));
  b->md = *md;
  return MSC_OK;
}

msc_status cpu_shared_take(mbk_ctx *ctx, cpu_shared_role role, size_t bytes, void **data) {
  CPU_CHECK(shared_reserve(ctx, role, bytes));
  ctx->shared[role].src_id = 0; /* the conversion held there is forgotten */
  *data = ctx->shared[role].data;
  return MSC_OK;
}

void cpu_shared_free(mbk_ctx *ctx) {
  for (int i = 0; i < CPU_SHARED_ROLES; ++i) free(ctx->shared[i].data);
  memset(ctx->shared, 0, sizeof ctx->shared);
}

msc_status cpu_write_as(mbk_ctx *ctx, dnnl_memory_t src, mbk_tensor *t, int32_t ndim,
                        const int64_t *dims, const dnnl_memory_desc_t *md, cpu_reorder *r) {
  CPU_CHECK(cpu_tensor_set(t, ndim, dims, md));
  const dnnl_memory_desc_t *smd;
  CPU_TRY(dnnl_memory_get_memory_desc(src, &smd), "write source");
  if (cpu_md_equal(smd, md)) {
    void *h = NULL;
    CPU_TRY(dnnl_memory_get_data_handle(src, &h), "write source");
    if (h != t->data) memcpy(t->data, h, dnnl_memory_desc_get_size(md));
    return MSC_OK;
  }
  return cpu_reorder_exec(ctx, r, src, t->mem);
}

void cpu_reorder_destroy(cpu_reorder *r) {
  cpu_prim_destroy(&r->prim);
  if (r->buf_mem) dnnl_memory_destroy(r->buf_mem);
  free(r->buf);
  memset(r, 0, sizeof *r);
}
