/*
 * test_backend_loss.c — the backend's loss entry (mbk_iface.loss) against the public
 * host functions (msc_loss_*), which test_loss.c checks against docs/losses.md: row offsets,
 * the gathered rows of MulSupCon, the BCE row mask, and gradients added (weighted) into
 * the gradient tensors rather than written over them. Any backend must pass this.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/registry.h"
#include "common/internal.h"
#include "common/rng.h"

static const mbk_iface *be;
static mbk_ctx *ctx;

static void setup(void) {
  ck_assert_int_eq(mbk_cpu_init(msci_host(), &be), MSC_OK);
  mbk_ctx_params p = {sizeof p, 0, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  ck_assert_int_eq(be->ctx_create(&p, &ctx), MSC_OK);
}

static void teardown(void) {
  be->ctx_free(ctx);
}

static float *random_rows(int64_t n, int64_t d, uint64_t seed) {
  msci_rng r;
  msci_rng_seed(&r, seed, "rows");
  float *x = malloc((size_t)(n * d) * sizeof(float));
  for (int64_t i = 0; i < n * d; ++i) x[i] = (float)msci_rng_normal(&r);
  return x;
}

static mbk_tensor *tensor_of(const float *x, int64_t n, int64_t d) {
  mbk_tensor *t = NULL;
  int64_t dims[2] = {n, d};
  ck_assert_int_eq(be->tensor_create(ctx, &t), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(t, 2, dims, x), MSC_OK);
  return t;
}

static mbk_tensor *zeros(int64_t n, int64_t d) {
  mbk_tensor *t = NULL;
  int64_t dims[2] = {n, d};
  ck_assert_int_eq(be->tensor_create(ctx, &t), MSC_OK);
  ck_assert_int_eq(be->tensor_zero(t, 2, dims), MSC_OK);
  return t;
}

static float *download(const mbk_tensor *t, int64_t count) {
  float *x = malloc((size_t)count * sizeof(float));
  ck_assert_int_eq(be->tensor_download(t, x, (size_t)count), MSC_OK);
  return x;
}

static void close_to(float got, float want) {
  ck_assert_msg(fabsf(got - want) <= 1e-5f * fmaxf(1.f, fabsf(want)), "got %.8g want %.8g", got,
                want);
}

START_TEST(test_ntxent_and_infonce_rows) {
  const int64_t rows = 10, n = 3, d = 5; /* NT-Xent on rows 2..7 of a 10-row tensor */
  float *x = random_rows(rows, d, 1), *y = random_rows(rows, d, 2);
  mbk_tensor *tx = tensor_of(x, rows, d), *ty = tensor_of(y, rows, d);
  mbk_tensor *gx = zeros(rows, d), *gy = zeros(rows, d);
  double v = 0;
  mbk_loss_desc nt = {
      .type = MBK_LOSS_NTXENT, .n = n, .row0 = 2, .d = d, .tau = 0.2f, .weight = 0.5};
  ck_assert_int_eq(be->loss(ctx, &nt, tx, NULL, &v, gx, NULL), MSC_OK);
  /* The same term again with weight 1: gradients accumulate to 1.5×. */
  nt.weight = 1.0;
  ck_assert_int_eq(be->loss(ctx, &nt, tx, NULL, &v, gx, NULL), MSC_OK);
  float want = 0, ga[3 * 5], gb[3 * 5];
  ck_assert_int_eq(msc_loss_ntxent(x + 2 * d, x + 5 * d, n, d, 0.2f, &want, ga, gb), MSC_OK);
  close_to((float)v, want);
  float *g = download(gx, rows * d);
  for (int64_t i = 0; i < rows * d; ++i) {
    int64_t r = i / d;
    float w = r >= 2 && r < 5   ? 1.5f * ga[i - 2 * d]
              : r >= 5 && r < 8 ? 1.5f * gb[i - 5 * d]
                                : 0.f;
    close_to(g[i], w);
  }
  free(g);
  /* InfoNCE between rows 4..6 of x and of y. */
  mbk_loss_desc nce = {
      .type = MBK_LOSS_INFONCE, .n = n, .row0 = 4, .d = d, .tau = 0.3f, .weight = 2.0};
  mbk_tensor *gx2 = zeros(rows, d);
  ck_assert_int_eq(be->loss(ctx, &nce, tx, ty, &v, gx2, gy), MSC_OK);
  ck_assert_int_eq(msc_loss_infonce(x + 4 * d, y + 4 * d, n, d, 0.3f, &want, ga, gb), MSC_OK);
  close_to((float)v, want);
  float *g1 = download(gx2, rows * d), *g2 = download(gy, rows * d);
  for (int64_t i = 0; i < rows * d; ++i) {
    int64_t r = i / d;
    int in = r >= 4 && r < 7;
    close_to(g1[i], in ? 2.f * ga[i - 4 * d] : 0.f);
    close_to(g2[i], in ? 2.f * gb[i - 4 * d] : 0.f);
  }
  free(g1), free(g2), free(x), free(y);
  be->tensor_free(tx), be->tensor_free(ty), be->tensor_free(gx), be->tensor_free(gy);
  be->tensor_free(gx2);
}
END_TEST

