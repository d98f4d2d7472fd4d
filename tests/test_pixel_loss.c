/*
 * test_pixel_loss.c — the per-pixel losses (docs/losses.md, "Per-pixel losses"): softmax
 * cross-entropy with an ignore index and class weights, soft-target BCE with a mask and
 * positive weights, soft Dice on the softmax (lib/contract/loss_rows.c through the public
 * msc_loss_pixel_ce / msc_loss_pixel_bce / msc_loss_dice and the CPU backend's loss
 * entry), and segmentation maps scored with msc_metrics_confusion:
 *  (a) 1×1 images worked out by hand (closed forms evaluated here);
 *  (b) deliberately naive double references (NCHW indexing written out, log Σ exp
 *      without the maximum subtracted, fine for the moderate logits used) on random
 *      cases with ignored pixels, class weights, masks and positive weights, and every
 *      gradient coordinate against central finite differences of the reference;
 *  (c) nothing counted: loss 0 and a zero gradient (written over a filled buffer);
 *  (d) errors: bad targets named by image, y and x; weights, NULLs, sizes, NaN logits;
 *      outputs untouched;
 *  (e) the CPU backend's entry: image offset, weighted gradient added;
 *  (f) a flattened N×H×W segmentation case through msc_metrics_confusion /
 *      msc_metrics_from_confusion against counts made by hand.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/registry.h"
#include "common/internal.h"
#include "common/rng.h"
#include "mosaic/mosaic.h"

#define ck_assert_close(got, want, tol)                                                        \
  do {                                                                                         \
    double g_ = (double)(got), w_ = (double)(want);                                            \
    ck_assert_msg(fabs(g_ - w_) <= (tol)*fmax(1.0, fabs(w_)), "%s = %.12g, expected %.12g",    \
                  #got, g_, w_);                                                               \
  } while (0)

/* ---- naive references (x: N×C×H×W doubles) ----------------------------------------------- */

#define AT(x, c, h, w, b, j, yy, xx) (x)[(((b) * (c) + (j)) * (h) + (yy)) * (w) + (xx)]

static double ref_pixel_ce(const double *x, const int32_t *t, int n, int c, int h, int w,
                           int ignore, const float *cw) {
  double num = 0, den = 0;
  for (int b = 0; b < n; ++b)
    for (int yy = 0; yy < h; ++yy)
      for (int xx = 0; xx < w; ++xx) {
        int tt = t[(b * h + yy) * w + xx];
        if (tt == ignore) continue;
        double z = 0;
        for (int j = 0; j < c; ++j) z += exp(AT(x, c, h, w, b, j, yy, xx));
        double wt = cw ? cw[tt] : 1.0;
        num += wt * (log(z) - AT(x, c, h, w, b, tt, yy, xx));
        den += wt;
      }
  return den > 0 ? num / den : 0.0;
}

static double ref_pixel_bce(const double *x, const float *y, const uint8_t *mask, int n, int k,
                            int h, int w, const float *pw) {
  double sum = 0;
  int64_t counted = 0;
  for (int b = 0; b < n; ++b)
    for (int j = 0; j < k; ++j)
      for (int p = 0; p < h * w; ++p) {
        int64_t i = ((int64_t)b * k + j) * h * w + p;
        if (mask && !mask[i]) continue;
        double s = 1.0 / (1.0 + exp(-x[i]));
        double q = pw ? pw[j] : 1.0;
        sum += -q * y[i] * log(s) - (1.0 - y[i]) * log(1.0 - s);
        counted++;
      }
  return counted ? sum / (double)counted : 0.0;
}

