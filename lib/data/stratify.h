/*
 * stratify.h — iterative stratification of a multi-label set (Sechidis, Tsoumakas and
 * Layer: data (lib/data/README.md says what it owns and may include).
 * Vlahavas, "On the stratification of multi-label data", ECML PKDD 2011), used to draw
 * the low-label subsets (data.fraction) so that rare classes keep their share.
 */
#ifndef MOSAIC_LIB_STRATIFY_H
#define MOSAIC_LIB_STRATIFY_H

#include <stdint.h>

#include "mosaic/mosaic.h"

/* Chooses a subset of round(fraction · n) of the n samples whose multi-hot labels are
 * y (n × c bytes, non-zero = present): the label with the fewest samples left is
 * handled first, each of its samples going to the subset or the rest by the counts
 * still wanted there (ties broken by an RNG seeded with seed), samples without labels
 * fill up the totals at the end, and a last pass moves the fewest samples needed so
 * the subset has exactly round(fraction · n) samples. selected (n bytes) receives 1
 * for the subset, 0 for the rest. Deterministic: the same inputs and seed give the
 * same subset on every platform.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL with n > 0, n < 0, c < 0, fraction not
 * in [0, 1]); MSC_E_OUT_OF_MEMORY. */
msc_status msci_stratified_subset(const uint8_t *y, int64_t n, int64_t c, double fraction,
                                  uint64_t seed, uint8_t *selected);

#endif
