/*
 * test_train.c — msc_train_step end to end on the tiny model:
 *  - the gradient of the whole objective (every loss term, backward through heads,
 *    fusion, residual blocks and batch norm) against central finite differences of the
 *    loss the step reports (learning rate 0, so a step changes nothing);
 *  - the presets switch terms on and off as docs/losses.md's table says;
 *  - unlabelled samples feed only the self-supervised terms;
 *  - a non-finite loss skips the update and leaves the weights bit for bit as they were;
 *    so does a BatchNorm running statistic overflowed by finite pixels of 1e19..1e25;
 *  - msc_model_save refuses, and msc_model_load refuses, a NaN or infinity in any tensor
 *    (weights, running statistics, optimiser moments);
 *  - stop-and-resume through a checkpoint gives the same weights as an uninterrupted run;
 *  - learning works: on synthetic data whose labels are recoverable from the pixels, the
 *    loss falls and held-out macro average precision is far above chance.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mosaic/mosaic.h"
#include "model/model.h"
#include "contract/optim_core.h"
#include "common/rng.h"
#include "train/train.h"
#include "model/safetensors.h"
#include "cpu/cpu_internal.h"
#include "ref_ap.h"

#define SIZE 16
#define C    4

/* ---- synthetic data: labels recoverable from spectra and textures -------------------- */

typedef struct data {
  int64_t n;
  float *s1, *s2;
  uint8_t *y;
} data;

/* Each class has a spectral signature (per S2 band) and a texture frequency; a sample
 * is the sum of its classes' patterns plus noise. S1 sees the same classes through a
 * different mix (correlated, not identical). */
static void make_data(data *d, int64_t n, uint64_t seed) {
  static const float sig[C][4] = {{1.0f, 0.2f, 0.1f, 0.6f},
                                  {0.1f, 1.0f, 0.3f, 0.2f},
                                  {0.3f, 0.1f, 1.0f, 0.1f},
                                  {0.6f, 0.6f, 0.2f, 1.0f}};
  static const float freq[C] = {0.4f, 0.9f, 1.6f, 2.3f};
  msci_rng r;
  msci_rng_seed(&r, seed, "synthetic");
  d->n = n;
  d->s1 = calloc((size_t)(n * 2 * SIZE * SIZE), sizeof(float));
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
      float phase = (float)(6.283 * msci_rng_uniform(&r));
      for (int yy = 0; yy < SIZE; ++yy)
        for (int xx = 0; xx < SIZE; ++xx) {
          float tex = 1.0f + 0.5f * sinf(freq[c] * (float)(xx + yy) + phase);
          for (int b = 0; b < 4; ++b)
            d->s2[((i * 4 + b) * SIZE + yy) * SIZE + xx] += sig[c][b] * tex;
          d->s1[((i * 2 + 0) * SIZE + yy) * SIZE + xx] += (sig[c][0] + sig[c][3]) * tex;
          d->s1[((i * 2 + 1) * SIZE + yy) * SIZE + xx] += (sig[c][1] - sig[c][2]) * tex;
        }
    }
    for (int64_t k = 0; k < 4 * SIZE * SIZE; ++k)
      d->s2[i * 4 * SIZE * SIZE + k] += (float)(0.1 * msci_rng_normal(&r));
    for (int64_t k = 0; k < 2 * SIZE * SIZE; ++k)
      d->s1[i * 2 * SIZE * SIZE + k] += (float)(0.3 * msci_rng_normal(&r));
  }
}

static void free_data(data *d) {
  free(d->s1), free(d->s2), free(d->y);
}

static msc_batch *batch_of(const data *d, int64_t from, int64_t n, int labels) {
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(
      msc_batch_set_modality(b, "s1", d->s1 + from * 2 * SIZE * SIZE, n, 2, SIZE, SIZE),
      MSC_OK);
  ck_assert_int_eq(
      msc_batch_set_modality(b, "s2", d->s2 + from * 4 * SIZE * SIZE, n, 4, SIZE, SIZE),
      MSC_OK);
  if (labels) ck_assert_int_eq(msc_batch_set_labels(b, d->y + from * C, n, C), MSC_OK);
  return b;
}

static msc_options *tiny_options(const char *preset) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  const char *json = "{\"modality.0.encoder\":\"tiny\",\"modality.1.encoder\":\"tiny\","
                     "\"modality.0.size\":16,\"modality.1.size\":16,\"modality.1.bands\":4,"
                     "\"classes\":4,\"class_names\":\"a;b;c;d\",\"proj.dim\":16,\"seed\":7}";
  ck_assert_int_eq(msc_options_from_json(o, json), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "train.preset", preset), MSC_OK);
  return o;
}

static msc_model *create(const msc_options *o) {
  msc_model *m = NULL;
  msc_status st = msc_model_create(o, &m);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  return m;
}

static msc_status step(msc_model *m, msc_batch *b, msc_step_result *r) {
  memset(r, 0, sizeof *r);
  r->struct_size = sizeof *r;
  return msc_train_step(m, b, r);
}

/* Turns every augmentation off, so that a step is a deterministic function of the
 * weights (both views identical). */
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

/* Run 0: concatenation fusion; run 1: cross-attention fusion (option fusion = xattn),
 * whose gradients reach the encoders through the token maps rather than the pooled
 * features. */
