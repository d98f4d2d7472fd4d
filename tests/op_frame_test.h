/*
 * op_frame_test.h — the harness of the Check tests that run backend ops through the
 * core's frame (lib/backend/backend_call.c) as the model executor does:
 * test_convnext_ops.c and test_dense_ops.c. The CPU backend and a context per test
 * (setup/teardown as Check fixtures), tensors, ops and host buffers tracked and freed
 * by teardown, a fixed-seed xorshift64* generator, upload/download helpers that check
 * the logical shape, expect_close, and two finite-difference checks: ref_fd_check (a
 * reference gradient against central differences of a reference forward) and fd_check
 * (the backend's gradient against central differences of the backend's own forward).
 *
 * The includer defines FD_COORDS (coordinates per fd_check) and FD_RTOL (its relative
 * tolerance) first. Every definition is static: each test program has its own copy.
 */
#ifndef MOSAIC_TESTS_OP_FRAME_TEST_H
#define MOSAIC_TESTS_OP_FRAME_TEST_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/backend.h"
#include "backend/backend_call.h"
#include "backend/registry.h"
#include "common/internal.h"

#if !defined(FD_COORDS) || !defined(FD_RTOL)
#error "define FD_COORDS and FD_RTOL before including op_frame_test.h"
#endif

static const mbk_iface *B;
static mbk_ctx *CTX;

#define MAX_TRACKED 512
static mbk_tensor *g_tensors[MAX_TRACKED];
static int g_ntensors;
static msci_be_op *g_ops[MAX_TRACKED];
static int g_nops;
static void *g_mem[MAX_TRACKED];
static int g_nmem;

