/*
 * batch.h — the insides of msc_batch: copies of the caller's arrays, by modality name.
 */
#ifndef MOSAIC_LIB_BATCH_H
#define MOSAIC_LIB_BATCH_H

#include <stdint.h>

#include "model.h"

typedef struct msci_batch_modality {
  char name[MSCI_NAME_LEN];
  int64_t c, h, w;
  float *data; /* n × c × h × w */
} msci_batch_modality;

struct msc_batch {
  int64_t n; /* 0 until the first array is set */
  int32_t n_mod;
  msci_batch_modality mod[MSCI_MAX_MODALITIES];
  int64_t classes;
  uint8_t *labels;  /* n × classes, NULL when unset */
  uint8_t *labeled; /* n flags, NULL = every sample with labels is labelled */
};

/* The array of a modality, or NULL when the batch has none by that name. */
const msci_batch_modality *msci_batch_find(const msc_batch *b, const char *name);

#endif
