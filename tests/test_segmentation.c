/*
 * test_segmentation.c — the segmentation model (docs/segmentation.md):
 *  - the decoder's parameters against a hand count for the tiny encoder, its tensor
 *    names, and the configurations it refuses (patch sizes differ, deconv on a level
 *    that is not twice the one below);
 *  - patch sizes not divisible by the total stride (36, 13): the decoder interpolates to
 *    each level's exact size and ends at the input's;
 *  - a decoder on one modality of two (seg.modalities): hand count, the other modality
 *    of another size and strides, predict_mask from a batch with that modality only,
 *    saved in the model file, refusals;
 *  - the gradient of the per-pixel cross-entropy through the whole decoder (bilinear and
 *    deconv, and bilinear at 13 × 13 with non-integer scales), the skips and the
 *    encoders against central finite differences of the loss the step reports (learning
 *    rate ~0, so a step changes nothing);
 *  - learning: on synthetic Sen1Floods11 chips (msc_synth_write), a tiny segmentation
 *    model trained a few epochs maps water with an IoU far above the all-land baseline's
 *    (0), scored with msc_metrics_confusion and the ignore index; msc_predict_mask's
 *    classes are the arg max of its own probabilities.
 */
#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mosaic/mosaic.h"
#include "backend/backend_call.h"
#include "model/model.h"
#include "common/rng.h"
#include "train/train.h"

#define SIZE 16
#define C    3

static msc_options *seg_options(const char *task, const char *up) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  const char *json = "{\"modality.0.encoder\":\"tiny\",\"modality.1.encoder\":\"tiny\","
                     "\"modality.0.size\":16,\"modality.1.size\":16,\"modality.1.bands\":4,"
                     "\"classes\":3,\"class_names\":\"a;b;c\",\"proj.dim\":16,\"seed\":7}";
  ck_assert_int_eq(msc_options_from_json(o, json), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "task", task), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "seg.upsample", up), MSC_OK);
  return o;
}

static msc_model *create(const msc_options *o) {
  msc_model *m = NULL;
  msc_status st = msc_model_create(o, &m);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  return m;
}

static const msci_param *find(const msc_model *m, const char *name) {
  for (int32_t i = 0; i < m->graph.n_params; ++i)
    if (strcmp(m->graph.params[i].name, name) == 0) return &m->graph.params[i];
  return NULL;
}

START_TEST(test_parameter_count) {
  msc_options *oc = seg_options("contrastive", "bilinear");
  msc_options *ob = seg_options("segmentation", "bilinear");
  msc_options *od = seg_options("segmentation", "deconv");
  msc_model *mc = create(oc), *mb = create(ob), *md = create(od);
  /* Tiny encoders: layer1 8 channels at 16×16, layer2 16 at 8×8. The decoder takes the
   * 16 + 16 channels of both layer2 outputs, ×2, concatenates both layer1 outputs (8 + 8):
   * 48 channels; conv 3×3 48→8 (3456) + BN (16), conv 3×3 8→8 (576) + BN (16); then the
   * head's 1×1 conv 8→3 with bias (27). Deconv instead: ConvTranspose2d(32, 16, 2) with
   * bias (2048 + 16) to layer2's width, so the first conv reads 16 + 16: 32→8 (2304). */
  const int64_t bilinear = 3456 + 16 + 576 + 16 + 27;
  const int64_t deconv = 2048 + 16 + 2304 + 16 + 576 + 16 + 27;
  ck_assert_int_eq(msc_model_parameter_count(mb) - msc_model_parameter_count(mc), bilinear);
  ck_assert_int_eq(msc_model_parameter_count(md) - msc_model_parameter_count(mc), deconv);
  const msci_param *p = find(mb, "dec.layer1.conv1.weight");
  ck_assert_ptr_nonnull(p);
  ck_assert(p->ndim == 4 && p->dims[0] == 8 && p->dims[1] == 48 && p->dims[2] == 3);
  ck_assert_ptr_nonnull(find(mb, "dec.layer1.bn2.running_var"));
  p = find(mb, "seg_head.conv.weight");
  ck_assert(p && p->dims[0] == C && p->dims[1] == 8 && p->dims[2] == 1);
  ck_assert_ptr_nonnull(find(mb, "seg_head.conv.bias"));
  ck_assert_ptr_null(find(mb, "dec.layer1.up.weight"));
  p = find(md, "dec.layer1.up.weight");
  ck_assert(p && p->dims[0] == 32 && p->dims[1] == 16 && p->dims[2] == 2);
  ck_assert_ptr_null(find(mc, "seg_head.conv.weight"));
  /* The logits are C × H × W at the input size. */
  const msci_node *n = &mb->graph.nodes[mb->graph.seg_logits];
  ck_assert(n->out[1] == C && n->out[2] == SIZE && n->out[3] == SIZE);
  ck_assert_int_eq(mc->graph.seg_logits, -1);
  msc_model_free(mc), msc_model_free(mb), msc_model_free(md);
  msc_options_free(oc), msc_options_free(ob), msc_options_free(od);
}
END_TEST

/* Modality i gets a ResNet-style stem (stride 2, then a max-pool) and patch size. */
static void resnet_like(msc_options *o, int i, int64_t size) {
  char key[64];
  snprintf(key, sizeof key, "modality.%d.stem_stride", i);
  ck_assert_int_eq(msc_options_set_int(o, key, 2), MSC_OK);
  snprintf(key, sizeof key, "modality.%d.maxpool", i);
  ck_assert_int_eq(msc_options_set_int(o, key, 1), MSC_OK);
  snprintf(key, sizeof key, "modality.%d.size", i);
  ck_assert_int_eq(msc_options_set_int(o, key, size), MSC_OK);
}

