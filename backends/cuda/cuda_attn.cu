/*
 * cuda_attn.cu — multi-head scaled dot-product attention (API 11, MBK_OP_ATTN; backend.h,
 * "ATTN") of the query tokens of q over the key/value tokens of S sources, as
 * backends/cpu/cpu_attn.c.
 *
 * A token is the C channels at one position of NCHW: head h of token t of sample i of an
 * input with L tokens is element ((i·C + h·dh + e)·L + t), e < dh = C/heads. The keys of
 * every source are taken together, source by source (κ runs over them). Plain kernels,
 * all sums in double, no atomics (the same bits on every run):
 *   forward, one thread per query row (i, h, r): the scores s_κ = q_r·k_κ/√dh, their
 *   softmax P (into a scratch row), then y_r = Σ_κ P_κ v_κ;
 *   backward, one thread per query row: P again (recomputed from q and k: no training
 *   forward), dP_κ = dy_r·v_κ, ds_κ = P_κ (dP_κ − Σ P dP)/√dh, kept with P in scratch
 *   (two rows of lk per query row), and dq_r = Σ_κ ds_κ k_κ; then one thread per key (i,
 *   h, κ): dv_κ = Σ_r P_rκ dy_r and dk_κ = Σ_r ds_rκ q_r.
 * Scratch is N·heads·lq·lk doubles in forward, twice that in backward: the fusion's
 * token counts are small (docs/model.md, cross-attention).
 */
#include <math.h>
#include <stdlib.h>

#include "cuda_internal.h"

/* The sources' tensors and sizes, by value to the kernels. */
typedef struct attn_src {
  const float *k[MBK_MAX_ATTN_SOURCES], *v[MBK_MAX_ATTN_SOURCES];
  float *dk[MBK_MAX_ATTN_SOURCES], *dv[MBK_MAX_ATTN_SOURCES]; /* backward; NULL: not asked */
  int64_t len[MBK_MAX_ATTN_SOURCES];                          /* tokens of source j */
  int32_t count;                                              /* S */
} attn_src;

typedef struct attn_shape {
  int64_t n, c, heads, dh, lq, lk;
} attn_shape;

typedef struct cu_attn {
  mbk_op base;
  attn_shape sh;
  int64_t q_dims[4], src_dims[MBK_MAX_ATTN_SOURCES][4];
  int64_t len[MBK_MAX_ATTN_SOURCES];
  int32_t sources;
  cu_buf scratch; /* double: P (and ds in backward), one row of lk per query row */
} cu_attn;

/* Source j and token t of key κ. */
__device__ void attn_key(const attn_src *s, int64_t kappa, int32_t *j, int64_t *t) {
  int32_t jj = 0;
  while (kappa >= s->len[jj]) kappa -= s->len[jj++];
  *j = jj;
  *t = kappa;
}

/* Element e of head h, token t, sample i of an input of len tokens. */
__device__ __forceinline__ int64_t attn_at(const attn_shape *sh, int64_t len, int64_t i,
                                           int64_t h, int64_t e, int64_t t) {
  return (i * sh->c + h * sh->dh + e) * len + t;
}

/* The softmax row P of query row r of (i, h) into p[0..lk). */
__device__ void attn_row(const float *q, const attn_src *s, const attn_shape *sh, int64_t i,
                         int64_t h, int64_t r, double *p) {
  const double scale = 1.0 / sqrt((double)sh->dh);
  double mx = -INFINITY;
  int64_t kappa = 0;
  for (int32_t j = 0; j < s->count; ++j)
    for (int64_t t = 0; t < s->len[j]; ++t, ++kappa) {
      double acc = 0.0;
      for (int64_t e = 0; e < sh->dh; ++e)
        acc += (double)q[attn_at(sh, sh->lq, i, h, e, r)] *
               (double)s->k[j][attn_at(sh, s->len[j], i, h, e, t)];
      p[kappa] = acc * scale;
      if (p[kappa] > mx) mx = p[kappa];
    }
  double z = 0.0;
  for (int64_t k = 0; k < sh->lk; ++k) z += (p[k] = exp(p[k] - mx));
  for (int64_t k = 0; k < sh->lk; ++k) p[k] /= z;
}

