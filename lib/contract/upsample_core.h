/*
 * upsample_core.h — the source taps of UPSAMPLE (backend.h) along one axis (layer:
 * backend contract). The CUDA backend's kernels (backends/cuda/cuda_upsample.cu) compile
 * it as device code, as they do loss_core.h (MSCI_HD, see there); the host tests
 * (tests/test_core_hd.c) check it against hand arithmetic. The CPU backend uses oneDNN's
 * resampling instead, which computes the same taps.
 */
#ifndef MOSAIC_LIB_UPSAMPLE_CORE_H
#define MOSAIC_LIB_UPSAMPLE_CORE_H

#include <stdint.h>

#ifndef MSCI_HD
#define MSCI_HD
#endif

/*
 * Output index i of an axis of n inputs upsampled by the integer factor s reads
 * inputs *i0 and *i1 with weights 1 − *l and *l.
 *  - nearest (bilinear = 0): *i0 = *i1 = ⌊i/s⌋, *l = 0.
 *  - bilinear: PyTorch's align_corners=False (half-pixel centres): the source coordinate
 *    x = (i + 0.5)/s − 0.5, clamped below at 0; *i0 = ⌊x⌋, *i1 = min(*i0 + 1, n − 1),
 *    *l = x − *i0. In float, as PyTorch and oneDNN compute it.
 */
static inline MSCI_HD void msci_upsample_taps(int64_t i, int64_t s, int64_t n, int32_t bilinear,
                                              int64_t *i0, int64_t *i1, float *l) {
  if (!bilinear) {
    *i0 = *i1 = i / s;
    *l = 0.0f;
    return;
  }
  float x = ((float)i + 0.5f) / (float)s - 0.5f;
  if (x < 0.0f) x = 0.0f;
  int64_t a = (int64_t)x; /* x >= 0: truncation is the floor */
  if (a > n - 1) a = n - 1;
  *i0 = a;
  *i1 = a + 1 < n ? a + 1 : n - 1;
  *l = x - (float)a;
}

#endif /* MOSAIC_LIB_UPSAMPLE_CORE_H */