/* The output sizes of the graph's upsampling nodes, in graph order, into hw (pairs). */
static int up_sizes(const msc_model *m, int64_t *hw, int cap) {
  int k = 0;
  for (int32_t i = 0; i < m->graph.n_nodes; ++i)
    if (m->graph.nodes[i].desc.type == MBK_OP_UPSAMPLE && k < cap) {
      hw[2 * k] = m->graph.nodes[i].out[2], hw[2 * k + 1] = m->graph.nodes[i].out[3];
      ++k;
    }
  return k;
}

/* A ResNet-style stem (stride 2, max-pool) is undone: stem skip, then ×2 at the end. */
START_TEST(test_strided_stem_reaches_input_size) {
  msc_options *o = seg_options("segmentation", "bilinear");
  for (int i = 0; i < 2; ++i) resnet_like(o, i, 32);
  msc_model *m = create(o);
  const msci_node *n = &m->graph.nodes[m->graph.seg_logits];
  ck_assert(n->out[1] == C && n->out[2] == 32 && n->out[3] == 32);
  ck_assert_ptr_nonnull(find(m, "dec.stem.conv1.weight"));
  int64_t hw[8];
  /* 32 -> stem 16 -> max-pool 8 -> layer1 8 -> layer2 4; up 4 -> 8 -> 16, head, -> 32. */
  ck_assert_int_eq(up_sizes(m, hw, 4), 3);
  ck_assert(hw[0] == 8 && hw[2] == 16 && hw[4] == 32 && hw[5] == 32);
  const int64_t params32 = msc_model_parameter_count(m);
  msc_model_free(m);
  /* 36 is not divisible by the total stride 8 (stem 2, max-pool 2, layer2 2): each
   * stride-2 layer halves rounding up, 36 -> 18 -> 9 -> 9 -> 5, and the decoder goes
   * back to the exact sizes, 5 -> 9 -> 18, head, -> 36, with the same parameters. */
  ck_assert_int_eq(msc_options_set_int(o, "modality.0.size", 36), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "modality.1.size", 36), MSC_OK);
  m = create(o);
  n = &m->graph.nodes[m->graph.seg_logits];
  ck_assert(n->out[1] == C && n->out[2] == 36 && n->out[3] == 36);
  ck_assert_int_eq(up_sizes(m, hw, 4), 3);
  ck_assert(hw[0] == 9 && hw[1] == 9 && hw[2] == 18 && hw[4] == 36 && hw[5] == 36);
  ck_assert_int_eq(msc_model_parameter_count(m), params32);
  msc_model_free(m);
  /* A ×2 deconvolution cannot reach 9 from 5: refused, naming the levels and the way out. */
  msc_model *bad = NULL;
  ck_assert_int_eq(msc_options_set_string(o, "seg.upsample", "deconv"), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &bad), MSC_E_INVALID_ARGUMENT);
  const char *why = msc_last_error();
  ck_assert_msg(strstr(why, "layer2") && strstr(why, "layer1") && strstr(why, "5x5") &&
                    strstr(why, "10x10") && strstr(why, "9x9") &&
                    strstr(why, "seg.upsample = bilinear"),
                "%s", why);
  ck_assert_ptr_null(bad);
  ck_assert_int_eq(msc_options_set_string(o, "seg.upsample", "bilinear"), MSC_OK);
  /* Patch sizes must be the same, and the error names the modalities. */
  ck_assert_int_eq(msc_options_set_int(o, "modality.1.size", 32), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &bad), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "s1"));
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "s2"));
  ck_assert_ptr_null(bad);
  msc_options_free(o);
}
END_TEST

/* ---- gradient ---------------------------------------------------------------------------- */

/* n random samples: s1 (2 bands) and the mask of size1 × size1, s2 (4 bands) of
 * size2 × size2 (size2 = 0: no s2 in the batch). */
static msc_batch *random_batch_sized(int64_t n, uint64_t seed, int64_t size1, int64_t size2,
                                     float **s1, float **s2, int32_t **mask) {
  msci_rng r;
  msci_rng_seed(&r, seed, "seg");
  const int64_t p1 = size1 * size1, p2 = size2 * size2;
  *s1 = malloc((size_t)(n * 2 * p1) * sizeof(float));
  *s2 = malloc((size_t)(n * 4 * p2 + 1) * sizeof(float));
  *mask = malloc((size_t)(n * p1) * sizeof(int32_t));
  for (int64_t k = 0; k < n * 2 * p1; ++k) (*s1)[k] = (float)msci_rng_normal(&r);
  for (int64_t k = 0; k < n * 4 * p2; ++k) (*s2)[k] = (float)msci_rng_normal(&r);
  for (int64_t k = 0; k < n * p1; ++k) {
    uint64_t v = msci_rng_next(&r) % 8;
    (*mask)[k] = v < 3 ? (int32_t)v : v == 7 ? -1 : (int32_t)(v % 3); /* some ignored */
  }
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", *s1, n, 2, size1, size1), MSC_OK);
  if (size2) ck_assert_int_eq(msc_batch_set_modality(b, "s2", *s2, n, 4, size2, size2), MSC_OK);
  ck_assert_int_eq(msc_batch_set_mask(b, *mask, n, size1, size1), MSC_OK);
  return b;
}

static msc_batch *random_batch(int64_t n, uint64_t seed, float **s1, float **s2,
                               int32_t **mask) {
  return random_batch_sized(n, seed, SIZE, SIZE, s1, s2, mask);
}

static msc_status step(msc_model *m, msc_batch *b, msc_step_result *r) {
  memset(r, 0, sizeof *r);
  r->struct_size = sizeof *r;
  return msc_train_step(m, b, r);
}

/* The step's per-pixel terms against the public loss functions on the logits the
 * step's own forward pass left in the training executor (training-mode BatchNorm, as the
 * step saw them): loss_seg is msc_loss_pixel_ce's, loss_dice msc_loss_dice's. */
