/*
 * test_moddrop.c — modality dropout (train.modality_dropout, docs/losses.md) and fused
 * inference without a modality (docs/model.md, "Missing modalities"):
 *  - the draw: deterministic per (seed, step, sample), never every modality, and its
 *    frequencies those of the documented rule;
 *  - dropout reaches only the fused head and classifier: the per-modality terms of a step
 *    are unchanged, the fused ones change, and the gradient of the whole objective under
 *    a fixed draw matches central finite differences of the loss;
 *  - learning (docs/losses.md, "Modality dropout", has the numbers): on synthetic data
 *    where S2 is the rich modality (spectra and textures, little noise: a model trained
 *    without dropout leans on it) and S1 carries the classes through texture alone under
 *    heavy noise, a model trained with dropout keeps its macro AP when S2 is absent, close
 *    to its AP with both, and clearly above a model trained without dropout, for the
 *    supervised and the mosaic1 presets.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaic/mosaic.h"
#include "model/model.h"
#include "common/rng.h"
#include "train/train.h"
#include "ref_ap.h"

#define SIZE 16
#define C    4

/* ---- synthetic data: labels recoverable from spectra and textures -------------------- */

typedef struct data {
  int64_t n;
  float *s1, *s2;
  uint8_t *y;
} data;

/* Each class c has a spectral signature sig[c] and a texture frequency freq[c]; a sample
 * holds each of its classes' patterns (random phases), plus noise:
 *   S2 band b: Σ_c sig[c][b] · (1 + 0.5 sin(freq[c] (x + y) + φ_c)) + N(0, 0.1²) — the rich
 *     modality: the class shows in the spectrum (a shortcut the encoder needs no texture
 *     filter for) and in the texture, with little noise (test_train.c's S2);
 *   S1 band b: Σ_c sin(freq[c] (x − y) + φ'_c) + N(0, 1.5²) — the same on every band, so no
 *     spectral cue: the classes are there only as textures under heavy noise, found by
 *     filters tuned to the frequencies, which an encoder learns only when it must.
 * A model trained on both fits the labels through S2 early and its S1 block stays weak;
 * S1 alone still separates the classes (a model trained with dropout reaches macro AP
 * near 1 on it). */
static void make_data(data *d, int64_t n, uint64_t seed) {
  static const float sig[C][4] = {{1.0f, 0.2f, 0.1f, 0.6f},
                                  {0.1f, 1.0f, 0.3f, 0.2f},
                                  {0.3f, 0.1f, 1.0f, 0.1f},
                                  {0.6f, 0.6f, 0.2f, 1.0f}};
  static const float freq[C] = {0.4f, 0.9f, 1.6f, 2.3f};
  msci_rng r;
  msci_rng_seed(&r, seed, "synthetic");
  d->n = n;
  d->s1 = calloc((size_t)(n * 4 * SIZE * SIZE), sizeof(float));
  d->s2 = calloc((size_t)(n * 4 * SIZE * SIZE), sizeof(float));
  d->y = calloc((size_t)(n * C), 1);
  for (int64_t i = 0; i < n; ++i) {
    int any = 0;
    for (int c = 0; c < C; ++c) {
      d->y[i * C + c] = msci_rng_uniform(&r) < 0.35;
      any |= d->y[i * C + c];
    }
    if (!any) d->y[i * C + (msci_rng_next(&r) % C)] = 1;
    for (int c = 0; c < C; ++c) {
      if (!d->y[i * C + c]) continue;
      float phase2 = (float)(6.283 * msci_rng_uniform(&r));
      float phase1 = (float)(6.283 * msci_rng_uniform(&r));
      for (int yy = 0; yy < SIZE; ++yy)
        for (int xx = 0; xx < SIZE; ++xx) {
          float tex2 = 1.0f + 0.5f * sinf(freq[c] * (float)(xx + yy) + phase2);
          float tex1 = sinf(freq[c] * (float)(xx - yy) + phase1);
          for (int b = 0; b < 4; ++b) {
            d->s2[((i * 4 + b) * SIZE + yy) * SIZE + xx] += sig[c][b] * tex2;
            d->s1[((i * 4 + b) * SIZE + yy) * SIZE + xx] += tex1;
          }
        }
    }
    for (int64_t k = 0; k < 4 * SIZE * SIZE; ++k)
      d->s2[i * 4 * SIZE * SIZE + k] += (float)(0.1 * msci_rng_normal(&r));
    for (int64_t k = 0; k < 4 * SIZE * SIZE; ++k)
      d->s1[i * 4 * SIZE * SIZE + k] += (float)(1.5 * msci_rng_normal(&r));
  }
}

