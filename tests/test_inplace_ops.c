/*
 * test_inplace_ops.c — the ops that contract API 14 lets run in place
 * (lib/contract/backend.h), on every backend present: the CPU always, CUDA when its
 * module and a device are there (otherwise that half is skipped, with the reason).
 *
 * Each case runs an op twice on the same inputs, once into fresh output tensors and once
 * with the output given as the input tensor the contract names, and asks for the same
 * bits (the same kernels run; only where they write changes):
 *  - RELU forward with y over x; RELU and GELU backward with dx over dy;
 *  - BATCHNORM backward with dx over dy: plain, with the fused ReLU, and with synchronised
 *    statistics (a reduce that leaves the sums as they are: one rank), dgamma and dbeta
 *    too;
 *  - ADD forward with y over a, with and without the per-sample scale; ADD backward with
 *    da over dy (then da holds dy, and db is dy, or s·dy with the scale).
 * Every case runs with its inputs plain and, where the backend keeps activations in other
 * layouts (the CPU's blocked nChw16c), with x and dy the outputs of a convolution, so
 * that the conversions of the CPU backend run before the in-place write.
 * tensor_host_data (API 14, optional): on the CPU, the pointer it returns is the tensor's
 * contents (download gives what was written), and an op that read the old contents sees
 * the new ones (no stale conversion); a backend without it answers MSC_E_UNSUPPORTED.
 *
 * Plain C without Check (as test_backend_ops: no fork once CUDA is touched). Exit
 * status: 0 pass, 1 failure; MSC_TEST_EXPECT_CUDA=1 (scripts/device-check.sh) makes a
 * skipped CUDA half a failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_call.h"
#include "backend/registry.h"
#include "common/internal.h"
#include "contract/backend.h"
#include "plain_check.h"

#define OK(call)                                                                               \
  do {                                                                                         \
    msc_status st_ = (call);                                                                   \
    CHECK(st_ == MSC_OK, "%s: %s (%s)", #call, msc_status_string(st_), msc_last_error());      \
    if (st_ != MSC_OK) return;                                                                 \
  } while (0)

static const mbk_iface *BE;
static mbk_ctx *CTX;
static const char *BE_NAME;

enum { N = 3, C = 16, H = 5, W = 7, COUNT = N * C * H * W };
static const int64_t DIMS[4] = {N, C, H, W};

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float unit(void) { /* uniform in [-1, 1) */
  g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
  return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* A fresh tensor: fill != 0 uploads random values (in [-1, 1) × scale). */
static mbk_tensor *tensor(int32_t ndim, const int64_t *dims, float scale) {
  mbk_tensor *t = NULL;
  if (msci_be_tensor_create(BE, CTX, &t) != MSC_OK) return NULL;
  if (scale == 0.0f) return t;
  size_t n = 1;
  for (int32_t i = 0; i < ndim; ++i) n *= (size_t)dims[i];
  float *v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; ++i) v[i] = unit() * scale;
  msc_status st = msci_be_tensor_upload(BE, t, ndim, dims, v);
  free(v);
  if (st != MSC_OK) {
    msci_be_tensor_free(BE, t);
    return NULL;
  }
  return t;
}

static float *download(const mbk_tensor *t, size_t n) {
  float *v = calloc(n, sizeof(float));
  if (msci_be_tensor_download(BE, t, v, n) != MSC_OK) {
    free(v);
    return NULL;
  }
  return v;
}

/* The same bits in a and b (n floats of their plain contents). */
static void expect_same(const char *what, const mbk_tensor *a, const mbk_tensor *b, size_t n) {
  float *x = download(a, n), *y = download(b, n);
  CHECK(x && y, "%s %s: download failed (%s)", BE_NAME, what, msc_last_error());
  if (x && y) {
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; ++i)
      if (memcmp(&x[i], &y[i], sizeof(float)) != 0) {
        bad++;
        worst = fmax(worst, fabs((double)x[i] - (double)y[i]));
      }
    CHECK(bad == 0, "%s %s: %zu of %zu values differ in place (max |diff| %g)", BE_NAME, what,
          bad, n, worst);
  }
  free(x);
  free(y);
}