START_TEST(test_gradient_matches_finite_differences) {
  msc_options *o = tiny_options("mosaic2"); /* every term but NT-Xent ... */
  if (_i == 1) {
    ck_assert_int_eq(msc_options_set_string(o, "fusion", "xattn"), MSC_OK);
    ck_assert_int_eq(msc_options_set_int(o, "fusion.dim", 8), MSC_OK);
    ck_assert_int_eq(msc_options_set_int(o, "fusion.heads", 2), MSC_OK);
  }
  ck_assert_int_eq(msc_options_set_float(o, "lambda.intra", 0.5), MSC_OK); /* ... and it too */
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 1e-30), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.weight_decay", 0.0), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "tau.inter", 0.5), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "tau.fused", 0.5), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "tau.views", 0.5), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "tau.intra", 0.5), MSC_OK);
  no_augmentation(o);
  msc_model *m = create(o);
  data d;
  make_data(&d, 6, 3);
  msc_batch *b = batch_of(&d, 0, 6, 1);
  uint8_t flags[6] = {1, 1, 1, 1, 0, 1}; /* one unlabelled sample */
  ck_assert_int_eq(msc_batch_set_labeled(b, flags, 6), MSC_OK);
  msc_step_result r;
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  ck_assert(r.loss_intra > 0 && r.loss_inter > 0 && r.loss_fused > 0 && r.loss_views > 0 &&
            r.loss_bce > 0);
  msci_train *t = m->train;
  msci_graph *g = &m->graph;
  /* A few coordinates of parameters all along the graph. */
  static const char *const xattn_names[] = {
      "enc.s1.conv1.weight",   "enc.s2.layer2.0.conv2.weight", "fusion.s1.proj.weight",
      "fusion.s2.norm.weight", "fusion.s1.q.weight",           "fusion.s1.k.s2.weight",
      "fusion.s2.v.s1.bias",   "fusion.s2.out.weight",         "proj_fused.fc1.weight",
      "classifier.fc.weight"};
  const char *names[] = {"enc.s1.conv1.weight",
                         "enc.s2.bn1.weight",
                         "enc.s2.layer1.0.conv2.weight",
                         "enc.s1.layer2.0.downsample.0.weight",
                         "enc.s2.layer2.0.bn2.bias",
                         "proj.s1.fc1.weight",
                         "proj.s2.fc2.bias",
                         "proj_fused.fc1.weight",
                         "classifier.fc.weight",
                         "classifier.fc.bias"};
  /* The analytic gradients of that first step, before any probing step overwrites them. */
  enum { K = sizeof names / sizeof names[0] };
  if (_i == 1) memcpy(names, xattn_names, sizeof names);
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
    int32_t p = pid[k];
    msci_param *pr = &g->params[p];
    int64_t count = 1;
    for (int32_t i = 0; i < pr->ndim; ++i) count *= pr->dims[i];
    float *w = malloc((size_t)count * sizeof(float));
    ck_assert_int_eq(m->be->tensor_download(pr->t, w, (size_t)count), MSC_OK);
    for (int trial = 0; trial < 2; ++trial) {
      int64_t idx = (int64_t)((k * 7 + (size_t)trial * 13) % (size_t)count);
      float keep = w[idx];
      /* eps trades float32 rounding of the loss against the curvature of ReLU and batch
       * norm: at 1e-3 both stay well inside the tolerance for every probed parameter. */
      double eps = 1e-3 * fmax(1.0, fabs(keep));
      double lp, lm;
      w[idx] = (float)(keep + eps);
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, w), MSC_OK);
      ck_assert_int_eq(step(m, b, &r), MSC_OK);
      lp = r.loss;
      w[idx] = (float)(keep - eps);
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, w), MSC_OK);
      ck_assert_int_eq(step(m, b, &r), MSC_OK);
      lm = r.loss;
      w[idx] = keep;
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
  ck_assert_int_eq(checked, 20);
  msc_batch_free(b);
  free_data(&d);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

START_TEST(test_presets_select_terms) {
  data d;
  make_data(&d, 8, 5);
  msc_batch *b = batch_of(&d, 0, 8, 1);
  static const struct {
    const char *preset;
    int intra, inter, fused, views, bce;
  } cases[] = {{"mosaic1", 1, 1, 1, 0, 1},    {"mosaic2", 0, 1, 1, 1, 1},
               {"dual", 0, 1, 0, 0, 0},       {"simclr", 1, 0, 0, 0, 0},
               {"supervised", 0, 0, 0, 0, 1}, {"pimc", 0, 1, 0, 0, 0},
               {"iai", 1, 1, 0, 0, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    msc_options *o = tiny_options(cases[i].preset);
    /* PIMC needs a recurrence-plot modality: s1 stands in for one here. */
    if (strcmp(cases[i].preset, "pimc") == 0)
      ck_assert_int_eq(msc_options_set_string(o, "modality.0.kind", "plot"), MSC_OK);
    msc_model *m = create(o);
    msc_step_result r;
    ck_assert_msg(step(m, b, &r) == MSC_OK, "%s: %s", cases[i].preset, msc_last_error());
    ck_assert_msg((r.loss_intra > 0) == cases[i].intra, "%s intra %g", cases[i].preset,
                  r.loss_intra);
    ck_assert_msg((r.loss_inter > 0) == cases[i].inter, "%s inter %g", cases[i].preset,
                  r.loss_inter);
    ck_assert_msg((r.loss_fused > 0) == cases[i].fused, "%s fused %g", cases[i].preset,
                  r.loss_fused);
    ck_assert_msg((r.loss_views > 0) == cases[i].views, "%s views %g", cases[i].preset,
                  r.loss_views);
    ck_assert_msg((r.loss_bce > 0) == cases[i].bce, "%s bce %g", cases[i].preset, r.loss_bce);
    double want = r.loss_intra * cases[i].intra + r.loss_inter * cases[i].inter +
                  r.loss_fused * cases[i].fused + r.loss_views * cases[i].views +
                  r.loss_bce * cases[i].bce;
    ck_assert_double_eq_tol(r.loss, want, 1e-9 * fmax(1, want));
    ck_assert_int_eq(r.step, 1);
    ck_assert(r.lr > 0);
    msc_model_free(m);
    msc_options_free(o);
  }
  msc_batch_free(b);
  free_data(&d);
}
END_TEST

/* pimc is not dual under another name: without a recurrence-plot modality it is refused
 * (docs/pimc.md), where dual trains on the same model. */
START_TEST(test_pimc_needs_plots) {
  msc_options *o = tiny_options("pimc");
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(m);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "recurrence plots"));
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "s1, s2"));
  msc_options_free(o);
  o = tiny_options("dual");
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* Terms that cannot be computed are refused, naming the option (docs/losses.md). */
START_TEST(test_terms_the_model_cannot_feed) {
  msc_options *o = tiny_options("supervised");
  ck_assert_int_eq(msc_options_set_float(o, "lambda.bce", 0), MSC_OK);
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "every loss term has weight 0"));
  msc_options_free(o);
  o = tiny_options("dual");
  ck_assert_int_eq(msc_options_set_int(o, "modality.count", 1), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &m), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "lambda.inter > 0"));
  ck_assert_int_eq(msc_options_set_float(o, "lambda.inter", 0), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "lambda.bce", 1), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

START_TEST(test_unlabelled_samples) {
  data d;
  make_data(&d, 8, 6);
  msc_options *o = tiny_options("mosaic1");
  msc_model *m = create(o);
  /* No labels at all: only the self-supervised terms. */
  msc_batch *b = batch_of(&d, 0, 8, 0);
  msc_step_result r;
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  ck_assert(r.loss_intra > 0 && r.loss_inter > 0);
  ck_assert(r.loss_fused == 0 && r.loss_bce == 0);
  msc_batch_free(b);
  /* Labels with every flag 0: the same. */
  b = batch_of(&d, 0, 8, 1);
  uint8_t flags[8] = {0};
  ck_assert_int_eq(msc_batch_set_labeled(b, flags, 8), MSC_OK);
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  ck_assert(r.loss_fused == 0 && r.loss_bce == 0);
  msc_batch_free(b);
  /* Errors: too small a batch, a missing modality, labels of another class count. */
  b = batch_of(&d, 0, 1, 1);
  ck_assert_int_eq(step(m, b, &r), MSC_E_INVALID_ARGUMENT);
  msc_batch_free(b);
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s2", d.s2, 8, 4, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(step(m, b, &r), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", d.s1, 8, 2, SIZE, SIZE), MSC_OK);
  uint8_t y5[8 * 5] = {0};
  ck_assert_int_eq(msc_batch_set_labels(b, y5, 8, 5), MSC_OK);
  ck_assert_int_eq(step(m, b, &r), MSC_E_SHAPE);
  r.struct_size = 4;
  ck_assert_int_eq(msc_train_step(m, b, &r), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_train_step(NULL, b, &r), MSC_E_INVALID_ARGUMENT);
  msc_batch_free(b);
  free_data(&d);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

