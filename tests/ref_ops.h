/*
 * ref_ops.h — plain C reference implementations of every op of lib/contract/backend.h, forward
 * and backward, used by the backend op tests (test_cpu_ops.c, test_dense_ops.c) as the
 * ground truth.
 *
 * Everything here is written to be obviously correct rather than fast: straightforward
 * loops over plain row-major float32 arrays (NCHW activations, OIHW weights), every sum
 * accumulated in double, backward passes that scatter into double buffers (the
 * transposed convolution's forward scatters and its backward gathers, its definition
 * being PyTorch's scatter). Nothing
 * depends on a backend; the only shared notion is the shape arithmetic, which is written
 * out again here (floor division, like mbk_op_out_dims) so a mistake there is caught.
 *
 * Conventions: outputs are overwritten (not accumulated into); any output pointer
 * documented as optional may be NULL to skip it. Shapes are int64_t.
 */
#ifndef MOSAIC_TESTS_REF_OPS_H
#define MOSAIC_TESTS_REF_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- conv2d: x[N,C,H,W] * w[OC,C,KH,KW] (+ b[OC]) -> y[N,OC,OH,OW] ------------------- */
typedef struct ref_conv {
  int64_t n, c, h, w;     /* input */
  int64_t oc, kh, kw;     /* output channels, kernel */
  int64_t sh, sw, ph, pw; /* stride, symmetric zero padding */
} ref_conv;

int64_t ref_conv_oh(const ref_conv *p); /* (h + 2 ph - kh) / sh + 1 */
int64_t ref_conv_ow(const ref_conv *p);
/* b may be NULL (no bias). */
void ref_conv2d_fwd(const ref_conv *p, const float *x, const float *w, const float *b,
                    float *y);
/* dx = dL/dx given dy = dL/dy. */
void ref_conv2d_bwd_data(const ref_conv *p, const float *w, const float *dy, float *dx);
/* dw = dL/dw. */
void ref_conv2d_bwd_weights(const ref_conv *p, const float *x, const float *dy, float *dw);
/* db[oc] = sum of dy over n, oh, ow. */
void ref_conv2d_bwd_bias(const ref_conv *p, const float *dy, float *db);
/* Grouped (API 10): g groups (g divides c and oc); weights [OC, C/g, KH, KW], output
 * channel o reads the C/g input channels of group o / (OC/g); g = c = oc is depthwise.
 * The functions above are these with g = 1. */
void ref_gconv2d_fwd(const ref_conv *p, int64_t g, const float *x, const float *w,
                     const float *b, float *y);
void ref_gconv2d_bwd_data(const ref_conv *p, int64_t g, const float *w, const float *dy,
                          float *dx);
void ref_gconv2d_bwd_weights(const ref_conv *p, int64_t g, const float *x, const float *dy,
                             float *dw);

/* ---- batch norm over x[N,C,HW] (HW = H*W for 4-D, 1 for 2-D) ------------------------ */
/* Training forward: y = gamma (x - mean) / sqrt(var + eps) + beta with the batch mean and
 * the biased batch variance; with relu, y = max(y, 0). mean/var (optional) receive the
 * batch statistics (var biased). */
void ref_bn_fwd_train(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                      const float *beta, float eps, int relu, float *y, float *mean,
                      float *var);
/* Running statistics after one training forward with batch statistics mean/var (var
 * biased, over count = N*HW values): r = (1 - m) r + m s, where s is the mean for
 * running_mean and the unbiased variance var * count / (count - 1) for running_var. */
void ref_bn_update_running(int64_t c, int64_t count, float momentum, const float *mean,
                           const float *var, float *running_mean, float *running_var);
/* Inference forward with the running statistics. */
void ref_bn_fwd_infer(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                      const float *beta, const float *running_mean, const float *running_var,
                      float eps, int relu, float *y);
/* Backward of the training forward (batch statistics recomputed from x). With relu, dy
 * is first masked by y > 0, where y = relu(bn(x)) (hence beta is needed). dgamma and
 * dbeta are optional. */
