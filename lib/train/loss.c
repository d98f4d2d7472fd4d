/*
 * loss.c — the core's loss terms on host arrays (loss.h; layer: train): the contract's
 * host driver (loss_rows.c) with the core's error reporting.
 */
#include "common/internal.h"
#include "train/loss.h"
#include "contract/loss_rows.h"

msc_status msci_loss_ntxent(const float *za, const float *zb, int64_t n, int64_t d, float tau,
                            double *loss, float *grad_a, float *grad_b) {
  return mbk_loss_rows_ntxent(msci_fail, NULL, za, zb, n, d, tau, loss, grad_a, grad_b);
}

msc_status msci_loss_infonce(const float *zp, const float *zq, int64_t n, int64_t d, float tau,
                             double *loss, float *grad_p, float *grad_q) {
  return mbk_loss_rows_infonce(msci_fail, NULL, zp, zq, n, d, tau, loss, grad_p, grad_q);
}

msc_status msci_loss_mulsupcon(const float *e, const uint8_t *y, int64_t k, int64_t d,
                               int64_t c, float tau, int32_t per_anchor_weight, double *loss,
                               float *grad) {
  return mbk_loss_rows_mulsupcon(msci_fail, NULL, e, y, k, d, c, tau, per_anchor_weight, loss,
                                 grad);
}

msc_status msci_loss_bce(const float *logits, const uint8_t *y, int64_t n, int64_t c,
                         const uint8_t *row_mask, double *loss, float *grad) {
  return mbk_loss_rows_bce(msci_fail, NULL, logits, y, n, c, row_mask, loss, grad);
}

msc_status msci_loss_softmax_ce(const float *logits, const uint8_t *y, int64_t n, int64_t c,
                                const uint8_t *row_mask, double *loss, float *grad) {
  return mbk_loss_rows_softmax_ce(msci_fail, NULL, logits, y, n, c, row_mask, loss, grad);
}

msc_status msci_loss_pixel_ce(const float *logits, const int32_t *target, int64_t n, int64_t c,
                              int64_t h, int64_t w, int32_t ignore_index,
                              const float *class_weight, double *loss, float *grad) {
  return mbk_loss_rows_pixel_ce(msci_fail, NULL, logits, target, n, c, h, w, ignore_index,
                                class_weight, loss, grad);
}

msc_status msci_loss_pixel_bce(const float *logits, const float *target, const uint8_t *mask,
                               int64_t n, int64_t k, int64_t h, int64_t w,
                               const float *pos_weight, double *loss, float *grad) {
  return mbk_loss_rows_pixel_bce(msci_fail, NULL, logits, target, mask, n, k, h, w, pos_weight,
                                 loss, grad);
}

msc_status msci_loss_dice(const float *logits, const int32_t *target, int64_t n, int64_t c,
                          int64_t h, int64_t w, int32_t ignore_index, double *loss,
                          float *grad) {
  return mbk_loss_rows_dice(msci_fail, NULL, logits, target, n, c, h, w, ignore_index, loss,
                            grad);
}
