/*
 * test_single_label.c — single-label classification (docs/losses.md, "Single-label
 * classification"): the softmax cross-entropy term (lib/contract/loss_rows.c through
 * msci_loss_softmax_ce and the public msc_loss_softmax_ce, and the CPU backend's loss
 * entry), the label mode of models (option labels, train.labels) and msc_predict's
 * softmax:
 *  (a) a case worked out by hand, and huge logits (closed forms, evaluated here);
 *  (b) a deliberately naive double reference (log Σ exp without the maximum subtracted,
 *      fine for the moderate logits used) on random cases, and every gradient coordinate
 *      against central finite differences of that reference;
 *  (c) the row mask; error paths (a row without exactly one label names the row);
 *  (d) the CPU backend's entry: row offset, mask, weighted gradient added;
 *  (e) a tiny model with labels = single: softmax CE decreases while training on a
 *      synthetic single-label problem, predictions are softmax rows (sum 1), the mode
 *      survives save/load, a multi-labelled sample is refused naming the sample.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/registry.h"
#include "common/internal.h"
#include "common/rng.h"
#include "train/loss.h"
#include "mosaic/mosaic.h"

#define ck_assert_close(got, want, tol)                                                        \
  do {                                                                                         \
    double g_ = (double)(got), w_ = (double)(want);                                            \
    ck_assert_msg(fabs(g_ - w_) <= (tol)*fmax(1.0, fabs(w_)), "%s = %.12g, expected %.12g",    \
                  #got, g_, w_);                                                               \
  } while (0)

/* ---- the plain reference ------------------------------------------------------------- */

/* (1/kept) Σ_kept [log Σ_j exp x_ij − x_{i,t_i}], t_i the index of the row's 1. */
static double ref_ce(const double *x, const uint8_t *y, int64_t n, int64_t c,
                     const uint8_t *mask) {
  double sum = 0;
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (mask && !mask[i]) continue;
    double z = 0, xt = 0;
    for (int64_t j = 0; j < c; ++j) {
      z += exp(x[i * c + j]);
      if (y[i * c + j]) xt = x[i * c + j];
    }
    sum += log(z) - xt;
    kept++;
  }
  return kept ? sum / (double)kept : 0.0;
}

static void random_case(msci_rng *r, int64_t n, int64_t c, float *x, double *xd, uint8_t *y) {
  memset(y, 0, (size_t)(n * c));
  for (int64_t i = 0; i < n * c; ++i) {
    x[i] = (float)(2.0 * msci_rng_normal(r));
    xd[i] = x[i];
  }
  for (int64_t i = 0; i < n; ++i) y[i * c + (int64_t)(msci_rng_next(r) % (uint64_t)c)] = 1;
}

/* ---- (a) hand cases ------------------------------------------------------------------- */

/*
 * Row 0: x = (1, 2, 3), class 2:  l0 = log(e + e² + e³) − 3 = log(1 + e⁻¹ + e⁻²).
 * Row 1: x = (0, 0, 0), class 0:  l1 = log 3.
 * loss = (l0 + l1)/2; grad row 1 = (1/3 − 1, 1/3, 1/3)/2; grad row 0 = (p − e₂)/2 with
 * p = (e⁻², e⁻¹, 1)/(1 + e⁻¹ + e⁻²).
 */
START_TEST(hand_case) {
  const float x[6] = {1, 2, 3, 0, 0, 0};
  const uint8_t y[6] = {0, 0, 1, 1, 0, 0};
  double l = 0;
  float g[6];
  ck_assert_int_eq(msci_loss_softmax_ce(x, y, 2, 3, NULL, &l, g), MSC_OK);
  double z = 1 + exp(-1.0) + exp(-2.0);
  ck_assert_close(l, (log(z) + log(3.0)) / 2, 1e-14);
  ck_assert_close(g[0], exp(-2.0) / z / 2, 1e-7);
  ck_assert_close(g[1], exp(-1.0) / z / 2, 1e-7);
  ck_assert_close(g[2], (1 / z - 1) / 2, 1e-7);
  ck_assert_close(g[3], (1.0 / 3 - 1) / 2, 1e-7);
  ck_assert_close(g[4], 1.0 / 6, 1e-7);
  ck_assert_close(g[5], 1.0 / 6, 1e-7);
  float lf = 0;
  ck_assert_int_eq(msc_loss_softmax_ce(x, y, 2, 3, &lf, NULL), MSC_OK);
  ck_assert_close(lf, (log(z) + log(3.0)) / 2, 1e-6);
}
END_TEST