static double ref_dice(const double *x, const int32_t *t, int n, int c, int h, int w,
                       int ignore) {
  double inter[8] = {0}, psum[8] = {0}, gsum[8] = {0};
  int any = 0;
  for (int b = 0; b < n; ++b)
    for (int yy = 0; yy < h; ++yy)
      for (int xx = 0; xx < w; ++xx) {
        int tt = t[(b * h + yy) * w + xx];
        if (tt == ignore) continue;
        any = 1;
        double z = 0;
        for (int j = 0; j < c; ++j) z += exp(AT(x, c, h, w, b, j, yy, xx));
        for (int j = 0; j < c; ++j) {
          double p = exp(AT(x, c, h, w, b, j, yy, xx)) / z;
          psum[j] += p;
          if (j == tt) {
            inter[j] += p;
            gsum[j] += 1;
          }
        }
      }
  if (!any) return 0.0;
  double acc = 0;
  int present = 0;
  for (int j = 0; j < c; ++j) {
    if (gsum[j] == 0) continue;
    present++;
    acc += (2 * inter[j] + 1.0) / (psum[j] + gsum[j] + 1.0);
  }
  return 1.0 - acc / present;
}

/* ---- (a) hand cases --------------------------------------------------------------------- */

/*
 * Pixel CE, one 1×1 image, x = (1, 2, 3), class 2: log(1 + e⁻¹ + e⁻²); grad = p − e₂ with
 * p = (e⁻², e⁻¹, 1)/(1 + e⁻¹ + e⁻²). A class weight changes nothing with one pixel
 * (Σ w l / Σ w).
 * Pixel BCE, x = 0, y = 0.3, pos_weight 2: l = −2·0.3·log ½ − 0.7·log ½ = 1.3 log 2,
 * grad = (1 + 0.3)·½ − 0.6 = 0.05.
 * Dice, x = (0, 0), class 0: p = (½, ½), I₀ = ½, P₀ = ½, G₀ = 1, D₀ = 2/2.5 = 0.8
 * (class 1 absent, not averaged): loss 0.2; ∂L/∂p = (2/2.5² − 2/2.5, 0) = (−0.48, 0),
 * grad = p ⊙ (u − p·u) = (½(−0.48 + 0.24), ½(0.24)) = (−0.12, 0.12).
 */
START_TEST(hand_cases) {
  const float x[3] = {1, 2, 3};
  const int32_t t = 2;
  const float cw[3] = {0.5f, 1.0f, 4.0f};
  float loss = -1, g[3];
  ck_assert_int_eq(msc_loss_pixel_ce(x, &t, 1, 3, 1, 1, -1, cw, &loss, g), MSC_OK);
  double z = 1 + exp(-1.0) + exp(-2.0);
  ck_assert_close(loss, log(z), 1e-6);
  ck_assert_close(g[0], exp(-2.0) / z, 1e-6);
  ck_assert_close(g[1], exp(-1.0) / z, 1e-6);
  ck_assert_close(g[2], 1.0 / z - 1.0, 1e-6);

  const float xb = 0.0f, yb = 0.3f, pw = 2.0f;
  float gb = 0;
  ck_assert_int_eq(msc_loss_pixel_bce(&xb, &yb, NULL, 1, 1, 1, 1, &pw, &loss, &gb), MSC_OK);
  ck_assert_close(loss, 1.3 * log(2.0), 1e-6);
  ck_assert_close(gb, 0.05, 1e-6);

  const float xd[2] = {0, 0};
  const int32_t td = 0;
  float gd[2];
  ck_assert_int_eq(msc_loss_dice(xd, &td, 1, 2, 1, 1, -1, &loss, gd), MSC_OK);
  ck_assert_close(loss, 0.2, 1e-6);
  ck_assert_close(gd[0], -0.12, 1e-6);
  ck_assert_close(gd[1], 0.12, 1e-6);
}
END_TEST

