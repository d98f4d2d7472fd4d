/*
 * batch.c — msc_batch: the samples of one call (patches per modality, labels, flags,
 * per-pixel mask).
 * Arrays are copied in, so callers may reuse their buffers at once. The batch keeps its
 * storage (batch.h): an array of a size it already holds is written in place.
 */
#include <stdlib.h>
#include <string.h>

#include "data/batch.h"
#include "common/internal.h"

MSC_API msc_status msc_batch_create(msc_batch **out) {
  if (!out) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_create: out is NULL");
  msc_batch *b = calloc(1, sizeof *b);
  if (!b) return msci_fail(MSC_E_OUT_OF_MEMORY, "batch");
  *out = b;
  return MSC_OK;
}

MSC_API void msc_batch_free(msc_batch *b) {
  if (!b) return;
  for (int32_t i = 0; i < MSCI_MAX_MODALITIES; ++i) free(b->mod[i].data);
  free(b->labels_buf);
  free(b->labeled_buf);
  free(b->mask_buf);
  free(b);
}

void msci_batch_reset(msc_batch *b) {
  /* Dropped arrays stay in their slots with their storage: mod[n_mod..) are spares. */
  for (int32_t i = 0; i < b->n_mod; ++i) {
    b->mod[i].name[0] = '\0';
    b->mod[i].c = b->mod[i].h = b->mod[i].w = 0;
  }
  b->n_mod = 0;
  b->n = 0;
  b->classes = 0;
  b->labels = NULL;
  b->labeled = NULL;
  b->mask = NULL;
  b->mask_h = b->mask_w = 0;
}

MSC_API msc_status msc_batch_remove_modality(msc_batch *b, const char *name) {
  if (!b || !name)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_remove_modality: NULL argument");
  int32_t j = 0;
  while (j < b->n_mod && strcmp(b->mod[j].name, name) != 0) ++j;
  if (j == b->n_mod) return msci_fail(MSC_E_NOT_FOUND, "the batch has no modality '%s'", name);
  /* The others keep their order; the removed array becomes the first spare. */
  msci_batch_modality gone = b->mod[j];
  memmove(&b->mod[j], &b->mod[j + 1], (size_t)(b->n_mod - 1 - j) * sizeof gone);
  gone.name[0] = '\0';
  gone.c = gone.h = gone.w = 0;
  b->mod[--b->n_mod] = gone;
  return MSC_OK;
}

MSC_API int64_t msc_batch_size(const msc_batch *b) {
  return b ? b->n : 0;
}

const msci_batch_modality *msci_batch_find(const msc_batch *b, const char *name) {
  for (int32_t i = 0; i < b->n_mod; ++i)
    if (strcmp(b->mod[i].name, name) == 0) return &b->mod[i];
  return NULL;
}

MSC_API int32_t msc_batch_modality_count(const msc_batch *b) {
  return b ? b->n_mod : 0;
}

MSC_API const char *msc_batch_modality_name(const msc_batch *b, int32_t i) {
  return b && i >= 0 && i < b->n_mod ? b->mod[i].name : NULL;
}

MSC_API msc_status msc_batch_modality(const msc_batch *b, const char *name, float *out,
                                      size_t out_len, int64_t *c, int64_t *h, int64_t *w) {
  if (!b || !name)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_modality: NULL argument");
  const msci_batch_modality *m = msci_batch_find(b, name);
  if (!m)
    return msci_fail(MSC_E_NOT_FOUND, "msc_batch_modality: the batch has no modality '%s'",
                     name);
  if (c) *c = m->c;
  if (h) *h = m->h;
  if (w) *w = m->w;
  if (!out) return MSC_OK;
  /* (the product fits: msc_batch_set_modality checked it when the array came in) */
  const size_t need = (size_t)b->n * (size_t)m->c * (size_t)m->h * (size_t)m->w;
  if (out_len < need)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL, "msc_batch_modality: %zu values needed, %zu given",
                     need, out_len);
  memcpy(out, m->data, need * sizeof *out);
  return MSC_OK;
}

static msc_status check_n(const msc_batch *b, int64_t n, const char *what) {
  if (n <= 0)
    return msci_fail(MSC_E_SHAPE, "%s: n = %lld must be positive", what, (long long)n);
  if (b->n != 0 && b->n != n)
    return msci_fail(MSC_E_SHAPE, "%s: n = %lld but the batch already holds %lld samples", what,
                     (long long)n, (long long)b->n);
  return MSC_OK;
}

