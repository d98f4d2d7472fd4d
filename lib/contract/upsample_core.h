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
 * Output index i of an axis of n inputs upsampled to `out` outputs (out >= n; PyTorch's
 * F.interpolate with size=, whose scale is n/out in float) reads inputs *i0 and *i1
 * with weights 1 − *l and *l.
 *  - nearest (bilinear = 0): *i0 = *i1 = ⌊i·n/out⌋ (at most n − 1), *l = 0. For an
 *    integer ratio out/n = s this is ⌊i/s⌋, computed exactly in integers.
 *  - bilinear: align_corners=False (half-pixel centres): the source coordinate
 *    x = (i + 0.5)·(n/out) − 0.5, clamped below at 0; *i0 = ⌊x⌋, *i1 = min(*i0 + 1,
 *    n − 1), *l = x − *i0. In float, as PyTorch computes it (oneDNN's CPU resampling
 *    orders the float operations its own way, which can differ in the last bit of x).
 */
static inline MSCI_HD void msci_upsample_taps(int64_t i, int64_t n, int64_t out,
                                              int32_t bilinear, int64_t *i0, int64_t *i1,
                                              float *l) {
  if (!bilinear) {
    int64_t a = out % n == 0 ? i / (out / n) : (int64_t)((float)i * ((float)n / (float)out));
    if (a > n - 1) a = n - 1;
    *i0 = *i1 = a;
    *l = 0.0f;
    return;
  }
  float x = ((float)i + 0.5f) * ((float)n / (float)out) - 0.5f;
  if (x < 0.0f) x = 0.0f;
  int64_t a = (int64_t)x; /* x >= 0: truncation is the floor */
  if (a > n - 1) a = n - 1;
  *i0 = a;
  *i1 = a + 1 < n ? a + 1 : n - 1;
  *l = x - (float)a;
}

/*
 * The outputs [*o0, *o1) of an axis (n inputs, `out` outputs) whose taps can include
 * input i: the backward gathers over them. Output o reads source coordinate
 * (o + 0.5)·n/out − 0.5 in (i − 1, i + 1) (nearest: ⌊o·n/out⌋ = i), so o lies in
 * ((i − 1)·out/n − 1, (i + 2)·out/n); one more on either side absorbs the float
 * rounding of the taps, and tests/test_core_hd.c checks that nothing falls outside.
 */
static inline MSCI_HD void msci_upsample_reach(int64_t i, int64_t n, int64_t out, int64_t *o0,
                                               int64_t *o1) {
  int64_t a = (i - 1) * out / n - 2, b = (i + 2) * out / n + 2;
  *o0 = a < 0 ? 0 : a;
  *o1 = b > out ? out : b;
}

#endif /* MOSAIC_LIB_UPSAMPLE_CORE_H */
