/*
 * test_cpu_ops.c — the CPU backend's ops (lib/contract/backend.h) against the plain-C reference
 * (ref_ops.c) and against finite differences of the backend's own forward.
 *
 * Why: the backend keeps oneDNN's preferred (blocked) memory layouts between ops and
 * caches primitives per op, so it can be wrong in ways a single-op test with plain
 * layouts never shows. The suite therefore checks, written purely against mbk_iface:
 *  - every op, forward and backward, on small odd shapes, against the reference
 *    (relative tolerance scaled by the reference's largest magnitude, see TOL_*);
 *  - every backward against central finite differences of the backend's forward on
 *    L = sum(r * y) with random r, at a few random coordinates of every input and
 *    parameter (catches a reference and a backend that are wrong the same way);
 *  - chains of ops run without downloading in between, forward and all gradients,
 *    against the reference chain (catches wrong reorders between blocked layouts),
 *    and every op fed one blocked and one plain input, in both orders, or a plain
 *    gradient after a blocked forward (catches an input used in the wrong layout);
 *  - error paths (invalid descriptions, wrong shapes and argument counts, too small
 *    buffers, NULL destructors) and reuse (ops and tensors run again, fresh outputs,
 *    new data in old tensors, tensors rewritten with other shapes).
 * All inputs come from fixed-seed generators, so a failure reproduces exactly. Max-pool
 * inputs are distinct values with gaps wider than the finite-difference step, so the
 * backend's tie rule never matters.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "contract/backend.h"
#include "backend/backend_call.h"
#include "backend/registry.h"
#include "common/internal.h"
#include "ref_ops.h"

/*
 * Tolerances, |got - want| <= TOL * max(1, max |want|) over a whole output.
 *  - TOL_EXACT: outputs that are copies or single roundings (relu, add, concat, max
 *    pool, scaling by 1/HW); any difference beyond a few ulps is a bug.
 *  - TOL_FWD: dot products of up to ~850 terms (7x7x17 conv) and batch-norm
 *    normalisation. float32 accumulation error grows like sqrt(K) * 2^-24 relative to
 *    the sum of |terms|: ~1e-6 of the output's scale for these shapes.
 *  - TOL_GRAD: reductions over N*OH*OW (weight and bias gradients, a few hundred terms
 *    that partly cancel) and batch-norm backward (dx is a difference of three nearly
 *    equal terms). Same 1e-5: these shapes are small enough that the rounding error
 *    stays below 1e-6 of the scale.
 *  - TOL_CHAIN: whole networks forward and backward (8-10 ops), end to end. Same 1e-5:
 *    each op adds ~1e-7..1e-6 and nothing amplifies it much at these sizes. A looser
 *    1e-4 would let a running variance with the biased instead of the unbiased batch
 *    variance (off by 3e-4 at N*H*W = 288) pass in the residual chain.
 * Measured on the oneDNN 2.6 backend (AVX-512, 2 threads): the worst error of any
 * comparison was 7e-7 of its scale (MSC_OPS_TEST_VERBOSE=1 prints every margin).
 */
#define TOL_EXACT 1e-6
#define TOL_FWD   1e-5
#define TOL_GRAD  1e-5
#define TOL_CHAIN 1e-5

/* Finite differences: coordinates per tensor, relative tolerance (see fd_check). */
#define FD_COORDS 6
#define FD_RTOL   1e-2

/* ================================ harness ======================================== */

/* With MSC_OPS_TEST_VERBOSE set, every comparison prints its worst error relative to
 * its tolerance (to see the margins; the library itself never prints). */
static int verbose(void) {
  static int v = -1;
  if (v < 0) v = getenv("MSC_OPS_TEST_VERBOSE") != NULL;
  return v;
}

static const mbk_iface *B;
static mbk_ctx *CTX;

/* Everything a test creates is tracked and released in teardown, so the suite stays
 * clean under valgrind with CK_FORK=no. */
#define MAX_TRACKED 1024
static mbk_tensor *g_tensors[MAX_TRACKED];
static int g_ntensors;
static mbk_op *g_ops[MAX_TRACKED];
static int g_nops;
static msci_be_op *g_fops[MAX_TRACKED]; /* ops made through the core's frame */
static int g_nfops;
static void *g_mem[MAX_TRACKED];
static int g_nmem;

/* Contexts a test makes besides CTX, freed by the teardown after the tensors. */
static mbk_ctx *g_ctx_more[2];

