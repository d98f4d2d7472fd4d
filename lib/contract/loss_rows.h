/*
 * loss_rows.h — the MoSAiC loss terms (NT-Xent, InfoNCE, MulSupCon, BCE, softmax CE, and
 * the per-pixel CE, BCE and Dice) on plain host float arrays (docs/losses.md), value
 * and exact gradient (layer: backend contract). The one host driver of the per-row core
 * of loss_core.h: the core's msci_loss_* (loss.h) and the CPU backend's loss entry both
 * call it, so the two give the same bits. Errors are reported through fail (msci_fail
 * in the core, mbk_host.fail in a backend), with the term's name first ("NT-Xent: ...").
 *
 * Common rules:
 *  - Embeddings are the UNNORMALISED projections; each term normalises its rows
 *    (ẑ = z / max(‖z‖, 1e-12)) and returns the gradient with respect to z itself,
 *    through the normalisation Jacobian.
 *  - *loss is written in double; gradients (each may be NULL) are overwritten, never
 *    accumulated into, and must not overlap the inputs or each other.
 *  - Everything is validated before anything is written: on error the outputs are
 *    untouched and msc_last_error() names the argument (or the array and index of a
 *    non-finite value). Statuses: MSC_E_INVALID_ARGUMENT (a NULL required pointer, a
 *    size <= 0 or too large, τ not finite or <= 0, a label other than 0/1),
 *    MSC_E_NUMERICAL (a NaN/Inf input, or a gradient too large for float),
 *    MSC_E_OUT_OF_MEMORY (the scratch).
 *  - Scratch: with ws NULL one allocation per call; with a workspace (mbk_loss_ws) its
 *    buffer, grown when too small and kept, so a steady caller allocates nothing. A
 *    workspace is used by one thread at a time. Rows are processed in parallel with OpenMP and
 *    reduced in a fixed order, so results are bit-identical for any thread count.
 *  - Thread-safe and reentrant.
 */
#ifndef MOSAIC_LIB_LOSS_ROWS_H
#define MOSAIC_LIB_LOSS_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A reusable scratch buffer for the terms (zero-initialise; mbk_loss_ws_free). */
typedef struct mbk_loss_ws {
  double *buf;
  size_t cap; /* doubles */
} mbk_loss_ws;
void mbk_loss_ws_free(mbk_loss_ws *ws); /* accepts NULL; leaves an empty workspace */

/* NT-Xent over the 2N rows u = (za rows, then zb rows), each N×D; pos(i) = i ± N:
 * L = (1/2N) Σ_i [ −s(u_i,u_pos(i)) + log Σ_{k≠i} exp s(u_i,u_k) ]. */
msc_status mbk_loss_rows_ntxent(mbk_fail_fn fail, mbk_loss_ws *ws, const float *za,
                                const float *zb, int64_t n, int64_t d, float tau, double *loss,
                                float *grad_a, float *grad_b);

/* Symmetric InfoNCE between zp and zq (N×D each): S_ij = s(p_i, q_j),
 * L = ½ [CE(S) + CE(Sᵀ)], CE(S) = (1/N) Σ_i [ −S_ii + log Σ_j exp S_ij ]. */
msc_status mbk_loss_rows_infonce(mbk_fail_fn fail, mbk_loss_ws *ws, const float *zp,
                                 const float *zq, int64_t n, int64_t d, float tau, double *loss,
                                 float *grad_p, float *grad_q);

/* MulSupCon over K embeddings e (K×D) with multi-hot labels y (K×C bytes, 0/1): one row
 * per (anchor i, class c) with y_ic = 1 and P_r = {j ≠ i : y_jc = 1} non-empty,
 * loss_r = −(1/|P_r|) Σ_{p∈P_r} [ s(e_i,e_p) − log Σ_{j≠i} exp s(e_i,e_j) ],
 * L = (1/R) Σ_r loss_r, or with per_anchor_weight != 0 L = Σ_r w_r loss_r with
 * w_r = 1/(|y_i|·K_a). L = 0 and a zero gradient when R = 0. Samples without any label
 * are keys only. */
msc_status mbk_loss_rows_mulsupcon(mbk_fail_fn fail, mbk_loss_ws *ws, const float *e,
                                   const uint8_t *y, int64_t k, int64_t d, int64_t c, float tau,
                                   int32_t per_anchor_weight, double *loss, float *grad);