static int same_file(const char *a, const char *b) {
  char cmd[1000];
  snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
  return system(cmd) == 0;
}

START_TEST(test_non_finite_step_skipped) {
  data d;
  make_data(&d, 8, 7);
  msc_options *o = tiny_options("mosaic1");
  msc_model *m = create(o);
  msc_batch *b = batch_of(&d, 0, 8, 1);
  msc_step_result r;
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  char dir[] = "/tmp/msc_train_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char before[400], after[400];
  snprintf(before, sizeof before, "%s/before.safetensors", dir);
  snprintf(after, sizeof after, "%s/after.safetensors", dir);
  ck_assert_int_eq(msc_model_save(m, before), MSC_OK);
  /* Finite pixels so large that the activations overflow. */
  float *huge = malloc((size_t)(8 * 4 * SIZE * SIZE) * sizeof(float));
  for (int64_t i = 0; i < 8 * 4 * SIZE * SIZE; ++i) huge[i] = 3e38f;
  msc_batch *bad = batch_of(&d, 0, 8, 1);
  ck_assert_int_eq(msc_batch_set_modality(bad, "s2", huge, 8, 4, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(step(m, bad, &r), MSC_E_NUMERICAL);
  ck_assert_int_eq(r.skipped, 1);
  ck_assert_int_eq(r.step, 1);
  ck_assert_int_eq(msc_model_save(m, after), MSC_OK);
  ck_assert_msg(same_file(before, after), "a skipped step changed the model");
  /* Training goes on with the next batch. */
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  ck_assert_int_eq(r.step, 2);
  ck_assert_int_eq(r.skipped, 0);
  /* A NaN pixel is an input error, refused before anything runs. */
  huge[5] = NAN;
  ck_assert_int_eq(msc_batch_set_modality(bad, "s2", huge, 8, 4, SIZE, SIZE), MSC_OK);
  memset(&r, 0x5a, sizeof r);
  r.struct_size = sizeof r;
  ck_assert_int_eq(msc_train_step(m, bad, &r), MSC_E_NUMERICAL);
  ck_assert_int_eq(r.skipped, 0x5a5a5a5a); /* untouched */
  free(huge);
  msc_batch_free(bad);
  msc_batch_free(b);
  unlink(before), unlink(after), rmdir(dir);
  free_data(&d);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

START_TEST(test_resume_is_bit_identical) {
  data d;
  make_data(&d, 24, 8);
  msc_options *o = tiny_options("mosaic1");
  ck_assert_int_eq(msc_options_set_int(o, "optim.warmup_steps", 2), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "optim.total_steps", 6), MSC_OK);
  char dir[] = "/tmp/msc_resume_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char straight[400], ckpt[400], resumed[400];
  snprintf(straight, sizeof straight, "%s/straight.safetensors", dir);
  snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", dir);
  snprintf(resumed, sizeof resumed, "%s/resumed.safetensors", dir);
  msc_step_result r;
  /* Uninterrupted: 6 steps over 3 batches of 8. */
  msc_model *m = create(o);
  for (int s = 0; s < 6; ++s) {
    msc_batch *b = batch_of(&d, (s % 3) * 8, 8, 1);
    ck_assert_int_eq(step(m, b, &r), MSC_OK);
    msc_batch_free(b);
  }
  ck_assert_int_eq(msc_model_save(m, straight), MSC_OK);
  msc_model_free(m);
  /* Interrupted after 3 steps, resumed in a new model from the checkpoint. */
  m = create(o);
  for (int s = 0; s < 3; ++s) {
    msc_batch *b = batch_of(&d, (s % 3) * 8, 8, 1);
    ck_assert_int_eq(step(m, b, &r), MSC_OK);
    msc_batch_free(b);
  }
  ck_assert_int_eq(msc_model_save(m, ckpt), MSC_OK);
  msc_model_free(m);
  m = NULL;
  ck_assert_int_eq(msc_model_load(ckpt, NULL, &m), MSC_OK);
  ck_assert_int_eq(msc_model_step(m), 3);
  for (int s = 3; s < 6; ++s) {
    msc_batch *b = batch_of(&d, (s % 3) * 8, 8, 1);
    ck_assert_int_eq(step(m, b, &r), MSC_OK);
    msc_batch_free(b);
  }
  ck_assert_int_eq(r.step, 6);
  ck_assert_int_eq(msc_model_save(m, resumed), MSC_OK);
  ck_assert_msg(same_file(straight, resumed),
                "resumed training differs from the uninterrupted run");
  msc_model_free(m);
  unlink(straight), unlink(ckpt), unlink(resumed), rmdir(dir);
  free_data(&d);
  msc_options_free(o);
}
END_TEST

static float *download(msc_model *m, int32_t p) {
  msci_param *pr = &m->graph.params[p];
  int64_t count = 1;
  for (int32_t i = 0; i < pr->ndim; ++i) count *= pr->dims[i];
  float *x = malloc((size_t)count * sizeof(float));
  ck_assert_int_eq(m->be->tensor_download(pr->t, x, (size_t)count), MSC_OK);
  return x;
}

START_TEST(test_frozen_encoders) {
  /* A linear probe: encoders (weights and running statistics) stay as they are, the
   * heads learn. */
  data d;
  make_data(&d, 8, 9);
  msc_options *o = tiny_options("mosaic1");
  msc_model *m = create(o);
  msc_options *probe = tiny_options("supervised");
  ck_assert_int_eq(msc_options_set_int(probe, "train.freeze_encoders", 1), MSC_OK);
  ck_assert_int_eq(msc_train_configure(m, probe), MSC_OK);
  int32_t np = m->graph.n_params;
  float **before = calloc((size_t)np, sizeof(float *));
  for (int32_t p = 0; p < np; ++p) before[p] = download(m, p);
  msc_batch *b = batch_of(&d, 0, 8, 1);
  msc_step_result r;
  for (int s = 0; s < 2; ++s) ck_assert_int_eq(step(m, b, &r), MSC_OK);
  ck_assert(r.loss_bce > 0);
  int heads_changed = 0;
  for (int32_t p = 0; p < np; ++p) {
    msci_param *pr = &m->graph.params[p];
    int64_t count = 1;
    for (int32_t i = 0; i < pr->ndim; ++i) count *= pr->dims[i];
    float *after = download(m, p);
    int same = memcmp(before[p], after, (size_t)count * sizeof(float)) == 0;
    if (strncmp(pr->name, "enc.", 4) == 0)
      ck_assert_msg(same, "frozen %s changed", pr->name);
    else if (strncmp(pr->name, "classifier.", 11) == 0)
      heads_changed += !same;
    free(after);
    free(before[p]);
  }
  ck_assert_int_eq(heads_changed, 2); /* the classifier's weight and bias */
  free(before);
  msc_batch_free(b);
  free_data(&d);
  msc_model_free(m);
  msc_options_free(probe);
  msc_options_free(o);
}
END_TEST

START_TEST(test_reset_classifier) {
  /* The head comes back exactly as a fresh model with that seed has it, with zero
   * moments; every other weight, the step count and training go on untouched. */
  data d;
  make_data(&d, 8, 10);
  msc_options *o = tiny_options("mosaic1");
  msc_model *m = create(o);
  ck_assert_int_eq(msc_model_step(m), 0);
  ck_assert_int_eq(msc_model_step(NULL), 0);
  msc_batch *b = batch_of(&d, 0, 8, 1);
  msc_step_result r;
  for (int s = 0; s < 3; ++s) ck_assert_int_eq(step(m, b, &r), MSC_OK);
  ck_assert_int_eq(msc_model_step(m), 3);
  ck_assert_int_eq(msc_options_set_int(o, "seed", 99), MSC_OK);
  msc_model *fresh = create(o);
  int32_t np = m->graph.n_params;
  float **trained = calloc((size_t)np, sizeof(float *));
  for (int32_t p = 0; p < np; ++p) trained[p] = download(m, p);
  ck_assert_int_eq(msc_model_reset_classifier(NULL, 99), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_model_reset_classifier(m, 99), MSC_OK);
  ck_assert_int_eq(msc_model_step(m), 3);
  int reset = 0;
  for (int32_t p = 0; p < np; ++p) {
    msci_param *pr = &m->graph.params[p];
    size_t count = 1;
    for (int32_t i = 0; i < pr->ndim; ++i) count *= (size_t)pr->dims[i];
    float *now = download(m, p);
    if (strncmp(pr->name, "classifier.", 11) == 0) {
      float *want = download(fresh, p);
      ck_assert_msg(memcmp(now, want, count * sizeof(float)) == 0, "%s not reset", pr->name);
      ck_assert_msg(memcmp(now, trained[p], count * sizeof(float)) != 0, "%s unchanged",
                    pr->name);
      ck_assert_ptr_null(m->train->master[p]); /* host copies: running statistics only */
      for (size_t k = 0; k < count; ++k)
        ck_assert(m->train->m1[p][k] == 0.f && m->train->m2[p][k] == 0.f);
      free(want);
      ++reset;
    } else {
      ck_assert_msg(memcmp(now, trained[p], count * sizeof(float)) == 0, "%s changed",
                    pr->name);
    }
    free(now);
    free(trained[p]);
  }
  free(trained);
  ck_assert_int_eq(reset, 2); /* weight and bias */
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  ck_assert_int_eq(r.step, 4);
  ck_assert_int_eq(msc_model_step(m), 4);
  /* A model that never trained: nothing but the device weights to reset. */
  ck_assert_int_eq(msc_model_reset_classifier(fresh, 5), MSC_OK);
  ck_assert_int_eq(msc_model_step(fresh), 0);
  msc_batch_free(b);
  free_data(&d);
  msc_model_free(fresh);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* ---- the optimiser against a plain host reference ------------------------------------------- */

/* The reference is the host update the core ran before the update moved to the backend
 * (API 3), kept here only: every gradient downloaded, checked for finiteness, the
 * global norm summed in double tensor by tensor and element by element, the host copies
 * scaled in float, msci_optim_update on downloaded parameters with host moments, the
 * parameters uploaded. It takes the place of the backend's grad_stats (which then does
 * the whole update and reports a zero sum, so the core's clipping factor is 1) and
 * optim_update does nothing; its state below is its own, not the core's. */
typedef struct host_ref {
  const msc_model *m;
  msci_optim_cfg opt;
  int64_t step;
  float **m1, **m2; /* per parameter, n floats each, zero at the start */
  int64_t updates;  /* tensors updated */
} host_ref;

static host_ref g_ref;
static mbk_iface g_ref_iface;
static const mbk_iface *g_ref_real; /* the CPU backend's table */

static int64_t param_count(const msci_param *pr) {
  int64_t n = 1;
  for (int32_t i = 0; i < pr->ndim; ++i) n *= pr->dims[i];
  return n;
}

static double ref_global_norm(float *const *grads, const int64_t *counts, int32_t n) {
  double sumsq = 0.0;
  for (int32_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < counts[t]; ++i) sumsq += (double)grads[t][i] * (double)grads[t][i];
  return sqrt(sumsq);
}

static void ref_clip(float *const *grads, const int64_t *counts, int32_t n, double clip) {
  double scale = msci_grad_clip_scale(ref_global_norm(grads, counts, n), clip);
  if (scale == 1.0) return;
  float s = (float)scale;
  for (int32_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < counts[t]; ++i) grads[t][i] = grads[t][i] * s;
}

static msc_status ref_grad_stats(mbk_ctx *ctx, const mbk_tensor *const *t, int32_t n,
                                 int32_t *first_bad, double *sumsq) {
  (void)ctx;
  const msc_model *m = g_ref.m;
  const msci_exec *e = m->train->exec;
  const mbk_iface *be = &g_ref_iface;
  /* The core's other call, on the running statistics (finiteness only): the backend's. */
  if (n > 0 && !sumsq) {
    int grads = 0;
    for (int32_t p = 0; p < m->graph.n_params; ++p) grads |= e->pgrad[p] == t[0];
    if (!grads) return g_ref_real->grad_stats(ctx, t, n, first_bad, sumsq);
  }
  int32_t *which = malloc((size_t)n * sizeof(int32_t) + 1);
  float **g = calloc((size_t)n + 1, sizeof(float *));
  int64_t *counts = malloc((size_t)n * sizeof(int64_t) + 1);
  ck_assert(which && g && counts);
  *first_bad = -1;
  for (int32_t i = 0; i < n; ++i) {
    which[i] = -1;
    for (int32_t p = 0; p < m->graph.n_params; ++p)
      if (e->pgrad[p] == t[i]) which[i] = p;
    ck_assert_int_ge(which[i], 0);
    counts[i] = param_count(&m->graph.params[which[i]]);
    g[i] = malloc((size_t)counts[i] * sizeof(float));
    ck_assert_int_eq(be->tensor_download(t[i], g[i], (size_t)counts[i]), MSC_OK);
    for (int64_t k = 0; k < counts[i] && *first_bad < 0; ++k)
      if (!isfinite(g[i][k])) *first_bad = i;
  }
  if (*first_bad < 0) {
    if (g_ref.opt.clip_norm > 0) ref_clip(g, counts, n, g_ref.opt.clip_norm);
    double lr = msci_optim_lr(&g_ref.opt, g_ref.step);
    for (int32_t i = 0; i < n; ++i) {
      const msci_param *pr = &m->graph.params[which[i]];
      float *p = malloc((size_t)counts[i] * sizeof(float));
      ck_assert_int_eq(be->tensor_download(pr->t, p, (size_t)counts[i]), MSC_OK);
      msci_optim_update(&g_ref.opt, g_ref.step, p, g[i], g_ref.m1[which[i]], g_ref.m2[which[i]],
                        counts[i], pr->kind == MSCI_PARAM_WEIGHT, lr);
      ck_assert_int_eq(be->tensor_upload(pr->t, pr->ndim, pr->dims, p), MSC_OK);
      free(p);
      ++g_ref.updates;
    }
    ++g_ref.step;
  }
  if (sumsq) *sumsq = 0.0;
  for (int32_t i = 0; i < n; ++i) free(g[i]);
  free(g), free(which), free(counts);
  return MSC_OK;
}

static msc_status ref_optim_update(mbk_ctx *ctx, const mbk_optim_desc *d, mbk_tensor *param,
                                   const mbk_tensor *grad, mbk_tensor *m1, mbk_tensor *m2) {
  (void)ctx, (void)param, (void)grad, (void)m1, (void)m2;
  ck_assert(d->grad_scale == 1.0); /* the reference clipped already */
  return MSC_OK;
}

/* Makes m train through the reference, configured by o. */
static void use_host_reference(msc_model *m, const msc_options *o) {
  memset(&g_ref, 0, sizeof g_ref);
  g_ref.m = m;
  ck_assert_int_eq(msci_optim_cfg_parse(o, &g_ref.opt), MSC_OK);
  int32_t np = m->graph.n_params;
  g_ref.m1 = calloc((size_t)np, sizeof(float *));
  g_ref.m2 = calloc((size_t)np, sizeof(float *));
  for (int32_t p = 0; p < np; ++p) {
    g_ref.m1[p] = calloc((size_t)param_count(&m->graph.params[p]), sizeof(float));
    g_ref.m2[p] = calloc((size_t)param_count(&m->graph.params[p]), sizeof(float));
  }
  g_ref_real = m->be;
  g_ref_iface = *m->be;
  g_ref_iface.grad_stats = ref_grad_stats;
  g_ref_iface.optim_update = ref_optim_update;
  m->be = &g_ref_iface;
}

static void host_reference_free(void) {
  for (int32_t p = 0; p < g_ref.m->graph.n_params; ++p) free(g_ref.m1[p]), free(g_ref.m2[p]);
  free(g_ref.m1), free(g_ref.m2);
  memset(&g_ref, 0, sizeof g_ref);
}

/* Trains `steps` steps from step `from` over 3 batches of 8; with reset >= 0, the
 * classifier is reset (seed reset) before the last two. */
static void train_steps(msc_model *m, const data *d, int from, int steps, int reset) {
  msc_step_result r;
  for (int s = from; s < from + steps; ++s) {
    if (reset >= 0 && s == from + steps - 2) {
      ck_assert_int_eq(msc_model_reset_classifier(m, (uint64_t)reset), MSC_OK);
      if (g_ref.m == m) /* the reference's moments restart too */
        for (int32_t p = 0; p < m->graph.n_params; ++p)
          if (strncmp(m->graph.params[p].name, "classifier.", 11) == 0) {
            size_t n = (size_t)param_count(&m->graph.params[p]);
            memset(g_ref.m1[p], 0, n * sizeof(float)),
                memset(g_ref.m2[p], 0, n * sizeof(float));
          }
    }
    msc_batch *b = batch_of(d, (s % 3) * 8, 8, 1);
    msc_status st = step(m, b, &r);
    ck_assert_msg(st == MSC_OK, "step %d: %s", s, msc_last_error());
    ck_assert_int_eq(r.step, s + 1);
    msc_batch_free(b);
  }
}

/* Every parameter (running statistics included) of m bit for bit as the reference's
 * model ref, and m's moments as the reference's. */
static void expect_same_as_reference(msc_model *m, msc_model *ref, const char *what) {
  ck_assert_int_eq(msci_train_moments_to_host(m), MSC_OK);
  const msci_train *t = m->train;
  int32_t moments = 0;
  for (int32_t p = 0; p < m->graph.n_params; ++p) {
    const msci_param *pr = &m->graph.params[p];
    size_t n = (size_t)param_count(pr);
    float *a = download(m, p), *b = download(ref, p);
    ck_assert_msg(memcmp(a, b, n * sizeof(float)) == 0,
                  "%s: %s differs from the host reference", what, pr->name);
    free(a), free(b);
    if (!t->m1[p]) continue;
    int sgd = g_ref.opt.kind == MSCI_OPTIM_SGD;
    ck_assert_msg(memcmp(t->m1[p], g_ref.m1[p], n * sizeof(float)) == 0,
                  "%s: first moment of %s differs", what, pr->name);
    if (!sgd)
      ck_assert_msg(memcmp(t->m2[p], g_ref.m2[p], n * sizeof(float)) == 0,
                    "%s: second moment of %s differs", what, pr->name);
    ++moments;
  }
  ck_assert_int_gt(moments, 0);
}

START_TEST(test_update_matches_host_reference) {
  /* The one optimiser path (grad_stats, the clipping factor, optim_update on the CPU
   * backend with the moments there, moments brought back for checkpoints and around a
   * classifier reset) gives the parameters and moments of the plain host update bit for
   * bit: AdamW and SGD (with and without momentum, Nesterov), with and without clipping,
   * with weight decay, with frozen encoders, and resumed from a checkpoint. */
  static const struct {
    const char *kind;
    double momentum, clip, wd;
    int nesterov, frozen;
  } cfgs[] = {
      {"adamw", 0.9, 0.5, 0.01, 0, 0}, /* clips: the norm is above 0.5 */
      {"adamw", 0.9, 0.0, 0.05, 0, 0}, {"adamw", 0.9, 0.3, 0.01, 0, 1},
      {"sgd", 0.9, 0.5, 0.01, 0, 0},   {"sgd", 0.9, 1.0, 0.001, 1, 0},
      {"sgd", 0.0, 0.0, 0.01, 0, 0},
  };
  data d;
  make_data(&d, 24, 11);
  char dir[] = "/tmp/msc_onbe_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char ckpt[400];
  snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", dir);
  for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; ++c) {
    char what[96];
    snprintf(what, sizeof what, "%s momentum %g nesterov %d clip %g wd %g frozen %d",
             cfgs[c].kind, cfgs[c].momentum, cfgs[c].nesterov, cfgs[c].clip, cfgs[c].wd,
             cfgs[c].frozen);
    msc_options *o = tiny_options("mosaic1");
    ck_assert_int_eq(msc_options_set_string(o, "optim.kind", cfgs[c].kind), MSC_OK);
    ck_assert_int_eq(msc_options_set_float(o, "optim.momentum", cfgs[c].momentum), MSC_OK);
    ck_assert_int_eq(msc_options_set_int(o, "optim.nesterov", cfgs[c].nesterov), MSC_OK);
    ck_assert_int_eq(msc_options_set_float(o, "optim.weight_decay", cfgs[c].wd), MSC_OK);
    ck_assert_int_eq(msc_options_set_float(o, "optim.clip_norm", cfgs[c].clip), MSC_OK);
    ck_assert_int_eq(msc_options_set_int(o, "optim.warmup_steps", 2), MSC_OK);
    ck_assert_int_eq(msc_options_set_int(o, "optim.total_steps", 6), MSC_OK);
    ck_assert_int_eq(msc_options_set_int(o, "train.freeze_encoders", cfgs[c].frozen), MSC_OK);
    /* The reference: 6 steps, the classifier reset before the last two. */
    msc_model *ref = create(o);
    use_host_reference(ref, o);
    train_steps(ref, &d, 0, 6, 5);
    ck_assert_int_gt(g_ref.updates, 0);
    /* The library's path, checkpointed after 3 steps. */
    msc_model *m = create(o);
    train_steps(m, &d, 0, 3, -1);
    ck_assert_int_eq(msc_model_save(m, ckpt), MSC_OK);
    train_steps(m, &d, 3, 3, 5);
    expect_same_as_reference(m, ref, what);
    msc_model_free(m);
    /* Resumed from the checkpoint in a new model. */
    m = NULL;
    ck_assert_int_eq(msc_model_load(ckpt, NULL, &m), MSC_OK);
    train_steps(m, &d, 3, 3, 5);
    expect_same_as_reference(m, ref, what);
    msc_model_free(m);
    host_reference_free();
    msc_model_free(ref);
    msc_options_free(o);
  }
  unlink(ckpt), rmdir(dir);
  free_data(&d);
}
END_TEST

/* grad_stats that first writes a NaN into the third gradient it is given. */
static mbk_iface g_poison_iface;
static const mbk_iface *g_poison_real;
static int32_t g_poison_param; /* the parameter whose gradient was poisoned */
static const msc_model *g_poison_model;

static msc_status poisoned_grad_stats(mbk_ctx *ctx, const mbk_tensor *const *t, int32_t n,
                                      int32_t *first_bad, double *sumsq) {
  ck_assert_int_ge(n, 3);
  mbk_tensor *g = (mbk_tensor *)t[2];
  ((float *)g->data)[0] = NAN; /* a plain CPU tensor: its first logical element */
  const msci_exec *e = g_poison_model->train->exec;
  for (int32_t p = 0; p < g_poison_model->graph.n_params; ++p)
    if (e->pgrad[p] == g) g_poison_param = p;
  return g_poison_real->grad_stats(ctx, t, n, first_bad, sumsq);
}

START_TEST(test_non_finite_gradient_skipped) {
  /* A NaN in one gradient (the loss finite): the step is skipped with MSC_E_NUMERICAL
   * naming that parameter, and the weights, running statistics and moments stay as
   * they were; training goes on. With and without clipping (grad_stats with and
   * without the sum). */
  for (int clip = 0; clip <= 1; ++clip) {
    data d;
    make_data(&d, 8, 7);
    msc_options *o = tiny_options("mosaic1");
    ck_assert_int_eq(msc_options_set_float(o, "optim.clip_norm", clip ? 0.5 : 0.0), MSC_OK);
    msc_model *m = create(o);
    msc_batch *b = batch_of(&d, 0, 8, 1);
    msc_step_result r;
    ck_assert_int_eq(step(m, b, &r), MSC_OK);
    char dir[] = "/tmp/msc_nangrad_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char before[400], after[400];
    snprintf(before, sizeof before, "%s/before.safetensors", dir);
    snprintf(after, sizeof after, "%s/after.safetensors", dir);
    ck_assert_int_eq(msc_model_save(m, before), MSC_OK);
    g_poison_real = m->be;
    g_poison_iface = *m->be;
    g_poison_iface.grad_stats = poisoned_grad_stats;
    g_poison_model = m;
    g_poison_param = -1;
    m->be = &g_poison_iface;
    ck_assert_int_eq(step(m, b, &r), MSC_E_NUMERICAL);
    ck_assert_int_eq(r.skipped, 1);
    ck_assert_int_eq(r.step, 1);
    ck_assert(isfinite(r.loss));
    ck_assert_int_ge(g_poison_param, 0);
    char want[200];
    snprintf(want, sizeof want, "gradient of %s is not finite: step 1 skipped",
             m->graph.params[g_poison_param].name);
    ck_assert_msg(strcmp(msc_last_error(), want) == 0, "message '%s', expected '%s'",
                  msc_last_error(), want);
    m->be = g_poison_real;
    ck_assert_int_eq(msc_model_save(m, after), MSC_OK);
    ck_assert_msg(same_file(before, after), "a skipped step changed the model");
    ck_assert_int_eq(step(m, b, &r), MSC_OK);
    ck_assert_int_eq(r.step, 2);
    unlink(before), unlink(after), rmdir(dir);
    msc_batch_free(b);
    free_data(&d);
    msc_model_free(m);
    msc_options_free(o);
  }
}
END_TEST

/* ---- non-finite state: running statistics, saving, loading ----------------------------------- */

/* Finite S1 pixels from 1e19 to 1e25 (issue 19): the batch variance of the first batch
 * norm overflows float, so its running variance would become infinite while the loss and
 * every gradient stay finite. */
static float *huge_s1(int64_t n) {
  size_t count = (size_t)(n * 2 * SIZE * SIZE);
  float *s1 = malloc(count * sizeof(float));
  for (size_t i = 0; i < count; ++i)
    s1[i] = powf(10.0f, 19.0f + 6.0f * (float)(i % 97) / 96.0f);
  return s1;
}

START_TEST(test_non_finite_running_stats_skip_step) {
  data d;
  make_data(&d, 8, 7);
  msc_options *o = tiny_options("mosaic1");
  msc_model *m = create(o);
  msc_batch *b = batch_of(&d, 0, 8, 1);
  msc_step_result r;
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  char dir[] = "/tmp/msc_runstat_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char before[400], after[400];
  snprintf(before, sizeof before, "%s/before.safetensors", dir);
  snprintf(after, sizeof after, "%s/after.safetensors", dir);
  ck_assert_int_eq(msc_model_save(m, before), MSC_OK);
  float *huge = huge_s1(8);
  msc_batch *bad = batch_of(&d, 0, 8, 1);
  ck_assert_int_eq(msc_batch_set_modality(bad, "s1", huge, 8, 2, SIZE, SIZE), MSC_OK);
  msc_status st = step(m, bad, &r);
  ck_assert_msg(st == MSC_E_NUMERICAL, "step on 1e19..1e25 pixels: status %d (%s), loss %g", st,
                msc_last_error(), r.loss);
  ck_assert_int_eq(r.skipped, 1);
  ck_assert_int_eq(r.step, 1);
  ck_assert_msg(strstr(msc_last_error(), "running statistic enc.s1.") &&
                    strstr(msc_last_error(), "is not finite: step 1 skipped"),
                "message '%s'", msc_last_error());
  /* Nothing changed: the model saves to the same bytes, and the file loads. */
  ck_assert_int_eq(msc_model_save(m, after), MSC_OK);
  ck_assert_msg(same_file(before, after), "a skipped step changed the model");
  msc_model *l = NULL;
  ck_assert_msg(msc_model_load(after, NULL, &l) == MSC_OK, "%s", msc_last_error());
  msc_model_free(l);
  /* Training goes on with the next batch. */
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  ck_assert_int_eq(r.step, 2);
  free(huge);
  msc_batch_free(bad);
  msc_batch_free(b);
  unlink(before), unlink(after), rmdir(dir);
  free_data(&d);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

static int32_t param_index(const msc_model *m, const char *name) {
  for (int32_t p = 0; p < m->graph.n_params; ++p)
    if (strcmp(m->graph.params[p].name, name) == 0) return p;
  ck_abort_msg("no parameter %s", name);
  return -1;
}

/* Sets element k of backend tensor t (shape of parameter p) to v. */
static void poke(msc_model *m, mbk_tensor *t, int32_t p, size_t k, float v) {
  const msci_param *pr = &m->graph.params[p];
  size_t n = 1;
  for (int32_t i = 0; i < pr->ndim; ++i) n *= (size_t)pr->dims[i];
  float *h = malloc(n * sizeof(float));
  ck_assert_int_eq(m->be->tensor_download(t, h, n), MSC_OK);
  h[k] = v;
  ck_assert_int_eq(m->be->tensor_upload(t, pr->ndim, pr->dims, h), MSC_OK);
  free(h);
}

START_TEST(test_save_refuses_non_finite_state) {
  /* msc_model_save refuses what msc_model_load would refuse (a NaN or infinity in a
   * weight, a running statistic or an optimiser moment), with MSC_E_NUMERICAL naming the
   * tensor, and leaves the file already at the destination as it was. */
  data d;
  make_data(&d, 8, 7);
  msc_options *o = tiny_options("mosaic1");
  msc_model *m = create(o);
  msc_batch *b = batch_of(&d, 0, 8, 1);
  msc_step_result r;
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  char dir[] = "/tmp/msc_savenan_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[400], copy[400], cmd[1000];
  snprintf(path, sizeof path, "%s/m.safetensors", dir);
  snprintf(copy, sizeof copy, "%s/copy.safetensors", dir);
  ck_assert_int_eq(msc_model_save(m, path), MSC_OK);
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, copy);
  ck_assert_int_eq(system(cmd), 0);
  struct {
    const char *param, *file_name;
    int moment; /* 0: the parameter itself, 1/2: its optimiser moment on the backend */
    float value;
  } cases[] = {
      {"enc.s1.bn1.running_var", "enc.s1.bn1.running_var", 0, INFINITY},
      {"enc.s2.bn1.running_mean", "enc.s2.bn1.running_mean", 0, NAN},
      {"proj.s1.fc1.weight", "proj.s1.fc1.weight", 0, -INFINITY},
      {"enc.s2.conv1.weight", "optim.m1.enc.s2.conv1.weight", 1, NAN},
      {"classifier.fc.bias", "optim.m2.classifier.fc.bias", 2, INFINITY},
      /* a variance below zero: finite, yet its square root is NaN */
      {"enc.s2.bn1.running_var", "enc.s2.bn1.running_var", 0, -0.5f},
      {"enc.s1.conv1.weight", "optim.m2.enc.s1.conv1.weight", 2, -1e-6f},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    msc_model *w = create(o); /* a fresh trained model for each case */
    ck_assert_int_eq(step(w, b, &r), MSC_OK);
    int32_t p = param_index(w, cases[c].param);
    mbk_tensor *t = cases[c].moment == 0   ? w->graph.params[p].t
                    : cases[c].moment == 1 ? w->train->dm1[p]
                                           : w->train->dm2[p];
    ck_assert_ptr_nonnull(t);
    poke(w, t, p, 1, cases[c].value);
    msc_status st = msc_model_save(w, path);
    ck_assert_msg(st == MSC_E_NUMERICAL, "case %zu: status %d (%s)", c, st, msc_last_error());
    char want[300];
    snprintf(want, sizeof want, "tensor '%s' holds a %s at 1", cases[c].file_name,
             isfinite(cases[c].value) ? "negative variance" : "NaN or infinity");
    ck_assert_msg(strstr(msc_last_error(), want), "case %zu: message '%s', expected '%s'", c,
                  msc_last_error(), want);
    ck_assert_msg(same_file(path, copy), "case %zu: a refused save changed the file", c);
    msc_model_free(w);
  }
  msc_model *l = NULL;
  ck_assert_msg(msc_model_load(path, NULL, &l) == MSC_OK, "%s", msc_last_error());
  msc_model_free(l);
  unlink(path), unlink(copy), rmdir(dir);
  msc_batch_free(b);
  free_data(&d);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* Rewrites checkpoint src into dst with element k of tensor `name` set to v. */
static void rewrite_with(const char *src, const char *dst, const char *name, size_t k,
                         float v) {
  msci_st_file *f = NULL;
  ck_assert_int_eq(msci_st_open(src, &f), MSC_OK);
  size_t nt = msci_st_count(f), nm = msci_st_meta_count(f);
  msci_st_tensor_in *ts = calloc(nt, sizeof *ts);
  msci_st_meta *meta = calloc(nm, sizeof *meta);
  int64_t(*dims)[8] = calloc(nt, sizeof *dims);
  int found = 0;
  for (size_t i = 0; i < nt; ++i) {
    ts[i].name = msci_st_name(f, i);
    ck_assert_int_eq(msci_st_shape(f, ts[i].name, &ts[i].ndim, dims[i]), MSC_OK);
    ts[i].dims = dims[i];
    size_t n = 1;
    for (int32_t j = 0; j < ts[i].ndim; ++j) n *= (size_t)dims[i][j];
    float *x = malloc(n * sizeof(float));
    ck_assert_int_eq(msci_st_read_f32(f, ts[i].name, x, n), MSC_OK);
    if (strcmp(ts[i].name, name) == 0) x[k] = v, found = 1;
    ts[i].data = x;
  }
  ck_assert_msg(found, "%s: no tensor %s", src, name);
  for (size_t i = 0; i < nm; ++i) {
    meta[i].key = msci_st_meta_key(f, i);
    meta[i].value = msci_st_meta_get(f, meta[i].key);
  }
  ck_assert_int_eq(msci_st_write(dst, meta, nm, ts, nt), MSC_OK);
  for (size_t i = 0; i < nt; ++i) free((void *)ts[i].data);
  free(ts), free(meta), free(dims);
  msci_st_close(f);
}

START_TEST(test_load_refuses_non_finite_state) {
  /* A NaN or infinity in any tensor a checkpoint holds is refused, the optimiser's moments
   * as the weights and running statistics (MSC_E_BAD_FORMAT naming the tensor). */
  data d;
  make_data(&d, 8, 7);
  msc_options *o = tiny_options("mosaic1");
  msc_model *m = create(o);
  msc_batch *b = batch_of(&d, 0, 8, 1);
  msc_step_result r;
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  char dir[] = "/tmp/msc_loadnan_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char good[400], bad[400];
  snprintf(good, sizeof good, "%s/good.safetensors", dir);
  snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
  ck_assert_int_eq(msc_model_save(m, good), MSC_OK);
  /* The rewrite itself changes nothing that matters: the copy loads. */
  rewrite_with(good, bad, "optim.m1.enc.s1.conv1.weight", 0, 0.0f);
  msc_model *l = NULL;
  ck_assert_msg(msc_model_load(bad, NULL, &l) == MSC_OK, "%s", msc_last_error());
  msc_model_free(l);
  const struct {
    const char *name;
    float v;
  } cases[] = {{"optim.m1.enc.s1.conv1.weight", NAN},
               {"optim.m2.proj_fused.fc2.bias", INFINITY},
               {"optim.m1.classifier.fc.weight", -INFINITY},
               {"enc.s2.bn1.running_var", INFINITY},
               /* negative variances (finite, but their square roots are NaN) */
               {"enc.s1.bn1.running_var", -1.0f},
               {"optim.m2.enc.s2.conv1.weight", -1e-30f}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
    rewrite_with(good, bad, cases[c].name, 3, cases[c].v);
    l = (msc_model *)0x1;
    msc_status st = msc_model_load(bad, NULL, &l);
    ck_assert_msg(st == MSC_E_BAD_FORMAT, "%s: status %d (%s)", cases[c].name, st,
                  st == MSC_OK ? "loaded" : msc_last_error());
    ck_assert_ptr_eq(l, (msc_model *)0x1);
    char want[300];
    snprintf(want, sizeof want, "tensor '%s' holds a %s at 3", cases[c].name,
             isfinite(cases[c].v) ? "negative variance" : "NaN or infinity");
    ck_assert_msg(strstr(msc_last_error(), want), "message '%s', expected '%s'",
                  msc_last_error(), want);
  }
  unlink(good), unlink(bad), rmdir(dir);
  msc_batch_free(b);
  free_data(&d);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

START_TEST(test_backend_without_update_cannot_train) {
  data d;
  make_data(&d, 8, 7);
  msc_options *o = tiny_options("mosaic1");
  msc_model *m = create(o);
  static mbk_iface no_update;
  no_update = *m->be;
  no_update.grad_stats = NULL;
  const mbk_iface *real = m->be;
  m->be = &no_update;
  msc_batch *b = batch_of(&d, 0, 8, 1);
  msc_step_result r;
  ck_assert_int_eq(step(m, b, &r), MSC_E_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "grad_stats"));
  m->be = real;
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  msc_batch_free(b);
  free_data(&d);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* Run 0: concatenation fusion; run 1: cross-attention fusion (docs/model.md, "Fusion":
 * the macro AP measured there). */
START_TEST(test_learning_works) {
  data train, test;
  make_data(&train, 256, 11);
  make_data(&test, 96, 12);
  msc_options *o = tiny_options("mosaic1");
  if (_i == 1) {
    ck_assert_int_eq(msc_options_set_string(o, "fusion", "xattn"), MSC_OK);
    ck_assert_int_eq(msc_options_set_int(o, "fusion.dim", 16), MSC_OK);
    ck_assert_int_eq(msc_options_set_int(o, "fusion.heads", 4), MSC_OK);
  }
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 3e-3), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "optim.warmup_steps", 10), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "optim.total_steps", 120), MSC_OK);
  msc_model *m = create(o);
  msc_step_result r;
  double first = 0, last = 0;
  for (int s = 0; s < 120; ++s) {
    msc_batch *b = batch_of(&train, (s % 8) * 32, 32, 1);
    ck_assert_msg(step(m, b, &r) == MSC_OK, "step %d: %s", s, msc_last_error());
    msc_batch_free(b);
    if (s < 10) first += r.loss / 10;
    if (s >= 110) last += r.loss / 10;
  }
  ck_assert_msg(last < 0.8 * first, "loss went from %.4f to %.4f", first, last);
  msc_batch *tb = batch_of(&test, 0, 96, 0);
  float *probs = malloc(96 * C * sizeof(float));
  ck_assert_int_eq(msc_predict(m, tb, probs, 96 * C), MSC_OK);
  double macro = 0, chance = 0;
  for (int k = 0; k < C; ++k) {
    macro += ref_average_precision(probs, test.y, 96, C, k) / C;
    int64_t pos = 0;
    for (int i = 0; i < 96; ++i) pos += test.y[i * C + k];
    chance += (double)pos / 96 / C; /* the AP of a random ranking is the prevalence */
  }
  printf("learning (fusion %s): loss %.4f -> %.4f, macro AP %.3f (chance %.3f)\n",
         _i ? "xattn" : "concat", first, last, macro, chance);
  ck_assert_msg(macro > 0.85 && macro > chance + 0.35, "macro AP %.3f (chance %.3f)", macro,
                chance);
  free(probs);
  msc_batch_free(tb);
  free_data(&train);
  free_data(&test);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

int main(void) {
  Suite *s = suite_create("train");
  TCase *tc = tcase_create("train");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, test_gradient_matches_finite_differences, 0, 2);
  tcase_add_test(tc, test_presets_select_terms);
  tcase_add_test(tc, test_pimc_needs_plots);
  tcase_add_test(tc, test_terms_the_model_cannot_feed);
  tcase_add_test(tc, test_unlabelled_samples);
  tcase_add_test(tc, test_non_finite_step_skipped);
  tcase_add_test(tc, test_resume_is_bit_identical);
  tcase_add_test(tc, test_frozen_encoders);
  tcase_add_test(tc, test_reset_classifier);
  tcase_add_test(tc, test_update_matches_host_reference);
  tcase_add_test(tc, test_non_finite_gradient_skipped);
  tcase_add_test(tc, test_non_finite_running_stats_skip_step);
  tcase_add_test(tc, test_save_refuses_non_finite_state);
  tcase_add_test(tc, test_load_refuses_non_finite_state);
  tcase_add_test(tc, test_backend_without_update_cannot_train);
  suite_add_tcase(s, tc);
  /* Training runs long enough to learn: tagged, so that the sanitizer stage can leave it
   * out for time (CK_EXCLUDE_TAGS=learning, scripts/test-sanitize.sh). */
  tc = tcase_create("learning");
  tcase_set_tags(tc, "learning");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, test_learning_works, 0, 2);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