static void check_terms_on_logits(const msc_model *m, const int32_t *mask, int64_t n,
                                  int64_t size, const msc_step_result *r, double seg,
                                  double dice) {
  const msci_exec *e = m->train->exec;
  size_t count = (size_t)(n * C * size * size);
  float *logits = malloc(count * sizeof(float)), want = 0;
  ck_assert_int_eq(m->be->tensor_download(e->act[m->graph.seg_logits], logits, count), MSC_OK);
  const float cw[C] = {1, 2, 0.5f};
  ck_assert_int_eq(msc_loss_pixel_ce(logits, mask, n, C, size, size, -1, cw, &want, NULL),
                   MSC_OK);
  if (seg > 0)
    ck_assert_msg(fabs(r->loss_seg - want) <= 1e-5 * want, "loss_seg %.8g, pixel_ce %.8g",
                  r->loss_seg, (double)want);
  else
    ck_assert(r->loss_seg == 0);
  ck_assert_int_eq(msc_loss_dice(logits, mask, n, C, size, size, -1, &want, NULL), MSC_OK);
  if (dice > 0)
    ck_assert_msg(want > 0.1 && fabs(r->loss_dice - want) <= 1e-5 * want,
                  "loss_dice %.8g, msc_loss_dice %.8g", r->loss_dice, (double)want);
  else
    ck_assert(r->loss_dice == 0);
  ck_assert(r->loss_bce == 0 && r->loss_intra == 0 && r->loss_inter == 0);
  ck_assert(fabs(r->loss - (seg * r->loss_seg + dice * r->loss_dice)) <= 1e-12 * r->loss);
  free(logits);
}

/* size = SIZE: the tiny encoders as they are; another size: ResNet-like stems
 * (resnet_like) at that patch size, whose decoder has a stem level. seg, dice:
 * lambda.seg and lambda.dice (dice < 0: the option is left unset). */
static void check_gradient(const char *up, int64_t size, double seg, double dice) {
  msc_options *o = seg_options("segmentation", up);
  if (size != SIZE)
    for (int i = 0; i < 2; ++i) resnet_like(o, i, size);
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 1e-30), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.weight_decay", 0.0), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "seg.class_weights", "1,2,0.5"), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "lambda.seg", seg), MSC_OK);
  if (dice >= 0) ck_assert_int_eq(msc_options_set_float(o, "lambda.dice", dice), MSC_OK);
  dice = fmax(dice, 0.0); /* the default */
  msc_model *m = create(o);
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);
  ck_assert(m->train->cfg.views == 1 && m->train->cfg.lambda_inter == 0 &&
            m->train->cfg.lambda_seg == seg && m->train->cfg.lambda_dice == dice);
  float *s1, *s2;
  int32_t *mask;
  msc_batch *b = random_batch_sized(3, 5, size, size, &s1, &s2, &mask);
  const msci_node *out = &m->graph.nodes[m->graph.seg_logits];
  ck_assert(out->out[1] == C && out->out[2] == size && out->out[3] == size);
  msc_step_result r;
  msc_status st = step(m, b, &r);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  ck_assert(r.loss > 0);
  check_terms_on_logits(m, mask, 3, size, &r, seg, dice);
  const char *names[] = {"seg_head.conv.weight",
                         "seg_head.conv.bias",
                         "dec.layer1.conv1.weight",
                         "dec.layer1.bn1.weight",
                         "dec.layer1.conv2.weight",
                         "dec.layer1.bn2.bias",
                         "enc.s2.layer2.0.conv2.weight",
                         "enc.s1.layer1.0.conv1.weight",
                         "enc.s1.conv1.weight",
                         "dec.layer1.up.weight",
                         "dec.layer1.up.bias"};
  const char *stem_names[] = {"seg_head.conv.weight",         "seg_head.conv.bias",
                              "dec.stem.conv1.weight",        "dec.stem.bn2.weight",
                              "dec.layer1.conv1.weight",      "dec.layer1.bn1.bias",
                              "enc.s1.layer2.0.conv1.weight", "enc.s2.conv1.weight"};
  size_t count_names = sizeof names / sizeof names[0];
  if (strcmp(up, "deconv") != 0) count_names -= 2;
  if (size != SIZE) {
    memcpy(names, stem_names, sizeof stem_names);
    count_names = sizeof stem_names / sizeof stem_names[0];
  }
  msci_train *t = m->train;
  int checked = 0;
  float *grads[16];
  const msci_param *ps[16];
  for (size_t k = 0; k < count_names; ++k) {
    ps[k] = find(m, names[k]);
    ck_assert_msg(ps[k] != NULL, "no parameter %s", names[k]);
    int32_t pid = (int32_t)(ps[k] - m->graph.params);
    int64_t count = 1;
    for (int32_t i = 0; i < ps[k]->ndim; ++i) count *= ps[k]->dims[i];
    grads[k] = malloc((size_t)count * sizeof(float));
    ck_assert_msg(t->exec->pgrad_valid[pid], "no gradient for %s", names[k]);
    ck_assert_int_eq(m->be->tensor_download(t->exec->pgrad[pid], grads[k], (size_t)count),
                     MSC_OK);
  }
  for (size_t k = 0; k < count_names; ++k) {
    const msci_param *pr = ps[k];
    int64_t count = 1;
    for (int32_t i = 0; i < pr->ndim; ++i) count *= pr->dims[i];
    float *w = malloc((size_t)count * sizeof(float));
    ck_assert_int_eq(m->be->tensor_download(pr->t, w, (size_t)count), MSC_OK);
    for (int trial = 0; trial < 2; ++trial) {
      int64_t idx = (int64_t)((k * 7 + (size_t)trial * 13) % (size_t)count);
      float keep = w[idx];
      /* 1e-4: the encoders see many ReLU kinks across 3 × 16 × 16 pixels; float32
       * rounding of the loss stays far below the tolerance. */
      double eps = 1e-4 * fmax(1.0, fabs(keep)), lp, lm;
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
      double fd = (lp - lm) / (2 * eps), an = grads[k][idx];
      ck_assert_msg(fabs(fd - an) <= 0.1 * fmax(fabs(fd), fabs(an)) + 1e-3,
                    "%s %s[%lld]: analytic %.6g, finite differences %.6g", up, names[k],
                    (long long)idx, an, fd);
      checked++;
    }
    free(w);
    free(grads[k]);
  }
  ck_assert_int_eq(checked, 2 * (int)count_names);
  msc_batch_free(b);
  free(s1), free(s2), free(mask);
  msc_model_free(m);
  msc_options_free(o);
}