static void free_data(data *d) {
  free(d->s1), free(d->s2), free(d->y);
}

static msc_batch *batch_of(const data *d, int64_t from, int64_t n, int labels) {
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(
      msc_batch_set_modality(b, "s1", d->s1 + from * 4 * SIZE * SIZE, n, 4, SIZE, SIZE),
      MSC_OK);
  ck_assert_int_eq(
      msc_batch_set_modality(b, "s2", d->s2 + from * 4 * SIZE * SIZE, n, 4, SIZE, SIZE),
      MSC_OK);
  if (labels) ck_assert_int_eq(msc_batch_set_labels(b, d->y + from * C, n, C), MSC_OK);
  return b;
}

static msc_options *tiny_options(const char *preset, double dropout) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  const char *json = "{\"modality.0.encoder\":\"tiny\",\"modality.1.encoder\":\"tiny\","
                     "\"modality.0.size\":16,\"modality.1.size\":16,\"modality.0.bands\":4,"
                     "\"modality.1.bands\":4,"
                     "\"classes\":4,\"class_names\":\"a;b;c;d\",\"proj.dim\":16,\"seed\":7}";
  ck_assert_int_eq(msc_options_from_json(o, json), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "train.preset", preset), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "train.modality_dropout", dropout), MSC_OK);
  return o;
}

static msc_model *create(const msc_options *o) {
  msc_model *m = NULL;
  msc_status st = msc_model_create(o, &m);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);
  return m;
}

static msc_status step(msc_model *m, msc_batch *b, msc_step_result *r) {
  memset(r, 0, sizeof *r);
  r->struct_size = sizeof *r;
  return msc_train_step(m, b, r);
}

static void no_augmentation(msc_options *o) {
  static const char *const off[] = {"aug.crop", "aug.hflip", "aug.vflip", "aug.rot90"};
  for (size_t i = 0; i < sizeof off / sizeof off[0]; ++i)
    ck_assert_int_eq(msc_options_set_int(o, off[i], 0), MSC_OK);
  static const char *const zero[] = {"aug.noise_std", "aug.jitter_brightness",
                                     "aug.jitter_contrast", "aug.speckle"};
  for (size_t i = 0; i < sizeof zero / sizeof zero[0]; ++i)
    ck_assert_int_eq(msc_options_set_float(o, zero[i], 0.0), MSC_OK);
}

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(test_draw) {
  msc_options *o = tiny_options("mosaic1", 0.5);
  msc_model *m = create(o);
  enum { NS = 4000 };
  uint8_t *keep = malloc(2 * NS), *again = malloc(2 * NS);
  msci_train_dropout_draw(m, NS, keep);
  msci_train_dropout_draw(m, NS, again);
  ck_assert_int_eq(memcmp(keep, again, 2 * NS), 0);
  /* The rule: each modality is dropped when u < p (0.5), both dropped are rescued by
   * keeping one chosen uniformly: P(both kept) = (1-p)² = 0.25, P(only k kept) = p(1-p)
   * + p²/2 = 0.375 each, P(none) = 0. */
  int64_t both = 0, only[2] = {0, 0};
  for (int64_t i = 0; i < NS; ++i) {
    ck_assert(keep[2 * i] || keep[2 * i + 1]);
    if (keep[2 * i] && keep[2 * i + 1])
      both++;
    else
      only[keep[2 * i] ? 0 : 1]++;
  }
  /* 4 standard deviations of a binomial over 4000 samples: about 0.03. */
  ck_assert_msg(fabs((double)both / NS - 0.25) < 0.03, "both kept %.3f", (double)both / NS);
  for (int k = 0; k < 2; ++k)
    ck_assert_msg(fabs((double)only[k] / NS - 0.375) < 0.031, "only %d kept %.3f", k,
                  (double)only[k] / NS);
  /* Another step draws again. */
  m->train->step = 1;
  msci_train_dropout_draw(m, NS, again);
  ck_assert_int_ne(memcmp(keep, again, 2 * NS), 0);
  msc_model_free(m);
  msc_options_free(o);
  /* p = 0 keeps everything. */
  o = tiny_options("mosaic1", 0.0);
  m = create(o);
  msci_train_dropout_draw(m, NS, keep);
  for (int64_t i = 0; i < 2 * NS; ++i) ck_assert(keep[i]);
  msc_model_free(m);
  msc_options_free(o);
  free(keep), free(again);
  /* Out of range. */
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "train.modality_dropout", 1.5),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, "train.modality_dropout", -0.1),
                   MSC_E_INVALID_ARGUMENT);
  msc_options_free(o);
}
END_TEST

