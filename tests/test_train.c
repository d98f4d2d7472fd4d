/*
 * test_train.c — msc_train_step end to end on the tiny model:
 *  - the gradient of the whole objective (every loss term, backward through heads,
 *    fusion, residual blocks and batch norm) against central finite differences of the
 *    loss the step reports (learning rate 0, so a step changes nothing);
 *  - the presets switch terms on and off as LOSSES.md's table says;
 *  - unlabelled samples feed only the self-supervised terms;
 *  - a non-finite loss skips the update and leaves the weights bit for bit as they were;
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
#include "model.h"
#include "optim_core.h"
#include "rng.h"
#include "train.h"

#define SIZE 16
#define C 4

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
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", d->s1 + from * 2 * SIZE * SIZE, n, 2, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s2", d->s2 + from * 4 * SIZE * SIZE, n, 4, SIZE, SIZE), MSC_OK);
  if (labels) ck_assert_int_eq(msc_batch_set_labels(b, d->y + from * C, n, C), MSC_OK);
  return b;
}

static msc_options *tiny_options(const char *preset) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  const char *json =
      "{\"modality.0.encoder\":\"tiny\",\"modality.1.encoder\":\"tiny\","
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

START_TEST(test_gradient_matches_finite_differences) {
  msc_options *o = tiny_options("mosaic2"); /* every term but NT-Xent ... */
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
  const char *names[] = {"enc.s1.conv1.weight",        "enc.s2.bn1.weight",
                         "enc.s2.layer1.0.conv2.weight", "enc.s1.layer2.0.downsample.0.weight",
                         "enc.s2.layer2.0.bn2.bias",    "proj.s1.fc1.weight",
                         "proj.s2.fc2.bias",            "proj_fused.fc1.weight",
                         "classifier.fc.weight",        "classifier.fc.bias"};
  /* The analytic gradients of that first step, before any probing step overwrites them. */
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
    memcpy(grad[k], t->grad[pid[k]], (size_t)count * sizeof(float));
  }
  int checked = 0;
  for (size_t k = 0; k < K; ++k) {
    int32_t p = pid[k];
    msci_param *pr = &g->params[p];
    int64_t count = 1;
    for (int32_t i = 0; i < pr->ndim; ++i) count *= pr->dims[i];
    for (int trial = 0; trial < 2; ++trial) {
      int64_t idx = (int64_t)((k * 7 + (size_t)trial * 13) % (size_t)count);
      float keep = t->master[p][idx];
      /* eps trades float32 rounding of the loss against the curvature of ReLU and batch
       * norm: at 1e-3 both stay well inside the tolerance for every probed parameter. */
      double eps = 1e-3 * fmax(1.0, fabs(keep));
      double lp, lm;
      t->master[p][idx] = (float)(keep + eps);
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, t->master[p]), MSC_OK);
      ck_assert_int_eq(step(m, b, &r), MSC_OK);
      lp = r.loss;
      t->master[p][idx] = (float)(keep - eps);
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, t->master[p]), MSC_OK);
      ck_assert_int_eq(step(m, b, &r), MSC_OK);
      lm = r.loss;
      t->master[p][idx] = keep;
      ck_assert_int_eq(m->be->tensor_upload(pr->t, pr->ndim, pr->dims, t->master[p]), MSC_OK);
      double fd = (lp - lm) / (2 * eps), an = grad[k][idx];
      ck_assert_msg(fabs(fd - an) <= 0.1 * fmax(fabs(fd), fabs(an)) + 1e-3,
                    "%s[%lld]: analytic %.6g, finite differences %.6g", names[k],
                    (long long)idx, an, fd);
      checked++;
    }
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
  } cases[] = {{"mosaic1", 1, 1, 1, 0, 1}, {"mosaic2", 0, 1, 1, 1, 1}, {"dual", 0, 1, 0, 0, 0},
               {"simclr", 1, 0, 0, 0, 0},  {"supervised", 0, 0, 0, 0, 1}, {"pimc", 0, 1, 0, 0, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    msc_options *o = tiny_options(cases[i].preset);
    msc_model *m = create(o);
    msc_step_result r;
    ck_assert_msg(step(m, b, &r) == MSC_OK, "%s: %s", cases[i].preset, msc_last_error());
    ck_assert_msg((r.loss_intra > 0) == cases[i].intra, "%s intra %g", cases[i].preset, r.loss_intra);
    ck_assert_msg((r.loss_inter > 0) == cases[i].inter, "%s inter %g", cases[i].preset, r.loss_inter);
    ck_assert_msg((r.loss_fused > 0) == cases[i].fused, "%s fused %g", cases[i].preset, r.loss_fused);
    ck_assert_msg((r.loss_views > 0) == cases[i].views, "%s views %g", cases[i].preset, r.loss_views);
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
  ck_assert_msg(same_file(straight, resumed), "resumed training differs from the uninterrupted run");
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
      ck_assert_msg(memcmp(now, trained[p], count * sizeof(float)) != 0, "%s unchanged", pr->name);
      ck_assert(memcmp(m->train->master[p], want, count * sizeof(float)) == 0);
      for (size_t k = 0; k < count; ++k) ck_assert(m->train->m1[p][k] == 0.f && m->train->m2[p][k] == 0.f);
      free(want);
      ++reset;
    } else {
      ck_assert_msg(memcmp(now, trained[p], count * sizeof(float)) == 0, "%s changed", pr->name);
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

/* ---- the update on the backend (optim_update), checked on the CPU backend -------------------- */

/* The model whose tensors the stand-in below updates (it needs their shapes). */
static const msc_model *g_on_backend_model;
static int64_t g_on_backend_updates;
static mbk_iface g_on_backend_iface;

/* A stand-in for a device backend's optim_update, over the CPU backend's tensors:
 * download, the optim_core.h arithmetic as mbk_optim_desc specifies it, upload. */
static msc_status stand_in_optim_update(mbk_ctx *ctx, const mbk_optim_desc *d, mbk_tensor *param,
                                        const mbk_tensor *grad, mbk_tensor *m1, mbk_tensor *m2) {
  (void)ctx;
  const msc_model *m = g_on_backend_model;
  const msci_param *pr = NULL;
  for (int32_t i = 0; i < m->graph.n_params; ++i)
    if (m->graph.params[i].t == param) pr = &m->graph.params[i];
  ck_assert_ptr_nonnull(pr);
  size_t n = (size_t)d->n;
  float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
  float *a = calloc(n, sizeof(float)), *b = calloc(n, sizeof(float));
  ck_assert(p && g && a && b);
  const mbk_iface *be = &g_on_backend_iface;
  int adamw = d->type == MBK_OPTIM_ADAMW;
  ck_assert(adamw || d->type == MBK_OPTIM_SGD);
  ck_assert_int_eq(be->tensor_download(param, p, n), MSC_OK);
  ck_assert_int_eq(be->tensor_download(grad, g, n), MSC_OK);
  if (m1) ck_assert_int_eq(be->tensor_download(m1, a, n), MSC_OK);
  if (adamw) ck_assert_int_eq(be->tensor_download(m2, b, n), MSC_OK);
  ck_assert(adamw || (m1 == NULL) == (d->momentum == 0));
  if (d->grad_scale != 1.0)
    for (size_t i = 0; i < n; ++i) g[i] = g[i] * (float)d->grad_scale;
  if (adamw) {
    msci_adamw_coef k = msci_adamw_coefs(d->lr, d->beta1, d->beta2, d->eps, d->weight_decay, d->step);
    for (size_t i = 0; i < n; ++i) msci_adamw_elem(&p[i], &a[i], &b[i], g[i], &k);
  } else {
    for (size_t i = 0; i < n; ++i)
      msci_sgd_elem(&p[i], m1 ? &a[i] : NULL, g[i], (float)d->lr, (float)d->weight_decay,
                    (float)d->momentum, d->nesterov);
  }
  ck_assert_int_eq(be->tensor_upload(param, pr->ndim, pr->dims, p), MSC_OK);
  if (m1) ck_assert_int_eq(be->tensor_upload(m1, pr->ndim, pr->dims, a), MSC_OK);
  if (adamw) ck_assert_int_eq(be->tensor_upload(m2, pr->ndim, pr->dims, b), MSC_OK);
  free(p), free(g), free(a), free(b);
  ++g_on_backend_updates;
  return MSC_OK;
}

/* Makes m update through optim_update, as a device backend would. */
static void update_on_backend(msc_model *m) {
  g_on_backend_iface = *m->be;
  g_on_backend_iface.optim_update = stand_in_optim_update;
  m->be = &g_on_backend_iface;
  g_on_backend_model = m;
}

/* Trains `steps` steps from step `from` over 3 batches of 8; with reset >= 0, the
 * classifier is reset (seed reset) before the last two. */
static void train_steps(msc_model *m, const data *d, int from, int steps, int reset) {
  msc_step_result r;
  for (int s = from; s < from + steps; ++s) {
    if (reset >= 0 && s == from + steps - 2)
      ck_assert_int_eq(msc_model_reset_classifier(m, (uint64_t)reset), MSC_OK);
    msc_batch *b = batch_of(d, (s % 3) * 8, 8, 1);
    msc_status st = step(m, b, &r);
    ck_assert_msg(st == MSC_OK, "step %d: %s", s, msc_last_error());
    msc_batch_free(b);
  }
}

START_TEST(test_update_on_backend_matches_host) {
  /* The core's path for backends with optim_update (moments kept on the backend, the
   * clipping factor passed as grad_scale, moments brought back for checkpoints and
   * around a classifier reset) gives the same bits as the host path, for AdamW and SGD
   * with and without momentum, and its checkpoints resume exactly. */
  static const char *const cfgs[][2] = {
      {"adamw", "0.9"}, {"sgd", "0.9"}, {"sgd", "0"}};
  data d;
  make_data(&d, 24, 11);
  char dir[] = "/tmp/msc_onbe_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char host[400], dev[400], ckpt[400], resumed[400];
  snprintf(host, sizeof host, "%s/host.safetensors", dir);
  snprintf(dev, sizeof dev, "%s/dev.safetensors", dir);
  snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", dir);
  snprintf(resumed, sizeof resumed, "%s/resumed.safetensors", dir);
  for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; ++c) {
    msc_options *o = tiny_options("mosaic1");
    ck_assert_int_eq(msc_options_set_string(o, "optim.kind", cfgs[c][0]), MSC_OK);
    ck_assert_int_eq(msc_options_set_float(o, "optim.momentum", atof(cfgs[c][1])), MSC_OK);
    ck_assert_int_eq(msc_options_set_float(o, "optim.weight_decay", 0.01), MSC_OK);
    ck_assert_int_eq(msc_options_set_float(o, "optim.clip_norm", 0.5), MSC_OK); /* it clips */
    ck_assert_int_eq(msc_options_set_int(o, "optim.warmup_steps", 2), MSC_OK);
    ck_assert_int_eq(msc_options_set_int(o, "optim.total_steps", 6), MSC_OK);
    /* The host path: 6 steps, the classifier reset before the last two. */
    msc_model *m = create(o);
    train_steps(m, &d, 0, 6, 5);
    ck_assert_int_eq(msc_model_save(m, host), MSC_OK);
    msc_model_free(m);
    /* The backend path, checkpointed after 3 steps. */
    g_on_backend_updates = 0;
    m = create(o);
    update_on_backend(m);
    train_steps(m, &d, 0, 3, -1);
    ck_assert_int_gt(g_on_backend_updates, 0);
    ck_assert_int_eq(msc_model_save(m, ckpt), MSC_OK);
    train_steps(m, &d, 3, 3, 5);
    ck_assert_int_eq(msc_model_save(m, dev), MSC_OK);
    msc_model_free(m);
    ck_assert_msg(same_file(host, dev), "%s/%s: the backend path differs from the host path",
                  cfgs[c][0], cfgs[c][1]);
    /* Resumed from the checkpoint in a new model on the backend path. */
    m = NULL;
    ck_assert_int_eq(msc_model_load(ckpt, NULL, &m), MSC_OK);
    update_on_backend(m);
    train_steps(m, &d, 3, 3, 5);
    ck_assert_int_eq(msc_model_save(m, resumed), MSC_OK);
    msc_model_free(m);
    ck_assert_msg(same_file(host, resumed), "%s/%s: resuming on the backend path differs",
                  cfgs[c][0], cfgs[c][1]);
    msc_options_free(o);
  }
  unlink(host), unlink(dev), unlink(ckpt), unlink(resumed), rmdir(dir);
  free_data(&d);
}
END_TEST

/* Average precision of one class, scikit-learn's definition (ties form one threshold). */
static double average_precision(const float *score, const uint8_t *y, int64_t n, int64_t c,
                                int64_t k) {
  int64_t pos = 0;
  for (int64_t i = 0; i < n; ++i) pos += y[i * c + k];
  if (pos == 0) return NAN;
  double ap = 0, prev_recall = 0;
  uint8_t *used = calloc((size_t)n, 1);
  int64_t tp = 0, fp = 0;
  for (;;) {
    /* Next threshold: the largest unused score; take all samples with that score. */
    float best = -INFINITY;
    int found = 0;
    for (int64_t i = 0; i < n; ++i)
      if (!used[i] && (!found || score[i * c + k] > best)) best = score[i * c + k], found = 1;
    if (!found) break;
    for (int64_t i = 0; i < n; ++i)
      if (!used[i] && score[i * c + k] == best) {
        used[i] = 1;
        if (y[i * c + k]) tp++;
        else fp++;
      }
    double recall = (double)tp / (double)pos, precision = (double)tp / (double)(tp + fp);
    ap += (recall - prev_recall) * precision;
    prev_recall = recall;
  }
  free(used);
  return ap;
}

START_TEST(test_learning_works) {
  data train, test;
  make_data(&train, 256, 11);
  make_data(&test, 96, 12);
  msc_options *o = tiny_options("mosaic1");
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
    macro += average_precision(probs, test.y, 96, C, k) / C;
    int64_t pos = 0;
    for (int i = 0; i < 96; ++i) pos += test.y[i * C + k];
    chance += (double)pos / 96 / C; /* the AP of a random ranking is the prevalence */
  }
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
  tcase_add_test(tc, test_gradient_matches_finite_differences);
  tcase_add_test(tc, test_presets_select_terms);
  tcase_add_test(tc, test_unlabelled_samples);
  tcase_add_test(tc, test_non_finite_step_skipped);
  tcase_add_test(tc, test_resume_is_bit_identical);
  tcase_add_test(tc, test_frozen_encoders);
  tcase_add_test(tc, test_reset_classifier);
  tcase_add_test(tc, test_update_on_backend_matches_host);
  tcase_add_test(tc, test_learning_works);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
