/*
 * cpu_attn.c — multi-head scaled dot-product attention (API 11, MBK_OP_ATTN) of the query
 * tokens of q over the key/value tokens of S sources (lib/contract/backend.h, "ATTN").
 *
 * A token is the C channels at one position of NCHW, so head h of token i of sample n is
 * q[n, h·dh .. h·dh+dh−1, i] with dh = C/heads (stride H·W between channels). The token
 * counts of the cross-attention fusion are small (a 120-px patch through a ResNet ends
 * at 4×4 = 16 tokens), so plain OpenMP loops over the (sample, head) pairs do the work:
 * one pair's outputs and key/value gradients are its own channels of its own sample, so
 * the pairs never write the same element. Each query row is computed on its own (scores
 * of every key, softmax, weighted sum), which keeps the scratch at one row of scores per
 * pair instead of a token × token matrix. Sums are in double.
 *
 * Backward recomputes the attention weights P from q and k (no training forward) and
 * uses, per row i with s = q_i·k/√dh and P = softmax(s):
 *   dP_iκ = dy_i·v_κ,  ds_iκ = P_iκ (dP_iκ − Σ_κ' P_iκ' dP_iκ'),
 *   dq_i = Σ_κ ds_iκ k_κ /√dh,  dk_κ += ds_iκ q_i /√dh,  dv_κ += P_iκ dy_i.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define ATTN_ARGS (1 + 2 * MBK_MAX_ATTN_SOURCES)

typedef struct cpu_attn {
  mbk_op base;
  int64_t n, c, lq, heads, dh, lk; /* lk: the keys of every source together */
  int32_t sources;                 /* S */
  int64_t dims[ATTN_ARGS][4];      /* q, then k_j and v_j of each source */
  int64_t len[ATTN_ARGS];          /* tokens of each input */
  double *scratch;                 /* per (n, head) pair: 2·lk doubles */
  cpu_reorder r[ATTN_ARGS + 1];    /* conversions of the inputs (and dy) */
} cpu_attn;

static void attn_destroy(mbk_op *base) {
  cpu_attn *op = (cpu_attn *)base;
  for (int k = 0; k < ATTN_ARGS + 1; ++k) cpu_reorder_destroy(&op->r[k]);
  free(op->scratch);
  free(op);
}

/* Input k (0 = q, 2j+1 = k_j, 2j+2 = v_j; ATTN_ARGS = dy, q's shape) as plain float32. */
static msc_status plain_input(cpu_attn *op, const mbk_tensor *t, int k, const char *what,
                              const float **data) {
  const int64_t *dims = op->dims[k < ATTN_ARGS ? k : 0];
  CPU_CHECK(cpu_tensor_expect(t, 4, dims, "attn", what));
  dnnl_memory_desc_t plain;
  dnnl_memory_t m;
  void *p = NULL;
  CPU_CHECK(cpu_plain_md(4, dims, &plain));
  CPU_CHECK(cpu_view_as(op->base.ctx, t, &plain, &op->r[k], &m));
  CPU_TRY(dnnl_memory_get_data_handle(m, &p), "attn input");
  *data = p;
  return MSC_OK;
}

/* The inputs as plain arrays: x[0] = q, x[1 + 2j] = k_j, x[2 + 2j] = v_j. */
static msc_status gather_inputs(cpu_attn *op, mbk_tensor *const *in, const float **x) {
  static const char *const names[2] = {"k", "v"};
  CPU_CHECK(plain_input(op, in[0], 0, "q", &x[0]));
  for (int32_t k = 1; k < 1 + 2 * op->sources; ++k)
    CPU_CHECK(plain_input(op, in[k], k, names[(k - 1) % 2], &x[k]));
  return MSC_OK;
}

/* Element e of head h of token t of sample i of input k (an NCHW array of len[k] tokens). */
static inline size_t at(const cpu_attn *op, int k, int64_t i, int64_t h, int64_t e, int64_t t) {
  return ((size_t)i * (size_t)op->c + (size_t)(h * op->dh + e)) * (size_t)op->len[k] +
         (size_t)t;
}

