/*
 * test_model.c — models end to end through the public API: the tiny model's forward
 * against an independent forward written here from the reference ops, save/load round
 * trips (bit for bit), corrupted and hostile model files, configuration errors, batch
 * errors, seeded initialisation, the parameter count of a ResNet-18 against
 * torchvision's, and concurrent msc_embed calls.
 *
 * The reference forward knows the architecture only from docs/model.md (tiny encoder,
 * heads, concat fusion) and the tensor names from torchvision's state_dict layout; it
 * reads weights from a file this test writes itself with random values everywhere
 * (BatchNorm statistics too), so every parameter matters.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mosaic/mosaic.h"
#include "ref_ops.h"
#include "common/rng.h"
#include "model/model.h"
#include "model/safetensors.h"

#define N    3
#define SIZE 12
#define P    8
#define C    5
static const int64_t BANDS[2] = {2, 4};
static const char *const MOD[2] = {"s1", "s2"};

static char tmpdir[256];

static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/msc_test_model_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  ck_assert_int_eq(system(cmd), 0);
}

static void path_in_tmp(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* ---- a hand-made model file ------------------------------------------------------------ */

typedef struct tensor {
  char name[96];
  int32_t ndim;
  int64_t dims[4];
  float *data;
} tensor;

typedef struct weights {
  tensor t[128];
  int n;
} weights;

static size_t count_of(const tensor *t) {
  size_t n = 1;
  for (int i = 0; i < t->ndim; ++i) n *= (size_t)t->dims[i];
  return n;
}

