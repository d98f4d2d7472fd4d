/*
 * test_backend_ops.c — the CUDA backend against the CPU backend, op by op (ggml's
 * test-backend-ops is the model). The CPU backend is itself checked against plain-C
 * references and finite differences (test_cpu_ops.c), so agreement here carries that
 * over to CUDA.
 *
 * For every op type the module implements (UPSAMPLE and DECONV2D too), on a few shapes
 * including odd ones:
 * inference forward, training forward (batch norm's running statistics too), backward with
 * a random dy into every output; then the training step again, which must give the same
 * bits (deterministic kernels and algorithms) and must not reach cudaMalloc (the module
 * logs each call at debug level; a steady state has none). Every loss term with row
 * offsets, gathered rows, a row mask and weighted accumulation; a non-finite input must
 * fail with MSC_E_NUMERICAL and leave the gradient alone. The optimiser update
 * (optim_update) against the host functions of optim_core.h; the gradient statistics
 * (grad_stats) against the CPU backend's. A batch norm whose running statistics belong to
 * another context (as the model's parameters do) exercises the cross-stream ordering.
 * The ops of contract API 10-13 the same way: grouped and depthwise CONV2D, LAYERNORM
 * (NCHW and N×C), GELU, GRN (with an all-zero channel, whose gradient is taken as 0), ATTN
 * (one and two sources), ADD with a per-sample scale (and without the scale tensor) and
 * BATCHNORM with synchronised statistics through a reduce that adds another rank's sums;
 * each gradient of an op with optional outputs is also asked for alone; a ConvNeXt-V2
 * block (dwconv, LN, pwconv, GELU, GRN, pwconv, drop path) chained forward and backward.
 *
 * Tolerances: |cuda − cpu| <= TOL × max(1, max |cpu|) over each output. Both backends
 * sum in different orders (cuDNN/cuBLAS vs oneDNN), in float for convolutions and
 * products: ~1e-6 of the scale at these sizes; TOL = 1e-4 leaves room without hiding a
 * wrong formula (which is off by O(1) of the scale).
 *
 * Exit status: 0 pass, 1 failure, 77 skipped (the cuda backend is unavailable here: no
 * device, no driver or no module; the reason is printed). MSC_TEST_EXPECT_CUDA=1 turns a
 * skip into a failure. Plain C without Check: no fork (CUDA cannot be used in a child
 * forked after the parent touched it).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/backend.h"
#include "backend/backend_call.h"
#include "backend/registry.h"
#include "common/internal.h"
#include "contract/optim_core.h"
#include "plain_check.h"

#define TOL            1e-4
#define TOL_LOSS_VALUE 1e-9

static int g_mallocs; /* cudaMalloc lines logged by the module */

#define OK(call, be)                                                                           \
  do {                                                                                         \
    msc_status st_ = (call);                                                                   \
    if (st_ != MSC_OK) {                                                                       \
      fprintf(stderr, "FAIL %s:%d: %s on %s: status %d: %s\n", __FILE__, __LINE__, #call,      \
              (be)->name, (int)st_, msc_last_error());                                         \
      exit(1);                                                                                 \
    }                                                                                          \
  } while (0)

static void on_log(int32_t level, const char *message, void *user) {
  (void)level, (void)user;
  if (strstr(message, "cuda: cudaMalloc")) ++g_mallocs;
}

/* ---- two backends side by side ------------------------------------------------------- */

static const mbk_iface *CPU, *GPU;
static mbk_ctx *CCTX, *GCTX;

typedef struct pair {
  int32_t ndim;
  int64_t dims[MBK_MAX_DIMS];
  float *host;
  mbk_tensor *c, *g;
} pair;

#define MAX_PAIRS 4096
static pair *g_pairs[MAX_PAIRS];
static int g_npairs;

static size_t numel(int32_t ndim, const int64_t *dims) {
  size_t n = 1;
  for (int32_t i = 0; i < ndim; ++i) n *= (size_t)dims[i];
  return n;
}

static pair *pair_new(void) {
  pair *p = calloc(1, sizeof *p);
  if (!p || g_npairs >= MAX_PAIRS) exit(1);
  OK(CPU->tensor_create(CCTX, &p->c), CPU);
  OK(GPU->tensor_create(GCTX, &p->g), GPU);
  g_pairs[g_npairs++] = p;
  return p;
}

static void pairs_free(void) {
  for (int i = 0; i < g_npairs; ++i) {
    CPU->tensor_free(g_pairs[i]->c);
    GPU->tensor_free(g_pairs[i]->g);
    free(g_pairs[i]->host);
    free(g_pairs[i]);
  }
  g_npairs = 0;
}