static msc_options *gradient_options(double dropout) {
  msc_options *o = tiny_options("mosaic2", dropout);
  ck_assert_int_eq(msc_options_set_float(o, "lambda.intra", 0.5), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 1e-30), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.weight_decay", 0.0), MSC_OK);
  static const char *const taus[] = {"tau.inter", "tau.fused", "tau.views", "tau.intra"};
  for (size_t i = 0; i < 4; ++i)
    ck_assert_int_eq(msc_options_set_float(o, taus[i], 0.5), MSC_OK);
  no_augmentation(o);
  return o;
}

/* A step at step 0: the same dropout draw every time (the draw depends on the step). */
static double step0(msc_model *m, msc_batch *b, msc_step_result *r) {
  m->train->step = 0;
  msc_status st = step(m, b, r);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  return r->loss;
}

START_TEST(test_dropout_gradient) {
  msc_options *o0 = gradient_options(0.0), *o = gradient_options(0.5);
  msc_model *m = create(o0);
  data d;
  make_data(&d, 6, 3);
  msc_batch *b = batch_of(&d, 0, 6, 1);
  /* The draw of step 0 drops something (else this test would test nothing). */
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);
  uint8_t keep[12];
  m->train->step = 0;
  msci_train_dropout_draw(m, 6, keep);
  int dropped = 0;
  for (int i = 0; i < 12; ++i) dropped += !keep[i];
  ck_assert_int_gt(dropped, 0);
  /* Without and with dropout, same weights: the per-modality terms are the same, the
   * fused ones (fused MulSupCon, BCE) are not. */
  msc_step_result r0, r;
  ck_assert_int_eq(msc_train_configure(m, o0), MSC_OK);
  step0(m, b, &r0);
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);
  step0(m, b, &r);
  ck_assert(r.loss_intra > 0 && r.loss_inter > 0 && r.loss_fused > 0 && r.loss_views > 0 &&
            r.loss_bce > 0);
  ck_assert_double_eq_tol(r.loss_intra, r0.loss_intra, 1e-6 * fabs(r0.loss_intra));
  ck_assert_double_eq_tol(r.loss_inter, r0.loss_inter, 1e-6 * fabs(r0.loss_inter));
  ck_assert_double_eq_tol(r.loss_views, r0.loss_views, 1e-6 * fabs(r0.loss_views));
  ck_assert_msg(fabs(r.loss_bce - r0.loss_bce) > 1e-4, "bce %.6f vs %.6f", r.loss_bce,
                r0.loss_bce);
  ck_assert_msg(fabs(r.loss_fused - r0.loss_fused) > 1e-4, "fused %.6f vs %.6f", r.loss_fused,
                r0.loss_fused);
  /* The analytic gradient of the step with dropout against central finite differences. */
  msci_train *t = m->train;
  msci_graph *g = &m->graph;
  const char *names[] = {"enc.s1.conv1.weight",        "enc.s2.layer1.0.conv2.weight",
                         "enc.s1.layer2.0.bn2.weight", "proj_fused.fc1.weight",
                         "proj_fused.fc2.bias",        "classifier.fc.weight",
                         "classifier.fc.bias",         "proj.s2.fc1.weight"};
  enum { K = sizeof names / sizeof names[0] };
  int32_t pid[K];
  float *grad[K];
  for (size_t k = 0; k < K; ++k) {
    pid[k] = -1;
    for (int32_t i = 0; i < g->n_params; ++i)
      if (strcmp(g->params[i].name, names[k]) == 0) pid[k] = i;
    ck_assert_msg(pid[k] >= 0, "no parameter %s", names[k]);
    msci_param *pr = &g->params[pid[k]];
    int64_t count = 1;
    for (int32_t i = 0; i < pr->ndim; ++i) count *= pr->dims[i];
    grad[k] = malloc((size_t)count * sizeof(float));
    ck_assert(t->exec->pgrad_valid[pid[k]]);
    ck_assert_int_eq(m->be->tensor_download(t->exec->pgrad[pid[k]], grad[k], (size_t)count),
                     MSC_OK);
  }
  int checked = 0;
  for (size_t k = 0; k < K; ++k) {
    msci_param *pr = &g->params[pid[k]];
    int64_t count = 1;
    for (int32_t i = 0; i < pr->ndim; ++i) count *= pr->dims[i];
    float *w = malloc((size_t)count * sizeof(float));
    ck_assert_int_eq(m->be->tensor_download(pr->t, w, (size_t)count), MSC_OK);
    for (int trial = 0; trial < 3; ++trial) {
      int64_t idx = (int64_t)((k * 7 + (size_t)trial * 13) % (size_t)count);
      float keepw = w[idx];
      double eps = 1e-3 * fmax(1.0, fabs(keepw));
      w[idx] = (float)(keepw + eps);
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, w), MSC_OK);
      double lp = step0(m, b, &r);
      w[idx] = (float)(keepw - eps);
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, w), MSC_OK);
      double lm = step0(m, b, &r);
      w[idx] = keepw;
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, w), MSC_OK);
      double fd = (lp - lm) / (2 * eps), an = grad[k][idx];
      ck_assert_msg(fabs(fd - an) <= 0.1 * fmax(fabs(fd), fabs(an)) + 1e-3,
                    "%s[%lld]: analytic %.6g, finite differences %.6g", names[k],
                    (long long)idx, an, fd);
      checked++;
    }
    free(w);
    free(grad[k]);
  }
  ck_assert_int_eq(checked, 3 * K);
  msc_batch_free(b);
  free_data(&d);
  msc_model_free(m);
  msc_options_free(o);
  msc_options_free(o0);
}
END_TEST