static void add(weights *w, msci_rng *r, const char *name, int32_t ndim, int64_t d0, int64_t d1,
                int64_t d2, int64_t d3) {
  tensor *t = &w->t[w->n++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->ndim = ndim;
  int64_t d[4] = {d0, d1, d2, d3};
  memcpy(t->dims, d, sizeof d);
  size_t n = count_of(t);
  t->data = malloc(n * sizeof(float));
  int is_var = strstr(name, "running_var") != NULL;
  int is_scale = strstr(name, ".bn") && strstr(name, ".weight");
  for (size_t i = 0; i < n; ++i) {
    double u = msci_rng_uniform(r);
    /* Variances and BN scales stay positive and away from 0, as trained ones are. */
    t->data[i] = is_var ? (float)(0.5 + u) : is_scale ? (float)(0.5 + u) : (float)(u - 0.5);
  }
}

static const float *get(const weights *w, const char *fmt, const char *a, const char *b) {
  char name[96];
  snprintf(name, sizeof name, fmt, a, b);
  for (int i = 0; i < w->n; ++i)
    if (strcmp(w->t[i].name, name) == 0) return w->t[i].data;
  ck_abort_msg("no tensor %s", name);
  return NULL;
}

static void add_bn(weights *w, msci_rng *r, const char *prefix, int64_t c) {
  static const char *const sfx[4] = {"weight", "bias", "running_mean", "running_var"};
  for (int i = 0; i < 4; ++i) {
    char name[96];
    snprintf(name, sizeof name, "%s.%s", prefix, sfx[i]);
    add(w, r, name, 1, c, 0, 0, 0);
  }
}

static void add_linear(weights *w, msci_rng *r, const char *prefix, int64_t in, int64_t out) {
  char name[96];
  snprintf(name, sizeof name, "%s.weight", prefix);
  add(w, r, name, 2, out, in, 0, 0);
  snprintf(name, sizeof name, "%s.bias", prefix);
  add(w, r, name, 1, out, 0, 0, 0);
}

/* The tiny encoder's tensors (docs/model.md, "Presets") under torchvision's names. */
static void add_tiny_encoder(weights *w, msci_rng *r, const char *m, int64_t bands) {
  char p[96];
#define NAME(fmt) (snprintf(p, sizeof p, "enc.%s." fmt, m), p)
  add(w, r, NAME("conv1.weight"), 4, 8, bands, 3, 3);
  add_bn(w, r, NAME("bn1"), 8);
  add(w, r, NAME("layer1.0.conv1.weight"), 4, 8, 8, 3, 3);
  add_bn(w, r, NAME("layer1.0.bn1"), 8);
  add(w, r, NAME("layer1.0.conv2.weight"), 4, 8, 8, 3, 3);
  add_bn(w, r, NAME("layer1.0.bn2"), 8);
  add(w, r, NAME("layer2.0.conv1.weight"), 4, 16, 8, 3, 3);
  add_bn(w, r, NAME("layer2.0.bn1"), 16);
  add(w, r, NAME("layer2.0.conv2.weight"), 4, 16, 16, 3, 3);
  add_bn(w, r, NAME("layer2.0.bn2"), 16);
  add(w, r, NAME("layer2.0.downsample.0.weight"), 4, 16, 8, 1, 1);
  add_bn(w, r, NAME("layer2.0.downsample.1"), 16);
#undef NAME
}

static const char *CONFIG =
    "{\"modality.count\":2,"
    "\"modality.0.name\":\"s1\",\"modality.0.bands\":2,\"modality.0.size\":12,"
    "\"modality.0.encoder\":\"tiny\",\"modality.0.mean\":\"-12.5,-19.25\","
    "\"modality.0.std\":\"5,5.5\","
    "\"modality.1.name\":\"s2\",\"modality.1.bands\":4,\"modality.1.size\":12,"
    "\"modality.1.encoder\":\"tiny\","
    "\"classes\":5,\"class_names\":\"a;b;c;d;e\",\"proj.dim\":8}";

static void make_weights(weights *w, uint64_t seed) {
  msci_rng r;
  msci_rng_seed(&r, seed, "test weights");
  w->n = 0;
  for (int m = 0; m < 2; ++m) {
    char p[64];
    add_tiny_encoder(w, &r, MOD[m], BANDS[m]);
    snprintf(p, sizeof p, "proj.%s.fc1", MOD[m]);
    add_linear(w, &r, p, 16, 16);
    snprintf(p, sizeof p, "proj.%s.fc2", MOD[m]);
    add_linear(w, &r, p, 16, P);
  }
  add_linear(w, &r, "proj_fused.fc1", 32, 32);
  add_linear(w, &r, "proj_fused.fc2", 32, P);
  add_linear(w, &r, "classifier.fc", 32, C);
}

static void free_weights(weights *w) {
  for (int i = 0; i < w->n; ++i) free(w->t[i].data);
  w->n = 0;
}

static void write_weights(const weights *w, const char *path, const char *config) {
  msci_st_tensor_in ts[128];
  for (int i = 0; i < w->n; ++i)
    ts[i] = (msci_st_tensor_in){w->t[i].name, w->t[i].ndim, w->t[i].dims, w->t[i].data};
  msci_st_meta meta[] = {{"mosaic.config", config}};
  ck_assert_int_eq(msci_st_write(path, meta, config ? 1 : 0, ts, (size_t)w->n), MSC_OK);
}

/* ---- the reference forward ---------------------------------------------------------------- */

static float *conv_bn(const weights *w, const char *m, const char *conv, const char *bn,
                      const float *x, int64_t c, int64_t h, int64_t oc, int64_t k, int64_t s,
                      int relu, int64_t *oh) {
  ref_conv p = {N, c, h, h, oc, k, k, s, s, k / 2, k / 2};
  *oh = ref_conv_oh(&p);
  size_t count = (size_t)(N * oc * *oh * *oh);
  float *y = malloc(count * sizeof(float)), *z = malloc(count * sizeof(float));
  ref_conv2d_fwd(&p, x, get(w, "enc.%s.%s.weight", m, conv), NULL, y);
  char pre[64];
  snprintf(pre, sizeof pre, "enc.%s.%s", m, bn);
  ref_bn_fwd_infer(N, oc, *oh * *oh, y, get(w, "%s%s.weight", pre, ""),
                   get(w, "%s%s.bias", pre, ""), get(w, "%s%s.running_mean", pre, ""),
                   get(w, "%s%s.running_var", pre, ""), 1e-5f, relu, z);
  free(y);
  return z;
}

static float *basic_block(const weights *w, const char *m, const char *layer, const float *x,
                          int64_t c, int64_t h, int64_t oc, int64_t s, int64_t *oh) {
  char c1[48], b1[48], c2[48], b2[48];
  snprintf(c1, sizeof c1, "%s.conv1", layer), snprintf(b1, sizeof b1, "%s.bn1", layer);
  snprintf(c2, sizeof c2, "%s.conv2", layer), snprintf(b2, sizeof b2, "%s.bn2", layer);
  int64_t h1, h2, hs;
  float *y = conv_bn(w, m, c1, b1, x, c, h, oc, 3, s, 1, &h1);
  float *z = conv_bn(w, m, c2, b2, y, oc, h1, oc, 3, 1, 0, &h2);
  float *sc = NULL;
  const float *shortcut = x;
  if (s != 1 || c != oc) {
    snprintf(c1, sizeof c1, "%s.downsample.0", layer);
    snprintf(b1, sizeof b1, "%s.downsample.1", layer);
    sc = conv_bn(w, m, c1, b1, x, c, h, oc, 1, s, 0, &hs);
    shortcut = sc;
  }
  size_t count = (size_t)(N * oc * h2 * h2);
  float *out = malloc(count * sizeof(float));
  ref_add_fwd(count, z, shortcut, out);
  ref_relu_fwd(count, out, out);
  free(y), free(z), free(sc);
  *oh = h2;
  return out;
}

/* Tiny encoder forward on raw input: normalise, stem, two blocks, global average. */
static void ref_encoder(const weights *w, int m, const float *raw, const float *mean,
                        const float *std, float *feat /* N×16 */) {
  int64_t bands = BANDS[m];
  size_t count = (size_t)(N * bands * SIZE * SIZE);
  float *x = malloc(count * sizeof(float));
  for (size_t i = 0; i < count; ++i) {
    size_t band = (i / (SIZE * SIZE)) % (size_t)bands;
    x[i] = (raw[i] - mean[band]) / std[band];
  }
  int64_t h1, h2, h3;
  float *a = conv_bn(w, MOD[m], "conv1", "bn1", x, bands, SIZE, 8, 3, 1, 1, &h1);
  float *b = basic_block(w, MOD[m], "layer1.0", a, 8, h1, 8, 1, &h2);
  float *c = basic_block(w, MOD[m], "layer2.0", b, 8, h2, 16, 2, &h3);
  ref_gavgpool_fwd(N, 16, h3 * h3, c, feat);
  free(x), free(a), free(b), free(c);
}

static void ref_head(const weights *w, const char *prefix, const float *x, int64_t in,
                     int64_t hidden, float *z) {
  float *h = malloc((size_t)(N * hidden) * sizeof(float));
  ref_linear_fwd(N, in, hidden, x, get(w, "%s.fc1.weight%s", prefix, ""),
                 get(w, "%s.fc1.bias%s", prefix, ""), h);
  ref_relu_fwd((size_t)(N * hidden), h, h);
  ref_linear_fwd(N, hidden, P, h, get(w, "%s.fc2.weight%s", prefix, ""),
                 get(w, "%s.fc2.bias%s", prefix, ""), z);
  free(h);
}

static void unit_rows(float *z, int64_t n, int64_t d) {
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t k = 0; k < d; ++k) s += (double)z[i * d + k] * z[i * d + k];
    double norm = sqrt(s) > 1e-12 ? sqrt(s) : 1e-12;
    for (int64_t k = 0; k < d; ++k) z[i * d + k] = (float)(z[i * d + k] / norm);
  }
}

