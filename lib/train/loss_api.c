/*
 * loss_api.c — the public msc_loss_* functions: thin wrappers over lib/train/loss.c that
 * give the value as float. Everything is validated by the internal functions before
 * any output is written; the only check added here is that the value fits a float
 * (checked before any gradient is written).
 */
#include <float.h>
#include <math.h>

#include "common/internal.h"
#include "train/loss.h"
#include "mosaic/mosaic.h"

/* The double value as float into *loss; MSC_E_NUMERICAL if it does not fit. A value
 * within half a unit in the last place above FLT_MAX rounds to FLT_MAX, as a
 * round-to-nearest conversion would (BCE reaches max|x| + log 2). */
static msc_status loss_to_float(const char *term, double value, float *out) {
  double a = fabs(value);
  if (a <= (double)FLT_MAX)
    *out = (float)value;
  else if (a <= (double)FLT_MAX * (1.0 + 0x1p-25))
    *out = value > 0 ? FLT_MAX : -FLT_MAX;
  else
    return msci_fail(MSC_E_NUMERICAL, "%s: the loss %g overflows float", term, value);
  return MSC_OK;
}

/* A contrastive loss is at most 2/τ + log K, far below FLT_MAX unless τ is absurdly
 * small; then the value alone is computed first, so that a value that does not fit a
 * float fails before any gradient is written. */
#define MSC_LOSS_TINY_TAU 1e-30f

MSC_API msc_status msc_loss_ntxent(const float *za, const float *zb, int64_t n, int64_t d,
                                   float tau, float *loss, float *grad_a, float *grad_b) {
  static const char T[] = "NT-Xent";
  if (!loss) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: loss is NULL", T);
  double v = 0.0;
  float f = 0.0f;
  if (tau < MSC_LOSS_TINY_TAU && (grad_a || grad_b)) {
    MSCI_TRY(msci_loss_ntxent(za, zb, n, d, tau, &v, NULL, NULL));
    MSCI_TRY(loss_to_float(T, v, &f));
  }
  MSCI_TRY(msci_loss_ntxent(za, zb, n, d, tau, &v, grad_a, grad_b));
  MSCI_TRY(loss_to_float(T, v, &f));
  *loss = f;
  return MSC_OK;
}

MSC_API msc_status msc_loss_infonce(const float *zp, const float *zq, int64_t n, int64_t d,
                                    float tau, float *loss, float *grad_p, float *grad_q) {
  static const char T[] = "InfoNCE";
  if (!loss) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: loss is NULL", T);
  double v = 0.0;
  float f = 0.0f;
  if (tau < MSC_LOSS_TINY_TAU && (grad_p || grad_q)) {
    MSCI_TRY(msci_loss_infonce(zp, zq, n, d, tau, &v, NULL, NULL));
    MSCI_TRY(loss_to_float(T, v, &f));
  }
  MSCI_TRY(msci_loss_infonce(zp, zq, n, d, tau, &v, grad_p, grad_q));
  MSCI_TRY(loss_to_float(T, v, &f));
  *loss = f;
  return MSC_OK;
}

MSC_API msc_status msc_loss_mulsupcon(const float *e, const uint8_t *y, int64_t k, int64_t d,
                                      int64_t c, float tau, int32_t per_anchor_weight,
                                      float *loss, float *grad) {
  static const char T[] = "MulSupCon";
  if (!loss) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: loss is NULL", T);
  double v = 0.0;
  float f = 0.0f;
  if (tau < MSC_LOSS_TINY_TAU && grad) {
    MSCI_TRY(msci_loss_mulsupcon(e, y, k, d, c, tau, per_anchor_weight, &v, NULL));
    MSCI_TRY(loss_to_float(T, v, &f));
  }
  MSCI_TRY(msci_loss_mulsupcon(e, y, k, d, c, tau, per_anchor_weight, &v, grad));
  MSCI_TRY(loss_to_float(T, v, &f));
  *loss = f;
  return MSC_OK;
}

