/*
 * test_precision.c — the "precision" run-time option (docs/precision.md): bf16 inference
 * and training against float32 runs of the same model, the option's validation, and the
 * refusal where the CPU cannot compute in bf16; and the "conv_algorithm" option.
 *
 * Tolerances: bfloat16 keeps 8 significant bits, so one rounding of an activation or a
 * weight has a relative error of at most 2^-9 ≈ 2e-3 (oneDNN accumulates the dot
 * products in float32). A network rounds every layer's input and weights once; the
 * errors are independent, so they add up like a random walk over the ~10-20 roundings
 * between input and embedding: about sqrt(20)·2e-3 ≈ 1e-2 relative, the figure
 * mixed-precision practice quotes. The tests allow 3e-2 on relative L2 norms (3×), and
 * require more than 1e-5 so that a bf16 run that silently computed in float32 fails.
 *
 * The ctest entry test_precision_avx2 runs the case "unavailable" with
 * ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN's own switch: the CPU then looks like an AVX2 one), so
 * the refusal is tested on every machine.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>

#include "mosaic/mosaic.h"

#define SIZE 16
#define C    4

/* 1 when oneDNN can run bf16 here (the rule of cpu_backend.c, restated). */
static int bf16_here(void) {
  unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
  return (isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core;
}

#define SKIP_WITHOUT_BF16()                                                                    \
  do {                                                                                         \
    if (!bf16_here()) {                                                                        \
      fprintf(stderr, "SKIPPED %s: this CPU has no AVX-512 (oneDNN ISA 0x%x)\n", __func__,     \
              (unsigned)dnnl_get_effective_cpu_isa());                                         \
      return;                                                                                  \
    }                                                                                          \
  } while (0)

/* Deterministic inputs with labels: smooth patterns plus a little hash noise. */
typedef struct data {
  int64_t n;
  float *s1, *s2;
  uint8_t *y;
} data;

static void make_data(data *d, int64_t n, int64_t size) {
  d->n = n;
  d->s1 = malloc((size_t)(n * 2 * size * size) * sizeof(float));
  d->s2 = malloc((size_t)(n * 4 * size * size) * sizeof(float));
  d->y = calloc((size_t)(n * C), 1);
  for (int64_t i = 0; i < n; ++i) {
    int cls = (int)(i % C);
    d->y[i * C + cls] = 1;
    d->y[i * C + (cls + 1) % C] = (uint8_t)(i % 3 == 0);
    for (int64_t k = 0; k < 4 * size * size; ++k) {
      int64_t b = k / (size * size), p = k % (size * size);
      unsigned h = (unsigned)(i * 7919 + k * 104729) * 2654435761u;
      d->s2[i * 4 * size * size + k] =
          sinf(0.3f * (float)(p * (cls + 1)) + (float)b) + 0.2f * (float)(h >> 24) / 255.f;
      if (k < 2 * size * size)
        d->s1[i * 2 * size * size + k] = cosf(0.2f * (float)(p + cls * b)) - 0.5f;
    }
  }
}

static void free_data(data *d) {
  free(d->s1), free(d->s2), free(d->y);
}

static msc_batch *batch_of(const data *d, int64_t from, int64_t n, int64_t size) {
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(
      msc_batch_set_modality(b, "s1", d->s1 + from * 2 * size * size, n, 2, size, size),
      MSC_OK);
  ck_assert_int_eq(
      msc_batch_set_modality(b, "s2", d->s2 + from * 4 * size * size, n, 4, size, size),
      MSC_OK);
  ck_assert_int_eq(msc_batch_set_labels(b, d->y + from * C, n, C), MSC_OK);
  return b;
}

static msc_options *options(const char *encoder, int64_t size, const char *precision) {
  msc_options *o = NULL;
  char json[512];
  snprintf(json, sizeof json,
           "{\"modality.0.encoder\":\"%s\",\"modality.1.encoder\":\"%s\","
           "\"modality.0.size\":%lld,\"modality.1.size\":%lld,\"modality.1.bands\":4,"
           "\"classes\":4,\"class_names\":\"a;b;c;d\",\"proj.dim\":16,\"seed\":7,"
           "\"threads\":2,\"train.preset\":\"supervised\",\"aug.crop\":0,\"aug.hflip\":0,"
           "\"aug.vflip\":0,\"aug.rot90\":0,\"aug.noise_std\":0,\"aug.jitter_brightness\":0,"
           "\"aug.jitter_contrast\":0,\"aug.speckle\":0}",
           encoder, encoder, (long long)size, (long long)size);
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  msc_status st = msc_options_from_json(o, json);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  ck_assert_int_eq(msc_options_set_string(o, "precision", precision), MSC_OK);
  return o;
}

static msc_model *create(const char *encoder, int64_t size, const char *precision) {
  msc_options *o = options(encoder, size, precision);
  msc_model *m = NULL;
  msc_status st = msc_model_create(o, &m);
  ck_assert_msg(st == MSC_OK, "precision %s: %s", precision, msc_last_error());
  msc_options_free(o);
  return m;
}

/* ‖a − b‖ / ‖b‖ over n values. */
static double rel_l2(const float *a, const float *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = (double)a[i] - (double)b[i];
    num += d * d;
    den += (double)b[i] * (double)b[i];
  }
  return sqrt(num / (den > 0 ? den : 1));
}