static void assert_close(const float *got, const float *want, size_t n, double tol,
                         const char *what) {
  double scale = 0;
  for (size_t i = 0; i < n; ++i) scale = fmax(scale, fabs(want[i]));
  for (size_t i = 0; i < n; ++i)
    ck_assert_msg(fabs(got[i] - want[i]) <= tol * fmax(1.0, scale),
                  "%s[%zu]: got %.8g, want %.8g", what, i, got[i], want[i]);
}

/* ---- inputs ------------------------------------------------------------------------------------- */

static float *inputs[2];

static void make_inputs(void) {
  msci_rng r;
  msci_rng_seed(&r, 7, "inputs");
  for (int m = 0; m < 2; ++m) {
    size_t count = (size_t)(N * BANDS[m] * SIZE * SIZE);
    inputs[m] = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; ++i)
      inputs[m][i] = m == 0 ? (float)(-25.0 + 20.0 * msci_rng_uniform(&r))
                            : (float)(3000.0 * msci_rng_uniform(&r));
  }
}

static msc_batch *full_batch(void) {
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  for (int m = 0; m < 2; ++m)
    ck_assert_int_eq(msc_batch_set_modality(b, MOD[m], inputs[m], N, BANDS[m], SIZE, SIZE),
                     MSC_OK);
  return b;
}

static void setup(void) {
  make_tmpdir();
  make_inputs();
}

static void teardown(void) {
  free(inputs[0]), free(inputs[1]);
  remove_tmpdir();
}

static msc_model *load_ok(const char *path) {
  msc_model *m = NULL;
  msc_status st = msc_model_load(path, NULL, &m);
  ck_assert_msg(st == MSC_OK, "load %s: %d %s", path, st, msc_last_error());
  return m;
}

/* ---- tests ------------------------------------------------------------------------------------- */

START_TEST(test_tiny_forward_matches_reference) {
  weights w;
  make_weights(&w, 1);
  char path[300];
  path_in_tmp(path, sizeof path, "hand.safetensors");
  write_weights(&w, path, CONFIG);
  msc_model *m = load_ok(path);
  ck_assert_str_eq(msc_model_backend(m), "cpu");
  msc_batch *b = full_batch();

  const float mean1[2] = {-12.5f, -19.25f}, std1[2] = {5.f, 5.5f};
  const float mean2[4] = {0, 0, 0, 0}, std2[4] = {1, 1, 1, 1};
  float f1[N * 16], f2[N * 16], fused[N * 32], z[N * P], logits[N * C];
  ref_encoder(&w, 0, inputs[0], mean1, std1, f1);
  ref_encoder(&w, 1, inputs[1], mean2, std2, f2);
  const float *parts[2] = {f1, f2};
  const int64_t cs[2] = {16, 16};
  ref_concat_fwd(N, 1, 2, cs, parts, fused);

  float got[N * 32];
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_MODALITY(0), got, N * 16), MSC_OK);
  assert_close(got, f1, N * 16, 1e-4, "h_s1");
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_MODALITY(1), got, N * 16), MSC_OK);
  assert_close(got, f2, N * 16, 1e-4, "h_s2");
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, got, N * 32), MSC_OK);
  assert_close(got, fused, N * 32, 1e-4, "h_f");

  ref_head(&w, "proj.s2", f2, 16, 16, z);
  unit_rows(z, N, P);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_MODALITY_PROJECTION(1), got, N * P), MSC_OK);
  assert_close(got, z, N * P, 1e-4, "z_s2");
  ref_head(&w, "proj_fused", fused, 32, 32, z);
  unit_rows(z, N, P);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED_PROJECTION, got, N * P), MSC_OK);
  assert_close(got, z, N * P, 1e-4, "z_f");

  ref_linear_fwd(N, 32, C, fused, get(&w, "classifier.fc.weight%s%s", "", ""),
                 get(&w, "classifier.fc.bias%s%s", "", ""), logits);
  for (int i = 0; i < N * C; ++i) logits[i] = (float)(1.0 / (1.0 + exp(-logits[i])));
  ck_assert_int_eq(msc_predict(m, b, got, N * C), MSC_OK);
  assert_close(got, logits, N * C, 1e-5, "probabilities");

  /* Embedding sizes. */
  int64_t size = 0;
  ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_FUSED, &size), MSC_OK);
  ck_assert_int_eq(size, 32);
  ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_MODALITY_PROJECTION(0), &size),
                   MSC_OK);
  ck_assert_int_eq(size, P);
  ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_MODALITY(2), &size),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_model_embedding_size(m, 7, &size), MSC_E_INVALID_ARGUMENT);

  msc_batch_free(b);
  msc_model_free(m);
  free_weights(&w);
}
END_TEST