START_TEST(test_gradient_bilinear) {
  check_gradient("bilinear", SIZE, 1.0, -1);
}
END_TEST

START_TEST(test_gradient_deconv) {
  check_gradient("deconv", SIZE, 1.0, -1);
}
END_TEST

/* 13 × 13 patches: 13 -> stem 7 -> max-pool 4 -> layer1 4 -> layer2 2; the decoder
 * upsamples 2 -> 4, 4 -> 7 (scale 4/7) and, after the head, 7 -> 13 (scale 7/13). */
START_TEST(test_gradient_odd_size) {
  check_gradient("bilinear", 13, 1.0, -1);
}
END_TEST

/* lambda.dice: the soft Dice term added to the cross-entropy, and alone. */
START_TEST(test_gradient_dice) {
  check_gradient("bilinear", SIZE, 0.5, 2.0);
  check_gradient("deconv", SIZE, 0.0, 1.0);
}
END_TEST

/* msc_step_result grows at its end (include/mosaic/mosaic.h): a caller with the 0.1.0
 * size gets the 0.1.0 fields and nothing past them is written; one with a size between
 * two fields gets the whole fields below it; a smaller size is refused untouched. */
START_TEST(test_step_result_sizes) {
  msc_options *o = seg_options("segmentation", "bilinear");
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 1e-30), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.weight_decay", 0.0), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "lambda.dice", 1.0), MSC_OK);
  msc_model *m = create(o);
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);
  float *s1, *s2;
  int32_t *mask;
  msc_batch *b = random_batch(2, 3, &s1, &s2, &mask);
  msc_step_result full;
  ck_assert_int_eq(step(m, b, &full), MSC_OK);
  ck_assert(full.loss_seg > 0 && full.loss_dice > 0 && full.loss_bce == 0);
  const size_t v010 = 72; /* 4 + 4 + 8 (step) + 7 doubles (loss .. lr): 0.1.0, by hand */
  ck_assert_uint_eq(offsetof(msc_step_result, loss_seg), v010);
  const uint32_t sizes[] = {(uint32_t)v010, (uint32_t)v010 + 4, (uint32_t)v010 + 8,
                            (uint32_t)v010 + 12, (uint32_t)v010 - 1};
  const size_t written[] = {v010, v010, v010 + 8, v010 + 8, 0};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; ++k) {
    union {
      msc_step_result r;
      unsigned char bytes[sizeof(msc_step_result) + 32];
    } g;
    memset(&g, 0xA5, sizeof g);
    g.r.struct_size = sizes[k];
    const int64_t before = msc_model_step(m);
    msc_status st = msc_train_step(m, b, &g.r);
    for (size_t i = written[k] > 4 ? written[k] : 4; i < sizeof g.bytes; ++i)
      ck_assert_msg(g.bytes[i] == 0xA5, "struct_size %u: byte %zu written", sizes[k], i);
    ck_assert_uint_eq(g.r.struct_size, sizes[k]);
    if (written[k] == 0) {
      ck_assert_int_eq(st, MSC_E_INVALID_ARGUMENT);
      ck_assert_ptr_nonnull(strstr(msc_last_error(), "72"));
      continue;
    }
    ck_assert_int_eq(st, MSC_OK);
    /* lr 1e-30: the weights stay, so the losses repeat (BatchNorm uses the batch). */
    ck_assert(g.r.skipped == 0 && g.r.step == before + 1 && g.r.lr == full.lr);
    ck_assert(fabs(g.r.loss - full.loss) <= 1e-6 * full.loss);
    ck_assert(g.r.loss_bce == 0 && g.r.loss_intra == 0 && g.r.loss_views == 0);
    if (written[k] > v010)
      ck_assert(fabs(g.r.loss_seg - full.loss_seg) <= 1e-6 * full.loss_seg);
  }
  msc_batch_free(b);
  free(s1), free(s2), free(mask);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* A batch without a mask cannot train a segmentation model. */
START_TEST(test_needs_mask) {
  msc_options *o = seg_options("segmentation", "bilinear");
  msc_model *m = create(o);
  float *s1, *s2;
  int32_t *mask;
  msc_batch *b = random_batch(2, 1, &s1, &s2, &mask);
  msc_batch *nb = NULL;
  ck_assert_int_eq(msc_batch_create(&nb), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(nb, "s1", s1, 2, 2, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(nb, "s2", s2, 2, 4, SIZE, SIZE), MSC_OK);
  msc_step_result r;
  ck_assert_int_eq(step(m, nb, &r), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "mask"));
  msc_batch_free(nb), msc_batch_free(b);
  free(s1), free(s2), free(mask);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* One of the 8 flips/rotations of an n × n map, applied forward step by step: k bit 0 a
 * horizontal flip, bit 1 a vertical flip, k >> 2 counter-clockwise quarter turns. */
static void dihedral(const int32_t *src, int64_t n, int k, int32_t *dst) {
  int32_t a[SIZE * SIZE], t[SIZE * SIZE];
  memcpy(a, src, sizeof a);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) t[i * n + j] = a[i * n + (k & 1 ? n - 1 - j : j)];
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) a[i * n + j] = t[(k & 2 ? n - 1 - i : i) * n + j];
  for (int r = 0; r < k >> 2; ++r) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) t[i * n + j] = a[j * n + (n - 1 - i)];
    memcpy(a, t, sizeof a);
  }
  memcpy(dst, a, sizeof a);
}

/* Training with flips and rotations: the mask a step trains on is, for every sample, a
 * flip/rotation of the batch's mask (a plain reference above), and it stays the
 * threshold of the step's own augmented pixels (the staged, normalised S2 band 0; the
 * model normalises with mean 0, std 1), so the pixels and the mask moved together.
 * Photometric augmentations are off here (they never touch the mask); without any aug.*
 * key set a segmentation model trains on the batch's own mask. */