/* The fused embedding of the batch under both precisions; returns their relative error. */
static double embed_error(const char *encoder, int64_t size, int64_t n) {
  data d;
  make_data(&d, n, size);
  msc_batch *b = batch_of(&d, 0, n, size);
  float *out[2] = {NULL, NULL};
  int64_t dim = 0;
  static const char *const prec[2] = {"f32", "bf16"};
  for (int k = 0; k < 2; ++k) {
    msc_model *m = create(encoder, size, prec[k]);
    ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_FUSED, &dim), MSC_OK);
    ck_assert_int_gt(dim, 0);
    out[k] = malloc((size_t)(n * dim) * sizeof(float));
    msc_status st = msc_embed(m, b, MSC_EMBED_FUSED, out[k], (size_t)(n * dim));
    ck_assert_msg(st == MSC_OK, "embed %s: %s", prec[k], msc_last_error());
    msc_model_free(m);
  }
  for (int64_t i = 0; i < n * dim; ++i) ck_assert(isfinite(out[1][i]));
  double err = rel_l2(out[1], out[0], (size_t)(n * dim));
  fprintf(stderr, "embed %s %lldpx: bf16 vs f32 relative L2 error %.3g\n", encoder,
          (long long)size, err);
  free(out[0]), free(out[1]);
  msc_batch_free(b);
  free_data(&d);
  return err;
}

START_TEST(test_bf16_embed_tracks_f32_tiny) {
  SKIP_WITHOUT_BF16();
  double err = embed_error("tiny", SIZE, 6);
  ck_assert_msg(err < 3e-2, "bf16 embedding too far from f32: %g", err);
  ck_assert_msg(err > 1e-5, "bf16 embedding equals f32 (%g): bf16 not used?", err);
}
END_TEST

START_TEST(test_bf16_embed_tracks_f32_resnet18) {
  SKIP_WITHOUT_BF16();
  double err = embed_error("resnet18", 32, 2);
  ck_assert_msg(err < 3e-2, "bf16 embedding too far from f32: %g", err);
  ck_assert_msg(err > 1e-5, "bf16 embedding equals f32 (%g): bf16 not used?", err);
}
END_TEST

/* Six supervised steps on the same batches: the bf16 losses follow the f32 ones and go
 * down. Parameters, gradients and the optimiser stay float32 in both. */
