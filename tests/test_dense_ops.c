/*
 * test_dense_ops.c — the ops a dense-prediction (segmentation) decoder adds to the
 * backend contract (lib/contract/backend.h, API 5; UPSAMPLE to an output size since API
 * 6): UPSAMPLE (nearest, bilinear with align_corners=False at integer and non-integer
 * scales) and DECONV2D (PyTorch's ConvTranspose2d, weights [in, out, KH,
 * KW]), on the CPU backend, in the manner of test_cpu_ops.c:
 *  - hand-computed cases that pin the semantics independently of any reference code
 *    (PyTorch's bilinear result for [[1, 2], [3, 4]] at ×2 and 3 × 3, the weight layout of a
 *    1×1 transposed convolution, a stride-2 stamp);
 *  - forward, inference and training, against the plain references of ref_ops.c on odd,
 *    non-square, scale-1, batch > 1 and 16/17-channel shapes (16 and 17 channels make
 *    oneDNN choose blocked layouts);
 *  - every backward against the reference backward, and that reference backward against
 *    central finite differences of the reference forward in double (the reference is
 *    not trusted blindly), and the backend's backward against finite differences of the
 *    backend's own forward at random coordinates;
 *  - a chain deconv → upsample → deconv run without downloads (blocked layouts between
 *    the ops), forward and every gradient;
 *  - the frame's refusals: bad output sizes (smaller, too large, nearest at a
 *    non-integer ratio) and modes, bad deconvolution geometry, wrong
 *    shapes (weights in oneDNN's [out, in] order among them), wrong argument counts,
 *    a missing bias, and a bias gradient asked of an op without bias.
 * Tolerances as in test_cpu_ops.c: |got − want| <= TOL · max(1, max |want|).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/backend.h"
#include "backend/backend_call.h"
#include "backend/registry.h"
#include "common/internal.h"
#include "ref_ops.h"

/* Upsampling is at most four products per output (TOL_EXACT would do for nearest);
 * deconvolution sums up to C·KH·KW ≈ 300 products: float rounding ~1e-6 of the scale. */
#define TOL_FWD   1e-5
#define TOL_GRAD  1e-5
#define FD_COORDS 6
#define FD_RTOL   1e-2

#include "op_frame_test.h"

/* ---- descriptions -------------------------------------------------------------------- */

static mbk_op_desc desc4(int32_t type, int64_t n, int64_t c, int64_t h, int64_t w) {
  mbk_op_desc d;
  memset(&d, 0, sizeof d);
  d.type = type, d.ndim = 4, d.n = n, d.c = c, d.h = h, d.w = w;
  return d;
}

/* Upsampling of [n, c, h, w] to the output size oh × ow. */
static mbk_op_desc up_desc(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow,
                           int32_t mode) {
  mbk_op_desc d = desc4(MBK_OP_UPSAMPLE, n, c, h, w);
  d.u.upsample.oh = oh, d.u.upsample.ow = ow, d.u.upsample.mode = mode;
  return d;
}

static mbk_op_desc deconv_desc(const ref_deconv *p, int32_t bias) {
  mbk_op_desc d = desc4(MBK_OP_DECONV2D, p->n, p->c, p->h, p->w);
  d.u.deconv.out_c = p->oc, d.u.deconv.kh = p->kh, d.u.deconv.kw = p->kw;
  d.u.deconv.sh = p->sh, d.u.deconv.sw = p->sw, d.u.deconv.ph = p->ph, d.u.deconv.pw = p->pw;
  d.u.deconv.oph = p->oph, d.u.deconv.opw = p->opw, d.u.deconv.bias = bias;
  return d;
}

/* ================================ hand-computed ================================== */