START_TEST(test_mask_follows_augmentation) {
  msc_options *o = seg_options("segmentation", "bilinear");
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 1e-30), MSC_OK);
  msc_model *m = create(o);
  float *s1, *s2;
  int32_t *mask;
  const int64_t n = 6, hw = SIZE * SIZE;
  msc_batch *b = random_batch(n, 21, &s1, &s2, &mask);
  for (int64_t i = 0; i < n; ++i) /* threshold of S2 band 0, -1 near 0 */
    for (int64_t p = 0; p < hw; ++p) {
      float v = s2[(i * 4) * hw + p];
      mask[i * hw + p] = fabsf(v) < 0.2f ? -1 : v > 0;
    }
  ck_assert_int_eq(msc_batch_set_mask(b, mask, n, SIZE, SIZE), MSC_OK);
  msc_step_result r;
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);
  ck_assert(!m->train->aug.hflip && !m->train->aug.crop && m->train->aug.jitter_contrast == 0);
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  int32_t *own = malloc((size_t)(n * hw) * sizeof(int32_t));
  int64_t mh = 0, mw = 0;
  ck_assert_int_eq(msc_batch_mask(b, own, (size_t)(n * hw), &mh, &mw), MSC_OK);
  ck_assert_mem_eq(m->train->view_mask, own, (size_t)(n * hw) * sizeof(int32_t));

  ck_assert_int_eq(msc_options_set_int(o, "aug.hflip", 1), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "aug.vflip", 1), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "aug.rot90", 1), MSC_OK);
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);
  int moved = 0;
  for (int s = 0; s < 3; ++s) {
    ck_assert_int_eq(step(m, b, &r), MSC_OK);
    const int32_t *vm = m->train->view_mask;
    /* The S2 views the step trained on (n × 4 × H × W): the input tensor it wrote them
     * into (lib/train/train.c, stage_views). */
    float *px = malloc((size_t)(n * 4 * hw) * sizeof(float));
    ck_assert_ptr_nonnull(px);
    ck_assert_int_eq(msci_be_tensor_download(m->be, m->train->exec->input[m->cfg.n_mod - 1], px,
                                             (size_t)(n * 4 * hw)),
                     MSC_OK);
    for (int64_t i = 0; i < n; ++i) {
      int match = -1;
      int32_t cand[SIZE * SIZE];
      for (int k = 0; k < 16 && match < 0; ++k) {
        dihedral(own + i * hw, SIZE, k, cand);
        if (memcmp(cand, vm + i * hw, sizeof cand) == 0) match = k;
      }
      ck_assert_msg(match >= 0, "step %d sample %lld: the mask is no flip/rotation", s,
                    (long long)i);
      moved += match != 0; /* the first match: 0 when the map did not move */
      for (int64_t p = 0; p < hw; ++p) {
        float v = px[(i * 4) * hw + p];
        ck_assert_int_eq(vm[i * hw + p], fabsf(v) < 0.2f ? -1 : v > 0);
      }
    }
    free(px);
  }
  ck_assert_int_gt(moved, 6); /* of 18 views, each unmoved with probability 1/4 */
  /* A crop and photometric jitter train too (the mask takes the crop by nearest
   * neighbour: tests/test_augment.c). */
  ck_assert_int_eq(msc_options_set_int(o, "aug.crop", 1), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "aug.jitter_contrast", 0.2), MSC_OK);
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);
  ck_assert_int_eq(step(m, b, &r), MSC_OK);
  ck_assert(isfinite(r.loss) && r.loss_seg > 0);
  /* Per-modality geometries would move the mask for one modality only: refused. */
  ck_assert_int_eq(msc_options_set_int(o, "aug.shared_geometry", 0), MSC_OK);
  ck_assert_int_eq(msc_train_configure(m, o), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "aug.shared_geometry"));
  free(own);
  msc_batch_free(b);
  free(s1), free(s2), free(mask);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* A saved segmentation model loads with its decoder and predicts the same masks bit for
 * bit; a contrastive model's encoders move into it by name (msc_model_copy_weights). */
