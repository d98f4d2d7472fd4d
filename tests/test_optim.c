/*
 * test_optim.c — the optimisers (lib/train/optim.h, lib/contract/optim_core.h): AdamW and SGD steps
 * worked out by hand, cross-checked against a naive double-precision implementation
 * of the textbook formulas; the learning-rate schedule; gradient clipping; parsing; the
 * CPU backend's update (optim_update, plain and blocked layouts) and gradient statistics
 * (grad_stats) against the host functions, bit for bit.
 *
 * Hand values are derived in the comments from the formulas of docs/losses.md / PyTorch
 * (torch.optim.AdamW, torch.optim.SGD, clip_grad_norm_), never from the code under test.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaic/mosaic.h"
#include "train/optim.h"
#include "contract/optim_core.h"
#include "options/options.h"
#include "cpu/cpu_internal.h"
#include "backend/registry.h"
#include "common/internal.h"

/* float results against double expectations: a few float ulps. */
#define ASSERT_CLOSE(got, want, tol)                                                           \
  ck_assert_msg(fabs((double)(got) - (double)(want)) <= (tol)*fmax(1.0, fabs(want)),           \
                "%s = %.9g, expected %.9g", #got, (double)(got), (double)(want))

static msci_optim_cfg adamw_cfg(double lr, double wd) {
  msci_optim_cfg c;
  memset(&c, 0, sizeof c);
  c.kind = MSCI_OPTIM_ADAMW;
  c.lr = lr;
  c.beta1 = 0.9;
  c.beta2 = 0.999;
  c.eps = 1e-8;
  c.weight_decay = wd;
  return c;
}

static msci_optim_cfg sgd_cfg(double lr, double wd, double momentum, int32_t nesterov) {
  msci_optim_cfg c;
  memset(&c, 0, sizeof c);
  c.kind = MSCI_OPTIM_SGD;
  c.lr = lr;
  c.weight_decay = wd;
  c.momentum = momentum;
  c.nesterov = nesterov;
  return c;
}

/* The three gradients of the hand examples. */
static const float k_grads[3][2] = {{0.5f, -1.0f}, {-0.25f, 2.0f}, {1.0f, 0.5f}};

/* ---- AdamW -------------------------------------------------------------------------- */

/* p0 = (1, -2), lr 0.1, wd 0.01, β = (0.9, 0.999), ε = 1e-8.
 *
 * Step 1 (t = 1), g = (0.5, -1):
 *   decay: p ← p·(1 − 0.1·0.01) = p·0.999 = (0.999, -1.998)
 *   m = 0.1·g = (0.05, -0.1);  v = 0.001·g² = (0.00025, 0.001)
 *   m̂ = m/(1 − 0.9) = g;  v̂ = v/(1 − 0.999) = g²;  √v̂ = |g| = (0.5, 1)
 *   p ← p − 0.1·m̂/(√v̂ + ε) = (0.999 − 0.1·0.5/0.50000001, -1.998 + 0.1·1/1.00000001)
 *     = (0.899000002, -1.898000001)
 * Step 2 (t = 2), g = (-0.25, 2):
 *   decay: p = (0.898101002, -1.896102001)
 *   m = 0.9·(0.05, -0.1) + 0.1·(-0.25, 2) = (0.02, 0.11)
 *   v = 0.999·(0.00025, 0.001) + 0.001·(0.0625, 4) = (0.00031225, 0.004999)
 *   bc1 = 1 − 0.81 = 0.19, bc2 = 1 − 0.998001 = 0.001999
 *   m̂ = (0.105263158, 0.578947368), √v̂ = (0.395225381, 1.581376102)
 *   step = 0.1·m̂/(√v̂ + ε) = (0.026633703, 0.036610352)
 *   p = (0.871467299, -1.932712353)
 * Step 3 (t = 3), g = (1, 0.5):
 *   decay: p = (0.870595831, -1.930779641)
 *   m = 0.9·(0.02, 0.11) + 0.1·(1, 0.5) = (0.118, 0.149)
 *   v = 0.999·(0.00031225, 0.004999) + 0.001·(1, 0.25) = (0.00131193775, 0.005244001)
 *   bc1 = 1 − 0.729 = 0.271, bc2 = 1 − 0.997002999 = 0.002997001
 *   m̂ = (0.435424354, 0.549815498), √v̂ = (0.661626925, 1.322780972)
 *   step = (0.065811159, 0.041565120)
 *   p = (0.804784672, -1.972344761) */
START_TEST(adamw_by_hand) {
  msci_optim_cfg c = adamw_cfg(0.1, 0.01);
  float p[2] = {1.0f, -2.0f}, m[2] = {0, 0}, v[2] = {0, 0};
  static const double want_p[3][2] = {
      {0.899000002, -1.898000001}, {0.871467299, -1.932712353}, {0.804784672, -1.972344761}};
  static const double want_m[3][2] = {{0.05, -0.1}, {0.02, 0.11}, {0.118, 0.149}};
  static const double want_v[3][2] = {
      {0.00025, 0.001}, {0.00031225, 0.004999}, {0.00131193775, 0.005244001}};
  for (int s = 0; s < 3; ++s) {
    msci_optim_update(&c, s, p, k_grads[s], m, v, 2, 1, msci_optim_lr(&c, s));
    for (int i = 0; i < 2; ++i) {
      ASSERT_CLOSE(p[i], want_p[s][i], 1e-6);
      ASSERT_CLOSE(m[i], want_m[s][i], 1e-6);
      ASSERT_CLOSE(v[i], want_v[s][i], 1e-6);
    }
  }
}
END_TEST

/* decay = 0 (biases, norm parameters): no p·(1 − lr·wd) factor. Step 1 is then
 * p ← p − 0.1·g/(|g| + ε) = (1 − 0.099999998, -2 + 0.099999999) = (0.900000002,
 * -1.900000001), and step 2 p = (0.900000002 − 0.026633703, -1.900000001 −
 * 0.036610352) = (0.873366299, -1.936610353) (the moments do not depend on p). */
START_TEST(adamw_no_decay) {
  msci_optim_cfg c = adamw_cfg(0.1, 0.01);
  float p[2] = {1.0f, -2.0f}, m[2] = {0, 0}, v[2] = {0, 0};
  msci_optim_update(&c, 0, p, k_grads[0], m, v, 2, 0, 0.1);
  ASSERT_CLOSE(p[0], 0.900000002, 1e-6);
  ASSERT_CLOSE(p[1], -1.900000001, 1e-6);
  msci_optim_update(&c, 1, p, k_grads[1], m, v, 2, 0, 0.1);
  ASSERT_CLOSE(p[0], 0.873366299, 1e-6);
  ASSERT_CLOSE(p[1], -1.936610353, 1e-6);
  /* wd = 0 in the configuration gives the same as decay = 0 */
  msci_optim_cfg c0 = adamw_cfg(0.1, 0.0);
  float q[2] = {1.0f, -2.0f}, mq[2] = {0, 0}, vq[2] = {0, 0};
  msci_optim_update(&c0, 0, q, k_grads[0], mq, vq, 2, 1, 0.1);
  msci_optim_update(&c0, 1, q, k_grads[1], mq, vq, 2, 1, 0.1);
  ck_assert(q[0] == p[0] && q[1] == p[1]);
  /* a zero gradient with decay only shrinks by (1 − lr·wd) (m = v = 0: no Adam step) */
  float z[1] = {2.0f}, zm[1] = {0}, zv[1] = {0}, zg[1] = {0};
  msci_optim_update(&c, 0, z, zg, zm, zv, 1, 1, 0.1);
  ASSERT_CLOSE(z[0], 2.0 * 0.999, 1e-7);
}
END_TEST

/* The textbook AdamW in double: m̂ = m/(1 − β1^t), v̂ = v/(1 − β2^t). */
static void naive_adamw(double *p, double *m, double *v, const double *g, int n, int t,
                        double lr, double b1, double b2, double eps, double wd) {
  for (int i = 0; i < n; ++i) {
    p[i] -= lr * wd * p[i];
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    double mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
    p[i] -= lr * mh / (sqrt(vh) + eps);
  }
}

/* 50 steps of 16 elements with a warm-up + cosine schedule, other β. */
START_TEST(adamw_against_naive) {
  msci_optim_cfg c = adamw_cfg(0.01, 0.05);
  c.beta1 = 0.8;
  c.beta2 = 0.99;
  c.eps = 1e-6;
  c.warmup_steps = 5;
  c.total_steps = 50;
  enum { N = 16 };
  float p[N], m[N] = {0}, v[N] = {0}, g[N];
  double pd[N], md[N] = {0}, vd[N] = {0}, gd[N];
  for (int i = 0; i < N; ++i) pd[i] = p[i] = (float)(0.3 * (i - 7.5));
  for (int s = 0; s < 50; ++s) {
    for (int i = 0; i < N; ++i) {
      g[i] = (float)(sin(0.7 * s + 1.3 * i) * (1 + 0.1 * i));
      gd[i] = g[i];
    }
    double lr = msci_optim_lr(&c, s);
    msci_optim_update(&c, s, p, g, m, v, N, 1, lr);
    naive_adamw(pd, md, vd, gd, N, s + 1, lr, 0.8, 0.99, 1e-6, 0.05);
  }
  for (int i = 0; i < N; ++i) {
    ASSERT_CLOSE(p[i], pd[i], 1e-5);
    ASSERT_CLOSE(m[i], md[i], 1e-5);
    ASSERT_CLOSE(v[i], vd[i], 1e-5);
  }
}
END_TEST

/* The inline core alone (what CUDA kernels will call): one element, step 1 of the hand
 * example above. */
START_TEST(adamw_core_elem) {
  msci_adamw_coef k = msci_adamw_coefs(0.1, 0.9, 0.999, 1e-8, 0.01, 0);
  ASSERT_CLOSE(k.decay_mul, 0.999, 1e-7);
  ASSERT_CLOSE(k.neg_step, -0.1 / 0.1, 1e-7); /* −lr/(1 − 0.9) = −1 */
  ASSERT_CLOSE(k.bc2_sqrt, sqrt(0.001), 1e-7);
  float p = 1.0f, m = 0, v = 0;
  msci_adamw_elem(&p, &m, &v, 0.5f, &k);
  ASSERT_CLOSE(p, 0.899000002, 1e-6);
  /* torch.lerp is exact at both ends */
  ck_assert(msci_lerpf(3.0f, 7.0f, 0.0f) == 3.0f);
  ck_assert(msci_lerpf(3.0f, 7.0f, 1.0f) == 7.0f);
  ck_assert(msci_lerpf(3.0f, 7.0f, 0.25f) == 4.0f);
}
END_TEST

/* ---- SGD ---------------------------------------------------------------------------- */

/* p0 = (1, -2), lr 0.1, momentum 0.9, wd 0.01 (coupled: d = g + wd·p).
 * Step 1, g = (0.5, -1): d = (0.51, -1.02); buf = d; p = p − 0.1·d = (0.949, -1.898).
 * Step 2, g = (-0.25, 2): d = g + 0.01·p = (-0.24051, 1.98102);
 *   buf = 0.9·(0.51, -1.02) + d = (0.21849, 1.06302); p = p − 0.1·buf = (0.927151,
 *   -2.004302). */
START_TEST(sgd_momentum_by_hand) {
  msci_optim_cfg c = sgd_cfg(0.1, 0.01, 0.9, 0);
  float p[2] = {1.0f, -2.0f}, buf[2] = {0, 0};
  msci_optim_update(&c, 0, p, k_grads[0], buf, NULL, 2, 1, 0.1);
  ASSERT_CLOSE(buf[0], 0.51, 1e-6);
  ASSERT_CLOSE(buf[1], -1.02, 1e-6);
  ASSERT_CLOSE(p[0], 0.949, 1e-6);
  ASSERT_CLOSE(p[1], -1.898, 1e-6);
  msci_optim_update(&c, 1, p, k_grads[1], buf, NULL, 2, 1, 0.1);
  ASSERT_CLOSE(buf[0], 0.21849, 1e-6);
  ASSERT_CLOSE(buf[1], 1.06302, 1e-6);
  ASSERT_CLOSE(p[0], 0.927151, 1e-6);
  ASSERT_CLOSE(p[1], -2.004302, 1e-6);
}
END_TEST

/* Nesterov, same numbers. Step 1: d = (0.51, -1.02), buf = d, d ← d + 0.9·buf = 1.9·d =
 * (0.969, -1.938), p = (0.9031, -1.8062).
 * Step 2: d = g + 0.01·p = (-0.240969, 1.981938); buf = 0.9·(0.51, -1.02) + d =
 * (0.218031, 1.063938); d ← d + 0.9·buf = (-0.0447411, 2.9394822);
 * p = (0.9031 + 0.00447411, -1.8062 − 0.29394822) = (0.90757411, -2.10014822). */
START_TEST(sgd_nesterov_by_hand) {
  msci_optim_cfg c = sgd_cfg(0.1, 0.01, 0.9, 1);
  float p[2] = {1.0f, -2.0f}, buf[2] = {0, 0};
  msci_optim_update(&c, 0, p, k_grads[0], buf, NULL, 2, 1, 0.1);
  ASSERT_CLOSE(p[0], 0.9031, 1e-6);
  ASSERT_CLOSE(p[1], -1.8062, 1e-6);
  msci_optim_update(&c, 1, p, k_grads[1], buf, NULL, 2, 1, 0.1);
  ASSERT_CLOSE(buf[0], 0.218031, 1e-6);
  ASSERT_CLOSE(buf[1], 1.063938, 1e-6);
  ASSERT_CLOSE(p[0], 0.90757411, 1e-6);
  ASSERT_CLOSE(p[1], -2.10014822, 1e-6);
}
END_TEST

/* decay = 0 drops the wd·p term; momentum 0 needs no buffer: p ← p − lr·g. */
START_TEST(sgd_plain_and_no_decay) {
  msci_optim_cfg c = sgd_cfg(0.1, 0.01, 0.9, 0);
  float p[2] = {1.0f, -2.0f}, buf[2] = {0, 0};
  msci_optim_update(&c, 0, p, k_grads[0], buf, NULL, 2, 0, 0.1);
  ASSERT_CLOSE(p[0], 1 - 0.05, 1e-7);
  ASSERT_CLOSE(p[1], -2 + 0.1, 1e-7);
  msci_optim_cfg c0 = sgd_cfg(0.5, 0.0, 0.0, 0);
  float q[2] = {1.0f, -2.0f};
  msci_optim_update(&c0, 0, q, k_grads[0], NULL, NULL, 2, 1, 0.5);
  msci_optim_update(&c0, 1, q, k_grads[1], NULL, NULL, 2, 1, 0.5);
  /* (1 − 0.25 + 0.125, -2 + 0.5 − 1) */
  ck_assert(q[0] == 0.875f && q[1] == -2.5f);
}
END_TEST

/* ---- schedule ----------------------------------------------------------------------- */

START_TEST(lr_schedule) {
  msci_optim_cfg c = adamw_cfg(2.0, 0.0);
  c.warmup_steps = 4;
  c.total_steps = 14;
  /* warm-up: (step + 1)/4 */
  ck_assert(msci_optim_lr_mult(&c, 0) == 0.25);
  ck_assert(msci_optim_lr_mult(&c, 1) == 0.5);
  ck_assert(msci_optim_lr_mult(&c, 2) == 0.75);
  ck_assert(msci_optim_lr_mult(&c, 3) == 1.0);
  ck_assert(msci_optim_lr(&c, 1) == 1.0); /* 2 · 0.5 */
  /* t = (step − 4)/10: t = 0 → 1, t = 0.2 → 0.5(1 + cos 0.2π) = 0.904508497,
   * t = 0.5 → 0.5, t = 1 → 0, beyond → 0 */
  ASSERT_CLOSE(msci_optim_lr_mult(&c, 4), 1.0, 1e-15);
  ASSERT_CLOSE(msci_optim_lr_mult(&c, 6), 0.9045084971874737, 1e-15);
  ASSERT_CLOSE(msci_optim_lr_mult(&c, 9), 0.5, 1e-15);
  ASSERT_CLOSE(msci_optim_lr(&c, 9), 1.0, 1e-15);
  ASSERT_CLOSE(msci_optim_lr_mult(&c, 14), 0.0, 1e-15);
  ASSERT_CLOSE(msci_optim_lr_mult(&c, 1000), 0.0, 1e-15);
  /* a negative step counts as 0 */
  ck_assert(msci_optim_lr_mult(&c, -3) == 0.25);
  /* no warm-up, 10 steps: 1 at 0, 0.5 at 5, 0 at 10 */
  c.warmup_steps = 0;
  c.total_steps = 10;
  ASSERT_CLOSE(msci_optim_lr_mult(&c, 0), 1.0, 1e-15);
  ASSERT_CLOSE(msci_optim_lr_mult(&c, 5), 0.5, 1e-15);
  ASSERT_CLOSE(msci_optim_lr_mult(&c, 10), 0.0, 1e-15);
  /* total 0: constant after the warm-up */
  c.warmup_steps = 2;
  c.total_steps = 0;
  ck_assert(msci_optim_lr_mult(&c, 0) == 0.5);
  ck_assert(msci_optim_lr_mult(&c, 2) == 1.0);
  ck_assert(msci_optim_lr_mult(&c, 1000000) == 1.0);
  c.warmup_steps = 0;
  ck_assert(msci_optim_lr_mult(&c, 0) == 1.0);
}
END_TEST

/* ---- clipping ----------------------------------------------------------------------- */

/* ---- the CPU backend's update and gradient statistics ---------------------------------- */

static const mbk_iface *CPU;
static mbk_ctx *CTX;

static void cpu_setup(void) {
  ck_assert_int_eq(mbk_cpu_init(msci_host(), &CPU), MSC_OK);
  mbk_ctx_params prm = {sizeof prm, 0, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  ck_assert_int_eq(CPU->ctx_create(&prm, &CTX), MSC_OK);
}

static void cpu_teardown(void) {
  CPU->ctx_free(CTX);
  CTX = NULL;
}

static mbk_tensor *tensor_of(int32_t ndim, const int64_t *dims, const float *x) {
  mbk_tensor *t = NULL;
  ck_assert_int_eq(CPU->tensor_create(CTX, &t), MSC_OK);
  ck_assert_int_eq(CPU->tensor_upload(t, ndim, dims, x), MSC_OK);
  return t;
}

/* Rewrites t (4-D) in the blocked layout tag, e.g. dnnl_aBcd8b (channels padded to 8). */
static void make_blocked(mbk_tensor *t, dnnl_format_tag_t tag) {
  dnnl_memory_desc_t md;
  dnnl_dims_t dd;
  for (int i = 0; i < 4; ++i) dd[i] = t->dims[i];
  ck_assert_int_eq(dnnl_memory_desc_init_by_tag(&md, 4, dd, dnnl_f32, tag), dnnl_success);
  cpu_reorder r;
  memset(&r, 0, sizeof r);
  dnnl_memory_t conv = NULL;
  ck_assert_int_eq(cpu_view_as(CTX, t, &md, &r, &conv), MSC_OK);
  int64_t dims[4] = {t->dims[0], t->dims[1], t->dims[2], t->dims[3]};
  ck_assert_int_eq(cpu_tensor_set(t, 4, dims, &md), MSC_OK);
  memcpy(t->data, r.buf, dnnl_memory_desc_get_size(&md));
  cpu_reorder_destroy(&r);
}

/* Floats of t's storage that are padding (the storage minus the logical elements) are 0. */
static void expect_zero_padding(const mbk_tensor *t, const char *what) {
  size_t floats = dnnl_memory_desc_get_size(&t->md) / sizeof(float), logical = 1, nonzero = 0;
  for (int32_t i = 0; i < t->ndim; ++i) logical *= (size_t)t->dims[i];
  for (size_t i = 0; i < floats; ++i) nonzero += ((const float *)t->data)[i] != 0.0f;
  /* Random logical values are never exactly 0 here, so every nonzero float is logical. */
  ck_assert_msg(nonzero <= logical, "%s: %zu nonzero floats in %zu logical elements", what,
                nonzero, logical);
}

static void fill_random(float *x, size_t n, uint64_t *state) {
  for (size_t i = 0; i < n; ++i) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = (float)((double)(*state >> 11) / 9007199254740992.0 * 2.0 - 1.0) + 0.001f;
  }
}

/* optim_update on the CPU backend against msci_optim_update on host copies: `steps`
 * steps, the gradient scaled by 0.5 on step 1 (as msci_grad_clip_scale's factor is applied:
 * g·(float)scale), bit for bit; layouts: 0 all plain, 1 a blocked parameter, 2 a blocked
 * gradient. */
static void cpu_update_case(const msci_optim_cfg *c, int32_t ndim, const int64_t *dims,
                            int decay, int layout, int steps) {
  size_t n = 1;
  for (int32_t i = 0; i < ndim; ++i) n *= (size_t)dims[i];
  uint64_t state = n * 31 + (uint64_t)layout;
  float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
  float *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
  float *got = malloc(n * sizeof(float));
  ck_assert(p && g && m && v && got);
  fill_random(p, n, &state);
  mbk_tensor *tp = tensor_of(ndim, dims, p), *tm = tensor_of(ndim, dims, m);
  mbk_tensor *tv = tensor_of(ndim, dims, v), *tg = NULL;
  if (layout == 1) make_blocked(tp, dnnl_aBcd8b);
  const int adamw = c->kind == MSCI_OPTIM_ADAMW, mom = !adamw && c->momentum != 0;
  for (int s = 0; s < steps; ++s) {
    fill_random(g, n, &state);
    if (tg) CPU->tensor_free(tg);
    tg = tensor_of(ndim, dims, g);
    if (layout == 2) make_blocked(tg, dnnl_aBcd16b);
    double lr = msci_optim_lr(c, s), scale = s == 1 ? 0.5 : 1.0;
    mbk_optim_desc d = {.type = adamw ? MBK_OPTIM_ADAMW : MBK_OPTIM_SGD,
                        .nesterov = c->nesterov,
                        .n = (int64_t)n,
                        .step = s,
                        .lr = lr,
                        .weight_decay = decay ? c->weight_decay : 0.0,
                        .beta1 = c->beta1,
                        .beta2 = c->beta2,
                        .eps = c->eps,
                        .momentum = c->momentum,
                        .grad_scale = scale};
    ck_assert_int_eq(CPU->optim_update(CTX, &d, tp, tg, adamw || mom ? tm : NULL, tv), MSC_OK);
    if (scale != 1.0)
      for (size_t i = 0; i < n; ++i) g[i] = g[i] * (float)scale;
    msci_optim_update(c, s, p, g, m, v, (int64_t)n, decay, lr);
  }
  ck_assert_int_eq(CPU->tensor_download(tp, got, n), MSC_OK);
  ck_assert_msg(memcmp(got, p, n * sizeof(float)) == 0, "parameters differ (layout %d)",
                layout);
  if (adamw || mom) {
    ck_assert_int_eq(CPU->tensor_download(tm, got, n), MSC_OK);
    ck_assert_msg(memcmp(got, m, n * sizeof(float)) == 0, "m1 differs (layout %d)", layout);
  }
  if (adamw) {
    ck_assert_int_eq(CPU->tensor_download(tv, got, n), MSC_OK);
    ck_assert_msg(memcmp(got, v, n * sizeof(float)) == 0, "m2 differs (layout %d)", layout);
  }
  if (layout == 1) {
    /* The parameter kept its layout; the moments took it; padding stayed zero. */
    ck_assert(cpu_md_equal(&tm->md, &tp->md) || !(adamw || mom));
    ck_assert(dnnl_memory_desc_get_size(&tp->md) > n * sizeof(float));
    expect_zero_padding(tp, "param");
    if (adamw || mom) expect_zero_padding(tm, "m1");
    if (adamw) expect_zero_padding(tv, "m2");
  }
  CPU->tensor_free(tp), CPU->tensor_free(tg), CPU->tensor_free(tm), CPU->tensor_free(tv);
  free(p), free(g), free(m), free(v), free(got);
}

START_TEST(cpu_update_matches_host) {
  cpu_setup();
  const int64_t small[1] = {1037}, big[2] = {300, 211}, conv[4] = {3, 5, 3, 2};
  msci_optim_cfg cfgs[5];
  cfgs[0] = adamw_cfg(1e-3, 0.05);
  cfgs[1] = adamw_cfg(3e-2, 0.0);
  cfgs[2] = sgd_cfg(0.1, 1e-4, 0.9, 1);
  cfgs[3] = sgd_cfg(0.1, 1e-2, 0.9, 0);
  cfgs[4] = sgd_cfg(0.05, 1e-2, 0.0, 0);
  for (int k = 0; k < 5; ++k) {
    cfgs[k].warmup_steps = 2;
    cpu_update_case(&cfgs[k], 1, small, 1, 0, 3);
    cpu_update_case(&cfgs[k], 1, small, 0, 0, 3);
    cpu_update_case(&cfgs[k], 2, big, 1, 0, 3); /* above the parallel threshold */
    cpu_update_case(&cfgs[k], 4, conv, 1, 1, 3);
    cpu_update_case(&cfgs[k], 4, conv, 1, 2, 3);
  }
  /* Errors: sizes, a missing moment, aliasing. */
  const int64_t five[1] = {5}, six[1] = {6};
  float z[6] = {0};
  mbk_tensor *a = tensor_of(1, five, z), *b = tensor_of(1, five, z), *c6 = tensor_of(1, six, z);
  mbk_optim_desc d = {.type = MBK_OPTIM_ADAMW,
                      .n = 6,
                      .lr = 0.1,
                      .beta1 = 0.9,
                      .beta2 = 0.999,
                      .eps = 1e-8,
                      .grad_scale = 1.0};
  ck_assert_int_eq(CPU->optim_update(CTX, &d, a, b, b, b), MSC_E_SHAPE);
  d.n = 5;
  ck_assert_int_eq(CPU->optim_update(CTX, &d, a, c6, b, b), MSC_E_SHAPE);
  ck_assert_int_eq(CPU->optim_update(CTX, &d, a, b, b, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(CPU->optim_update(CTX, &d, a, a, b, b), MSC_E_INVALID_ARGUMENT);
  d.type = 7;
  ck_assert_int_eq(CPU->optim_update(CTX, &d, a, b, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  CPU->tensor_free(a), CPU->tensor_free(b), CPU->tensor_free(c6);
  cpu_teardown();
}
END_TEST

/* Tensors (3, 4) and (12): norm √(9 + 16 + 144) = 13. clip 6.5: scale 6.5/(13 + 1e-6)
 * = 0.499999962; the gradients the update reads are then halved (up to the 1e-6). */
START_TEST(clip_by_hand) {
  cpu_setup();
  ASSERT_CLOSE(msci_grad_clip_scale(13.0, 6.5), 0.49999996153846454, 1e-15);
  ck_assert(msci_grad_clip_scale(13.0, 20.0) == 1.0);
  ck_assert(msci_grad_clip_scale(13.0, 0.0) == 1.0); /* off */
  ck_assert(isnan(msci_grad_clip_scale(NAN, 1.0)));  /* the caller's job */
  const float a[2] = {3.0f, 4.0f}, b[1] = {12.0f};
  const int64_t two[1] = {2}, one[1] = {1};
  mbk_tensor *ta = tensor_of(1, two, a), *tb = tensor_of(1, one, b);
  const mbk_tensor *ts[2] = {ta, tb};
  int32_t bad = 7;
  double sumsq = -1;
  ck_assert_int_eq(CPU->grad_stats(CTX, ts, 2, &bad, &sumsq), MSC_OK);
  ck_assert(bad == -1 && sumsq == 169.0);
  double none = -1;
  ck_assert_int_eq(CPU->grad_stats(CTX, ts, 0, &bad, &none), MSC_OK); /* no tensors */
  ck_assert(bad == -1 && none == 0.0);
  /* SGD at lr 1 from 0 without decay or momentum: p = −g·scale. */
  float zero[2] = {0, 0}, got[2];
  mbk_tensor *p = tensor_of(1, two, zero);
  mbk_optim_desc d = {.type = MBK_OPTIM_SGD,
                      .n = 2,
                      .lr = 1.0,
                      .grad_scale = msci_grad_clip_scale(sqrt(sumsq), 6.5)};
  ck_assert_int_eq(CPU->optim_update(CTX, &d, p, ta, NULL, NULL), MSC_OK);
  ck_assert_int_eq(CPU->tensor_download(p, got, 2), MSC_OK);
  ASSERT_CLOSE(got[0], -1.5, 1e-6);
  ASSERT_CLOSE(got[1], -2.0, 1e-6);
  ck_assert(got[0] == -(3.0f * (float)d.grad_scale));
  /* clip 20: scale exactly 1, the gradient as it is. */
  d.grad_scale = msci_grad_clip_scale(13.0, 20.0);
  ck_assert_int_eq(CPU->tensor_upload(p, 1, two, zero), MSC_OK);
  ck_assert_int_eq(CPU->optim_update(CTX, &d, p, ta, NULL, NULL), MSC_OK);
  ck_assert_int_eq(CPU->tensor_download(p, got, 2), MSC_OK);
  ck_assert(got[0] == -3.0f && got[1] == -4.0f);
  CPU->tensor_free(ta), CPU->tensor_free(tb), CPU->tensor_free(p);
  cpu_teardown();
}
END_TEST

START_TEST(grad_stats_order_and_non_finite) {
  /* The sum of squares is the serial double sum in the tensors' order and each tensor's
   * row-major order (the host's order before the update moved to the backend), bit for
   * bit, whatever the layout; the first tensor holding a NaN or an infinity is named. */
  cpu_setup();
  const int64_t d1[1] = {4099}, d2[2] = {37, 129}, d4[4] = {3, 5, 3, 2}, d5[4] = {2, 17, 4, 3};
  const int64_t *dims[4] = {d1, d2, d4, d5};
  const int32_t nd[4] = {1, 2, 4, 4};
  float *x[4];
  size_t n[4];
  mbk_tensor *t[4];
  uint64_t state = 99;
  for (int i = 0; i < 4; ++i) {
    n[i] = 1;
    for (int32_t k = 0; k < nd[i]; ++k) n[i] *= (size_t)dims[i][k];
    x[i] = malloc(n[i] * sizeof(float));
    fill_random(x[i], n[i], &state);
    for (size_t k = 0; k < n[i]; ++k) x[i][k] *= (float)(1 + k % 1000); /* mixed magnitudes */
    t[i] = tensor_of(nd[i], dims[i], x[i]);
  }
  make_blocked(t[2], dnnl_aBcd8b);
  make_blocked(t[3], dnnl_aBcd16b);
  double want = 0.0;
  for (int i = 0; i < 4; ++i)
    for (size_t k = 0; k < n[i]; ++k) want += (double)x[i][k] * (double)x[i][k];
  const mbk_tensor *ts[4] = {t[0], t[1], t[2], t[3]};
  int32_t bad = 5;
  double got = 0;
  ck_assert_int_eq(CPU->grad_stats(CTX, ts, 4, &bad, &got), MSC_OK);
  ck_assert_int_eq(bad, -1);
  ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "sum %.17g, host %.17g", got, want);
  ck_assert_int_eq(CPU->grad_stats(CTX, ts, 4, &bad, NULL), MSC_OK);
  ck_assert_int_eq(bad, -1);
  /* A NaN in tensor 1, an infinity in tensor 3 (blocked): tensor 1 is named. */
  x[1][100] = NAN;
  CPU->tensor_free(t[1]);
  t[1] = tensor_of(2, d2, x[1]);
  x[3][n[3] - 1] = -INFINITY;
  CPU->tensor_free(t[3]);
  t[3] = tensor_of(4, d5, x[3]);
  make_blocked(t[3], dnnl_aBcd16b);
  const mbk_tensor *ts2[4] = {t[0], t[1], t[2], t[3]};
  ck_assert_int_eq(CPU->grad_stats(CTX, ts2, 4, &bad, &got), MSC_OK);
  ck_assert_int_eq(bad, 1);
  ck_assert_int_eq(CPU->grad_stats(CTX, ts2, 4, &bad, NULL), MSC_OK);
  ck_assert_int_eq(bad, 1);
  const mbk_tensor *ts3[2] = {t[2], t[3]};
  ck_assert_int_eq(CPU->grad_stats(CTX, ts3, 2, &bad, &got), MSC_OK);
  ck_assert_int_eq(bad, 1);
  ck_assert_int_eq(CPU->grad_stats(CTX, ts3, 2, &bad, NULL), MSC_OK);
  ck_assert_int_eq(bad, 1);
  /* Errors. */
  const mbk_tensor *none[1] = {NULL};
  ck_assert_int_eq(CPU->grad_stats(CTX, none, 1, &bad, &got), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(CPU->grad_stats(CTX, ts, 4, NULL, &got), MSC_E_INVALID_ARGUMENT);
  for (int i = 0; i < 4; ++i) CPU->tensor_free(t[i]), free(x[i]);
  cpu_teardown();
}
END_TEST

/* ---- options ------------------------------------------------------------------------ */

START_TEST(parse_defaults_and_errors) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  msci_optim_cfg c;
  ck_assert_int_eq(msci_optim_cfg_parse(o, &c), MSC_OK);
  ck_assert_int_eq(c.kind, MSCI_OPTIM_ADAMW);
  ck_assert(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8);
  ck_assert(c.weight_decay == 1e-4 && c.momentum == 0.9 && c.nesterov == 0);
  ck_assert(c.warmup_steps == 0 && c.total_steps == 0 && c.clip_norm == 0.0);
  ck_assert(c.min_lr_ratio == 0.0);

  ck_assert_int_eq(msc_options_set_string(o, "optim.kind", "sgd"), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 0.05), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "optim.nesterov", 1), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "optim.warmup_steps", 10), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "optim.total_steps", 100), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.clip_norm", 1.5), MSC_OK);
  ck_assert_int_eq(msci_optim_cfg_parse(o, &c), MSC_OK);
  ck_assert_int_eq(c.kind, MSCI_OPTIM_SGD);
  ck_assert(c.lr == 0.05 && c.nesterov == 1 && c.warmup_steps == 10 && c.total_steps == 100 &&
            c.clip_norm == 1.5);

  /* the setters' rules */
  ck_assert_int_eq(msc_options_set_string(o, "optim.kind", "adam"), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 0.0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, "optim.beta2", 1.0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, "optim.weight_decay", -1.0),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "optim.warmup_steps", -1), MSC_E_INVALID_ARGUMENT);

  /* cross-key rules; cfg untouched on error */
  msci_optim_cfg before = c;
  ck_assert_int_eq(msc_options_set_int(o, "optim.total_steps", 10), MSC_OK);
  ck_assert_int_eq(msci_optim_cfg_parse(o, &c), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "optim.total_steps"));
  ck_assert(memcmp(&before, &c, sizeof c) == 0);
  ck_assert_int_eq(msc_options_set_int(o, "optim.total_steps", 0), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.momentum", 0.0), MSC_OK);
  ck_assert_int_eq(msci_optim_cfg_parse(o, &c), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "optim.nesterov"));
  /* AdamW ignores nesterov */
  ck_assert_int_eq(msc_options_set_string(o, "optim.kind", "adamw"), MSC_OK);
  ck_assert_int_eq(msci_optim_cfg_parse(o, &c), MSC_OK);
  ck_assert_int_eq(msci_optim_cfg_parse(NULL, &c), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_optim_cfg_parse(o, NULL), MSC_E_INVALID_ARGUMENT);
  msc_options_free(o);
}
END_TEST

static Suite *optim_suite(void) {
  Suite *s = suite_create("optim");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, adamw_by_hand);
  tcase_add_test(tc, adamw_no_decay);
  tcase_add_test(tc, adamw_against_naive);
  tcase_add_test(tc, adamw_core_elem);
  tcase_add_test(tc, sgd_momentum_by_hand);
  tcase_add_test(tc, sgd_nesterov_by_hand);
  tcase_add_test(tc, sgd_plain_and_no_decay);
  tcase_add_test(tc, lr_schedule);
  tcase_add_test(tc, clip_by_hand);
  tcase_add_test(tc, cpu_update_matches_host);
  tcase_add_test(tc, grad_stats_order_and_non_finite);
  tcase_add_test(tc, parse_defaults_and_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(optim_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
