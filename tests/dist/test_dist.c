/*
 * test_dist.c — data-parallel training over MPI (docs/distributed.md), run under
 * mpirun by tests/dist/dist.cmake. The communicator's engine is MSC_TEST_DIST_ENGINE
 * ("mpi" when unset; "nccl" for tests/dist/nccl.sh). Modes:
 *
 *   equiv      Every rank first trains a single-process model on the whole global batch
 *              of 32 samples (the reference), then a model attached to the communicator
 *              on its share (32 / ranks samples); the loss terms and every trainable
 *              parameter after two steps must agree to float32 tolerance. Two setups:
 *              (a) frozen encoders (BatchNorm only in inference mode), augmentations and
 *                  modality dropout on (they draw from the global sample index), every
 *                  contrastive term with global negatives, MulSupCon and BCE over a
 *                  labelled subset; distinct samples per rank;
 *              (b) encoders training with local BatchNorm: every rank gets the same 16
 *                  samples and the reference the 32 = 16 + 16 duplicates, so that each
 *                  rank's batch statistics equal the global batch's (the biased
 *                  variance of a doubled batch is the same); augmentations off. The
 *                  running variances are not compared (n/(n−1) differs), the means are;
 *              (c) encoders training with synchronised BatchNorm (train.sync_bn = 1) on
 *                  distinct samples per rank (augmentations off): every BatchNorm
 *                  normalises with the global batch's statistics, so the terms, every
 *                  parameter and the running means AND variances (unbiased with the
 *                  global count, no averaging) must match the single process. A guard:
 *                  the same distinct samples with local BatchNorm must differ from it
 *                  measurably (else (c) would prove nothing).
 *   wedge T    Rank 0 sets a timeout of T s and steps; the other ranks never step (they
 *              sleep). Rank 0 must get MSC_E_COMM within T + 5 s: prints "WEDGE OK".
 *   kill DIR   Train forever, rank 0 saving DIR/ckpt.safetensors after every step and
 *              each rank writing its pid to DIR/rank<r>.pid (dist.cmake kills rank 1).
 *   resume DIR Resuming with another number of ranks (msc_train_set_dist broadcasts rank
 *              0's step and optimiser moments): a single-process reference (setup (a),
 *              SGD with momentum) takes 2 steps on the global batch, rank 0 saves it as
 *              DIR/ckpt.safetensors, and the reference takes 2 more. Then rank 0 loads the
 *              checkpoint while the other ranks create a fresh model (step 0, moments 0);
 *              after msc_train_set_dist every rank must be at step 2, and 2 distributed
 *              steps must agree with the reference's last 2.
 *   syncfail   Synchronised BatchNorm when one rank's step fails after the step began:
 *              rank 1's batch holds a NaN pixel (refused while its views are staged, before
 *              its forward pass). Rank 1 must get its own error, rank 0 MSC_E_COMM at once
 *              (well within the 60 s timeout: rank 1 makes its BatchNorm reductions
 *              flagged as failed instead of leaving rank 0 waiting in one), and the
 *              communicator must still work: a next step with good data succeeds on both.
 *   agree      msc_dist_agree: all OK, one rank failing (with and without a why), every
 *              rank failing, a why longer than is sent, and the refusals (agree()).
 *   overlap    The gradient all-reduce overlapping the backward pass (train.dist_overlap,
 *              lib/train/dist_grad.c), with synchronised BatchNorm (whose reductions run
 *              in the same pass) and buckets of 1000 values (train.dist_bucket), so that
 *              the tiny model has 15: two steps with overlap on and two with it off
 *              must give bit-identical parameters (the same buckets, hence the same
 *              sums), both within 2e-4 of one process on the global batch; with overlap
 *              buckets must have started inside the backward pass, without none. Then a
 *              failure in rank 1's backward pass at 7 places from the first bucket to
 *              the last (the communicator's test call, wrapped by this program, fails),
 *              with synchronised and with local BatchNorm: rank 1 gets its own error,
 *              rank 0 MSC_E_COMM at once (rank 1 drains: it makes the remaining
 *              BatchNorm reductions and starts the remaining buckets in its peers'
 *              order), no request is left, and the next step works on both.
 *   load FILE  (no mpirun) loads FILE: exit 0 when it is a valid model.
 *   compare A B RTOL  (no mpirun) loads two models: exit 0 when every parameter agrees
 *              to RTOL relative (|a − b| / (1e-4 + |a|)), 1 otherwise; prints the worst.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mosaic/mosaic.h"
#include "model/model.h"
#include "backend/backend_call.h"
#include "common/internal.h"
#include "train/dist.h"

#define NG   32 /* global batch */
#define SIZE 16
#define C    4

static int g_fail;
#define CHECK(cond, ...)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                     \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fprintf(stderr, " (%s)\n", msc_last_error());                                            \
      g_fail = 1;                                                                              \
    }                                                                                          \
  } while (0)