START_TEST(test_save_load_and_copy_encoders) {
  msc_options *o = seg_options("segmentation", "deconv"),
              *oc = seg_options("contrastive", "bilinear");
  ck_assert_int_eq(msc_options_set_int(oc, "seed", 99), MSC_OK);
  msc_model *m = create(o), *c = create(oc), *back = NULL;
  int64_t copied = 0, enc = 0;
  for (int32_t i = 0; i < c->graph.n_params; ++i)
    enc += strncmp(c->graph.params[i].name, "enc.", 4) == 0;
  ck_assert_int_eq(msc_model_copy_weights(m, c, "enc.", &copied), MSC_OK);
  ck_assert_int_eq(copied, enc);
  char path[128];
  snprintf(path, sizeof path, "/tmp/msc_seg_model_%d.safetensors", (int)getpid());
  ck_assert_int_eq(msc_model_save(m, path), MSC_OK);
  msc_status st = msc_model_load(path, NULL, &back);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  unlink(path);
  ck_assert_int_eq(msc_model_parameter_count(back), msc_model_parameter_count(m));
  float *s1, *s2;
  int32_t *mask;
  msc_batch *b = random_batch(2, 9, &s1, &s2, &mask);
  enum { PX = 2 * SIZE * SIZE };
  int32_t ca[PX], cb[PX];
  static float pa[PX * C], pb[PX * C];
  ck_assert_int_eq(msc_predict_mask(m, b, ca, PX, pa, PX * C), MSC_OK);
  ck_assert_int_eq(msc_predict_mask(back, b, cb, PX, pb, PX * C), MSC_OK);
  ck_assert_mem_eq(ca, cb, sizeof ca);
  ck_assert_mem_eq(pa, pb, sizeof pa);
  /* Too small outputs and a model without a decoder are refused. */
  ck_assert_int_eq(msc_predict_mask(m, b, ca, PX - 1, NULL, 0), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(msc_predict_mask(m, b, ca, PX, pa, PX * C - 1), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(msc_predict_mask(c, b, ca, PX, NULL, 0), MSC_E_INVALID_ARGUMENT);
  msc_batch_free(b);
  free(s1), free(s2), free(mask);
  msc_model_free(m), msc_model_free(c), msc_model_free(back);
  msc_options_free(o), msc_options_free(oc);
}
END_TEST

/* Finite inputs up to ±3e38 overflow the decoder's activations: msc_predict_mask refuses
 * with MSC_E_NUMERICAL (never MSC_OK with NaN probabilities or classes argmaxed over
 * NaN), with and without probabilities, and leaves the outputs as they were. */
START_TEST(test_huge_inputs_refused) {
  msc_options *o = seg_options("segmentation", "bilinear");
  msc_model *m = create(o);
  enum { PX = 2 * SIZE * SIZE };
  float *s1 = malloc(2 * 2 * SIZE * SIZE * sizeof(float));
  float *s2 = malloc(2 * 4 * SIZE * SIZE * sizeof(float));
  /* Magnitudes up to 3e38 of both signs: the decoder's last convolution overflows. */
  for (int i = 0; i < 2 * 2 * SIZE * SIZE; ++i)
    s1[i] = 3e38f / 7 * (float)(i % 7) * (i % 3 ? 1 : -1);
  for (int i = 0; i < 2 * 4 * SIZE * SIZE; ++i)
    s2[i] = 3e38f / 5 * (float)(i % 5) * (i % 2 ? 1 : -1);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", s1, 2, 2, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s2", s2, 2, 4, SIZE, SIZE), MSC_OK);
  static int32_t cls[PX];
  static float probs[PX * C];
  for (int with_probs = 0; with_probs <= 1; ++with_probs) {
    for (int i = 0; i < PX; ++i) cls[i] = -7;
    msc_status st = msc_predict_mask(m, b, cls, PX, with_probs ? probs : NULL, PX * C);
    if (st == MSC_OK)
      for (int i = 0; with_probs && i < PX * C; ++i)
        ck_assert_msg(isfinite(probs[i]), "MSC_OK with probability %g at %d", probs[i], i);
    ck_assert_msg(st == MSC_E_NUMERICAL, "status %d (%s)", st, msc_last_error());
    ck_assert_msg(strstr(msc_last_error(), "msc_predict_mask") &&
                      strstr(msc_last_error(), "not finite"),
                  "message '%s'", msc_last_error());
    for (int i = 0; i < PX; ++i) ck_assert_int_eq(cls[i], -7);
  }
  msc_batch_free(b);
  free(s1), free(s2);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* ---- a decoder on one modality of two (seg.modalities) ------------------------------------ */

/* s1: the tiny encoder at 16 × 16; s2: a ResNet-like stem at 24 × 24 (another patch size
 * and other strides, which a decoder that does not read s2 does not care about). */
static msc_options *s1_decoder_options(const char *task) {
  msc_options *o = seg_options(task, "bilinear");
  resnet_like(o, 1, 24);
  if (strcmp(task, "segmentation") == 0)
    ck_assert_int_eq(msc_options_set_string(o, "seg.modalities", "s1"), MSC_OK);
  return o;
}

START_TEST(test_one_modality_decoder) {
  msc_options *oc = s1_decoder_options("contrastive"), *o = s1_decoder_options("segmentation");
  msc_model *mc = create(oc), *m = create(o);
  /* By hand: s1's layer2 (16 channels, 8 × 8) up to 16 × 16, concatenated with s1's
   * layer1 (8): conv 3×3 24→8 (1728) + BN (16) + conv 8→8 (576) + BN (16) + head 8→3
   * with bias (27) = 2,363. */
  ck_assert_int_eq(msc_model_parameter_count(m) - msc_model_parameter_count(mc),
                   1728 + 16 + 576 + 16 + 27);
  const msci_param *p = find(m, "dec.layer1.conv1.weight");
  ck_assert(p && p->dims[0] == 8 && p->dims[1] == 24);
  ck_assert_ptr_null(find(m, "dec.stem.conv1.weight")); /* s2's stem level is not read */
  const msci_node *n = &m->graph.nodes[m->graph.seg_logits];
  ck_assert(n->out[1] == C && n->out[2] == SIZE && n->out[3] == SIZE);

  /* Predicting needs s1 only: a batch without s2 gives what a batch with both gives. */
  float *s1, *s2, *t1, *t2;
  int32_t *mask, *tmask;
  msc_batch *both = random_batch_sized(2, 21, SIZE, 24, &s1, &s2, &mask);
  msc_batch *only = random_batch_sized(2, 21, SIZE, 0, &t1, &t2, &tmask);
  enum { PX = 2 * SIZE * SIZE };
  int32_t ca[PX], cb[PX];
  static float pa[PX * C], pb[PX * C];
  msc_status st = msc_predict_mask(m, only, cb, PX, pb, PX * C);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_predict_mask(m, both, ca, PX, pa, PX * C), MSC_OK);
  ck_assert_mem_eq(ca, cb, sizeof ca);
  ck_assert_mem_eq(pa, pb, sizeof pa);
  /* A batch without s1 is refused, naming it. */
  msc_batch *no_s1 = NULL;
  ck_assert_int_eq(msc_batch_create(&no_s1), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(no_s1, "s2", s2, 2, 4, 24, 24), MSC_OK);
  ck_assert_int_eq(msc_predict_mask(m, no_s1, ca, PX, NULL, 0), MSC_E_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "'s1'"));
  /* Training takes the mask at s1's size; with only the per-pixel term it needs s1 only. */
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);
  msc_step_result r;
  st = step(m, both, &r);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  ck_assert(r.loss > 0 && isfinite(r.loss));
  st = step(m, only, &r);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  ck_assert(r.loss > 0 && isfinite(r.loss));

  /* The file keeps the choice: the loaded model has the same decoder and masks. */
  char path[128], got[64];
  snprintf(path, sizeof path, "/tmp/msc_seg_one_%d.safetensors", (int)getpid());
  ck_assert_int_eq(msc_model_save(m, path), MSC_OK);
  msc_model *back = NULL;
  st = msc_model_load(path, NULL, &back);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  unlink(path);
  msc_options *saved = NULL;
  ck_assert_int_eq(msc_model_options(back, &saved), MSC_OK);
  ck_assert_int_eq(msc_options_get_string(saved, "seg.modalities", got, sizeof got, NULL),
                   MSC_OK);
  ck_assert_str_eq(got, "s1");
  ck_assert_int_eq(msc_model_parameter_count(back), msc_model_parameter_count(m));
  ck_assert_int_eq(msc_predict_mask(m, only, ca, PX, pa, PX * C), MSC_OK);
  ck_assert_int_eq(msc_predict_mask(back, only, cb, PX, pb, PX * C), MSC_OK);
  ck_assert_mem_eq(ca, cb, sizeof ca);
  ck_assert_mem_eq(pa, pb, sizeof pa);
  msc_options_free(saved);
  /* A contrastive model stores no seg.* key (its files stay as before). */
  int32_t set = 1;
  ck_assert_int_eq(msc_model_options(mc, &saved), MSC_OK);
  ck_assert_int_eq(msc_options_is_set(saved, "seg.modalities", &set), MSC_OK);
  ck_assert_int_eq(set, 0);
  msc_options_free(saved);

  /* Refusals: an unknown name, a name twice, and both modalities (two patch sizes). */
  msc_model *bad = NULL;
  ck_assert_int_eq(msc_options_set_string(o, "seg.modalities", "s1, s3"), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &bad), MSC_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msc_last_error(), "seg.modalities") &&
                    strstr(msc_last_error(), "'s3' is not one of s1, s2"),
                "%s", msc_last_error());
  ck_assert_int_eq(msc_options_set_string(o, "seg.modalities", "s1,s1"), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &bad), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "s1 listed twice"));
  ck_assert_int_eq(msc_options_set_string(o, "seg.modalities", "s2,s1"), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &bad), MSC_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msc_last_error(), "s1 has 16, s2 24"), "%s", msc_last_error());
  ck_assert_int_eq(msc_options_set_string(o, "seg.modalities", ""), MSC_OK); /* all */
  ck_assert_int_eq(msc_model_create(o, &bad), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "s1 has 16, s2 24"));
  ck_assert_ptr_null(bad);
  /* seg.modalities = s2 alone: a decoder on s2's ResNet-like levels at 24 × 24. */
  ck_assert_int_eq(msc_options_set_string(o, "seg.modalities", "s2"), MSC_OK);
  msc_model *m2 = create(o);
  n = &m2->graph.nodes[m2->graph.seg_logits];
  ck_assert(n->out[2] == 24 && n->out[3] == 24);
  ck_assert_ptr_nonnull(find(m2, "dec.stem.conv1.weight"));

  msc_batch_free(both), msc_batch_free(only), msc_batch_free(no_s1);
  free(s1), free(s2), free(mask), free(t1), free(t2), free(tmask);
  msc_model_free(mc), msc_model_free(m), msc_model_free(back), msc_model_free(m2);
  msc_options_free(oc), msc_options_free(o);
}
END_TEST

