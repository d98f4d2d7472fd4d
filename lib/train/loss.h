/*
 * loss.h — the MoSAiC loss terms on host float arrays (docs/losses.md), value and exact
 * gradient, used by the public msc_loss_* functions (layer: train). Each is the term of
 * loss_rows.h (the contract's host driver, shared with the CPU backend) with errors
 * reported through msci_fail.
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
 *  - One scratch allocation per call, or none with a workspace (the *_ws forms, below);
 *    rows are processed in parallel with OpenMP and
 *    reduced in a fixed order, so results are bit-identical for any thread count.
 *  - Thread-safe and reentrant.
 */
#ifndef MOSAIC_LIB_LOSS_H
#define MOSAIC_LIB_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "mosaic/mosaic.h"

/* NT-Xent over the 2N rows u = (za rows, then zb rows), each N×D; pos(i) = i ± N:
 * L = (1/2N) Σ_i [ −s(u_i,u_pos(i)) + log Σ_{k≠i} exp s(u_i,u_k) ]. */
msc_status msci_loss_ntxent(const float *za, const float *zb, int64_t n, int64_t d, float tau,
                            double *loss, float *grad_a, float *grad_b);

/* Symmetric InfoNCE between zp and zq (N×D each): S_ij = s(p_i, q_j),
 * L = ½ [CE(S) + CE(Sᵀ)], CE(S) = (1/N) Σ_i [ −S_ii + log Σ_j exp S_ij ]. */
msc_status msci_loss_infonce(const float *zp, const float *zq, int64_t n, int64_t d, float tau,
                             double *loss, float *grad_p, float *grad_q);

/* MulSupCon over K embeddings e (K×D) with multi-hot labels y (K×C bytes, 0/1): one row
 * per (anchor i, class c) with y_ic = 1 and P_r = {j ≠ i : y_jc = 1} non-empty,
 * loss_r = −(1/|P_r|) Σ_{p∈P_r} [ s(e_i,e_p) − log Σ_{j≠i} exp s(e_i,e_j) ],
 * L = (1/R) Σ_r loss_r, or with per_anchor_weight != 0 L = Σ_r w_r loss_r with
 * w_r = 1/(|y_i|·K_a). L = 0 and a zero gradient when R = 0. Samples without any label
 * are keys only. */
msc_status msci_loss_mulsupcon(const float *e, const uint8_t *y, int64_t k, int64_t d,
                               int64_t c, float tau, int32_t per_anchor_weight, double *loss,
                               float *grad);

/* BCE with logits over N×C logits and 0/1 targets: mean over kept rows × classes of
 * max(x,0) − x·y + log(1 + e^{−|x|}); grad = (σ(x) − y)/(kept·C) on kept rows, 0 on the
 * others. row_mask (N bytes) NULL keeps every row; a 0 entry ignores the row
 * (unlabelled: its labels are not read). No kept row: loss 0 and a zero gradient.
 * Logits are checked for finiteness in every row. */
msc_status msci_loss_bce(const float *logits, const uint8_t *y, int64_t n, int64_t c,
                         const uint8_t *row_mask, double *loss, float *grad);

/* Single-label softmax cross-entropy over N×C logits with one-hot targets (every kept
 * row exactly one 1, else MSC_E_INVALID_ARGUMENT naming the row): mean over kept rows of
 * −x_{i,t_i} + log Σ_j exp x_ij; grad = (softmax(x_i) − onehot(t_i))/kept on kept rows,
 * 0 on the others. row_mask as for BCE. */
msc_status msci_loss_softmax_ce(const float *logits, const uint8_t *y, int64_t n, int64_t c,
                                const uint8_t *row_mask, double *loss, float *grad);

/* The per-pixel terms on N×C×H×W logits (loss_rows.h, "Per-pixel terms"; docs/losses.md,
 * "Per-pixel losses"): softmax cross-entropy against class indices with an ignore index
 * and optional class weights, soft-target BCE with an optional mask and positive
 * weights, soft Dice on the softmax. Nothing counted: loss 0 and a zero gradient. */
msc_status msci_loss_pixel_ce(const float *logits, const int32_t *target, int64_t n, int64_t c,
                              int64_t h, int64_t w, int32_t ignore_index,
                              const float *class_weight, double *loss, float *grad);
msc_status msci_loss_pixel_bce(const float *logits, const float *target, const uint8_t *mask,
                               int64_t n, int64_t k, int64_t h, int64_t w,
                               const float *pos_weight, double *loss, float *grad);
msc_status msci_loss_dice(const float *logits, const int32_t *target, int64_t n, int64_t c,
                          int64_t h, int64_t w, int32_t ignore_index, double *loss,
                          float *grad);

#endif /* MOSAIC_LIB_LOSS_H */