START_TEST(test_upsample_by_hand) {
  const int64_t xd[4] = {1, 1, 2, 2}, yd[4] = {1, 1, 4, 4}, y3d[4] = {1, 1, 4, 6};
  const float x[4] = {1, 2, 3, 4};
  /* torch.nn.functional.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]),
   * scale_factor=2, mode="bilinear", align_corners=False), as PyTorch documents it. */
  const float want_bl[16] = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                             2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
  const float want_nn[24] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                             3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
  float got[24], ones[24];
  for (int i = 0; i < 24; ++i) ones[i] = 1.0f;

  mbk_op_desc d = up_desc(1, 1, 2, 2, 4, 4, MBK_UPSAMPLE_BILINEAR);
  msci_be_op *bl = op_make(&d);
  mbk_tensor *tx = t_from(4, xd, x), *ty = t_new(), *tdx = t_new();
  fwd(bl, 0, &tx, 1, ty);
  t_get("bilinear 2x2 -> 4x4", ty, 4, yd, got);
  expect_close("bilinear [[1,2],[3,4]] x2 (PyTorch's values)", got, want_bl, 16, 1e-7);
  /* dy = 1: each input gets the sum of its weights, 2 per axis by symmetry. */
  mbk_tensor *tdy = t_from(4, yd, ones);
  bwd(bl, &tdy, 1, &tdx, 1);
  t_get("bilinear dx", tdx, 4, xd, got);
  const float four[4] = {4, 4, 4, 4};
  expect_close("bilinear backward of ones", got, four, 4, 1e-7);

  d = up_desc(1, 1, 2, 2, 4, 6, MBK_UPSAMPLE_NEAREST);
  msci_be_op *nn = op_make(&d);
  fwd(nn, 1, &tx, 1, ty);
  t_get("nearest 2x2 -> 4x6", ty, 4, y3d, got);
  expect_close("nearest [[1,2],[3,4]] x(2,3)", got, want_nn, 24, 0);
  mbk_tensor *tdy3 = t_from(4, y3d, ones);
  bwd(nn, &tdy3, 1, &tdx, 1);
  t_get("nearest dx", tdx, 4, xd, got);
  const float six[4] = {6, 6, 6, 6};
  expect_close("nearest backward of ones: sh*sw each", got, six, 4, 0);

  /* A non-integer scale: F.interpolate(x, size=(3, 3), mode="bilinear",
   * align_corners=False) of [[1, 2], [3, 4]]. Per axis the scale is 2/3: output 0 reads
   * coordinate 0.5·2/3 - 0.5 < 0 (clamped: input 0), output 1 reads 0.5 (half of each),
   * output 2 reads 7/6 (both taps clamped to input 1). */
  const int64_t y33[4] = {1, 1, 3, 3};
  const float want33[9] = {1.0f, 1.5f, 2.0f, 2.0f, 2.5f, 3.0f, 3.0f, 3.5f, 4.0f};
  d = up_desc(1, 1, 2, 2, 3, 3, MBK_UPSAMPLE_BILINEAR);
  msci_be_op *b3 = op_make(&d);
  fwd(b3, 0, &tx, 1, ty);
  t_get("bilinear 2x2 -> 3x3", ty, 4, y33, got);
  expect_close("bilinear [[1,2],[3,4]] to 3x3", got, want33, 9, 1e-6);
  /* dy = 1: per axis input 0 gets 1 + 0.5, input 1 gets 0.5 + 1: 1.5 · 1.5 each. */
  mbk_tensor *tdy33 = t_from(4, y33, ones);
  bwd(b3, &tdy33, 1, &tdx, 1);
  t_get("bilinear 3x3 dx", tdx, 4, xd, got);
  const float w225[4] = {2.25f, 2.25f, 2.25f, 2.25f};
  expect_close("bilinear 2x2 -> 3x3 backward of ones", got, w225, 4, 1e-6);
}
END_TEST

START_TEST(test_deconv_by_hand) {
  float got[16];
  /* The weight layout: 1x1 kernel, 2 inputs -> 3 outputs, w[c][o] (PyTorch's
   * [in, out, kh, kw]): y[o] = 1·w[0][o] + 10·w[1][o] + b[o]. Read as [out, in] the
   * same numbers would give 21, 43, 65. */
  const ref_deconv p1 = {1, 2, 1, 1, 3, 1, 1, 1, 1, 0, 0, 0, 0};
  const int64_t x1d[4] = {1, 2, 1, 1}, w1d[4] = {2, 3, 1, 1}, b1d[1] = {3},
                y1d[4] = {1, 3, 1, 1};
  const float x1[2] = {1, 10}, w1[6] = {1, 2, 3, 4, 5, 6}, b1[3] = {0.5f, 0, -1};
  const float want1[3] = {41.5f, 52.0f, 62.0f};
  mbk_op_desc d = deconv_desc(&p1, 1);
  msci_be_op *op = op_make(&d);
  mbk_tensor *in1[3] = {t_from(4, x1d, x1), t_from(4, w1d, w1), t_from(1, b1d, b1)};
  mbk_tensor *ty = t_new();
  fwd(op, 0, in1, 3, ty);
  t_get("deconv 1x1", ty, 4, y1d, got);
  expect_close("deconv 1x1: weights are [in, out, kh, kw]", got, want1, 3, 0);
  /* dw[c][o] = x[c]·dy[o]: with dy = (1, 2, 3), [[1, 2, 3], [10, 20, 30]]. */
  const float dy1[3] = {1, 2, 3}, want_dw[6] = {1, 2, 3, 10, 20, 30};
  const float want_dx[2] = {1 + 4 + 9, 4 + 10 + 18}; /* Σ_o w[c][o]·dy[o] */
  mbk_tensor *bin[3] = {in1[0], in1[1], t_from(4, y1d, dy1)};
  mbk_tensor *bout[3] = {t_new(), t_new(), t_new()};
  bwd(op, bin, 3, bout, 3);
  t_get("deconv 1x1 dw", bout[1], 4, w1d, got);
  expect_close("deconv 1x1 dw = x dyᵀ in [in, out] order", got, want_dw, 6, 0);
  t_get("deconv 1x1 dx", bout[0], 4, x1d, got);
  expect_close("deconv 1x1 dx = w dy", got, want_dx, 2, 0);
  t_get("deconv 1x1 db", bout[2], 1, b1d, got);
  expect_close("deconv 1x1 db = dy", got, dy1, 3, 0);

  /* Stride 2, 2x2 kernel, no padding: each input stamps x·w into its own 2x2 block. */
  const ref_deconv p2 = {1, 1, 1, 2, 1, 2, 2, 2, 2, 0, 0, 0, 0};
  const int64_t x2d[4] = {1, 1, 1, 2}, w2d[4] = {1, 1, 2, 2}, y2d[4] = {1, 1, 2, 4};
  const float x2[2] = {1, 2}, w2[4] = {1, 2, 3, 4}, want2[8] = {1, 2, 2, 4, 3, 4, 6, 8};
  d = deconv_desc(&p2, 0);
  op = op_make(&d);
  mbk_tensor *in2[3] = {t_from(4, x2d, x2), t_from(4, w2d, w2), NULL};
  fwd(op, 1, in2, 3, ty);
  t_get("deconv stride 2", ty, 4, y2d, got);
  expect_close("deconv k2 s2: blocks x·w", got, want2, 8, 0);

  /* Padding crops: k3 s2 p1 op1 on 1x2 gives 2x4; y = the 3x3 stamps at columns -1 and
   * 1 (rows -1..1), cropped to rows 0..1 and columns 0..3. w = 1..9 row-major. */
  const ref_deconv p3 = {1, 1, 1, 2, 1, 3, 3, 2, 2, 1, 1, 1, 1};
  const int64_t w3d[4] = {1, 1, 3, 3}, y3d[4] = {1, 1, 2, 4};
  const float w3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  /* Row 0 of y is kernel row 1 (4 5 6), row 1 is kernel row 2 (7 8 9); column 0 gets
   * taps 1 of x0; column 1 taps 2 of x0 and 0 of x1; column 2 tap 1 of x1; column 3 tap 2
   * of x1 (x = 1, 2). */
  const float want3[8] = {5, 6 + 2 * 4, 2 * 5, 2 * 6, 8, 9 + 2 * 7, 2 * 8, 2 * 9};
  d = deconv_desc(&p3, 0);
  op = op_make(&d);
  mbk_tensor *in3[3] = {in2[0], t_from(4, w3d, w3), NULL};
  fwd(op, 1, in3, 3, ty);
  t_get("deconv k3 s2 p1 op1", ty, 4, y3d, got);
  expect_close("deconv k3 s2 p1 op1 by hand", got, want3, 8, 0);
  ck_assert_int_eq(ref_deconv_oh(&p3), 2);
  ck_assert_int_eq(ref_deconv_ow(&p3), 4);
}
END_TEST