START_TEST(test_bf16_training_tracks_f32) {
  SKIP_WITHOUT_BF16();
  enum { STEPS = 6, BATCH = 8 };
  data d;
  make_data(&d, 2 * BATCH, SIZE);
  double loss[2][STEPS];
  static const char *const prec[2] = {"f32", "bf16"};
  for (int k = 0; k < 2; ++k) {
    msc_model *m = create("tiny", SIZE, prec[k]);
    for (int s = 0; s < STEPS; ++s) {
      msc_batch *b = batch_of(&d, (s % 2) * BATCH, BATCH, SIZE);
      msc_step_result r;
      memset(&r, 0, sizeof r);
      r.struct_size = sizeof r;
      msc_status st = msc_train_step(m, b, &r);
      ck_assert_msg(st == MSC_OK, "step %d %s: %s", s, prec[k], msc_last_error());
      ck_assert_int_eq(r.skipped, 0);
      loss[k][s] = r.loss;
      msc_batch_free(b);
    }
    msc_model_free(m);
  }
  for (int s = 0; s < STEPS; ++s) {
    fprintf(stderr, "step %d: loss f32 %.6f bf16 %.6f\n", s, loss[0][s], loss[1][s]);
    ck_assert(isfinite(loss[1][s]));
    /* The trajectories drift apart step by step (each step's update differs by ~1e-2
     * relative); 5e-2 of the loss bounds that over six steps. */
    ck_assert_msg(fabs(loss[1][s] - loss[0][s]) <= 5e-2 * fabs(loss[0][s]),
                  "step %d: bf16 loss %g vs f32 %g", s, loss[1][s], loss[0][s]);
  }
  /* Same batch at steps 0, 2 and 4: the model learns it in bf16 too. */
  ck_assert_msg(loss[1][4] < loss[1][0], "bf16 loss did not decrease: %g -> %g", loss[1][0],
                loss[1][4]);
  free_data(&d);
}
END_TEST

START_TEST(test_unknown_precision_refused) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "precision", "fp16"), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "precision"));
  ck_assert_int_eq(msc_options_set_string(o, "precision", "BF16"), MSC_E_INVALID_ARGUMENT);
  char v[16];
  ck_assert_int_eq(msc_options_get_string(o, "precision", v, sizeof v, NULL), MSC_OK);
  ck_assert_str_eq(v, "f32"); /* the default, unchanged by the refused values */
  ck_assert_int_eq(msc_options_from_json(o, "{\"precision\":\"int4\"}"),
                   MSC_E_INVALID_ARGUMENT);
  msc_options_free(o);
}
END_TEST

/* Where bf16 cannot run (test_precision_avx2 makes this so), msc_model_create refuses it
 * with MSC_E_UNSUPPORTED and says why, while f32 still works; elsewhere it succeeds. */
START_TEST(test_unavailable) {
  const char *max_isa = getenv("ONEDNN_MAX_CPU_ISA");
  if (max_isa && strcmp(max_isa, "AVX2") == 0)
    ck_assert_msg(!bf16_here(), "ONEDNN_MAX_CPU_ISA=AVX2 did not limit oneDNN");
  msc_options *o = options("tiny", SIZE, "bf16");
  msc_model *m = NULL;
  msc_status st = msc_model_create(o, &m);
  if (bf16_here()) {
    ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  } else {
    ck_assert_int_eq(st, MSC_E_UNSUPPORTED);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(msc_last_error(), "bf16"));
    ck_assert_ptr_nonnull(strstr(msc_last_error(), "AVX-512"));
  }
  msc_model_free(m);
  m = NULL;
  ck_assert_int_eq(msc_options_set_string(o, "precision", "f32"), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* The "conv_algorithm" run-time option (docs/options.md): "direct" and "auto" embed and
 * train ResNet-18 to the same numbers up to float32 rounding (the 3×3 layers of 64
 * channels and more, in calls of 32 tiles or more, run as Winograd under "auto" on
 * AVX-512, backends/cpu/cpu_conv.c),
 * and the option reaches the backend through msc_model_create and msc_model_load alike:
 * on AVX-512 the two differ somewhere, and a model loaded with "direct" embeds bit for
 * bit as the one created with it. */
static msc_model *create_algo(const char *algo) {
  msc_options *o = options("resnet18", 64, "f32");
  ck_assert_int_eq(msc_options_set_string(o, "conv_algorithm", algo), MSC_OK);
  msc_model *m = NULL;
  msc_status st = msc_model_create(o, &m);
  ck_assert_msg(st == MSC_OK, "conv_algorithm %s: %s", algo, msc_last_error());
  msc_options_free(o);
  return m;
}

static float *embed_all(msc_model *m, const msc_batch *b, int64_t n, int64_t *dim) {
  ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_FUSED, dim), MSC_OK);
  float *out = malloc((size_t)(n * *dim) * sizeof(float));
  msc_status st = msc_embed(m, b, MSC_EMBED_FUSED, out, (size_t)(n * *dim));
  ck_assert_msg(st == MSC_OK, "embed: %s", msc_last_error());
  return out;
}

