/*
 * test_fusion.c — the inference executor's fused steps (lib/model/model_fuse.c,
 * docs/model.md "Inference fusions") against the plain forward of the same weights:
 *  - embeddings (each modality's features and projection, h_f, ẑ_f) and predictions of
 *    the tiny and the ResNet-18 encoders (BasicBlocks with and without a 1×1 downsample),
 *    and a segmentation model's per-pixel probabilities (decoder conv → BN → ReLU);
 *  - the folded weights follow the model: after a training step (new weights and running
 *    statistics) and after msc_model_copy_weights, the same executor gives the plain
 *    forward's values of the new weights, not the old ones.
 * The plain forward is the model's own with fuse_off set before its first executor.
 *
 * Tolerance: |fused − plain| <= TOL · max(1, max |plain|). Folding rounds w·γ/√(σ²+ε)
 * once more than conv-then-BN does, and the bias and residual are added in another
 * order: an error of a few ulps per layer, ~1e-7 of a layer's scale, growing through
 * ~20 layers (and divided by √(σ²+ε) where a running variance is small). Measured:
 * at most 8e-7 of the scale in these cases (ResNet-18); TOL = 1e-5 leaves a margin while a
 * wrong fold (a missing or double batch norm, a ReLU before the residual, stale weights)
 * is off by O(1).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaic/mosaic.h"
#include "model/model.h"

#define N    3
#define SIZE 16
#define C    4
#define TOL  1e-5
#define OUTN (N * 4096) /* room for any embedding or output of these models */

static float g_s1[N * 2 * SIZE * SIZE], g_s2[N * 4 * SIZE * SIZE];
static uint8_t g_y[N * C];

static void fill_data(uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < sizeof g_s1 / sizeof g_s1[0]; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    g_s1[i] = (float)((s >> 40) % 2000) / 100.0f - 10.0f;
  }
  for (size_t i = 0; i < sizeof g_s2 / sizeof g_s2[0]; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    g_s2[i] = (float)((s >> 40) % 2000) / 100.0f - 10.0f;
  }
  for (int i = 0; i < N * C; ++i) g_y[i] = (uint8_t)((i * 7 + 3) % 3 == 0);
}

static msc_batch *batch(void) {
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", g_s1, N, 2, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s2", g_s2, N, 4, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_batch_set_labels(b, g_y, N, C), MSC_OK);
  return b;
}

static msc_model *create(const char *encoder, int segmentation, int64_t seed, int fuse_off) {
  char json[512];
  snprintf(json, sizeof json,
           "{\"modality.0.encoder\":\"%s\",\"modality.1.encoder\":\"%s\","
           "\"modality.0.size\":%d,\"modality.1.size\":%d,\"modality.1.bands\":4,"
           "\"classes\":%d,\"class_names\":\"a;b;c;d\",\"proj.dim\":16,\"seed\":%lld%s}",
           encoder, encoder, SIZE, SIZE, C, (long long)seed,
           segmentation ? ",\"task\":\"segmentation\"" : "");
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_msg(msc_options_from_json(o, json) == MSC_OK, "%s", msc_last_error());
  msc_model *m = NULL;
  ck_assert_msg(msc_model_create(o, &m) == MSC_OK, "%s", msc_last_error());
  msc_options_free(o);
  m->fuse_off = fuse_off; /* before any executor exists */
  return m;
}

static void train_step(msc_model *m, msc_batch *b) {
  msc_step_result r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  ck_assert_msg(msc_train_step(m, b, &r) == MSC_OK, "%s", msc_last_error());
}

/* max |a − b| / max(1, max |b|). */
static double rel_diff(const float *a, const float *b, size_t n) {
  double d = 0, s = 1;
  for (size_t i = 0; i < n; ++i) {
    d = fmax(d, fabs((double)a[i] - (double)b[i]));
    s = fmax(s, fabs((double)b[i]));
  }
  return d / s;
}

/* The outputs compared: msc_embed's kinds, then msc_predict (-1). */
static const int32_t WHICH[] = {MSC_EMBED_MODALITY(0),
                                MSC_EMBED_MODALITY(1),
                                MSC_EMBED_MODALITY_PROJECTION(0),
                                MSC_EMBED_MODALITY_PROJECTION(1),
                                MSC_EMBED_FUSED,
                                MSC_EMBED_FUSED_PROJECTION,
                                -1};
#define N_WHICH ((int)(sizeof WHICH / sizeof WHICH[0]))

static void output(msc_model *m, msc_batch *b, int32_t which, float *out) {
  memset(out, 0, OUTN * sizeof *out);
  msc_status st = which >= 0 ? msc_embed(m, b, which, out, OUTN) : msc_predict(m, b, out, OUTN);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
}

/* Every output of fused and plain agree within TOL; returns the largest difference. */
static double expect_same(msc_model *fused, msc_model *plain, msc_batch *b, const char *what) {
  float *a = malloc(OUTN * sizeof *a), *p = malloc(OUTN * sizeof *p);
  ck_assert(a && p);
  double worst = 0;
  for (int k = 0; k < N_WHICH; ++k) {
    output(fused, b, WHICH[k], a);
    output(plain, b, WHICH[k], p);
    const double d = rel_diff(a, p, OUTN);
    ck_assert_msg(d <= TOL, "%s, output %d: fused and plain differ by %g of the scale", what,
                  (int)WHICH[k], d);
    worst = fmax(worst, d);
  }
  free(a), free(p);
  return worst;
}