static mbk_op_desc desc4(int32_t type) {
  mbk_op_desc d;
  memset(&d, 0, sizeof d);
  d.type = type, d.ndim = 4, d.n = N, d.c = C, d.h = H, d.w = W;
  return d;
}

/* An [N, C, H, W] value from a 3×3 convolution of 4 random channels: the layout the
 * backend gives activations (the CPU's blocked one), not the plain layout of an upload. */
static mbk_tensor *conv_output(float scale) {
  mbk_op_desc d = desc4(MBK_OP_CONV2D);
  d.c = 4, d.u.conv.out_c = C, d.u.conv.kh = d.u.conv.kw = 3, d.u.conv.sh = d.u.conv.sw = 1;
  d.u.conv.ph = d.u.conv.pw = 1;
  const int64_t xd[4] = {N, 4, H, W}, wd[4] = {C, 4, 3, 3};
  mbk_tensor *x = tensor(4, xd, 1.0f), *w = tensor(4, wd, scale / 6.0f),
             *y = tensor(4, DIMS, 0);
  msci_be_op *op = NULL;
  msc_status st = msci_be_op_create(BE, CTX, &d, &op);
  mbk_tensor *in[3] = {x, w, NULL};
  if (st == MSC_OK) st = msci_be_op_forward(op, 1, in, 3, &y, 1);
  msci_be_op_free(op);
  msci_be_tensor_free(BE, x);
  msci_be_tensor_free(BE, w);
  if (st != MSC_OK) {
    fprintf(stderr, "%s conv: %s\n", BE_NAME, msc_last_error());
    msci_be_tensor_free(BE, y);
    return NULL;
  }
  return y;
}

/* A value for a case: plain (an upload) or a convolution's output. */
static mbk_tensor *value(int from_conv, float scale) {
  return from_conv ? conv_output(scale) : tensor(4, DIMS, scale);
}

/* A copy of t in a fresh tensor, through the plain contents. */
static mbk_tensor *clone(const mbk_tensor *t) {
  float *v = download(t, COUNT);
  mbk_tensor *c = tensor(4, DIMS, 0);
  if (v && c && msci_be_tensor_upload(BE, c, 4, DIMS, v) != MSC_OK) {
    msci_be_tensor_free(BE, c);
    c = NULL;
  }
  free(v);
  return c;
}

/* ---- RELU, GELU ---------------------------------------------------------------------- */

static void test_relu_forward(int from_conv) {
  mbk_op_desc d = desc4(MBK_OP_RELU);
  msci_be_op *op = NULL;
  OK(msci_be_op_create(BE, CTX, &d, &op));
  mbk_tensor *x = value(from_conv, 1.0f), *y = tensor(4, DIMS, 0);
  mbk_tensor *x2 = x ? clone(x) : NULL;
  CHECK(x && y && x2, "%s relu: inputs", BE_NAME);
  if (x && y && x2) {
    msc_status a = msci_be_op_forward(op, 1, &x, 1, &y, 1);
    msc_status b = msci_be_op_forward(op, 1, &x2, 1, &x2, 1); /* y over x */
    CHECK(a == MSC_OK && b == MSC_OK, "%s relu forward: %s", BE_NAME, msc_last_error());
    expect_same(from_conv ? "relu forward (conv input)" : "relu forward", y, x2, COUNT);
  }
  msci_be_tensor_free(BE, x), msci_be_tensor_free(BE, y), msci_be_tensor_free(BE, x2);
  msci_be_op_free(op);
}