/* Huge logits: the log-sum-exp and the BCE forms stay finite and exact. */
START_TEST(huge_logits) {
  const float x[2] = {1e30f, -1e30f}; /* one 1×1 image, two classes: class 0 certain */
  int32_t t = 1;
  float loss = 0, g[2];
  ck_assert_int_eq(msc_loss_pixel_ce(x, &t, 1, 2, 1, 1, -1, NULL, &loss, g), MSC_OK);
  ck_assert_close(loss, 2e30, 1e-6); /* −x₁ + log Σ exp = 2·10³⁰ */
  ck_assert_close(g[0], 1.0, 1e-6);
  ck_assert_close(g[1], -1.0, 1e-6);
  /* As two BCE channels with targets 1: l₀ = 0 (certain and right), l₁ = 10³⁰ (certain
   * and wrong), mean 5·10²⁹; grad = (σ − 1)/2 = (0, −½). */
  const float y[2] = {1.0f, 1.0f};
  ck_assert_int_eq(msc_loss_pixel_bce(x, y, NULL, 1, 2, 1, 1, NULL, &loss, g), MSC_OK);
  ck_assert_close(loss, 5e29, 1e-6);
  ck_assert_close(g[0], 0.0, 1e-12);
  ck_assert_close(g[1], -0.5, 1e-6);
}
END_TEST

/* ---- (b) naive references and finite differences ----------------------------------------- */

enum { N = 2, C = 3, H = 3, W = 4, IMG = C * H * W, ALL = N * IMG, PIX = N * H * W };

static void random_logits(msci_rng *r, float *x, double *xd, int count) {
  for (int i = 0; i < count; ++i) {
    x[i] = (float)(1.5 * msci_rng_normal(r));
    xd[i] = x[i];
  }
}

/* Class indices with about one pixel in five ignored (ignore = −1 or 255). */
static void random_targets(msci_rng *r, int32_t *t, int count, int c, int ignore) {
  for (int i = 0; i < count; ++i)
    t[i] = msci_rng_next(r) % 5 == 0 ? ignore : (int32_t)(msci_rng_next(r) % (uint64_t)c);
}

typedef double (*ref_fn)(const double *x, const void *ctx);

/* Every coordinate of g (ALL floats) against central differences of f at xd. */
static void check_fd(ref_fn f, const void *ctx, double *xd, const float *g, double tol) {
  const double hstep = 1e-5;
  for (int i = 0; i < ALL; ++i) {
    double keep = xd[i];
    xd[i] = keep + hstep;
    double up = f(xd, ctx);
    xd[i] = keep - hstep;
    double down = f(xd, ctx);
    xd[i] = keep;
    double fd = (up - down) / (2 * hstep);
    ck_assert_msg(fabs(g[i] - fd) <= tol, "grad[%d] = %.9g, finite difference %.9g", i,
                  (double)g[i], fd);
  }
}

typedef struct ce_ctx {
  const int32_t *t;
  int ignore;
  const float *cw;
} ce_ctx;
static double f_ce(const double *x, const void *p) {
  const ce_ctx *c = p;
  return ref_pixel_ce(x, c->t, N, C, H, W, c->ignore, c->cw);
}
static double f_dice(const double *x, const void *p) {
  const ce_ctx *c = p;
  return ref_dice(x, c->t, N, C, H, W, c->ignore);
}
typedef struct bce_ctx {
  const float *y, *pw;
  const uint8_t *mask;
} bce_ctx;
static double f_bce(const double *x, const void *p) {
  const bce_ctx *c = p;
  return ref_pixel_bce(x, c->y, c->mask, N, C, H, W, c->pw);
}

START_TEST(pixel_ce_reference) {
  msci_rng r;
  msci_rng_seed(&r, 11, "pixel_ce");
  float x[ALL], g[ALL];
  double xd[ALL];
  int32_t t[PIX];
  const float cw[C] = {0.25f, 1.0f, 3.0f};
  const int ignores[2] = {-1, 255};
  for (int rep = 0; rep < 4; ++rep) {
    random_logits(&r, x, xd, ALL);
    int ignore = ignores[rep % 2];
    random_targets(&r, t, PIX, C, ignore);
    const float *w = rep >= 2 ? cw : NULL;
    float loss = -1;
    ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, ignore, w, &loss, g), MSC_OK);
    ce_ctx ctx = {t, ignore, w};
    ck_assert_close(loss, f_ce(xd, &ctx), 1e-6);
    check_fd(f_ce, &ctx, xd, g, 2e-6);
    for (int b = 0; b < N; ++b) /* ignored pixels get exactly 0 */
      for (int p = 0; p < H * W; ++p)
        if (t[b * H * W + p] == ignore)
          for (int j = 0; j < C; ++j) ck_assert_float_eq(g[(b * C + j) * H * W + p], 0.0f);
  }
  /* An ignore index inside [0, C) ignores that class: same as relabelling it −1. */
  random_logits(&r, x, xd, ALL);
  random_targets(&r, t, PIX, C, 0);
  float l0 = 0, l1 = 0;
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, 0, NULL, &l0, NULL), MSC_OK);
  for (int i = 0; i < PIX; ++i)
    if (t[i] == 0) t[i] = -1;
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, -1, NULL, &l1, NULL), MSC_OK);
  ck_assert_float_eq(l0, l1);
}
END_TEST