/* BCE: |value| <= max|x| + log 2 always converts (see loss_to_float). */
MSC_API msc_status msc_loss_bce(const float *logits, const uint8_t *y, int64_t n, int64_t c,
                                float *loss, float *grad) {
  static const char T[] = "BCE";
  if (!loss) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: loss is NULL", T);
  double v = 0.0;
  float f = 0.0f;
  MSCI_TRY(msci_loss_bce(logits, y, n, c, NULL, &v, grad));
  MSCI_TRY(loss_to_float(T, v, &f));
  *loss = f;
  return MSC_OK;
}

/* Softmax CE: the value is at most max x − min x + log C; loss_to_float checks it. */
MSC_API msc_status msc_loss_softmax_ce(const float *logits, const uint8_t *y, int64_t n,
                                       int64_t c, float *loss, float *grad) {
  static const char T[] = "softmax CE";
  if (!loss) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: loss is NULL", T);
  double v = 0.0;
  float f = 0.0f;
  if (grad) { /* the value must fit before any gradient is written */
    MSCI_TRY(msci_loss_softmax_ce(logits, y, n, c, NULL, &v, NULL));
    MSCI_TRY(loss_to_float(T, v, &f));
  }
  MSCI_TRY(msci_loss_softmax_ce(logits, y, n, c, NULL, &v, grad));
  MSCI_TRY(loss_to_float(T, v, &f));
  *loss = f;
  return MSC_OK;
}

/* Pixel CE: the value is at most max x − min x + log C per pixel, a weighted mean of those;
 * computed alone first so that a value beyond float fails before any gradient is written. */
MSC_API msc_status msc_loss_pixel_ce(const float *logits, const int32_t *target, int64_t n,
                                     int64_t c, int64_t h, int64_t w, int32_t ignore_index,
                                     const float *class_weight, float *loss, float *grad) {
  static const char T[] = "pixel CE";
  if (!loss) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: loss is NULL", T);
  double v = 0.0;
  float f = 0.0f;
  if (grad) {
    MSCI_TRY(
        msci_loss_pixel_ce(logits, target, n, c, h, w, ignore_index, class_weight, &v, NULL));
    MSCI_TRY(loss_to_float(T, v, &f));
  }
  MSCI_TRY(
      msci_loss_pixel_ce(logits, target, n, c, h, w, ignore_index, class_weight, &v, grad));
  MSCI_TRY(loss_to_float(T, v, &f));
  *loss = f;
  return MSC_OK;
}

/* Pixel BCE: a positive weight multiplies the value, which may then pass FLT_MAX; the
 * value alone first, as for pixel CE. */
MSC_API msc_status msc_loss_pixel_bce(const float *logits, const float *target,
                                      const uint8_t *mask, int64_t n, int64_t k, int64_t h,
                                      int64_t w, const float *pos_weight, float *loss,
                                      float *grad) {
  static const char T[] = "pixel BCE";
  if (!loss) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: loss is NULL", T);
  double v = 0.0;
  float f = 0.0f;
  if (grad) {
    MSCI_TRY(msci_loss_pixel_bce(logits, target, mask, n, k, h, w, pos_weight, &v, NULL));
    MSCI_TRY(loss_to_float(T, v, &f));
  }
  MSCI_TRY(msci_loss_pixel_bce(logits, target, mask, n, k, h, w, pos_weight, &v, grad));
  MSCI_TRY(loss_to_float(T, v, &f));
  *loss = f;
  return MSC_OK;
}

/* Dice: the value is in [0, 1]. */
MSC_API msc_status msc_loss_dice(const float *logits, const int32_t *target, int64_t n,
                                 int64_t c, int64_t h, int64_t w, int32_t ignore_index,
                                 float *loss, float *grad) {
  static const char T[] = "Dice";
  if (!loss) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: loss is NULL", T);
  double v = 0.0;
  MSCI_TRY(msci_loss_dice(logits, target, n, c, h, w, ignore_index, &v, grad));
  *loss = (float)v;
  return MSC_OK;
}