static void test_act_backward(int32_t type, int from_conv) {
  mbk_op_desc d = desc4(type);
  msci_be_op *op = NULL;
  OK(msci_be_op_create(BE, CTX, &d, &op));
  /* ReLU's backward takes its forward's y for x (backend.h): any x will do here. */
  mbk_tensor *x = value(0, 1.0f), *y = tensor(4, DIMS, 0), *dy = value(from_conv, 1.0f);
  mbk_tensor *dx = tensor(4, DIMS, 0), *dy2 = dy ? clone(dy) : NULL;
  CHECK(x && y && dy && dx && dy2, "%s act: inputs", BE_NAME);
  if (x && y && dy && dx && dy2) {
    msc_status f = msci_be_op_forward(op, 1, &x, 1, &y, 1);
    mbk_tensor *in[2] = {x, dy}, *in2[2] = {x, dy2};
    msc_status a = msci_be_op_backward(op, in, 2, &dx, 1);
    /* dy2 in its own layout: the conversion (if any) runs before dx overwrites it */
    msc_status b = msci_be_op_backward(op, in2, 2, &dy2, 1);
    CHECK(f == MSC_OK && a == MSC_OK && b == MSC_OK, "%s %s backward: %s", BE_NAME,
          mbk_op_name(type), msc_last_error());
    char what[64];
    snprintf(what, sizeof what, "%s backward%s", mbk_op_name(type),
             from_conv ? " (conv dy)" : "");
    expect_same(what, dx, dy2, COUNT);
  }
  msci_be_tensor_free(BE, x), msci_be_tensor_free(BE, y), msci_be_tensor_free(BE, dy);
  msci_be_tensor_free(BE, dx), msci_be_tensor_free(BE, dy2);
  msci_be_op_free(op);
}

/* ---- BATCHNORM ----------------------------------------------------------------------- */

/* One rank: the group's sums are this process's own. */
static msc_status one_rank(void *user, double *buf, int64_t n) {
  (void)user, (void)buf, (void)n;
  return MSC_OK;
}

static void test_bnorm_backward(int relu, int sync, int from_conv) {
  mbk_op_desc d = desc4(MBK_OP_BATCHNORM);
  d.u.bn.eps = 1e-5f, d.u.bn.momentum = 0.1f, d.u.bn.relu = relu;
  if (sync) d.u.bn.reduce = one_rank;
  msci_be_op *op = NULL;
  OK(msci_be_op_create(BE, CTX, &d, &op));
  const int64_t cd[1] = {C};
  mbk_tensor *x = value(from_conv, 2.0f), *y = tensor(4, DIMS, 0), *dy = value(from_conv, 1.0f);
  mbk_tensor *gamma = tensor(1, cd, 1.0f), *beta = tensor(1, cd, 0.5f);
  mbk_tensor *rm = tensor(1, cd, 0.1f), *rv = tensor(1, cd, 0);
  float ones[C];
  for (int i = 0; i < C; ++i) ones[i] = 1.0f + 0.1f * (float)i;
  if (rv) (void)msci_be_tensor_upload(BE, rv, 1, cd, ones);
  mbk_tensor *dx = tensor(4, DIMS, 0), *dg = tensor(1, cd, 0), *db = tensor(1, cd, 0);
  mbk_tensor *dg2 = tensor(1, cd, 0), *db2 = tensor(1, cd, 0), *dy2 = dy ? clone(dy) : NULL;
  int ready = x && y && dy && gamma && beta && rm && rv && dx && dg && db && dg2 && db2 && dy2;
  CHECK(ready, "%s batchnorm: inputs", BE_NAME);
  if (ready) {
    mbk_tensor *fin[5] = {x, gamma, beta, rm, rv};
    msc_status f = msci_be_op_forward(op, 1, fin, 5, &y, 1);
    mbk_tensor *in[3] = {x, gamma, dy}, *out[3] = {dx, dg, db};
    mbk_tensor *in2[3] = {x, gamma, dy2}, *out2[3] = {dy2, dg2, db2};
    msc_status a = msci_be_op_backward(op, in, 3, out, 3);
    msc_status b = msci_be_op_backward(op, in2, 3, out2, 3);
    CHECK(f == MSC_OK && a == MSC_OK && b == MSC_OK, "%s batchnorm backward: %s", BE_NAME,
          msc_last_error());
    char what[96];
    snprintf(what, sizeof what, "batchnorm backward%s%s%s", relu ? " +relu" : "",
             sync ? " (synchronised)" : "", from_conv ? " (conv x, dy)" : "");
    expect_same(what, dx, dy2, COUNT);
    expect_same("batchnorm dgamma", dg, dg2, C);
    expect_same("batchnorm dbeta", db, db2, C);
  }
  mbk_tensor *all[13] = {x, y, dy, gamma, beta, rm, rv, dx, dg, db, dg2, db2, dy2};
  for (int i = 0; i < 13; ++i) msci_be_tensor_free(BE, all[i]);
  msci_be_op_free(op);
}