void ref_bn_bwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                const float *beta, const float *dy, float eps, int relu, float *dx,
                float *dgamma, float *dbeta);

/* ---- relu (any shape, count elements) ----------------------------------------------- */
void ref_relu_fwd(size_t count, const float *x, float *y);
/* dx = dy where x > 0, else 0 (the gradient at x = 0 is 0). */
void ref_relu_bwd(size_t count, const float *x, const float *dy, float *dx);

/* ---- max pool: x[N,C,H,W] -> y[N,C,OH,OW]; padding never wins -------------------------- */
typedef struct ref_pool {
  int64_t n, c, h, w;
  int64_t kh, kw, sh, sw, ph, pw;
} ref_pool;

int64_t ref_pool_oh(const ref_pool *p);
int64_t ref_pool_ow(const ref_pool *p);
/* Max over the in-bounds elements of each window (a window with none gives 0). */
void ref_maxpool_fwd(const ref_pool *p, const float *x, float *y);
/* Routes each dy to the argmax of its window in x (ties: the first in row-major window
 * order), accumulating where windows overlap. */
void ref_maxpool_bwd(const ref_pool *p, const float *x, const float *dy, float *dx);

/* ---- global average pool: x[N,C,H,W] -> y[N,C] --------------------------------------- */
void ref_gavgpool_fwd(int64_t n, int64_t c, int64_t hw, const float *x, float *y);
void ref_gavgpool_bwd(int64_t n, int64_t c, int64_t hw, const float *dy, float *dx);

/* ---- linear: y[N,O] = x[N,K] w[O,K]^T + b[O] ------------------------------------------ */
void ref_linear_fwd(int64_t n, int64_t k, int64_t o, const float *x, const float *w,
                    const float *b /* optional */, float *y);
/* dx, dw, db each optional. */
void ref_linear_bwd(int64_t n, int64_t k, int64_t o, const float *x, const float *w,
                    const float *dy, float *dx, float *dw, float *db);

/* ---- add: y = a + b (any shape) ----------------------------------------------------- */
void ref_add_fwd(size_t count, const float *a, const float *b, float *y);
/* da = dy, db = dy (each optional). */
void ref_add_bwd(size_t count, const float *dy, float *da, float *db);

/* ---- concat along dimension 1 of [N, C_i, inner] (inner = H*W, or 1 for 2-D) ----------- */
void ref_concat_fwd(int64_t n, int64_t inner, int32_t count, const int64_t *cs,
                    const float *const *xs, float *y);
/* dxs[i] (each optional) receives the slice of dy that x_i went to. */
void ref_concat_bwd(int64_t n, int64_t inner, int32_t count, const int64_t *cs, const float *dy,
                    float *const *dxs);

/* ---- upsample: x[N,C,H,W] -> y[N,C,OH,OW] (OH >= H, OW >= W) ---------------------------- */
/* PyTorch's F.interpolate(x, size=(OH, OW)), scale H/OH per axis. bilinear = 0: nearest,
 * y[i,j] = x[floor(i·H/OH), floor(j·W/OW)]. bilinear = 1: align_corners=False: source
 * coordinate (i + 0.5)·H/OH - 0.5, negative ones clamped to 0, neighbours i0 = floor,
 * i1 = min(i0 + 1, H - 1), weights 1 - l and l (l = coordinate - i0); columns alike. */
void ref_upsample_fwd(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow,
                      int bilinear, const float *x, float *y);
/* dx: each dy sent back to the source pixels with the forward's weights. */
void ref_upsample_bwd(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow,
                      int bilinear, const float *dy, float *dx);

/* ---- transposed conv (PyTorch's ConvTranspose2d): x[N,C,H,W], w[C,OC,KH,KW] ------------- */
typedef struct ref_deconv {
  int64_t n, c, h, w;
  int64_t oc, kh, kw;
  int64_t sh, sw, ph, pw; /* stride, padding */
  int64_t oph, opw;       /* output padding */
} ref_deconv;

