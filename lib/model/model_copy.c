/*
 * model_copy.c — msc_model_copy_weights: starting a model from another one's weights
 * (a PIMC-pretrained image encoder for EuroSAT, a pre-trained encoder under a new head).
 * Tensors are matched by name ("enc.s2.layer1.0.conv1.weight": docs/model.md, "Tensor
 * names"), so an encoder moves to any model that has a modality of the same name and
 * architecture, whatever its other modalities, bands size or classes.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/backend_call.h"
#include "common/internal.h"
#include "model/model.h"

static int64_t count_of(const msci_param *p) {
  int64_t n = 1;
  for (int32_t k = 0; k < p->ndim; ++k) n *= p->dims[k];
  return n;
}

static const msci_param *find(const msci_graph *g, const char *name) {
  for (int32_t i = 0; i < g->n_params; ++i)
    if (strcmp(g->params[i].name, name) == 0) return &g->params[i];
  return NULL;
}

MSC_API msc_status msc_model_copy_weights(msc_model *dst, const msc_model *src,
                                          const char *prefix, int64_t *copied) {
  if (!dst || !src || !copied)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_copy_weights: NULL argument");
  if (dst == src)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_model_copy_weights: dst is src");
  const size_t plen = prefix ? strlen(prefix) : 0;
  const msci_graph *gd = &dst->graph, *gs = &src->graph;
  /* Every match is checked before anything is written: a shape mismatch leaves dst as
   * it was. */
  int64_t n = 0, largest = 0;
  for (int32_t i = 0; i < gd->n_params; ++i) {
    const msci_param *p = &gd->params[i];
    if (plen && strncmp(p->name, prefix, plen) != 0) continue;
    const msci_param *q = find(gs, p->name);
    if (!q) continue;
    int same = q->ndim == p->ndim;
    for (int32_t k = 0; same && k < p->ndim; ++k) same = q->dims[k] == p->dims[k];
    if (!same)
      return msci_fail(MSC_E_SHAPE,
                       "msc_model_copy_weights: tensor '%s' has another shape in the source "
                       "model (another band count or architecture?)",
                       p->name);
    n++;
    if (count_of(p) > largest) largest = count_of(p);
  }
  if (n == 0)
    return msci_fail(MSC_E_NOT_FOUND,
                     "msc_model_copy_weights: no tensor%s%s%s of the model is in the source "
                     "model (are the modalities named alike?)",
                     plen ? " named '" : "", plen ? prefix : "", plen ? "...'" : "");
  float *buf = malloc((size_t)largest * sizeof *buf);
  if (!buf) return msci_fail(MSC_E_OUT_OF_MEMORY, "msc_model_copy_weights: out of memory");
  msc_status st = MSC_OK;
  for (int32_t i = 0; st == MSC_OK && i < gd->n_params; ++i) {
    const msci_param *p = &gd->params[i];
    if (plen && strncmp(p->name, prefix, plen) != 0) continue;
    const msci_param *q = find(gs, p->name);
    if (!q) continue;
    st = msci_be_tensor_download(src->be, q->t, buf, (size_t)count_of(q));
    if (st == MSC_OK) st = msci_be_tensor_upload(dst->be, p->t, p->ndim, p->dims, buf);
  }
  free(buf);
  if (st == MSC_OK) *copied = n;
  return st;
}