START_TEST(pixel_bce_reference) {
  msci_rng r;
  msci_rng_seed(&r, 12, "pixel_bce");
  float x[ALL], g[ALL], y[ALL];
  double xd[ALL];
  uint8_t mask[ALL];
  const float pw[C] = {1.0f, 3.0f, 0.5f};
  for (int rep = 0; rep < 4; ++rep) {
    random_logits(&r, x, xd, ALL);
    for (int i = 0; i < ALL; ++i) {
      /* hard 0/1 targets, soft ones, and masked elements holding junk (never read) */
      y[i] = i % 3 == 0 ? (float)(msci_rng_next(&r) % 2) : (float)msci_rng_uniform(&r);
      mask[i] = msci_rng_next(&r) % 4 != 0;
      if (!mask[i]) y[i] = 7.0f;
    }
    const float *p = rep % 2 ? pw : NULL;
    float loss = -1;
    ck_assert_int_eq(msc_loss_pixel_bce(x, y, mask, N, C, H, W, p, &loss, g), MSC_OK);
    bce_ctx ctx = {y, p, mask};
    ck_assert_close(loss, f_bce(xd, &ctx), 1e-6);
    check_fd(f_bce, &ctx, xd, g, 2e-6);
    for (int i = 0; i < ALL; ++i)
      if (!mask[i]) ck_assert_float_eq(g[i], 0.0f);
  }
  /* Without a mask (targets all in [0, 1] again). */
  for (int i = 0; i < ALL; ++i) y[i] = (float)msci_rng_uniform(&r);
  float loss = -1;
  ck_assert_int_eq(msc_loss_pixel_bce(x, y, NULL, N, C, H, W, pw, &loss, g), MSC_OK);
  bce_ctx ctx = {y, pw, NULL};
  ck_assert_close(loss, f_bce(xd, &ctx), 1e-6);
  check_fd(f_bce, &ctx, xd, g, 2e-6);
}
END_TEST

START_TEST(dice_reference) {
  msci_rng r;
  msci_rng_seed(&r, 13, "dice");
  float x[ALL], g[ALL];
  double xd[ALL];
  int32_t t[PIX];
  for (int rep = 0; rep < 4; ++rep) {
    random_logits(&r, x, xd, ALL);
    random_targets(&r, t, PIX, C, -1);
    if (rep == 3) /* class 2 absent from the targets: not averaged */
      for (int i = 0; i < PIX; ++i)
        if (t[i] == 2) t[i] = 1;
    float loss = -1;
    ck_assert_int_eq(msc_loss_dice(x, t, N, C, H, W, -1, &loss, g), MSC_OK);
    ce_ctx ctx = {t, -1, NULL};
    ck_assert_close(loss, f_dice(xd, &ctx), 1e-6);
    check_fd(f_dice, &ctx, xd, g, 1e-6);
    for (int b = 0; b < N; ++b)
      for (int p = 0; p < H * W; ++p)
        if (t[b * H * W + p] == -1)
          for (int j = 0; j < C; ++j) ck_assert_float_eq(g[(b * C + j) * H * W + p], 0.0f);
  }
  /* A perfect, confident prediction has a Dice loss near 0, a uniform one does not. */
  for (int b = 0; b < N; ++b)
    for (int p = 0; p < H * W; ++p)
      for (int j = 0; j < C; ++j)
        x[(b * C + j) * H * W + p] = t[b * H * W + p] == j ? 30.0f : 0.0f;
  float good = 1, flat = 0;
  ck_assert_int_eq(msc_loss_dice(x, t, N, C, H, W, -1, &good, NULL), MSC_OK);
  ck_assert_float_lt(good, 1e-6f);
  memset(x, 0, sizeof x);
  ck_assert_int_eq(msc_loss_dice(x, t, N, C, H, W, -1, &flat, NULL), MSC_OK);
  ck_assert_float_gt(flat, 0.2f);
}
END_TEST

