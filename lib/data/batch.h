/*
 * batch.h — the insides of msc_batch: arrays by modality name, labels, flags, mask.
 * Layer: data (lib/data/README.md says what it owns and may include).
 *
 * Memory: a batch owns its storage and keeps it. Every array has a capacity; writing an
 * array of the same or a smaller size reuses it, so a batch refilled with batches of one
 * shape (msc_dataset_fill_batch, the loader, msc_batch_set_modality with repeated
 * shapes) allocates only the first time. Emptying a batch (msci_batch_reset) keeps the
 * storage for the next fill; only msc_batch_free releases it. The dataset readers and
 * the loader's workers write pixels straight into the batch's own arrays
 * (msci_batch_reserve); msc_batch_set_modality copies the caller's array in once.
 */
#ifndef MOSAIC_LIB_BATCH_H
#define MOSAIC_LIB_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/internal.h"

typedef struct msci_batch_modality {
  char name[MSCI_NAME_LEN];
  int64_t c, h, w;
  float *data; /* n × c × h × w */
  size_t cap;  /* floats data can hold */
} msci_batch_modality;

struct msc_batch {
  int64_t n; /* 0 until the first array is set */
  int32_t n_mod;
  /* mod[0..n_mod) are the batch's arrays; mod[n_mod..) keep the storage (data, cap)
   * of arrays dropped by msci_batch_reset, reused by the next modality set there. */
  msci_batch_modality mod[MSCI_MAX_MODALITIES];
  int64_t classes;
  uint8_t *labels;  /* n × classes, NULL when unset (else labels_buf) */
  uint8_t *labeled; /* n flags, NULL = every sample with labels is labelled (else
                       labeled_buf) */
  uint8_t *labels_buf, *labeled_buf; /* their storage, kept while the batch lives */
  size_t labels_cap, labeled_cap;
  /* The per-pixel label map: n × mask_h × mask_w class indices (or the dataset's ignore
   * value), NULL when unset (else mask_buf, kept like the other arrays). */
  int32_t *mask, *mask_buf;
  int64_t mask_h, mask_w;
  size_t mask_cap; /* int32 values mask_buf can hold */
};

/* The array of a modality, or NULL when the batch has none by that name. */
const msci_batch_modality *msci_batch_find(const msc_batch *b, const char *name);

/* Empties the batch (n = 0, no modality, labels or flags) and keeps every allocation
 * for the next fill. */
void msci_batch_reset(msc_batch *b);

/* Storage for the n×c×h×w array of modality name, set in the batch with that shape
 * (its values are whatever the storage held: the caller writes all of them). Reuses
 * the modality's array, or a kept one, when its capacity fits; allocates otherwise.
 * Errors as msc_batch_set_modality (n must match the batch's unless it is empty). */
msc_status msci_batch_reserve(msc_batch *b, const char *name, int64_t n, int64_t c, int64_t h,
                              int64_t w, float **out);

/* Storage for n×classes labels, set in the batch (values to be written by the caller);
 * reused when it fits. */
msc_status msci_batch_reserve_labels(msc_batch *b, int64_t n, int64_t classes, uint8_t **out);
/* Storage for n labelled flags, set in the batch (values written by the caller). */
msc_status msci_batch_reserve_labeled(msc_batch *b, int64_t n, uint8_t **out);

/* Storage for the n×h×w mask, set in the batch with that shape (values to be written by
 * the caller); reused when it fits. Errors as msc_batch_set_mask. */
msc_status msci_batch_reserve_mask(msc_batch *b, int64_t n, int64_t h, int64_t w,
                                   int32_t **out);

#endif