/* BCE with logits over N×C logits and 0/1 targets: mean over kept rows × classes of
 * max(x,0) − x·y + log(1 + e^{−|x|}); grad = (σ(x) − y)/(kept·C) on kept rows, 0 on the
 * others. row_mask (N bytes) NULL keeps every row; a 0 entry ignores the row
 * (unlabelled: its labels are not read). No kept row: loss 0 and a zero gradient.
 * Logits are checked for finiteness in every row. */
msc_status mbk_loss_rows_bce(mbk_fail_fn fail, mbk_loss_ws *ws, const float *logits,
                             const uint8_t *y, int64_t n, int64_t c, const uint8_t *row_mask,
                             double *loss, float *grad);

/* Single-label softmax cross-entropy over N×C logits with one-hot targets y (every kept
 * row exactly one 1): mean over kept rows of −x_{i,t_i} + log Σ_j exp x_ij;
 * grad = (softmax(x_i) − onehot(t_i))/kept on kept rows, 0 on the others. row_mask as
 * for BCE. A kept row without exactly one positive label is MSC_E_INVALID_ARGUMENT
 * naming the row. No kept row: loss 0 and a zero gradient. */
msc_status mbk_loss_rows_softmax_ce(mbk_fail_fn fail, mbk_loss_ws *ws, const float *logits,
                                    const uint8_t *y, int64_t n, int64_t c,
                                    const uint8_t *row_mask, double *loss, float *grad);

/*
 * Per-pixel terms (docs/losses.md, "Per-pixel losses"): logits are N×C×H×W (NCHW,
 * contiguous), grad has the same shape and is 0 at every pixel (element) not counted.
 * Statistics are summed per image row and the rows reduced serially, so results are
 * bit-identical for any thread count. Nothing counted: loss 0 and a zero gradient.
 */

/* Per-pixel softmax cross-entropy against class indices target (N×H×W int32): a pixel
 * whose target is ignore_index is not counted; any other target outside [0, C) is
 * MSC_E_INVALID_ARGUMENT naming the pixel (image, y, x). With class weights w (C, finite,
 * >= 0; NULL: all 1), l_p = −x_{t_p} + log Σ_j exp x_j at pixel p and
 * L = Σ_p w_{t_p} l_p / Σ_p w_{t_p} over counted pixels (PyTorch's cross_entropy with
 * weight, ignore_index, reduction "mean"); grad = w_t (softmax − onehot(t)) / Σ w_t.
 * Σ w_t = 0 (no counted pixel, or only classes of weight 0): loss 0, zero gradient. */
msc_status mbk_loss_rows_pixel_ce(mbk_fail_fn fail, mbk_loss_ws *ws, const float *logits,
                                  const int32_t *target, int64_t n, int64_t c, int64_t h,
                                  int64_t w, int32_t ignore_index, const float *class_weight,
                                  double *loss, float *grad);

/* Per-element binary cross-entropy with logits (N×K×H×W) against soft targets of the same
 * shape in [0, 1], mask (same shape, NULL: all counted; 0 = not counted, its target is not
 * read), pos_weight (K, finite, >= 0; NULL: all 1; PyTorch's BCEWithLogitsLoss):
 * l = −pw_k·y·log σ(x) − (1 − y)·log(1 − σ(x)), L = mean over counted elements,
 * grad = ((1 + (pw_k − 1)·y)·σ(x) − pw_k·y) / counted. */
msc_status mbk_loss_rows_pixel_bce(mbk_fail_fn fail, mbk_loss_ws *ws, const float *logits,
                                   const float *target, const uint8_t *mask, int64_t n,
                                   int64_t k, int64_t h, int64_t w, const float *pos_weight,
                                   double *loss, float *grad);

/* Soft Dice on the per-pixel softmax p (over C) against class indices (ignore_index and
 * errors as pixel CE). Over the counted pixels of the whole batch, per class j:
 * I_j = Σ p_j·[t = j], P_j = Σ p_j, G_j = Σ [t = j]; L = 1 − (1/|S|) Σ_{j∈S}
 * (2 I_j + ε)/(P_j + G_j + ε), ε = 1 (MSCI_DICE_EPS), S = the classes present in the
 * targets (G_j > 0). grad: ∂L/∂x through the softmax. */
msc_status mbk_loss_rows_dice(mbk_fail_fn fail, mbk_loss_ws *ws, const float *logits,
                              const int32_t *target, int64_t n, int64_t c, int64_t h, int64_t w,
                              int32_t ignore_index, double *loss, float *grad);

#ifdef __cplusplus
}
#endif

#endif /* MOSAIC_LIB_LOSS_ROWS_H */