/* ---- ADD ----------------------------------------------------------------------------- */

static void test_add(int scaled, int from_conv) {
  mbk_op_desc d = desc4(MBK_OP_ADD);
  d.u.add.row_scale = scaled;
  msci_be_op *op = NULL;
  OK(msci_be_op_create(BE, CTX, &d, &op));
  const int64_t nd[1] = {N};
  const float sv[N] = {0.0f, 2.0f, 1.25f};
  /* a plain, b a convolution's output (or both plain): the CPU converts b to a's layout */
  mbk_tensor *a = tensor(4, DIMS, 1.0f), *b = value(from_conv, 1.0f), *y = tensor(4, DIMS, 0);
  mbk_tensor *s = scaled ? tensor(1, nd, 0) : NULL, *a2 = a ? clone(a) : NULL;
  if (s) (void)msci_be_tensor_upload(BE, s, 1, nd, sv);
  mbk_tensor *dy = value(from_conv, 1.0f), *da = tensor(4, DIMS, 0), *db = tensor(4, DIMS, 0);
  mbk_tensor *db2 = tensor(4, DIMS, 0), *dy2 = dy ? clone(dy) : NULL;
  int ready = a && b && y && (!scaled || s) && a2 && dy && da && db && db2 && dy2;
  CHECK(ready, "%s add: inputs", BE_NAME);
  if (ready) {
    mbk_tensor *in[3] = {a, b, s}, *in2[3] = {a2, b, s};
    int32_t k = scaled ? 3 : 2;
    msc_status f1 = msci_be_op_forward(op, 1, in, k, &y, 1);
    msc_status f2 = msci_be_op_forward(op, 1, in2, k, &a2, 1); /* y over a */
    CHECK(f1 == MSC_OK && f2 == MSC_OK, "%s add forward: %s", BE_NAME, msc_last_error());
    char what[64];
    snprintf(what, sizeof what, "add forward%s%s", scaled ? " (scaled)" : "",
             from_conv ? " (conv b)" : "");
    expect_same(what, y, a2, COUNT);
    mbk_tensor *bin[2] = {dy, s}, *bin2[2] = {dy2, s};
    mbk_tensor *out[2] = {da, db}, *out2[2] = {dy2, db2}; /* da over dy */
    int32_t kb = scaled ? 2 : 1;
    msc_status b1 = msci_be_op_backward(op, bin, kb, out, 2);
    msc_status b2 = msci_be_op_backward(op, bin2, kb, out2, 2);
    CHECK(b1 == MSC_OK && b2 == MSC_OK, "%s add backward: %s", BE_NAME, msc_last_error());
    snprintf(what, sizeof what, "add backward da%s%s", scaled ? " (scaled)" : "",
             from_conv ? " (conv dy)" : "");
    expect_same(what, da, dy2, COUNT);
    expect_same("add backward db", db, db2, COUNT);
  }
  mbk_tensor *all[10] = {a, b, y, s, a2, dy, da, db, db2, dy2};
  for (int i = 0; i < 10; ++i) msci_be_tensor_free(BE, all[i]);
  msci_be_op_free(op);
}

/* ---- tensor_host_data ---------------------------------------------------------------- */