/* A batch without one modality: h_f is the present features scaled by n_mod / n_present
 * = 2 and zeros for the absent one (docs/model.md, "Missing modalities"), and the fused
 * head and classifier read that; the reference applies the rule by hand to the plain
 * reference encoder and heads. The absent encoder is not run. */
START_TEST(test_missing_modality_matches_reference) {
  weights w;
  make_weights(&w, 3);
  char path[300];
  path_in_tmp(path, sizeof path, "missing.safetensors");
  write_weights(&w, path, CONFIG);
  msc_model *m = load_ok(path);
  const float mean[2][4] = {{-12.5f, -19.25f}, {0, 0, 0, 0}};
  const float std[2][4] = {{5.f, 5.5f}, {1, 1, 1, 1}};
  for (int present = 0; present < 2; ++present) {
    float f[N * 16], fused[N * 32], z[N * P], probs[N * C], got[N * 32];
    ref_encoder(&w, present, inputs[present], mean[present], std[present], f);
    memset(fused, 0, sizeof fused);
    for (int i = 0; i < N; ++i)
      for (int k = 0; k < 16; ++k) fused[i * 32 + present * 16 + k] = 2.0f * f[i * 16 + k];
    /* A full batch less one modality (msc_batch_remove_modality). */
    msc_batch *b = full_batch();
    ck_assert_int_eq(msc_batch_remove_modality(b, MOD[1 - present]), MSC_OK);
    ck_assert_int_eq(msc_batch_remove_modality(b, MOD[1 - present]), MSC_E_NOT_FOUND);
    ck_assert_int_eq(msc_batch_remove_modality(NULL, "s1"), MSC_E_INVALID_ARGUMENT);
    ck_assert_int_eq(msc_batch_size(b), N);
    ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, got, N * 32), MSC_OK);
    assert_close(got, fused, N * 32, 1e-4, "h_f, one modality");
    ref_head(&w, "proj_fused", fused, 32, 32, z);
    unit_rows(z, N, P);
    ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED_PROJECTION, got, N * P), MSC_OK);
    assert_close(got, z, N * P, 1e-4, "z_f, one modality");
    ref_linear_fwd(N, 32, C, fused, get(&w, "classifier.fc.weight%s%s", "", ""),
                   get(&w, "classifier.fc.bias%s%s", "", ""), probs);
    for (int i = 0; i < N * C; ++i) probs[i] = (float)(1.0 / (1.0 + exp(-probs[i])));
    ck_assert_int_eq(msc_predict(m, b, got, N * C), MSC_OK);
    assert_close(got, probs, N * C, 1e-5, "probabilities, one modality");
    msc_batch_free(b);
    /* The pooled executor is as before for a full batch: plain concatenation. */
    b = full_batch();
    float other[N * 16], full[N * 32];
    ref_encoder(&w, 1 - present, inputs[1 - present], mean[1 - present], std[1 - present],
                other);
    for (int i = 0; i < N; ++i)
      for (int k = 0; k < 16; ++k) {
        full[i * 32 + present * 16 + k] = f[i * 16 + k];
        full[i * 32 + (1 - present) * 16 + k] = other[i * 16 + k];
      }
    ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, got, N * 32), MSC_OK);
    assert_close(got, full, N * 32, 1e-4, "h_f after a call without a modality");
    msc_batch_free(b);
  }
  /* Without S2, the classifier's graph needs no S2 input and no S2 encoder node. */
  const msci_graph *g = &m->graph;
  uint8_t *need = calloc((size_t)g->n_nodes, 1), need_input[MSCI_MAX_MODALITIES];
  const uint8_t absent[MSCI_MAX_MODALITIES] = {0, 1};
  msci_graph_mark_present(g, g->logits, absent, need, need_input);
  ck_assert(need_input[0] && !need_input[1]);
  ck_assert(need[g->feat[0]] && !need[g->feat[1]] && need[g->fused]);
  int s2_nodes = 0;
  for (int32_t i = g->feat[0] + 1; i <= g->feat[1]; ++i) s2_nodes += need[i];
  ck_assert_int_eq(s2_nodes, 0);
  free(need);
  msc_model_free(m);
  free_weights(&w);
}
END_TEST

START_TEST(test_getters) {
  weights w;
  make_weights(&w, 2);
  char path[300];
  path_in_tmp(path, sizeof path, "g.safetensors");
  write_weights(&w, path, CONFIG);
  msc_model *m = load_ok(path);
  ck_assert_int_eq(msc_model_modality_count(m), 2);
  ck_assert_str_eq(msc_model_modality_name(m, 1), "s2");
  ck_assert_ptr_null(msc_model_modality_name(m, 2));
  int64_t bands = 0, size = 0;
  ck_assert_int_eq(msc_model_modality_shape(m, 1, &bands, &size), MSC_OK);
  ck_assert_int_eq(bands, 4);
  ck_assert_int_eq(size, 12);
  ck_assert_int_eq(msc_model_modality_shape(m, 5, &bands, &size), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_model_class_count(m), 5);
  ck_assert_str_eq(msc_model_class_name(m, 4), "e");
  ck_assert_ptr_null(msc_model_class_name(m, 5));
  /* Trainable values: every tensor except running statistics. */
  int64_t want = 0;
  for (int i = 0; i < w.n; ++i)
    if (!strstr(w.t[i].name, "running_")) want += (int64_t)count_of(&w.t[i]);
  ck_assert_int_eq(msc_model_parameter_count(m), want);
  msc_options *o = NULL;
  ck_assert_int_eq(msc_model_options(m, &o), MSC_OK);
  int64_t v = 0;
  ck_assert_int_eq(msc_options_get_int(o, "modality.1.stem_width", &v), MSC_OK);
  ck_assert_int_eq(v, 8);
  char buf[64];
  ck_assert_int_eq(msc_options_get_string(o, "modality.0.encoder", buf, sizeof buf, NULL),
                   MSC_OK);
  msc_options_free(o);
  ck_assert_int_eq(msc_model_class_count(NULL), 0);
  ck_assert_ptr_null(msc_model_backend(NULL));
  msc_model_free(m);
  msc_model_free(NULL);
  free_weights(&w);
}
END_TEST