static void setup(void) {
  const mbk_iface *iface = NULL;
  msc_status st = mbk_cpu_init(msci_host(), &iface);
  ck_assert_msg(st == MSC_OK, "mbk_cpu_init: %d (%s)", (int)st, msc_last_error());
  B = iface;
  mbk_ctx_params p = {sizeof p, 0, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  CTX = NULL;
  st = B->ctx_create(&p, &CTX);
  ck_assert_msg(st == MSC_OK, "ctx_create: %d (%s)", (int)st, msc_last_error());
  g_ntensors = g_nops = g_nmem = 0;
}

static void teardown(void) {
  for (int i = g_nops - 1; i >= 0; --i) msci_be_op_free(g_ops[i]);
  for (int i = g_ntensors - 1; i >= 0; --i) B->tensor_free(g_tensors[i]);
  for (int i = g_nmem - 1; i >= 0; --i) free(g_mem[i]);
  g_ntensors = g_nops = g_nmem = 0;
  B->ctx_free(CTX);
  CTX = NULL;
}

static float *fbuf(size_t n) {
  ck_assert_int_lt(g_nmem, MAX_TRACKED);
  float *p = calloc(n ? n : 1, sizeof *p);
  ck_assert_ptr_nonnull(p);
  g_mem[g_nmem++] = p;
  return p;
}

static size_t numel(int32_t ndim, const int64_t *dims) {
  size_t n = 1;
  for (int32_t i = 0; i < ndim; ++i) n *= (size_t)dims[i];
  return n;
}

/* xorshift64*, fixed seeds. */
typedef struct rng {
  uint64_t s;
} rng;

static rng rng_make(uint64_t seed) {
  rng r = {seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull};
  return r;
}

static double rng_unit(rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return (double)((r->s * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

static size_t rng_index(rng *r, size_t n) {
  return (size_t)(rng_unit(r) * (double)n) % n;
}

static void fill_unif(rng *r, float *a, size_t n) {
  for (size_t i = 0; i < n; ++i) a[i] = (float)(2.0 * rng_unit(r) - 1.0);
}

/* (inline: not every includer uses it) */
static inline void fill_range(rng *r, float *a, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; ++i) a[i] = (float)(lo + (hi - lo) * rng_unit(r));
}

static mbk_tensor *t_new(void) {
  ck_assert_int_lt(g_ntensors, MAX_TRACKED);
  mbk_tensor *t = NULL;
  msc_status st = B->tensor_create(CTX, &t);
  ck_assert_msg(st == MSC_OK, "tensor_create: %s", msc_last_error());
  g_tensors[g_ntensors++] = t;
  return t;
}

static void t_set(mbk_tensor *t, int32_t ndim, const int64_t *dims, const float *src) {
  msc_status st = B->tensor_upload(t, ndim, dims, src);
  ck_assert_msg(st == MSC_OK, "tensor_upload: %s", msc_last_error());
}

static mbk_tensor *t_from(int32_t ndim, const int64_t *dims, const float *src) {
  mbk_tensor *t = t_new();
  t_set(t, ndim, dims, src);
  return t;
}

/* Checks the logical shape, then downloads. */
static void t_get(const char *what, const mbk_tensor *t, int32_t ndim, const int64_t *dims,
                  float *dst) {
  int64_t got[MBK_MAX_DIMS] = {0};
  int32_t gn = B->tensor_shape(t, got);
  int same = gn == ndim;
  for (int32_t i = 0; same && i < ndim; ++i) same = got[i] == dims[i];
  ck_assert_msg(same, "%s: shape ndim %d [%lld,%lld,%lld,%lld] expected [%lld,%lld,%lld,%lld]",
                what, (int)gn, (long long)got[0], (long long)got[1], (long long)got[2],
                (long long)got[3], (long long)dims[0], (long long)(ndim > 1 ? dims[1] : 0),
                (long long)(ndim > 2 ? dims[2] : 0), (long long)(ndim > 3 ? dims[3] : 0));
  msc_status st = B->tensor_download(t, dst, numel(ndim, dims));
  ck_assert_msg(st == MSC_OK, "%s: download: %s", what, msc_last_error());
}

/* Ops go through the core's frame (backend_call.c), as the model executor's do. */
static msci_be_op *op_make(const mbk_op_desc *d) {
  ck_assert_int_lt(g_nops, MAX_TRACKED);
  msci_be_op *op = NULL;
  msc_status st = msci_be_op_create(B, CTX, d, &op);
  ck_assert_msg(st == MSC_OK, "op_create (%s): %s", mbk_op_name(d->type), msc_last_error());
  g_ops[g_nops++] = op;
  return op;
}

static void fwd(msci_be_op *op, int32_t training, mbk_tensor *const *in, int32_t n_in,
                mbk_tensor *y) {
  mbk_tensor *out[1] = {y};
  msc_status st = msci_be_op_forward(op, training, in, n_in, out, 1);
  ck_assert_msg(st == MSC_OK, "op_forward: %s", msc_last_error());
}

static void bwd(msci_be_op *op, mbk_tensor *const *in, int32_t n_in, mbk_tensor *const *out,
                int32_t n_out) {
  msc_status st = msci_be_op_backward(op, in, n_in, out, n_out);
  ck_assert_msg(st == MSC_OK, "op_backward: %s", msc_last_error());
}

static void expect_close(const char *what, const float *got, const float *want, size_t n,
                         double rtol) {
  double scale = 1.0;
  for (size_t i = 0; i < n; ++i) scale = fmax(scale, fabs((double)want[i]));
  size_t bad = 0, worst = 0;
  double werr = -1.0;
  for (size_t i = 0; i < n; ++i) {
    const double e = fabs((double)got[i] - (double)want[i]);
    if (!(e <= rtol * scale)) ++bad;
    if (!(e <= werr)) werr = e, worst = i;
  }
  if (getenv("MSC_OPS_TEST_VERBOSE"))
    fprintf(stderr, "  %-56s max|diff|/scale %.2e\n", what, werr / scale);
  ck_assert_msg(bad == 0, "%s: %zu of %zu off; worst [%zu]: got %.9g, want %.9g (rtol %.0e)",
                what, bad, n, worst, (double)got[worst], (double)want[worst], rtol);
}

/* ---- finite differences ---------------------------------------------------------- */

/* Checks a reference gradient against central differences of a reference forward:
 * L(v) = Σ r·y(v), summed in double. The ops are linear in each argument, so the
 * quotient has no truncation error and a large step (±0.5) makes the float rounding of
 * y negligible: ~1e-7 of Σ|r·y| over a difference of ~1, hence the 1e-4 tolerance, far
 * below the O(1) error of a wrong formula. Every coordinate when there are few. */
typedef void (*ref_fwd_fn)(const void *ctx, const float *v, float *y);

static void ref_fd_check(const char *what, ref_fwd_fn f, const void *ctx, float *v, size_t nv,
                         size_t ny, const float *r, const float *grad, rng *g) {
  float *y = fbuf(ny);
  const int all = nv <= 64;
  const size_t count = all ? nv : 32;
  for (size_t k = 0; k < count; ++k) {
    const size_t i = all ? k : rng_index(g, nv);
    const float v0 = v[i];
    double l[2], at[2];
    for (int s = 0; s < 2; ++s) {
      v[i] = (float)((double)v0 + (s ? -0.5 : 0.5));
      at[s] = v[i];
      f(ctx, v, y);
      l[s] = 0.0;
      for (size_t j = 0; j < ny; ++j) l[s] += (double)r[j] * (double)y[j];
    }
    v[i] = v0;
    const double fd = (l[0] - l[1]) / (at[0] - at[1]);
    ck_assert_msg(fabs(fd - (double)grad[i]) <= 1e-4 * fmax(1.0, fabs(fd)),
                  "%s: reference gradient [%zu] %.9g, finite difference %.9g", what, i,
                  (double)grad[i], fd);
  }
}

/* Central differences of the backend's forward: L(v) = Σ r·y(v) in double, at random
 * coordinates; |fd − g| <= FD_RTOL·max(|g|, 0.1·max|g|), as test_cpu_ops.c's fd_check. */
typedef struct fd_case {
  const char *what;
  msci_be_op *op;
  mbk_tensor *const *in;
  int32_t n_in;
  mbk_tensor *y;
  int32_t y_ndim;
  const int64_t *y_dims;
  const float *r; /* L = Σ r·y */
  mbk_tensor *var;
  int32_t var_ndim;
  const int64_t *var_dims;
  float *host;       /* var's contents */
  const float *grad; /* the backend's dL/dvar with dy = r */
} fd_case;

static double fd_loss(const fd_case *c, float *ybuf) {
  fwd(c->op, 1, c->in, c->n_in, c->y);
  t_get(c->what, c->y, c->y_ndim, c->y_dims, ybuf);
  double L = 0.0;
  for (size_t j = 0; j < numel(c->y_ndim, c->y_dims); ++j)
    L += (double)c->r[j] * (double)ybuf[j];
  return L;
}

static void fd_check(const fd_case *c, rng *r) {
  const size_t nv = numel(c->var_ndim, c->var_dims);
  float *ybuf = fbuf(numel(c->y_ndim, c->y_dims));
  double gscale = 0.0;
  for (size_t i = 0; i < nv; ++i) gscale = fmax(gscale, fabs((double)c->grad[i]));
  const double h = 1e-2;
  for (int k = 0; k < FD_COORDS; ++k) {
    const size_t i = rng_index(r, nv);
    const float v = c->host[i];
    c->host[i] = (float)((double)v + h);
    const double vp = c->host[i];
    t_set(c->var, c->var_ndim, c->var_dims, c->host);
    const double lp = fd_loss(c, ybuf);
    c->host[i] = (float)((double)v - h);
    const double vm = c->host[i];
    t_set(c->var, c->var_ndim, c->var_dims, c->host);
    const double lm = fd_loss(c, ybuf);
    c->host[i] = v;
    t_set(c->var, c->var_ndim, c->var_dims, c->host);
    const double fd = (lp - lm) / (vp - vm), g = c->grad[i];
    ck_assert_msg(fabs(fd - g) <= FD_RTOL * fmax(fabs(g), 0.1 * gscale),
                  "%s: coordinate %zu: backend gradient %.7g, finite difference %.7g", c->what,
                  i, g, fd);
  }
}

#endif /* MOSAIC_TESTS_OP_FRAME_TEST_H */