/* Softmax of query row r of pair (i, h) over every key: p[0..lk). */
static void row_weights(const cpu_attn *op, const float *const *x, int64_t i, int64_t h,
                        int64_t r, double *p) {
  const double scale = 1.0 / sqrt((double)op->dh);
  double mx = -INFINITY;
  int64_t kappa = 0;
  for (int32_t j = 0; j < op->sources; ++j) {
    const int ki = 1 + 2 * j;
    for (int64_t t = 0; t < op->len[ki]; ++t, ++kappa) {
      double s = 0.0;
      for (int64_t e = 0; e < op->dh; ++e)
        s += (double)x[0][at(op, 0, i, h, e, r)] * (double)x[ki][at(op, ki, i, h, e, t)];
      p[kappa] = s * scale;
      if (p[kappa] > mx) mx = p[kappa];
    }
  }
  double z = 0.0;
  for (int64_t k = 0; k < op->lk; ++k) z += (p[k] = exp(p[k] - mx));
  for (int64_t k = 0; k < op->lk; ++k) p[k] /= z;
}

static msc_status attn_forward(mbk_op *base, int32_t training, mbk_tensor *const *in,
                               mbk_tensor *const *out) {
  (void)training; /* nothing to save: backward recomputes the weights */
  cpu_attn *op = (cpu_attn *)base;
  const float *x[ATTN_ARGS];
  CPU_CHECK(gather_inputs(op, in, x));
  dnnl_memory_desc_t plain;
  CPU_CHECK(cpu_plain_md(4, op->dims[0], &plain));
  CPU_CHECK(cpu_tensor_set(out[0], 4, op->dims[0], &plain));
  float *y = out[0]->data;
  cpu_ctx_threads(base->ctx);
#pragma omp parallel for schedule(static)
  for (int64_t pair = 0; pair < op->n * op->heads; ++pair) {
    const int64_t i = pair / op->heads, h = pair % op->heads;
    double *p = op->scratch + (size_t)pair * 2 * (size_t)op->lk;
    for (int64_t r = 0; r < op->lq; ++r) {
      row_weights(op, x, i, h, r, p);
      for (int64_t e = 0; e < op->dh; ++e) {
        double s = 0.0;
        int64_t kappa = 0;
        for (int32_t j = 0; j < op->sources; ++j) {
          const int vi = 2 + 2 * j;
          for (int64_t t = 0; t < op->len[vi]; ++t, ++kappa)
            s += p[kappa] * (double)x[vi][at(op, vi, i, h, e, t)];
        }
        y[at(op, 0, i, h, e, r)] = (float)s;
      }
    }
  }
  return MSC_OK;
}