static int files_equal(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int eq = fa && fb;
  while (eq) {
    int ca = fgetc(fa), cb = fgetc(fb);
    if (ca != cb) eq = 0;
    if (ca == EOF) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return eq;
}

static msc_options *tiny_options(int64_t seed) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_from_json(o, CONFIG), MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "seed", seed), MSC_OK);
  return o;
}

START_TEST(test_save_load_bit_identical) {
  msc_options *o = tiny_options(11);
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  char p1[300], p2[300], p3[300];
  path_in_tmp(p1, sizeof p1, "a.safetensors");
  path_in_tmp(p2, sizeof p2, "b.safetensors");
  path_in_tmp(p3, sizeof p3, "c.safetensors");
  ck_assert_int_eq(msc_model_save(m, p1), MSC_OK);
  msc_model *l = load_ok(p1);
  msc_batch *b = full_batch();
  float e1[N * 32], e2[N * 32];
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, e1, N * 32), MSC_OK);
  ck_assert_int_eq(msc_embed(l, b, MSC_EMBED_FUSED, e2, N * 32), MSC_OK);
  ck_assert_mem_eq(e1, e2, sizeof e1);
  /* Saving the loaded model reproduces the file byte for byte. */
  ck_assert_int_eq(msc_model_save(l, p2), MSC_OK);
  ck_assert(files_equal(p1, p2));
  /* The same seed gives the same weights; another seed does not. */
  msc_model *same = NULL, *other = NULL;
  ck_assert_int_eq(msc_model_create(o, &same), MSC_OK);
  ck_assert_int_eq(msc_model_save(same, p3), MSC_OK);
  ck_assert(files_equal(p1, p3));
  ck_assert_int_eq(msc_options_set_int(o, "seed", 12), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &other), MSC_OK);
  ck_assert_int_eq(msc_model_save(other, p3), MSC_OK);
  ck_assert(!files_equal(p1, p3));
  msc_model_free(same);
  msc_model_free(other);
  msc_batch_free(b);
  msc_model_free(l);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

START_TEST(test_save_is_atomic) {
  msc_options *o = tiny_options(3);
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  char p[300], bad[300];
  path_in_tmp(p, sizeof p, "keep.safetensors");
  ck_assert_int_eq(msc_model_save(m, p), MSC_OK);
  /* A save into a directory that does not exist fails with MSC_E_IO... */
  path_in_tmp(bad, sizeof bad, "missing-dir/x.safetensors");
  ck_assert_int_eq(msc_model_save(m, bad), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "missing-dir"));
  /* ...and a save over a directory fails without touching it or leaving files. */
  char dir[300];
  path_in_tmp(dir, sizeof dir, "adir");
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  ck_assert_int_ne(msc_model_save(m, dir), MSC_OK);
  struct stat sb;
  ck_assert_int_eq(stat(dir, &sb), 0);
  ck_assert(S_ISDIR(sb.st_mode));
  char cmd[400];
  snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 2", tmpdir); /* keep + adir */
  ck_assert_int_eq(system(cmd), 0);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* Writes `len` bytes of src to path. */
static void write_bytes(const char *path, const unsigned char *src, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(src, 1, len, f), len);
  fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(*len);
  ck_assert_uint_eq(fread(buf, 1, *len, f), *len);
  fclose(f);
  return buf;
}

static void expect_refused(const char *path, msc_status want) {
  msc_model *m = (msc_model *)0x1; /* must stay untouched */
  msc_status st = msc_model_load(path, NULL, &m);
  ck_assert_msg(st == want, "%s: status %d (%s), want %d", path, st, msc_last_error(), want);
  ck_assert_ptr_eq(m, (msc_model *)0x1);
  ck_assert_msg(strlen(msc_last_error()) > 0, "no message");
}