__global__ void k_attn_fwd(const float *q, attn_src s, attn_shape sh, double *scratch,
                           float *y) {
  const int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; /* (i·heads + h)·lq + r */
  if (row >= sh.n * sh.heads * sh.lq) return;
  const int64_t r = row % sh.lq, pair = row / sh.lq, h = pair % sh.heads, i = pair / sh.heads;
  double *p = scratch + row * sh.lk;
  attn_row(q, &s, &sh, i, h, r, p);
  for (int64_t e = 0; e < sh.dh; ++e) {
    double acc = 0.0;
    int64_t kappa = 0;
    for (int32_t j = 0; j < s.count; ++j)
      for (int64_t t = 0; t < s.len[j]; ++t, ++kappa)
        acc += p[kappa] * (double)s.v[j][attn_at(&sh, s.len[j], i, h, e, t)];
    y[attn_at(&sh, sh.lq, i, h, e, r)] = (float)acc;
  }
}

/* Per query row: P and ds into scratch (rows of 2·lk: P, then ds), and dq when asked. */
__global__ void k_attn_bwd_rows(const float *q, const float *dy, attn_src s, attn_shape sh,
                                double *scratch, float *dq) {
  const int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= sh.n * sh.heads * sh.lq) return;
  const int64_t r = row % sh.lq, pair = row / sh.lq, h = pair % sh.heads, i = pair / sh.heads;
  double *p = scratch + row * 2 * sh.lk, *ds = p + sh.lk;
  attn_row(q, &s, &sh, i, h, r, p);
  double pdp = 0.0;
  int64_t kappa = 0;
  for (int32_t j = 0; j < s.count; ++j)
    for (int64_t t = 0; t < s.len[j]; ++t, ++kappa) {
      double dp = 0.0;
      for (int64_t e = 0; e < sh.dh; ++e)
        dp += (double)dy[attn_at(&sh, sh.lq, i, h, e, r)] *
              (double)s.v[j][attn_at(&sh, s.len[j], i, h, e, t)];
      ds[kappa] = dp;
      pdp += p[kappa] * dp;
    }
  const double scale = 1.0 / sqrt((double)sh.dh);
  for (int64_t k = 0; k < sh.lk; ++k) ds[k] = p[k] * (ds[k] - pdp) * scale;
  if (!dq) return;
  for (int64_t e = 0; e < sh.dh; ++e) {
    double acc = 0.0;
    kappa = 0;
    for (int32_t j = 0; j < s.count; ++j)
      for (int64_t t = 0; t < s.len[j]; ++t, ++kappa)
        acc += ds[kappa] * (double)s.k[j][attn_at(&sh, s.len[j], i, h, e, t)];
    dq[attn_at(&sh, sh.lq, i, h, e, r)] = (float)acc;
  }
}

/* Per key (i, h, κ): dv_κ = Σ_r P_rκ dy_r, dk_κ = Σ_r ds_rκ q_r (each when asked). */
__global__ void k_attn_bwd_keys(const float *q, const float *dy, attn_src s, attn_shape sh,
                                const double *scratch) {
  const int64_t key = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; /* (i·heads + h)·lk + κ */
  if (key >= sh.n * sh.heads * sh.lk) return;
  const int64_t kappa = key % sh.lk, pair = key / sh.lk, h = pair % sh.heads,
                i = pair / sh.heads;
  int32_t j;
  int64_t t;
  attn_key(&s, kappa, &j, &t);
  const double *rows = scratch + pair * sh.lq * 2 * sh.lk; /* row r of the pair: rows + r·2lk */
  for (int64_t e = 0; e < sh.dh; ++e) {
    double gv = 0.0, gk = 0.0;
    for (int64_t r = 0; r < sh.lq; ++r) {
      const double *p = rows + r * 2 * sh.lk;
      gv += p[kappa] * (double)dy[attn_at(&sh, sh.lq, i, h, e, r)];
      gk += p[sh.lk + kappa] * (double)q[attn_at(&sh, sh.lq, i, h, e, r)];
    }
    const int64_t at = attn_at(&sh, s.len[j], i, h, e, t);
    if (s.dv[j]) s.dv[j][at] = (float)gv;
    if (s.dk[j]) s.dk[j][at] = (float)gk;
  }
}

static unsigned blocks_for(int64_t count) {
  return (unsigned)((count + CU_THREADS - 1) / CU_THREADS);
}