/* A batch of one modality: k = 0 (S1) or 1 (S2). */
static msc_batch *one_modality(const data *d, int k, int64_t from, int64_t n) {
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  if (k == 0)
    ck_assert_int_eq(
        msc_batch_set_modality(b, "s1", d->s1 + from * 4 * SIZE * SIZE, n, 4, SIZE, SIZE),
        MSC_OK);
  else
    ck_assert_int_eq(
        msc_batch_set_modality(b, "s2", d->s2 + from * 4 * SIZE * SIZE, n, 4, SIZE, SIZE),
        MSC_OK);
  return b;
}

static double macro_ap(msc_model *m, msc_batch *b, const data *test) {
  const int64_t n = test->n;
  float *probs = malloc((size_t)(n * C) * sizeof(float));
  msc_status st = msc_predict(m, b, probs, (size_t)(n * C));
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  double macro = 0;
  for (int k = 0; k < C; ++k) macro += ref_average_precision(probs, test->y, n, C, k) / C;
  free(probs);
  return macro;
}

/* Trains `steps` steps of 32 of `preset` with train.modality_dropout = p, no augmentation
 * (the random resized crop rescales textures, S1's only cue here), on one thread (the same
 * sums, hence the same numbers, on any machine; and no team waiting for a thread another
 * test holds the core of), and returns macro AP on the test set: ap[0] with both
 * modalities, ap[1] without S2, ap[2] without S1. */