/* x = (1000, −1000, 0), class 1: l = 2000 + log(1 + e⁻²⁰⁰⁰ + e⁻¹⁰⁰⁰) = 2000 exactly in
 * double; p = (1, 0, 0) → grad (1, −1, 0). A naive exp would overflow. */
START_TEST(huge_logits) {
  const float x[3] = {1000, -1000, 0};
  const uint8_t y[3] = {0, 1, 0};
  double l = 0;
  float g[3];
  ck_assert_int_eq(msci_loss_softmax_ce(x, y, 1, 3, NULL, &l, g), MSC_OK);
  ck_assert_close(l, 2000.0, 1e-15);
  ck_assert_close(g[0], 1.0, 1e-7);
  ck_assert_close(g[1], -1.0, 1e-7);
  ck_assert_close(g[2], 0.0, 1e-7);
}
END_TEST

/* ---- (b) reference and finite differences ------------------------------------------- */

START_TEST(matches_reference_and_finite_differences) {
  msci_rng r;
  msci_rng_seed(&r, 42, "softmax-ce");
  const int64_t n = 7, c = 5;
  float x[35], g[35];
  double xd[35];
  uint8_t y[35], mask[7] = {1, 0, 1, 1, 0, 1, 1};
  for (int masked = 0; masked < 2; ++masked) {
    random_case(&r, n, c, x, xd, y);
    const uint8_t *m = masked ? mask : NULL;
    double l = 0;
    ck_assert_int_eq(msci_loss_softmax_ce(x, y, n, c, m, &l, g), MSC_OK);
    ck_assert_close(l, ref_ce(xd, y, n, c, m), 1e-12);
    for (int64_t i = 0; i < n * c; ++i) {
      const double h = 1e-5;
      double keep = xd[i];
      xd[i] = keep + h;
      double up = ref_ce(xd, y, n, c, m);
      xd[i] = keep - h;
      double down = ref_ce(xd, y, n, c, m);
      xd[i] = keep;
      ck_assert_msg(fabs(g[i] - (up - down) / (2 * h)) <= 2e-6, "grad[%lld] = %.9g, FD %.9g",
                    (long long)i, (double)g[i], (up - down) / (2 * h));
    }
    if (!masked) {
      float lf = 0, gp[35];
      ck_assert_int_eq(msc_loss_softmax_ce(x, y, n, c, &lf, gp), MSC_OK);
      ck_assert_close(lf, l, 1e-6);
      for (int i = 0; i < 35; ++i) ck_assert(gp[i] == g[i]);
    }
  }
}
END_TEST

/* ---- (c) mask and errors --------------------------------------------------------------- */