/* Checks q, k_j, v_j (in[0 .. 2S]) and fills s with their data. */
static msc_status gather(cu_attn *op, mbk_tensor *const *in, attn_src *s) {
  CU_CHECK(cu_tensor_expect(in[0], 4, op->q_dims, "attn", "q"));
  *s = attn_src();
  s->count = op->sources;
  for (int32_t j = 0; j < op->sources; ++j) {
    CU_CHECK(cu_tensor_expect(in[1 + 2 * j], 4, op->src_dims[j], "attn", "k"));
    CU_CHECK(cu_tensor_expect(in[2 + 2 * j], 4, op->src_dims[j], "attn", "v"));
    s->k[j] = in[1 + 2 * j]->data;
    s->v[j] = in[2 + 2 * j]->data;
    s->len[j] = op->len[j];
  }
  return MSC_OK;
}

static msc_status attn_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                               mbk_tensor *const *out) {
  (void)training; /* nothing to save: backward recomputes the weights */
  cu_attn *op = (cu_attn *)base;
  mbk_ctx *ctx = base->ctx;
  attn_src s;
  CU_CHECK(gather(op, in, &s));
  const int64_t rows = op->sh.n * op->sh.heads * op->sh.lq;
  CU_CHECK(cu_buf_ensure(ctx, &op->scratch, (size_t)(rows * op->sh.lk) * sizeof(double)));
  CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->q_dims));
  k_attn_fwd<<<blocks_for(rows), CU_THREADS, 0, ctx->stream>>>(
      in[0]->data, s, op->sh, (double *)op->scratch.p, out[0]->data);
  CU_LAUNCHED("attn forward");
  return MSC_OK;
}

static msc_status attn_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cu_attn *op = (cu_attn *)base;
  mbk_ctx *ctx = base->ctx;
  const int32_t n_x = 1 + 2 * op->sources;
  attn_src s;
  CU_CHECK(gather(op, in, &s));
  CU_CHECK(cu_tensor_expect(in[n_x], 4, op->q_dims, "attn", "dy"));
  int any_kv = 0;
  for (int32_t j = 0; j < op->sources; ++j)
    for (int k = 0; k < 2; ++k) {
      mbk_tensor *t = out[1 + 2 * j + k];
      if (!t) continue;
      CU_CHECK(cu_tensor_set(ctx, t, 4, op->src_dims[j]));
      (k ? s.dv : s.dk)[j] = t->data;
      any_kv = 1;
    }
  if (out[0]) CU_CHECK(cu_tensor_set(ctx, out[0], 4, op->q_dims));
  if (!out[0] && !any_kv) return MSC_OK;
  const int64_t rows = op->sh.n * op->sh.heads * op->sh.lq;
  CU_CHECK(cu_buf_ensure(ctx, &op->scratch, (size_t)(2 * rows * op->sh.lk) * sizeof(double)));
  double *scratch = (double *)op->scratch.p;
  k_attn_bwd_rows<<<blocks_for(rows), CU_THREADS, 0, ctx->stream>>>(
      in[0]->data, in[n_x]->data, s, op->sh, scratch, out[0] ? out[0]->data : NULL);
  CU_LAUNCHED("attn backward (queries)");
  if (!any_kv) return MSC_OK;
  k_attn_bwd_keys<<<blocks_for(op->sh.n * op->sh.heads * op->sh.lk), CU_THREADS, 0,
                    ctx->stream>>>(in[0]->data, in[n_x]->data, s, op->sh, scratch);
  CU_LAUNCHED("attn backward (keys and values)");
  return MSC_OK;
}

static void attn_destroy(mbk_op *base) {
  cu_attn *op = (cu_attn *)base;
  cu_buf_release(base->ctx, &op->scratch);
  free(op);
}

static const mbk_op_vt attn_vt = {"attn", attn_forward, attn_backward, attn_destroy};

msc_status cu_attn_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CU_CHECK(mbk_op_alloc(cuda_host, "cuda", ctx, d, &attn_vt, sizeof(cu_attn), &base));
  cu_attn *op = (cu_attn *)base;
  mbk_op_in_dims(d, op->q_dims);
  op->sources = d->u.attn.sources;
  op->sh.n = d->n, op->sh.c = d->c, op->sh.heads = d->u.attn.heads;
  op->sh.dh = d->c / d->u.attn.heads, op->sh.lq = d->h * d->w, op->sh.lk = 0;
  for (int32_t j = 0; j < op->sources; ++j) {
    int64_t *dims = op->src_dims[j];
    dims[0] = d->n, dims[1] = d->c, dims[2] = d->u.attn.src_h[j], dims[3] = d->u.attn.src_w[j];
    op->len[j] = dims[2] * dims[3];
    op->sh.lk += op->len[j];
  }
  *out = base;
  return MSC_OK;
}