#define MUST(call)                                                                             \
  do {                                                                                         \
    msc_status st_ = (call);                                                                   \
    if (st_ != MSC_OK) {                                                                       \
      fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, msc_last_error());    \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

typedef struct data {
  float s1[NG * 2 * SIZE * SIZE], s2[NG * 4 * SIZE * SIZE];
  uint8_t y[NG * C], lab[NG];
} data;

static void make_data(data *d, uint64_t seed) {
  uint64_t x = seed;
  for (size_t i = 0; i < sizeof d->s1 / sizeof(float); ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    d->s1[i] = (float)((x >> 40) % 2000) / 100.0f - 10.0f;
  }
  for (size_t i = 0; i < sizeof d->s2 / sizeof(float); ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    d->s2[i] = (float)((x >> 40) % 1000) / 1000.0f;
  }
  for (int i = 0; i < NG; ++i) {
    for (int k = 0; k < C; ++k) d->y[i * C + k] = (uint8_t)(((i * 7 + k * 3) % 5) < 2);
    d->y[i * C + i % C] = 1;
    d->lab[i] = (uint8_t)(i % 3 != 0); /* a labelled subset */
  }
}

static msc_batch *batch_of(const data *d, int from, int n) {
  msc_batch *b = NULL;
  MUST(msc_batch_create(&b));
  MUST(msc_batch_set_modality(b, "s1", d->s1 + (size_t)from * 2 * SIZE * SIZE, n, 2, SIZE,
                              SIZE));
  MUST(msc_batch_set_modality(b, "s2", d->s2 + (size_t)from * 4 * SIZE * SIZE, n, 4, SIZE,
                              SIZE));
  MUST(msc_batch_set_labels(b, d->y + from * C, n, C));
  MUST(msc_batch_set_labeled(b, d->lab + from, n));
  return b;
}

static msc_model *make_model_opts(int frozen, int sync_bn, int overlap, int bucket) {
  msc_options *o = NULL;
  MUST(msc_options_create(&o));
  MUST(msc_options_from_json(
      o, "{\"modality.0.encoder\":\"tiny\",\"modality.1.encoder\":\"tiny\","
         "\"modality.0.size\":16,\"modality.1.size\":16,\"modality.1.bands\":4,"
         "\"classes\":4,\"class_names\":\"a;b;c;d\",\"proj.dim\":16,\"seed\":7}"));
  MUST(msc_options_set_string(o, "train.preset", "mosaic2"));
  MUST(msc_options_set_float(o, "lambda.intra", 0.5)); /* every term */
  MUST(msc_options_set_string(o, "optim.kind", "sgd"));
  MUST(msc_options_set_float(o, "optim.lr", 0.01));
  MUST(msc_options_set_float(o, "optim.weight_decay", 0.0));
  MUST(msc_options_set_int(o, "optim.warmup_steps", 0));
  MUST(msc_options_set_int(o, "train.sync_bn", sync_bn));
  MUST(msc_options_set_int(o, "train.dist_overlap", overlap));
  if (bucket > 0) MUST(msc_options_set_int(o, "train.dist_bucket", bucket));
  if (frozen) {
    MUST(msc_options_set_int(o, "train.freeze_encoders", 1));
    MUST(msc_options_set_float(o, "train.modality_dropout", 0.3));
  } else {
    const char *off[] = {"aug.crop", "aug.hflip", "aug.vflip", "aug.rot90"};
    const char *zero[] = {"aug.noise_std", "aug.jitter_brightness", "aug.jitter_contrast",
                          "aug.speckle"};
    for (int i = 0; i < 4; ++i) MUST(msc_options_set_int(o, off[i], 0));
    for (int i = 0; i < 4; ++i) MUST(msc_options_set_float(o, zero[i], 0.0));
  }
  msc_model *m = NULL;
  MUST(msc_model_create(o, &m));
  MUST(msc_train_configure(m, o));
  msc_options_free(o);
  return m;
}

static msc_model *make_model_sync(int frozen, int sync_bn) {
  return make_model_opts(frozen, sync_bn, 1, 0);
}

static msc_model *make_model(int frozen) {
  return make_model_sync(frozen, 0);
}

static double terms(const msc_step_result *r, int i) {
  const double v[] = {r->loss,       r->loss_intra, r->loss_inter,
                      r->loss_fused, r->loss_views, r->loss_bce};
  return v[i];
}

/* Two steps; the results of each into res[2]. */
static void train2(msc_model *m, msc_batch *b, msc_step_result *res) {
  for (int s = 0; s < 2; ++s) {
    memset(&res[s], 0, sizeof res[s]);
    res[s].struct_size = sizeof res[s];
    MUST(msc_train_step(m, b, &res[s]));
  }
}

static int is_stat(const msci_param *p) {
  return p->kind == MSCI_PARAM_BN_MEAN || p->kind == MSCI_PARAM_BN_VAR;
}

/* The worst relative difference of the loss terms of two steps. */
static double worst_term(const msc_step_result *rr, const msc_step_result *dr) {
  double worst = 0;
  for (int s = 0; s < 2; ++s)
    for (int i = 0; i < 6; ++i) {
      double a = terms(&rr[s], i), b = terms(&dr[s], i);
      double err = fabs(a - b) / (1.0 + fabs(a));
      if (!(err <= worst)) worst = err;
    }
  return worst;
}

/* The worst relative difference |a − b| / (1e-4 + |a|) of the parameters, running means
 * included, running variances only when with_var. */
static double worst_param(msc_model *ref, msc_model *dm, int with_var) {
  double worst = 0;
  for (int32_t p = 0; p < ref->graph.n_params; ++p) {
    const msci_param *pr = &ref->graph.params[p];
    if (pr->kind == MSCI_PARAM_BN_VAR && !with_var) continue;
    size_t n = 1;
    for (int32_t k = 0; k < pr->ndim; ++k) n *= (size_t)pr->dims[k];
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    MUST(msci_be_tensor_download(ref->be, pr->t, a, n));
    MUST(msci_be_tensor_download(dm->be, dm->graph.params[p].t, b, n));
    for (size_t i = 0; i < n; ++i) {
      double err = fabs((double)a[i] - b[i]) / (1e-4 + fabs((double)a[i]));
      if (!(err <= worst)) worst = err; /* NaN counts as the worst */
    }
    free(a), free(b);
  }
  return worst;
}

/* The running statistics (BatchNorm mean and variance) that moved in the reference: a
 * count, so that a setup that compares them cannot pass on untouched ones. */
static int moved_stats(msc_model *ref) {
  int moved = 0;
  for (int32_t p = 0; p < ref->graph.n_params; ++p) {
    const msci_param *pr = &ref->graph.params[p];
    if (!is_stat(pr)) continue;
    size_t n = 1;
    for (int32_t k = 0; k < pr->ndim; ++k) n *= (size_t)pr->dims[k];
    float *v = malloc(n * sizeof(float));
    MUST(msci_be_tensor_download(ref->be, pr->t, v, n));
    /* Fresh statistics are mean 0 and variance 1. */
    moved += pr->kind == MSCI_PARAM_BN_MEAN ? v[0] != 0.0f : v[0] != 1.0f;
    free(v);
  }
  return moved;
}

static void compare(const char *setup, int rank, msc_model *ref, msc_model *dm,
                    const msc_step_result *rr, const msc_step_result *dr, int with_var) {
  for (int s = 0; s < 2; ++s)
    for (int i = 0; i < 6; ++i) {
      double a = terms(&rr[s], i), b = terms(&dr[s], i);
      CHECK(fabs(a - b) <= 1e-5 + 1e-5 * fabs(a), "%s rank %d step %d term %d: %.9g vs %.9g",
            setup, rank, s, i, a, b);
    }
  /* The terms the setup exercises are non-zero (a test that cannot fail is no test). */
  for (int i = 1; i < 6; ++i) CHECK(terms(&rr[0], i) > 0, "%s term %d is 0", setup, i);
  /* Running variances: see the header comment ((b) leaves them out). */
  double worst = worst_param(ref, dm, with_var);
  CHECK(worst < 2e-4, "%s rank %d: parameters%s differ (worst relative error %.3g)", setup,
        rank, with_var ? " or running statistics" : "", worst);
  printf("%s rank %d: loss %.6f (reference %.6f), worst parameter error %.3g\n", setup, rank,
         dr[1].loss, rr[1].loss, worst);
}

static void equiv(msc_dist *dist) {
  const int R = msc_dist_size(dist), r = msc_dist_rank(dist);
  if (NG % R) {
    fprintf(stderr, "equiv needs a rank count dividing %d\n", NG);
    exit(1);
  }
  static data d, dup;
  make_data(&d, 11);
  /* (a) frozen encoders, distinct samples, augmentations and dropout on. */
  {
    msc_model *ref = make_model(1), *dm = make_model(1);
    msc_batch *all = batch_of(&d, 0, NG), *mine = batch_of(&d, r * (NG / R), NG / R);
    msc_step_result rr[2], dr[2];
    train2(ref, all, rr);
    MUST(msc_train_set_dist(dm, dist));
    train2(dm, mine, dr);
    compare("frozen-encoders", r, ref, dm, rr, dr, 0);
    msc_batch_free(all), msc_batch_free(mine);
    msc_model_free(ref), msc_model_free(dm);
  }
  /* (b) encoders training, local BatchNorm, every rank the same 32 / R samples. */
  {
    const int n = NG / R;
    dup = d;
    for (int i = n; i < NG; ++i) {
      memcpy(dup.s1 + (size_t)i * 2 * SIZE * SIZE, d.s1 + (size_t)(i % n) * 2 * SIZE * SIZE,
             2 * SIZE * SIZE * sizeof(float));
      memcpy(dup.s2 + (size_t)i * 4 * SIZE * SIZE, d.s2 + (size_t)(i % n) * 4 * SIZE * SIZE,
             4 * SIZE * SIZE * sizeof(float));
      memcpy(dup.y + i * C, d.y + (i % n) * C, C);
      dup.lab[i] = d.lab[i % n];
    }
    msc_model *ref = make_model(0), *dm = make_model(0);
    msc_batch *all = batch_of(&dup, 0, NG), *mine = batch_of(&d, 0, n);
    msc_step_result rr[2], dr[2];
    train2(ref, all, rr);
    MUST(msc_train_set_dist(dm, dist));
    train2(dm, mine, dr);
    compare("local-batchnorm", r, ref, dm, rr, dr, 0);
    msc_batch_free(all), msc_batch_free(mine);
    msc_model_free(ref), msc_model_free(dm);
  }
  /* (c) encoders training, synchronised BatchNorm, distinct samples per rank. The
   * reference is one process with train.sync_bn = 1 on the 32 samples: the same kernel
   * (cpu_bnorm_sync.c, itself checked against ordinary BatchNorm in test_cpu_ops) with
   * nothing to sum. Against oneDNN's BatchNorm (train.sync_bn = 0) the terms agree as
   * tightly, the parameters only to 1e-2: the kernels round differently, and the
   * BatchNorm biases are sums over 8192 values that cancel to ~1e-4, so their rounding
   * shows (measured 2e-3). */
  {
    msc_model *ref = make_model_sync(0, 1), *dm = make_model_sync(0, 1);
    msc_model *plain = make_model(0), *lm = make_model(0);
    msc_batch *all = batch_of(&d, 0, NG), *mine = batch_of(&d, r * (NG / R), NG / R);
    msc_step_result rr[2], dr[2], pr[2], lr[2];
    train2(ref, all, rr);
    CHECK(moved_stats(ref) > 0, "the reference's running statistics did not move");
    MUST(msc_train_set_dist(dm, dist));
    train2(dm, mine, dr);
    compare("sync-batchnorm", r, ref, dm, rr, dr, 1);
    train2(plain, all, pr);
    const double pt = worst_term(pr, dr), pp = worst_param(plain, dm, 1);
    CHECK(pt < 1e-5 && pp < 1e-2,
          "sync-batchnorm rank %d against oneDNN's BatchNorm on one process: worst term %.3g, "
          "worst parameter %.3g",
          r, pt, pp);
    /* The guard: local BatchNorm on the same distinct samples is far off (the test
     * above would fail without the option). */
    MUST(msc_train_set_dist(lm, dist));
    train2(lm, mine, lr);
    const double lt = worst_term(pr, lr), lp = worst_param(plain, lm, 1);
    CHECK(lp > 0.1 && lt > 1e-5,
          "local BatchNorm on distinct samples should differ from the global batch's: worst "
          "term %.3g, worst parameter %.3g",
          lt, lp);
    printf("sync-batchnorm rank %d: against oneDNN's BatchNorm %.3g (terms), %.3g "
           "(parameters); local BatchNorm instead %.3g, %.3g\n",
           r, pt, pp, lt, lp);
    msc_batch_free(all), msc_batch_free(mine);
    msc_model_free(ref), msc_model_free(dm), msc_model_free(plain), msc_model_free(lm);
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void syncfail(msc_dist *dist) {
  const int r = msc_dist_rank(dist);
  static data d;
  make_data(&d, 17);
  msc_model *m = make_model_sync(0, 1);
  MUST(msc_train_set_dist(m, dist));
  msc_batch *good = batch_of(&d, r * 8, 8);
  static data bad;
  bad = d;
  bad.s1[(size_t)(r * 8 + 3) * 2 * SIZE * SIZE + 17] = NAN;
  msc_batch *b = r == 1 ? batch_of(&bad, r * 8, 8) : batch_of(&d, r * 8, 8);
  msc_step_result res;
  memset(&res, 0, sizeof res);
  res.struct_size = sizeof res;
  double t0 = now_s();
  msc_status st = msc_train_step(m, b, &res);
  double took = now_s() - t0;
  printf("syncfail rank %d: step returned %s after %.2f s: %s\n", r, msc_status_string(st),
         took, msc_last_error());
  if (r == 1)
    CHECK(st != MSC_OK && st != MSC_E_COMM, "rank 1 should fail with its own error, got %s",
          msc_status_string(st));
  else
    CHECK(st == MSC_E_COMM, "rank 0 should get MSC_E_COMM, got %s", msc_status_string(st));
  CHECK(took < 20, "rank %d: the failure took %.2f s (the timeout is 60 s)", r, took);
  st = msc_train_step(m, good, &res);
  CHECK(st == MSC_OK, "rank %d: the next step with good data failed: %s", r,
        msc_status_string(st));
  if (!g_fail) printf("SYNCFAIL OK rank %d\n", r);
  msc_batch_free(good), msc_batch_free(b);
  msc_model_free(m);
}

/* msc_dist_agree (dist.cmake runs 3 ranks): every rank OK gives MSC_OK everywhere; rank
 * 1 failing alone (with a why, then without one: its last error travels) gets its own
 * status and message back while the others get MSC_E_COMM naming rank 1, its status and
 * its why, at once (well within the 60 s timeout); every rank failing: each gets its own
 * error; two of three failing: rank 0 hears of the lower and the count; a why longer than
 * the 255 bytes sent arrives cut at a character boundary; a status the library does not
 * have and a NULL communicator are refused before any collective (a rank that went on
 * into one would hang: ctest's timeout). The communicator works after each failure (a
 * barrier; then msc_dist_free finalises MPI on every rank). */
static void agree(msc_dist *dist) {
  const int r = msc_dist_rank(dist), R = msc_dist_size(dist);
  int32_t failed = 7;
  msc_status st = msc_dist_agree(dist, MSC_OK, NULL, &failed);
  CHECK(st == MSC_OK && failed == 0, "rank %d: all OK gave %s, %d failed", r,
        msc_status_string(st), (int)failed);

  double t0 = now_s();
  st = msc_dist_agree(dist, r == 1 ? MSC_E_IO : MSC_OK, r == 1 ? "cannot write x.log" : NULL,
                      &failed);
  CHECK(failed == 1, "rank %d: %d failed, want 1", r, (int)failed);
  double took = now_s() - t0;
  const char *msg = msc_last_error();
  printf("agree rank %d: %s after %.2f s: %s\n", r, msc_status_string(st), took, msg);
  if (r == 1)
    CHECK(st == MSC_E_IO && strcmp(msg, "cannot write x.log") == 0,
          "rank 1 should get its own MSC_E_IO and why back");
  else
    CHECK(st == MSC_E_COMM &&
              strcmp(msg, "rank 1 failed (input/output error): cannot write x.log") == 0,
          "rank %d should get MSC_E_COMM naming rank 1", r);
  CHECK(took < 20, "rank %d: agreeing on a failure took %.2f s", r, took);
  MUST(msc_dist_barrier(dist));

  /* no why: the failed rank's last error travels */
  if (r == 1) msci_fail(MSC_E_SHAPE, "x is 3x4, want 4x4");
  st = msc_dist_agree(dist, r == 1 ? MSC_E_SHAPE : MSC_OK, r == 1 ? "" : NULL, NULL);
  if (r != 1)
    CHECK(st == MSC_E_COMM && strcmp(msc_last_error(),
                                     "rank 1 failed (shape mismatch): x is 3x4, want 4x4") == 0,
          "rank %d: the last error of rank 1 should travel", r);
  else
    CHECK(st == MSC_E_SHAPE, "rank 1 should get MSC_E_SHAPE");

  /* every rank fails: each gets its own error back */
  st = msc_dist_agree(dist, MSC_E_NOT_FOUND, r == 0 ? "no such modality" : "other", &failed);
  CHECK(failed == R, "rank %d: %d failed, want %d", r, (int)failed, R);
  CHECK(st == MSC_E_NOT_FOUND &&
            strcmp(msc_last_error(), r == 0 ? "no such modality" : "other") == 0,
        "rank %d failed itself", r);

  /* every rank but rank 0 fails (3 ranks or more): rank 0 hears of the lowest, and how
   * many */
  st = msc_dist_agree(dist, r == 0 ? MSC_OK : MSC_E_NUMERICAL, "NaN in the loss", NULL);
  if (r == 0 && R > 2) {
    char want[128];
    snprintf(want, sizeof want,
             "%d ranks failed, the first rank 1 (numerical error): NaN in the loss", R - 1);
    CHECK(st == MSC_E_COMM && strcmp(msc_last_error(), want) == 0, "rank 0: want \"%s\"", want);
  } else if (r > 0) {
    CHECK(st == MSC_E_NUMERICAL, "rank %d failed itself", r);
  }

  /* a long why: the first 255 bytes, not ending inside "é" (2 bytes at 254..255) */
  char longwhy[400];
  memset(longwhy, 'a', sizeof longwhy);
  longwhy[254] = (char)0xC3, longwhy[255] = (char)0xA9;
  longwhy[sizeof longwhy - 1] = 0;
  st = msc_dist_agree(dist, r == 0 ? MSC_E_IO : MSC_OK, r == 0 ? longwhy : NULL, NULL);
  const char *got = msc_last_error();
  const char *tail = r == 0 ? got : strstr(got, "): ");
  if (tail && r != 0) tail += 3;
  CHECK(tail && strlen(tail) == 254 && strspn(tail, "a") == 254,
        "rank %d: the long why should arrive as 254 bytes of 'a', got %zu", r,
        tail ? strlen(tail) : (size_t)0);

  /* refused before any collective, on every rank alike */
  failed = 7;
  CHECK(msc_dist_agree(NULL, MSC_OK, NULL, &failed) == MSC_E_INVALID_ARGUMENT && failed == -1,
        "NULL dist");
  CHECK(msc_dist_agree(dist, 1, NULL, NULL) == MSC_E_INVALID_ARGUMENT, "status 1");
  CHECK(msc_dist_agree(dist, MSC_E_COMM - 1, NULL, NULL) == MSC_E_INVALID_ARGUMENT,
        "a status below the lowest");
  MUST(msc_dist_barrier(dist));
  if (!g_fail) printf("AGREE OK rank %d\n", r);
}

/* 1 when every parameter and running statistic of a and b is bit-identical. */
static int same_bits(msc_model *a, msc_model *b) {
  int same = 1;
  for (int32_t p = 0; p < a->graph.n_params; ++p) {
    const msci_param *pr = &a->graph.params[p];
    size_t n = 1;
    for (int32_t k = 0; k < pr->ndim; ++k) n *= (size_t)pr->dims[k];
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    MUST(msci_be_tensor_download(a->be, pr->t, x, n));
    MUST(msci_be_tensor_download(b->be, b->graph.params[p].t, y, n));
    if (memcmp(x, y, n * sizeof(float)) != 0) same = 0;
    free(x), free(y);
  }
  return same;
}

/* The communicator's test call, failing once after g_fail_after calls (0: never). */
static mcm_iface g_wrapped;
static const mcm_iface *g_real;
static int g_fail_after, g_tests;
static msc_status failing_test(mcm_comm *c, mcm_request *req, int32_t *done) {
  if (++g_tests == g_fail_after) {
    *done = 0;
    return msci_fail(MSC_E_IO, "injected failure in rank 1's backward pass");
  }
  return g_real->test(c, req, done);
}

static void overlap(msc_dist *dist) {
  const int R = msc_dist_size(dist), r = msc_dist_rank(dist);
  if (NG % R) {
    fprintf(stderr, "overlap needs a rank count dividing %d\n", NG);
    exit(1);
  }
  static data d;
  make_data(&d, 19);
  msc_clear_error();
  msc_model *ref = make_model_opts(0, 1, 1, 1000);
  msc_model *on = make_model_opts(0, 1, 1, 1000), *off = make_model_opts(0, 1, 0, 1000);
  msc_batch *all = batch_of(&d, 0, NG), *mine = batch_of(&d, r * (NG / R), NG / R);
  msc_step_result rr[2], onr[2], offr[2];
  train2(ref, all, rr);
  MUST(msc_train_set_dist(on, dist));
  train2(on, mine, onr);
  const int buckets = dist->gb_n, early_on = dist->gb_early;
  MUST(msc_train_set_dist(off, dist));
  train2(off, mine, offr);
  const int early_off = dist->gb_early;
  printf("overlap rank %d: %d buckets, started during the backward pass: %d with overlap, %d "
         "without\n",
         r, buckets, early_on, early_off);
  CHECK(buckets >= 8, "rank %d: %d buckets of 1000 values (expected several)", r, buckets);
  CHECK(early_on > 0, "rank %d: no bucket started during the backward pass", r);
  CHECK(early_off == 0, "rank %d: %d buckets started during the backward without overlap", r,
        early_off);
  CHECK(same_bits(on, off), "rank %d: overlap on and off give different parameters", r);
  for (int s = 0; s < 2; ++s)
    CHECK(onr[s].loss == offr[s].loss, "rank %d step %d: loss %.9g with overlap, %.9g without",
          r, s, onr[s].loss, offr[s].loss);
  compare("overlap", r, ref, on, rr, onr, 1);

  /* A failure in the middle of rank 1's backward pass, at several places, with
   * synchronised BatchNorm (rank 0 stops at its next flagged reduction) and with local
   * BatchNorm (rank 0 runs its whole pass, starting every bucket). */
  msc_model *local = make_model_opts(0, 0, 1, 1000);
  MUST(msc_train_set_dist(local, dist));
  g_real = dist->it;
  g_wrapped = *g_real;
  g_wrapped.test = failing_test;
  static const int places[] = {1, 3, 9, 27, 81, 243, 300};
  int mid_pass = 0;
  for (int v = 0; v < 2; ++v) {
    msc_model *m = v == 0 ? on : local;
    for (size_t k = 0; k < sizeof places / sizeof places[0]; ++k) {
      dist->it = &g_wrapped;
      g_tests = 0;
      g_fail_after = r == 1 ? places[k] : 0;
      msc_step_result res;
      memset(&res, 0, sizeof res);
      res.struct_size = sizeof res;
      double t0 = now_s();
      msc_status st = msc_train_step(m, mine, &res);
      double took = now_s() - t0;
      printf("overlap rank %d, %s BatchNorm, failure at test call %d: %s after %.2f s (%d of "
             "%d buckets started in the pass): %s\n",
             r, v == 0 ? "synchronised" : "local", places[k], msc_status_string(st), took,
             dist->gb_early, dist->gb_n, msc_last_error());
      if (r == 1) {
        CHECK(st == MSC_E_IO, "rank 1 should fail with its own error, got %s",
              msc_status_string(st));
        mid_pass += dist->gb_early > 0 && dist->gb_early < dist->gb_n;
      } else {
        CHECK(st == MSC_E_COMM, "rank 0 should get MSC_E_COMM, got %s", msc_status_string(st));
      }
      CHECK(took < 20, "rank %d: the failure took %.2f s (the timeout is 60 s)", r, took);
      for (int32_t b = 0; b < dist->gb_n; ++b)
        CHECK(dist->gb[b].req == NULL, "rank %d: bucket %d is still in flight", r, (int)b);
      g_fail_after = 0;
      g_tests = 0;
      memset(&res, 0, sizeof res);
      res.struct_size = sizeof res;
      st = msc_train_step(m, mine, &res);
      CHECK(st == MSC_OK, "rank %d: the next step failed: %s", r, msc_status_string(st));
      /* The places above lie inside the pass (the test calls of a whole one). */
      CHECK(g_tests > 300, "rank %d: a step made only %d test calls", r, g_tests);
      dist->it = g_real;
    }
  }
  if (r == 1) CHECK(mid_pass >= 4, "rank 1 failed mid-pass only %d times", mid_pass);
  msc_model_free(local);
  if (!g_fail) printf("OVERLAP OK rank %d\n", r);
  msc_batch_free(all), msc_batch_free(mine);
  msc_model_free(ref), msc_model_free(on), msc_model_free(off);
}

static void resume(msc_dist *dist, const char *dir) {
  const int R = msc_dist_size(dist), r = msc_dist_rank(dist);
  if (NG % R) {
    fprintf(stderr, "resume needs a rank count dividing %d\n", NG);
    exit(1);
  }
  static data d;
  make_data(&d, 13);
  char path[4096];
  snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
  msc_model *ref = make_model(1);
  msc_batch *all = batch_of(&d, 0, NG), *mine = batch_of(&d, r * (NG / R), NG / R);
  msc_step_result rr[2], dr[2];
  train2(ref, all, rr);
  if (r == 0) MUST(msc_model_save(ref, path));
  MUST(msc_dist_barrier(dist));
  train2(ref, all, rr);
  msc_model *dm = NULL;
  if (r == 0)
    MUST(msc_model_load(path, NULL, &dm));
  else
    dm = make_model(1);
  MUST(msc_train_set_dist(dm, dist));
  CHECK(msc_model_step(dm) == 2, "rank %d: step %lld after msc_train_set_dist, not 2", r,
        (long long)msc_model_step(dm));
  train2(dm, mine, dr);
  compare("resume", r, ref, dm, rr, dr, 0);
  msc_batch_free(all), msc_batch_free(mine);
  msc_model_free(ref), msc_model_free(dm);
}

/* The worst relative difference of two model files' parameters (tests/dist/tool.sh). */
static int compare_files(const char *a_path, const char *b_path, double rtol) {
  msc_model *a = NULL, *b = NULL;
  MUST(msc_model_load(a_path, NULL, &a));
  MUST(msc_model_load(b_path, NULL, &b));
  if (a->graph.n_params != b->graph.n_params) {
    printf("compare: %d vs %d parameters\n", (int)a->graph.n_params, (int)b->graph.n_params);
    return 1;
  }
  double worst = 0;
  for (int32_t p = 0; p < a->graph.n_params; ++p) {
    const msci_param *pr = &a->graph.params[p];
    size_t n = 1;
    for (int32_t k = 0; k < pr->ndim; ++k) n *= (size_t)pr->dims[k];
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    MUST(msci_be_tensor_download(a->be, pr->t, x, n));
    MUST(msci_be_tensor_download(b->be, b->graph.params[p].t, y, n));
    for (size_t i = 0; i < n; ++i) {
      double err = fabs((double)x[i] - y[i]) / (1e-4 + fabs((double)x[i]));
      if (!(err <= worst)) worst = err; /* NaN counts as the worst */
    }
    free(x), free(y);
  }
  printf("compare %s %s: worst relative parameter difference %.3g (tolerance %g)\n", a_path,
         b_path, worst, rtol);
  msc_model_free(a), msc_model_free(b);
  return worst <= rtol ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "load") == 0) {
    msc_model *m = NULL;
    msc_status st = msc_model_load(argv[2], NULL, &m);
    printf("load %s: %s\n", argv[2], st == MSC_OK ? "ok" : msc_last_error());
    msc_model_free(m);
    return st == MSC_OK ? 0 : 1;
  }
  if (argc >= 5 && strcmp(argv[1], "compare") == 0)
    return compare_files(argv[2], argv[3], atof(argv[4]));
  if (argc < 2) {
    fprintf(stderr,
            "usage: test_dist equiv | overlap | syncfail | agree | wedge SECONDS | kill DIR | "
            "resume DIR | load FILE "
            "| compare A B RTOL\n");
    return 2;
  }
  msc_dist *dist = NULL;
  const char *engine = getenv("MSC_TEST_DIST_ENGINE");
  msc_status st = msc_dist_create(engine && engine[0] ? engine : "mpi", NULL, &dist);
  if (st == MSC_E_BACKEND_UNAVAILABLE) {
    printf("SKIP: %s\n", msc_last_error());
    return 77;
  }
  MUST(st);
  const int r = msc_dist_rank(dist);
  if (strcmp(argv[1], "equiv") == 0) {
    MUST(msc_dist_set_timeout(dist, 120));
    equiv(dist);
  } else if (strcmp(argv[1], "overlap") == 0) {
    MUST(msc_dist_set_timeout(dist, 60));
    overlap(dist);
  } else if (strcmp(argv[1], "syncfail") == 0) {
    MUST(msc_dist_set_timeout(dist, 60));
    syncfail(dist);
  } else if (strcmp(argv[1], "agree") == 0) {
    MUST(msc_dist_set_timeout(dist, 60));
    agree(dist);
  } else if (strcmp(argv[1], "resume") == 0 && argc >= 3) {
    MUST(msc_dist_set_timeout(dist, 120));
    resume(dist, argv[2]);
  } else if (strcmp(argv[1], "wedge") == 0 && argc >= 3) {
    const double T = atof(argv[2]);
    static data d;
    make_data(&d, 3);
    msc_model *m = make_model(1);
    MUST(msc_train_set_dist(m, dist));
    if (r == 0) {
      MUST(msc_dist_set_timeout(dist, T));
      msc_batch *b = batch_of(&d, 0, 8);
      msc_step_result res;
      memset(&res, 0, sizeof res);
      res.struct_size = sizeof res;
      double t0 = now_s();
      st = msc_train_step(m, b, &res);
      double took = now_s() - t0;
      printf("rank 0: step returned %s after %.2f s: %s\n", msc_status_string(st), took,
             msc_last_error());
      CHECK(st == MSC_E_COMM, "expected MSC_E_COMM");
      CHECK(took >= T * 0.9 && took <= T + 5, "took %.2f s for a timeout of %.1f s", took, T);
      st = msc_dist_barrier(dist);
      CHECK(st == MSC_E_COMM, "a broken communicator refuses at once");
      if (!g_fail) printf("WEDGE OK\n");
      fflush(stdout);
      msc_batch_free(b);
      msc_model_free(m);
      msc_dist_free(dist);
      /* MPI is not finalised (the peer is gone): leave as an erring program would. */
      _exit(g_fail ? 1 : 3);
    }
    sleep((unsigned)(T + 8));
    _exit(0);
  } else if (strcmp(argv[1], "kill") == 0 && argc >= 3) {
    static data d;
    make_data(&d, 5);
    msc_model *m = make_model(1);
    MUST(msc_dist_set_timeout(dist, 10));
    MUST(msc_train_set_dist(m, dist));
    char path[4096];
    snprintf(path, sizeof path, "%s/rank%d.pid", argv[2], r);
    FILE *f = fopen(path, "w");
    if (f) fprintf(f, "%d\n", (int)getpid()), fclose(f);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", argv[2]);
    msc_batch *b = batch_of(&d, r * 8, 8);
    for (;;) {
      msc_step_result res;
      memset(&res, 0, sizeof res);
      res.struct_size = sizeof res;
      st = msc_train_step(m, b, &res);
      if (st != MSC_OK) {
        fprintf(stderr, "rank %d: step failed: %s: %s\n", r, msc_status_string(st),
                msc_last_error());
        _exit(1);
      }
      if (r == 0) MUST(msc_model_save(m, path));
    }
  } else {
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
  }
  msc_dist_free(dist);
  return g_fail;
}
