/*
 * model_input.c — from a batch's raw arrays to a model's normalised input, shared by
 * inference (embed.c) and training (train.c).
 */
#include <math.h>
#include <stdlib.h>

#include "batch.h"
#include "internal.h"
#include "model.h"

msc_status msci_model_input(const msc_model *m, int32_t k, const msc_batch *b,
                            const msci_batch_modality **out) {
  const msci_modality_cfg *mc = &m->cfg.mod[k];
  const msci_batch_modality *bm = msci_batch_find(b, mc->name);
  if (!bm)
    return msci_fail(MSC_E_NOT_FOUND, "the batch has no modality '%s', which this call needs",
                     mc->name);
  if (bm->c != mc->bands || bm->h != mc->size || bm->w != mc->size)
    return msci_fail(MSC_E_SHAPE, "modality %s: got %lldx%lldx%lldx%lld, expected "
                     "%lldx%lldx%lldx%lld (N×bands×H×W)", mc->name, (long long)b->n,
                     (long long)bm->c, (long long)bm->h, (long long)bm->w, (long long)b->n,
                     (long long)mc->bands, (long long)mc->size, (long long)mc->size);
  size_t plane = (size_t)(bm->h * bm->w), count = (size_t)b->n * (size_t)bm->c * plane;
  for (size_t i = 0; i < count; ++i)
    if (!isfinite(bm->data[i])) {
      size_t p = i % plane;
      return msci_fail(MSC_E_NUMERICAL, "modality %s: sample %zu band %zu has a non-finite "
                       "value at pixel (%zu, %zu)", mc->name, i / (plane * (size_t)bm->c),
                       (i / plane) % (size_t)bm->c, p / (size_t)bm->w, p % (size_t)bm->w);
    }
  *out = bm;
  return MSC_OK;
}

void msci_model_normalise(const msc_model *m, int32_t k, const float *src, int64_t plane,
                          float *dst) {
  const msci_modality_cfg *mc = &m->cfg.mod[k];
  for (int64_t c = 0; c < mc->bands; ++c) {
    float mean = mc->mean[c], inv = 1.0f / mc->std[c];
    const float *s = src + c * plane;
    float *d = dst + c * plane;
    for (int64_t p = 0; p < plane; ++p) d[p] = (s[p] - mean) * inv;
  }
}

msc_status msci_exec_stage(msci_exec *e, size_t count) {
  if (count <= e->stage_cap) return MSC_OK;
  float *s = realloc(e->stage, count * sizeof(float));
  if (!s) return msci_fail(MSC_E_OUT_OF_MEMORY, "input staging buffer of %zu floats", count);
  e->stage = s;
  e->stage_cap = count;
  return MSC_OK;
}