static const char *const ENCODERS[] = {"tiny", "resnet18"};

START_TEST(test_fused_matches_plain) {
  fill_data(1);
  msc_batch *b = batch();
  msc_model *m = create(ENCODERS[_i], 0, 5, 0), *plain = create(ENCODERS[_i], 0, 5, 1);
  /* Two training steps first: running statistics and γ, β away from 1 and 0. */
  train_step(m, b);
  train_step(m, b);
  int64_t copied = 0;
  ck_assert_int_eq(msc_model_copy_weights(plain, m, NULL, &copied), MSC_OK);
  ck_assert_int_gt(copied, 0);
  /* The executors really differ: one has fused steps, the other none. */
  const double worst = expect_same(m, plain, b, ENCODERS[_i]);
  if (getenv("MSC_FUSION_TEST_VERBOSE")) fprintf(stderr, "%s: worst %g\n", ENCODERS[_i], worst);
  msci_exec *e = NULL;
  ck_assert_int_eq(msci_exec_acquire(m, N, 0, &e), MSC_OK);
  ck_assert_ptr_nonnull(e->fz_conv);
  /* Every encoder batch norm runs inside its conv's step, the first modality's stem
   * (graph node 0's reader) included. */
  for (int32_t i = 0; i <= m->graph.last_encoder_node; ++i)
    if (m->graph.nodes[i].desc.type == MBK_OP_BATCHNORM)
      ck_assert_msg(e->fz_skip[i] || e->fz_conv[i] >= 0, "%s: batch norm %d not fused",
                    ENCODERS[_i], (int)i);
  msci_exec_release(m, e);
  ck_assert_int_eq(msci_exec_acquire(plain, N, 0, &e), MSC_OK);
  ck_assert_ptr_null(e->fz_conv);
  msci_exec_release(plain, e);
  msc_model_free(m);
  msc_model_free(plain);
  msc_batch_free(b);
}
END_TEST

START_TEST(test_fused_follows_weights) {
  fill_data(2);
  msc_batch *b = batch();
  msc_model *m = create("tiny", 0, 9, 0), *plain = create("tiny", 0, 9, 1);
  float *before = malloc(OUTN * sizeof *before), *after = malloc(OUTN * sizeof *after);
  ck_assert(before && after);
  /* The fused executor is made and its weights folded here... */
  output(m, b, MSC_EMBED_FUSED, before);
  /* ...a training step changes the weights and running statistics... */
  train_step(m, b);
  output(m, b, MSC_EMBED_FUSED, after);
  ck_assert_msg(rel_diff(after, before, OUTN) > 100 * TOL, "the step changed nothing");
  /* ...and the same executor now computes the new weights' forward. */
  int64_t copied = 0;
  ck_assert_int_eq(msc_model_copy_weights(plain, m, NULL, &copied), MSC_OK);
  expect_same(m, plain, b, "after a training step");
  /* Weights imported into the fused model: its executors follow again. */
  msc_model *other = create("tiny", 0, 10, 1);
  train_step(other, b);
  ck_assert_int_eq(msc_model_copy_weights(m, other, NULL, &copied), MSC_OK);
  expect_same(m, other, b, "after msc_model_copy_weights");
  msc_model_free(other);
  free(before), free(after);
  msc_model_free(m);
  msc_model_free(plain);
  msc_batch_free(b);
}
END_TEST

START_TEST(test_fused_segmentation) {
  fill_data(3);
  msc_batch *b = batch();
  msc_model *m = create("tiny", 1, 4, 0), *plain = create("tiny", 1, 4, 1);
  int64_t copied = 0;
  ck_assert_int_eq(msc_model_copy_weights(plain, m, NULL, &copied), MSC_OK);
  const size_t np = (size_t)N * C * SIZE * SIZE, nc = (size_t)N * SIZE * SIZE;
  float *pa = malloc(np * sizeof *pa), *pp = malloc(np * sizeof *pp);
  int32_t *ca = malloc(nc * sizeof *ca), *cp = malloc(nc * sizeof *cp);
  ck_assert(pa && pp && ca && cp);
  ck_assert_msg(msc_predict_mask(m, b, ca, nc, pa, np) == MSC_OK, "%s", msc_last_error());
  ck_assert_msg(msc_predict_mask(plain, b, cp, nc, pp, np) == MSC_OK, "%s", msc_last_error());
  const double d = rel_diff(pa, pp, np);
  ck_assert_msg(d <= TOL, "segmentation probabilities differ by %g", d);
  free(pa), free(pp), free(ca), free(cp);
  msc_model_free(m);
  msc_model_free(plain);
  msc_batch_free(b);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fusion");
  TCase *tc = tcase_create("fusion");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, test_fused_matches_plain, 0,
                      (int)(sizeof ENCODERS / sizeof ENCODERS[0]));
  tcase_add_test(tc, test_fused_follows_weights);
  tcase_add_test(tc, test_fused_segmentation);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