/* ================================== upsample ===================================== */

typedef struct up_case {
  int64_t n, c, h, w, oh, ow; /* input and output sizes */
  int32_t mode;
} up_case;

static const up_case UP_CASES[] = {
    {2, 3, 5, 7, 10, 14, MBK_UPSAMPLE_NEAREST},
    {1, 4, 3, 4, 9, 8, MBK_UPSAMPLE_NEAREST},
    {2, 2, 4, 3, 4, 3, MBK_UPSAMPLE_NEAREST},
    {1, 16, 1, 1, 4, 4, MBK_UPSAMPLE_NEAREST},
    {2, 3, 5, 7, 10, 14, MBK_UPSAMPLE_BILINEAR},
    {1, 5, 3, 4, 9, 8, MBK_UPSAMPLE_BILINEAR},
    {2, 2, 4, 5, 4, 5, MBK_UPSAMPLE_BILINEAR},
    {1, 17, 6, 5, 24, 20, MBK_UPSAMPLE_BILINEAR},
    {3, 16, 7, 9, 14, 27, MBK_UPSAMPLE_BILINEAR},
    {1, 2, 1, 3, 5, 3, MBK_UPSAMPLE_BILINEAR},
    /* Non-integer scales: a ResNet decoder on 120x120 patches (4 -> 8 -> 15 -> 30),
     * odd patches (8 -> 15, 3 -> 5), ratios in (1, 2) and above 2, one axis exact. */
    {2, 3, 8, 8, 15, 15, MBK_UPSAMPLE_BILINEAR},
    {1, 4, 3, 5, 5, 7, MBK_UPSAMPLE_BILINEAR},
    {2, 16, 7, 4, 13, 11, MBK_UPSAMPLE_BILINEAR},
    {1, 3, 4, 6, 4, 17, MBK_UPSAMPLE_BILINEAR},
    {1, 2, 1, 2, 3, 5, MBK_UPSAMPLE_BILINEAR},
};

typedef struct up_ref {
  const up_case *u;
} up_ref;

static void up_ref_fwd(const void *ctx, const float *x, float *y) {
  const up_case *u = ((const up_ref *)ctx)->u;
  ref_upsample_fwd(u->n, u->c, u->h, u->w, u->oh, u->ow, u->mode == MBK_UPSAMPLE_BILINEAR, x,
                   y);
}

START_TEST(test_upsample) {
  const up_case *u = &UP_CASES[_i];
  const int bl = u->mode == MBK_UPSAMPLE_BILINEAR;
  char what[128];
  snprintf(what, sizeof what, "upsample case %d [%lld,%lld,%lld,%lld] to %lldx%lld %s", _i,
           (long long)u->n, (long long)u->c, (long long)u->h, (long long)u->w, (long long)u->oh,
           (long long)u->ow, bl ? "bilinear" : "nearest");
  rng r = rng_make(300 + (uint64_t)_i);
  const int64_t xd[4] = {u->n, u->c, u->h, u->w}, yd[4] = {u->n, u->c, u->oh, u->ow};
  const size_t nx = numel(4, xd), ny = numel(4, yd);
  float *x = fbuf(nx), *y = fbuf(ny), *yr = fbuf(ny), *dy = fbuf(ny), *dx = fbuf(nx);
  float *dxr = fbuf(nx);
  fill_unif(&r, x, nx);
  fill_unif(&r, dy, ny);
  mbk_op_desc d = up_desc(u->n, u->c, u->h, u->w, u->oh, u->ow, u->mode);
  int64_t od[MBK_MAX_DIMS];
  ck_assert_int_eq(mbk_op_out_dims(&d, od), 4);
  ck_assert(od[2] == yd[2] && od[3] == yd[3]);
  msci_be_op *op = op_make(&d);
  mbk_tensor *tx = t_from(4, xd, x), *ty = t_new(), *tdy = t_from(4, yd, dy), *tdx = t_new();

  ref_upsample_fwd(u->n, u->c, u->h, u->w, u->oh, u->ow, bl, x, yr);
  fwd(op, 0, &tx, 1, ty);
  t_get(what, ty, 4, yd, y);
  expect_close("upsample forward (inference)", y, yr, ny, TOL_FWD);
  fwd(op, 1, &tx, 1, ty);
  t_get(what, ty, 4, yd, y);
  expect_close("upsample forward (training)", y, yr, ny, TOL_FWD);
  if (u->oh == u->h && u->ow == u->w)
    expect_close("upsample by 1 is the identity", y, x, nx, 0);

  bwd(op, &tdy, 1, &tdx, 1);
  ref_upsample_bwd(u->n, u->c, u->h, u->w, u->oh, u->ow, bl, dy, dxr);
  t_get(what, tdx, 4, xd, dx);
  expect_close("upsample dx", dx, dxr, nx, TOL_GRAD);

  up_ref ur = {u};
  ref_fd_check(what, up_ref_fwd, &ur, x, nx, ny, dy, dxr, &r);
  fd_case c = {what, op, &tx, 1, ty, 4, yd, dy, tx, 4, xd, x, dx};
  fd_check(&c, &r);
}
END_TEST