/* n·a·b·... as size_t, failing on overflow (shapes come from callers). */
static int count_of(size_t *out, int64_t a, int64_t b, int64_t c, int64_t d) {
  size_t r = 1;
  int64_t v[4] = {a, b, c, d};
  for (int i = 0; i < 4; ++i)
    if (v[i] <= 0 || __builtin_mul_overflow(r, (size_t)v[i], &r)) return 0;
  if (__builtin_mul_overflow(r, sizeof(float), &(size_t){0})) return 0;
  *out = r;
  return 1;
}

/* The slot for modality name (its own, or the next free one) with at least count
 * floats of storage. Nothing else in the batch changes. */
static msc_status slot_for(msc_batch *b, const char *name, size_t count,
                           msci_batch_modality **out) {
  msci_batch_modality *m = (msci_batch_modality *)msci_batch_find(b, name);
  if (!m && b->n_mod == MSCI_MAX_MODALITIES)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "a batch holds at most %d modalities",
                     MSCI_MAX_MODALITIES);
  if (!m) m = &b->mod[b->n_mod];
  if (m->cap < count) {
    /* The old contents are not kept: a fresh array, not a realloc that copies. */
    float *p = malloc(count * sizeof(float));
    if (!p) return msci_fail(MSC_E_OUT_OF_MEMORY, "modality %s: %zu floats", name, count);
    free(m->data);
    m->data = p;
    m->cap = count;
  }
  *out = m;
  return MSC_OK;
}

msc_status msci_batch_reserve(msc_batch *b, const char *name, int64_t n, int64_t c, int64_t h,
                              int64_t w, float **out) {
  if (!b || !name || !out)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_set_modality: NULL argument");
  size_t len = strlen(name);
  if (len == 0 || len >= MSCI_NAME_LEN)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_set_modality: bad modality name '%s'",
                     name);
  MSCI_TRY(check_n(b, n, name));
  size_t count;
  if (!count_of(&count, n, c, h, w))
    return msci_fail(MSC_E_SHAPE, "modality %s: shape %lldx%lldx%lldx%lld is not valid", name,
                     (long long)n, (long long)c, (long long)h, (long long)w);
  msci_batch_modality *m = NULL;
  MSCI_TRY(slot_for(b, name, count, &m));
  if (m == &b->mod[b->n_mod]) {
    memcpy(m->name, name, len + 1);
    b->n_mod++;
  }
  m->c = c, m->h = h, m->w = w;
  b->n = n;
  *out = m->data;
  return MSC_OK;
}

MSC_API msc_status msc_batch_set_modality(msc_batch *b, const char *name, const float *nchw,
                                          int64_t n, int64_t c, int64_t h, int64_t w) {
  if (!b || !name || !nchw)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_set_modality: NULL argument");
  float *dst = NULL;
  MSCI_TRY(msci_batch_reserve(b, name, n, c, h, w, &dst));
  memcpy(dst, nchw, (size_t)n * (size_t)c * (size_t)h * (size_t)w * sizeof(float));
  return MSC_OK;
}

/* Grows *buf to at least count bytes (contents not kept). */
static int bytes_fit(uint8_t **buf, size_t *cap, size_t count) {
  if (*cap >= count) return 1;
  uint8_t *p = malloc(count);
  if (!p) return 0;
  free(*buf);
  *buf = p;
  *cap = count;
  return 1;
}

msc_status msci_batch_reserve_labels(msc_batch *b, int64_t n, int64_t c, uint8_t **out) {
  MSCI_TRY(check_n(b, n, "labels"));
  size_t count;
  if (!count_of(&count, n, c, 1, 1))
    return msci_fail(MSC_E_SHAPE, "labels: shape %lldx%lld is not valid", (long long)n,
                     (long long)c);
  if (!bytes_fit(&b->labels_buf, &b->labels_cap, count))
    return msci_fail(MSC_E_OUT_OF_MEMORY, "labels");
  b->labels = b->labels_buf;
  b->classes = c;
  b->n = n;
  *out = b->labels;
  return MSC_OK;
}

MSC_API msc_status msc_batch_set_labels(msc_batch *b, const uint8_t *multi_hot, int64_t n,
                                        int64_t c) {
  if (!b || !multi_hot)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_set_labels: NULL argument");
  MSCI_TRY(check_n(b, n, "labels"));
  size_t count;
  if (!count_of(&count, n, c, 1, 1))
    return msci_fail(MSC_E_SHAPE, "labels: shape %lldx%lld is not valid", (long long)n,
                     (long long)c);
  for (size_t i = 0; i < count; ++i)
    if (multi_hot[i] > 1)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "labels: value %u at sample %lld class %lld "
                       "(multi-hot labels are 0 or 1)",
                       multi_hot[i], (long long)(i / (size_t)c), (long long)(i % (size_t)c));
  uint8_t *dst = NULL;
  MSCI_TRY(msci_batch_reserve_labels(b, n, c, &dst));
  memcpy(dst, multi_hot, count);
  return MSC_OK;
}