static void train_and_score(const char *preset, int steps, double p, const data *train,
                            const data *test, double *ap) {
  msc_options *o = tiny_options(preset, p);
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 3e-3), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "optim.warmup_steps", 10), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "optim.total_steps", steps), MSC_OK);
  no_augmentation(o);
  ck_assert_int_eq(msc_options_set_int(o, "threads", 1), MSC_OK);
  msc_model *m = create(o);
  msc_step_result r;
  for (int s = 0; s < steps; ++s) {
    msc_batch *b = batch_of(train, (s % 8) * 32, 32, 1);
    ck_assert_msg(step(m, b, &r) == MSC_OK, "step %d: %s", s, msc_last_error());
    msc_batch_free(b);
  }
  msc_batch *tb = batch_of(test, 0, test->n, 0);
  ap[0] = macro_ap(m, tb, test);
  msc_batch_free(tb);
  for (int k = 0; k < 2; ++k) {
    tb = one_modality(test, k, 0, test->n);
    ap[1 + k] = macro_ap(m, tb, test);
    msc_batch_free(tb);
  }
  msc_model_free(m);
  msc_options_free(o);
}

/* The learning claim of docs/losses.md ("Modality dropout") for one preset, with its
 * tolerances: with dropout (p = 0.5), (a) AP without S2 ≥ AP with both − close, (b) AP
 * without S2 ≥ the AP without S2 of the model trained without dropout + margin, (c) AP
 * with both ≥ the no-dropout model's − cost. */
typedef struct claim {
  const char *preset;
  int steps;
  double close, margin, cost;
} claim;

static void check_claim(const claim *cl) {
  data train, test;
  make_data(&train, 256, 11);
  make_data(&test, 96, 1011);
  double plain[3], drop[3];
  train_and_score(cl->preset, cl->steps, 0.0, &train, &test, plain);
  train_and_score(cl->preset, cl->steps, 0.5, &train, &test, drop);
  printf("%s, macro AP without dropout: both %.3f, S2 absent %.3f, S1 absent %.3f\n",
         cl->preset, plain[0], plain[1], plain[2]);
  printf("%s, macro AP, dropout 0.5:    both %.3f, S2 absent %.3f, S1 absent %.3f\n",
         cl->preset, drop[0], drop[1], drop[2]);
  ck_assert_msg(drop[1] >= drop[0] - cl->close,
                "%s: S2 absent %.3f, both %.3f (tolerance %.2f)", cl->preset, drop[1], drop[0],
                cl->close);
  ck_assert_msg(drop[1] >= plain[1] + cl->margin,
                "%s: S2 absent %.3f with dropout, %.3f without (margin %.2f)", cl->preset,
                drop[1], plain[1], cl->margin);
  ck_assert_msg(drop[0] >= plain[0] - cl->cost,
                "%s: both present %.3f with dropout, %.3f without (tolerance %.2f)", cl->preset,
                drop[0], plain[0], cl->cost);
  free_data(&train);
  free_data(&test);
}

/* Tolerances from 5 (supervised) and 6 (mosaic1) runs over data seeds 11 to 41 and model
 * seeds 7 to 9, this one among them (docs/losses.md): supervised, AP without S2 with
 * dropout 1.000 in every run, 0.769 to 0.919 without (the difference at least 0.081), both
 * present 1.000 either way; mosaic1 (360 steps: its contrastive terms train slower),
 * without S2 0.957 to 0.986 with dropout (at most 0.038 under its AP with both), 0.818 to
 * 0.933 without (the difference 0.050 to 0.150), both present 0.995 to 1.000 with dropout,
 * 1.000 without. */
START_TEST(test_learning_supervised) {
  const claim cl = {"supervised", 240, 0.02, 0.05, 0.01};
  check_claim(&cl);
}
END_TEST

START_TEST(test_learning_mosaic1) {
  const claim cl = {"mosaic1", 360, 0.06, 0.03, 0.02};
  check_claim(&cl);
}
END_TEST

int main(void) {
  Suite *s = suite_create("moddrop");
  TCase *tc = tcase_create("moddrop");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_draw);
  tcase_add_test(tc, test_dropout_gradient);
  suite_add_tcase(s, tc);
  /* Training runs long enough to learn: tagged, so that the sanitizer stage can leave it
   * out for time (CK_EXCLUDE_TAGS=learning, scripts/test-sanitize.sh). */
  tc = tcase_create("learning");
  tcase_set_tags(tc, "learning");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_learning_supervised);
  tcase_add_test(tc, test_learning_mosaic1);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