/* =============================== transposed conv ================================= */

typedef struct deconv_case {
  ref_deconv p;
  int32_t bias;
} deconv_case;

static const deconv_case DECONV_CASES[] = {
    /* n, c, h, w, oc, kh, kw, sh, sw, ph, pw, oph, opw */
    {{2, 3, 5, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0}, 1},   /* the U-Net 2x up: k2 s2 */
    {{1, 5, 4, 5, 3, 3, 3, 1, 1, 1, 1, 0, 0}, 0},   /* stride 1, padding 1: same size */
    {{2, 4, 3, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1}, 1},   /* k3 s2 p1 output padding 1: 2x */
    {{3, 16, 4, 4, 8, 4, 4, 2, 2, 1, 1, 0, 0}, 1},  /* k4 s2 p1: 2x, 16 channels */
    {{2, 17, 3, 3, 16, 3, 3, 1, 1, 0, 0, 0, 0}, 0}, /* stride 1, no padding: grows by 2 */
    {{1, 2, 3, 4, 5, 3, 2, 2, 1, 1, 0, 1, 0}, 1},   /* non-square kernel, stride, padding */
    {{2, 3, 4, 4, 2, 2, 2, 2, 2, 0, 0, 1, 1}, 0},   /* output padding beyond the padding */
    {{1, 32, 5, 6, 16, 2, 2, 2, 2, 0, 0, 0, 0}, 1}, /* 32 -> 16 */
};

typedef struct deconv_ref {
  const ref_deconv *p;
  const float *x, *w, *b;
  int which; /* 0: vary x, 1: w, 2: b */
} deconv_ref;

static void deconv_ref_fwd(const void *ctx, const float *v, float *y) {
  const deconv_ref *d = ctx;
  ref_deconv2d_fwd(d->p, d->which == 0 ? v : d->x, d->which == 1 ? v : d->w,
                   d->which == 2 ? v : d->b, y);
}

