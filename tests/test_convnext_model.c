/*
 * test_convnext_model.c — stochastic depth of ConvNeXt-V2 encoders in training
 * (train.drop_path; docs/model.md, "ConvNeXt-V2 encoders"), on a small ConvNeXt (widths
 * 8,16, depths 2,2: four blocks whose shares of the rate are 0, 1/3, 2/3 and 1):
 *  - the draw: every residual sum of a block with a share gets per-row scales that are
 *    0 or 1/keep with keep = 1 − rate·share, the first block none; the same at the same
 *    step, different at the next; both values occur;
 *  - the loss of a step with drop path differs from the step without, same weights;
 *  - the analytic gradient of a step with drop path (a fixed draw: step 0) against
 *    central finite differences of the loss, for parameters before, inside and after
 *    dropped blocks (the backward must scale the branch's gradient as the forward did).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaic/mosaic.h"
#include "common/rng.h"
#include "model/model.h"
#include "train/train.h"

#define N    8
#define BAND 3
#define SIZE 32
#define C    3

static msc_options *options(double drop_path) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  const char *json =
      "{\"modality.count\":1,\"modality.0.name\":\"s2\",\"modality.0.bands\":3,"
      "\"modality.0.size\":32,\"modality.0.encoder\":\"convnextv2_atto\","
      "\"modality.0.widths\":\"8,16\",\"modality.0.depths\":\"2,2\",\"classes\":3,"
      "\"class_names\":\"a;b;c\",\"proj.dim\":8,\"seed\":3,\"train.preset\":\"supervised\","
      "\"optim.lr\":1e-30,\"optim.weight_decay\":0,\"threads\":1,\"aug.crop\":0,"
      "\"aug.hflip\":0,\"aug.vflip\":0,\"aug.rot90\":0,\"aug.noise_std\":0,"
      "\"aug.jitter_brightness\":0,\"aug.jitter_contrast\":0}";
  ck_assert_msg(msc_options_from_json(o, json) == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_options_set_float(o, "train.drop_path", drop_path), MSC_OK);
  return o;
}

static msc_batch *make_batch(float *x, uint8_t *y) {
  msci_rng r;
  msci_rng_seed(&r, 5, "convnext model test");
  for (size_t i = 0; i < (size_t)N * BAND * SIZE * SIZE; ++i) x[i] = (float)msci_rng_normal(&r);
  for (int i = 0; i < N * C; ++i) y[i] = msci_rng_uniform(&r) < 0.5;
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s2", x, N, BAND, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_batch_set_labels(b, y, N, C), MSC_OK);
  return b;
}

/* A step at step 0 (the same draws every time); returns the loss. */
static double step0(msc_model *m, msc_batch *b) {
  m->train->step = 0;
  msc_step_result r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  msc_status st = msc_train_step(m, b, &r);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  return r.loss;
}

/* The row-scaled residual sums of the encoder, in order. */
static int adds_of(const msc_model *m, int32_t *nodes) {
  int k = 0;
  for (int32_t i = 0; i < m->graph.n_nodes; ++i) {
    const msci_node *nd = &m->graph.nodes[i];
    if (nd->desc.type == MBK_OP_ADD && nd->desc.u.add.row_scale) nodes[k++] = i;
  }
  return k;
}

static void scales_of(msc_model *m, int32_t node, float *s) {
  mbk_tensor *t = m->train->exec->drop_scale[node];
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(m->be->tensor_download(t, s, N), MSC_OK);
}

START_TEST(test_draw) {
  const double rate = 0.6;
  msc_options *o = options(rate);
  msc_model *m = NULL;
  ck_assert_msg(msc_model_create(o, &m) == MSC_OK, "%s", msc_last_error());
  float *x = malloc(sizeof(float) * N * BAND * SIZE * SIZE);
  uint8_t y[N * C];
  msc_batch *b = make_batch(x, y);
  step0(m, b);
  int32_t adds[8];
  ck_assert_int_eq(adds_of(m, adds), 4);
  ck_assert_ptr_null(m->train->exec->drop_scale[adds[0]]); /* share 0: never dropped */
  float first[3][N], s[N];
  int zeros = 0, kept = 0;
  for (int k = 1; k < 4; ++k) {
    const float share = m->graph.nodes[adds[k]].drop_frac;
    ck_assert_float_eq_tol(share, (float)k / 3.0f, 1e-6f);
    const double keep = 1.0 - rate * share;
    scales_of(m, adds[k], first[k - 1]);
    for (int r = 0; r < N; ++r) {
      const float v = first[k - 1][r];
      ck_assert_msg(v == 0.0f || fabs(v - 1.0 / keep) < 1e-6, "block %d row %d: scale %g", k, r,
                    (double)v);
      zeros += v == 0.0f, kept += v != 0.0f;
    }
  }
  ck_assert_int_gt(zeros, 0);
  ck_assert_int_gt(kept, 0);
  step0(m, b); /* the same step draws the same */
  for (int k = 1; k < 4; ++k) {
    scales_of(m, adds[k], s);
    ck_assert_int_eq(memcmp(s, first[k - 1], sizeof s), 0);
  }
  m->train->step = 1; /* the next step draws again */
  msc_step_result r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  ck_assert_int_eq(msc_train_step(m, b, &r), MSC_OK);
  int differ = 0;
  for (int k = 1; k < 4; ++k) {
    scales_of(m, adds[k], s);
    differ |= memcmp(s, first[k - 1], sizeof s) != 0;
  }
  ck_assert(differ);
  msc_batch_free(b);
  free(x);
  msc_model_free(m);
  msc_options_free(o);
  /* Out of range: a rate of 1 would divide by keep = 0. */
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "train.drop_path", 1.0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, "train.drop_path", -0.1), MSC_E_INVALID_ARGUMENT);
  msc_options_free(o);
}
END_TEST

