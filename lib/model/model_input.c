/*
 * model_input.c — from a batch's raw arrays to a model's normalised input, shared by
 * inference (embed.c) and training (train.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_call.h"
#include "data/batch.h"
#include "common/internal.h"
#include "model/model.h"

msc_status msci_model_input(const msc_model *m, int32_t k, const msc_batch *b,
                            const msci_batch_modality **out) {
  const msci_modality_cfg *mc = &m->cfg.mod[k];
  const msci_batch_modality *bm = msci_batch_find(b, mc->name);
  if (!bm)
    return msci_fail(MSC_E_NOT_FOUND, "the batch has no modality '%s', which this call needs",
                     mc->name);
  if (bm->c != mc->bands || bm->h != mc->size || bm->w != mc->size)
    return msci_fail(MSC_E_SHAPE,
                     "modality %s: got %lldx%lldx%lldx%lld, expected "
                     "%lldx%lldx%lldx%lld (N×bands×H×W)",
                     mc->name, (long long)b->n, (long long)bm->c, (long long)bm->h,
                     (long long)bm->w, (long long)b->n, (long long)mc->bands,
                     (long long)mc->size, (long long)mc->size);
  *out = bm;
  return MSC_OK;
}

int64_t msci_model_normalise(const msc_model *m, int32_t k, const msci_batch_modality *bm,
                             int64_t i, float *dst) {
  const msci_modality_cfg *mc = &m->cfg.mod[k];
  const int64_t plane = bm->h * bm->w;
  const float *src = bm->data + (size_t)i * (size_t)(bm->c * plane);
  for (int64_t c = 0; c < mc->bands; ++c) {
    float mean = mc->mean[c], inv = 1.0f / mc->std[c];
    const float *s = src + c * plane;
    float *d = dst + c * plane;
    /* A value is not finite when its exponent bits are all set: tested as it is read,
     * so the check costs no second pass over the batch. */
    uint32_t bad = 0;
    /* (simd: without it the portable build ran this loop one float at a time) */
#pragma omp simd reduction(| : bad)
    for (int64_t p = 0; p < plane; ++p) {
      uint32_t bits;
      memcpy(&bits, &s[p], sizeof bits);
      bad |= (bits & 0x7f800000u) == 0x7f800000u;
      d[p] = (s[p] - mean) * inv;
    }
    if (bad)
      for (int64_t p = 0; p < plane; ++p)
        if (!isfinite(s[p])) return c * plane + p;
  }
  return -1;
}

msc_status msci_model_nonfinite(const msc_model *m, int32_t k, const msci_batch_modality *bm,
                                int64_t i, int64_t at) {
  const size_t plane = (size_t)(bm->h * bm->w), p = (size_t)at % plane;
  return msci_fail(MSC_E_NUMERICAL,
                   "modality %s: sample %zu band %zu has a non-finite "
                   "value at pixel (%zu, %zu)",
                   m->cfg.mod[k].name, (size_t)i, (size_t)at / plane, p / (size_t)bm->w,
                   p % (size_t)bm->w);
}

msc_status msci_exec_stage(msci_exec *e, size_t count) {
  if (count <= e->stage_cap) return MSC_OK;
  float *s = realloc(e->stage, count * sizeof(float));
  if (!s) return msci_fail(MSC_E_OUT_OF_MEMORY, "input staging buffer of %zu floats", count);
  e->stage = s;
  e->stage_cap = count;
  return MSC_OK;
}

msc_status msci_exec_input_at(msc_model *m, msci_exec *e, int32_t k, const int64_t *dims,
                              float **dst) {
  msc_status st = msci_be_tensor_host_data(m->be, e->input[k], 4, dims, dst);
  if (st != MSC_E_UNSUPPORTED) return st;
  MSCI_TRY(msci_exec_stage(e, (size_t)(dims[0] * dims[1] * dims[2] * dims[3])));
  *dst = e->stage;
  return MSC_OK;
}

msc_status msci_exec_input_done(msc_model *m, msci_exec *e, int32_t k, const int64_t *dims,
                                const float *dst) {
  return dst == e->stage ? msci_be_tensor_upload(m->be, e->input[k], 4, dims, dst) : MSC_OK;
}

void *msci_exec_host(msci_exec *e, int32_t slot, size_t bytes) {
  if (bytes <= e->host_cap[slot] && e->host[slot]) return e->host[slot];
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void *p = aligned_alloc(64, rounded);
  if (!p) {
    msci_fail(MSC_E_OUT_OF_MEMORY, "host workspace of %zu bytes", bytes);
    return NULL;
  }
  free(e->host[slot]);
  e->host[slot] = p;
  e->host_cap[slot] = rounded;
  return p;
}