START_TEST(test_deconv2d) {
  const deconv_case *dc = &DECONV_CASES[_i];
  const ref_deconv *p = &dc->p;
  char what[160];
  snprintf(what, sizeof what,
           "deconv2d case %d [%lld,%lld,%lld,%lld] -> %lld k%lldx%lld s%lldx%lld p%lldx%lld "
           "op%lldx%lld bias %d",
           _i, (long long)p->n, (long long)p->c, (long long)p->h, (long long)p->w,
           (long long)p->oc, (long long)p->kh, (long long)p->kw, (long long)p->sh,
           (long long)p->sw, (long long)p->ph, (long long)p->pw, (long long)p->oph,
           (long long)p->opw, (int)dc->bias);
  rng r = rng_make(400 + (uint64_t)_i);
  const int64_t oh = ref_deconv_oh(p), ow = ref_deconv_ow(p);
  const int64_t xd[4] = {p->n, p->c, p->h, p->w}, wd[4] = {p->c, p->oc, p->kh, p->kw};
  const int64_t bd[1] = {p->oc}, yd[4] = {p->n, p->oc, oh, ow};
  const size_t nx = numel(4, xd), nw = numel(4, wd), ny = numel(4, yd), nb = (size_t)p->oc;
  float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(nb), *y = fbuf(ny), *yr = fbuf(ny);
  float *dy = fbuf(ny), *dx = fbuf(nx), *dw = fbuf(nw), *db = fbuf(nb);
  float *dxr = fbuf(nx), *dwr = fbuf(nw), *dbr = fbuf(nb), *tmp = fbuf(nx > nw ? nx : nw);
  fill_unif(&r, x, nx);
  fill_unif(&r, w, nw);
  fill_unif(&r, b, nb);
  fill_unif(&r, dy, ny);

  mbk_op_desc d = deconv_desc(p, dc->bias);
  int64_t od[MBK_MAX_DIMS];
  ck_assert_int_eq(mbk_op_out_dims(&d, od), 4);
  ck_assert(od[1] == p->oc && od[2] == oh && od[3] == ow);
  msci_be_op *op = op_make(&d);
  mbk_tensor *tx = t_from(4, xd, x), *tw = t_from(4, wd, w);
  mbk_tensor *tb = dc->bias ? t_from(1, bd, b) : NULL, *ty = t_new();
  mbk_tensor *in[3] = {tx, tw, tb};

  ref_deconv2d_fwd(p, x, w, dc->bias ? b : NULL, yr);
  fwd(op, 0, in, 3, ty);
  t_get(what, ty, 4, yd, y);
  expect_close("deconv2d forward (inference)", y, yr, ny, TOL_FWD);
  fwd(op, 1, in, 3, ty);
  t_get(what, ty, 4, yd, y);
  expect_close("deconv2d forward (training)", y, yr, ny, TOL_FWD);

  mbk_tensor *tdy = t_from(4, yd, dy);
  mbk_tensor *tdx = t_new(), *tdw = t_new(), *tdb = dc->bias ? t_new() : NULL;
  mbk_tensor *bin[3] = {tx, tw, tdy}, *bout[3] = {tdx, tdw, tdb};
  bwd(op, bin, 3, bout, 3);
  ref_deconv2d_bwd_data(p, w, dy, dxr);
  ref_deconv2d_bwd_weights(p, x, dy, dwr);
  ref_deconv2d_bwd_bias(p, dy, dbr);
  t_get(what, tdx, 4, xd, dx);
  expect_close("deconv2d dx", dx, dxr, nx, TOL_GRAD);
  t_get(what, tdw, 4, wd, dw);
  expect_close("deconv2d dw", dw, dwr, nw, TOL_GRAD);
  if (dc->bias) {
    t_get(what, tdb, 1, bd, db);
    expect_close("deconv2d db", db, dbr, nb, TOL_GRAD);
  }

  /* One gradient at a time. */
  mbk_tensor *tdx2 = t_new(), *tdw2 = t_new();
  mbk_tensor *only_dx[3] = {tdx2, NULL, NULL}, *only_dw[3] = {NULL, tdw2, NULL};
  bwd(op, bin, 3, only_dx, 3);
  t_get(what, tdx2, 4, xd, tmp);
  expect_close("deconv2d dx alone", tmp, dxr, nx, TOL_GRAD);
  bwd(op, bin, 3, only_dw, 3);
  t_get(what, tdw2, 4, wd, tmp);
  expect_close("deconv2d dw alone", tmp, dwr, nw, TOL_GRAD);

  /* The reference's gradients against its own forward. */
  deconv_ref dr = {p, x, w, dc->bias ? b : NULL, 0};
  ref_fd_check("reference deconv2d dx", deconv_ref_fwd, &dr, x, nx, ny, dy, dxr, &r);
  dr.which = 1;
  ref_fd_check("reference deconv2d dw", deconv_ref_fwd, &dr, w, nw, ny, dy, dwr, &r);
  if (dc->bias) {
    dr.which = 2;
    ref_fd_check("reference deconv2d db", deconv_ref_fwd, &dr, b, nb, ny, dy, dbr, &r);
  }

  /* The backend's gradients against its own forward. */
  fd_case c = {what, op, in, 3, ty, 4, yd, dy, tx, 4, xd, x, dx};
  fd_check(&c, &r);
  c.var = tw, c.var_dims = wd, c.host = w, c.grad = dw;
  fd_check(&c, &r);
  if (dc->bias) {
    c.var = tb, c.var_ndim = 1, c.var_dims = bd, c.host = b, c.grad = db;
    fd_check(&c, &r);
  }
}
END_TEST

/* =================================== chain ======================================= */

/* deconv (16 -> 16, k2 s2, bias) -> bilinear x2 -> deconv (16 -> 5, k3 s1 p1): the
 * intermediate tensors stay in whatever (blocked) layouts oneDNN chose; only the end
 * results are downloaded. Backward runs the chain in reverse the same way. */