START_TEST(test_gradient) {
  msc_options *o0 = options(0.0), *o = options(0.6);
  msc_model *m = NULL;
  ck_assert_msg(msc_model_create(o0, &m) == MSC_OK, "%s", msc_last_error());
  float *x = malloc(sizeof(float) * N * BAND * SIZE * SIZE);
  uint8_t y[N * C];
  msc_batch *b = make_batch(x, y);
  const double l0 = step0(m, b);
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);
  const double l = step0(m, b);
  ck_assert_msg(fabs(l - l0) > 1e-5, "loss %.7f with drop path, %.7f without", l, l0);
  /* The analytic gradient of the step with drop path against central differences. */
  msci_graph *g = &m->graph;
  const char *names[] = {"enc.s2.downsample_layers.0.0.weight",
                         "enc.s2.stages.0.1.dwconv.weight",
                         "enc.s2.stages.0.1.grn.gamma",
                         "enc.s2.stages.1.0.pwconv1.bias",
                         "enc.s2.stages.1.1.pwconv2.weight",
                         "enc.s2.stages.1.1.norm.weight",
                         "enc.s2.norm.bias",
                         "classifier.fc.weight"};
  enum { K = sizeof names / sizeof names[0] };
  for (size_t k = 0; k < K; ++k) {
    int32_t p = -1;
    for (int32_t i = 0; i < g->n_params; ++i)
      if (strcmp(g->params[i].name, names[k]) == 0) p = i;
    ck_assert_msg(p >= 0, "no parameter %s", names[k]);
    msci_param *pr = &g->params[p];
    int64_t count = 1;
    for (int32_t i = 0; i < pr->ndim; ++i) count *= pr->dims[i];
    float *grad = malloc((size_t)count * sizeof(float)), *w = malloc((size_t)count * sizeof *w);
    step0(m, b);
    ck_assert(m->train->exec->pgrad_valid[p]);
    ck_assert_int_eq(m->be->tensor_download(m->train->exec->pgrad[p], grad, (size_t)count),
                     MSC_OK);
    ck_assert_int_eq(m->be->tensor_download(pr->t, w, (size_t)count), MSC_OK);
    double gmax = 0;
    for (int64_t i = 0; i < count; ++i) gmax = fmax(gmax, fabs(grad[i]));
    for (int trial = 0; trial < 3; ++trial) {
      int64_t idx = (int64_t)((k * 7 + (size_t)trial * 13) % (size_t)count);
      const float keepw = w[idx];
      const double eps = 1e-3 * fmax(1.0, fabs(keepw));
      w[idx] = (float)(keepw + eps);
      const double hp = (double)w[idx] - keepw;
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, w), MSC_OK);
      const double lp = step0(m, b);
      w[idx] = (float)(keepw - eps);
      const double hm = keepw - (double)w[idx];
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, w), MSC_OK);
      const double lm = step0(m, b);
      w[idx] = keepw;
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, w), MSC_OK);
      const double fd = (lp - lm) / (hp + hm), an = grad[idx];
      ck_assert_msg(fabs(fd - an) <= 0.05 * fmax(fabs(an), 0.1 * gmax) + 1e-5,
                    "%s[%lld]: analytic %.6g, finite differences %.6g", names[k],
                    (long long)idx, an, fd);
    }
    free(grad);
    free(w);
  }
  msc_batch_free(b);
  free(x);
  msc_model_free(m);
  msc_options_free(o);
  msc_options_free(o0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("convnext_model");
  TCase *tc = tcase_create("drop path");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_draw);
  tcase_add_test(tc, test_gradient);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  const int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