/* xorshift64*: fixed seeds, so a failure reproduces. */
static uint64_t g_rng = 88172645463325252ull;
static double unit(void) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return (double)((g_rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

enum fill { F_UNIF, F_POS, F_SIGNED, F_DISTINCT };

static void fill(float *a, size_t n, int how) {
  for (size_t i = 0; i < n; ++i) {
    double u = unit();
    switch (how) {
    case F_POS: a[i] = (float)(0.5 + u); break; /* variances, scales */
    case F_SIGNED: a[i] = (float)((unit() < 0.5 ? -1 : 1) * (0.05 + u)); break; /* off 0 */
    case F_DISTINCT: a[i] = (float)(((double)i - (double)n / 2 + 0.5) * 0.01); break;
    default: a[i] = (float)(2.0 * u - 1.0); break;
    }
  }
  if (how == F_DISTINCT) /* shuffle: distinct values in random places */
    for (size_t i = n; i > 1; --i) {
      size_t j = (size_t)(unit() * (double)i) % i;
      float t = a[i - 1];
      a[i - 1] = a[j];
      a[j] = t;
    }
}

/* A pair with the same random contents on both backends. */
static pair *pair_random(int32_t ndim, const int64_t *dims, int how) {
  pair *p = pair_new();
  p->ndim = ndim;
  memcpy(p->dims, dims, (size_t)ndim * sizeof *dims);
  size_t n = numel(ndim, dims);
  p->host = malloc(n * sizeof(float));
  if (!p->host) exit(1);
  fill(p->host, n, how);
  OK(CPU->tensor_upload(p->c, ndim, dims, p->host), CPU);
  OK(GPU->tensor_upload(p->g, ndim, dims, p->host), GPU);
  return p;
}

static float *download(const mbk_iface *be, const mbk_tensor *t, size_t n) {
  float *x = malloc((n ? n : 1) * sizeof(float));
  if (!x) exit(1);
  OK(be->tensor_download(t, x, n), be);
  return x;
}

/* Shapes equal, then values within TOL of the CPU's scale. Returns the worst ratio. */
static double compare_tensors(const char *what, const mbk_tensor *c, const mbk_tensor *g,
                              double tol) {
  int64_t dc[MBK_MAX_DIMS] = {0}, dg[MBK_MAX_DIMS] = {0};
  int32_t nc = CPU->tensor_shape(c, dc), ng = GPU->tensor_shape(g, dg);
  int same = nc == ng;
  for (int32_t i = 0; same && i < nc; ++i) same = dc[i] == dg[i];
  CHECK(same && nc > 0, "%s: shapes differ (ndim %d vs %d)", what, (int)nc, (int)ng);
  if (!same || nc == 0) return INFINITY;
  size_t n = numel(nc, dc);
  float *a = download(CPU, c, n), *b = download(GPU, g, n);
  double scale = 1.0, worst = 0.0;
  size_t wi = 0;
  for (size_t i = 0; i < n; ++i) scale = fmax(scale, fabs((double)a[i]));
  for (size_t i = 0; i < n; ++i) {
    double e = fabs((double)a[i] - (double)b[i]);
    if (!(e <= worst)) worst = e, wi = i;
  }
  CHECK(worst <= tol * scale,
        "%s: element %zu: cuda %.9g, cpu %.9g (|diff| %.3g > %.1e x %.3g)", what, wi,
        (double)b[wi], (double)a[wi], worst, tol, scale);
  if (getenv("MSC_OPS_TEST_VERBOSE"))
    printf("  %-44s max|diff|/scale %.2e\n", what, worst / scale);
  free(a), free(b);
  return worst / scale;
}

/* The CUDA result of a tensor, to compare a rerun with bit for bit. */
static float *snapshot(const mbk_tensor *g) {
  int64_t d[MBK_MAX_DIMS];
  int32_t nd = GPU->tensor_shape(g, d);
  return download(GPU, g, numel(nd, d));
}

static void expect_same(const char *what, const mbk_tensor *g, const float *before) {
  int64_t d[MBK_MAX_DIMS];
  int32_t nd = GPU->tensor_shape(g, d);
  size_t n = numel(nd, d);
  float *now = download(GPU, g, n);
  CHECK(memcmp(now, before, n * sizeof(float)) == 0, "%s: a rerun gave other bits", what);
  free(now);
}

/* ---- ops ------------------------------------------------------------------------------ */

typedef struct opcase {
  const char *name;
  mbk_op_desc d;
} opcase;

/* ADD with row_scale: run_op passes NULL for s (inference's plain sum) while set. */
static int g_no_scale;

static mbk_op_desc base_desc(int32_t type, int32_t ndim, int64_t n, int64_t c, int64_t h,
                             int64_t w) {
  mbk_op_desc d;
  memset(&d, 0, sizeof d);
  d.type = type, d.ndim = ndim, d.n = n, d.c = c;
  d.h = ndim == 4 ? h : 1, d.w = ndim == 4 ? w : 1;
  return d;
}

static mbk_op_desc conv(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t kh,
                        int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int bias) {
  mbk_op_desc d = base_desc(MBK_OP_CONV2D, 4, n, c, h, w);
  d.u.conv.out_c = oc, d.u.conv.kh = kh, d.u.conv.kw = kw, d.u.conv.sh = sh;
  d.u.conv.sw = sw, d.u.conv.ph = ph, d.u.conv.pw = pw, d.u.conv.bias = bias;
  return d;
}

/* d with u.conv.groups = 1 written out (API 10; 0 means the same). */
static mbk_op_desc conv_g1(mbk_op_desc d) {
  d.u.conv.groups = 1;
  return d;
}

static mbk_op_desc bnorm(int32_t ndim, int64_t n, int64_t c, int64_t h, int64_t w, int relu) {
  mbk_op_desc d = base_desc(MBK_OP_BATCHNORM, ndim, n, c, h, w);
  d.u.bn.eps = 1e-5f, d.u.bn.momentum = 0.1f, d.u.bn.relu = relu;
  return d;
}

static mbk_op_desc maxpool(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s,
                           int64_t p) {
  mbk_op_desc d = base_desc(MBK_OP_MAXPOOL, 4, n, c, h, w);
  d.u.pool.kh = d.u.pool.kw = k, d.u.pool.sh = d.u.pool.sw = s, d.u.pool.ph = d.u.pool.pw = p;
  return d;
}

/* Upsampling of [n, c, h, w] to oh × ow. */
static mbk_op_desc upsample(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow,
                            int32_t mode) {
  mbk_op_desc d = base_desc(MBK_OP_UPSAMPLE, 4, n, c, h, w);
  d.u.upsample.oh = oh, d.u.upsample.ow = ow, d.u.upsample.mode = mode;
  return d;
}

static mbk_op_desc deconv(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t k,
                          int64_t s, int64_t p, int64_t op, int bias) {
  mbk_op_desc d = base_desc(MBK_OP_DECONV2D, 4, n, c, h, w);
  d.u.deconv.out_c = oc, d.u.deconv.kh = d.u.deconv.kw = k, d.u.deconv.sh = d.u.deconv.sw = s;
  d.u.deconv.ph = d.u.deconv.pw = p, d.u.deconv.oph = d.u.deconv.opw = op;
  d.u.deconv.bias = bias;
  return d;
}

static mbk_op_desc linear(int64_t n, int64_t k, int64_t o, int bias) {
  mbk_op_desc d = base_desc(MBK_OP_LINEAR, 2, n, k, 1, 1);
  d.u.linear.out_f = o, d.u.linear.bias = bias;
  return d;
}

static mbk_op_desc concat(int32_t ndim, int64_t n, int64_t h, int64_t w, int32_t k,
                          const int64_t *cs) {
  int64_t total = 0;
  for (int32_t i = 0; i < k; ++i) total += cs[i];
  mbk_op_desc d = base_desc(MBK_OP_CONCAT, ndim, n, total, h, w);
  d.u.concat.count = k;
  for (int32_t i = 0; i < k; ++i) d.u.concat.c[i] = cs[i];
  return d;
}

/* d with u.conv.groups = g (API 10). */
static mbk_op_desc grouped(mbk_op_desc d, int32_t g) {
  d.u.conv.groups = g;
  return d;
}

static mbk_op_desc lnorm(int32_t ndim, int64_t n, int64_t c, int64_t h, int64_t w, float eps) {
  mbk_op_desc d = base_desc(MBK_OP_LAYERNORM, ndim, n, c, h, w);
  d.u.ln.eps = eps;
  return d;
}

static mbk_op_desc grn(int64_t n, int64_t c, int64_t h, int64_t w) {
  mbk_op_desc d = base_desc(MBK_OP_GRN, 4, n, c, h, w);
  d.u.grn.eps = 1e-6f;
  return d;
}

/* Attention of q [n, c, h, w] over sources of sh[j] × sw[j] tokens (API 11). */
static mbk_op_desc attn(int64_t n, int64_t c, int64_t h, int64_t w, int32_t heads,
                        int32_t sources, const int64_t *sh, const int64_t *sw) {
  mbk_op_desc d = base_desc(MBK_OP_ATTN, 4, n, c, h, w);
  d.u.attn.heads = heads, d.u.attn.sources = sources;
  for (int32_t j = 0; j < sources; ++j) d.u.attn.src_h[j] = sh[j], d.u.attn.src_w[j] = sw[j];
  return d;
}

static mbk_op_desc scaled_add(int32_t ndim, int64_t n, int64_t c, int64_t h, int64_t w) {
  mbk_op_desc d = base_desc(MBK_OP_ADD, ndim, n, c, h, w);
  d.u.add.row_scale = 1;
  return d;
}

/* Synchronised BatchNorm's reduce (API 13) in a one-process test: adds the sums of a
 * made-up second rank (fixed numbers per channel: the same for both backends, so their
 * results stay comparable) and counts the calls of each kind. n = 2C + 1 is a forward's
 * {count, Σ(x − K), Σ(x − K)²}, n = 2C a backward's {Σg, Σg·x̂}. */
typedef struct fake_group {
  int64_t c;
  int fwd_calls, bwd_calls, fail;
} fake_group;

static msc_status fake_group_sum(void *user, double *buf, int64_t n) {
  fake_group *g = user;
  if (g->fail) return msci_fail(MSC_E_COMM, "test: the group is gone");
  if (n == 2 * g->c + 1) {
    g->fwd_calls++;
    buf[0] += 6.0; /* six more values per channel */
    for (int64_t c = 0; c < g->c; ++c) {
      buf[1 + c] += 0.4 * (double)c - 0.9;
      buf[1 + g->c + c] += 2.5 + 0.3 * (double)c;
    }
  } else if (n == 2 * g->c) {
    g->bwd_calls++;
    for (int64_t c = 0; c < g->c; ++c) {
      buf[c] += 0.3 - 0.05 * (double)c;
      buf[g->c + c] += 0.07 * (double)c - 0.2;
    }
  } else {
    return msci_fail(MSC_E_INTERNAL, "test: reduce of %lld doubles", (long long)n);
  }
  return MSC_OK;
}

static fake_group g_group;

static mbk_op_desc bnorm_sync(int32_t ndim, int64_t n, int64_t c, int64_t h, int64_t w,
                              int relu) {
  mbk_op_desc d = bnorm(ndim, n, c, h, w, relu);
  d.u.bn.reduce = fake_group_sum, d.u.bn.reduce_user = &g_group;
  return d;
}

/* A pair holding the given values on both backends. */
static pair *pair_values(int32_t ndim, const int64_t *dims, const float *v) {
  pair *p = pair_random(ndim, dims, F_UNIF);
  memcpy(p->host, v, numel(ndim, dims) * sizeof(float));
  OK(CPU->tensor_upload(p->c, ndim, dims, p->host), CPU);
  OK(GPU->tensor_upload(p->g, ndim, dims, p->host), GPU);
  return p;
}

/* Stochastic depth's per-sample scale of n samples: 0 or 1/keep (keep = 0.8). */
static pair *drop_scale(int64_t n) {
  float s[64];
  if (n > 64) exit(1);
  for (int64_t i = 0; i < n; ++i) s[i] = i % 3 == 1 ? 0.0f : 1.25f;
  return pair_values(1, &n, s);
}

/* The forward inputs of an op, random; NULL entries for absent optional ones. */
static int32_t make_inputs(const mbk_op_desc *d, int no_scale, pair **in) {
  int64_t x[MBK_MAX_DIMS] = {d->n, d->c, d->h, d->w}, v[MBK_MAX_DIMS];
  switch (d->type) {
  case MBK_OP_CONV2D:
    in[0] = pair_random(4, x, F_UNIF);
    v[0] = d->u.conv.out_c, v[1] = d->c / mbk_conv_groups(d), v[2] = d->u.conv.kh;
    v[3] = d->u.conv.kw;
    in[1] = pair_random(4, v, F_UNIF);
    in[2] = d->u.conv.bias ? pair_random(1, v, F_UNIF) : NULL;
    return 3;
  case MBK_OP_BATCHNORM:
    in[0] = pair_random(d->ndim, x, F_UNIF);
    v[0] = d->c;
    in[1] = pair_random(1, v, F_POS);
    in[2] = pair_random(1, v, F_UNIF);
    in[3] = pair_random(1, v, F_UNIF);
    in[4] = pair_random(1, v, F_POS);
    return 5;
  case MBK_OP_RELU: in[0] = pair_random(d->ndim, x, F_SIGNED); return 1;
  case MBK_OP_MAXPOOL: in[0] = pair_random(4, x, F_DISTINCT); return 1;
  case MBK_OP_GAVGPOOL: in[0] = pair_random(4, x, F_UNIF); return 1;
  case MBK_OP_LINEAR:
    in[0] = pair_random(2, x, F_UNIF);
    v[0] = d->u.linear.out_f, v[1] = d->c;
    in[1] = pair_random(2, v, F_UNIF);
    in[2] = d->u.linear.bias ? pair_random(1, v, F_UNIF) : NULL;
    return 3;
  case MBK_OP_ADD:
    in[0] = pair_random(d->ndim, x, F_UNIF);
    in[1] = pair_random(d->ndim, x, F_UNIF);
    if (!d->u.add.row_scale) return 2;
    in[2] = no_scale ? NULL : drop_scale(d->n);
    return 3;
  case MBK_OP_LAYERNORM:
  case MBK_OP_GRN:
    in[0] = pair_random(d->ndim, x, F_UNIF);
    if (d->type == MBK_OP_GRN) { /* channel 1 of sample 0 all zero: G = 0 there */
      memset(in[0]->host + d->h * d->w, 0, (size_t)(d->h * d->w) * sizeof(float));
      OK(CPU->tensor_upload(in[0]->c, 4, x, in[0]->host), CPU);
      OK(GPU->tensor_upload(in[0]->g, 4, x, in[0]->host), GPU);
    }
    v[0] = d->c;
    in[1] = pair_random(1, v, F_UNIF);
    in[2] = pair_random(1, v, F_UNIF);
    return 3;
  case MBK_OP_GELU: /* over [-3, 3]: both tails and the bend */
    in[0] = pair_random(d->ndim, x, F_UNIF);
    for (size_t i = 0; i < numel(d->ndim, x); ++i) in[0]->host[i] *= 3.0f;
    OK(CPU->tensor_upload(in[0]->c, d->ndim, x, in[0]->host), CPU);
    OK(GPU->tensor_upload(in[0]->g, d->ndim, x, in[0]->host), GPU);
    return 1;
  case MBK_OP_ATTN:
    in[0] = pair_random(4, x, F_UNIF);
    for (int32_t j = 0; j < d->u.attn.sources; ++j) {
      v[0] = d->n, v[1] = d->c, v[2] = d->u.attn.src_h[j], v[3] = d->u.attn.src_w[j];
      in[1 + 2 * j] = pair_random(4, v, F_UNIF);
      in[2 + 2 * j] = pair_random(4, v, F_UNIF);
    }
    return 1 + 2 * d->u.attn.sources;
  case MBK_OP_UPSAMPLE: in[0] = pair_random(4, x, F_UNIF); return 1;
  case MBK_OP_DECONV2D: /* weights [in, out, KH, KW] */
    in[0] = pair_random(4, x, F_UNIF);
    v[0] = d->c, v[1] = d->u.deconv.out_c, v[2] = d->u.deconv.kh, v[3] = d->u.deconv.kw;
    in[1] = pair_random(4, v, F_UNIF);
    v[0] = d->u.deconv.out_c;
    in[2] = d->u.deconv.bias ? pair_random(1, v, F_UNIF) : NULL;
    return 3;
  case MBK_OP_CONCAT:
    for (int32_t i = 0; i < d->u.concat.count; ++i) {
      x[1] = d->u.concat.c[i];
      in[i] = pair_random(d->ndim, x, F_UNIF);
    }
    return d->u.concat.count;
  default: exit(1);
  }
}

/* Backward inputs from the forward ones and dy; the number of outputs (NULL where an
 * optional output does not exist). */
static int32_t backward_args(const mbk_op_desc *d, pair **fin, pair *dy, pair **bin,
                             int32_t *n_in) {
  switch (d->type) {
  case MBK_OP_CONV2D:
  case MBK_OP_DECONV2D:
  case MBK_OP_LINEAR: bin[0] = fin[0], bin[1] = fin[1], bin[2] = dy, *n_in = 3; return 3;
  case MBK_OP_BATCHNORM: bin[0] = fin[0], bin[1] = fin[1], bin[2] = dy, *n_in = 3; return 3;
  case MBK_OP_RELU:
  case MBK_OP_GELU: bin[0] = fin[0], bin[1] = dy, *n_in = 2; return 1;
  case MBK_OP_LAYERNORM:
  case MBK_OP_GRN: bin[0] = fin[0], bin[1] = fin[1], bin[2] = dy, *n_in = 3; return 3;
  case MBK_OP_ATTN: {
    const int32_t n_x = 1 + 2 * d->u.attn.sources;
    for (int32_t i = 0; i < n_x; ++i) bin[i] = fin[i];
    bin[n_x] = dy, *n_in = n_x + 1;
    return n_x;
  }
  case MBK_OP_ADD: bin[0] = dy, bin[1] = fin[2], *n_in = d->u.add.row_scale ? 2 : 1; return 2;
  case MBK_OP_CONCAT: bin[0] = dy, *n_in = 1; return d->u.concat.count;
  default: bin[0] = dy, *n_in = 1; return 1;
  }
}

static void split(pair **ps, int32_t n, mbk_tensor **c, mbk_tensor **g) {
  for (int32_t i = 0; i < n; ++i) {
    c[i] = ps[i] ? ps[i]->c : NULL;
    g[i] = ps[i] ? ps[i]->g : NULL;
  }
}

static void run_op(const opcase *oc) {
  const mbk_op_desc *d = &oc->d;
  char what[160];
  mbk_op *co = NULL, *go = NULL;
  OK(CPU->op_create(CCTX, d, &co), CPU);
  OK(GPU->op_create(GCTX, d, &go), GPU);
  pair *fin[MBK_MAX_CONCAT];
  int32_t nfi = make_inputs(d, g_no_scale, fin);
  mbk_tensor *cin[MBK_MAX_CONCAT], *gin[MBK_MAX_CONCAT];
  split(fin, nfi, cin, gin);
  pair *y = pair_new();

  /* Inference. */
  OK(CPU->op_forward(co, 0, cin, nfi, &y->c, 1), CPU);
  OK(GPU->op_forward(go, 0, gin, nfi, &y->g, 1), GPU);
  snprintf(what, sizeof what, "%s: inference y", oc->name);
  compare_tensors(what, y->c, y->g, TOL);

  /* Training forward, backward; twice, the second time for determinism and mallocs. */
  float *first[2 + MBK_MAX_CONCAT] = {NULL};
  pair *dy = NULL, *outs[MBK_MAX_CONCAT];
  int32_t nbo = 0;
  for (int pass = 0; pass < 2; ++pass) {
    /* Synchronised BatchNorm shifts its sums by the running mean (API 13), which the first
     * pass updated: the rerun starts from the same running statistics again. */
    if (pass == 1 && d->type == MBK_OP_BATCHNORM && d->u.bn.reduce)
      for (int k = 3; k < 5; ++k) {
        OK(CPU->tensor_upload(fin[k]->c, 1, fin[k]->dims, fin[k]->host), CPU);
        OK(GPU->tensor_upload(fin[k]->g, 1, fin[k]->dims, fin[k]->host), GPU);
      }
    int before = g_mallocs;
    OK(CPU->op_forward(co, 1, cin, nfi, &y->c, 1), CPU);
    OK(GPU->op_forward(go, 1, gin, nfi, &y->g, 1), GPU);
    if (!dy) {
      int64_t yd[MBK_MAX_DIMS];
      int32_t yn = mbk_op_out_dims(d, yd);
      dy = pair_random(yn, yd, F_UNIF);
    }
    pair *bin[MBK_MAX_CONCAT + 1];
    int32_t nbi = 0;
    nbo = backward_args(d, fin, dy, bin, &nbi);
    for (int32_t i = 0; pass == 0 && i < nbo; ++i) {
      int absent = (d->type == MBK_OP_CONV2D && i == 2 && !d->u.conv.bias) ||
                   (d->type == MBK_OP_DECONV2D && i == 2 && !d->u.deconv.bias) ||
                   (d->type == MBK_OP_LINEAR && i == 2 && !d->u.linear.bias);
      outs[i] = absent ? NULL : pair_new();
    }
    mbk_tensor *cbi[MBK_MAX_CONCAT + 1], *gbi[MBK_MAX_CONCAT + 1], *cbo[MBK_MAX_CONCAT],
        *gbo[MBK_MAX_CONCAT];
    split(bin, nbi, cbi, gbi);
    split(outs, nbo, cbo, gbo);
    OK(CPU->op_backward(co, cbi, nbi, cbo, nbo), CPU);
    OK(GPU->op_backward(go, gbi, nbi, gbo, nbo), GPU);
    if (pass == 0) {
      snprintf(what, sizeof what, "%s: training y", oc->name);
      compare_tensors(what, y->c, y->g, TOL);
      if (d->type == MBK_OP_BATCHNORM) {
        snprintf(what, sizeof what, "%s: running_mean", oc->name);
        compare_tensors(what, fin[3]->c, fin[3]->g, TOL);
        snprintf(what, sizeof what, "%s: running_var", oc->name);
        compare_tensors(what, fin[4]->c, fin[4]->g, TOL);
      }
      for (int32_t i = 0; i < nbo; ++i) {
        if (!outs[i]) continue;
        snprintf(what, sizeof what, "%s: backward output %d", oc->name, (int)i);
        compare_tensors(what, outs[i]->c, outs[i]->g, TOL);
        first[i] = snapshot(outs[i]->g);
      }
      first[MBK_MAX_CONCAT + 1] = snapshot(y->g);
    } else {
      CHECK(g_mallocs == before, "%s: the second training step called cudaMalloc %d time(s)",
            oc->name, g_mallocs - before);
      snprintf(what, sizeof what, "%s: training y", oc->name);
      expect_same(what, y->g, first[MBK_MAX_CONCAT + 1]);
      for (int32_t i = 0; i < nbo; ++i) {
        if (!outs[i]) continue;
        snprintf(what, sizeof what, "%s: backward output %d", oc->name, (int)i);
        expect_same(what, outs[i]->g, first[i]);
      }
    }
  }
  /* Each optional gradient alone (the others NULL) must be what it is with the rest. */
  if (nbo > 1 && mbk_op_arg_optional(d, 1, 1, 0)) {
    pair *bin[MBK_MAX_CONCAT + 1];
    int32_t nbi = 0;
    backward_args(d, fin, dy, bin, &nbi);
    mbk_tensor *cbi[MBK_MAX_CONCAT + 1], *gbi[MBK_MAX_CONCAT + 1];
    split(bin, nbi, cbi, gbi);
    for (int32_t i = 0; i < nbo; ++i) {
      if (!outs[i]) continue;
      mbk_tensor *gbo[MBK_MAX_CONCAT] = {NULL};
      pair *alone = pair_new();
      gbo[i] = alone->g;
      OK(GPU->op_backward(go, gbi, nbi, gbo, nbo), GPU);
      snprintf(what, sizeof what, "%s: backward output %d alone", oc->name, (int)i);
      compare_tensors(what, outs[i]->c, alone->g, TOL);
    }
  }
  for (size_t i = 0; i < sizeof first / sizeof first[0]; ++i) free(first[i]);
  CPU->op_free(co);
  GPU->op_free(go);
  pairs_free();
}

static void test_ops(void) {
  const int64_t c3[3] = {2, 3, 1}, c2[2] = {4, 9};
  const int64_t sh1[1] = {2}, sw1[1] = {4}, sh2[2] = {2, 3}, sw2[2] = {2, 5};
  const opcase cases[] = {
      {"conv 3x3 s1 p1 bias", conv(2, 3, 9, 7, 5, 3, 3, 1, 1, 1, 1, 1)},
      {"conv 7x7 s2 p3 (stem)", conv(3, 4, 11, 10, 6, 7, 7, 2, 2, 3, 3, 0)},
      {"conv 1x1 s2 (downsample)", conv(2, 8, 7, 7, 16, 1, 1, 2, 2, 0, 0, 0)},
      {"conv 3x2 s(2,1) p(1,0) bias", conv(1, 5, 6, 5, 3, 3, 2, 2, 1, 1, 0, 1)},
      {"conv 3x3 64ch", conv(4, 64, 15, 15, 64, 3, 3, 1, 1, 1, 1, 0)},
      {"conv groups = 1 (API 10)", conv_g1(conv(2, 3, 9, 7, 5, 3, 3, 1, 1, 1, 1, 1))},
      {"batchnorm 4-D", bnorm(4, 3, 5, 4, 3, 0)},
      {"batchnorm 4-D relu", bnorm(4, 2, 7, 5, 5, 1)},
      {"batchnorm 2-D", bnorm(2, 7, 6, 1, 1, 0)},
      {"batchnorm 2-D relu", bnorm(2, 9, 3, 1, 1, 1)},
      {"relu 4-D", base_desc(MBK_OP_RELU, 4, 2, 3, 5, 7)},
      {"relu 2-D", base_desc(MBK_OP_RELU, 2, 5, 11, 1, 1)},
      {"maxpool 3x3 s2 p1", maxpool(2, 3, 9, 8, 3, 2, 1)},
      {"maxpool 2x2 s2", maxpool(1, 2, 7, 7, 2, 2, 0)},
      {"gavgpool", base_desc(MBK_OP_GAVGPOOL, 4, 3, 5, 4, 3)},
      {"gavgpool 1x1", base_desc(MBK_OP_GAVGPOOL, 4, 2, 7, 1, 1)},
      {"linear bias", linear(5, 7, 3, 1)},
      {"linear no bias", linear(1, 13, 9, 0)},
      {"linear 33x64->17", linear(33, 64, 17, 1)},
      {"add 4-D", base_desc(MBK_OP_ADD, 4, 2, 3, 5, 4)},
      {"add 2-D", base_desc(MBK_OP_ADD, 2, 3, 7, 1, 1)},
      {"concat 4-D x3", concat(4, 2, 5, 3, 3, c3)},
      {"concat 2-D x2", concat(2, 3, 1, 1, 2, c2)},
      {"upsample nearest x2", upsample(2, 3, 5, 7, 10, 14, MBK_UPSAMPLE_NEAREST)},
      {"upsample nearest x(3,1)", upsample(1, 4, 3, 4, 9, 4, MBK_UPSAMPLE_NEAREST)},
      {"upsample bilinear x2", upsample(2, 3, 5, 7, 10, 14, MBK_UPSAMPLE_BILINEAR)},
      {"upsample bilinear x(4,3) 17ch", upsample(1, 17, 6, 5, 24, 15, MBK_UPSAMPLE_BILINEAR)},
      {"upsample bilinear x1", upsample(2, 2, 4, 5, 4, 5, MBK_UPSAMPLE_BILINEAR)},
      {"upsample bilinear 8x8 -> 15x15", upsample(2, 3, 8, 8, 15, 15, MBK_UPSAMPLE_BILINEAR)},
      {"upsample bilinear 3x5 -> 5x13", upsample(1, 4, 3, 5, 5, 13, MBK_UPSAMPLE_BILINEAR)},
      {"deconv k2 s2 bias", deconv(2, 3, 5, 4, 4, 2, 2, 0, 0, 1)},
      {"deconv k3 s1 p1", deconv(1, 5, 4, 5, 3, 3, 1, 1, 0, 0)},
      {"deconv k3 s2 p1 op1 bias", deconv(2, 4, 3, 5, 6, 3, 2, 1, 1, 1)},
      {"deconv k4 s2 p1 64ch", deconv(3, 64, 8, 8, 32, 4, 2, 1, 0, 1)},
      /* Contract API 10-13 (the ConvNeXt-V2 ops, cross-attention, synchronised BN). */
      {"conv depthwise 7x7 p3 bias (API 10)",
       grouped(conv(2, 8, 9, 7, 8, 7, 7, 1, 1, 3, 3, 1), 8)},
      {"conv groups 2 3x3 p1", grouped(conv(1, 6, 5, 5, 4, 3, 3, 1, 1, 1, 1, 0), 2)},
      {"conv groups 3 3x3 s2 bias", grouped(conv(2, 6, 8, 7, 9, 3, 3, 2, 2, 1, 1, 1), 3)},
      {"conv depthwise 64ch", grouped(conv(2, 64, 14, 14, 64, 7, 7, 1, 1, 3, 3, 1), 64)},
      {"layernorm 4-D", lnorm(4, 2, 8, 3, 3, 1e-6f)},
      {"layernorm 4-D odd", lnorm(4, 3, 5, 7, 5, 1e-5f)},
      {"layernorm 2-D", lnorm(2, 4, 8, 1, 1, 1e-6f)},
      {"layernorm 2-D 96ch", lnorm(2, 5, 96, 1, 1, 1e-6f)},
      {"gelu 4-D", base_desc(MBK_OP_GELU, 4, 2, 3, 5, 7)},
      {"gelu 2-D", base_desc(MBK_OP_GELU, 2, 5, 11, 1, 1)},
      {"grn", grn(2, 8, 3, 3)},
      {"grn odd", grn(3, 5, 4, 7)},
      {"grn 1x1", grn(2, 6, 1, 1)},
      {"attn 1 source 2 heads (API 11)", attn(2, 8, 3, 3, 2, 1, sh1, sw1)},
      {"attn 2 sources 4 heads", attn(2, 16, 4, 4, 4, 2, sh2, sw2)},
      {"attn 2 sources 1 head", attn(3, 6, 2, 3, 1, 2, sh2, sw2)},
      {"add per-sample scale 4-D (API 12)", scaled_add(4, 3, 4, 5, 3)},
      {"add per-sample scale 2-D", scaled_add(2, 4, 7, 1, 1)},
      {"batchnorm sync 4-D (API 13)", bnorm_sync(4, 3, 5, 4, 3, 0)},
      {"batchnorm sync 4-D relu", bnorm_sync(4, 2, 7, 5, 5, 1)},
      {"batchnorm sync 2-D", bnorm_sync(2, 7, 6, 1, 1, 0)},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    const int sync = cases[i].d.type == MBK_OP_BATCHNORM && cases[i].d.u.bn.reduce;
    memset(&g_group, 0, sizeof g_group);
    g_group.c = cases[i].d.c;
    run_op(&cases[i]);
    /* Two training forwards and two backwards on each backend, one reduce each; none in
     * inference or in the optional-output pass (batch norm has none). */
    if (sync)
      CHECK(g_group.fwd_calls == 4 && g_group.bwd_calls == 4,
            "%s: reduce called %d times in forward, %d in backward (expected 4, 4)",
            cases[i].name, g_group.fwd_calls, g_group.bwd_calls);
  }
  const opcase no_scale = {"add per-sample scale, s NULL", scaled_add(4, 2, 3, 4, 4)};
  g_no_scale = 1;
  run_op(&no_scale);
  g_no_scale = 0;
}

/* Synchronised BatchNorm (API 13) whose reduce fails: the pass fails with the reduce's
 * MSC_E_COMM and message, a failed forward leaves the running statistics alone, and the
 * op works again once the group does. */
static void test_sync_bn_failure(void) {
  mbk_op_desc d = bnorm_sync(4, 2, 5, 3, 4, 1);
  memset(&g_group, 0, sizeof g_group);
  g_group.c = d.c;
  mbk_op *go = NULL;
  OK(GPU->op_create(GCTX, &d, &go), GPU);
  pair *in[5];
  make_inputs(&d, 0, in);
  pair *y = pair_new(), *dy = pair_random(4, in[0]->dims, F_UNIF);
  pair *dx = pair_new(), *dg = pair_new(), *db = pair_new();
  mbk_tensor *cin[5], *gin[5];
  split(in, 5, cin, gin);
  g_group.fail = 1;
  msc_status st = GPU->op_forward(go, 1, gin, 5, &y->g, 1);
  CHECK(st == MSC_E_COMM && strstr(msc_last_error(), "the group is gone"),
        "failing reduce in forward: status %d, '%s'", (int)st, msc_last_error());
  float *rm = download(GPU, in[3]->g, (size_t)d.c), *rv = download(GPU, in[4]->g, (size_t)d.c);
  CHECK(memcmp(rm, in[3]->host, (size_t)d.c * sizeof(float)) == 0 &&
            memcmp(rv, in[4]->host, (size_t)d.c * sizeof(float)) == 0,
        "failing reduce: the running statistics changed");
  g_group.fail = 0;
  OK(GPU->op_forward(go, 1, gin, 5, &y->g, 1), GPU);
  mbk_tensor *bin[3] = {in[0]->g, in[1]->g, dy->g}, *bout[3] = {dx->g, dg->g, db->g};
  g_group.fail = 1;
  st = GPU->op_backward(go, bin, 3, bout, 3);
  CHECK(st == MSC_E_COMM, "failing reduce in backward: status %d", (int)st);
  g_group.fail = 0;
  OK(GPU->op_backward(go, bin, 3, bout, 3), GPU);
  CHECK(g_group.fwd_calls == 1 && g_group.bwd_calls == 1,
        "sync batchnorm: %d forward and %d backward reductions, expected 1 and 1",
        g_group.fwd_calls, g_group.bwd_calls);
  free(rm), free(rv);
  GPU->op_free(go);
  pairs_free();
}

/* ---- a ConvNeXt-V2 block, chained ----------------------------------------------------------- */

/* One op on both backends. */
typedef struct dual_op {
  mbk_op *c, *g;
} dual_op;

static dual_op dual_make(mbk_op_desc d) {
  dual_op o;
  OK(CPU->op_create(CCTX, &d, &o.c), CPU);
  OK(GPU->op_create(GCTX, &d, &o.g), GPU);
  return o;
}

static void dual_free(dual_op o) {
  CPU->op_free(o.c);
  GPU->op_free(o.g);
}

/* Forward (training) or backward of o on both backends; NULL pairs stay NULL. */
static void dual_run(dual_op o, int backward, pair **in, int32_t n_in, pair **out,
                     int32_t n_out) {
  mbk_tensor *ci[MBK_MAX_CONCAT + 1], *gi[MBK_MAX_CONCAT + 1], *co[MBK_MAX_CONCAT],
      *go[MBK_MAX_CONCAT];
  split(in, n_in, ci, gi);
  split(out, n_out, co, go);
  if (backward) {
    OK(CPU->op_backward(o.c, ci, n_in, co, n_out), CPU);
    OK(GPU->op_backward(o.g, gi, n_in, go, n_out), GPU);
  } else {
    OK(CPU->op_forward(o.c, 1, ci, n_in, co, n_out), CPU);
    OK(GPU->op_forward(o.g, 1, gi, n_in, go, n_out), GPU);
  }
}

/* ConvNeXt-V2's Block as lib/model/model_graph.c builds it (convnext_block): dwconv 7×7
 * (groups = C) → LayerNorm → pwconv1 (1×1, C → 4C) → GELU → GRN → pwconv2 (4C → C), then
 * x + s[n]·branch. Training forward, then backward from a random dy through every op
 * (the two paths to x summed by an ADD): the output, dx and every parameter gradient
 * against the CPU. The GRN's gamma and beta are random, not ConvNeXt's zeros, so that the
 * GRN takes part. */
static void test_convnext_block(void) {
  const int64_t N = 3, C = 8, H = 7, W = 6, C4 = 4 * C;
  const int64_t xd[4] = {N, C, H, W}, x4d[4] = {N, C4, H, W}, cd[1] = {C}, c4d[1] = {C4};
  const int64_t wdw[4] = {C, 1, 7, 7}, w1[4] = {C4, C, 1, 1}, w2[4] = {C, C4, 1, 1};
  dual_op dw = dual_make(grouped(conv(N, C, H, W, C, 7, 7, 1, 1, 3, 3, 1), (int32_t)C));
  dual_op ln = dual_make(lnorm(4, N, C, H, W, 1e-6f));
  dual_op pw1 = dual_make(conv(N, C, H, W, C4, 1, 1, 1, 1, 0, 0, 1));
  dual_op ge = dual_make(base_desc(MBK_OP_GELU, 4, N, C4, H, W));
  dual_op gr = dual_make(grn(N, C4, H, W));
  dual_op pw2 = dual_make(conv(N, C4, H, W, C, 1, 1, 1, 1, 0, 0, 1));
  dual_op dp = dual_make(scaled_add(4, N, C, H, W));
  dual_op sum = dual_make(base_desc(MBK_OP_ADD, 4, N, C, H, W));
  pair *x = pair_random(4, xd, F_UNIF), *s = drop_scale(N);
  /* Parameters: [0..1] dwconv, [2..3] LN, [4..5] pwconv1, [6..7] GRN, [8..9] pwconv2. */
  pair *p[10] = {pair_random(4, wdw, F_UNIF), pair_random(1, cd, F_UNIF),
                 pair_random(1, cd, F_POS),   pair_random(1, cd, F_UNIF),
                 pair_random(4, w1, F_UNIF),  pair_random(1, c4d, F_UNIF),
                 pair_random(1, c4d, F_UNIF), pair_random(1, c4d, F_UNIF),
                 pair_random(4, w2, F_UNIF),  pair_random(1, cd, F_UNIF)};
  pair *y[7], *g[7], *dp_[10], *dx_short = pair_new(), *dx = pair_new();
  for (int i = 0; i < 7; ++i) y[i] = pair_new(), g[i] = pair_new();
  for (int i = 0; i < 10; ++i) dp_[i] = pair_new();
  /* Forward: y[0] dwconv, y[1] LN, y[2] pwconv1, y[3] GELU, y[4] GRN, y[5] pwconv2, y[6]. */
  pair *a[3];
  a[0] = x, a[1] = p[0], a[2] = p[1], dual_run(dw, 0, a, 3, &y[0], 1);
  a[0] = y[0], a[1] = p[2], a[2] = p[3], dual_run(ln, 0, a, 3, &y[1], 1);
  a[0] = y[1], a[1] = p[4], a[2] = p[5], dual_run(pw1, 0, a, 3, &y[2], 1);
  dual_run(ge, 0, &y[2], 1, &y[3], 1);
  a[0] = y[3], a[1] = p[6], a[2] = p[7], dual_run(gr, 0, a, 3, &y[4], 1);
  a[0] = y[4], a[1] = p[8], a[2] = p[9], dual_run(pw2, 0, a, 3, &y[5], 1);
  a[0] = x, a[1] = y[5], a[2] = s, dual_run(dp, 0, a, 3, &y[6], 1);
  compare_tensors("convnext block: y", y[6]->c, y[6]->g, TOL);
  /* Backward: g[6] = dL/dy, then each op's input gradient g[k] and its parameters'. */
  pair *dy = pair_random(4, xd, F_UNIF), *o[3];
  a[0] = dy, a[1] = s, o[0] = dx_short, o[1] = g[5], dual_run(dp, 1, a, 2, o, 2);
  a[0] = y[4], a[1] = p[8], a[2] = g[5], o[0] = g[4], o[1] = dp_[8], o[2] = dp_[9];
  dual_run(pw2, 1, a, 3, o, 3);
  a[0] = y[3], a[1] = p[6], a[2] = g[4], o[0] = g[3], o[1] = dp_[6], o[2] = dp_[7];
  dual_run(gr, 1, a, 3, o, 3);
  a[0] = y[2], a[1] = g[3], dual_run(ge, 1, a, 2, &g[2], 1);
  a[0] = y[1], a[1] = p[4], a[2] = g[2], o[0] = g[1], o[1] = dp_[4], o[2] = dp_[5];
  dual_run(pw1, 1, a, 3, o, 3);
  a[0] = y[0], a[1] = p[2], a[2] = g[1], o[0] = g[0], o[1] = dp_[2], o[2] = dp_[3];
  dual_run(ln, 1, a, 3, o, 3);
  a[0] = x, a[1] = p[0], a[2] = g[0], o[0] = g[6], o[1] = dp_[0], o[2] = dp_[1];
  dual_run(dw, 1, a, 3, o, 3);
  a[0] = dx_short, a[1] = g[6], dual_run(sum, 0, a, 2, &dx, 1);
  compare_tensors("convnext block: dx", dx->c, dx->g, TOL);
  static const char *const names[10] = {
      "dwconv.weight", "dwconv.bias", "norm.weight", "norm.bias",      "pwconv1.weight",
      "pwconv1.bias",  "grn.gamma",   "grn.beta",    "pwconv2.weight", "pwconv2.bias"};
  char what[96];
  for (int i = 0; i < 10; ++i) {
    snprintf(what, sizeof what, "convnext block: d %s", names[i]);
    compare_tensors(what, dp_[i]->c, dp_[i]->g, TOL);
  }
  (void)x4d;
  dual_op all[8] = {dw, ln, pw1, ge, gr, pw2, dp, sum};
  for (int i = 0; i < 8; ++i) dual_free(all[i]);
  pairs_free();
}

/* A batch norm whose running statistics live in another context, as a model's do: the
 * values must be there when that context reads them. */
static void test_foreign_running_stats(void) {
  mbk_ctx *model = NULL;
  mbk_ctx_params p = {sizeof p, 0, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  OK(GPU->ctx_create(&p, &model), GPU);
  mbk_op_desc d = bnorm(4, 4, 16, 8, 8, 1);
  mbk_op *co = NULL, *go = NULL;
  OK(CPU->op_create(CCTX, &d, &co), CPU);
  OK(GPU->op_create(GCTX, &d, &go), GPU);
  pair *in[5];
  make_inputs(&d, 0, in);
  /* Replace the GPU's running statistics by tensors of the other context. */
  mbk_tensor *rm = NULL, *rv = NULL;
  OK(GPU->tensor_create(model, &rm), GPU);
  OK(GPU->tensor_create(model, &rv), GPU);
  OK(GPU->tensor_upload(rm, 1, in[3]->dims, in[3]->host), GPU);
  OK(GPU->tensor_upload(rv, 1, in[4]->dims, in[4]->host), GPU);
  pair *y = pair_new();
  mbk_tensor *cin[5], *gin[5];
  split(in, 5, cin, gin);
  gin[3] = rm, gin[4] = rv;
  for (int step = 0; step < 3; ++step) {
    OK(CPU->op_forward(co, 1, cin, 5, &y->c, 1), CPU);
    OK(GPU->op_forward(go, 1, gin, 5, &y->g, 1), GPU);
  }
  /* Read through the owner's context, with no synchronisation of GCTX in between. */
  compare_tensors("foreign running_mean", in[3]->c, rm, TOL);
  compare_tensors("foreign running_var", in[4]->c, rv, TOL);
  CPU->op_free(co);
  GPU->op_free(go);
  GPU->tensor_free(rm);
  GPU->tensor_free(rv);
  pairs_free();
  GPU->ctx_free(model);
}

/* ---- loss terms --------------------------------------------------------------------------- */

static void compare_value(const char *what, double c, double g) {
  CHECK(fabs(c - g) <= TOL_LOSS_VALUE * fmax(1.0, fabs(c)), "%s: value cuda %.17g, cpu %.17g",
        what, g, c);
}

/* Runs desc on both backends twice (weights w1 then w2) into zeroed gradients. */
static void run_loss(const char *name, mbk_loss_desc desc, pair *x, pair *x2, double w1,
                     double w2) {
  pair *gx = pair_new(), *gx2 = x2 ? pair_new() : NULL;
  OK(CPU->tensor_zero(gx->c, x->ndim, x->dims), CPU);
  OK(GPU->tensor_zero(gx->g, x->ndim, x->dims), GPU);
  if (x2) {
    OK(CPU->tensor_zero(gx2->c, 2, x2->dims), CPU);
    OK(GPU->tensor_zero(gx2->g, 2, x2->dims), GPU);
  }
  char what[160];
  for (int k = 0; k < 2; ++k) {
    desc.weight = k ? w2 : w1;
    double vc = -1, vg = -2;
    OK(CPU->loss(CCTX, &desc, x->c, x2 ? x2->c : NULL, &vc, gx->c, x2 ? gx2->c : NULL), CPU);
    OK(GPU->loss(GCTX, &desc, x->g, x2 ? x2->g : NULL, &vg, gx->g, x2 ? gx2->g : NULL), GPU);
    snprintf(what, sizeof what, "%s (call %d)", name, k + 1);
    compare_value(what, vc, vg);
  }
  snprintf(what, sizeof what, "%s: gradient", name);
  compare_tensors(what, gx->c, gx->g, TOL);
  if (x2) {
    snprintf(what, sizeof what, "%s: gradient 2", name);
    compare_tensors(what, gx2->c, gx2->g, TOL);
  }
}

static pair *rows(int64_t n, int64_t d) {
  int64_t dims[2] = {n, d};
  return pair_random(2, dims, F_UNIF);
}

static uint8_t *random_labels(int64_t n, int64_t c, double p) {
  uint8_t *y = malloc((size_t)(n * c));
  if (!y) exit(1);
  for (int64_t i = 0; i < n * c; ++i) y[i] = unit() < p;
  return y;
}

static void test_losses(void) {
  mbk_loss_desc d;
  memset(&d, 0, sizeof d);
  d.type = MBK_LOSS_NTXENT, d.n = 3, d.row0 = 2, d.d = 5, d.tau = 0.2f;
  run_loss("NT-Xent small, row0 2", d, rows(10, 5), NULL, 0.5, 1.0);
  d.n = 128, d.row0 = 0, d.d = 64, d.tau = 0.1f;
  run_loss("NT-Xent 2x128x64", d, rows(256, 64), NULL, 1.0, 0.25);

  memset(&d, 0, sizeof d);
  d.type = MBK_LOSS_INFONCE, d.n = 3, d.row0 = 4, d.d = 5, d.tau = 0.3f;
  run_loss("InfoNCE small, row0 4", d, rows(10, 5), rows(10, 5), 2.0, 1.0);
  d.n = 100, d.row0 = 1, d.d = 33, d.tau = 0.07f;
  run_loss("InfoNCE 100x33", d, rows(101, 33), rows(105, 33), 1.0, 1.0);

  memset(&d, 0, sizeof d);
  const int32_t keys[5] = {6, 1, 3, 0, 3}; /* row 3 twice: its gradients add up */
  const uint8_t ky[5 * 3] = {1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1};
  d.type = MBK_LOSS_MULSUPCON, d.n = 5, d.d = 4, d.c = 3, d.tau = 0.5f, d.per_anchor = 1;
  d.rows = keys, d.labels = ky;
  run_loss("MulSupCon gathered rows, per anchor", d, rows(8, 4), NULL, 1.0, 0.5);
  int32_t many[40];
  for (int i = 0; i < 40; ++i) many[i] = (i * 7) % 50;
  uint8_t *y40 = random_labels(40, 7, 0.3);
  d.n = 40, d.d = 16, d.c = 7, d.tau = 0.2f, d.per_anchor = 0, d.rows = many, d.labels = y40;
  run_loss("MulSupCon 40 of 50 rows", d, rows(50, 16), NULL, 1.0, 1.0);
  const uint8_t none[2 * 2] = {1, 0, 0, 1}; /* no class with two positives: R = 0 */
  d.n = 2, d.c = 2, d.rows = keys, d.labels = none;
  run_loss("MulSupCon without rows", d, rows(8, 16), NULL, 1.0, 1.0);

  memset(&d, 0, sizeof d);
  uint8_t y6[6 * 3] = {1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1};
  const uint8_t mask[6] = {1, 1, 0, 1, 0, 1};
  y6[2 * 3] = 7; /* an unlabelled row's labels are never read */
  d.type = MBK_LOSS_BCE, d.n = 6, d.row0 = 1, d.d = 3, d.c = 3, d.labels = y6,
  d.row_mask = mask;
  run_loss("BCE masked, row0 1", d, rows(8, 3), NULL, 1.0, 3.0);
  uint8_t *y64 = random_labels(64, 19, 0.2);
  d.n = 64, d.row0 = 0, d.d = 19, d.c = 19, d.labels = y64, d.row_mask = NULL;
  run_loss("BCE 64x19", d, rows(64, 19), NULL, 1.0, 1.0);

  /* Per-pixel terms on 4-D logits (backend API 5): images row0.. of N × C × H × W. */
  const float cw[4] = {1.0f, 0.5f, 2.0f, 0.0f}, pw[4] = {1.0f, 3.0f, 0.5f, 2.0f};
  int32_t *pt = malloc(3 * 64 * 64 * sizeof(int32_t));
  float *soft = malloc(3 * 4 * 64 * 64 * sizeof(float));
  uint8_t *pm = random_labels(3 * 4 * 64, 64, 0.8);
  if (!pt || !soft) exit(1);
  for (int i = 0; i < 3 * 64 * 64; ++i) pt[i] = unit() < 0.15 ? -1 : (int32_t)(unit() * 4) % 4;
  for (int i = 0; i < 3 * 4 * 64 * 64; ++i) soft[i] = (float)unit();
  const int64_t small[4] = {3, 4, 5, 6}, big[4] = {3, 4, 64, 64};
  memset(&d, 0, sizeof d);
  d.type = MBK_LOSS_PIXEL_CE, d.n = 2, d.row0 = 1, d.c = 4, d.h = 5, d.w = 6;
  d.targets = pt, d.ignore_index = -1, d.class_weight = cw;
  run_loss("pixel CE weighted, row0 1", d, pair_random(4, small, F_UNIF), NULL, 1.0, 0.5);
  d.n = 3, d.row0 = 0, d.h = 64, d.w = 64, d.class_weight = NULL;
  run_loss("pixel CE 3x4x64x64", d, pair_random(4, big, F_UNIF), NULL, 1.0, 1.0);
  d.type = MBK_LOSS_DICE;
  run_loss("Dice 3x4x64x64", d, pair_random(4, big, F_UNIF), NULL, 1.0, 2.0);
  d.n = 2, d.row0 = 1, d.h = 5, d.w = 6;
  run_loss("Dice, row0 1", d, pair_random(4, small, F_UNIF), NULL, 0.5, 1.0);
  memset(&d, 0, sizeof d);
  d.type = MBK_LOSS_PIXEL_BCE, d.n = 2, d.row0 = 1, d.c = 4, d.h = 5, d.w = 6;
  d.soft_targets = soft, d.pixel_mask = pm, d.pos_weight = pw;
  run_loss("pixel BCE masked, pos_weight, row0 1", d, pair_random(4, small, F_UNIF), NULL, 1.0,
           3.0);
  d.n = 3, d.row0 = 0, d.h = 64, d.w = 64, d.pixel_mask = NULL, d.pos_weight = NULL;
  run_loss("pixel BCE 3x4x64x64", d, pair_random(4, big, F_UNIF), NULL, 1.0, 1.0);
  for (int i = 0; i < 3 * 64 * 64; ++i) pt[i] = -1; /* nothing counted: 0, zero gradient */
  memset(&d, 0, sizeof d);
  d.type = MBK_LOSS_DICE, d.n = 3, d.c = 4, d.h = 5, d.w = 6, d.targets = pt,
  d.ignore_index = -1;
  run_loss("Dice, every pixel ignored", d, pair_random(4, small, F_UNIF), NULL, 1.0, 1.0);
  free(pt), free(soft), free(pm);

  /* A NaN in the rows: MSC_E_NUMERICAL, and the gradient stays as it was. */
  pair *x = rows(6, 4), *g = pair_new();
  x->host[9] = NAN;
  OK(GPU->tensor_upload(x->g, 2, x->dims, x->host), GPU);
  OK(GPU->tensor_zero(g->g, 2, x->dims), GPU);
  memset(&d, 0, sizeof d);
  d.type = MBK_LOSS_NTXENT, d.n = 3, d.d = 4, d.tau = 0.5f, d.weight = 1.0;
  double v = 42.0;
  msc_status st = GPU->loss(GCTX, &d, x->g, NULL, &v, g->g, NULL);
  CHECK(st == MSC_E_NUMERICAL && v == 42.0, "NaN input: status %d, value %g", (int)st, v);
  CHECK(strstr(msc_last_error(), "cuda") != NULL, "NaN input: message '%s'", msc_last_error());
  float *gv = download(GPU, g->g, 24);
  int zero = 1;
  for (int i = 0; i < 24; ++i) zero &= gv[i] == 0.f;
  CHECK(zero, "NaN input: the gradient was written");
  free(gv), free(y40), free(y64);
  pairs_free();
}

/* ---- optimiser ------------------------------------------------------------------------- */

/* optim_update against optim_core.h on the host, over a few steps. */
static void run_optim(const char *name, mbk_optim_desc d, int use_m1, int use_m2, int steps) {
  const int64_t n = d.n, dims[1] = {n};
  float *p = malloc((size_t)n * sizeof(float)), *g = malloc((size_t)n * sizeof(float));
  float *m = calloc((size_t)n, sizeof(float)), *v = calloc((size_t)n, sizeof(float));
  if (!p || !g || !m || !v) exit(1);
  fill(p, (size_t)n, F_UNIF);
  mbk_tensor *tp = NULL, *tg = NULL, *tm = NULL, *tv = NULL;
  OK(GPU->tensor_create(GCTX, &tp), GPU);
  OK(GPU->tensor_create(GCTX, &tg), GPU);
  OK(GPU->tensor_create(GCTX, &tm), GPU);
  OK(GPU->tensor_create(GCTX, &tv), GPU);
  OK(GPU->tensor_upload(tp, 1, dims, p), GPU);
  OK(GPU->tensor_zero(tm, 1, dims), GPU);
  OK(GPU->tensor_zero(tv, 1, dims), GPU);
  for (int s = 0; s < steps; ++s) {
    fill(g, (size_t)n, F_UNIF);
    OK(GPU->tensor_upload(tg, 1, dims, g), GPU);
    d.step = s;
    d.grad_scale = s == 1 ? 0.5 : 1.0;
    OK(GPU->optim_update(GCTX, &d, tp, tg, use_m1 ? tm : NULL, use_m2 ? tv : NULL), GPU);
    /* The host: the clipping factor's float rounding, then the core's elements. */
    if (d.grad_scale != 1.0)
      for (int64_t i = 0; i < n; ++i) g[i] = g[i] * (float)d.grad_scale;
    if (d.type == MBK_OPTIM_ADAMW) {
      msci_adamw_coef k =
          msci_adamw_coefs(d.lr, d.beta1, d.beta2, d.eps, d.weight_decay, d.step);
      for (int64_t i = 0; i < n; ++i) msci_adamw_elem(&p[i], &m[i], &v[i], g[i], &k);
    } else {
      for (int64_t i = 0; i < n; ++i)
        msci_sgd_elem(&p[i], use_m1 ? &m[i] : NULL, g[i], (float)d.lr, (float)d.weight_decay,
                      (float)d.momentum, d.nesterov);
    }
  }
  float *gp = download(GPU, tp, (size_t)n), *gm = download(GPU, tm, (size_t)n);
  float *gv = download(GPU, tv, (size_t)n);
  double worst = 0.0;
  int64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) {
    worst = fmax(worst, fabs((double)gp[i] - (double)p[i]) / fmax(1e-3, fabs((double)p[i])));
    differ += gp[i] != p[i] || (use_m1 && gm[i] != m[i]) || (use_m2 && gv[i] != v[i]);
  }
  CHECK(worst <= 1e-6, "%s: parameters differ from the host by %.3g (relative)", name, worst);
  /* Same code, no FMA contraction, correctly rounded sqrt and division: same bits. */
  CHECK(differ == 0, "%s: %lld of %lld elements not bit-identical to the host", name,
        (long long)differ, (long long)n);
  free(p), free(g), free(m), free(v), free(gp), free(gm), free(gv);
  GPU->tensor_free(tp), GPU->tensor_free(tg), GPU->tensor_free(tm), GPU->tensor_free(tv);
}

static void test_optim(void) {
  CHECK(GPU->optim_update != NULL, "the CUDA backend has no optim_update");
  if (!GPU->optim_update) return;
  mbk_optim_desc d;
  memset(&d, 0, sizeof d);
  d.type = MBK_OPTIM_ADAMW, d.n = 1037, d.lr = 1e-3, d.beta1 = 0.9, d.beta2 = 0.999;
  d.eps = 1e-8, d.weight_decay = 0.05;
  run_optim("AdamW with decay", d, 1, 1, 4);
  d.weight_decay = 0.0, d.lr = 3e-2;
  run_optim("AdamW without decay", d, 1, 1, 3);
  memset(&d, 0, sizeof d);
  d.type = MBK_OPTIM_SGD, d.n = 999, d.lr = 0.1, d.momentum = 0.9, d.nesterov = 1;
  d.weight_decay = 1e-4;
  run_optim("SGD nesterov", d, 1, 0, 3);
  d.momentum = 0.0, d.nesterov = 0;
  run_optim("SGD without momentum", d, 0, 0, 2);
  /* Errors: wrong sizes and a missing moment. */
  mbk_tensor *a = NULL;
  OK(GPU->tensor_create(GCTX, &a), GPU);
  int64_t dims[1] = {5};
  float z[5] = {0};
  OK(GPU->tensor_upload(a, 1, dims, z), GPU);
  d.type = MBK_OPTIM_ADAMW, d.n = 6;
  CHECK(GPU->optim_update(GCTX, &d, a, a, a, a) == MSC_E_SHAPE, "optim: wrong n accepted");
  d.n = 5;
  CHECK(GPU->optim_update(GCTX, &d, a, a, a, NULL) == MSC_E_INVALID_ARGUMENT,
        "optim: AdamW without m2 accepted");
  GPU->tensor_free(a);
}

/* grad_stats against the CPU backend (whose sum is the host's serial one): the same first
 * non-finite tensor, the sum of squares within a few double ulps (another order), and the
 * same bits when repeated. Sizes around the block size and above the partial-sum cap. */
static void test_grad_stats(void) {
  CHECK(GPU->grad_stats != NULL, "the CUDA backend has no grad_stats");
  if (!GPU->grad_stats) return;
  enum { NT = 7 };
  const int64_t sizes[NT] = {1, 255, 256, 257, 1037, 300007, 840};
  mbk_tensor *c[NT], *g[NT];
  float *x[NT];
  for (int i = 0; i < NT; ++i) {
    const int64_t dims[1] = {sizes[i]};
    x[i] = malloc((size_t)sizes[i] * sizeof(float));
    if (!x[i]) exit(1);
    fill(x[i], (size_t)sizes[i], F_SIGNED);
    OK(CPU->tensor_create(CCTX, &c[i]), CPU);
    OK(GPU->tensor_create(GCTX, &g[i]), GPU);
    OK(CPU->tensor_upload(c[i], 1, dims, x[i]), CPU);
    OK(GPU->tensor_upload(g[i], 1, dims, x[i]), GPU);
  }
  int32_t bc = 9, bg = 9;
  double sc = 0, sg = 0, sg2 = 0;
  OK(CPU->grad_stats(CCTX, (const mbk_tensor *const *)c, NT, &bc, &sc), CPU);
  OK(GPU->grad_stats(GCTX, (const mbk_tensor *const *)g, NT, &bg, &sg), GPU);
  OK(GPU->grad_stats(GCTX, (const mbk_tensor *const *)g, NT, &bg, &sg2), GPU);
  CHECK(bc == -1 && bg == -1, "grad_stats: first bad %d (cpu) %d (cuda), expected -1", bc, bg);
  CHECK(fabs(sg - sc) <= 1e-12 * sc, "grad_stats: sum %.17g (cuda), %.17g (cpu)", sg, sc);
  CHECK(memcmp(&sg, &sg2, sizeof sg) == 0, "grad_stats: not repeatable (%.17g, %.17g)", sg,
        sg2);
  OK(GPU->grad_stats(GCTX, (const mbk_tensor *const *)g, 0, &bg, &sg), GPU);
  CHECK(bg == -1 && sg == 0.0, "grad_stats: no tensors: %d, %g", bg, sg);
  /* A NaN in tensor 2, an infinity at the end of tensor 5. */
  x[2][17] = NAN;
  x[5][sizes[5] - 1] = INFINITY;
  for (int i = 2; i <= 5; i += 3) {
    const int64_t dims[1] = {sizes[i]};
    OK(CPU->tensor_upload(c[i], 1, dims, x[i]), CPU);
    OK(GPU->tensor_upload(g[i], 1, dims, x[i]), GPU);
  }
  for (int with_sum = 0; with_sum <= 1; ++with_sum) {
    OK(CPU->grad_stats(CCTX, (const mbk_tensor *const *)c, NT, &bc, with_sum ? &sc : NULL),
       CPU);
    OK(GPU->grad_stats(GCTX, (const mbk_tensor *const *)g, NT, &bg, with_sum ? &sg : NULL),
       GPU);
    CHECK(bc == 2 && bg == 2, "grad_stats: first bad %d (cpu) %d (cuda), expected 2", bc, bg);
    OK(GPU->grad_stats(GCTX, (const mbk_tensor *const *)g + 3, NT - 3, &bg,
                       with_sum ? &sg : NULL),
       GPU);
    CHECK(bg == 2, "grad_stats: the infinity: first bad %d, expected 2", bg);
  }
  for (int i = 0; i < NT; ++i) CPU->tensor_free(c[i]), GPU->tensor_free(g[i]), free(x[i]);
}

/* ---- errors ---------------------------------------------------------------------------- */

/* Descriptions and argument counts are checked by the core's frame (backend_call.c)
 * before the module sees them; shapes by the module. */
static void test_errors(void) {
  mbk_op_desc bad = linear(2, 3, 0, 0);
  msci_be_op *op = NULL;
  CHECK(msci_be_op_create(GPU, GCTX, &bad, &op) == MSC_E_INVALID_ARGUMENT && !op,
        "invalid description accepted");
  mbk_op_desc d = linear(2, 3, 4, 0);
  OK(msci_be_op_create(GPU, GCTX, &d, &op), GPU);
  int64_t wrong[2] = {2, 5};
  pair *x = pair_random(2, wrong, F_UNIF), *w = pair_new(), *y = pair_new();
  mbk_tensor *in[3] = {x->g, w->g, NULL};
  CHECK(msci_be_op_forward(op, 0, in, 3, &y->g, 1) == MSC_E_SHAPE, "wrong shape accepted");
  CHECK(strstr(msc_last_error(), "cuda: linear") != NULL, "message: '%s'", msc_last_error());
  CHECK(msci_be_op_forward(op, 0, in, 2, &y->g, 1) == MSC_E_INVALID_ARGUMENT, "wrong count");
  CHECK(strstr(msc_last_error(), "cuda: linear forward takes 3 inputs") != NULL,
        "message: '%s'", msc_last_error());
  float small[3];
  CHECK(GPU->tensor_download(x->g, small, 3) == MSC_E_BUFFER_TOO_SMALL, "small buffer");
  msci_be_op_free(op);
  GPU->op_free(NULL);
  GPU->tensor_free(NULL);
  GPU->ctx_free(NULL);
  pairs_free();
}

int main(void) {
  msc_set_log_callback(on_log, NULL, MSC_LOG_DEBUG);
  const int expect = getenv("MSC_TEST_EXPECT_CUDA") && atoi(getenv("MSC_TEST_EXPECT_CUDA"));
  if (msci_backend_resolve("cuda", &GPU, NULL) != MSC_OK) {
    printf("SKIP: the cuda backend is unavailable: %s\n", msc_last_error());
    return expect ? 1 : 77;
  }
  OK(mbk_cpu_init(msci_host(), &CPU), GPU);
  mbk_ctx_params p = {sizeof p, 0, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  OK(CPU->ctx_create(&p, &CCTX), CPU);
  OK(GPU->ctx_create(&p, &GCTX), GPU);
  test_ops();
  test_sync_bn_failure();
  test_convnext_block();
  test_foreign_running_stats();
  test_losses();
  test_optim();
  test_grad_stats();
  test_errors();
  CPU->ctx_free(CCTX);
  GPU->ctx_free(GCTX);
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