START_TEST(row_mask_and_errors) {
  /* Row 1 is unlabelled: its labels (two 1s) are not read, its gradient is 0. */
  const float x[6] = {0.5f, -1, 2, 3, 3, 3};
  const uint8_t y[6] = {1, 0, 0, 1, 1, 0};
  const uint8_t mask[2] = {1, 0};
  double l = 0;
  float g[6];
  ck_assert_int_eq(msci_loss_softmax_ce(x, y, 2, 3, mask, &l, g), MSC_OK);
  double z = exp(0.5) + exp(-1.0) + exp(2.0);
  ck_assert_close(l, log(z) - 0.5, 1e-14);
  ck_assert(g[3] == 0 && g[4] == 0 && g[5] == 0);
  const uint8_t none[2] = {0, 0};
  ck_assert_int_eq(msci_loss_softmax_ce(x, y, 2, 3, none, &l, g), MSC_OK);
  ck_assert(l == 0.0 && g[0] == 0 && g[2] == 0);

  /* Without the mask row 1 has two labels: refused, naming the row; outputs untouched. */
  float lf = 7, gg[6] = {7, 7, 7, 7, 7, 7};
  ck_assert_int_eq(msc_loss_softmax_ce(x, y, 2, 3, &lf, gg), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "row 1 has 2 positive labels"));
  const uint8_t empty[6] = {0, 0, 0, 0, 1, 0};
  ck_assert_int_eq(msc_loss_softmax_ce(x, empty, 2, 3, &lf, gg), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "row 0 has 0 positive labels"));
  const uint8_t two[6] = {2, 0, 0, 0, 1, 0};
  ck_assert_int_eq(msc_loss_softmax_ce(x, two, 2, 3, &lf, gg), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "y[0]"));
  const uint8_t ok[6] = {1, 0, 0, 0, 1, 0};
  const float bad[6] = {0, 0, 0, 0, NAN, 0};
  ck_assert_int_eq(msc_loss_softmax_ce(bad, ok, 2, 3, &lf, gg), MSC_E_NUMERICAL);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "logits[4]"));
  ck_assert_int_eq(msc_loss_softmax_ce(NULL, ok, 2, 3, &lf, gg), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loss_softmax_ce(x, NULL, 2, 3, &lf, gg), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loss_softmax_ce(x, ok, 0, 3, &lf, gg), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loss_softmax_ce(x, ok, 2, 0, &lf, gg), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loss_softmax_ce(x, ok, 2, 3, NULL, gg), MSC_E_INVALID_ARGUMENT);
  ck_assert(lf == 7);
  for (int i = 0; i < 6; ++i) ck_assert(gg[i] == 7);
}
END_TEST

/* ---- (d) the CPU backend's loss entry ---------------------------------------------------- */