/* ---- learning on synthetic flood chips ---------------------------------------------------- */

#define FS 32 /* chip size */

static msc_dataset *open_split(const char *dir, const char *split) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", split), MSC_OK);
  msc_dataset *ds = NULL;
  msc_status st = msc_dataset_open(dir, "sen1floods11", o, &ds);
  ck_assert_msg(st == MSC_OK, "open %s: %s", dir, msc_last_error());
  msc_options_free(o);
  return ds;
}

static void remove_chips(const char *dir) {
  static const char *const sub[] = {"S1Hand", "S2Hand", "LabelHand"};
  char path[600];
  for (size_t k = 0; k < 3; ++k) {
    snprintf(path, sizeof path, "rm -rf '%s/%s'", dir, sub[k]);
    ck_assert_int_eq(system(path), 0);
  }
  snprintf(path, sizeof path, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(path), 0);
}

START_TEST(test_learns_water) {
  char dir[256];
  snprintf(dir, sizeof dir, "/tmp/msc_seg_%d", (int)getpid());
  msc_options *w = NULL;
  ck_assert_int_eq(msc_options_create(&w), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(w, "synth.size", FS), MSC_OK);
  ck_assert_int_eq(msc_synth_write(dir, "sen1floods11", 60, 11, w), MSC_OK);
  msc_options_free(w);
  msc_dataset *train = open_split(dir, "train"), *test = open_split(dir, "test");
  int64_t mclasses = 0, msize = 0;
  int32_t ignore = 0;
  ck_assert_int_eq(msc_dataset_mask_info(train, &mclasses, &ignore, &msize), MSC_OK);
  ck_assert(mclasses == 2 && msize == FS);

  /* The model: both modalities with tiny encoders, statistics from the training chips. */
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  /* Sen1Floods11 has masks and no patch labels: the modalities and their statistics
   * are set here (msc_options_from_dataset would set classes to the 0 patch classes). */
  static const char *const json =
      "{\"modality.count\":2,\"modality.0.name\":\"s1\",\"modality.0.bands\":2,"
      "\"modality.1.name\":\"s2\",\"modality.1.bands\":13}";
  ck_assert_int_eq(msc_options_from_json(o, json), MSC_OK);
  for (int32_t k = 0; k < 2; ++k) {
    float mean[16], sd[16];
    char key[48];
    ck_assert_int_eq(msc_dataset_compute_stats(train, k, 0, mean, sd, 16), MSC_OK);
    snprintf(key, sizeof key, "modality.%d.mean", (int)k);
    ck_assert_int_eq(msc_options_set_floats(o, key, mean, k ? 13 : 2), MSC_OK);
    snprintf(key, sizeof key, "modality.%d.std", (int)k);
    ck_assert_int_eq(msc_options_set_floats(o, key, sd, k ? 13 : 2), MSC_OK);
    snprintf(key, sizeof key, "modality.%d.size", (int)k);
    ck_assert_int_eq(msc_options_set_int(o, key, FS), MSC_OK);
  }
  ck_assert_int_eq(msc_options_set_int(o, "classes", 2), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "class_names", "no water;water"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", "tiny"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.encoder", "tiny"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "task", "segmentation"), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "seed", 3), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "seg.ignore_index", ignore), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "optim.lr", 0.01), MSC_OK);
  msc_model *m = create(o);
  ck_assert_int_eq(msc_train_configure(m, o), MSC_OK);

  const int64_t ntrain = msc_dataset_size(train), ntest = msc_dataset_size(test), bs = 8;
  ck_assert(ntrain >= 2 * bs && ntest >= 4);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int64_t idx[64];
  msc_step_result r;
  double first = 0, last = 0;
  for (int epoch = 0; epoch < 6; ++epoch)
    for (int64_t from = 0; from + bs <= ntrain; from += bs) {
      for (int64_t i = 0; i < bs; ++i) idx[i] = (from + i + epoch * 3) % ntrain;
      ck_assert_int_eq(msc_dataset_fill_batch(train, idx, bs, b), MSC_OK);
      msc_status st = step(m, b, &r);
      ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
      if (epoch == 0 && from == 0) first = r.loss;
      last = r.loss;
    }

  /* Held-out chips: the model's classes against the masks, and all-land (class 0). */
  const int64_t n = ntest < 64 ? ntest : 64, pixels = n * FS * FS;
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  ck_assert_int_eq(msc_dataset_fill_batch(test, idx, n, b), MSC_OK);
  int32_t *truth = malloc((size_t)pixels * sizeof(int32_t));
  int32_t *pred = malloc((size_t)pixels * sizeof(int32_t));
  int32_t *land = calloc((size_t)pixels, sizeof(int32_t));
  float *probs = malloc((size_t)pixels * 2 * sizeof(float));
  int64_t h = 0, wd = 0;
  ck_assert_int_eq(msc_batch_mask(b, truth, (size_t)pixels, &h, &wd), MSC_OK);
  ck_assert_int_eq(msc_predict_mask(m, b, pred, (size_t)pixels, probs, (size_t)pixels * 2),
                   MSC_OK);
  /* The classes are the arg max of the probabilities, which sum to 1 per pixel. */
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < FS * FS; ++p) {
      float p0 = probs[(i * 2 + 0) * FS * FS + p], p1 = probs[(i * 2 + 1) * FS * FS + p];
      ck_assert(fabsf(p0 + p1 - 1.0f) < 1e-5f);
      ck_assert_int_eq(pred[i * FS * FS + p], p1 > p0 ? 1 : 0);
    }
  int64_t cm[4], base[4];
  ck_assert_int_eq(msc_metrics_confusion(pred, truth, pixels, 2, ignore, cm), MSC_OK);
  ck_assert_int_eq(msc_metrics_confusion(land, truth, pixels, 2, ignore, base), MSC_OK);
  /* IoU of water = TP / (TP + FP + FN), row = truth, column = prediction. */
  double iou = (double)cm[3] / (double)(cm[3] + cm[1] + cm[2]);
  double iou_land = (double)base[3] / (double)(base[3] + base[1] + base[2]);
  double acc = (double)(cm[0] + cm[3]) / (double)(cm[0] + cm[1] + cm[2] + cm[3]);
  double acc_land =
      (double)(base[0] + base[3]) / (double)(base[0] + base[1] + base[2] + base[3]);
  printf("segmentation on synthetic Sen1Floods11 (%lld train, %lld test chips of %dx%d): "
         "loss %.3f -> %.3f; water IoU %.3f (all-land %.3f), pixel accuracy %.3f "
         "(all-land %.3f)\n",
         (long long)ntrain, (long long)n, FS, FS, first, last, iou, iou_land, acc, acc_land);
  ck_assert(last < first);
  ck_assert_msg(iou > 0.5 && iou > iou_land + 0.5, "water IoU %.3f, all-land %.3f", iou,
                iou_land);
  free(truth), free(pred), free(land), free(probs);
  msc_batch_free(b);
  msc_model_free(m);
  msc_options_free(o);
  msc_dataset_free(train), msc_dataset_free(test);
  remove_chips(dir);
}
END_TEST