START_TEST(test_conv_algorithm) {
  /* 64 px, 8 samples: layer1's 64 channels at 16² (128 tiles of 4×4) and layer2's 128 at
   * 8² (32 tiles) reach Winograd's minimum of 32 tiles a call (cpu_conv.c) */
  enum { N = 8 };
  data d;
  make_data(&d, N, 64);
  msc_batch *b = batch_of(&d, 0, N, 64);
  msc_model *m_auto = create_algo("auto"), *m_direct = create_algo("direct");
  int64_t dim = 0;
  float *e_auto = embed_all(m_auto, b, N, &dim), *e_direct = embed_all(m_direct, b, N, &dim);
  const size_t ne = (size_t)(N * dim);
  double err = rel_l2(e_auto, e_direct, ne);
  fprintf(stderr, "embed resnet18 64px: auto vs direct relative L2 %.3g\n", err);
  ck_assert_msg(err < 1e-4, "auto and direct embeddings differ by %g", err);
  if (bf16_here()) /* AVX-512: Winograd ran under "auto" */
    ck_assert_msg(err > 0, "auto embeds bit for bit as direct: Winograd not used?");

  /* Loaded with "direct", the saved "auto" model embeds as m_direct (same weights). */
  char path[] = "/tmp/msc_conv_algo_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(msc_model_save(m_auto, path), MSC_OK);
  msc_options *rt = NULL;
  ck_assert_int_eq(msc_options_create(&rt), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(rt, "conv_algorithm", "direct"), MSC_OK);
  msc_model *m_loaded = NULL;
  ck_assert_int_eq(msc_model_load(path, rt, &m_loaded), MSC_OK);
  float *e_loaded = embed_all(m_loaded, b, N, &dim);
  ck_assert(memcmp(e_loaded, e_direct, ne * sizeof(float)) == 0);

  /* One supervised step each: the losses agree to float32 rounding. */
  double loss[2];
  msc_model *ms[2] = {m_auto, m_direct};
  for (int k = 0; k < 2; ++k) {
    msc_step_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    msc_status st = msc_train_step(ms[k], b, &r);
    ck_assert_msg(st == MSC_OK, "step: %s", msc_last_error());
    loss[k] = r.loss;
  }
  fprintf(stderr, "train step resnet18: loss auto %.9f direct %.9f\n", loss[0], loss[1]);
  ck_assert_msg(fabs(loss[0] - loss[1]) <= 1e-4 * fabs(loss[1]), "loss %g vs %g", loss[0],
                loss[1]);

  ck_assert_int_eq(msc_options_set_string(rt, "conv_algorithm", "winograd"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "conv_algorithm"));
  unlink(path);
  msc_options_free(rt);
  free(e_auto), free(e_direct), free(e_loaded);
  msc_model_free(m_auto), msc_model_free(m_direct), msc_model_free(m_loaded);
  msc_batch_free(b);
  free_data(&d);
}
END_TEST

int main(void) {
  Suite *s = suite_create("precision");
  TCase *tc = tcase_create("bf16");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_bf16_embed_tracks_f32_tiny);
  tcase_add_test(tc, test_bf16_embed_tracks_f32_resnet18);
  tcase_add_test(tc, test_bf16_training_tracks_f32);
  suite_add_tcase(s, tc);
  TCase *tv = tcase_create("validation");
  tcase_set_timeout(tv, 300);
  tcase_add_test(tv, test_unknown_precision_refused);
  tcase_add_test(tv, test_conv_algorithm);
  suite_add_tcase(s, tv);
  TCase *tu = tcase_create("unavailable");
  tcase_add_test(tu, test_unavailable);
  suite_add_tcase(s, tu);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