START_TEST(test_corrupt_files_refused) {
  weights w;
  make_weights(&w, 5);
  char good[300], bad[300];
  path_in_tmp(good, sizeof good, "good.safetensors");
  path_in_tmp(bad, sizeof bad, "bad.safetensors");
  write_weights(&w, good, CONFIG);
  size_t len;
  unsigned char *bytes = read_bytes(good, &len);
  /* Truncated at many lengths, every one refused. */
  for (size_t cut = 0; cut < len; cut += (cut < 200 ? 1 : 97)) {
    write_bytes(bad, bytes, cut);
    expect_refused(bad, MSC_E_BAD_FORMAT);
  }
  /* A huge header length. */
  unsigned char *copy = malloc(len);
  memcpy(copy, bytes, len);
  for (int i = 0; i < 8; ++i) copy[i] = 0xff;
  write_bytes(bad, copy, len);
  expect_refused(bad, MSC_E_BAD_FORMAT);
  /* Flipped header bytes: refused or loaded, never a crash. */
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = hlen << 8 | bytes[i];
  for (size_t i = 8; i < 8 + hlen; i += 3) {
    memcpy(copy, bytes, len);
    copy[i] ^= 0x5a;
    write_bytes(bad, copy, len);
    msc_model *m = NULL;
    if (msc_model_load(bad, NULL, &m) == MSC_OK)
      msc_model_free(m);
    else
      ck_assert(strlen(msc_last_error()) > 0);
  }
  free(copy);
  free(bytes);
  /* Missing file. */
  path_in_tmp(bad, sizeof bad, "nope.safetensors");
  expect_refused(bad, MSC_E_IO);
  path_in_tmp(bad, sizeof bad, "bad.safetensors");
  /* No configuration in the metadata. */
  write_weights(&w, bad, NULL);
  expect_refused(bad, MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "mosaic.config"));
  /* A configuration that is not JSON, or has an unknown key. */
  write_weights(&w, bad, "{not json");
  expect_refused(bad, MSC_E_BAD_FORMAT);
  write_weights(&w, bad, "{\"modality.0.colour\":\"red\"}");
  expect_refused(bad, MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "colour"));
  /* A configuration that does not match the tensors (default encoders). */
  write_weights(&w, bad, "{\"classes\":5,\"class_names\":\"a;b;c;d;e\"}");
  expect_refused(bad, MSC_E_BAD_FORMAT);
  /* A tensor with the wrong shape, a missing tensor, an extra tensor, a NaN weight. */
  tensor saved = w.t[0];
  w.t[0].dims[1] = 3;
  float *bigger = calloc(count_of(&w.t[0]), sizeof(float));
  w.t[0].data = bigger;
  write_weights(&w, bad, CONFIG);
  expect_refused(bad, MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), w.t[0].name));
  free(bigger);
  w.t[0] = saved;
  w.n--;
  write_weights(&w, bad, CONFIG);
  expect_refused(bad, MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "missing"));
  w.n++;
  snprintf(w.t[w.n].name, sizeof w.t[w.n].name, "extra.weight");
  w.t[w.n].ndim = 1;
  w.t[w.n].dims[0] = 2;
  float two[2] = {1, 2};
  w.t[w.n].data = two;
  w.n++;
  write_weights(&w, bad, CONFIG);
  expect_refused(bad, MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "extra.weight"));
  w.n--;
  float keep = w.t[3].data[0];
  w.t[3].data[0] = NAN;
  write_weights(&w, bad, CONFIG);
  expect_refused(bad, MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "NaN"));
  w.t[3].data[0] = keep;
  /* The good file still loads. */
  msc_model *m = load_ok(good);
  msc_model_free(m);
  free_weights(&w);
}
END_TEST