START_TEST(test_mulsupcon_rows_and_bce_mask) {
  const int64_t rows = 8, d = 4, c = 3;
  float *x = random_rows(rows, d, 3);
  mbk_tensor *tx = tensor_of(x, rows, d), *gx = zeros(rows, d);
  const int32_t keys[4] = {6, 1, 3, 0};
  const uint8_t ky[4 * 3] = {1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0};
  mbk_loss_desc ms = {.type = MBK_LOSS_MULSUPCON,
                      .n = 4,
                      .d = d,
                      .c = c,
                      .tau = 0.5f,
                      .per_anchor = 1,
                      .weight = 1.0,
                      .rows = keys,
                      .labels = ky};
  double v = 0;
  ck_assert_int_eq(be->loss(ctx, &ms, tx, NULL, &v, gx, NULL), MSC_OK);
  float e[4 * 4], ge[4 * 4], want = 0;
  for (int k = 0; k < 4; ++k) memcpy(e + k * d, x + keys[k] * d, (size_t)d * sizeof(float));
  ck_assert_int_eq(msc_loss_mulsupcon(e, ky, 4, d, c, 0.5f, 1, &want, ge), MSC_OK);
  close_to((float)v, want);
  float *g = download(gx, rows * d);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < d; ++j) {
      float w = 0;
      for (int k = 0; k < 4; ++k)
        if (keys[k] == r) w = ge[k * d + j];
      close_to(g[r * d + j], w);
    }
  free(g);
  /* BCE over rows 0..5 of a logits tensor; rows 2 and 4 unlabelled. */
  float *z = random_rows(rows, c, 4);
  mbk_tensor *tz = tensor_of(z, rows, c), *gz = zeros(rows, c);
  uint8_t y[6 * 3] = {1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1};
  uint8_t mask[6] = {1, 1, 0, 1, 0, 1};
  mbk_loss_desc bce = {.type = MBK_LOSS_BCE,
                       .n = 6,
                       .d = c,
                       .c = c,
                       .weight = 1.0,
                       .labels = y,
                       .row_mask = mask};
  ck_assert_int_eq(be->loss(ctx, &bce, tz, NULL, &v, gz, NULL), MSC_OK);
  /* Reference: the public BCE on the four labelled rows only (mean over 4 × 3). */
  float kept[4 * 3], gk[4 * 3];
  uint8_t yk[4 * 3];
  int kr[4] = {0, 1, 3, 5};
  for (int k = 0; k < 4; ++k) {
    memcpy(kept + k * c, z + kr[k] * c, (size_t)c * sizeof(float));
    memcpy(yk + k * c, y + kr[k] * c, (size_t)c);
  }
  ck_assert_int_eq(msc_loss_bce(kept, yk, 4, c, &want, gk), MSC_OK);
  close_to((float)v, want);
  g = download(gz, rows * c);
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < c; ++j) close_to(g[kr[k] * c + j], gk[k * c + j]);
  for (int j = 0; j < c; ++j) {
    close_to(g[2 * c + j], 0.f);
    close_to(g[4 * c + j], 0.f);
    close_to(g[7 * c + j], 0.f);
  }
  free(g), free(x), free(z);
  be->tensor_free(tx), be->tensor_free(gx), be->tensor_free(tz), be->tensor_free(gz);
}
END_TEST

START_TEST(test_errors) {
  float *x = random_rows(4, 2, 5);
  mbk_tensor *tx = tensor_of(x, 4, 2), *g = zeros(4, 2), *wrong = zeros(3, 2);
  double v;
  mbk_loss_desc nt = {.type = MBK_LOSS_NTXENT, .n = 3, .d = 2, .tau = 0.1f, .weight = 1};
  ck_assert_int_eq(be->loss(ctx, &nt, tx, NULL, &v, g, NULL), MSC_E_SHAPE); /* 6 rows > 4 */
  nt.n = 2;
  ck_assert_int_eq(be->loss(ctx, &nt, tx, NULL, &v, wrong, NULL), MSC_E_INVALID_ARGUMENT);
  nt.type = 99;
  ck_assert_int_eq(be->loss(ctx, &nt, tx, NULL, &v, g, NULL), MSC_E_INVALID_ARGUMENT);
  nt.type = MBK_LOSS_INFONCE;
  ck_assert_int_eq(be->loss(ctx, &nt, tx, NULL, &v, g, NULL), MSC_E_INVALID_ARGUMENT);
  nt.type = MBK_LOSS_MULSUPCON;
  nt.c = 2;
  ck_assert_int_eq(be->loss(ctx, &nt, tx, NULL, &v, g, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert(strlen(msc_last_error()) > 0);
  int64_t bad[2] = {0, 2};
  ck_assert_int_eq(be->tensor_zero(g, 2, bad), MSC_E_SHAPE);
  free(x);
  be->tensor_free(tx), be->tensor_free(g), be->tensor_free(wrong);
}
END_TEST

int main(void) {
  Suite *s = suite_create("backend_loss");
  TCase *tc = tcase_create("backend_loss");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_ntxent_and_infonce_rows);
  tcase_add_test(tc, test_mulsupcon_rows_and_bce_mask);
  tcase_add_test(tc, test_errors);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