START_TEST(test_chain) {
  rng r = rng_make(500);
  const ref_deconv p1 = {2, 16, 3, 4, 16, 2, 2, 2, 2, 0, 0, 0, 0};
  const ref_deconv p2 = {2, 16, 12, 16, 5, 3, 3, 1, 1, 1, 1, 0, 0};
  const int64_t xd[4] = {2, 16, 3, 4}, w1d[4] = {16, 16, 2, 2}, b1d[1] = {16};
  const int64_t hd[4] = {2, 16, 6, 8}, ud[4] = {2, 16, 12, 16}, w2d[4] = {16, 5, 3, 3};
  const int64_t yd[4] = {2, 5, 12, 16};
  const size_t nx = numel(4, xd), nw1 = numel(4, w1d), nh = numel(4, hd), nu = numel(4, ud);
  const size_t nw2 = numel(4, w2d), ny = numel(4, yd);
  float *x = fbuf(nx), *w1 = fbuf(nw1), *b1 = fbuf(16), *w2 = fbuf(nw2), *dy = fbuf(ny);
  float *h = fbuf(nh), *u = fbuf(nu), *yr = fbuf(ny), *got = fbuf(nu > ny ? nu : ny);
  float *du = fbuf(nu), *dh = fbuf(nh), *dxr = fbuf(nx), *dw1r = fbuf(nw1), *db1r = fbuf(16);
  float *dw2r = fbuf(nw2);
  fill_unif(&r, x, nx);
  fill_unif(&r, w1, nw1);
  fill_unif(&r, b1, 16);
  fill_unif(&r, w2, nw2);
  fill_unif(&r, dy, ny);

  mbk_op_desc d1 = deconv_desc(&p1, 1),
              du_ = up_desc(2, 16, 6, 8, 12, 16, MBK_UPSAMPLE_BILINEAR);
  mbk_op_desc d2 = deconv_desc(&p2, 0);
  msci_be_op *o1 = op_make(&d1), *ou = op_make(&du_), *o2 = op_make(&d2);
  mbk_tensor *tx = t_from(4, xd, x), *tw1 = t_from(4, w1d, w1), *tb1 = t_from(1, b1d, b1);
  mbk_tensor *tw2 = t_from(4, w2d, w2), *th = t_new(), *tu = t_new(), *ty = t_new();
  mbk_tensor *in1[3] = {tx, tw1, tb1}, *in2[3] = {tu, tw2, NULL};
  fwd(o1, 1, in1, 3, th);
  fwd(ou, 1, &th, 1, tu);
  fwd(o2, 1, in2, 3, ty);

  ref_deconv2d_fwd(&p1, x, w1, b1, h);
  ref_upsample_fwd(2, 16, 6, 8, 12, 16, 1, h, u);
  ref_deconv2d_fwd(&p2, u, w2, NULL, yr);
  t_get("chain y", ty, 4, yd, got);
  expect_close("chain forward", got, yr, ny, TOL_FWD);

  mbk_tensor *tdy = t_from(4, yd, dy), *tdu = t_new(), *tdw2 = t_new(), *tdh = t_new();
  mbk_tensor *tdx = t_new(), *tdw1 = t_new(), *tdb1 = t_new();
  mbk_tensor *b2in[3] = {tu, tw2, tdy}, *b2out[3] = {tdu, tdw2, NULL};
  bwd(o2, b2in, 3, b2out, 3);
  bwd(ou, &tdu, 1, &tdh, 1);
  mbk_tensor *b1in[3] = {tx, tw1, tdh}, *b1out[3] = {tdx, tdw1, tdb1};
  bwd(o1, b1in, 3, b1out, 3);

  ref_deconv2d_bwd_data(&p2, w2, dy, du);
  ref_deconv2d_bwd_weights(&p2, u, dy, dw2r);
  ref_upsample_bwd(2, 16, 6, 8, 12, 16, 1, du, dh);
  ref_deconv2d_bwd_data(&p1, w1, dh, dxr);
  ref_deconv2d_bwd_weights(&p1, x, dh, dw1r);
  ref_deconv2d_bwd_bias(&p1, dh, db1r);
  t_get("chain dx", tdx, 4, xd, got);
  expect_close("chain dL/dx", got, dxr, nx, TOL_GRAD);
  t_get("chain dw1", tdw1, 4, w1d, got);
  expect_close("chain dL/dw1", got, dw1r, nw1, TOL_GRAD);
  t_get("chain db1", tdb1, 1, b1d, got);
  expect_close("chain dL/db1", got, db1r, 16, TOL_GRAD);
  t_get("chain dw2", tdw2, 4, w2d, got);
  expect_close("chain dL/dw2", got, dw2r, nw2, TOL_GRAD);

  /* Again with new data in the same tensors: cached conversions must notice. */
  fill_unif(&r, w1, nw1);
  t_set(tw1, 4, w1d, w1);
  fwd(o1, 1, in1, 3, th);
  fwd(ou, 1, &th, 1, tu);
  fwd(o2, 1, in2, 3, ty);
  ref_deconv2d_fwd(&p1, x, w1, b1, h);
  ref_upsample_fwd(2, 16, 6, 8, 12, 16, 1, h, u);
  ref_deconv2d_fwd(&p2, u, w2, NULL, yr);
  t_get("chain y (new w1)", ty, 4, yd, got);
  expect_close("chain forward with new w1", got, yr, ny, TOL_FWD);
}
END_TEST

/* ================================== refusals ===================================== */

static void expect_create_fails(const char *what, const mbk_op_desc *d) {
  msci_be_op *op = NULL;
  msc_clear_error();
  msc_status st = msci_be_op_create(B, CTX, d, &op);
  ck_assert_msg(st == MSC_E_INVALID_ARGUMENT, "%s: status %d (%s)", what, (int)st,
                msc_last_error());
  ck_assert_msg(op == NULL, "%s: an op came back", what);
  ck_assert_msg(msc_last_error()[0] != '\0', "%s: no message", what);
  /* The description check is the contract's, the same for every backend. */
  char why[256] = "";
  ck_assert_int_eq(mbk_op_desc_validate(d, why, sizeof why), MSC_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msc_last_error(), why) != NULL, "%s: '%s' not in '%s'", what, why,
                msc_last_error());
}

static void expect_status(const char *what, msc_status got, msc_status want,
                          const char *needle) {
  ck_assert_msg(got == want, "%s: status %d, expected %d (%s)", what, (int)got, (int)want,
                msc_last_error());
  if (needle)
    ck_assert_msg(strstr(msc_last_error(), needle) != NULL, "%s: '%s' not in '%s'", what,
                  needle, msc_last_error());
}

