/*
 * ref_ap.h — average precision of one class of a multi-label score matrix, written out
 * plainly as the reference of the learning tests (test_train.c, test_moddrop.c):
 * scikit-learn's definition, AP = Σ_n (R_n − R_{n−1}) · P_n over the distinct scores in
 * decreasing order (ties form one threshold). score and y are n × c, row-major; k is the
 * class. NAN when the class has no positive.
 */
#ifndef MOSAIC_TESTS_REF_AP_H
#define MOSAIC_TESTS_REF_AP_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static inline double ref_average_precision(const float *score, const uint8_t *y, int64_t n,
                                           int64_t c, int64_t k) {
  int64_t pos = 0;
  for (int64_t i = 0; i < n; ++i) pos += y[i * c + k];
  if (pos == 0) return NAN;
  double ap = 0, prev_recall = 0;
  uint8_t *used = calloc((size_t)n, 1);
  if (!used) return NAN;
  int64_t tp = 0, fp = 0;
  for (;;) {
    /* Next threshold: the largest unused score; take all samples with that score. */
    float best = -INFINITY;
    int found = 0;
    for (int64_t i = 0; i < n; ++i)
      if (!used[i] && (!found || score[i * c + k] > best)) best = score[i * c + k], found = 1;
    if (!found) break;
    for (int64_t i = 0; i < n; ++i)
      if (!used[i] && score[i * c + k] == best) {
        used[i] = 1;
        if (y[i * c + k])
          tp++;
        else
          fp++;
      }
    double recall = (double)tp / (double)pos, precision = (double)tp / (double)(tp + fp);
    ap += (recall - prev_recall) * precision;
    prev_recall = recall;
  }
  free(used);
  return ap;
}

#endif