static msc_status attn_backward(mbk_op *base, mbk_tensor *const *in, mbk_tensor *const *out) {
  cpu_attn *op = (cpu_attn *)base;
  const int32_t n_x = 1 + 2 * op->sources;
  const float *x[ATTN_ARGS], *dy;
  CPU_CHECK(gather_inputs(op, in, x));
  CPU_CHECK(plain_input(op, in[n_x], ATTN_ARGS, "dy", &dy));
  float *g[ATTN_ARGS] = {NULL}; /* the gradients asked for, zeroed (dk, dv accumulate) */
  for (int32_t k = 0; k < n_x; ++k) {
    if (!out[k]) continue;
    dnnl_memory_desc_t plain;
    CPU_CHECK(cpu_plain_md(4, op->dims[k], &plain));
    CPU_CHECK(cpu_tensor_set(out[k], 4, op->dims[k], &plain));
    g[k] = out[k]->data;
    memset(g[k], 0, (size_t)(op->n * op->c * op->len[k]) * sizeof(float));
  }
  const double scale = 1.0 / sqrt((double)op->dh);
  cpu_ctx_threads(base->ctx);
#pragma omp parallel for schedule(static)
  for (int64_t pair = 0; pair < op->n * op->heads; ++pair) {
    const int64_t i = pair / op->heads, h = pair % op->heads;
    double *p = op->scratch + (size_t)pair * 2 * (size_t)op->lk, *ds = p + op->lk;
    for (int64_t r = 0; r < op->lq; ++r) {
      row_weights(op, x, i, h, r, p);
      double pdp = 0.0; /* Σ_κ P dP */
      int64_t kappa = 0;
      for (int32_t j = 0; j < op->sources; ++j) {
        const int vi = 2 + 2 * j;
        for (int64_t t = 0; t < op->len[vi]; ++t, ++kappa) {
          double dp = 0.0;
          for (int64_t e = 0; e < op->dh; ++e) {
            const double d = dy[at(op, 0, i, h, e, r)];
            dp += d * (double)x[vi][at(op, vi, i, h, e, t)];
            if (g[vi]) g[vi][at(op, vi, i, h, e, t)] += (float)(p[kappa] * d);
          }
          ds[kappa] = dp;
          pdp += p[kappa] * dp;
        }
      }
      for (int64_t k = 0; k < op->lk; ++k) ds[k] = p[k] * (ds[k] - pdp) * scale;
      kappa = 0;
      for (int32_t j = 0; j < op->sources; ++j) {
        const int ki = 1 + 2 * j;
        for (int64_t t = 0; t < op->len[ki]; ++t, ++kappa)
          for (int64_t e = 0; e < op->dh; ++e) {
            if (g[0])
              g[0][at(op, 0, i, h, e, r)] += (float)(ds[kappa] * x[ki][at(op, ki, i, h, e, t)]);
            if (g[ki])
              g[ki][at(op, ki, i, h, e, t)] += (float)(ds[kappa] * x[0][at(op, 0, i, h, e, r)]);
          }
      }
    }
  }
  return MSC_OK;
}

static const mbk_op_vt attn_vt = {"attn", attn_forward, attn_backward, attn_destroy};

msc_status cpu_attn_create(mbk_ctx *ctx, const mbk_op_desc *d, mbk_op **out) {
  mbk_op *base;
  CPU_CHECK(mbk_op_alloc(cpu_host, "cpu", ctx, d, &attn_vt, sizeof(cpu_attn), &base));
  cpu_attn *op = (cpu_attn *)base;
  op->n = d->n, op->c = d->c, op->lq = d->h * d->w;
  op->heads = d->u.attn.heads, op->dh = d->c / d->u.attn.heads;
  op->sources = d->u.attn.sources;
  mbk_op_in_dims(d, op->dims[0]);
  op->len[0] = op->lq;
  op->lk = 0;
  for (int32_t j = 0; j < op->sources; ++j)
    for (int k = 1; k <= 2; ++k) {
      int64_t *dims = op->dims[2 * j + k];
      dims[0] = d->n, dims[1] = d->c, dims[2] = d->u.attn.src_h[j],
      dims[3] = d->u.attn.src_w[j];
      op->len[2 * j + k] = dims[2] * dims[3];
    }
  for (int32_t j = 0; j < op->sources; ++j) op->lk += op->len[1 + 2 * j];
  /* Per (sample, head) pair a row of weights and one of their gradients (backward). Made
   * here, so that steady training steps allocate nothing. */
  op->scratch = malloc((size_t)(op->n * op->heads) * 2 * (size_t)op->lk * sizeof(double));
  if (!op->scratch) {
    const long long pairs = (long long)(op->n * op->heads), keys = (long long)op->lk;
    attn_destroy(base);
    return cpu_host->fail(MSC_E_OUT_OF_MEMORY, "cpu: attn: scratch for %lld x 2 x %lld keys",
                          pairs, keys);
  }
  *out = base;
  return MSC_OK;
}