static void setup(void) {
  const mbk_iface *iface = NULL;
  msc_status st = mbk_cpu_init(msci_host(), &iface);
  ck_assert_msg(st == MSC_OK, "mbk_cpu_init: %d (%s)", (int)st, msc_last_error());
  ck_assert_ptr_nonnull(iface);
  B = iface;
  mbk_ctx_params p = {sizeof p, 0, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  CTX = NULL;
  st = B->ctx_create(&p, &CTX);
  ck_assert_msg(st == MSC_OK, "ctx_create: %d (%s)", (int)st, msc_last_error());
  ck_assert_ptr_nonnull(CTX);
  g_ntensors = g_nops = g_nmem = g_nfops = 0;
}

static void teardown(void) {
  for (int i = g_nfops - 1; i >= 0; --i) msci_be_op_free(g_fops[i]);
  for (int i = g_nops - 1; i >= 0; --i) B->op_free(g_ops[i]);
  for (int i = g_ntensors - 1; i >= 0; --i) B->tensor_free(g_tensors[i]);
  for (int i = g_nmem - 1; i >= 0; --i) free(g_mem[i]);
  g_ntensors = g_nops = g_nmem = g_nfops = 0;
  if (B) B->ctx_free(CTX);
  CTX = NULL;
  for (int i = 0; i < 2; ++i) {
    if (B) B->ctx_free(g_ctx_more[i]);
    g_ctx_more[i] = NULL;
  }
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

/* ---- deterministic random numbers (xorshift64*) ---- */
typedef struct rng {
  uint64_t s;
} rng;

static rng rng_make(uint64_t seed) {
  rng r = {seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull};
  if (r.s == 0) r.s = 1;
  return r;
}

static uint64_t rng_u64(rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545F4914F6CDD1Dull;
}

static double rng_unit(rng *r) {
  return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

static size_t rng_index(rng *r, size_t n) {
  return (size_t)(rng_unit(r) * (double)n) % n;
}

static void fill_unif(rng *r, float *a, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; ++i) a[i] = (float)(lo + (hi - lo) * rng_unit(r));
}

/* Random sign, magnitude in [lo, hi]: keeps values away from a kink at 0. */
static void fill_signed(rng *r, float *a, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; ++i) {
    const double m = lo + (hi - lo) * rng_unit(r);
    a[i] = (float)(rng_unit(r) < 0.5 ? -m : m);
  }
}

/* Distinct values k * gap in random order: with all_negative, -(1..n) * gap; otherwise
 * centred on 0 (never exactly 0). */
static void fill_distinct(rng *r, float *a, size_t n, double gap, int all_negative) {
  size_t *perm = malloc(n * sizeof *perm);
  ck_assert_ptr_nonnull(perm);
  for (size_t i = 0; i < n; ++i) perm[i] = i;
  for (size_t i = n; i > 1; --i) {
    const size_t j = rng_index(r, i), t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
  for (size_t i = 0; i < n; ++i)
    a[i] = all_negative ? (float)(-(double)(perm[i] + 1) * gap)
                        : (float)(((double)perm[i] - (double)(n / 2) + 0.5) * gap);
  free(perm);
}

/* ---- tensors ---- */
static mbk_tensor *t_new(void) {
  ck_assert_int_lt(g_ntensors, MAX_TRACKED);
  mbk_tensor *t = NULL;
  msc_status st = B->tensor_create(CTX, &t);
  ck_assert_msg(st == MSC_OK, "tensor_create: %d (%s)", (int)st, msc_last_error());
  ck_assert_ptr_nonnull(t);
  g_tensors[g_ntensors++] = t;
  return t;
}

static void t_set(mbk_tensor *t, int32_t ndim, const int64_t *dims, const float *src) {
  msc_status st = B->tensor_upload(t, ndim, dims, src);
  ck_assert_msg(st == MSC_OK, "tensor_upload (ndim %d): %d (%s)", (int)ndim, (int)st,
                msc_last_error());
}

static mbk_tensor *t_from(int32_t ndim, const int64_t *dims, const float *src) {
  mbk_tensor *t = t_new();
  t_set(t, ndim, dims, src);
  return t;
}

/* Checks t's logical shape is exactly (ndim, dims), then downloads it into dst. */
static void t_get(const char *what, const mbk_tensor *t, int32_t ndim, const int64_t *dims,
                  float *dst) {
  int64_t got[MBK_MAX_DIMS] = {0, 0, 0, 0};
  const int32_t gn = B->tensor_shape(t, got);
  int same = gn == ndim;
  for (int32_t i = 0; same && i < ndim; ++i) same = got[i] == dims[i];
  ck_assert_msg(same,
                "%s: shape is ndim %d [%lld,%lld,%lld,%lld], expected ndim %d "
                "[%lld,%lld,%lld,%lld]",
                what, (int)gn, (long long)got[0], (long long)got[1], (long long)got[2],
                (long long)got[3], (int)ndim, (long long)dims[0],
                (long long)(ndim > 1 ? dims[1] : 0), (long long)(ndim > 2 ? dims[2] : 0),
                (long long)(ndim > 3 ? dims[3] : 0));
  msc_status st = B->tensor_download(t, dst, numel(ndim, dims));
  ck_assert_msg(st == MSC_OK, "%s: tensor_download: %d (%s)", what, (int)st, msc_last_error());
}

/* ---- ops ---- */
static mbk_op *op_make(const mbk_op_desc *d) {
  ck_assert_int_lt(g_nops, MAX_TRACKED);
  mbk_op *op = NULL;
  msc_status st = B->op_create(CTX, d, &op);
  ck_assert_msg(st == MSC_OK, "op_create (type %d): %d (%s)", (int)d->type, (int)st,
                msc_last_error());
  ck_assert_ptr_nonnull(op);
  g_ops[g_nops++] = op;
  return op;
}

static void fwd(mbk_op *op, int32_t training, mbk_tensor *const *in, int32_t n_in,
                mbk_tensor *y) {
  mbk_tensor *out[1] = {y};
  msc_status st = B->op_forward(op, training, in, n_in, out, 1);
  ck_assert_msg(st == MSC_OK, "op_forward: %d (%s)", (int)st, msc_last_error());
}

static void bwd(mbk_op *op, mbk_tensor *const *in, int32_t n_in, mbk_tensor *const *out,
                int32_t n_out) {
  msc_status st = B->op_backward(op, in, n_in, out, n_out);
  ck_assert_msg(st == MSC_OK, "op_backward: %d (%s)", (int)st, msc_last_error());
}

static mbk_op_desc desc_zero(int32_t type, int32_t ndim, int64_t n, int64_t c, int64_t h,
                             int64_t w) {
  mbk_op_desc d;
  memset(&d, 0, sizeof d);
  d.type = type;
  d.ndim = ndim;
  d.n = n;
  d.c = c;
  d.h = ndim == 4 ? h : 1;
  d.w = ndim == 4 ? w : 1;
  return d;
}

static mbk_op_desc conv_desc(const ref_conv *p, int32_t bias) {
  mbk_op_desc d = desc_zero(MBK_OP_CONV2D, 4, p->n, p->c, p->h, p->w);
  d.u.conv.out_c = p->oc;
  d.u.conv.kh = p->kh;
  d.u.conv.kw = p->kw;
  d.u.conv.sh = p->sh;
  d.u.conv.sw = p->sw;
  d.u.conv.ph = p->ph;
  d.u.conv.pw = p->pw;
  d.u.conv.bias = bias;
  return d;
}

static mbk_op_desc bn_desc(int32_t ndim, int64_t n, int64_t c, int64_t h, int64_t w, float eps,
                           float momentum, int32_t relu) {
  mbk_op_desc d = desc_zero(MBK_OP_BATCHNORM, ndim, n, c, h, w);
  d.u.bn.eps = eps;
  d.u.bn.momentum = momentum;
  d.u.bn.relu = relu;
  return d;
}

static mbk_op_desc pool_desc(const ref_pool *p) {
  mbk_op_desc d = desc_zero(MBK_OP_MAXPOOL, 4, p->n, p->c, p->h, p->w);
  d.u.pool.kh = p->kh;
  d.u.pool.kw = p->kw;
  d.u.pool.sh = p->sh;
  d.u.pool.sw = p->sw;
  d.u.pool.ph = p->ph;
  d.u.pool.pw = p->pw;
  return d;
}

static mbk_op_desc linear_desc(int64_t n, int64_t k, int64_t o, int32_t bias) {
  mbk_op_desc d = desc_zero(MBK_OP_LINEAR, 2, n, k, 1, 1);
  d.u.linear.out_f = o;
  d.u.linear.bias = bias;
  return d;
}

static mbk_op_desc concat_desc(int32_t ndim, int64_t n, int64_t h, int64_t w, int32_t count,
                               const int64_t *cs) {
  int64_t total = 0;
  for (int32_t i = 0; i < count; ++i) total += cs[i];
  mbk_op_desc d = desc_zero(MBK_OP_CONCAT, ndim, n, total, h, w);
  d.u.concat.count = count;
  for (int32_t i = 0; i < count; ++i) d.u.concat.c[i] = cs[i];
  return d;
}

/* ---- comparisons ---- */

/* |got - want| <= rtol * max(1, max |want|) for every element; NaN always fails. */
static void expect_close(const char *what, const float *got, const float *want, size_t n,
                         double rtol) {
  double scale = 1.0;
  for (size_t i = 0; i < n; ++i)
    if (fabs((double)want[i]) > scale) scale = fabs((double)want[i]);
  const double tol = rtol * scale;
  size_t bad = 0, worst = 0;
  double werr = -1.0;
  for (size_t i = 0; i < n; ++i) {
    const double e = fabs((double)got[i] - (double)want[i]);
    if (!(e <= tol)) ++bad;
    if (!(e <= werr)) {
      werr = e;
      worst = i;
    }
  }
  if (verbose())
    fprintf(stderr, "  %-48s max|diff|/scale %.2e  (rtol %.0e)\n", what, werr / scale, rtol);
  ck_assert_msg(bad == 0,
                "%s: %zu of %zu elements off; worst [%zu]: got %.9g, want %.9g, "
                "|diff| %.3g > tol %.3g (rtol %.0e x scale %.4g)",
                what, bad, n, worst, (double)got[worst], (double)want[worst], werr, tol, rtol,
                scale);
}

/* Bit-for-bit the same values (same op, same data, run again). */
static void expect_same(const char *what, const float *got, const float *want, size_t n) {
  for (size_t i = 0; i < n; ++i)
    ck_assert_msg(got[i] == want[i], "%s: element %zu changed between runs: %.9g vs %.9g", what,
                  i, (double)got[i], (double)want[i]);
}

/* ---- finite differences ---- */

/*
 * One gradient to check by central differences of the backend's forward:
 * L(v) = sum_j r_j y_j(v), accumulated in double; dL/dv_i ~ (L(v_i + h) - L(v_i - h)) /
 * (v_i+ - v_i-), where v_i± are the float values actually uploaded.
 *
 * Tolerance: |fd - g| <= FD_RTOL * max(|g|, 0.1 * max_i |g_i|). The floor (1e-3 of the
 * gradient's scale) covers the float32 rounding of the affected outputs divided by 2h:
 * with h = 1e-2 and ~100 affected outputs of magnitude ~1 it is ~1e-4 absolute. Outputs
 * the perturbation does not reach are bit-identical between runs and cancel exactly.
 * Truncation error is zero for the linear ops and O(h^2) for batch norm.
 */
typedef struct fd_case {
  const char *what;
  mbk_op *op;
  int32_t training;
  mbk_tensor *const *in; /* forward inputs, as for op_forward */
  int32_t n_in;
  mbk_tensor *y; /* forward output */
  int32_t y_ndim;
  const int64_t *y_dims;
  const float *r;  /* L = sum r * y */
  mbk_tensor *var; /* the input that is perturbed ... */
  int32_t var_ndim;
  const int64_t *var_dims;
  float *host;       /* ... its current contents (restored after each coordinate) */
  const float *grad; /* the backend's dL/d(var) with dy = r */
  double h;
  /* Returns non-zero for a coordinate whose neighbourhood holds a kink. */
  int (*skip)(size_t idx, const void *user);
  const void *user;
} fd_case;

static double fd_loss(const fd_case *c, float *ybuf) {
  fwd(c->op, c->training, c->in, c->n_in, c->y);
  t_get(c->what, c->y, c->y_ndim, c->y_dims, ybuf);
  const size_t ny = numel(c->y_ndim, c->y_dims);
  double L = 0.0;
  for (size_t j = 0; j < ny; ++j) L += (double)c->r[j] * (double)ybuf[j];
  return L;
}

static void fd_check(const fd_case *c, rng *r, int ncoords) {
  const size_t nv = numel(c->var_ndim, c->var_dims);
  float *ybuf = fbuf(numel(c->y_ndim, c->y_dims));
  double gscale = 0.0;
  for (size_t i = 0; i < nv; ++i) gscale = fmax(gscale, fabs((double)c->grad[i]));
  int done = 0;
  double worst = 0.0;
  for (int tries = 0; done < ncoords && tries < 2000; ++tries) {
    const size_t i = rng_index(r, nv);
    if (c->skip && c->skip(i, c->user)) continue;
    const float v = c->host[i];
    c->host[i] = (float)((double)v + c->h);
    const double vp = c->host[i];
    t_set(c->var, c->var_ndim, c->var_dims, c->host);
    const double lp = fd_loss(c, ybuf);
    c->host[i] = (float)((double)v - c->h);
    const double vm = c->host[i];
    t_set(c->var, c->var_ndim, c->var_dims, c->host);
    const double lm = fd_loss(c, ybuf);
    c->host[i] = v;
    t_set(c->var, c->var_ndim, c->var_dims, c->host);
    const double fd = (lp - lm) / (vp - vm), g = c->grad[i];
    const double tol = FD_RTOL * fmax(fabs(g), 0.1 * gscale);
    ck_assert_msg(fabs(fd - g) <= tol,
                  "%s: coordinate %zu: backend gradient %.7g, finite difference %.7g "
                  "(h %.0e), |diff| %.3g > tol %.3g",
                  c->what, i, g, fd, c->h, fabs(fd - g), tol);
    worst = fmax(worst, fabs(fd - g) / tol);
    ++done;
  }
  if (verbose())
    fprintf(stderr, "  %-48s finite differences: worst |diff|/tol %.3f\n", c->what, worst);
  ck_assert_msg(done == ncoords, "%s: only %d usable coordinates (test design)", c->what, done);
}

/* ================================ basics ========================================= */

START_TEST(test_iface) {
  ck_assert_uint_eq(B->api_version, MBK_API_VERSION);
  ck_assert_uint_ge(B->struct_size, sizeof(mbk_iface));
  ck_assert_ptr_nonnull(B->name);
  ck_assert_str_eq(B->name, "cpu");
  char why[256] = "";
  ck_assert_int_eq(B->probe(why, sizeof why), MSC_OK);
  /* A second context can live next to the first. */
  mbk_ctx_params p = {sizeof p, 1, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  mbk_ctx *c2 = NULL;
  ck_assert_int_eq(B->ctx_create(&p, &c2), MSC_OK);
  ck_assert_ptr_nonnull(c2);
  B->ctx_free(c2);
}
END_TEST

START_TEST(test_tensor_roundtrip) {
  rng r = rng_make(1);
  int64_t dims[MBK_MAX_DIMS] = {0};
  mbk_tensor *t = t_new();
  ck_assert_int_eq(B->tensor_shape(t, dims), 0); /* empty */

  const int64_t d1[1] = {7}, d2[2] = {3, 5}, d4[4] = {2, 16, 3, 5}, d4b[4] = {1, 3, 2, 2};
  float *a = fbuf(480), *b = fbuf(480);
  fill_unif(&r, a, 480, -1, 1);
  /* 1-D, then larger 4-D, then smaller 2-D and 4-D into the same tensor. */
  t_set(t, 1, d1, a);
  t_get("1-D", t, 1, d1, b);
  expect_same("1-D round trip", b, a, 7);
  t_set(t, 4, d4, a);
  t_get("4-D", t, 4, d4, b);
  expect_same("4-D round trip", b, a, 480);
  t_set(t, 2, d2, a + 100);
  t_get("2-D", t, 2, d2, b);
  expect_same("2-D round trip", b, a + 100, 15);
  t_set(t, 4, d4b, a + 7);
  t_get("small 4-D", t, 4, d4b, b);
  expect_same("small 4-D round trip", b, a + 7, 12);

  /* A download larger than needed is fine; smaller is refused. */
  ck_assert_int_eq(B->tensor_download(t, b, 480), MSC_OK);
  msc_clear_error();
  ck_assert_int_eq(B->tensor_download(t, b, 11), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_str_ne(msc_last_error(), "");
}
END_TEST

START_TEST(test_tensor_errors) {
  float a[64] = {0};
  mbk_tensor *t = t_new();
  const int64_t d3[3] = {2, 2, 2}, d4[4] = {2, 2, 2, 2}, bad[4] = {2, -1, 2, 2};
  int64_t dims[MBK_MAX_DIMS];

  msc_clear_error();
  ck_assert_int_lt(B->tensor_upload(t, 3, d3, a), 0); /* ndim 3 is not a layout */
  ck_assert_str_ne(msc_last_error(), "");
  ck_assert_int_lt(B->tensor_upload(t, 0, d4, a), 0);
  ck_assert_int_lt(B->tensor_upload(t, 5, d4, a), 0);
  msc_clear_error();
  ck_assert_int_lt(B->tensor_upload(t, 4, bad, a), 0);
  ck_assert_str_ne(msc_last_error(), "");
  ck_assert_int_eq(B->tensor_upload(t, 4, NULL, a), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(B->tensor_upload(t, 4, d4, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(B->tensor_shape(t, dims), 0); /* still empty after failed uploads */

  t_set(t, 4, d4, a);
  msc_clear_error();
  ck_assert_int_eq(B->tensor_download(t, a, 15), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_str_ne(msc_last_error(), "");
  ck_assert_int_eq(B->tensor_download(t, NULL, 16), MSC_E_INVALID_ARGUMENT);

  /* Destructors accept NULL. */
  B->tensor_free(NULL);
  B->op_free(NULL);
  B->ctx_free(NULL);
}
END_TEST

/* ================================ conv2d ========================================= */

typedef struct conv_case {
  ref_conv p;
  int32_t bias;
  /* 1: for the AVX-512 kernels of backends/cpu/cpu_conv_c16.c, skipped under valgrind,
   * which hides AVX-512 (oneDNN runs them there) and whose translator gives up on
   * oneDNN's AVX2 reorder kernels for some of these widths */
  int32_t avx512;
} conv_case;

/* Whether valgrind runs this process (its preload library). */
static int under_valgrind(void) {
  const char *p = getenv("LD_PRELOAD");
  return p && strstr(p, "vgpreload") != NULL;
}

static const conv_case CONV_CASES[] = {
    /* n, c, h, w, oc, kh, kw, sh, sw, ph, pw */
    {{2, 3, 7, 9, 16, 3, 3, 1, 1, 1, 1}, 1, 0},   /* 3x3 s1 p1, C=3 -> 16 */
    {{1, 5, 7, 9, 8, 3, 3, 2, 2, 1, 1}, 0, 0},    /* 3x3 s2 p1 on odd 7x9, C=5 */
    {{2, 3, 15, 13, 16, 7, 7, 2, 2, 3, 3}, 0, 0}, /* 7x7 s2 p3 stem */
    {{3, 16, 7, 9, 32, 1, 1, 2, 2, 0, 0}, 0, 0},  /* 1x1 s2 projection shortcut */
    {{4, 17, 5, 6, 5, 3, 3, 1, 1, 1, 1}, 1, 0},   /* C=17, N=4 */
    {{2, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1}, 1, 0},  /* 16 -> 16 */
    {{1, 16, 9, 7, 17, 3, 3, 2, 2, 1, 1}, 1, 0},  /* 16 -> 17, s2, odd */
    {{2, 5, 6, 7, 3, 3, 1, 1, 2, 1, 0}, 1, 0},    /* non-square kernel, stride, padding */
    {{2, 3, 6, 6, 4, 2, 2, 2, 2, 0, 0}, 0, 0},    /* even kernel, no padding */
    {{2, 8, 9, 11, 8, 3, 3, 1, 1, 1, 1}, 0, 0},   /* 8 -> 8: fused, runs channels-last */
    {{2, 12, 9, 7, 8, 3, 3, 1, 1, 1, 1}, 1, 0},   /* 12 -> 8, the tiny encoder's stem */
    /* 8-channel activations in the 8-channel blocked layout (cpu_conv.c, act_md) */
    {{2, 8, 9, 7, 8, 3, 3, 1, 1, 1, 1}, 0, 0},   /* 8 -> 8 */
    {{2, 8, 10, 9, 16, 3, 3, 2, 2, 1, 1}, 1, 0}, /* 8 -> 16, s2 */
    {{2, 8, 9, 9, 16, 1, 1, 2, 2, 0, 0}, 0, 0},  /* 1x1 s2 8 -> 16 shortcut */
    {{2, 12, 9, 8, 8, 3, 3, 1, 1, 1, 1}, 1, 0},  /* stem 12 -> 8 */
    {{2, 2, 8, 9, 8, 3, 3, 1, 1, 1, 1}, 0, 0},   /* stem 2 -> 8 */
    {{1, 24, 6, 5, 8, 3, 3, 1, 1, 1, 1}, 1, 0},  /* 24 -> 8 */
    /* the project's own 3x3 kernels (backends/cpu/cpu_conv_k8.c): blocks of 16 (AVX-512)
     * and 12 (AVX2) pixels and tails of 8, 4, 2 and 1, one- and two-pixel rows and
     * columns, stems of 1 to 16 channels, and the widths around them that stay on oneDNN */
    {{2, 8, 5, 37, 8, 3, 3, 1, 1, 1, 1}, 1, 0},  /* 8 -> 8, 35 interior pixels, bias */
    {{1, 8, 3, 18, 8, 3, 3, 1, 1, 1, 1}, 0, 0},  /* one block of 16 */
    {{3, 8, 4, 14, 8, 3, 3, 1, 1, 1, 1}, 1, 0},  /* one block of 12; 8 + 4 */
    {{1, 8, 2, 26, 8, 3, 3, 1, 1, 1, 1}, 0, 0},  /* 16 + 8; two blocks of 12 */
    {{2, 8, 1, 1, 8, 3, 3, 1, 1, 1, 1}, 1, 0},   /* 1x1 image */
    {{2, 8, 2, 2, 8, 3, 3, 1, 1, 1, 1}, 0, 0},   /* 2x2: edges only */
    {{1, 8, 7, 1, 8, 3, 3, 1, 1, 1, 1}, 0, 0},   /* one column */
    {{1, 8, 1, 23, 8, 3, 3, 1, 1, 1, 1}, 1, 0},  /* one row: 16 + 4 + 1 */
    {{2, 1, 6, 19, 8, 3, 3, 1, 1, 1, 1}, 1, 0},  /* stem 1 -> 8 */
    {{2, 16, 5, 21, 8, 3, 3, 1, 1, 1, 1}, 0, 0}, /* stem 16 -> 8 */
    {{1, 9, 4, 36, 8, 3, 3, 1, 1, 1, 1}, 1, 0},  /* stem 9 -> 8: groups of 8 and 1, 17 pairs */
    {{2, 17, 4, 6, 8, 3, 3, 1, 1, 1, 1}, 0, 0},  /* 17 -> 8: oneDNN */
    {{2, 8, 5, 6, 16, 3, 3, 1, 1, 1, 1}, 0, 0},  /* 8 -> 16: oneDNN */
    /* the project's own 16-output-channel kernels (backends/cpu/cpu_conv_c16.c, AVX-512):
     * blocks of 24 pixels and tails of 16, 8, 4, 2 and 1, even and odd widths and heights
     * (stride 2: the last column or row with a tap outside), both column parities of
     * backward-data, one-pixel images */
    {{2, 8, 6, 61, 16, 3, 3, 2, 2, 1, 1}, 0, 1},  /* 8 -> 16 s2: 29 inside = 24 + 4 + 1 */
    {{1, 8, 9, 50, 16, 3, 3, 2, 2, 1, 1}, 1, 1},  /* one block of 24, odd height, bias */
    {{2, 8, 1, 1, 16, 3, 3, 2, 2, 1, 1}, 0, 1},   /* 1x1 image */
    {{1, 8, 2, 3, 16, 3, 3, 2, 2, 1, 1}, 1, 1},   /* 2x3 */
    {{2, 8, 5, 70, 16, 1, 1, 2, 2, 0, 0}, 1, 1},  /* 1x1 s2: 35 = 24 + 8 + 2 + 1, bias */
    {{1, 8, 1, 2, 16, 1, 1, 2, 2, 0, 0}, 0, 1},   /* 1x1 s2, one row of two */
    {{1, 16, 3, 43, 16, 3, 3, 1, 1, 1, 1}, 1, 1}, /* 16 -> 16: 41 = 24 + 16 + 1, bias */
    {{2, 16, 1, 1, 16, 3, 3, 1, 1, 1, 1}, 0, 1},  /* 1x1 image */
    {{1, 16, 4, 2, 16, 3, 3, 1, 1, 1, 1}, 0, 1},  /* edges only */
    {{2, 16, 2, 27, 16, 3, 3, 1, 1, 1, 1}, 1, 1}, /* 25 = 24 + 1 */
    {{1, 16, 5, 9, 16, 3, 3, 2, 2, 1, 1}, 0, 0},  /* 16 -> 16 s2: oneDNN */
    {{1, 8, 5, 9, 16, 3, 3, 1, 1, 1, 1}, 1, 0},   /* 8 -> 16 s1: oneDNN */
    /* stems whose backward-weights runs channels-last (cpu_conv.c, stem_nhwc_bwd_weights) */
    {{2, 12, 15, 13, 64, 7, 7, 2, 2, 3, 3}, 0, 0}, /* the ResNet-18 S2 stem, 12 -> 64 */
    {{2, 5, 9, 11, 16, 7, 7, 2, 2, 3, 3}, 1, 0},   /* 5 -> 16 with bias */
    /* Winograd F(4x4, 3x3) on AVX-512 (cpu_conv.c, wino_fits: 3x3 stride 1, 64 channels
     * and more, 32 output tiles of 4x4 or more in the call): tiles cut by the edges, one
     * tile an image, a one-pixel image, no padding, bias; and one call of too few tiles
     * (direct); skipped under valgrind like the others of AVX-512 (it runs direct there) */
    {{2, 64, 18, 15, 64, 3, 3, 1, 1, 1, 1}, 0, 1}, /* 18 = 4·4 + 2, 15 = 3·4 + 3: 40 tiles */
    {{32, 64, 4, 4, 128, 3, 3, 1, 1, 1, 1}, 1, 1}, /* one tile each, 64 -> 128, bias */
    {{32, 128, 1, 1, 64, 3, 3, 1, 1, 1, 1}, 0, 1}, /* 1x1 images */
    {{16, 64, 10, 6, 80, 3, 3, 1, 1, 0, 0}, 0, 1}, /* no padding, 80 channels out */
    {{2, 64, 9, 7, 64, 3, 3, 1, 1, 1, 1}, 0, 1},   /* 12 tiles: direct */
};

START_TEST(test_conv2d) {
  const conv_case *cc = &CONV_CASES[_i];
  if (cc->avx512 && under_valgrind()) return;
  const ref_conv *p = &cc->p;
  char what[160];
  rng r = rng_make(100 + (uint64_t)_i);
  const int64_t oh = ref_conv_oh(p), ow = ref_conv_ow(p);
  const int64_t xd[4] = {p->n, p->c, p->h, p->w}, wd[4] = {p->oc, p->c, p->kh, p->kw};
  const int64_t bd[1] = {p->oc}, yd[4] = {p->n, p->oc, oh, ow};
  const size_t nx = numel(4, xd), nw = numel(4, wd), ny = numel(4, yd), nb = (size_t)p->oc;
  float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(nb), *y = fbuf(ny), *yr = fbuf(ny);
  float *dy = fbuf(ny), *dx = fbuf(nx), *dw = fbuf(nw), *db = fbuf(nb);
  float *dxr = fbuf(nx), *dwr = fbuf(nw), *dbr = fbuf(nb), *tmp = fbuf(nx > nw ? nx : nw);
  fill_unif(&r, x, nx, -1, 1);
  fill_unif(&r, w, nw, -1, 1);
  fill_unif(&r, b, nb, -1, 1);
  fill_unif(&r, dy, ny, -1, 1);
  snprintf(what, sizeof what,
           "conv2d case %d [%lld,%lld,%lld,%lld] k%lldx%lld s%lldx%lld "
           "p%lldx%lld oc %lld bias %d",
           _i, (long long)p->n, (long long)p->c, (long long)p->h, (long long)p->w,
           (long long)p->kh, (long long)p->kw, (long long)p->sh, (long long)p->sw,
           (long long)p->ph, (long long)p->pw, (long long)p->oc, (int)cc->bias);

  mbk_op_desc d = conv_desc(p, cc->bias);
  int64_t od[MBK_MAX_DIMS];
  ck_assert_int_eq(mbk_op_out_dims(&d, od), 4);
  ck_assert(od[2] == oh && od[3] == ow);
  mbk_op *op = op_make(&d);
  mbk_tensor *tx = t_from(4, xd, x), *tw = t_from(4, wd, w);
  mbk_tensor *tb = cc->bias ? t_from(1, bd, b) : NULL, *ty = t_new();
  mbk_tensor *in[3] = {tx, tw, tb};

  ref_conv2d_fwd(p, x, w, cc->bias ? b : NULL, yr);
  fwd(op, 0, in, 3, ty);
  t_get(what, ty, 4, yd, y);
  expect_close("conv2d forward (inference)", y, yr, ny, TOL_FWD);
  fwd(op, 1, in, 3, ty);
  t_get(what, ty, 4, yd, y);
  expect_close("conv2d forward (training)", y, yr, ny, TOL_FWD);

  /* Backward, all gradients. */
  mbk_tensor *tdy = t_from(4, yd, dy);
  mbk_tensor *tdx = t_new(), *tdw = t_new(), *tdb = cc->bias ? t_new() : NULL;
  mbk_tensor *bin[3] = {tx, tw, tdy}, *bout[3] = {tdx, tdw, tdb};
  bwd(op, bin, 3, bout, 3);
  ref_conv2d_bwd_data(p, w, dy, dxr);
  ref_conv2d_bwd_weights(p, x, dy, dwr);
  ref_conv2d_bwd_bias(p, dy, dbr);
  t_get(what, tdx, 4, xd, dx);
  expect_close("conv2d dx", dx, dxr, nx, TOL_FWD);
  t_get(what, tdw, 4, wd, dw);
  expect_close("conv2d dw", dw, dwr, nw, TOL_GRAD);
  if (cc->bias) {
    t_get(what, tdb, 1, bd, db);
    expect_close("conv2d db", db, dbr, nb, TOL_GRAD);
  }

  /* Only some gradients asked for. */
  mbk_tensor *tdx2 = t_new(), *tdw2 = t_new();
  mbk_tensor *only_dx[3] = {tdx2, NULL, NULL}, *only_dw[3] = {NULL, tdw2, NULL};
  bwd(op, bin, 3, only_dx, 3);
  t_get(what, tdx2, 4, xd, tmp);
  expect_close("conv2d dx alone", tmp, dxr, nx, TOL_FWD);
  bwd(op, bin, 3, only_dw, 3);
  t_get(what, tdw2, 4, wd, tmp);
  expect_close("conv2d dw alone", tmp, dwr, nw, TOL_GRAD);
  if (cc->bias) {
    mbk_tensor *tdb2 = t_new(), *only_db[3] = {NULL, NULL, tdb2};
    bwd(op, bin, 3, only_db, 3);
    t_get(what, tdb2, 1, bd, tmp);
    expect_close("conv2d db alone", tmp, dbr, nb, TOL_GRAD);
  }

  /* Finite differences of the backend's forward. */
  fd_case c = {what, op, 1, in, 3, ty, 4, yd, dy, tx, 4, xd, x, dx, 1e-2, NULL, NULL};
  fd_check(&c, &r, FD_COORDS);
  c.var = tw;
  c.var_dims = wd;
  c.host = w;
  c.grad = dw;
  fd_check(&c, &r, FD_COORDS);
  if (cc->bias) {
    c.var = tb;
    c.var_ndim = 1;
    c.var_dims = bd;
    c.host = b;
    c.grad = db;
    fd_check(&c, &r, FD_COORDS);
  }
}
END_TEST

/* CONV2D's inference fusions (API 7): y = relu?(BN_inference(conv(x, w) [+ b]) + r),
 * against the plain references chained: ref_conv2d_fwd, ref_bn_fwd_infer, ref_add_fwd,
 * ref_relu_fwd. Flags per combination: bit 0 fold_bn, bit 1 residual, bit 2 relu. The
 * folded weights w·γ/√(σ²+ε) round once more than the chain, an error of one ulp per
 * product: within TOL_FWD like any dot product of these sizes. Then the refold: new
 * gamma and running_var (uploads bump the tensors' versions) must change the output, and
 * the residual may be the output tensor itself (the executor hands it over). */
static const int32_t FUSED_FLAGS[] = {1, 1 | 4, 1 | 2 | 4, 1 | 2, 2 | 4, 4};

START_TEST(test_conv2d_fused) {
  const int32_t flags = FUSED_FLAGS[_i % (int)(sizeof FUSED_FLAGS / sizeof FUSED_FLAGS[0])];
  const conv_case *cc = &CONV_CASES[_i / (int)(sizeof FUSED_FLAGS / sizeof FUSED_FLAGS[0])];
  if (cc->avx512 && under_valgrind()) return;
  const ref_conv *p = &cc->p;
  const int fold = flags & 1, res = (flags & 2) != 0, relu = (flags & 4) != 0;
  const int bias = fold ? 0 : cc->bias;
  rng r = rng_make(900 + (uint64_t)_i);
  const int64_t oh = ref_conv_oh(p), ow = ref_conv_ow(p), c = p->oc;
  const int64_t xd[4] = {p->n, p->c, p->h, p->w}, wd[4] = {p->oc, p->c, p->kh, p->kw};
  const int64_t yd[4] = {p->n, p->oc, oh, ow};
  const size_t nx = numel(4, xd), nw = numel(4, wd), ny = numel(4, yd), nc = (size_t)c;
  float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(nc), *y = fbuf(ny), *yr = fbuf(ny);
  float *rr = fbuf(ny), *t1 = fbuf(ny), *bn[4] = {fbuf(nc), fbuf(nc), fbuf(nc), fbuf(nc)};
  fill_unif(&r, x, nx, -1, 1);
  fill_unif(&r, w, nw, -1, 1);
  fill_unif(&r, b, nc, -1, 1);
  fill_unif(&r, rr, ny, -1, 1);
  fill_unif(&r, bn[0], nc, 0.5, 1.5);  /* gamma */
  fill_unif(&r, bn[1], nc, -0.5, 0.5); /* beta */
  fill_unif(&r, bn[2], nc, -0.5, 0.5); /* running mean */
  fill_unif(&r, bn[3], nc, 0.2, 2.0);  /* running var */
  const float eps = 1e-5f;

  mbk_op_desc d = conv_desc(p, bias);
  d.u.conv.fold_bn = fold;
  d.u.conv.bn_eps = fold ? eps : 0.0f;
  d.u.conv.residual = res;
  d.u.conv.relu = relu;
  int32_t n_in = 0, n_out = 0;
  ck_assert(mbk_op_arity(&d, 0, &n_in, &n_out));
  ck_assert_int_eq(n_in, 3 + (fold ? 4 : 0) + res);
  mbk_op *op = op_make(&d);
  mbk_tensor *in[8] = {t_from(4, xd, x), t_from(4, wd, w), bias ? t_from(1, &c, b) : NULL};
  int32_t k = 3;
  mbk_tensor *tbn[4] = {NULL, NULL, NULL, NULL};
  for (int i = 0; fold && i < 4; ++i) in[k++] = tbn[i] = t_from(1, &c, bn[i]);
  mbk_tensor *tr = res ? t_from(4, yd, rr) : NULL, *ty = t_new();
  if (res) in[k++] = tr;
  ck_assert_int_eq(k, n_in);

  for (int round = 0; round < 3; ++round) {
    if (round == 1 && fold) { /* new statistics: the folded weights must follow */
      fill_unif(&r, bn[0], nc, 0.5, 1.5);
      fill_unif(&r, bn[3], nc, 0.2, 2.0);
      t_set(tbn[0], 1, &c, bn[0]);
      t_set(tbn[3], 1, &c, bn[3]);
    }
    ref_conv2d_fwd(p, x, w, bias ? b : NULL, yr);
    if (fold) {
      memcpy(t1, yr, ny * sizeof *t1);
      ref_bn_fwd_infer(p->n, c, oh * ow, t1, bn[0], bn[1], bn[2], bn[3], eps, 0, yr);
    }
    if (res) {
      memcpy(t1, yr, ny * sizeof *t1);
      ref_add_fwd(ny, t1, rr, yr);
    }
    if (relu) {
      memcpy(t1, yr, ny * sizeof *t1);
      ref_relu_fwd(ny, t1, yr);
    }
    /* Round 2: the residual's own tensor takes the output (in place). */
    mbk_tensor *out = round == 2 && res ? tr : ty;
    fwd(op, 0, in, n_in, out);
    t_get("conv2d fused", out, 4, yd, y);
    expect_close(round == 0   ? "conv2d fused"
                 : round == 1 ? "conv2d fused, refolded"
                              : "conv2d fused, in place",
                 y, yr, ny, TOL_FWD);
  }
  /* Inference only: a training forward and a backward are refused. */
  mbk_tensor *out[3] = {ty, NULL, NULL};
  ck_assert_int_ne(B->op_forward(op, 1, in, n_in, out, 1), MSC_OK);
  mbk_tensor *bin[3] = {in[0], in[1], ty};
  mbk_tensor *bout[3] = {t_new(), NULL, NULL};
  ck_assert_int_ne(B->op_backward(op, bin, 3, bout, 3), MSC_OK);
  /* A folded batch norm with a bias is an invalid description. */
  mbk_op_desc bad = conv_desc(p, 1);
  bad.u.conv.fold_bn = 1;
  bad.u.conv.bn_eps = eps;
  ck_assert_int_eq(mbk_op_desc_validate(&bad, NULL, 0), MSC_E_INVALID_ARGUMENT);
}
END_TEST

/* The convolution algorithm (API 15, mbk_ctx_params.conv_algo). DIRECT and AUTO compute
 * the same convolution, each within TOL of the plain reference, in all three passes; on
 * a CPU with AVX-512 (as oneDNN sees it) AUTO runs this 64-channel 3x3 layer as Winograd
 * (cpu_conv.c), whose rounding differs from the direct sum's somewhere (how the test
 * knows the setting reached the backend); elsewhere (test_cpu_ops_avx2, _sse41,
 * valgrind) AUTO falls back to the direct kernels and equals DIRECT bit for bit. A caller of API 14 (a struct_size without the field) gets AUTO,
 * bit for bit; an unknown algorithm is refused. */
static int wino_here(void) {
  unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
  return (isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core;
}

/* Forward (training), dx and dw of conv p in context ctx (tensors tracked as usual). */
static void conv_passes(mbk_ctx *ctx, const ref_conv *p, const float *x, const float *w,
                        const float *dy, float *y, float *dx, float *dw) {
  mbk_ctx *keep = CTX;
  CTX = ctx;
  const int64_t xd[4] = {p->n, p->c, p->h, p->w}, wd[4] = {p->oc, p->c, p->kh, p->kw};
  const int64_t yd[4] = {p->n, p->oc, ref_conv_oh(p), ref_conv_ow(p)};
  mbk_op_desc d = conv_desc(p, 0);
  mbk_op *op = op_make(&d);
  mbk_tensor *tx = t_from(4, xd, x), *tw = t_from(4, wd, w), *ty = t_new();
  mbk_tensor *in[3] = {tx, tw, NULL};
  fwd(op, 1, in, 3, ty);
  t_get("conv2d algorithm forward", ty, 4, yd, y);
  mbk_tensor *tdy = t_from(4, yd, dy), *tdx = t_new(), *tdw = t_new();
  mbk_tensor *bin[3] = {tx, tw, tdy}, *bout[3] = {tdx, tdw, NULL};
  bwd(op, bin, 3, bout, 3);
  t_get("conv2d algorithm dx", tdx, 4, xd, dx);
  t_get("conv2d algorithm dw", tdw, 4, wd, dw);
  CTX = keep;
}

START_TEST(test_conv2d_algorithms) {
  const ref_conv p = {2, 64, 18, 15, 64, 3, 3, 1, 1, 1, 1}; /* 40 tiles of 4x4 */
  rng r = rng_make(4242);
  const int64_t xd[4] = {p.n, p.c, p.h, p.w}, wd[4] = {p.oc, p.c, p.kh, p.kw};
  const int64_t yd[4] = {p.n, p.oc, ref_conv_oh(&p), ref_conv_ow(&p)};
  const size_t nx = numel(4, xd), nw = numel(4, wd), ny = numel(4, yd);
  float *x = fbuf(nx), *w = fbuf(nw), *dy = fbuf(ny);
  float *yr = fbuf(ny), *dxr = fbuf(nx), *dwr = fbuf(nw);
  float *y[3] = {fbuf(ny), fbuf(ny), fbuf(ny)}, *dx[3] = {fbuf(nx), fbuf(nx), fbuf(nx)};
  float *dw[3] = {fbuf(nw), fbuf(nw), fbuf(nw)};
  fill_unif(&r, x, nx, -1, 1);
  fill_unif(&r, w, nw, -1, 1);
  fill_unif(&r, dy, ny, -1, 1);
  ref_conv2d_fwd(&p, x, w, NULL, yr);
  ref_conv2d_bwd_data(&p, w, dy, dxr);
  ref_conv2d_bwd_weights(&p, x, dy, dwr);
  /* 0: AUTO (the fixture's context), 1: DIRECT, 2: a caller of API 14. */
  mbk_ctx_params direct = {sizeof direct, 0, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_DIRECT};
  mbk_ctx_params old = direct;
  old.struct_size = (uint32_t)offsetof(mbk_ctx_params, conv_algo);
  old.conv_algo = 99; /* past its struct_size: never read */
  for (int k = 0; k < 2; ++k) {
    msc_status st = B->ctx_create(k == 0 ? &direct : &old, &g_ctx_more[k]);
    ck_assert_msg(st == MSC_OK, "ctx_create: %d (%s)", (int)st, msc_last_error());
  }
  conv_passes(CTX, &p, x, w, dy, y[0], dx[0], dw[0]);
  conv_passes(g_ctx_more[0], &p, x, w, dy, y[1], dx[1], dw[1]);
  conv_passes(g_ctx_more[1], &p, x, w, dy, y[2], dx[2], dw[2]);
  const char *what[2][3] = {{"auto forward", "auto dx", "auto dw"},
                            {"direct forward", "direct dx", "direct dw"}};
  for (int k = 0; k < 2; ++k) {
    expect_close(what[k][0], y[k], yr, ny, TOL_FWD);
    expect_close(what[k][1], dx[k], dxr, nx, TOL_FWD);
    expect_close(what[k][2], dw[k], dwr, nw, TOL_GRAD);
  }
  ck_assert(memcmp(y[2], y[0], ny * sizeof(float)) == 0);
  ck_assert(memcmp(dx[2], dx[0], nx * sizeof(float)) == 0);
  ck_assert(memcmp(dw[2], dw[0], nw * sizeof(float)) == 0);
  if (wino_here()) {
    ck_assert_msg(memcmp(y[0], y[1], ny * sizeof(float)) != 0,
                  "AUTO's forward is bit for bit DIRECT's: Winograd did not run");
    ck_assert_msg(memcmp(dx[0], dx[1], nx * sizeof(float)) != 0,
                  "AUTO's dx is bit for bit DIRECT's: Winograd did not run");
    ck_assert_msg(memcmp(dw[0], dw[1], nw * sizeof(float)) != 0,
                  "AUTO's dw is bit for bit DIRECT's: Winograd did not run");
  } else { /* no Winograd kernel (ONEDNN_MAX_CPU_ISA, valgrind): AUTO is DIRECT */
    ck_assert(memcmp(y[0], y[1], ny * sizeof(float)) == 0);
    ck_assert(memcmp(dx[0], dx[1], nx * sizeof(float)) == 0);
    ck_assert(memcmp(dw[0], dw[1], nw * sizeof(float)) == 0);
  }
  mbk_ctx_params bad = direct;
  bad.conv_algo = 2;
  mbk_ctx *none = NULL;
  ck_assert_int_eq(B->ctx_create(&bad, &none), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(none);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "conv_algo"));
}
END_TEST

/* ================================ batch norm ===================================== */

typedef struct bn_case {
  int32_t ndim; /* 4: [N,C,H,W]; 2: [N,C] (h = w = 1) */
  int64_t n, c, h, w;
  float eps, momentum;
  int32_t relu;
} bn_case;

static const bn_case BN_CASES[] = {
    {4, 3, 5, 4, 5, 1e-3f, 0.25f, 0}, {4, 3, 5, 4, 5, 1e-3f, 0.25f, 1},
    {4, 2, 16, 5, 7, 1e-5f, 0.1f, 0}, {4, 2, 16, 5, 7, 1e-5f, 0.1f, 1},
    {4, 8, 16, 1, 1, 1e-5f, 0.1f, 1}, {4, 1, 17, 3, 3, 1e-5f, 0.1f, 0},
    {2, 8, 16, 1, 1, 1e-5f, 0.1f, 0}, {2, 6, 5, 1, 1, 1e-5f, 0.1f, 1}, /* head BN */
};

/* Where the fused ReLU's kink is, for choosing finite-difference coordinates. */
typedef struct bn_kink {
  int64_t n, c, hw;
  int which; /* 0: x, 1: gamma, 2: beta */
  double h;
  const double *z;    /* pre-ReLU output gamma * xhat + beta, per element */
  const double *xhat; /* normalised input, per element */
  const double *gi;   /* |gamma| / sqrt(var + eps), per channel */
} bn_kink;

/* Skips a coordinate if perturbing it by h may move some element's pre-ReLU value
 * across 0 (with a safety factor 3): then the loss is not differentiable there. */
static int bn_skip(size_t idx, const void *user) {
  const bn_kink *k = user;
  const int64_t ch = k->which == 0 ? (int64_t)(idx / (size_t)k->hw) % k->c : (int64_t)idx;
  const double m = (double)(k->n * k->hw);
  for (int64_t i = 0; i < k->n; ++i)
    for (int64_t s = 0; s < k->hw; ++s) {
      const size_t j = ((size_t)i * (size_t)k->c + (size_t)ch) * (size_t)k->hw + (size_t)s;
      double move; /* bound on |d z_j| for a step h */
      if (k->which == 0)
        move = k->h * k->gi[ch] *
               ((j == idx ? 1.0 : 0.0) + (1.0 + fabs(k->xhat[idx] * k->xhat[j])) / m);
      else if (k->which == 1)
        move = k->h * fabs(k->xhat[j]);
      else
        move = k->h;
      if (fabs(k->z[j]) < 3.0 * move + 1e-6) return 1;
    }
  return 0;
}

START_TEST(test_batchnorm) {
  const bn_case *bc = &BN_CASES[_i];
  char what[128];
  rng r = rng_make(200 + (uint64_t)_i);
  const int64_t C = bc->c, hw = bc->h * bc->w, count = bc->n * hw;
  const int32_t nd = bc->ndim;
  const int64_t xd[4] = {bc->n, bc->c, bc->h, bc->w}, cd[1] = {C};
  const size_t nx = numel(nd, xd), nc = (size_t)C;
  float *x1 = fbuf(nx), *x2 = fbuf(nx), *g = fbuf(nc), *be = fbuf(nc);
  float *rm = fbuf(nc), *rv = fbuf(nc), *rmr = fbuf(nc), *rvr = fbuf(nc);
  float *mean = fbuf(nc), *var = fbuf(nc), *y = fbuf(nx), *yr = fbuf(nx);
  float *dy = fbuf(nx), *dx = fbuf(nx), *dg = fbuf(nc), *db = fbuf(nc);
  float *dxr = fbuf(nx), *dgr = fbuf(nc), *dbr = fbuf(nc), *tmp = fbuf(nx);
  fill_unif(&r, x1, nx, -2, 3);
  fill_unif(&r, x2, nx, -1.5, 2.5);
  fill_signed(&r, g, nc, 0.5, 1.5);
  fill_unif(&r, be, nc, -0.5, 0.5);
  fill_unif(&r, rm, nc, -0.5, 0.5);
  fill_unif(&r, rv, nc, 0.5, 2.0);
  fill_unif(&r, dy, nx, -1, 1);
  memcpy(rmr, rm, nc * sizeof *rm);
  memcpy(rvr, rv, nc * sizeof *rv);
  snprintf(what, sizeof what,
           "batchnorm case %d (%d-D) [%lld,%lld,%lld,%lld] eps %g m %g relu %d", _i, (int)nd,
           (long long)bc->n, (long long)C, (long long)bc->h, (long long)bc->w, (double)bc->eps,
           (double)bc->momentum, (int)bc->relu);

  mbk_op_desc d = bn_desc(nd, bc->n, C, bc->h, bc->w, bc->eps, bc->momentum, bc->relu);
  mbk_op *op = op_make(&d);
  mbk_tensor *tx = t_from(nd, xd, x1), *tg = t_from(1, cd, g), *tb = t_from(1, cd, be);
  mbk_tensor *trm = t_from(1, cd, rm), *trv = t_from(1, cd, rv), *ty = t_new();
  mbk_tensor *in[5] = {tx, tg, tb, trm, trv};

  /* Training forward 1: batch statistics, running statistics updated once. */
  fwd(op, 1, in, 5, ty);
  ref_bn_fwd_train(bc->n, C, hw, x1, g, be, bc->eps, bc->relu, yr, mean, var);
  ref_bn_update_running(C, count, bc->momentum, mean, var, rmr, rvr);
  t_get(what, ty, nd, xd, y);
  expect_close("batchnorm training forward 1", y, yr, nx, TOL_FWD);
  t_get(what, trm, 1, cd, rm);
  expect_close("running_mean after 1 forward", rm, rmr, nc, TOL_FWD);
  t_get(what, trv, 1, cd, rv);
  expect_close("running_var after 1 forward", rv, rvr, nc, TOL_FWD);

  /* Training forward 2 on other data: updated twice. */
  t_set(tx, nd, xd, x2);
  fwd(op, 1, in, 5, ty);
  ref_bn_fwd_train(bc->n, C, hw, x2, g, be, bc->eps, bc->relu, yr, mean, var);
  ref_bn_update_running(C, count, bc->momentum, mean, var, rmr, rvr);
  t_get(what, ty, nd, xd, y);
  expect_close("batchnorm training forward 2", y, yr, nx, TOL_FWD);
  t_get(what, trm, 1, cd, rm);
  expect_close("running_mean after 2 forwards", rm, rmr, nc, TOL_FWD);
  t_get(what, trv, 1, cd, rv);
  expect_close("running_var after 2 forwards", rv, rvr, nc, TOL_FWD);

  /* Backward of forward 2. */
  mbk_tensor *tdy = t_from(nd, xd, dy), *tdx = t_new(), *tdg = t_new(), *tdb = t_new();
  mbk_tensor *bin[3] = {tx, tg, tdy}, *bout[3] = {tdx, tdg, tdb};
  bwd(op, bin, 3, bout, 3);
  ref_bn_bwd(bc->n, C, hw, x2, g, be, dy, bc->eps, bc->relu, dxr, dgr, dbr);
  t_get(what, tdx, nd, xd, dx);
  expect_close("batchnorm dx", dx, dxr, nx, TOL_GRAD);
  t_get(what, tdg, 1, cd, dg);
  expect_close("batchnorm dgamma", dg, dgr, nc, TOL_GRAD);
  t_get(what, tdb, 1, cd, db);
  expect_close("batchnorm dbeta", db, dbr, nc, TOL_GRAD);
  mbk_tensor *tdx2 = t_new(), *only_dx[3] = {tdx2, NULL, NULL};
  bwd(op, bin, 3, only_dx, 3);
  t_get(what, tdx2, nd, xd, tmp);
  expect_close("batchnorm dx alone", tmp, dxr, nx, TOL_GRAD);

  /* Inference: running statistics used, and left alone. */
  fwd(op, 0, in, 5, ty);
  ref_bn_fwd_infer(bc->n, C, hw, x2, g, be, rmr, rvr, bc->eps, bc->relu, yr);
  t_get(what, ty, nd, xd, y);
  expect_close("batchnorm inference forward", y, yr, nx, TOL_FWD);
  t_get(what, trm, 1, cd, tmp);
  expect_same("running_mean unchanged by inference", tmp, rm, nc);
  t_get(what, trv, 1, cd, tmp);
  expect_same("running_var unchanged by inference", tmp, rv, nc);

  /* Finite differences through the training forward (batch statistics). */
  double *z = calloc(nx, sizeof *z), *xhat = calloc(nx, sizeof *xhat);
  double *gi = calloc(nc, sizeof *gi);
  ck_assert(z && xhat && gi);
  for (int64_t ch = 0; ch < C; ++ch) {
    double mu = 0, v = 0; /* batch statistics of x2, for the kink bounds */
    for (int64_t i = 0; i < bc->n; ++i)
      for (int64_t s = 0; s < hw; ++s) mu += x2[(i * C + ch) * hw + s];
    mu /= (double)count;
    for (int64_t i = 0; i < bc->n; ++i)
      for (int64_t s = 0; s < hw; ++s) {
        const double e = x2[(i * C + ch) * hw + s] - mu;
        v += e * e;
      }
    v /= (double)count;
    const double inv = 1.0 / sqrt(v + (double)bc->eps);
    gi[ch] = fabs((double)g[ch]) * inv;
    for (int64_t i = 0; i < bc->n; ++i)
      for (int64_t s = 0; s < hw; ++s) {
        const size_t j = (size_t)((i * C + ch) * hw + s);
        xhat[j] = (x2[j] - mu) * inv;
        z[j] = (double)g[ch] * xhat[j] + (double)be[ch];
      }
  }
  /* With the ReLU a smaller step keeps fewer elements near the kink (skipped anyway). */
  const double h = bc->relu ? 1e-3 : 1e-2;
  bn_kink kink = {bc->n, C, hw, 0, h, z, xhat, gi};
  fd_case c = {what, op, 1,  in, 5,  ty, nd, xd,
               dy,   tx, nd, xd, x2, dx, h,  bc->relu ? bn_skip : NULL,
               &kink};
  fd_check(&c, &r, FD_COORDS);
  kink.which = 1;
  c.var = tg;
  c.var_ndim = 1;
  c.var_dims = cd;
  c.host = g;
  c.grad = dg;
  fd_check(&c, &r, FD_COORDS < C ? FD_COORDS : (int)C);
  kink.which = 2;
  c.var = tb;
  c.host = be;
  c.grad = db;
  fd_check(&c, &r, FD_COORDS < C ? FD_COORDS : (int)C);
  free(z);
  free(xhat);
  free(gi);
}
END_TEST

/* ======================= batch norm, synchronised (API 13) ======================== */
/* BATCHNORM with u.bn.reduce (backends/cpu/cpu_bnorm_sync.c): a batch split over two
 * "ranks" (two contexts in two threads, their sums added through a barrier) must give
 * each rank its rows of ordinary batch norm on the whole batch (the plain reference),
 * the same running statistics on both (those of the whole batch, unbiased with its
 * count), and dgamma/dbeta that sum to the whole batch's; a one-rank group (reduce =
 * identity) is ordinary batch norm, checked against finite differences too. */

typedef struct pair_reduce {
  pthread_barrier_t bar;
  double *slot[2];
  int64_t n[2];
  int calls[2];
} pair_reduce;

typedef struct rank_user {
  pair_reduce *p;
  int rank;
} rank_user;

/* The mbk_reduce_fn of the two-rank group: both ranks get slot[0] + slot[1]. */
static msc_status pair_sum(void *user, double *buf, int64_t n) {
  rank_user *u = user;
  pair_reduce *p = u->p;
  p->slot[u->rank] = buf;
  p->n[u->rank] = n;
  p->calls[u->rank]++;
  pthread_barrier_wait(&p->bar);
  const int same = p->n[0] == p->n[1];
  double *sum = calloc((size_t)n, sizeof *sum);
  for (int64_t i = 0; sum && same && i < n; ++i) sum[i] = p->slot[0][i] + p->slot[1][i];
  pthread_barrier_wait(&p->bar); /* both have read both slots */
  if (sum && same) memcpy(buf, sum, (size_t)n * sizeof *buf);
  free(sum);
  return sum && same ? MSC_OK : MSC_E_INTERNAL;
}

/* The one-rank group: the sums as they are; counts its calls. */
static int g_identity_calls;
static msc_status identity_sum(void *user, double *buf, int64_t n) {
  (void)user, (void)buf, (void)n;
  g_identity_calls++;
  return MSC_OK;
}

static msc_status failing_sum(void *user, double *buf, int64_t n) {
  (void)user, (void)buf, (void)n;
  return msci_fail(MSC_E_COMM, "test: the group is gone");
}

typedef struct rank_job {
  mbk_op *op;
  int backward;
  mbk_tensor **in, **out;
  msc_status st;
} rank_job;

static void *rank_run(void *arg) {
  rank_job *j = arg;
  j->st = j->backward ? B->op_backward(j->op, j->in, 3, j->out, 3)
                      : B->op_forward(j->op, 1, j->in, 5, j->out, 1);
  return NULL;
}

/* Runs both ranks' pass at once (rank 1 in a thread) and checks both succeeded. */
static void run_pair(rank_job *j) {
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, rank_run, &j[1]), 0);
  rank_run(&j[0]);
  pthread_join(th, NULL);
  ck_assert_msg(j[0].st == MSC_OK && j[1].st == MSC_OK, "synchronised pass: %d %d (%s)",
                (int)j[0].st, (int)j[1].st, msc_last_error());
}

START_TEST(test_batchnorm_sync) {
  const bn_case *bc = &BN_CASES[_i];
  char what[160];
  rng r = rng_make(700 + (uint64_t)_i);
  const int64_t C = bc->c, hw = bc->h * bc->w, N = bc->n;
  const int32_t nd = bc->ndim;
  const int64_t xd[4] = {N, C, bc->h, bc->w}, cd[1] = {C};
  const size_t nx = numel(nd, xd), nc = (size_t)C;
  float *x = fbuf(nx), *g = fbuf(nc), *be = fbuf(nc), *rm0 = fbuf(nc), *rv0 = fbuf(nc);
  float *rmr = fbuf(nc), *rvr = fbuf(nc), *mean = fbuf(nc), *var = fbuf(nc);
  float *yr = fbuf(nx), *dy = fbuf(nx), *dxr = fbuf(nx), *dgr = fbuf(nc), *dbr = fbuf(nc);
  float *y = fbuf(nx), *dx = fbuf(nx), *tmp = fbuf(nx), *dg = fbuf(nc), *db = fbuf(nc);
  /* An offset far from 0 (as after a layer with a bias) tests the shifted sums. */
  fill_unif(&r, x, nx, 40, 45);
  fill_signed(&r, g, nc, 0.5, 1.5);
  fill_unif(&r, be, nc, -0.5, 0.5);
  fill_unif(&r, rm0, nc, -0.5, 0.5);
  fill_unif(&r, rv0, nc, 0.5, 2.0);
  fill_unif(&r, dy, nx, -1, 1);
  memcpy(rmr, rm0, nc * sizeof *rmr);
  memcpy(rvr, rv0, nc * sizeof *rvr);
  ref_bn_fwd_train(N, C, hw, x, g, be, bc->eps, bc->relu, yr, mean, var);
  ref_bn_update_running(C, N * hw, bc->momentum, mean, var, rmr, rvr);
  ref_bn_bwd(N, C, hw, x, g, be, dy, bc->eps, bc->relu, dxr, dgr, dbr);
  snprintf(what, sizeof what, "synchronised batchnorm case %d [%lld,%lld,%lld,%lld] relu %d",
           _i, (long long)N, (long long)C, (long long)bc->h, (long long)bc->w, (int)bc->relu);

  /* One rank: ordinary batch norm, one reduction per pass. */
  mbk_op_desc d = bn_desc(nd, N, C, bc->h, bc->w, bc->eps, bc->momentum, bc->relu);
  d.u.bn.reduce = identity_sum;
  mbk_op *op = op_make(&d);
  mbk_tensor *tx = t_from(nd, xd, x), *tg = t_from(1, cd, g), *tb = t_from(1, cd, be);
  mbk_tensor *trm = t_from(1, cd, rm0), *trv = t_from(1, cd, rv0), *ty = t_new();
  mbk_tensor *in[5] = {tx, tg, tb, trm, trv};
  g_identity_calls = 0;
  fwd(op, 1, in, 5, ty);
  ck_assert_int_eq(g_identity_calls, 1);
  t_get(what, ty, nd, xd, y);
  expect_close("synchronised batchnorm, one rank: forward", y, yr, nx, TOL_FWD);
  t_get(what, trm, 1, cd, tmp);
  expect_close("one rank: running_mean", tmp, rmr, nc, TOL_FWD);
  t_get(what, trv, 1, cd, tmp);
  expect_close("one rank: running_var", tmp, rvr, nc, TOL_FWD);
  mbk_tensor *tdy = t_from(nd, xd, dy), *tdx = t_new(), *tdg = t_new(), *tdb = t_new();
  mbk_tensor *bin[3] = {tx, tg, tdy}, *bout[3] = {tdx, tdg, tdb};
  bwd(op, bin, 3, bout, 3);
  ck_assert_int_eq(g_identity_calls, 2);
  t_get(what, tdx, nd, xd, dx);
  expect_close("one rank: dx", dx, dxr, nx, TOL_GRAD);
  t_get(what, tdg, 1, cd, dg);
  expect_close("one rank: dgamma", dg, dgr, nc, TOL_GRAD);
  t_get(what, tdb, 1, cd, db);
  expect_close("one rank: dbeta", db, dbr, nc, TOL_GRAD);
  /* Inference uses the running statistics and reduces nothing. */
  fwd(op, 0, in, 5, ty);
  ck_assert_int_eq(g_identity_calls, 2);
  t_get(what, trm, 1, cd, rm0);
  t_get(what, trv, 1, cd, rv0);
  ref_bn_fwd_infer(N, C, hw, x, g, be, rm0, rv0, bc->eps, bc->relu, yr);
  t_get(what, ty, nd, xd, y);
  expect_close("one rank: inference", y, yr, nx, TOL_FWD);
  /* Finite differences of the one-rank training forward in x (no ReLU: no kinks). */
  if (!bc->relu) {
    fwd(op, 1, in, 5, ty); /* the backend's dL/dx with dy = r at the current x */
    bwd(op, bin, 3, bout, 3);
    t_get(what, tdx, nd, xd, dx);
    fd_case c = {what, op, 1, in, 5, ty, nd, xd, dy, tx, nd, xd, x, dx, 1e-2, NULL, NULL};
    fd_check(&c, &r, FD_COORDS);
  }
  /* A failed reduction fails the pass and leaves the running statistics alone. */
  mbk_op_desc df = d;
  df.u.bn.reduce = failing_sum;
  mbk_op *opf = op_make(&df);
  t_get(what, trm, 1, cd, rm0);
  mbk_tensor *outf[1] = {ty};
  ck_assert_int_eq(B->op_forward(opf, 1, in, 5, outf, 1), MSC_E_COMM);
  t_get(what, trm, 1, cd, tmp);
  expect_same("running_mean after a failed reduction", tmp, rm0, nc);
  if (N < 2) return;

  /* Two ranks: rows [0, n0) and [n0, N) of the same batch, unequal when N is odd. */
  const int64_t n0 = N / 2, nr[2] = {n0, N - n0};
  const size_t row = (size_t)(C * hw);
  fill_unif(&r, rm0, nc, -0.5, 0.5);
  memcpy(rmr, rm0, nc * sizeof *rmr);
  memcpy(rvr, rv0, nc * sizeof *rvr);
  ref_bn_fwd_train(N, C, hw, x, g, be, bc->eps, bc->relu, yr, mean, var);
  ref_bn_update_running(C, N * hw, bc->momentum, mean, var, rmr, rvr);
  pair_reduce pr;
  memset(&pr, 0, sizeof pr);
  ck_assert_int_eq(pthread_barrier_init(&pr.bar, NULL, 2), 0);
  rank_user ru[2] = {{&pr, 0}, {&pr, 1}};
  mbk_ctx_params p = {sizeof p, 1, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  mbk_ctx *ctx1 = NULL;
  ck_assert_int_eq(B->ctx_create(&p, &ctx1), MSC_OK);
  mbk_ctx *ctxs[2] = {CTX, ctx1};
  mbk_op *ops[2];
  mbk_tensor *t[2][9]; /* x g b rm rv y dy dx dg ... per rank (db below) */
  mbk_tensor *tdbs[2];
  rank_job fj[2], bj[2];
  mbk_tensor *fin[2][5], *fout[2][1], *bbin[2][3], *bbout[2][3];
  for (int k = 0; k < 2; ++k) {
    mbk_op_desc dk = bn_desc(nd, nr[k], C, bc->h, bc->w, bc->eps, bc->momentum, bc->relu);
    dk.u.bn.reduce = pair_sum;
    dk.u.bn.reduce_user = &ru[k];
    ck_assert_int_eq(B->op_create(ctxs[k], &dk, &ops[k]), MSC_OK);
    const int64_t xk[4] = {nr[k], C, bc->h, bc->w};
    for (int j = 0; j < 9; ++j) ck_assert_int_eq(B->tensor_create(ctxs[k], &t[k][j]), MSC_OK);
    ck_assert_int_eq(B->tensor_create(ctxs[k], &tdbs[k]), MSC_OK);
    const float *xs = x + (size_t)(k ? n0 : 0) * row, *dys = dy + (size_t)(k ? n0 : 0) * row;
    t_set(t[k][0], nd, xk, xs);
    t_set(t[k][1], 1, cd, g);
    t_set(t[k][2], 1, cd, be);
    t_set(t[k][3], 1, cd, rm0);
    t_set(t[k][4], 1, cd, rv0);
    t_set(t[k][6], nd, xk, dys);
    for (int j = 0; j < 5; ++j) fin[k][j] = t[k][j];
    fout[k][0] = t[k][5];
    bbin[k][0] = t[k][0], bbin[k][1] = t[k][1], bbin[k][2] = t[k][6];
    bbout[k][0] = t[k][7], bbout[k][1] = t[k][8], bbout[k][2] = tdbs[k];
    fj[k] = (rank_job){ops[k], 0, fin[k], fout[k], MSC_OK};
    bj[k] = (rank_job){ops[k], 1, bbin[k], bbout[k], MSC_OK};
  }
  run_pair(fj);
  run_pair(bj);
  ck_assert(pr.calls[0] == 2 && pr.calls[1] == 2);
  for (int k = 0; k < 2; ++k) {
    const int64_t xk[4] = {nr[k], C, bc->h, bc->w};
    const size_t off = (size_t)(k ? n0 : 0) * row, nk = (size_t)nr[k] * row;
    t_get(what, t[k][5], nd, xk, y);
    expect_close("two ranks: forward, this rank's rows", y, yr + off, nk, TOL_FWD);
    t_get(what, t[k][3], 1, cd, tmp);
    expect_close("two ranks: running_mean of the whole batch", tmp, rmr, nc, TOL_FWD);
    t_get(what, t[k][4], 1, cd, tmp);
    expect_close("two ranks: running_var (unbiased, whole batch)", tmp, rvr, nc, TOL_FWD);
    t_get(what, t[k][7], nd, xk, dx);
    expect_close("two ranks: dx, this rank's rows", dx, dxr + off, nk, TOL_GRAD);
    t_get(what, t[k][8], 1, cd, tmp);
    for (size_t c = 0; c < nc; ++c) dg[c] = k ? dg[c] + tmp[c] : tmp[c];
    t_get(what, tdbs[k], 1, cd, tmp);
    for (size_t c = 0; c < nc; ++c) db[c] = k ? db[c] + tmp[c] : tmp[c];
  }
  expect_close("two ranks: dgamma summed over the ranks", dg, dgr, nc, TOL_GRAD);
  expect_close("two ranks: dbeta summed over the ranks", db, dbr, nc, TOL_GRAD);
  for (int k = 0; k < 2; ++k) {
    B->op_free(ops[k]);
    for (int j = 0; j < 9; ++j) B->tensor_free(t[k][j]);
    B->tensor_free(tdbs[k]);
  }
  B->ctx_free(ctx1);
  pthread_barrier_destroy(&pr.bar);
}
END_TEST

/* ================================== relu ========================================= */

typedef struct shape_case {
  int32_t ndim;
  int64_t d[4];
} shape_case;

static const shape_case ELT_CASES[] = {
    {2, {3, 7, 1, 1}}, {4, {2, 16, 5, 3}}, {4, {1, 3, 7, 9}}, {4, {2, 5, 4, 3}}};

START_TEST(test_relu) {
  const shape_case *sc = &ELT_CASES[_i];
  char what[64];
  rng r = rng_make(300 + (uint64_t)_i);
  const size_t n = numel(sc->ndim, sc->d);
  float *x = fbuf(n), *y = fbuf(n), *yr = fbuf(n), *dy = fbuf(n), *dx = fbuf(n);
  float *dxr = fbuf(n);
  snprintf(what, sizeof what, "relu case %d (ndim %d)", _i, (int)sc->ndim);
  /* Away from 0 for the finite differences (|x| >= 0.05 > h) ... */
  fill_signed(&r, x, n, 0.05, 1.0);
  fill_unif(&r, dy, n, -1, 1);
  mbk_op_desc d = desc_zero(MBK_OP_RELU, sc->ndim, sc->d[0], sc->d[1], sc->d[2], sc->d[3]);
  mbk_op *op = op_make(&d);
  mbk_tensor *tx = t_from(sc->ndim, sc->d, x), *ty = t_new();
  mbk_tensor *tdy = t_from(sc->ndim, sc->d, dy), *tdx = t_new();
  mbk_tensor *in[1] = {tx}, *bin[2] = {tx, tdy}, *bout[1] = {tdx};

  fwd(op, 1, in, 1, ty);
  bwd(op, bin, 2, bout, 1);
  t_get(what, tdx, sc->ndim, sc->d, dx);
  ref_relu_bwd(n, x, dy, dxr);
  expect_close("relu dx", dx, dxr, n, TOL_EXACT);
  fd_case c = {what, op,       1,     in, 1,  ty,   sc->ndim, sc->d, dy,
               tx,   sc->ndim, sc->d, x,  dx, 1e-2, NULL,     NULL};
  fd_check(&c, &r, FD_COORDS);

  /* ... and exact zeros (+0 and -0), whose gradient is 0. */
  for (size_t i = 0; i < n; i += 5) x[i] = (i % 2) ? -0.0f : 0.0f;
  t_set(tx, sc->ndim, sc->d, x);
  fwd(op, 0, in, 1, ty);
  t_get(what, ty, sc->ndim, sc->d, y);
  ref_relu_fwd(n, x, yr);
  expect_close("relu forward", y, yr, n, TOL_EXACT);
  fwd(op, 1, in, 1, ty);
  bwd(op, bin, 2, bout, 1);
  t_get(what, tdx, sc->ndim, sc->d, dx);
  ref_relu_bwd(n, x, dy, dxr);
  expect_close("relu dx with zeros in x", dx, dxr, n, TOL_EXACT);
}
END_TEST

/* ================================= max pool ====================================== */

typedef struct mp_case {
  ref_pool p;
  int all_negative;
} mp_case;

static const mp_case MP_CASES[] = {
    /* n, c, h, w, kh, kw, sh, sw, ph, pw */
    {{2, 3, 7, 7, 3, 3, 2, 2, 1, 1}, 1},  {{2, 3, 7, 7, 3, 3, 2, 2, 1, 1}, 0},
    {{2, 16, 8, 8, 3, 3, 2, 2, 1, 1}, 1}, {{1, 16, 8, 8, 3, 3, 2, 2, 1, 1}, 0},
    {{2, 5, 8, 8, 3, 3, 2, 2, 1, 1}, 0},  {{2, 5, 9, 7, 2, 2, 2, 2, 0, 0}, 0},
    {{1, 3, 7, 6, 3, 2, 2, 1, 1, 0}, 1},
};

START_TEST(test_maxpool) {
  const mp_case *mc = &MP_CASES[_i];
  const ref_pool *p = &mc->p;
  char what[128];
  rng r = rng_make(400 + (uint64_t)_i);
  const int64_t xd[4] = {p->n, p->c, p->h, p->w};
  const int64_t yd[4] = {p->n, p->c, ref_pool_oh(p), ref_pool_ow(p)};
  const size_t nx = numel(4, xd), ny = numel(4, yd);
  float *x = fbuf(nx), *y = fbuf(ny), *yr = fbuf(ny), *dy = fbuf(ny), *dx = fbuf(nx);
  float *dxr = fbuf(nx);
  snprintf(what, sizeof what, "maxpool case %d [%lld,%lld,%lld,%lld] %s", _i, (long long)p->n,
           (long long)p->c, (long long)p->h, (long long)p->w,
           mc->all_negative ? "all negative" : "mixed signs");
  /* Distinct values 0.05 apart: no ties, and a step of 1e-2 never reorders them. With
   * all values negative, a zero from the padding would win every border window. */
  fill_distinct(&r, x, nx, 0.05, mc->all_negative);
  fill_unif(&r, dy, ny, -1, 1);
  mbk_op_desc d = pool_desc(p);
  int64_t od[MBK_MAX_DIMS];
  ck_assert_int_eq(mbk_op_out_dims(&d, od), 4);
  ck_assert(od[2] == yd[2] && od[3] == yd[3]);
  mbk_op *op = op_make(&d);
  mbk_tensor *tx = t_from(4, xd, x), *ty = t_new(), *tdy = t_from(4, yd, dy), *tdx = t_new();
  mbk_tensor *in[1] = {tx}, *bin[1] = {tdy}, *bout[1] = {tdx};

  ref_maxpool_fwd(p, x, yr);
  fwd(op, 0, in, 1, ty);
  t_get(what, ty, 4, yd, y);
  expect_close("maxpool forward (inference)", y, yr, ny, TOL_EXACT);
  fwd(op, 1, in, 1, ty);
  t_get(what, ty, 4, yd, y);
  expect_close("maxpool forward (training)", y, yr, ny, TOL_EXACT);
  bwd(op, bin, 1, bout, 1);
  t_get(what, tdx, 4, xd, dx);
  ref_maxpool_bwd(p, x, dy, dxr);
  expect_close("maxpool dx", dx, dxr, nx, TOL_EXACT);
  fd_case c = {what, op, 1, in, 1, ty, 4, yd, dy, tx, 4, xd, x, dx, 1e-2, NULL, NULL};
  fd_check(&c, &r, FD_COORDS);
}
END_TEST

/* ============================== global average pool ============================== */

static const shape_case GAP_CASES[] = {
    {4, {2, 16, 5, 7}}, {4, {3, 5, 4, 4}}, {4, {2, 32, 3, 3}}, {4, {2, 3, 1, 1}}};

START_TEST(test_gavgpool) {
  const shape_case *sc = &GAP_CASES[_i];
  char what[64];
  rng r = rng_make(500 + (uint64_t)_i);
  const int64_t hw = sc->d[2] * sc->d[3], yd[2] = {sc->d[0], sc->d[1]};
  const size_t nx = numel(4, sc->d), ny = numel(2, yd);
  float *x = fbuf(nx), *y = fbuf(ny), *yr = fbuf(ny), *dy = fbuf(ny), *dx = fbuf(nx);
  float *dxr = fbuf(nx);
  snprintf(what, sizeof what, "gavgpool case %d", _i);
  fill_unif(&r, x, nx, -1, 1);
  fill_unif(&r, dy, ny, -1, 1);
  mbk_op_desc d = desc_zero(MBK_OP_GAVGPOOL, 4, sc->d[0], sc->d[1], sc->d[2], sc->d[3]);
  mbk_op *op = op_make(&d);
  mbk_tensor *tx = t_from(4, sc->d, x), *ty = t_new(), *tdy = t_from(2, yd, dy);
  mbk_tensor *tdx = t_new(), *in[1] = {tx}, *bin[1] = {tdy}, *bout[1] = {tdx};

  ref_gavgpool_fwd(sc->d[0], sc->d[1], hw, x, yr);
  fwd(op, 0, in, 1, ty);
  t_get(what, ty, 2, yd, y);
  expect_close("gavgpool forward (inference)", y, yr, ny, TOL_FWD);
  fwd(op, 1, in, 1, ty);
  t_get(what, ty, 2, yd, y);
  expect_close("gavgpool forward (training)", y, yr, ny, TOL_FWD);
  bwd(op, bin, 1, bout, 1);
  t_get(what, tdx, 4, sc->d, dx);
  ref_gavgpool_bwd(sc->d[0], sc->d[1], hw, dy, dxr);
  expect_close("gavgpool dx", dx, dxr, nx, TOL_EXACT);
  fd_case c = {what, op, 1, in, 1, ty, 2, yd, dy, tx, 4, sc->d, x, dx, 1e-2, NULL, NULL};
  fd_check(&c, &r, FD_COORDS);
}
END_TEST

/* ================================== linear ======================================= */

typedef struct linear_case {
  int64_t n, k, o;
  int32_t bias;
} linear_case;

static const linear_case LINEAR_CASES[] = {
    {3, 7, 5, 1}, {3, 7, 5, 0}, {4, 32, 16, 1}, {2, 53, 12, 1}, {1, 16, 19, 0}};

START_TEST(test_linear) {
  const linear_case *lc = &LINEAR_CASES[_i];
  char what[96];
  rng r = rng_make(600 + (uint64_t)_i);
  const int64_t xd[2] = {lc->n, lc->k}, wd[2] = {lc->o, lc->k}, bd[1] = {lc->o};
  const int64_t yd[2] = {lc->n, lc->o};
  const size_t nx = numel(2, xd), nw = numel(2, wd), ny = numel(2, yd), nb = (size_t)lc->o;
  float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(nb), *y = fbuf(ny), *yr = fbuf(ny);
  float *dy = fbuf(ny), *dx = fbuf(nx), *dw = fbuf(nw), *db = fbuf(nb), *dxr = fbuf(nx);
  float *dwr = fbuf(nw), *dbr = fbuf(nb), *tmp = fbuf(nx > nw ? nx : nw);
  snprintf(what, sizeof what, "linear case %d (N %lld, K %lld, O %lld, bias %d)", _i,
           (long long)lc->n, (long long)lc->k, (long long)lc->o, (int)lc->bias);
  fill_unif(&r, x, nx, -1, 1);
  fill_unif(&r, w, nw, -1, 1);
  fill_unif(&r, b, nb, -1, 1);
  fill_unif(&r, dy, ny, -1, 1);
  mbk_op_desc d = linear_desc(lc->n, lc->k, lc->o, lc->bias);
  mbk_op *op = op_make(&d);
  mbk_tensor *tx = t_from(2, xd, x), *tw = t_from(2, wd, w);
  mbk_tensor *tb = lc->bias ? t_from(1, bd, b) : NULL, *ty = t_new();
  mbk_tensor *in[3] = {tx, tw, tb};

  ref_linear_fwd(lc->n, lc->k, lc->o, x, w, lc->bias ? b : NULL, yr);
  fwd(op, 0, in, 3, ty);
  t_get(what, ty, 2, yd, y);
  expect_close("linear forward (inference)", y, yr, ny, TOL_FWD);
  fwd(op, 1, in, 3, ty);
  t_get(what, ty, 2, yd, y);
  expect_close("linear forward (training)", y, yr, ny, TOL_FWD);

  mbk_tensor *tdy = t_from(2, yd, dy), *tdx = t_new(), *tdw = t_new();
  mbk_tensor *tdb = lc->bias ? t_new() : NULL;
  mbk_tensor *bin[3] = {tx, tw, tdy}, *bout[3] = {tdx, tdw, tdb};
  bwd(op, bin, 3, bout, 3);
  ref_linear_bwd(lc->n, lc->k, lc->o, x, w, dy, dxr, dwr, dbr);
  t_get(what, tdx, 2, xd, dx);
  expect_close("linear dx", dx, dxr, nx, TOL_FWD);
  t_get(what, tdw, 2, wd, dw);
  expect_close("linear dw", dw, dwr, nw, TOL_FWD);
  if (lc->bias) {
    t_get(what, tdb, 1, bd, db);
    expect_close("linear db", db, dbr, nb, TOL_FWD);
  }
  mbk_tensor *tdw2 = t_new(), *only_dw[3] = {NULL, tdw2, NULL};
  bwd(op, bin, 3, only_dw, 3);
  t_get(what, tdw2, 2, wd, tmp);
  expect_close("linear dw alone", tmp, dwr, nw, TOL_FWD);

  fd_case c = {what, op, 1, in, 3, ty, 2, yd, dy, tx, 2, xd, x, dx, 1e-2, NULL, NULL};
  fd_check(&c, &r, FD_COORDS);
  c.var = tw;
  c.var_dims = wd;
  c.host = w;
  c.grad = dw;
  fd_check(&c, &r, FD_COORDS);
  if (lc->bias) {
    c.var = tb;
    c.var_ndim = 1;
    c.var_dims = bd;
    c.host = b;
    c.grad = db;
    fd_check(&c, &r, FD_COORDS < lc->o ? FD_COORDS : (int)lc->o);
  }
}
END_TEST

/* =================================== add ========================================= */

START_TEST(test_add) {
  const shape_case *sc = &ELT_CASES[_i];
  char what[64];
  rng r = rng_make(700 + (uint64_t)_i);
  const size_t n = numel(sc->ndim, sc->d);
  float *a = fbuf(n), *b = fbuf(n), *y = fbuf(n), *yr = fbuf(n), *dy = fbuf(n);
  float *da = fbuf(n), *db = fbuf(n), *dar = fbuf(n), *dbr = fbuf(n);
  snprintf(what, sizeof what, "add case %d (ndim %d)", _i, (int)sc->ndim);
  fill_unif(&r, a, n, -1, 1);
  fill_unif(&r, b, n, -1, 1);
  fill_unif(&r, dy, n, -1, 1);
  mbk_op_desc d = desc_zero(MBK_OP_ADD, sc->ndim, sc->d[0], sc->d[1], sc->d[2], sc->d[3]);
  mbk_op *op = op_make(&d);
  mbk_tensor *ta = t_from(sc->ndim, sc->d, a), *tb = t_from(sc->ndim, sc->d, b);
  mbk_tensor *ty = t_new(), *tdy = t_from(sc->ndim, sc->d, dy), *tda = t_new(), *tdb = t_new();
  mbk_tensor *in[2] = {ta, tb}, *bin[1] = {tdy}, *bout[2] = {tda, tdb};

  ref_add_fwd(n, a, b, yr);
  fwd(op, 0, in, 2, ty);
  t_get(what, ty, sc->ndim, sc->d, y);
  expect_close("add forward", y, yr, n, TOL_EXACT);
  fwd(op, 1, in, 2, ty);
  bwd(op, bin, 1, bout, 2);
  ref_add_bwd(n, dy, dar, dbr);
  t_get(what, tda, sc->ndim, sc->d, da);
  expect_close("add da", da, dar, n, TOL_EXACT);
  t_get(what, tdb, sc->ndim, sc->d, db);
  expect_close("add db", db, dbr, n, TOL_EXACT);
  mbk_tensor *tdb2 = t_new(), *only_db[2] = {NULL, tdb2};
  bwd(op, bin, 1, only_db, 2);
  t_get(what, tdb2, sc->ndim, sc->d, y);
  expect_close("add db alone", y, dbr, n, TOL_EXACT);

  fd_case c = {what, op,       1,     in, 2,  ty,   sc->ndim, sc->d, dy,
               ta,   sc->ndim, sc->d, a,  da, 1e-2, NULL,     NULL};
  fd_check(&c, &r, FD_COORDS);
  c.var = tb;
  c.host = b;
  c.grad = db;
  fd_check(&c, &r, FD_COORDS);
}
END_TEST

/* ================================== concat ======================================= */

typedef struct concat_case {
  int32_t ndim;
  int64_t n, h, w;
  int32_t count;
  int64_t cs[4];
} concat_case;

static const concat_case CONCAT_CASES[] = {
    {2, 3, 1, 1, 3, {3, 1, 4, 0}},   /* 2-D, three inputs */
    {4, 2, 4, 5, 2, {3, 5, 0, 0}},   /* 4-D, channels 3 and 5 */
    {4, 2, 3, 3, 2, {16, 32, 0, 0}}, /* 4-D, blocked-friendly channel counts */
    {2, 2, 1, 1, 2, {48, 5, 0, 0}},  /* 2-D, a feature vector and a small extra */
    {4, 1, 2, 3, 4, {2, 16, 1, 8}},  /* 4-D, four inputs */
};

START_TEST(test_concat) {
  const concat_case *cc = &CONCAT_CASES[_i];
  char what[64];
  rng r = rng_make(800 + (uint64_t)_i);
  const int64_t inner = cc->h * cc->w;
  int64_t total = 0;
  for (int32_t t = 0; t < cc->count; ++t) total += cc->cs[t];
  const int64_t yd[4] = {cc->n, total, cc->h, cc->w};
  const size_t ny = numel(cc->ndim, yd);
  int64_t xds[4][4];
  float *xs[4], *dxs[4], *dxrs[4];
  mbk_tensor *tx[4], *tdx[4];
  for (int32_t t = 0; t < cc->count; ++t) {
    xds[t][0] = cc->n;
    xds[t][1] = cc->cs[t];
    xds[t][2] = cc->h;
    xds[t][3] = cc->w;
    const size_t nx = numel(cc->ndim, xds[t]);
    xs[t] = fbuf(nx);
    dxs[t] = fbuf(nx);
    dxrs[t] = fbuf(nx);
    fill_unif(&r, xs[t], nx, -1, 1);
    tx[t] = t_from(cc->ndim, xds[t], xs[t]);
    tdx[t] = t_new();
  }
  float *y = fbuf(ny), *yr = fbuf(ny), *dy = fbuf(ny);
  fill_unif(&r, dy, ny, -1, 1);
  snprintf(what, sizeof what, "concat case %d (ndim %d, %d inputs)", _i, (int)cc->ndim,
           (int)cc->count);
  mbk_op_desc d = concat_desc(cc->ndim, cc->n, cc->h, cc->w, cc->count, cc->cs);
  mbk_op *op = op_make(&d);
  mbk_tensor *ty = t_new(), *tdy = t_from(cc->ndim, yd, dy), *bin[1] = {tdy};

  ref_concat_fwd(cc->n, inner, cc->count, cc->cs, (const float *const *)xs, yr);
  fwd(op, 0, tx, cc->count, ty);
  t_get(what, ty, cc->ndim, yd, y);
  expect_close("concat forward", y, yr, ny, TOL_EXACT);
  fwd(op, 1, tx, cc->count, ty);
  bwd(op, bin, 1, tdx, cc->count);
  ref_concat_bwd(cc->n, inner, cc->count, cc->cs, dy, dxrs);
  for (int32_t t = 0; t < cc->count; ++t) {
    t_get(what, tdx[t], cc->ndim, xds[t], dxs[t]);
    expect_close("concat dx_i", dxs[t], dxrs[t], numel(cc->ndim, xds[t]), TOL_EXACT);
  }
  /* The first gradient not asked for. */
  mbk_tensor *part[4] = {NULL, t_new(), NULL, NULL};
  for (int32_t t = 2; t < cc->count; ++t) part[t] = t_new();
  bwd(op, bin, 1, part, cc->count);
  t_get(what, part[1], cc->ndim, xds[1], y);
  expect_close("concat dx_2 with dx_1 skipped", y, dxrs[1], numel(cc->ndim, xds[1]), TOL_EXACT);

  for (int32_t t = 0; t < cc->count; ++t) {
    fd_case c = {what,  op,       1,      tx,    cc->count, ty,   cc->ndim, yd,  dy,
                 tx[t], cc->ndim, xds[t], xs[t], dxs[t],    1e-2, NULL,     NULL};
    fd_check(&c, &r, 3);
  }
}
END_TEST

/* ================================= error paths =================================== */

/* Descriptions and op arguments are checked by the core's frame (backend_call.c) before
 * a backend sees them, so the error paths go through it, with the CPU backend behind. */
static void expect_create_fails(const char *what, const mbk_op_desc *d) {
  int sentinel;
  msci_be_op *op = (msci_be_op *)(void *)&sentinel;
  msc_clear_error();
  const msc_status st = msci_be_op_create(B, CTX, d, &op);
  if (st == MSC_OK && op != (msci_be_op *)(void *)&sentinel) msci_be_op_free(op);
  ck_assert_msg(st == MSC_E_INVALID_ARGUMENT,
                "op_create accepted an invalid description: %s (status %d)", what, (int)st);
  ck_assert_msg(msc_last_error()[0] != '\0', "op_create (%s): no error message", what);
  ck_assert_msg(op == (msci_be_op *)(void *)&sentinel, "op_create (%s) wrote *out on error",
                what);
}

/* An op made through the frame, freed in teardown. */
static msci_be_op *fop_make(const mbk_op_desc *d) {
  ck_assert_int_lt(g_nfops, MAX_TRACKED);
  msci_be_op *op = NULL;
  msc_status st = msci_be_op_create(B, CTX, d, &op);
  ck_assert_msg(st == MSC_OK, "op_create: %d (%s)", (int)st, msc_last_error());
  g_fops[g_nfops++] = op;
  return op;
}

START_TEST(test_invalid_desc) {
  const ref_conv cp = {2, 3, 7, 9, 16, 3, 3, 1, 1, 1, 1};
  const ref_pool pp = {2, 3, 7, 7, 3, 3, 2, 2, 1, 1};
  mbk_op_desc d;

  d = desc_zero(0, 4, 2, 3, 4, 4);
  expect_create_fails("type 0", &d);
  d = desc_zero(MBK_OP_COUNT_, 4, 2, 3, 4, 4);
  expect_create_fails("type MBK_OP_COUNT_", &d);
  d = desc_zero(99, 4, 2, 3, 4, 4);
  expect_create_fails("type 99", &d);
  d = desc_zero(-1, 4, 2, 3, 4, 4);
  expect_create_fails("type -1", &d);

  d = conv_desc(&cp, 1), d.n = 0;
  expect_create_fails("conv n = 0", &d);
  d = conv_desc(&cp, 1), d.c = -1;
  expect_create_fails("conv c = -1", &d);
  d = conv_desc(&cp, 1), d.h = 0;
  expect_create_fails("conv h = 0", &d);
  d = conv_desc(&cp, 1), d.w = -5;
  expect_create_fails("conv w = -5", &d);
  d = conv_desc(&cp, 1), d.u.conv.out_c = 0;
  expect_create_fails("conv out_c = 0", &d);
  d = conv_desc(&cp, 1), d.u.conv.kh = 0;
  expect_create_fails("conv kh = 0", &d);
  d = conv_desc(&cp, 1), d.u.conv.sw = 0;
  expect_create_fails("conv sw = 0", &d);
  d = conv_desc(&cp, 1), d.u.conv.ph = -1;
  expect_create_fails("conv ph = -1", &d);
  d = conv_desc(&cp, 1), d.u.conv.kh = 10; /* 7 + 2 < 10 */
  expect_create_fails("conv kernel taller than the padded input", &d);
  d = conv_desc(&cp, 1), d.u.conv.kw = 12, d.u.conv.pw = 1; /* 9 + 2 < 12 */
  expect_create_fails("conv kernel wider than the padded input", &d);
  d = conv_desc(&cp, 1), d.ndim = 2;
  expect_create_fails("conv ndim 2", &d);

  d = bn_desc(4, 2, 0, 4, 4, 1e-5f, 0.1f, 0);
  expect_create_fails("batchnorm c = 0", &d);
  d = bn_desc(4, -2, 5, 4, 4, 1e-5f, 0.1f, 0);
  expect_create_fails("batchnorm n = -2", &d);

  d = pool_desc(&pp), d.u.pool.kh = 10; /* 7 + 2 < 10 */
  expect_create_fails("maxpool kernel larger than the padded input", &d);
  d = pool_desc(&pp), d.u.pool.sh = 0;
  expect_create_fails("maxpool sh = 0", &d);
  d = pool_desc(&pp), d.c = 0;
  expect_create_fails("maxpool c = 0", &d);

  d = desc_zero(MBK_OP_GAVGPOOL, 4, 2, 3, 0, 4);
  expect_create_fails("gavgpool h = 0", &d);
  d = desc_zero(MBK_OP_RELU, 3, 2, 3, 4, 4);
  expect_create_fails("relu ndim 3", &d);
  d = desc_zero(MBK_OP_RELU, 2, 0, 3, 1, 1);
  expect_create_fails("relu n = 0", &d);
  d = desc_zero(MBK_OP_ADD, 4, 2, 3, 4, -4);
  expect_create_fails("add w = -4", &d);

  d = linear_desc(3, 7, 0, 1);
  expect_create_fails("linear out_f = 0", &d);
  d = linear_desc(3, -7, 5, 1);
  expect_create_fails("linear in features -7", &d);

  const int64_t cs[3] = {3, 1, 4};
  d = concat_desc(2, 3, 1, 1, 3, cs), d.c = 9;
  expect_create_fails("concat counts that do not sum to c", &d);
  d = concat_desc(4, 2, 4, 5, 3, cs), d.u.concat.count = 0;
  expect_create_fails("concat count 0", &d);
  d = concat_desc(4, 2, 4, 5, 3, cs), d.u.concat.count = MBK_MAX_CONCAT + 1;
  expect_create_fails("concat count > MBK_MAX_CONCAT", &d);
  d = concat_desc(4, 2, 4, 5, 3, cs), d.u.concat.c[1] = 0, d.c = 7;
  expect_create_fails("concat input of 0 channels", &d);

  /* NULL arguments. */
  msci_be_op *op = NULL;
  d = conv_desc(&cp, 1);
  ck_assert_int_eq(msci_be_op_create(B, CTX, NULL, &op), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_be_op_create(B, CTX, &d, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_be_op_create(B, NULL, &d, &op), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_be_op_create(NULL, CTX, &d, &op), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_null(op);
}
END_TEST

static void expect_status(const char *what, msc_status got, msc_status want) {
  ck_assert_msg(got == want, "%s: status %d, expected %d (%s)", what, (int)got, (int)want,
                msc_last_error());
  if (want != MSC_OK) ck_assert_msg(msc_last_error()[0] != '\0', "%s: no error message", what);
}

START_TEST(test_wrong_arguments) {
  rng r = rng_make(900);
  float *buf = fbuf(4096);
  fill_unif(&r, buf, 4096, -1, 1);
  const ref_conv cp = {2, 3, 7, 9, 16, 3, 3, 1, 1, 1, 1};
  mbk_op_desc d = conv_desc(&cp, 1);
  msci_be_op *conv = fop_make(&d);
  const int64_t xd[4] = {2, 3, 7, 9}, xbad[4] = {2, 3, 7, 8}, wd[4] = {16, 3, 3, 3};
  const int64_t wbad[4] = {16, 3, 3, 2}, bd[1] = {16}, bbad[1] = {15};
  const int64_t yd[4] = {2, 16, 7, 9}, ybad[4] = {2, 16, 7, 8};
  mbk_tensor *tx = t_from(4, xd, buf), *tw = t_from(4, wd, buf), *tb = t_from(1, bd, buf);
  mbk_tensor *txb = t_from(4, xbad, buf), *twb = t_from(4, wbad, buf);
  mbk_tensor *tbb = t_from(1, bbad, buf), *tempty = t_new(), *ty = t_new();
  mbk_tensor *tdy = t_from(4, yd, buf), *tdyb = t_from(4, ybad, buf), *tdx = t_new();
  mbk_tensor *tdw = t_new(), *tdb = t_new();
  mbk_tensor *out[2] = {ty, ty};

  /* Shapes. */
  mbk_tensor *in_badx[3] = {txb, tw, tb}, *in_badw[3] = {tx, twb, tb};
  mbk_tensor *in_badb[3] = {tx, tw, tbb}, *in_empty[3] = {tempty, tw, tb};
  msc_clear_error();
  expect_status("conv forward, x 7x8 for a 7x9 op",
                msci_be_op_forward(conv, 1, in_badx, 3, out, 1), MSC_E_SHAPE);
  msc_clear_error();
  expect_status("conv forward, w 3x2 for 3x3", msci_be_op_forward(conv, 1, in_badw, 3, out, 1),
                MSC_E_SHAPE);
  msc_clear_error();
  expect_status("conv forward, b of 15", msci_be_op_forward(conv, 1, in_badb, 3, out, 1),
                MSC_E_SHAPE);
  msc_clear_error();
  ck_assert_int_lt(msci_be_op_forward(conv, 1, in_empty, 3, out, 1), 0);
  ck_assert_str_ne(msc_last_error(), "");

  /* Argument counts and NULL required entries. */
  /* One entry more than needed, so a wrong count never reads past an array. */
  mbk_tensor *in[4] = {tx, tw, tb, tb}, *in_nullx[3] = {NULL, tw, tb};
  msc_clear_error();
  expect_status("conv forward, n_in 1", msci_be_op_forward(conv, 1, in, 1, out, 1),
                MSC_E_INVALID_ARGUMENT);
  msc_clear_error();
  expect_status("conv forward, n_in 4", msci_be_op_forward(conv, 1, in, 4, out, 1),
                MSC_E_INVALID_ARGUMENT);
  msc_clear_error();
  expect_status("conv forward, n_out 0", msci_be_op_forward(conv, 1, in, 3, out, 0),
                MSC_E_INVALID_ARGUMENT);
  msc_clear_error();
  expect_status("conv forward, n_out 2", msci_be_op_forward(conv, 1, in, 3, out, 2),
                MSC_E_INVALID_ARGUMENT);
  msc_clear_error();
  expect_status("conv forward, x NULL", msci_be_op_forward(conv, 1, in_nullx, 3, out, 1),
                MSC_E_INVALID_ARGUMENT);
  mbk_tensor *null_out[1] = {NULL};
  msc_clear_error();
  expect_status("conv forward, y NULL", msci_be_op_forward(conv, 1, in, 3, null_out, 1),
                MSC_E_INVALID_ARGUMENT);

  /* The op still works after all that. */
  expect_status("conv forward", msci_be_op_forward(conv, 1, in, 3, out, 1), MSC_OK);

  mbk_tensor *bin[3] = {tx, tw, tdy}, *bin_bad[3] = {tx, tw, tdyb};
  mbk_tensor *bout[4] = {tdx, tdw, tdb, tdb};
  msc_clear_error();
  expect_status("conv backward, dy 7x8", msci_be_op_backward(conv, bin_bad, 3, bout, 3),
                MSC_E_SHAPE);
  msc_clear_error();
  expect_status("conv backward, n_in 2", msci_be_op_backward(conv, bin, 2, bout, 3),
                MSC_E_INVALID_ARGUMENT);
  msc_clear_error();
  expect_status("conv backward, n_out 4", msci_be_op_backward(conv, bin, 3, bout, 4),
                MSC_E_INVALID_ARGUMENT);
  expect_status("conv backward", msci_be_op_backward(conv, bin, 3, bout, 3), MSC_OK);

  /* Other ops. */
  const int64_t ad[2] = {3, 7}, abad[2] = {3, 6}, cd[1] = {5}, cbad[1] = {4};
  const int64_t bnd[4] = {2, 5, 3, 3};
  mbk_op_desc da = desc_zero(MBK_OP_ADD, 2, 3, 7, 1, 1);
  msci_be_op *add = fop_make(&da);
  mbk_tensor *ta = t_from(2, ad, buf), *tab = t_from(2, abad, buf);
  mbk_tensor *add_in[3] = {ta, ta, ta}, *add_bad[2] = {ta, tab};
  msc_clear_error();
  expect_status("add, b 3x6 for 3x7", msci_be_op_forward(add, 1, add_bad, 2, out, 1),
                MSC_E_SHAPE);
  msc_clear_error();
  expect_status("add, n_in 3", msci_be_op_forward(add, 1, add_in, 3, out, 1),
                MSC_E_INVALID_ARGUMENT);
  msc_clear_error();
  expect_status("add, n_in 1", msci_be_op_forward(add, 1, add_in, 1, out, 1),
                MSC_E_INVALID_ARGUMENT);

  mbk_op_desc dbn = bn_desc(4, 2, 5, 3, 3, 1e-5f, 0.1f, 0);
  msci_be_op *bn = fop_make(&dbn);
  for (int i = 0; i < 5; ++i) buf[300 + i] = 1.0f + (float)i; /* a valid running var */
  mbk_tensor *tbx = t_from(4, bnd, buf), *tgam = t_from(1, cd, buf + 100);
  mbk_tensor *tbet = t_from(1, cd, buf + 110), *trm = t_from(1, cd, buf + 120);
  mbk_tensor *trv = t_from(1, cd, buf + 300), *tgb = t_from(1, cbad, buf);
  mbk_tensor *bn_in[5] = {tbx, tgam, tbet, trm, trv};
  mbk_tensor *bn_bad[5] = {tbx, tgb, tbet, trm, trv};
  msc_clear_error();
  expect_status("batchnorm, gamma of 4 for 5 channels",
                msci_be_op_forward(bn, 1, bn_bad, 5, out, 1), MSC_E_SHAPE);
  msc_clear_error();
  expect_status("batchnorm, n_in 4", msci_be_op_forward(bn, 1, bn_in, 4, out, 1),
                MSC_E_INVALID_ARGUMENT);
  expect_status("batchnorm", msci_be_op_forward(bn, 1, bn_in, 5, out, 1), MSC_OK);

  const int64_t cs[2] = {3, 5}, c1d[4] = {2, 3, 4, 5}, c2d[4] = {2, 5, 4, 5};
  const int64_t c2bad[4] = {2, 4, 4, 5};
  mbk_op_desc dc = concat_desc(4, 2, 4, 5, 2, cs);
  msci_be_op *cat = fop_make(&dc);
  mbk_tensor *tc1 = t_from(4, c1d, buf), *tc2 = t_from(4, c2d, buf);
  mbk_tensor *tc2b = t_from(4, c2bad, buf);
  mbk_tensor *cat_in[3] = {tc1, tc2, tc2}, *cat_bad[2] = {tc1, tc2b};
  msc_clear_error();
  expect_status("concat, second input of 4 channels for 5",
                msci_be_op_forward(cat, 1, cat_bad, 2, out, 1), MSC_E_SHAPE);
  msc_clear_error();
  expect_status("concat, n_in 3 for 2 inputs", msci_be_op_forward(cat, 1, cat_in, 3, out, 1),
                MSC_E_INVALID_ARGUMENT);

  /* Max-pool backward needs a training forward first. */
  const ref_pool pp = {2, 3, 7, 7, 3, 3, 2, 2, 1, 1};
  mbk_op_desc dp = pool_desc(&pp);
  msci_be_op *mp = fop_make(&dp);
  const int64_t pyd[4] = {2, 3, 4, 4};
  mbk_tensor *tpdy = t_from(4, pyd, buf), *pin[1] = {tpdy}, *pout[1] = {tdx};
  msc_clear_error();
  ck_assert_int_lt(msci_be_op_backward(mp, pin, 1, pout, 1), 0);
  ck_assert_str_ne(msc_last_error(), "");

  /* The frame's messages name the backend, the op, the pass and the argument. */
  msc_clear_error();
  expect_status("conv forward, n_in 1", msci_be_op_forward(conv, 1, in, 1, out, 1),
                MSC_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msc_last_error(),
                       "cpu: conv2d forward takes 3 inputs and 1 output, got 1 and 1") != NULL,
                "%s", msc_last_error());
  mbk_tensor *in_nullb[3] = {tx, tw, NULL};
  msc_clear_error();
  expect_status("conv forward with bias, b NULL",
                msci_be_op_forward(conv, 1, in_nullb, 3, out, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msc_last_error(), "input 2 is NULL") != NULL, "%s", msc_last_error());
  mbk_op_desc dnb = conv_desc(&cp, 0); /* without bias, b may be NULL */
  msci_be_op *conv_nb = fop_make(&dnb);
  expect_status("conv forward without bias, b NULL",
                msci_be_op_forward(conv_nb, 1, in_nullb, 3, out, 1), MSC_OK);
  mbk_tensor *bin_null[3] = {tx, NULL, tdy};
  msc_clear_error();
  expect_status("conv backward, w NULL", msci_be_op_backward(conv, bin_null, 3, bout, 3),
                MSC_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msc_last_error(), "cpu: conv2d backward: input 1 is NULL") != NULL, "%s",
                msc_last_error());
  mbk_tensor *bn_bin[3] = {tbx, tgam, tbx}, *bn_bout[3] = {NULL, NULL, NULL};
  msc_clear_error();
  expect_status("batchnorm backward, dx NULL", msci_be_op_backward(bn, bn_bin, 3, bn_bout, 3),
                MSC_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msc_last_error(), "output 0 is NULL") != NULL, "%s", msc_last_error());
  mbk_tensor *cat_bout[3] = {tdx, tdx, tdx};
  msc_clear_error();
  expect_status("concat backward, 3 outputs for 2 inputs",
                msci_be_op_backward(cat, bin, 1, cat_bout, 3), MSC_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msc_last_error(), "concat backward takes 1 input and 2 outputs") != NULL,
                "%s", msc_last_error());

  /* NULL op / arrays. */
  ck_assert_int_eq(msci_be_op_forward(NULL, 1, in, 3, out, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_be_op_forward(conv, 1, NULL, 3, out, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_be_op_forward(conv, 1, in, 3, NULL, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_be_op_backward(NULL, bin, 3, bout, 3), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_be_op_backward(conv, bin, 3, NULL, 3), MSC_E_INVALID_ARGUMENT);
}
END_TEST

/* ==================================== reuse ====================================== */

START_TEST(test_reuse) {
  rng r = rng_make(1000);
  const ref_conv p = {2, 16, 8, 8, 32, 3, 3, 1, 1, 1, 1};
  const int64_t xd[4] = {2, 16, 8, 8}, wd[4] = {32, 16, 3, 3}, bd[1] = {32};
  const int64_t yd[4] = {2, 32, 8, 8}, gd[2] = {2, 32};
  const size_t nx = numel(4, xd), nw = numel(4, wd), ny = numel(4, yd);
  float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(32), *dy = fbuf(ny);
  float *y1 = fbuf(ny), *y2 = fbuf(ny), *yr = fbuf(ny), *dx1 = fbuf(nx), *dx2 = fbuf(nx);
  float *dw1 = fbuf(nw), *dw2 = fbuf(nw), *g = fbuf(64), *gr = fbuf(64);
  fill_unif(&r, x, nx, -1, 1);
  fill_unif(&r, w, nw, -1, 1);
  fill_unif(&r, b, 32, -1, 1);
  fill_unif(&r, dy, ny, -1, 1);
  mbk_op_desc d = conv_desc(&p, 1);
  mbk_op *op = op_make(&d);
  mbk_tensor *tx = t_from(4, xd, x), *tw = t_from(4, wd, w), *tb = t_from(1, bd, b);
  mbk_tensor *ty = t_new(), *tdy = t_from(4, yd, dy), *tdx = t_new(), *tdw = t_new();
  mbk_tensor *in[3] = {tx, tw, tb}, *bin[3] = {tx, tw, tdy}, *bout[3] = {tdx, tdw, NULL};

  /* Same op, same tensors, twice: same results. */
  fwd(op, 1, in, 3, ty);
  t_get("reuse", ty, 4, yd, y1);
  bwd(op, bin, 3, bout, 3);
  t_get("reuse", tdx, 4, xd, dx1);
  t_get("reuse", tdw, 4, wd, dw1);
  fwd(op, 1, in, 3, ty);
  t_get("reuse", ty, 4, yd, y2);
  expect_same("conv forward run twice", y2, y1, ny);
  bwd(op, bin, 3, bout, 3);
  t_get("reuse", tdx, 4, xd, dx2);
  expect_same("conv dx run twice", dx2, dx1, nx);
  t_get("reuse", tdw, 4, wd, dw2);
  expect_same("conv dw run twice", dw2, dw1, nw);

  /* Fresh output tensors. */
  mbk_tensor *ty2 = t_new(), *tdx2 = t_new(), *tdw2 = t_new();
  mbk_tensor *bout2[3] = {tdx2, tdw2, NULL};
  fwd(op, 1, in, 3, ty2);
  t_get("reuse", ty2, 4, yd, y2);
  expect_same("conv forward into a fresh tensor", y2, y1, ny);
  bwd(op, bin, 3, bout2, 3);
  t_get("reuse", tdx2, 4, xd, dx2);
  expect_same("conv dx into a fresh tensor", dx2, dx1, nx);

  /* New contents in the same input tensors: nothing stale is used. */
  fill_unif(&r, x, nx, -1, 1);
  fill_unif(&r, w, nw, -1, 1);
  t_set(tx, 4, xd, x);
  t_set(tw, 4, wd, w);
  fwd(op, 1, in, 3, ty);
  t_get("reuse", ty, 4, yd, y2);
  ref_conv2d_fwd(&p, x, w, b, yr);
  expect_close("conv forward after new inputs", y2, yr, ny, TOL_FWD);

  /* An op's output (backend layout) fed to another op, then overwritten by an op of
   * another shape, then by an upload. */
  mbk_op_desc dg = desc_zero(MBK_OP_GAVGPOOL, 4, 2, 32, 8, 8);
  mbk_op *gap = op_make(&dg);
  mbk_tensor *gin[1] = {ty};
  fwd(gap, 1, gin, 1, ty2); /* ty2 held a [2,32,8,8] output before */
  t_get("reuse", ty2, 2, gd, g);
  ref_gavgpool_fwd(2, 32, 64, yr, gr);
  expect_close("gavgpool of a conv output into a reused tensor", g, gr, 64, TOL_FWD);
  t_set(ty, 2, gd, gr);
  t_get("reuse", ty, 2, gd, g);
  expect_same("upload over an op output", g, gr, 64);

  /* A batch norm fed by a conv output, trained twice into two different tensors. */
  const int64_t cd[1] = {32};
  float *ones = fbuf(32), *zeros = fbuf(32), *rv = fbuf(32);
  for (int i = 0; i < 32; ++i) ones[i] = rv[i] = 1.0f;
  mbk_op_desc dbn = bn_desc(4, 2, 32, 8, 8, 1e-5f, 0.1f, 1);
  mbk_op *bn = op_make(&dbn);
  mbk_tensor *tg = t_from(1, cd, ones), *tbe = t_from(1, cd, zeros);
  mbk_tensor *trm = t_from(1, cd, zeros), *trv = t_from(1, cd, rv), *tz = t_new();
  mbk_tensor *tz2 = t_new(), *tyy = t_new();
  fwd(op, 1, in, 3, tyy); /* the conv output, in the backend's layout, feeds the BN */
  mbk_tensor *bn_in[5] = {tyy, tg, tbe, trm, trv};
  fwd(bn, 1, bn_in, 5, tz);
  t_get("reuse", tz, 4, yd, y1);
  fwd(bn, 1, bn_in, 5, tz2);
  t_get("reuse", tz2, 4, yd, y2);
  expect_same("batchnorm training forward into a fresh tensor", y2, y1, ny);
  ref_bn_fwd_train(2, 32, 64, yr, ones, zeros, 1e-5f, 1, y2, NULL, NULL);
  expect_close("batchnorm of a conv output", y1, y2, ny, TOL_FWD);
}
END_TEST

/* ================================ mixed layouts ================================== */

/*
 * Every op with inputs in different layouts: a conv output (oneDNN's blocked layout for
 * 16 channels) next to plainly uploaded tensors, in both argument orders, and
 * backward passes whose incoming gradient is plain while the forward ran blocked.
 */
START_TEST(test_mixed_layouts) {
  rng r = rng_make(1300);
  const ref_conv pc = {2, 3, 8, 8, 16, 3, 3, 1, 1, 1, 1};
  const ref_conv p2 = {2, 16, 8, 8, 16, 3, 3, 2, 2, 1, 1};
  const ref_pool pp = {2, 16, 8, 8, 3, 3, 2, 2, 1, 1};
  const int64_t xd[4] = {2, 3, 8, 8}, wd[4] = {16, 3, 3, 3}, c16[1] = {16};
  const int64_t yd[4] = {2, 16, 8, 8}, qd[4] = {2, 5, 8, 8}, catd[4] = {2, 21, 8, 8};
  const int64_t w2d[4] = {16, 16, 3, 3}, o2d[4] = {2, 16, 4, 4}, gd[2] = {2, 16};
  const size_t nx = numel(4, xd), nw = numel(4, wd), ny = numel(4, yd), nq = numel(4, qd);
  const size_t ncat = numel(4, catd), nw2 = numel(4, w2d), no2 = numel(4, o2d);
  float *x = fbuf(nx), *w = fbuf(nw), *y = fbuf(ny), *pl = fbuf(ny), *q = fbuf(nq);
  float *dy = fbuf(ny), *dcat = fbuf(ncat), *w2 = fbuf(nw2), *do2 = fbuf(no2);
  float *g = fbuf(16), *be = fbuf(16), *rm = fbuf(16), *rv = fbuf(16), *dg = fbuf(16);
  float *got = fbuf(ncat), *want = fbuf(ncat), *want2 = fbuf(ncat), *dgot = fbuf(16);
  fill_unif(&r, x, nx, -1, 1);
  fill_unif(&r, w, nw, -1, 1);
  fill_unif(&r, pl, ny, -1, 1);
  fill_unif(&r, q, nq, -1, 1);
  fill_unif(&r, dy, ny, -1, 1);
  fill_unif(&r, dcat, ncat, -1, 1);
  fill_unif(&r, w2, nw2, -0.3, 0.3);
  fill_unif(&r, do2, no2, -1, 1);
  fill_signed(&r, g, 16, 0.5, 1.5);
  fill_unif(&r, be, 16, -0.5, 0.5);
  fill_unif(&r, rv, 16, 0.5, 1.5);
  ref_conv2d_fwd(&pc, x, w, NULL, y);

  mbk_op_desc d = conv_desc(&pc, 0);
  mbk_op *conv = op_make(&d);
  mbk_tensor *tx = t_from(4, xd, x), *tw = t_from(4, wd, w), *ty = t_new();
  mbk_tensor *cin[3] = {tx, tw, NULL};
  fwd(conv, 1, cin, 3, ty); /* ty: blocked */
  mbk_tensor *tp = t_from(4, yd, pl), *tq = t_from(4, qd, q), *tdy = t_from(4, yd, dy);
  mbk_tensor *o = t_new();

  /* add: blocked + plain, plain + blocked. */
  d = desc_zero(MBK_OP_ADD, 4, 2, 16, 8, 8);
  mbk_op *add = op_make(&d);
  ref_add_fwd(ny, y, pl, want);
  mbk_tensor *a1[2] = {ty, tp}, *a2[2] = {tp, ty};
  fwd(add, 1, a1, 2, o);
  t_get("mixed", o, 4, yd, got);
  expect_close("add(blocked, plain)", got, want, ny, TOL_EXACT);
  fwd(add, 1, a2, 2, o);
  t_get("mixed", o, 4, yd, got);
  expect_close("add(plain, blocked)", got, want, ny, TOL_EXACT);

  /* concat: blocked + plain, plain + blocked; backward from a plain gradient. */
  const int64_t cs1[2] = {16, 5}, cs2[2] = {5, 16};
  d = concat_desc(4, 2, 8, 8, 2, cs1);
  mbk_op *cat1 = op_make(&d);
  d = concat_desc(4, 2, 8, 8, 2, cs2);
  mbk_op *cat2 = op_make(&d);
  mbk_tensor *k1[2] = {ty, tq}, *k2[2] = {tq, ty};
  {
    const float *parts1[2] = {y, q}, *parts2[2] = {q, y};
    ref_concat_fwd(2, 64, 2, cs1, parts1, want);
    ref_concat_fwd(2, 64, 2, cs2, parts2, want2);
  }
  fwd(cat1, 1, k1, 2, o);
  t_get("mixed", o, 4, catd, got);
  expect_close("concat(blocked, plain)", got, want, ncat, TOL_EXACT);
  fwd(cat2, 1, k2, 2, o);
  t_get("mixed", o, 4, catd, got);
  expect_close("concat(plain, blocked)", got, want2, ncat, TOL_EXACT);
  mbk_tensor *tdcat = t_from(4, catd, dcat), *kin[1] = {tdcat};
  mbk_tensor *kd0 = t_new(), *kd1 = t_new(), *kout[2] = {kd0, kd1};
  bwd(cat2, kin, 1, kout, 2);
  {
    float *parts[2] = {want, want2};
    ref_concat_bwd(2, 64, 2, cs2, dcat, parts);
  }
  t_get("mixed", kd0, 4, qd, got);
  expect_close("concat backward, plain part", got, want, nq, TOL_EXACT);
  t_get("mixed", kd1, 4, yd, got);
  expect_close("concat backward, part that was blocked", got, want2, ny, TOL_EXACT);

  /* relu on the blocked tensor, gradient plain. */
  d = desc_zero(MBK_OP_RELU, 4, 2, 16, 8, 8);
  mbk_op *re = op_make(&d);
  mbk_tensor *rin[1] = {ty}, *rbin[2] = {ty, tdy}, *rout[1] = {o};
  fwd(re, 1, rin, 1, o);
  t_get("mixed", o, 4, yd, got);
  ref_relu_fwd(ny, y, want);
  expect_close("relu(blocked)", got, want, ny, TOL_EXACT);
  bwd(re, rbin, 2, rout, 1);
  t_get("mixed", o, 4, yd, got);
  ref_relu_bwd(ny, y, dy, want);
  expect_close("relu backward(blocked x, plain dy)", got, want, ny, TOL_EXACT);

  /* batch norm on the blocked tensor, gradient plain. */
  d = bn_desc(4, 2, 16, 8, 8, 1e-5f, 0.1f, 1);
  mbk_op *bn = op_make(&d);
  mbk_tensor *tg = t_from(1, c16, g), *tbe = t_from(1, c16, be), *trm = t_from(1, c16, rm);
  mbk_tensor *trv = t_from(1, c16, rv), *tdg = t_new();
  mbk_tensor *bin[5] = {ty, tg, tbe, trm, trv}, *bbin[3] = {ty, tg, tdy};
  mbk_tensor *bout[3] = {o, tdg, NULL};
  fwd(bn, 1, bin, 5, o);
  t_get("mixed", o, 4, yd, got);
  ref_bn_fwd_train(2, 16, 64, y, g, be, 1e-5f, 1, want, NULL, NULL);
  expect_close("batchnorm(blocked)", got, want, ny, TOL_FWD);
  bwd(bn, bbin, 3, bout, 3);
  t_get("mixed", o, 4, yd, got);
  ref_bn_bwd(2, 16, 64, y, g, be, dy, 1e-5f, 1, want, dg, NULL);
  expect_close("batchnorm backward(blocked x, plain dy)", got, want, ny, TOL_GRAD);
  t_get("mixed", tdg, 1, c16, dgot);
  expect_close("batchnorm dgamma(blocked x, plain dy)", dgot, dg, 16, TOL_GRAD);

  /* max pool on the blocked tensor, gradient plain. */
  d = pool_desc(&pp);
  mbk_op *mp = op_make(&d);
  const int64_t pd4[4] = {2, 16, ref_pool_oh(&pp), ref_pool_ow(&pp)};
  const size_t np = numel(4, pd4);
  mbk_tensor *tpdy = t_from(4, pd4, do2), *pin[1] = {ty}, *pbin[1] = {tpdy}, *pout[1] = {o};
  fwd(mp, 1, pin, 1, o);
  t_get("mixed", o, 4, pd4, got);
  ref_maxpool_fwd(&pp, y, want);
  expect_close("maxpool(blocked)", got, want, np, TOL_EXACT);
  bwd(mp, pbin, 1, pout, 1);
  t_get("mixed", o, 4, yd, got);
  ref_maxpool_bwd(&pp, y, do2, want);
  expect_close("maxpool backward(plain dy)", got, want, ny, TOL_EXACT);

  /* conv whose x is blocked, gradient plain. */
  d = conv_desc(&p2, 0);
  mbk_op *conv2 = op_make(&d);
  mbk_tensor *tw2 = t_from(4, w2d, w2), *tdo2 = t_from(4, o2d, do2), *tdw2 = t_new();
  mbk_tensor *c2in[3] = {ty, tw2, NULL}, *c2bin[3] = {ty, tw2, tdo2};
  mbk_tensor *c2out[3] = {o, tdw2, NULL};
  fwd(conv2, 1, c2in, 3, o);
  t_get("mixed", o, 4, o2d, got);
  ref_conv2d_fwd(&p2, y, w2, NULL, want);
  expect_close("conv(blocked x)", got, want, no2, TOL_FWD);
  bwd(conv2, c2bin, 3, c2out, 3);
  t_get("mixed", o, 4, yd, got);
  ref_conv2d_bwd_data(&p2, w2, do2, want);
  expect_close("conv dx(plain dy)", got, want, ny, TOL_FWD);
  t_get("mixed", tdw2, 4, w2d, got);
  ref_conv2d_bwd_weights(&p2, y, do2, want);
  expect_close("conv dw(blocked x, plain dy)", got, want, nw2, TOL_GRAD);

  /* global average pool of the blocked tensor; its gradient into a tensor that held a
   * blocked 4-D output before. */
  d = desc_zero(MBK_OP_GAVGPOOL, 4, 2, 16, 8, 8);
  mbk_op *gap = op_make(&d);
  float *dg2 = fbuf(32);
  for (int i = 0; i < 32; ++i) dg2[i] = (float)(i % 7) - 3.0f;
  mbk_tensor *gin[1] = {ty}, *tgd = t_from(2, gd, dg2), *gbin[1] = {tgd}, *gout[1] = {o};
  fwd(gap, 1, gin, 1, o);
  t_get("mixed", o, 2, gd, got);
  ref_gavgpool_fwd(2, 16, 64, y, want);
  expect_close("gavgpool(blocked)", got, want, 32, TOL_FWD);
  bwd(gap, gbin, 1, gout, 1);
  t_get("mixed", o, 4, yd, got);
  ref_gavgpool_bwd(2, 16, 64, dg2, want);
  expect_close("gavgpool backward", got, want, ny, TOL_EXACT);
}
END_TEST

/* ==================================== chains ===================================== */

/*
 * A residual block in the shape of the ResNet encoders, run forward and backward
 * without a download in between, every tensor in whatever layout the backend chose:
 *   x[2,3,12,12] -conv3x3(16,b)-> a1 -bn(relu)-> a2 -maxpool3x3s2p1-> a3[2,16,6,6]
 *   a3 -conv3x3(32)-> a4,  a3 -conv1x1(32)-> a5,  a4 + a5 -> a6 -gavgpool-> a7[2,32]
 *   a7 -linear(10,b)-> y[2,10];   L = sum r * y.
 * The two gradients reaching a3 are summed with an ADD op (on the backend).
 */
START_TEST(test_chain_residual) {
  rng r = rng_make(1100);
  const int64_t N = 2;
  const ref_conv p1 = {N, 3, 12, 12, 16, 3, 3, 1, 1, 1, 1};
  const ref_pool pp = {N, 16, 12, 12, 3, 3, 2, 2, 1, 1};
  const ref_conv p2 = {N, 16, 6, 6, 32, 3, 3, 1, 1, 1, 1};
  const ref_conv ps = {N, 16, 6, 6, 32, 1, 1, 1, 1, 0, 0};
  const int64_t xd[4] = {N, 3, 12, 12}, w1d[4] = {16, 3, 3, 3}, c16[1] = {16};
  const int64_t a1d[4] = {N, 16, 12, 12}, a3d[4] = {N, 16, 6, 6};
  const int64_t w2d[4] = {32, 16, 3, 3}, wsd[4] = {32, 16, 1, 1}, a4d[4] = {N, 32, 6, 6};
  const int64_t a7d[2] = {N, 32}, wfd[2] = {10, 32}, c10[1] = {10}, yd[2] = {N, 10};
  const size_t nx = numel(4, xd), nw1 = numel(4, w1d), na1 = numel(4, a1d);
  const size_t na3 = numel(4, a3d), nw2 = numel(4, w2d), nws = numel(4, wsd);
  const size_t na4 = numel(4, a4d), na7 = numel(2, a7d), nwf = numel(2, wfd);
  const size_t ny = numel(2, yd);

  float *x = fbuf(nx), *w1 = fbuf(nw1), *b1 = fbuf(16), *g = fbuf(16), *be = fbuf(16);
  float *rm = fbuf(16), *rv = fbuf(16), *w2 = fbuf(nw2), *ws = fbuf(nws), *wf = fbuf(nwf);
  float *bf = fbuf(10), *rr = fbuf(ny);
  fill_unif(&r, x, nx, -1, 1);
  fill_unif(&r, w1, nw1, -0.5, 0.5);
  fill_unif(&r, b1, 16, -0.5, 0.5);
  fill_unif(&r, g, 16, 0.5, 1.5);
  fill_unif(&r, be, 16, -0.2, 0.2);
  fill_unif(&r, rm, 16, -0.1, 0.1);
  fill_unif(&r, rv, 16, 0.5, 1.5);
  fill_unif(&r, w2, nw2, -0.2, 0.2);
  fill_unif(&r, ws, nws, -0.5, 0.5);
  fill_unif(&r, wf, nwf, -0.5, 0.5);
  fill_unif(&r, bf, 10, -0.5, 0.5);
  fill_unif(&r, rr, ny, -1, 1);

  /* ---- backend ---- */
  mbk_op_desc d;
  d = conv_desc(&p1, 1);
  mbk_op *c1 = op_make(&d);
  d = bn_desc(4, N, 16, 12, 12, 1e-5f, 0.1f, 1);
  mbk_op *bn = op_make(&d);
  d = pool_desc(&pp);
  mbk_op *mp = op_make(&d);
  d = conv_desc(&p2, 0);
  mbk_op *c2 = op_make(&d);
  d = conv_desc(&ps, 0);
  mbk_op *sc = op_make(&d);
  d = desc_zero(MBK_OP_ADD, 4, N, 32, 6, 6);
  mbk_op *add = op_make(&d);
  d = desc_zero(MBK_OP_ADD, 4, N, 16, 6, 6);
  mbk_op *addg = op_make(&d);
  d = desc_zero(MBK_OP_GAVGPOOL, 4, N, 32, 6, 6);
  mbk_op *gap = op_make(&d);
  d = linear_desc(N, 32, 10, 1);
  mbk_op *fc = op_make(&d);

  mbk_tensor *tx = t_from(4, xd, x), *tw1 = t_from(4, w1d, w1), *tb1 = t_from(1, c16, b1);
  mbk_tensor *tg = t_from(1, c16, g), *tbe = t_from(1, c16, be);
  mbk_tensor *trm = t_from(1, c16, rm), *trv = t_from(1, c16, rv);
  mbk_tensor *tw2 = t_from(4, w2d, w2), *tws = t_from(4, wsd, ws);
  mbk_tensor *twf = t_from(2, wfd, wf), *tbf = t_from(1, c10, bf), *tr = t_from(2, yd, rr);
  mbk_tensor *a1 = t_new(), *a2 = t_new(), *a3 = t_new(), *a4 = t_new(), *a5 = t_new();
  mbk_tensor *a6 = t_new(), *a7 = t_new(), *ty = t_new();
  {
    mbk_tensor *i1[3] = {tx, tw1, tb1}, *i2[5] = {a1, tg, tbe, trm, trv}, *i3[1] = {a2};
    mbk_tensor *i4[3] = {a3, tw2, NULL}, *i5[3] = {a3, tws, NULL}, *i6[2] = {a4, a5};
    mbk_tensor *i7[1] = {a6}, *i8[3] = {a7, twf, tbf};
    fwd(c1, 1, i1, 3, a1);
    fwd(bn, 1, i2, 5, a2);
    fwd(mp, 1, i3, 1, a3);
    fwd(c2, 1, i4, 3, a4);
    fwd(sc, 1, i5, 3, a5);
    fwd(add, 1, i6, 2, a6);
    fwd(gap, 1, i7, 1, a7);
    fwd(fc, 1, i8, 3, ty);
  }
  mbk_tensor *da7 = t_new(), *dwf = t_new(), *dbf = t_new(), *da6 = t_new();
  mbk_tensor *da4 = t_new(), *da5 = t_new(), *da3a = t_new(), *dw2 = t_new();
  mbk_tensor *da3b = t_new(), *dws = t_new(), *da3 = t_new(), *da2 = t_new();
  mbk_tensor *da1 = t_new(), *dg = t_new(), *dbe = t_new(), *dx = t_new(), *dw1 = t_new();
  mbk_tensor *db1 = t_new();
  {
    mbk_tensor *bi8[3] = {a7, twf, tr}, *bo8[3] = {da7, dwf, dbf};
    mbk_tensor *bi7[1] = {da7}, *bo7[1] = {da6};
    mbk_tensor *bi6[1] = {da6}, *bo6[2] = {da4, da5};
    mbk_tensor *bi4[3] = {a3, tw2, da4}, *bo4[3] = {da3a, dw2, NULL};
    mbk_tensor *bi5[3] = {a3, tws, da5}, *bo5[3] = {da3b, dws, NULL};
    mbk_tensor *sum[2] = {da3a, da3b};
    mbk_tensor *bi3[1] = {da3}, *bo3[1] = {da2};
    mbk_tensor *bi2[3] = {a1, tg, da2}, *bo2[3] = {da1, dg, dbe};
    mbk_tensor *bi1[3] = {tx, tw1, da1}, *bo1[3] = {dx, dw1, db1};
    bwd(fc, bi8, 3, bo8, 3);
    bwd(gap, bi7, 1, bo7, 1);
    bwd(add, bi6, 1, bo6, 2);
    bwd(c2, bi4, 3, bo4, 3);
    bwd(sc, bi5, 3, bo5, 3);
    fwd(addg, 1, sum, 2, da3);
    bwd(mp, bi3, 1, bo3, 1);
    bwd(bn, bi2, 3, bo2, 3);
    bwd(c1, bi1, 3, bo1, 3);
  }

  /* ---- reference ---- */
  float *r1 = fbuf(na1), *r2 = fbuf(na1), *r3 = fbuf(na3), *r4 = fbuf(na4), *r5 = fbuf(na4);
  float *r6 = fbuf(na4), *r7 = fbuf(na7), *ry = fbuf(ny), *mean = fbuf(16), *var = fbuf(16);
  float *rda7 = fbuf(na7), *rdwf = fbuf(nwf), *rdbf = fbuf(10), *rda6 = fbuf(na4);
  float *rda3a = fbuf(na3), *rda3b = fbuf(na3), *rda3 = fbuf(na3), *rdw2 = fbuf(nw2);
  float *rdws = fbuf(nws), *rda2 = fbuf(na1), *rda1 = fbuf(na1), *rdg = fbuf(16);
  float *rdbe = fbuf(16), *rdx = fbuf(nx), *rdw1 = fbuf(nw1), *rdb1 = fbuf(16);
  ref_conv2d_fwd(&p1, x, w1, b1, r1);
  ref_bn_fwd_train(N, 16, 144, r1, g, be, 1e-5f, 1, r2, mean, var);
  ref_bn_update_running(16, N * 144, 0.1f, mean, var, rm, rv);
  ref_maxpool_fwd(&pp, r2, r3);
  ref_conv2d_fwd(&p2, r3, w2, NULL, r4);
  ref_conv2d_fwd(&ps, r3, ws, NULL, r5);
  ref_add_fwd(na4, r4, r5, r6);
  ref_gavgpool_fwd(N, 32, 36, r6, r7);
  ref_linear_fwd(N, 32, 10, r7, wf, bf, ry);
  ref_linear_bwd(N, 32, 10, r7, wf, rr, rda7, rdwf, rdbf);
  ref_gavgpool_bwd(N, 32, 36, rda7, rda6);
  ref_conv2d_bwd_data(&p2, w2, rda6, rda3a);
  ref_conv2d_bwd_weights(&p2, r3, rda6, rdw2);
  ref_conv2d_bwd_data(&ps, ws, rda6, rda3b);
  ref_conv2d_bwd_weights(&ps, r3, rda6, rdws);
  ref_add_fwd(na3, rda3a, rda3b, rda3);
  ref_maxpool_bwd(&pp, r2, rda3, rda2);
  ref_bn_bwd(N, 16, 144, r1, g, be, rda2, 1e-5f, 1, rda1, rdg, rdbe);
  ref_conv2d_bwd_data(&p1, w1, rda1, rdx);
  ref_conv2d_bwd_weights(&p1, x, rda1, rdw1);
  ref_conv2d_bwd_bias(&p1, rda1, rdb1);

  /* ---- compare ---- */
  float *got = fbuf(na1);
  const char *w = "residual chain";
  t_get(w, ty, 2, yd, got);
  expect_close("chain output y", got, ry, ny, TOL_CHAIN);
  t_get(w, a3, 4, a3d, got);
  expect_close("chain activation after maxpool", got, r3, na3, TOL_CHAIN);
  t_get(w, trm, 1, c16, got);
  expect_close("chain bn running_mean", got, rm, 16, TOL_CHAIN);
  t_get(w, trv, 1, c16, got);
  expect_close("chain bn running_var", got, rv, 16, TOL_CHAIN);
  t_get(w, dx, 4, xd, got);
  expect_close("chain dL/dx", got, rdx, nx, TOL_CHAIN);
  t_get(w, dw1, 4, w1d, got);
  expect_close("chain dL/dw1 (stem conv)", got, rdw1, nw1, TOL_CHAIN);
  t_get(w, db1, 1, c16, got);
  expect_close("chain dL/db1", got, rdb1, 16, TOL_CHAIN);
  t_get(w, dg, 1, c16, got);
  expect_close("chain dL/dgamma", got, rdg, 16, TOL_CHAIN);
  t_get(w, dbe, 1, c16, got);
  expect_close("chain dL/dbeta", got, rdbe, 16, TOL_CHAIN);
  t_get(w, da3, 4, a3d, got);
  expect_close("chain dL/da3 (sum of two conv gradients)", got, rda3, na3, TOL_CHAIN);
  t_get(w, dw2, 4, w2d, got);
  expect_close("chain dL/dw2 (3x3 conv)", got, rdw2, nw2, TOL_CHAIN);
  t_get(w, dws, 4, wsd, got);
  expect_close("chain dL/dws (1x1 shortcut)", got, rdws, nws, TOL_CHAIN);
  t_get(w, dwf, 2, wfd, got);
  expect_close("chain dL/dwf (linear)", got, rdwf, nwf, TOL_CHAIN);
  t_get(w, dbf, 1, c10, got);
  expect_close("chain dL/dbf", got, rdbf, 10, TOL_CHAIN);
}
END_TEST

/*
 * Two branches joined by a channel concat, as in the fused model:
 *   xa[2,3,8,8] -conv3x3(16)-> ya,  xb[2,5,8,8] -conv3x3(32,b)-> yb
 *   concat(ya, yb)[2,48,8,8] -bn-> -relu-> -gavgpool-> f[2,48]
 *   concat(f, e[2,5])[2,53] -linear(12,b)-> -relu(2-D)-> -linear(7,b)-> y[2,7].
 */
START_TEST(test_chain_concat) {
  rng r = rng_make(1200);
  const int64_t N = 2;
  const ref_conv pa = {N, 3, 8, 8, 16, 3, 3, 1, 1, 1, 1};
  const ref_conv pb = {N, 5, 8, 8, 32, 3, 3, 1, 1, 1, 1};
  const int64_t xad[4] = {N, 3, 8, 8}, xbd[4] = {N, 5, 8, 8}, wad[4] = {16, 3, 3, 3};
  const int64_t wbd[4] = {32, 5, 3, 3}, c32[1] = {32}, c48[1] = {48};
  const int64_t yad[4] = {N, 16, 8, 8}, ybd[4] = {N, 32, 8, 8}, cd[4] = {N, 48, 8, 8};
  const int64_t fd[2] = {N, 48}, ed[2] = {N, 5}, f2d[2] = {N, 53}, w1d[2] = {12, 53};
  const int64_t c12[1] = {12}, hd[2] = {N, 12}, w2d[2] = {7, 12}, c7[1] = {7};
  const int64_t yd[2] = {N, 7};
  const int64_t cs4[2] = {16, 32}, cs2[2] = {48, 5};
  const size_t nxa = numel(4, xad), nxb = numel(4, xbd), nwa = numel(4, wad);
  const size_t nwb = numel(4, wbd), nya = numel(4, yad), nyb = numel(4, ybd);
  const size_t nc = numel(4, cd), nf = numel(2, fd), ne = numel(2, ed), nf2 = numel(2, f2d);
  const size_t nw1 = numel(2, w1d), nh = numel(2, hd), nw2 = numel(2, w2d), ny = numel(2, yd);

  float *xa = fbuf(nxa), *xb = fbuf(nxb), *wa = fbuf(nwa), *wb = fbuf(nwb), *bb = fbuf(32);
  float *g = fbuf(48), *be = fbuf(48), *rm = fbuf(48), *rv = fbuf(48), *e = fbuf(ne);
  float *w1 = fbuf(nw1), *b1 = fbuf(12), *w2 = fbuf(nw2), *b2 = fbuf(7), *rr = fbuf(ny);
  fill_unif(&r, xa, nxa, -1, 1);
  fill_unif(&r, xb, nxb, -1, 1);
  fill_unif(&r, wa, nwa, -0.5, 0.5);
  fill_unif(&r, wb, nwb, -0.5, 0.5);
  fill_unif(&r, bb, 32, -0.5, 0.5);
  fill_signed(&r, g, 48, 0.5, 1.5);
  fill_unif(&r, be, 48, -0.3, 0.3);
  fill_unif(&r, rm, 48, -0.1, 0.1);
  fill_unif(&r, rv, 48, 0.5, 1.5);
  fill_unif(&r, e, ne, -1, 1);
  fill_unif(&r, w1, nw1, -0.5, 0.5);
  fill_unif(&r, b1, 12, -0.5, 0.5);
  fill_unif(&r, w2, nw2, -0.5, 0.5);
  fill_unif(&r, b2, 7, -0.5, 0.5);
  fill_unif(&r, rr, ny, -1, 1);

  mbk_op_desc d;
  d = conv_desc(&pa, 0);
  mbk_op *ca = op_make(&d);
  d = conv_desc(&pb, 1);
  mbk_op *cb = op_make(&d);
  d = concat_desc(4, N, 8, 8, 2, cs4);
  mbk_op *cat4 = op_make(&d);
  d = bn_desc(4, N, 48, 8, 8, 1e-5f, 0.1f, 0);
  mbk_op *bn = op_make(&d);
  d = desc_zero(MBK_OP_RELU, 4, N, 48, 8, 8);
  mbk_op *re4 = op_make(&d);
  d = desc_zero(MBK_OP_GAVGPOOL, 4, N, 48, 8, 8);
  mbk_op *gap = op_make(&d);
  d = concat_desc(2, N, 1, 1, 2, cs2);
  mbk_op *cat2 = op_make(&d);
  d = linear_desc(N, 53, 12, 1);
  mbk_op *fc1 = op_make(&d);
  d = desc_zero(MBK_OP_RELU, 2, N, 12, 1, 1);
  mbk_op *re2 = op_make(&d);
  d = linear_desc(N, 12, 7, 1);
  mbk_op *fc2 = op_make(&d);

  mbk_tensor *txa = t_from(4, xad, xa), *txb = t_from(4, xbd, xb);
  mbk_tensor *twa = t_from(4, wad, wa), *twb = t_from(4, wbd, wb), *tbb = t_from(1, c32, bb);
  mbk_tensor *tg = t_from(1, c48, g), *tbe = t_from(1, c48, be);
  mbk_tensor *trm = t_from(1, c48, rm), *trv = t_from(1, c48, rv), *te = t_from(2, ed, e);
  mbk_tensor *tw1 = t_from(2, w1d, w1), *tb1 = t_from(1, c12, b1);
  mbk_tensor *tw2 = t_from(2, w2d, w2), *tb2 = t_from(1, c7, b2), *tr = t_from(2, yd, rr);
  mbk_tensor *ya = t_new(), *yb = t_new(), *cc = t_new(), *bo = t_new(), *ro = t_new();
  mbk_tensor *f = t_new(), *f2 = t_new(), *h = t_new(), *hr = t_new(), *ty = t_new();
  {
    mbk_tensor *i1[3] = {txa, twa, NULL}, *i2[3] = {txb, twb, tbb}, *i3[2] = {ya, yb};
    mbk_tensor *i4[5] = {cc, tg, tbe, trm, trv}, *i5[1] = {bo}, *i6[1] = {ro};
    mbk_tensor *i7[2] = {f, te}, *i8[3] = {f2, tw1, tb1}, *i9[1] = {h};
    mbk_tensor *i10[3] = {hr, tw2, tb2};
    fwd(ca, 1, i1, 3, ya);
    fwd(cb, 1, i2, 3, yb);
    fwd(cat4, 1, i3, 2, cc);
    fwd(bn, 1, i4, 5, bo);
    fwd(re4, 1, i5, 1, ro);
    fwd(gap, 1, i6, 1, f);
    fwd(cat2, 1, i7, 2, f2);
    fwd(fc1, 1, i8, 3, h);
    fwd(re2, 1, i9, 1, hr);
    fwd(fc2, 1, i10, 3, ty);
  }
  mbk_tensor *dhr = t_new(), *dw2 = t_new(), *db2 = t_new(), *dh = t_new(), *df2 = t_new();
  mbk_tensor *dw1 = t_new(), *db1 = t_new(), *df = t_new(), *de = t_new(), *dro = t_new();
  mbk_tensor *dbo = t_new(), *dcc = t_new(), *dg = t_new(), *dbe = t_new(), *dya = t_new();
  mbk_tensor *dyb = t_new(), *dxa = t_new(), *dwa = t_new(), *dxb = t_new(), *dwb = t_new();
  mbk_tensor *dbb = t_new();
  {
    mbk_tensor *bi10[3] = {hr, tw2, tr}, *bo10[3] = {dhr, dw2, db2};
    mbk_tensor *bi9[2] = {h, dhr}, *bo9[1] = {dh};
    mbk_tensor *bi8[3] = {f2, tw1, dh}, *bo8[3] = {df2, dw1, db1};
    mbk_tensor *bi7[1] = {df2}, *bo7[2] = {df, de};
    mbk_tensor *bi6[1] = {df}, *bo6[1] = {dro};
    mbk_tensor *bi5[2] = {bo, dro}, *bo5[1] = {dbo};
    mbk_tensor *bi4[3] = {cc, tg, dbo}, *bo4[3] = {dcc, dg, dbe};
    mbk_tensor *bi3[1] = {dcc}, *bo3[2] = {dya, dyb};
    mbk_tensor *bi2[3] = {txb, twb, dyb}, *bo2[3] = {dxb, dwb, dbb};
    mbk_tensor *bi1[3] = {txa, twa, dya}, *bo1[3] = {dxa, dwa, NULL};
    bwd(fc2, bi10, 3, bo10, 3);
    bwd(re2, bi9, 2, bo9, 1);
    bwd(fc1, bi8, 3, bo8, 3);
    bwd(cat2, bi7, 1, bo7, 2);
    bwd(gap, bi6, 1, bo6, 1);
    bwd(re4, bi5, 2, bo5, 1);
    bwd(bn, bi4, 3, bo4, 3);
    bwd(cat4, bi3, 1, bo3, 2);
    bwd(cb, bi2, 3, bo2, 3);
    bwd(ca, bi1, 3, bo1, 3);
  }

  /* ---- reference ---- */
  float *rya = fbuf(nya), *ryb = fbuf(nyb), *rcc = fbuf(nc), *rbo = fbuf(nc), *rro = fbuf(nc);
  float *rf = fbuf(nf), *rf2 = fbuf(nf2), *rh = fbuf(nh), *rhr = fbuf(nh), *ry = fbuf(ny);
  float *mean = fbuf(48), *var = fbuf(48), *rdhr = fbuf(nh), *rdw2 = fbuf(nw2);
  float *rdb2 = fbuf(7), *rdh = fbuf(nh), *rdf2 = fbuf(nf2), *rdw1 = fbuf(nw1);
  float *rdb1 = fbuf(12), *rdf = fbuf(nf), *rde = fbuf(ne), *rdro = fbuf(nc);
  float *rdbo = fbuf(nc), *rdcc = fbuf(nc), *rdg = fbuf(48), *rdbe = fbuf(48);
  float *rdya = fbuf(nya), *rdyb = fbuf(nyb), *rdxa = fbuf(nxa), *rdwa = fbuf(nwa);
  float *rdxb = fbuf(nxb), *rdwb = fbuf(nwb), *rdbb = fbuf(32);
  ref_conv2d_fwd(&pa, xa, wa, NULL, rya);
  ref_conv2d_fwd(&pb, xb, wb, bb, ryb);
  {
    const float *parts[2] = {rya, ryb};
    ref_concat_fwd(N, 64, 2, cs4, parts, rcc);
  }
  ref_bn_fwd_train(N, 48, 64, rcc, g, be, 1e-5f, 0, rbo, mean, var);
  ref_bn_update_running(48, N * 64, 0.1f, mean, var, rm, rv);
  ref_relu_fwd(nc, rbo, rro);
  ref_gavgpool_fwd(N, 48, 64, rro, rf);
  {
    const float *parts[2] = {rf, e};
    ref_concat_fwd(N, 1, 2, cs2, parts, rf2);
  }
  ref_linear_fwd(N, 53, 12, rf2, w1, b1, rh);
  ref_relu_fwd(nh, rh, rhr);
  ref_linear_fwd(N, 12, 7, rhr, w2, b2, ry);
  ref_linear_bwd(N, 12, 7, rhr, w2, rr, rdhr, rdw2, rdb2);
  ref_relu_bwd(nh, rh, rdhr, rdh);
  ref_linear_bwd(N, 53, 12, rf2, w1, rdh, rdf2, rdw1, rdb1);
  {
    float *parts[2] = {rdf, rde};
    ref_concat_bwd(N, 1, 2, cs2, rdf2, parts);
  }
  ref_gavgpool_bwd(N, 48, 64, rdf, rdro);
  ref_relu_bwd(nc, rbo, rdro, rdbo);
  ref_bn_bwd(N, 48, 64, rcc, g, be, rdbo, 1e-5f, 0, rdcc, rdg, rdbe);
  {
    float *parts[2] = {rdya, rdyb};
    ref_concat_bwd(N, 64, 2, cs4, rdcc, parts);
  }
  ref_conv2d_bwd_data(&pb, wb, rdyb, rdxb);
  ref_conv2d_bwd_weights(&pb, xb, rdyb, rdwb);
  ref_conv2d_bwd_bias(&pb, rdyb, rdbb);
  ref_conv2d_bwd_data(&pa, wa, rdya, rdxa);
  ref_conv2d_bwd_weights(&pa, xa, rdya, rdwa);

  /* ---- compare ---- */
  float *got = fbuf(nc);
  const char *w = "concat chain";
  t_get(w, ty, 2, yd, got);
  expect_close("chain output y", got, ry, ny, TOL_CHAIN);
  t_get(w, f2, 2, f2d, got);
  expect_close("chain fused features", got, rf2, nf2, TOL_CHAIN);
  t_get(w, trm, 1, c48, got);
  expect_close("chain bn running_mean", got, rm, 48, TOL_CHAIN);
  t_get(w, trv, 1, c48, got);
  expect_close("chain bn running_var", got, rv, 48, TOL_CHAIN);
  t_get(w, dxa, 4, xad, got);
  expect_close("chain dL/dxa", got, rdxa, nxa, TOL_CHAIN);
  t_get(w, dxb, 4, xbd, got);
  expect_close("chain dL/dxb", got, rdxb, nxb, TOL_CHAIN);
  t_get(w, de, 2, ed, got);
  expect_close("chain dL/de (2-D concat input)", got, rde, ne, TOL_CHAIN);
  t_get(w, dwa, 4, wad, got);
  expect_close("chain dL/dwa", got, rdwa, nwa, TOL_CHAIN);
  t_get(w, dwb, 4, wbd, got);
  expect_close("chain dL/dwb", got, rdwb, nwb, TOL_CHAIN);
  t_get(w, dbb, 1, c32, got);
  expect_close("chain dL/dbb", got, rdbb, 32, TOL_CHAIN);
  t_get(w, dg, 1, c48, got);
  expect_close("chain dL/dgamma", got, rdg, 48, TOL_CHAIN);
  t_get(w, dbe, 1, c48, got);
  expect_close("chain dL/dbeta", got, rdbe, 48, TOL_CHAIN);
  t_get(w, dw1, 2, w1d, got);
  expect_close("chain dL/dw1 (linear)", got, rdw1, nw1, TOL_CHAIN);
  t_get(w, db1, 1, c12, got);
  expect_close("chain dL/db1", got, rdb1, 12, TOL_CHAIN);
  t_get(w, dw2, 2, w2d, got);
  expect_close("chain dL/dw2 (linear)", got, rdw2, nw2, TOL_CHAIN);
  t_get(w, db2, 1, c7, got);
  expect_close("chain dL/db2", got, rdb2, 7, TOL_CHAIN);
}
END_TEST

/* ===================================== main ====================================== */

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static TCase *tcase(const char *name) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  return tc;
}

static Suite *cpu_ops_suite(void) {
  Suite *s = suite_create("cpu_ops");
  TCase *tc;

  tc = tcase("basics");
  tcase_add_test(tc, test_iface);
  tcase_add_test(tc, test_tensor_roundtrip);
  tcase_add_test(tc, test_tensor_errors);
  suite_add_tcase(s, tc);

  tc = tcase("conv2d");
  tcase_add_loop_test(tc, test_conv2d, 0, NELEM(CONV_CASES));
  tcase_add_loop_test(tc, test_conv2d_fused, 0, NELEM(CONV_CASES) * NELEM(FUSED_FLAGS));
  tcase_add_test(tc, test_conv2d_algorithms);
  suite_add_tcase(s, tc);

  tc = tcase("batchnorm");
  tcase_add_loop_test(tc, test_batchnorm, 0, NELEM(BN_CASES));
  tcase_add_loop_test(tc, test_batchnorm_sync, 0, NELEM(BN_CASES));
  suite_add_tcase(s, tc);

  tc = tcase("relu");
  tcase_add_loop_test(tc, test_relu, 0, NELEM(ELT_CASES));
  suite_add_tcase(s, tc);

  tc = tcase("maxpool");
  tcase_add_loop_test(tc, test_maxpool, 0, NELEM(MP_CASES));
  suite_add_tcase(s, tc);

  tc = tcase("gavgpool");
  tcase_add_loop_test(tc, test_gavgpool, 0, NELEM(GAP_CASES));
  suite_add_tcase(s, tc);

  tc = tcase("linear");
  tcase_add_loop_test(tc, test_linear, 0, NELEM(LINEAR_CASES));
  suite_add_tcase(s, tc);

  tc = tcase("add");
  tcase_add_loop_test(tc, test_add, 0, NELEM(ELT_CASES));
  suite_add_tcase(s, tc);

  tc = tcase("concat");
  tcase_add_loop_test(tc, test_concat, 0, NELEM(CONCAT_CASES));
  suite_add_tcase(s, tc);

  tc = tcase("errors");
  tcase_add_test(tc, test_invalid_desc);
  tcase_add_test(tc, test_wrong_arguments);
  suite_add_tcase(s, tc);

  tc = tcase("reuse");
  tcase_add_test(tc, test_reuse);
  suite_add_tcase(s, tc);

  tc = tcase("layouts");
  tcase_add_test(tc, test_mixed_layouts);
  suite_add_tcase(s, tc);

  tc = tcase("chains");
  tcase_add_test(tc, test_chain_residual);
  tcase_add_test(tc, test_chain_concat);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(cpu_ops_suite());
  srunner_run_all(sr, CK_ENV);
  const int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