static void test_host_data(void) {
  mbk_tensor *t = tensor(4, DIMS, 0), *y = tensor(4, DIMS, 0);
  float *p = NULL;
  msc_status st = msci_be_tensor_host_data(BE, t, 4, DIMS, &p);
  if (!BE->tensor_host_data) {
    CHECK(st == MSC_E_UNSUPPORTED, "%s: tensor_host_data absent but %s", BE_NAME,
          msc_status_string(st));
    msci_be_tensor_free(BE, t), msci_be_tensor_free(BE, y);
    return;
  }
  CHECK(st == MSC_OK && p, "%s tensor_host_data: %s", BE_NAME, msc_last_error());
  if (st != MSC_OK || !p) return;
  mbk_op_desc d = desc4(MBK_OP_RELU);
  msci_be_op *op = NULL;
  OK(msci_be_op_create(BE, CTX, &d, &op));
  for (int round = 0; round < 2; ++round) {
    CHECK(msci_be_tensor_host_data(BE, t, 4, DIMS, &p) == MSC_OK, "%s host data", BE_NAME);
    for (int i = 0; i < COUNT; ++i) p[i] = (float)((i * 7 + round * 3) % 11) - 5.0f;
    float *back = download(t, COUNT);
    int same = back != NULL;
    for (int i = 0; same && i < COUNT; ++i)
      same = back[i] == (float)((i * 7 + round * 3) % 11) - 5.0f;
    CHECK(same, "%s tensor_host_data round %d: download differs from what was written", BE_NAME,
          round);
    free(back);
    /* an op reading it sees this round's contents */
    CHECK(msci_be_op_forward(op, 0, &t, 1, &y, 1) == MSC_OK, "%s relu: %s", BE_NAME,
          msc_last_error());
    float *r = download(y, COUNT);
    int right = r != NULL;
    for (int i = 0; right && i < COUNT; ++i)
      right = r[i] == fmaxf((float)((i * 7 + round * 3) % 11) - 5.0f, 0.0f);
    CHECK(right, "%s relu after tensor_host_data round %d: stale input", BE_NAME, round);
    free(r);
  }
  const int64_t bad[4] = {N, 0, H, W};
  CHECK(msci_be_tensor_host_data(BE, t, 4, bad, &p) == MSC_E_SHAPE, "%s: zero dimension",
        BE_NAME);
  CHECK(msci_be_tensor_host_data(BE, t, 4, DIMS, NULL) == MSC_E_INVALID_ARGUMENT,
        "%s: NULL data", BE_NAME);
  msci_be_op_free(op);
  msci_be_tensor_free(BE, t), msci_be_tensor_free(BE, y);
}

static void run_all(void) {
  for (int from_conv = 0; from_conv < 2; ++from_conv) {
    test_relu_forward(from_conv);
    test_act_backward(MBK_OP_RELU, from_conv);
    test_act_backward(MBK_OP_GELU, from_conv);
    for (int relu = 0; relu < 2; ++relu)
      for (int sync = 0; sync < 2; ++sync) test_bnorm_backward(relu, sync, from_conv);
    test_add(0, from_conv);
    test_add(1, from_conv);
  }
  test_host_data();
}

int main(void) {
  const char *names[2] = {"cpu", "cuda"};
  for (int k = 0; k < 2; ++k) {
    BE_NAME = names[k];
    if (msci_backend_resolve(names[k], &BE, NULL) != MSC_OK) {
      printf("%s: skipped (%s)\n", names[k], msc_last_error());
      const char *expect = getenv("MSC_TEST_EXPECT_CUDA");
      CHECK(k == 0 ? 0 : !(expect && atoi(expect)), "cuda expected (MSC_TEST_EXPECT_CUDA)");
      continue;
    }
    mbk_ctx_params p = {sizeof p, 2, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
    if (msci_be_ctx_create(BE, &p, &CTX) != MSC_OK) {
      printf("%s: skipped (%s)\n", names[k], msc_last_error());
      continue;
    }
    int before = g_checks;
    run_all();
    printf("%s: %d checks\n", names[k], g_checks - before);
    msci_be_ctx_free(BE, CTX);
  }
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