static Suite *seg_suite(void) {
  Suite *s = suite_create("segmentation");
  /* Separate cases, so that CK_RUN_CASE=model runs the quick ones (e.g. under valgrind). */
  TCase *model = tcase_create("model"), *grad = tcase_create("gradient");
  TCase *learn = tcase_create("learning");
  tcase_set_timeout(model, 120);
  tcase_set_timeout(grad, 120);
  tcase_set_timeout(learn, 120);
  tcase_add_test(model, test_parameter_count);
  tcase_add_test(model, test_strided_stem_reaches_input_size);
  tcase_add_test(model, test_needs_mask);
  tcase_add_test(model, test_save_load_and_copy_encoders);
  tcase_add_test(model, test_one_modality_decoder);
  tcase_add_test(model, test_huge_inputs_refused);
  tcase_add_test(grad, test_gradient_bilinear);
  tcase_add_test(grad, test_gradient_deconv);
  tcase_add_test(grad, test_gradient_odd_size);
  tcase_add_test(grad, test_gradient_dice);
  tcase_add_test(model, test_step_result_sizes);
  tcase_add_test(model, test_mask_follows_augmentation);
  tcase_add_test(learn, test_learns_water);
  suite_add_tcase(s, model);
  suite_add_tcase(s, grad);
  suite_add_tcase(s, learn);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(seg_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