/* ---- (c) nothing counted ------------------------------------------------------------------ */

START_TEST(nothing_counted) {
  float x[ALL], g[ALL];
  double xd[ALL];
  msci_rng r;
  msci_rng_seed(&r, 14, "none");
  random_logits(&r, x, xd, ALL);
  int32_t t[PIX];
  for (int i = 0; i < PIX; ++i) t[i] = -1;
  float loss;
  for (int i = 0; i < ALL; ++i) g[i] = 123.0f;
  loss = 5;
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, -1, NULL, &loss, g), MSC_OK);
  ck_assert_float_eq(loss, 0.0f);
  for (int i = 0; i < ALL; ++i) ck_assert_float_eq(g[i], 0.0f);
  for (int i = 0; i < ALL; ++i) g[i] = 123.0f;
  loss = 5;
  ck_assert_int_eq(msc_loss_dice(x, t, N, C, H, W, -1, &loss, g), MSC_OK);
  ck_assert_float_eq(loss, 0.0f);
  for (int i = 0; i < ALL; ++i) ck_assert_float_eq(g[i], 0.0f);
  /* Only classes of weight 0 counted: Σ w = 0, also 0 and a zero gradient. */
  for (int i = 0; i < PIX; ++i) t[i] = i % 2 ? 1 : -1;
  const float cw[C] = {1, 0, 1};
  for (int i = 0; i < ALL; ++i) g[i] = 123.0f;
  loss = 5;
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, -1, cw, &loss, g), MSC_OK);
  ck_assert_float_eq(loss, 0.0f);
  for (int i = 0; i < ALL; ++i) ck_assert_float_eq(g[i], 0.0f);
  /* BCE with every element masked. */
  float y[ALL];
  uint8_t mask[ALL];
  memset(mask, 0, sizeof mask);
  for (int i = 0; i < ALL; ++i) y[i] = 0.5f;
  for (int i = 0; i < ALL; ++i) g[i] = 123.0f;
  loss = 5;
  ck_assert_int_eq(msc_loss_pixel_bce(x, y, mask, N, C, H, W, NULL, &loss, g), MSC_OK);
  ck_assert_float_eq(loss, 0.0f);
  for (int i = 0; i < ALL; ++i) ck_assert_float_eq(g[i], 0.0f);
}
END_TEST

/* ---- (d) errors --------------------------------------------------------------------------- */