START_TEST(cpu_backend_entry) {
  const mbk_iface *be = NULL;
  mbk_ctx *ctx = NULL;
  ck_assert_int_eq(mbk_cpu_init(msci_host(), &be), MSC_OK);
  mbk_ctx_params p = {sizeof p, 0, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  ck_assert_int_eq(be->ctx_create(&p, &ctx), MSC_OK);
  enum { ROWS = 7, N = 5, C = 4, R0 = 1 };
  msci_rng r;
  msci_rng_seed(&r, 3, "backend");
  float x[ROWS * C];
  double xd[ROWS * C];
  uint8_t y[ROWS * C];
  random_case(&r, ROWS, C, x, xd, y); /* y: only the first N rows are used */
  const uint8_t mask[N] = {1, 1, 0, 1, 1};
  mbk_tensor *tx = NULL, *tg = NULL;
  int64_t dims[2] = {ROWS, C};
  ck_assert_int_eq(be->tensor_create(ctx, &tx), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(tx, 2, dims, x), MSC_OK);
  ck_assert_int_eq(be->tensor_create(ctx, &tg), MSC_OK);
  ck_assert_int_eq(be->tensor_zero(tg, 2, dims), MSC_OK);
  mbk_loss_desc d = {.type = MBK_LOSS_SOFTMAX_CE,
                     .n = N,
                     .row0 = R0,
                     .d = C,
                     .c = C,
                     .weight = 0.5,
                     .labels = y,
                     .row_mask = mask};
  double v = 0;
  ck_assert_int_eq(be->loss(ctx, &d, tx, NULL, &v, tg, NULL), MSC_OK);
  d.weight = 1.0; /* gradients are added: 1.5 × in all */
  ck_assert_int_eq(be->loss(ctx, &d, tx, NULL, &v, tg, NULL), MSC_OK);
  ck_assert_close(v, ref_ce(xd + R0 * C, y, N, C, mask), 1e-12);
  float g[ROWS * C], want[N * C];
  ck_assert_int_eq(be->tensor_download(tg, g, ROWS * C), MSC_OK);
  double l = 0;
  ck_assert_int_eq(msci_loss_softmax_ce(x + R0 * C, y, N, C, mask, &l, want), MSC_OK);
  for (int i = 0; i < ROWS * C; ++i) {
    int row = i / C;
    float w = row >= R0 && row < R0 + N ? 1.5f * want[i - R0 * C] : 0.f;
    ck_assert_close(g[i], w, 1e-6);
  }
  /* A labelled row with two classes is refused by the backend too. */
  y[0] = y[1] = 1;
  ck_assert_int_eq(be->loss(ctx, &d, tx, NULL, &v, tg, NULL), MSC_E_INVALID_ARGUMENT);
  d.labels = NULL;
  ck_assert_int_eq(be->loss(ctx, &d, tx, NULL, &v, tg, NULL), MSC_E_INVALID_ARGUMENT);
  be->tensor_free(tx);
  be->tensor_free(tg);
  be->ctx_free(ctx);
}
END_TEST

/* ---- (e) a single-label model -------------------------------------------------------------- */

#define SIZE 16
#define NC   4

/* One class per sample: the class's spectral signature and texture plus noise. */
static void make_data(int64_t n, uint64_t seed, float *s2, uint8_t *y) {
  static const float sig[NC][4] = {{1.0f, 0.2f, 0.1f, 0.6f},
                                   {0.1f, 1.0f, 0.3f, 0.2f},
                                   {0.3f, 0.1f, 1.0f, 0.1f},
                                   {0.6f, 0.6f, 0.2f, 1.0f}};
  static const float freq[NC] = {0.4f, 0.9f, 1.6f, 2.3f};
  msci_rng r;
  msci_rng_seed(&r, seed, "single");
  memset(y, 0, (size_t)(n * NC));
  for (int64_t i = 0; i < n; ++i) {
    int c = (int)(msci_rng_next(&r) % NC);
    y[i * NC + c] = 1;
    float phase = (float)(6.283 * msci_rng_uniform(&r));
    for (int yy = 0; yy < SIZE; ++yy)
      for (int xx = 0; xx < SIZE; ++xx) {
        float tex = 1.0f + 0.5f * sinf(freq[c] * (float)(xx + yy) + phase);
        for (int b = 0; b < 4; ++b)
          s2[((i * 4 + b) * SIZE + yy) * SIZE + xx] =
              sig[c][b] * tex + (float)(0.1 * msci_rng_normal(&r));
      }
  }
}

static msc_batch *batch_of(float *s2, uint8_t *y, int64_t n) {
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s2", s2, n, 4, SIZE, SIZE), MSC_OK);
  if (y) ck_assert_int_eq(msc_batch_set_labels(b, y, n, NC), MSC_OK);
  return b;
}

static msc_options *single_options(void) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  const char *json = "{\"modality.count\":1,\"modality.0.name\":\"s2\",\"modality.0.bands\":4,"
                     "\"modality.0.encoder\":\"tiny\",\"modality.0.size\":16,"
                     "\"classes\":4,\"class_names\":\"a;b;c;d\",\"labels\":\"single\","
                     "\"train.preset\":\"supervised\",\"optim.lr\":0.003,\"seed\":5}";
  msc_status st = msc_options_from_json(o, json);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  return o;
}