msc_status msci_batch_reserve_labeled(msc_batch *b, int64_t n, uint8_t **out) {
  MSCI_TRY(check_n(b, n, "labelled flags"));
  if (!bytes_fit(&b->labeled_buf, &b->labeled_cap, (size_t)n))
    return msci_fail(MSC_E_OUT_OF_MEMORY, "labelled flags");
  b->labeled = b->labeled_buf;
  b->n = n;
  *out = b->labeled;
  return MSC_OK;
}

MSC_API msc_status msc_batch_labeled(const msc_batch *b, uint8_t *out, size_t out_len) {
  if (!b || !out) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_labeled: NULL argument");
  if (out_len < (size_t)b->n)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL, "msc_batch_labeled: %lld bytes needed, %zu given",
                     (long long)b->n, out_len);
  for (int64_t i = 0; i < b->n; ++i) out[i] = b->labels && (!b->labeled || b->labeled[i]);
  return MSC_OK;
}

MSC_API msc_status msc_batch_set_labeled(msc_batch *b, const uint8_t *flags, int64_t n) {
  if (!b || !flags)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_set_labeled: NULL argument");
  MSCI_TRY(check_n(b, n, "labelled flags"));
  if (!bytes_fit(&b->labeled_buf, &b->labeled_cap, (size_t)n))
    return msci_fail(MSC_E_OUT_OF_MEMORY, "labelled flags");
  for (int64_t i = 0; i < n; ++i) b->labeled_buf[i] = flags[i] != 0;
  b->labeled = b->labeled_buf;
  b->n = n;
  return MSC_OK;
}

MSC_API msc_status msc_batch_labels(const msc_batch *b, uint8_t *out, size_t out_len,
                                    int64_t *classes) {
  if (!b) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_labels: batch is NULL");
  if (!b->labels)
    return msci_fail(MSC_E_NOT_FOUND, "msc_batch_labels: the batch has no labels");
  if (classes) *classes = b->classes;
  if (!out) return MSC_OK;
  size_t need = (size_t)b->n * (size_t)b->classes;
  if (out_len < need)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL, "msc_batch_labels: %zu bytes needed, %zu given",
                     need, out_len);
  memcpy(out, b->labels, need);
  return MSC_OK;
}

/* ---- per-pixel mask ------------------------------------------------------------------ */

msc_status msci_batch_reserve_mask(msc_batch *b, int64_t n, int64_t h, int64_t w,
                                   int32_t **out) {
  MSCI_TRY(check_n(b, n, "mask"));
  size_t count; /* count_of checks count × sizeof(float), the size of an int32 too */
  if (!count_of(&count, n, 1, h, w))
    return msci_fail(MSC_E_SHAPE, "mask: shape %lldx%lldx%lld is not valid", (long long)n,
                     (long long)h, (long long)w);
  if (b->mask_cap < count) {
    int32_t *p = malloc(count * sizeof(int32_t));
    if (!p) return msci_fail(MSC_E_OUT_OF_MEMORY, "mask: %zu values", count);
    free(b->mask_buf);
    b->mask_buf = p;
    b->mask_cap = count;
  }
  b->mask = b->mask_buf;
  b->mask_h = h;
  b->mask_w = w;
  b->n = n;
  *out = b->mask;
  return MSC_OK;
}

MSC_API msc_status msc_batch_set_mask(msc_batch *b, const int32_t *mask, int64_t n, int64_t h,
                                      int64_t w) {
  if (!b || !mask)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_set_mask: NULL argument");
  int32_t *dst = NULL;
  MSCI_TRY(msci_batch_reserve_mask(b, n, h, w, &dst));
  memcpy(dst, mask, (size_t)n * (size_t)h * (size_t)w * sizeof(int32_t));
  return MSC_OK;
}

MSC_API msc_status msc_batch_mask(const msc_batch *b, int32_t *out, size_t out_len, int64_t *h,
                                  int64_t *w) {
  if (!b) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_batch_mask: batch is NULL");
  if (!b->mask) return msci_fail(MSC_E_NOT_FOUND, "msc_batch_mask: the batch has no mask");
  size_t need = (size_t)b->n * (size_t)b->mask_h * (size_t)b->mask_w;
  /* As msc_batch_labels: the shape is given even when out is too small. */
  if (h) *h = b->mask_h;
  if (w) *w = b->mask_w;
  if (!out) return MSC_OK;
  if (out_len < need)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL, "msc_batch_mask: %zu values needed, %zu given",
                     need, out_len);
  memcpy(out, b->mask, need * sizeof(int32_t));
  return MSC_OK;
}