START_TEST(test_refusals) {
  mbk_op_desc d;
  d = up_desc(2, 3, 4, 5, 0, 10, MBK_UPSAMPLE_NEAREST);
  expect_create_fails("upsample oh = 0", &d);
  d = up_desc(2, 3, 4, 5, 8, -1, MBK_UPSAMPLE_NEAREST);
  expect_create_fails("upsample ow = -1", &d);
  d = up_desc(2, 3, 4, 5, 3, 5, MBK_UPSAMPLE_BILINEAR);
  expect_create_fails("upsample oh below h (downsampling)", &d);
  d = up_desc(2, 3, 4, 5, 4 * MBK_MAX_UPSAMPLE + 1, 10, MBK_UPSAMPLE_BILINEAR);
  expect_create_fails("upsample oh above the maximum ratio", &d);
  d = up_desc(2, 3, 4, 5, 6, 10, MBK_UPSAMPLE_NEAREST);
  expect_create_fails("upsample nearest 4 -> 6 (not a multiple)", &d);
  d = up_desc(2, 3, 4, 5, 8, 10, 0);
  expect_create_fails("upsample mode 0", &d);
  d = up_desc(2, 3, 4, 5, 8, 10, 3);
  expect_create_fails("upsample mode 3", &d);
  d = up_desc(2, 3, 4, 5, 8, 10, MBK_UPSAMPLE_NEAREST), d.ndim = 2;
  expect_create_fails("upsample ndim 2", &d);
  d = up_desc(2, 3, 0, 5, 8, 10, MBK_UPSAMPLE_NEAREST);
  expect_create_fails("upsample h = 0", &d);

  const ref_deconv p = {2, 3, 4, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1};
  d = deconv_desc(&p, 1), d.u.deconv.out_c = 0;
  expect_create_fails("deconv out_c = 0", &d);
  d = deconv_desc(&p, 1), d.u.deconv.kh = 0;
  expect_create_fails("deconv kh = 0", &d);
  d = deconv_desc(&p, 1), d.u.deconv.sw = 0;
  expect_create_fails("deconv sw = 0", &d);
  d = deconv_desc(&p, 1), d.u.deconv.ph = -1;
  expect_create_fails("deconv ph = -1", &d);
  d = deconv_desc(&p, 1), d.u.deconv.pw = 3;
  expect_create_fails("deconv padding = kernel", &d);
  d = deconv_desc(&p, 1), d.u.deconv.oph = 2;
  expect_create_fails("deconv output padding = stride", &d);
  d = deconv_desc(&p, 1), d.u.deconv.opw = -1;
  expect_create_fails("deconv output padding -1", &d);
  d = deconv_desc(&p, 1), d.ndim = 2;
  expect_create_fails("deconv ndim 2", &d);
  const ref_deconv empty = {1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 0, 0}; /* 0 - 2 + 2 = 0 */
  d = deconv_desc(&empty, 0);
  expect_create_fails("deconv with an empty output", &d);

  /* Shapes and counts at run time. */
  rng r = rng_make(600);
  float *buf = fbuf(4096);
  fill_unif(&r, buf, 4096);
  d = up_desc(2, 3, 4, 5, 8, 10, MBK_UPSAMPLE_BILINEAR);
  msci_be_op *up = op_make(&d);
  const int64_t uxd[4] = {2, 3, 4, 5}, uxbad[4] = {2, 3, 5, 4}, uyd[4] = {2, 3, 8, 10};
  const int64_t uybad[4] = {2, 3, 8, 9};
  mbk_tensor *ux = t_from(4, uxd, buf), *uxb = t_from(4, uxbad, buf), *uy = t_new();
  mbk_tensor *udy = t_from(4, uyd, buf), *udyb = t_from(4, uybad, buf), *udx = t_new();
  mbk_tensor *two[2] = {ux, ux}, *outs[2] = {uy, uy}, *none[1] = {NULL};
  msc_clear_error();
  expect_status("upsample, x 5x4 for 4x5", msci_be_op_forward(up, 1, &uxb, 1, outs, 1),
                MSC_E_SHAPE, "cpu: upsample: x has shape 2x3x5x4, expected 2x3x4x5");
  expect_status("upsample, 2 inputs", msci_be_op_forward(up, 1, two, 2, outs, 1),
                MSC_E_INVALID_ARGUMENT, "cpu: upsample forward takes 1 input and 1 output");
  expect_status("upsample, 2 outputs", msci_be_op_forward(up, 1, two, 1, outs, 2),
                MSC_E_INVALID_ARGUMENT, NULL);
  expect_status("upsample, y NULL", msci_be_op_forward(up, 1, two, 1, none, 1),
                MSC_E_INVALID_ARGUMENT, "output 0 is NULL");
  expect_status("upsample backward, dy 8x9", msci_be_op_backward(up, &udyb, 1, &udx, 1),
                MSC_E_SHAPE, "dy");
  expect_status("upsample backward, dx NULL", msci_be_op_backward(up, &udy, 1, none, 1),
                MSC_E_INVALID_ARGUMENT, "output 0 is NULL");
  /* Backward needs no forward first (nothing is saved); then forward still works. */
  expect_status("upsample backward first", msci_be_op_backward(up, &udy, 1, &udx, 1), MSC_OK,
                NULL);
  expect_status("upsample forward", msci_be_op_forward(up, 0, &ux, 1, outs, 1), MSC_OK, NULL);

  const ref_deconv q = {2, 3, 4, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1};
  d = deconv_desc(&q, 1);
  msci_be_op *dc = op_make(&d);
  mbk_op_desc dnb = deconv_desc(&q, 0);
  msci_be_op *dc_nb = op_make(&dnb);
  const int64_t xd[4] = {2, 3, 4, 5}, wd[4] = {3, 6, 3, 3}, w_onednn[4] = {6, 3, 3, 3};
  const int64_t bd[1] = {6}, bbad[1] = {3}, yd[4] = {2, 6, 8, 10}, ybad[4] = {2, 6, 7, 10};
  mbk_tensor *tx = t_from(4, xd, buf), *tw = t_from(4, wd, buf), *tb = t_from(1, bd, buf);
  mbk_tensor *twb = t_from(4, w_onednn, buf), *tbb = t_from(1, bbad, buf);
  mbk_tensor *tdy = t_from(4, yd, buf), *tdyb = t_from(4, ybad, buf), *ty = t_new();
  mbk_tensor *in[4] = {tx, tw, tb, tb}, *in_oi[3] = {tx, twb, tb}, *in_bb[3] = {tx, tw, tbb};
  mbk_tensor *in_nob[3] = {tx, tw, NULL}, *yout[1] = {ty};
  expect_status("deconv, weights in [out, in] order",
                msci_be_op_forward(dc, 1, in_oi, 3, yout, 1), MSC_E_SHAPE,
                "w has shape 6x3x3x3, expected 3x6x3x3");
  expect_status("deconv, b of 3 for 6 outputs", msci_be_op_forward(dc, 1, in_bb, 3, yout, 1),
                MSC_E_SHAPE, "b");
  expect_status("deconv with bias, b NULL", msci_be_op_forward(dc, 1, in_nob, 3, yout, 1),
                MSC_E_INVALID_ARGUMENT, "cpu: deconv2d forward: input 2 is NULL");
  expect_status("deconv, 4 inputs", msci_be_op_forward(dc, 1, in, 4, yout, 1),
                MSC_E_INVALID_ARGUMENT, "deconv2d forward takes 3 inputs and 1 output");
  expect_status("deconv without bias, b given", msci_be_op_forward(dc_nb, 1, in, 3, yout, 1),
                MSC_E_INVALID_ARGUMENT, "without bias");
  expect_status("deconv without bias, b NULL", msci_be_op_forward(dc_nb, 1, in_nob, 3, yout, 1),
                MSC_OK, NULL);
  expect_status("deconv", msci_be_op_forward(dc, 1, in, 3, yout, 1), MSC_OK, NULL);
  mbk_tensor *bin[3] = {tx, tw, tdy}, *bin_bad[3] = {tx, tw, tdyb},
             *bin_nw[3] = {tx, NULL, tdy};
  mbk_tensor *bout[3] = {t_new(), t_new(), t_new()};
  expect_status("deconv backward, dy 7x10", msci_be_op_backward(dc, bin_bad, 3, bout, 3),
                MSC_E_SHAPE, "dy");
  expect_status("deconv backward, w NULL", msci_be_op_backward(dc, bin_nw, 3, bout, 3),
                MSC_E_INVALID_ARGUMENT, "cpu: deconv2d backward: input 1 is NULL");
  expect_status("deconv backward, 2 outputs", msci_be_op_backward(dc, bin, 3, bout, 2),
                MSC_E_INVALID_ARGUMENT, "deconv2d backward takes 3 inputs and 3 outputs");
  expect_status("deconv without bias, db asked", msci_be_op_backward(dc_nb, bin, 3, bout, 3),
                MSC_E_INVALID_ARGUMENT, "db asked of an op without bias");
  expect_status("deconv backward", msci_be_op_backward(dc, bin, 3, bout, 3), MSC_OK, NULL);

  /* The contract's tables. */
  int32_t ni = 0, no = 0;
  ck_assert(mbk_op_arity(&d, 0, &ni, &no) && ni == 3 && no == 1);
  ck_assert(mbk_op_arity(&d, 1, &ni, &no) && ni == 3 && no == 3);
  ck_assert(mbk_op_arg_optional(&dnb, 0, 0, 2) && !mbk_op_arg_optional(&d, 0, 0, 2));
  ck_assert(mbk_op_arg_optional(&d, 1, 1, 0) && mbk_op_arg_optional(&d, 1, 1, 1));
  mbk_op_desc du = up_desc(1, 1, 1, 1, 1, 1, MBK_UPSAMPLE_NEAREST);
  ck_assert(mbk_op_arity(&du, 1, &ni, &no) && ni == 1 && no == 1);
  ck_assert(!mbk_op_arg_optional(&du, 1, 1, 0));
  ck_assert_str_eq(mbk_op_name(MBK_OP_UPSAMPLE), "upsample");
  ck_assert_str_eq(mbk_op_name(MBK_OP_DECONV2D), "deconv2d");
  ck_assert_int_eq(MBK_OP_UPSAMPLE, 9);
  ck_assert_int_eq(MBK_OP_DECONV2D, 10);
  ck_assert_int_eq(MBK_OP_LAYERNORM, 11); /* API 10 appended after DECONV2D */
}
END_TEST

/* ===================================== main ====================================== */

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static TCase *tcase(const char *name) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  return tc;
}

int main(void) {
  Suite *s = suite_create("dense_ops");
  TCase *tc = tcase("by hand");
  tcase_add_test(tc, test_upsample_by_hand);
  tcase_add_test(tc, test_deconv_by_hand);
  suite_add_tcase(s, tc);
  tc = tcase("upsample");
  tcase_add_loop_test(tc, test_upsample, 0, NELEM(UP_CASES));
  suite_add_tcase(s, tc);
  tc = tcase("deconv2d");
  tcase_add_loop_test(tc, test_deconv2d, 0, NELEM(DECONV_CASES));
  suite_add_tcase(s, tc);
  tc = tcase("chain");
  tcase_add_test(tc, test_chain);
  suite_add_tcase(s, tc);
  tc = tcase("refusals");
  tcase_add_test(tc, test_refusals);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  const int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