START_TEST(single_label_model_trains) {
  enum { N = 192, B = 32, STEPS = 60 };
  float *s2 = malloc((size_t)N * 4 * SIZE * SIZE * sizeof(float));
  uint8_t *y = malloc((size_t)N * NC);
  make_data(N, 9, s2, y);
  msc_options *o = single_options();
  msc_model *m = NULL;
  msc_status st = msc_model_create(o, &m);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  msc_step_result r;
  double first = 0, last = 0;
  for (int s = 0; s < STEPS; ++s) {
    int64_t from = (s % (N / B)) * B;
    msc_batch *b = batch_of(s2 + from * 4 * SIZE * SIZE, y + from * NC, B);
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    ck_assert_msg(msc_train_step(m, b, &r) == MSC_OK, "step %d: %s", s, msc_last_error());
    msc_batch_free(b);
    if (s < 6) first += r.loss_bce / 6;
    if (s >= STEPS - 6) last += r.loss_bce / 6;
  }
  /* At the start the term is about log 4 (uniform softmax), as CE and unlike BCE's ~0.69
   * per class; it must fall well below. */
  ck_assert_msg(first > 0.9 && first < 2.5, "first softmax CE %.4f", first);
  ck_assert_msg(last < 0.6 * first, "softmax CE went from %.4f to %.4f", first, last);

  /* Predictions: softmax rows (sum 1), mostly right on the training data. */
  msc_batch *tb = batch_of(s2, NULL, 64);
  float probs[64 * NC];
  ck_assert_int_eq(msc_predict(m, tb, probs, 64 * NC), MSC_OK);
  int correct = 0;
  for (int i = 0; i < 64; ++i) {
    double sum = 0;
    int best = 0;
    for (int k = 0; k < NC; ++k) {
      sum += probs[i * NC + k];
      if (probs[i * NC + k] > probs[i * NC + best]) best = k;
    }
    ck_assert_close(sum, 1.0, 1e-5);
    correct += y[i * NC + best];
  }
  ck_assert_msg(correct >= 40, "%d of 64 right (chance 16)", correct);

  /* The mode is a model key: it survives save and load. */
  char path[] = "/tmp/msc_single_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(msc_model_save(m, path), MSC_OK);
  msc_model *again = NULL;
  ck_assert_int_eq(msc_model_load(path, NULL, &again), MSC_OK);
  unlink(path);
  float probs2[64 * NC];
  ck_assert_int_eq(msc_predict(again, tb, probs2, 64 * NC), MSC_OK);
  for (int i = 0; i < 64 * NC; ++i) ck_assert(probs2[i] == probs[i]);
  msc_options *mo = NULL;
  ck_assert_int_eq(msc_model_options(again, &mo), MSC_OK);
  char mode[16];
  ck_assert_int_eq(msc_options_get_string(mo, "labels", mode, sizeof mode, NULL), MSC_OK);
  ck_assert_str_eq(mode, "single");
  msc_options_free(mo);

  /* A labelled sample with two classes is refused, naming the sample. */
  uint8_t y2[B * NC];
  memcpy(y2, y, sizeof y2);
  y2[3 * NC + 0] = y2[3 * NC + 1] = 1;
  msc_batch *bad = batch_of(s2, y2, B);
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  ck_assert_int_eq(msc_train_step(again, bad, &r), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "sample 3"));
  /* Trained as multi-label (train.labels = multi) the same batch is accepted (BCE). */
  msc_options *multi = NULL;
  ck_assert_int_eq(msc_options_create(&multi), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(multi, "train.preset", "supervised"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(multi, "train.labels", "multi"), MSC_OK);
  ck_assert_int_eq(msc_train_configure(again, multi), MSC_OK);
  ck_assert_msg(msc_train_step(again, bad, &r) == MSC_OK, "%s", msc_last_error());
  msc_options_free(multi);
  msc_batch_free(bad);
  msc_batch_free(tb);
  msc_model_free(again);
  msc_model_free(m);
  msc_options_free(o);
  free(s2);
  free(y);
}
END_TEST