START_TEST(errors) {
  float x[ALL], g[ALL], y[ALL];
  double xd[ALL];
  msci_rng r;
  msci_rng_seed(&r, 15, "errors");
  random_logits(&r, x, xd, ALL);
  int32_t t[PIX];
  random_targets(&r, t, PIX, C, -1);
  for (int i = 0; i < ALL; ++i) {
    g[i] = 9.0f;
    y[i] = 0.5f;
  }
  float loss = 42;
  /* A target outside [0, C) other than the ignore index: image 1, y 2, x 3. */
  t[(1 * H + 2) * W + 3] = C;
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, -1, NULL, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "image 1, y 2, x 3"));
  ck_assert_int_eq(msc_loss_dice(x, t, N, C, H, W, -1, &loss, g), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "image 1, y 2, x 3"));
  for (int i = 0; i < PIX; ++i) /* every ignored pixel −2 now: −1 is no longer valid */
    if (t[i] == -1) t[i] = -2;
  t[(1 * H + 2) * W + 3] = -1; /* negative but not the ignore index */
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, -2, NULL, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "image 1, y 2, x 3"));
  t[(1 * H + 2) * W + 3] = -2;
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, -2, NULL, &loss, g), MSC_OK);
  loss = 42;
  for (int i = 0; i < ALL; ++i) g[i] = 9.0f;
  t[(1 * H + 2) * W + 3] = 0;
  const float bad_w[C] = {1, -1, 1};
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, -2, bad_w, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "class_weight[1]"));
  ck_assert_int_eq(msc_loss_pixel_bce(x, y, NULL, N, C, H, W, bad_w, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "pos_weight[1]"));
  y[5] = 1.5f; /* image 0, channel 0, y 1, x 1 */
  ck_assert_int_eq(msc_loss_pixel_bce(x, y, NULL, N, C, H, W, NULL, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "image 0, channel 0, y 1, x 1"));
  y[5] = NAN;
  ck_assert_int_eq(msc_loss_pixel_bce(x, y, NULL, N, C, H, W, NULL, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  y[5] = 0.5f;
  x[IMG + 2 * H * W + 1] = NAN; /* image 1, channel 2, y 0, x 1 */
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, -2, NULL, &loss, g), MSC_E_NUMERICAL);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "image 1, channel 2, y 0, x 1"));
  ck_assert_int_eq(msc_loss_pixel_bce(x, y, NULL, N, C, H, W, NULL, &loss, g), MSC_E_NUMERICAL);
  ck_assert_int_eq(msc_loss_dice(x, t, N, C, H, W, -2, &loss, g), MSC_E_NUMERICAL);
  x[IMG + 2 * H * W + 1] = 0.0f;
  /* NULL pointers and sizes. */
  ck_assert_int_eq(msc_loss_pixel_ce(NULL, t, N, C, H, W, -2, NULL, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loss_pixel_ce(x, NULL, N, C, H, W, -2, NULL, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, N, C, H, W, -2, NULL, NULL, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loss_pixel_bce(x, NULL, NULL, N, C, H, W, NULL, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loss_dice(x, t, N, C, 0, W, -1, &loss, g), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "h = 0"));
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, 0, C, H, W, -2, NULL, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loss_pixel_bce(x, y, NULL, N, -1, H, W, NULL, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loss_pixel_ce(x, t, INT64_MAX / 2, C, H, W, -2, NULL, &loss, g),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "too large"));
  /* Nothing was written by any failed call. */
  ck_assert_float_eq(loss, 42.0f);
  for (int i = 0; i < ALL; ++i) ck_assert_float_eq(g[i], 9.0f);
}
END_TEST

/* ---- (e) the CPU backend's loss entry ---------------------------------------------------- */