START_TEST(test_bad_configurations) {
  msc_options *o = tiny_options(1);
  msc_model *m = (msc_model *)0x1;
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.mean", "1,2,3"), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &m), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "modality.0.mean"));
  ck_assert_ptr_eq(m, (msc_model *)0x1);
  msc_options_free(o);
  /* Stage widths and depths of different lengths. */
  o = tiny_options(1);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.widths", "8,16,32"), MSC_OK);
  ck_assert_int_eq(msc_model_create(o, &m), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "modality.1."));
  ck_assert_ptr_eq(m, (msc_model *)0x1);
  msc_options_free(o);
  /* An explicitly requested backend that is not usable here: no silent fallback. */
  o = tiny_options(1);
  ck_assert_int_eq(msc_options_set_string(o, "backend", "cuda"), MSC_OK);
  if (msc_backend_available("cuda") != MSC_OK) {
    ck_assert_int_eq(msc_model_create(o, &m), MSC_E_BACKEND_UNAVAILABLE);
    ck_assert_ptr_eq(m, (msc_model *)0x1);
  }
  msc_options_free(o);
  ck_assert_int_eq(msc_model_create(NULL, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_model_load(NULL, NULL, &m), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_model_save(NULL, "x"), MSC_E_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_batch_errors) {
  msc_options *o = tiny_options(1);
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  float out[N * 32];
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, out, N * 32), MSC_E_INVALID_ARGUMENT);
  /* None of the model's modalities: nothing to fuse. */
  ck_assert_int_eq(msc_batch_set_modality(b, "s3", inputs[1], N, 4, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, out, N * 32), MSC_E_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "none of the model's modalities"));
  ck_assert_int_eq(msc_predict(m, b, out, N * 5), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_MODALITY(1), out, N * 16), MSC_E_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "s2"));
  /* Only S2: its own features and, without S1, the fused ones (docs/model.md). */
  ck_assert_int_eq(msc_batch_set_modality(b, "s2", inputs[1], N, 4, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_MODALITY(1), out, N * 16), MSC_OK);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, out, N * 32), MSC_OK);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_MODALITY(0), out, N * 16), MSC_E_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "s1"));
  /* Wrong band count for S1: the message gives the expected shape. */
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", inputs[1], N, 4, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, out, N * 32), MSC_E_SHAPE);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "3x2x12x12"));
  /* A batch of another size is refused at once. */
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", inputs[0], N - 1, 2, SIZE, SIZE),
                   MSC_E_SHAPE);
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", inputs[0], N, 2, SIZE, SIZE), MSC_OK);
  /* Output too small. */
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, out, N * 32 - 1), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, out, N * 32), MSC_OK);
  /* A NaN pixel. */
  float *bad = malloc((size_t)(N * 2 * SIZE * SIZE) * sizeof(float));
  memcpy(bad, inputs[0], (size_t)(N * 2 * SIZE * SIZE) * sizeof(float));
  bad[SIZE * SIZE + 5] = NAN;
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", bad, N, 2, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, out, N * 32), MSC_E_NUMERICAL);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "band 1"));
  /* NaN pixels in two samples (normalised on several threads): the lower one is named. */
  bad[SIZE * SIZE + 5] = inputs[0][SIZE * SIZE + 5];
  bad[(size_t)(N - 1) * 2 * SIZE * SIZE + 3] = NAN;
  bad[(size_t)(N - 2) * 2 * SIZE * SIZE + SIZE * SIZE + 7] = NAN;
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", bad, N, 2, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, out, N * 32), MSC_E_NUMERICAL);
  char want[64];
  snprintf(want, sizeof want, "sample %d band 1", N - 2);
  ck_assert_msg(strstr(msc_last_error(), want) != NULL, "%s", msc_last_error());
  free(bad);
  /* Labels. */
  uint8_t labels[N * C] = {0};
  labels[2] = 2;
  ck_assert_int_eq(msc_batch_set_labels(b, labels, N, C), MSC_E_INVALID_ARGUMENT);
  labels[2] = 1;
  ck_assert_int_eq(msc_batch_set_labels(b, labels, N, C), MSC_OK);
  ck_assert_int_eq(msc_batch_set_labels(b, labels, N + 1, C), MSC_E_SHAPE);
  /* ... and read back. */
  uint8_t back[N * C + 1];
  memset(back, 7, sizeof back);
  int64_t classes = -1;
  ck_assert_int_eq(msc_batch_labels(b, NULL, 0, &classes), MSC_OK);
  ck_assert_int_eq(classes, C);
  ck_assert_int_eq(msc_batch_labels(b, back, N * C - 1, NULL), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(back[0], 7);
  ck_assert_int_eq(msc_batch_labels(b, back, sizeof back, NULL), MSC_OK);
  ck_assert_mem_eq(back, labels, N * C);
  ck_assert_int_eq(back[N * C], 7);
  ck_assert_int_eq(msc_batch_labels(NULL, back, sizeof back, NULL), MSC_E_INVALID_ARGUMENT);
  msc_batch *unlabelled = NULL;
  ck_assert_int_eq(msc_batch_create(&unlabelled), MSC_OK);
  ck_assert_int_eq(msc_batch_labels(unlabelled, back, sizeof back, &classes), MSC_E_NOT_FOUND);
  msc_batch_free(unlabelled);
  ck_assert_int_eq(msc_batch_size(b), N);
  ck_assert_int_eq(msc_batch_set_modality(b, NULL, inputs[0], N, 2, SIZE, SIZE),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", inputs[0], N, -2, SIZE, SIZE), MSC_E_SHAPE);
  ck_assert_int_eq(msc_embed(NULL, b, 0, out, 1), MSC_E_INVALID_ARGUMENT);
  msc_batch_free(b);
  msc_batch_free(NULL);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

START_TEST(test_resnet18_parameter_count) {
  /* torchvision's resnet18 has 11,689,512 parameters for 3 input bands and 1000
   * classes; without its fc layer (512·1000 + 1000) the body has 11,176,512, of which
   * the stem convolution holds 3·64·7·7. */
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(NULL, &m), MSC_OK);
  int64_t body3 = 11689512 - (512 * 1000 + 1000);
  int64_t enc_s1 = body3 - 3 * 64 * 49 + 2 * 64 * 49;
  int64_t enc_s2 = body3 - 3 * 64 * 49 + 12 * 64 * 49;
  int64_t proj = (512 * 512 + 512) + (512 * 128 + 128);
  int64_t fused = (1024 * 1024 + 1024) + (1024 * 128 + 128);
  int64_t cls = 1024 * 19 + 19;
  ck_assert_int_eq(msc_model_parameter_count(m), enc_s1 + enc_s2 + 2 * proj + fused + cls);
  ck_assert_int_eq(msc_model_class_count(m), 19);
  ck_assert_str_eq(msc_model_class_name(m, 2), "Arable land");
  int64_t size = 0;
  ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_FUSED, &size), MSC_OK);
  ck_assert_int_eq(size, 1024);
  msc_model_free(m);
}
END_TEST

/* torchvision's resnet34 (21,797,672 parameters, fc 512 -> 1000) and resnet50
 * (25,557,032, fc 2048 -> 1000), for 3 bands; the bodies without fc, with the stem
 * re-counted for the band counts of S1 (2) and S2 (12), plus the heads. */
static void check_resnet_count(const char *encoder, int64_t torchvision, int64_t feat) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.encoder", encoder), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.encoder", encoder), MSC_OK);
  msc_model *m = NULL;
  ck_assert_msg(msc_model_create(o, &m) == MSC_OK, "%s: %s", encoder, msc_last_error());
  int64_t body3 = torchvision - (feat * 1000 + 1000);
  int64_t enc_s1 = body3 - 3 * 64 * 49 + 2 * 64 * 49;
  int64_t enc_s2 = body3 - 3 * 64 * 49 + 12 * 64 * 49;
  int64_t proj = (feat * feat + feat) + (feat * 128 + 128);
  int64_t f = 2 * feat;
  int64_t fused = (f * f + f) + (f * 128 + 128);
  int64_t cls = f * 19 + 19;
  ck_assert_int_eq(msc_model_parameter_count(m), enc_s1 + enc_s2 + 2 * proj + fused + cls);
  int64_t size = 0;
  ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_MODALITY(1), &size), MSC_OK);
  ck_assert_int_eq(size, feat);
  msc_model_free(m);
  msc_options_free(o);
}