/* A multi-label model (the default) keeps sigmoid outputs: rows need not sum to 1. */
START_TEST(multi_label_model_keeps_sigmoid) {
  msc_options *o = single_options();
  ck_assert_int_eq(msc_options_set_string(o, "labels", "multi"), MSC_OK);
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  float *s2 = malloc((size_t)8 * 4 * SIZE * SIZE * sizeof(float));
  uint8_t y[8 * NC];
  make_data(8, 2, s2, y);
  msc_batch *b = batch_of(s2, NULL, 8);
  float probs[8 * NC];
  ck_assert_int_eq(msc_predict(m, b, probs, 8 * NC), MSC_OK);
  double worst = 0;
  for (int i = 0; i < 8; ++i) {
    double sum = 0;
    for (int k = 0; k < NC; ++k) {
      ck_assert(probs[i * NC + k] > 0 && probs[i * NC + k] < 1);
      sum += probs[i * NC + k];
    }
    worst = fmax(worst, fabs(sum - 1));
  }
  ck_assert_msg(worst > 0.05, "sigmoid rows should not all sum to 1 (%.3g)", worst);
  msc_batch_free(b);
  msc_model_free(m);
  msc_options_free(o);
  free(s2);
}
END_TEST

/* ---- the label mode of datasets --------------------------------------------------------- */

static msc_dataset *open_ds(const char *root, const char *format) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  msc_dataset *ds = NULL;
  msc_status st = msc_dataset_open(root, format, o, &ds);
  ck_assert_msg(st == MSC_OK, "%s: %s", root, msc_last_error());
  msc_options_free(o);
  return ds;
}

static void mode_from_dataset(const msc_dataset *ds, const char *preset, const char *want) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  if (preset) ck_assert_int_eq(msc_options_set_string(o, "labels", preset), MSC_OK);
  ck_assert_int_eq(msc_options_from_dataset(o, ds, MSC_STATS_COMPUTED, 2), MSC_OK);
  char mode[16];
  ck_assert_int_eq(msc_options_get_string(o, "labels", mode, sizeof mode, NULL), MSC_OK);
  ck_assert_str_eq(mode, want);
  msc_options_free(o);
}

/* The real EuroSAT sample is single-label (every image one class: its folder), and
 * msc_options_from_dataset makes its models single-label; BigEarthNet stays multi-label;
 * an explicit choice wins. */
START_TEST(dataset_label_mode) {
  msc_dataset *eu = open_ds(MSC_SHARED_DATA "/eurosat-ms", "eurosat");
  ck_assert_int_eq(msc_dataset_single_label(eu), 1);
  int64_t n = msc_dataset_size(eu), c = msc_dataset_class_count(eu);
  ck_assert_int_eq(c, 10);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  for (int64_t i = 0; i < n; ++i) { /* what the flag promises: one label per sample */
    ck_assert_int_eq(msc_dataset_fill_batch(eu, &i, 1, b), MSC_OK);
    uint8_t y[10];
    ck_assert_int_eq(msc_batch_labels(b, y, 10, NULL), MSC_OK);
    int count = 0;
    for (int64_t k = 0; k < c; ++k) count += y[k];
    ck_assert_int_eq(count, 1);
  }
  msc_batch_free(b);
  mode_from_dataset(eu, NULL, "single");
  mode_from_dataset(eu, "multi", "multi");
  msc_dataset_free(eu);
  msc_dataset *ben = open_ds(MSC_TEST_DATA "/bigearthnet-v2", "bigearthnet-v2");
  ck_assert_int_eq(msc_dataset_single_label(ben), 0);
  mode_from_dataset(ben, NULL, "multi");
  msc_dataset_free(ben);
  ck_assert_int_eq(msc_dataset_single_label(NULL), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("single_label");
  TCase *tc = tcase_create("single_label");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, hand_case);
  tcase_add_test(tc, huge_logits);
  tcase_add_test(tc, matches_reference_and_finite_differences);
  tcase_add_test(tc, row_mask_and_errors);
  tcase_add_test(tc, cpu_backend_entry);
  tcase_add_test(tc, single_label_model_trains);
  tcase_add_test(tc, multi_label_model_keeps_sigmoid);
  tcase_add_test(tc, dataset_label_mode);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