START_TEST(cpu_backend_entry) {
  const mbk_iface *be = NULL;
  mbk_ctx *ctx = NULL;
  ck_assert_int_eq(mbk_cpu_init(msci_host(), &be), MSC_OK);
  mbk_ctx_params prm = {sizeof prm, 0, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  ck_assert_int_eq(be->ctx_create(&prm, &ctx), MSC_OK);
  enum { IMGS = 4, R0 = 1 }; /* images R0 .. R0 + N − 1 of IMGS are the term's */
  msci_rng r;
  msci_rng_seed(&r, 16, "backend");
  float x[IMGS * IMG], y[ALL], want[ALL], got[IMGS * IMG];
  double xd[IMGS * IMG];
  random_logits(&r, x, xd, IMGS * IMG);
  int32_t t[PIX];
  random_targets(&r, t, PIX, C, -1);
  uint8_t mask[ALL];
  for (int i = 0; i < ALL; ++i) {
    y[i] = (float)msci_rng_uniform(&r);
    mask[i] = i % 5 != 0;
  }
  const float cw[C] = {2.0f, 0.5f, 1.0f}, pw[C] = {1.0f, 2.0f, 4.0f};
  int64_t dims[4] = {IMGS, C, H, W};
  for (int type = MBK_LOSS_PIXEL_CE; type <= MBK_LOSS_DICE; ++type) {
    mbk_tensor *tx = NULL, *tg = NULL;
    ck_assert_int_eq(be->tensor_create(ctx, &tx), MSC_OK);
    ck_assert_int_eq(be->tensor_upload(tx, 4, dims, x), MSC_OK);
    ck_assert_int_eq(be->tensor_create(ctx, &tg), MSC_OK);
    ck_assert_int_eq(be->tensor_zero(tg, 4, dims), MSC_OK);
    mbk_loss_desc d = {.type = type,
                       .n = N,
                       .row0 = R0,
                       .c = C,
                       .h = H,
                       .w = W,
                       .weight = 0.5,
                       .targets = t,
                       .ignore_index = -1,
                       .class_weight = cw,
                       .soft_targets = y,
                       .pixel_mask = mask,
                       .pos_weight = pw};
    double v = 0;
    ck_assert_int_eq(be->loss(ctx, &d, tx, NULL, &v, tg, NULL), MSC_OK);
    d.weight = 1.0; /* gradients are added: 1.5 × in all */
    ck_assert_int_eq(be->loss(ctx, &d, tx, NULL, &v, tg, NULL), MSC_OK);
    const float *xs = x + R0 * IMG;
    float l = 0;
    double ref = 0;
    if (type == MBK_LOSS_PIXEL_CE) {
      ck_assert_int_eq(msc_loss_pixel_ce(xs, t, N, C, H, W, -1, cw, &l, want), MSC_OK);
      ref = ref_pixel_ce(xd + R0 * IMG, t, N, C, H, W, -1, cw);
    } else if (type == MBK_LOSS_PIXEL_BCE) {
      ck_assert_int_eq(msc_loss_pixel_bce(xs, y, mask, N, C, H, W, pw, &l, want), MSC_OK);
      ref = ref_pixel_bce(xd + R0 * IMG, y, mask, N, C, H, W, pw);
    } else {
      ck_assert_int_eq(msc_loss_dice(xs, t, N, C, H, W, -1, &l, want), MSC_OK);
      ref = ref_dice(xd + R0 * IMG, t, N, C, H, W, -1);
    }
    ck_assert_close(v, ref, 1e-12);
    ck_assert_int_eq(be->tensor_download(tg, got, IMGS * IMG), MSC_OK);
    for (int i = 0; i < IMGS * IMG; ++i) {
      int img = i / IMG;
      float w = img >= R0 && img < R0 + N ? 1.5f * want[i - R0 * IMG] : 0.f;
      ck_assert_close(got[i], w, 1e-6);
    }
    /* The shape must match: a 2-D tensor is refused. */
    int64_t flat[2] = {IMGS, IMG};
    mbk_tensor *t2 = NULL, *g2 = NULL;
    ck_assert_int_eq(be->tensor_create(ctx, &t2), MSC_OK);
    ck_assert_int_eq(be->tensor_upload(t2, 2, flat, x), MSC_OK);
    ck_assert_int_eq(be->tensor_create(ctx, &g2), MSC_OK);
    ck_assert_int_eq(be->tensor_zero(g2, 2, flat), MSC_OK);
    ck_assert_int_eq(be->loss(ctx, &d, t2, NULL, &v, g2, NULL), MSC_E_SHAPE);
    /* Missing targets are refused by the description check. */
    d.targets = NULL;
    d.soft_targets = NULL;
    ck_assert_int_eq(be->loss(ctx, &d, tx, NULL, &v, tg, NULL), MSC_E_INVALID_ARGUMENT);
    be->tensor_free(t2);
    be->tensor_free(g2);
    be->tensor_free(tx);
    be->tensor_free(tg);
  }
  be->ctx_free(ctx);
}
END_TEST

/* ---- (f) segmentation maps scored with the confusion-matrix metrics ----------------------- */

/*
 * Two 2×3 maps, 3 classes, void 255 (docs/metrics.md, "Segmentation maps"):
 *   truth  [0 0 1 | 1 2 255]   [2 2 0 | 255 1 1]
 *   pred   [0 1 1 | 1 2 0  ]   [2 0 0 | 2   1 2]
 * 10 pixels counted; by hand M = [[2,1,0],[0,3,1],[1,0,2]] (row = truth), accuracy 7/10;
 * TP/FP/FN = 2/1/1, 3/1/1, 2/1/1: F1 = (2/3, 3/4, 2/3), IoU = (1/2, 3/5, 1/2),
 * macro F1 = 25/36, mIoU = 8/15.
 */
START_TEST(segmentation_metrics) {
  const int32_t truth[2 * 2 * 3] = {0, 0, 1, 1, 2, 255, 2, 2, 0, 255, 1, 1};
  const int32_t pred[2 * 2 * 3] = {0, 1, 1, 1, 2, 0, 2, 0, 0, 2, 1, 2};
  int64_t m[9];
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 12, 3, 255, m), MSC_OK);
  const int64_t want[9] = {2, 1, 0, 0, 3, 1, 1, 0, 2};
  for (int i = 0; i < 9; ++i) ck_assert_int_eq(m[i], want[i]);
  msc_class_metrics s;
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  double f1[3], iou[3];
  ck_assert_int_eq(msc_metrics_from_confusion(m, 3, &s, f1, iou), MSC_OK);
  ck_assert_int_eq(s.counted, 10);
  ck_assert_int_eq(s.present, 3);
  ck_assert_close(s.accuracy, 0.7, 1e-12);
  ck_assert_close(f1[0], 2.0 / 3.0, 1e-12);
  ck_assert_close(f1[1], 0.75, 1e-12);
  ck_assert_close(f1[2], 2.0 / 3.0, 1e-12);
  ck_assert_close(iou[0], 0.5, 1e-12);
  ck_assert_close(iou[1], 0.6, 1e-12);
  ck_assert_close(iou[2], 0.5, 1e-12);
  ck_assert_close(s.macro_f1, 25.0 / 36.0, 1e-12);
  ck_assert_close(s.miou, 8.0 / 15.0, 1e-12);
  /* Matrices of batches add up: image by image gives the same matrix. */
  int64_t m0[9], m1[9];
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, 6, 3, 255, m0), MSC_OK);
  ck_assert_int_eq(msc_metrics_confusion(pred + 6, truth + 6, 6, 3, 255, m1), MSC_OK);
  for (int i = 0; i < 9; ++i) ck_assert_int_eq(m0[i] + m1[i], want[i]);
  /* A truth of −1 (Sen1Floods11's no data) is ignored with ignore_index −1, as by the
   * losses; with MSC_IGNORE_NONE it is an error. */
  int32_t t2[12];
  memcpy(t2, truth, sizeof t2);
  t2[5] = -1;
  ck_assert_int_eq(msc_metrics_confusion(pred, t2, 12, 3, MSC_IGNORE_NONE, m),
                   MSC_E_INVALID_ARGUMENT);
  int64_t m2[9];
  int32_t t3[12];
  memcpy(t3, truth, sizeof t3);
  for (int i = 0; i < 12; ++i)
    if (t3[i] == 255) t3[i] = -1;
  ck_assert_int_eq(msc_metrics_confusion(pred, t3, 12, 3, -1, m2), MSC_OK);
  for (int i = 0; i < 9; ++i) ck_assert_int_eq(m2[i], want[i]);
}
END_TEST

int main(void) {
  Suite *s = suite_create("pixel_loss");
  TCase *tc = tcase_create("pixel_loss");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, hand_cases);
  tcase_add_test(tc, huge_logits);
  tcase_add_test(tc, pixel_ce_reference);
  tcase_add_test(tc, pixel_bce_reference);
  tcase_add_test(tc, dice_reference);
  tcase_add_test(tc, nothing_counted);
  tcase_add_test(tc, errors);
  tcase_add_test(tc, cpu_backend_entry);
  tcase_add_test(tc, segmentation_metrics);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