START_TEST(test_resnet34_50_parameter_count) {
  check_resnet_count("resnet34", 21797672, 512);
  check_resnet_count("resnet50", 25557032, 2048);
}
END_TEST

typedef struct worker {
  msc_model *m;
  msc_batch *b;
  float out[N * 32];
  msc_status st;
} worker;

static void *embed_worker(void *arg) {
  worker *wk = arg;
  for (int i = 0; i < 4 && wk->st == MSC_OK; ++i)
    wk->st = msc_embed(wk->m, wk->b, MSC_EMBED_FUSED, wk->out, N * 32);
  return NULL;
}

START_TEST(test_concurrent_embed) {
  msc_options *o = tiny_options(9);
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  msc_batch *b = full_batch();
  float serial[N * 32];
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, serial, N * 32), MSC_OK);
  enum { T = 6 };
  worker wk[T];
  pthread_t th[T];
  for (int i = 0; i < T; ++i) {
    wk[i] = (worker){m, b, {0}, MSC_OK};
    ck_assert_int_eq(pthread_create(&th[i], NULL, embed_worker, &wk[i]), 0);
  }
  for (int i = 0; i < T; ++i) {
    pthread_join(th[i], NULL);
    ck_assert_int_eq(wk[i].st, MSC_OK);
    ck_assert_mem_eq(wk[i].out, serial, sizeof serial);
  }
  msc_batch_free(b);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* Finite inputs so large (±3e38) that the activations overflow float32: no output call
 * returns MSC_OK with a NaN or infinity in its output. Each refuses with MSC_E_NUMERICAL
 * and a message saying so, or succeeds with finite values; the fused features (a sum of
 * overflowing convolutions) are certainly refused. */
START_TEST(test_huge_inputs_non_finite_outputs) {
  msc_options *o = tiny_options(4);
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  float *huge[2];
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  for (int k = 0; k < 2; ++k) {
    size_t count = (size_t)(N * BANDS[k] * SIZE * SIZE);
    huge[k] = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; ++i) huge[k][i] = (i * 7 % 3 == 0) ? -3e38f : 3e38f;
    ck_assert_int_eq(msc_batch_set_modality(b, MOD[k], huge[k], N, BANDS[k], SIZE, SIZE),
                     MSC_OK);
  }
  const int32_t kinds[] = {MSC_EMBED_FUSED,
                           MSC_EMBED_FUSED_PROJECTION,
                           MSC_EMBED_MODALITY(0),
                           MSC_EMBED_MODALITY(1),
                           MSC_EMBED_MODALITY_PROJECTION(0),
                           MSC_EMBED_MODALITY_PROJECTION(1),
                           -1 /* msc_predict */};
  int refused = 0;
  for (size_t c = 0; c < sizeof kinds / sizeof kinds[0]; ++c) {
    int64_t dim = C;
    if (kinds[c] >= 0) ck_assert_int_eq(msc_model_embedding_size(m, kinds[c], &dim), MSC_OK);
    float out[N * 32];
    msc_status st = kinds[c] >= 0 ? msc_embed(m, b, kinds[c], out, (size_t)(N * dim))
                                  : msc_predict(m, b, out, (size_t)(N * dim));
    if (st == MSC_OK) {
      for (int64_t i = 0; i < N * dim; ++i)
        ck_assert_msg(isfinite(out[i]), "output 0x%x: MSC_OK with %g at %lld", kinds[c], out[i],
                      (long long)i);
      continue;
    }
    ck_assert_msg(st == MSC_E_NUMERICAL, "output 0x%x: status %d (%s)", kinds[c], st,
                  msc_last_error());
    ck_assert_msg(strstr(msc_last_error(), "not finite") &&
                      strstr(msc_last_error(), kinds[c] >= 0 ? "msc_embed" : "msc_predict"),
                  "message '%s'", msc_last_error());
    refused += kinds[c] == MSC_EMBED_FUSED;
  }
  ck_assert_int_eq(refused, 1);
  /* The model still embeds ordinary inputs. */
  msc_batch *good = full_batch();
  float out[N * 32];
  ck_assert_int_eq(msc_embed(m, good, MSC_EMBED_FUSED, out, N * 32), MSC_OK);
  msc_batch_free(good);
  msc_batch_free(b);
  free(huge[0]), free(huge[1]);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

static Suite *model_suite(void) {
  Suite *s = suite_create("model");
  TCase *tc = tcase_create("model");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_tiny_forward_matches_reference);
  tcase_add_test(tc, test_missing_modality_matches_reference);
  tcase_add_test(tc, test_getters);
  tcase_add_test(tc, test_save_load_bit_identical);
  tcase_add_test(tc, test_save_is_atomic);
  tcase_add_test(tc, test_corrupt_files_refused);
  tcase_add_test(tc, test_bad_configurations);
  tcase_add_test(tc, test_batch_errors);
  tcase_add_test(tc, test_resnet18_parameter_count);
  tcase_add_test(tc, test_resnet34_50_parameter_count);
  tcase_add_test(tc, test_concurrent_embed);
  tcase_add_test(tc, test_huge_inputs_non_finite_outputs);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(model_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