int64_t ref_deconv_oh(const ref_deconv *p); /* (h - 1) sh - 2 ph + kh + oph */
int64_t ref_deconv_ow(const ref_deconv *p);
/* y[n,o,i*sh - ph + a, j*sw - pw + b] += x[n,c,i,j] w[c,o,a,b] (+ b[o]); b optional. */
void ref_deconv2d_fwd(const ref_deconv *p, const float *x, const float *w, const float *b,
                      float *y);
/* dx[n,c,i,j] = sum over o, a, b of dy[n,o,i*sh - ph + a, j*sw - pw + b] w[c,o,a,b]. */
void ref_deconv2d_bwd_data(const ref_deconv *p, const float *w, const float *dy, float *dx);
/* dw[c,o,a,b] = sum over n, i, j of x[n,c,i,j] dy[n,o,i*sh - ph + a, j*sw - pw + b]. */
void ref_deconv2d_bwd_weights(const ref_deconv *p, const float *x, const float *dy, float *dw);
/* db[o] = sum of dy over n and the output plane. */
void ref_deconv2d_bwd_bias(const ref_deconv *p, const float *dy, float *db);

/* ---- layer norm over the channels of x[N,C,HW] (HW = 1 for N×C) ------------------------ */
/* At every (n, position): y = (x - mean_c x) / sqrt(var_c x + eps) gamma[c] + beta[c], the
 * variance biased. */
void ref_layernorm_fwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                       const float *beta, float eps, float *y);
/* dx, dgamma, dbeta (each optional) of that forward, the statistics recomputed from x. */
void ref_layernorm_bwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                       const float *dy, float eps, float *dx, float *dgamma, float *dbeta);

/* ---- GELU, exact: y = x Phi(x) = x/2 (1 + erf(x / sqrt 2)) (any shape) --------------------- */
void ref_gelu_fwd(size_t count, const float *x, float *y);
/* dx = dy (Phi(x) + x phi(x)). */
void ref_gelu_bwd(size_t count, const float *x, const float *dy, float *dx);

/* ---- GRN (ConvNeXt-V2) on x[N,C,HW] ----------------------------------------------------- */
/* G[n,c] = sqrt(sum_hw x^2), Nx = G / (mean_c G + eps), y = gamma[c] x Nx + beta[c] + x. */
void ref_grn_fwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                 const float *beta, float eps, float *y);
/* dx, dgamma, dbeta (each optional); the gradient through G is 0 where G = 0. */
void ref_grn_bwd(int64_t n, int64_t c, int64_t hw, const float *x, const float *gamma,
                 const float *dy, float eps, float *dx, float *dgamma, float *dbeta);

/* ---- ATTN: multi-head attention of tokens (API 11) ----------------------------------------- */
/* q [N,C,Lq]; the keys and values of the S sources k[j], v[j] [N,C,len[j]], taken
 * together; heads split C. y [N,C,Lq] = softmax(Q_h K_hᵀ/√(C/heads)) V_h per head, by
 * whole matrices (S = Q Kᵀ, row softmax, P V). */
void ref_attn_fwd(int64_t n, int64_t c, int64_t lq, int64_t heads, int32_t sources,
                  const int64_t *len, const float *q, const float *const *k,
                  const float *const *v, float *y);
/* dq, dk[j], dv[j] (any may be NULL) of that forward for dy, by whole matrices:
 * dV = Pᵀ dY, dP = dY Vᵀ, dS = P ∘ (dP − rowsum(P ∘ dP)), dQ = dS K/√dh, dK = dSᵀ Q/√dh. */
void ref_attn_bwd(int64_t n, int64_t c, int64_t lq, int64_t heads, int32_t sources,
                  const int64_t *len, const float *q, const float *const *k,
                  const float *const *v, const float *dy, float *dq, float *const *dk,
                  float *const *dv);

#ifdef __cplusplus
}
#endif

#endif /* MOSAIC_TESTS_REF_OPS_H */
