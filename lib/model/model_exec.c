/*
 * model_exec.c — executors: the model's graph prepared for one batch size on a backend
 * context of its own, and the pool that lets several threads run one model at once.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/backend_call.h"
#include "common/internal.h"
#include "common/rng.h"
#include "model/model.h"

void msci_exec_free(const msc_model *m, msci_exec *e) {
  if (!e) return;
  const mbk_iface *be = m->be;
  for (int32_t i = 0; i < m->graph.n_nodes; ++i) {
    if (e->ops) msci_be_op_free(e->ops[i]);
  }
  for (int32_t i = 0; e->acc_ops && i < m->graph.n_nodes; ++i) msci_be_op_free(e->acc_ops[i]);
  for (int32_t i = 0; i < e->n_gpool; ++i) msci_be_tensor_free(be, e->gpool[i]);
  for (int32_t i = 0; e->pgrad && i < m->graph.n_params; ++i)
    msci_be_tensor_free(be, e->pgrad[i]);
  free(e->grad);
  free(e->has_grad);
  free(e->gpool);
  free(e->gfree);
  free(e->acc_ops);
  free(e->pgrad);
  free(e->pgrad_valid);
  for (int32_t i = 0; i < e->n_slots; ++i) msci_be_tensor_free(be, e->slot[i]);
  for (int32_t i = 0; i < MSCI_MAX_MODALITIES; ++i) msci_be_tensor_free(be, e->input[i]);
  for (int32_t i = 0; i < MSCI_MAX_MODALITIES; ++i) msci_be_tensor_free(be, e->zero_feat[i]);
  for (int32_t i = 0; e->drop_scale && i < m->graph.n_nodes; ++i)
    msci_be_tensor_free(be, e->drop_scale[i]);
  free(e->drop_scale);
  free(e->ops);
  free(e->act);
  free(e->slot);
  free(e->last_use);
  free(e->free_slots);
  free(e->owner);
  free(e->slot_node);
  free(e->saved);
  free(e->rel_head);
  free(e->rel_next);
  free(e->stage);
  free(e->need);
  free(e->mark);
  free(e->fz_conv);
  free(e->fz_res);
  free(e->fz_skip);
  for (int32_t i = 0; i < MSCI_EXEC_HOST_SLOTS; ++i) free(e->host[i]);
  msci_be_ctx_free(be, e->ctx);
  free(e);
}

static msc_status exec_create(msc_model *m, int64_t n, int32_t training, msci_exec **out) {
  const mbk_iface *be = m->be;
  msci_exec *e = calloc(1, sizeof *e);
  if (!e) return msci_fail(MSC_E_OUT_OF_MEMORY, "executor");
  e->n = n;
  e->training = training;
  int32_t nn = m->graph.n_nodes;
  e->ops = calloc((size_t)nn, sizeof *e->ops);
  e->act = calloc((size_t)nn, sizeof *e->act);
  e->slot = calloc((size_t)nn, sizeof *e->slot);
  e->last_use = calloc((size_t)nn, sizeof *e->last_use);
  e->free_slots = calloc((size_t)nn, sizeof *e->free_slots);
  e->owner = calloc((size_t)nn, sizeof *e->owner);
  e->need = calloc((size_t)nn, 1);
  e->mark = calloc((size_t)nn, 1);
  msc_status st = (e->ops && e->act && e->slot && e->last_use && e->free_slots && e->owner &&
                   e->need && e->mark)
                      ? MSC_OK
                      : msci_fail(MSC_E_OUT_OF_MEMORY, "executor");
  mbk_ctx_params p = {sizeof p, m->threads, 0, m->precision, m->conv_algo};
  if (st == MSC_OK) st = msci_be_ctx_create(be, &p, &e->ctx);
  if (st == MSC_OK && training) {
    int32_t np = m->graph.n_params;
    e->slot_node = calloc((size_t)nn, sizeof *e->slot_node);
    e->saved = calloc((size_t)nn, 1);
    e->rel_head = calloc((size_t)nn, sizeof *e->rel_head);
    e->rel_next = calloc((size_t)nn, sizeof *e->rel_next);
    e->grad = calloc((size_t)nn, sizeof *e->grad);
    e->has_grad = calloc((size_t)nn, 1);
    /* At most one live gradient per node plus one being summed in: 2 per node. */
    e->cap_gpool = 2 * nn + 2;
    e->gpool = calloc((size_t)e->cap_gpool, sizeof *e->gpool);
    e->gfree = calloc((size_t)e->cap_gpool, sizeof *e->gfree);
    e->acc_ops = calloc((size_t)nn, sizeof *e->acc_ops);
    e->pgrad = calloc((size_t)np, sizeof *e->pgrad);
    e->pgrad_valid = calloc((size_t)np, 1);
    e->drop_scale = calloc((size_t)nn, sizeof *e->drop_scale);
    if (!e->grad || !e->has_grad || !e->gpool || !e->gfree || !e->acc_ops || !e->pgrad ||
        !e->pgrad_valid || !e->slot_node || !e->saved || !e->rel_head || !e->rel_next ||
        !e->drop_scale)
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "training executor");
    for (int32_t i = 0; st == MSC_OK && i < np; ++i)
      st = msci_be_tensor_create(be, e->ctx, &e->pgrad[i]);
  }
  for (int32_t i = 0; st == MSC_OK && i < m->cfg.n_mod; ++i)
    st = msci_be_tensor_create(be, e->ctx, &e->input[i]);
  if (st == MSC_OK) st = msci_fuse_plan(m, e);
  if (st != MSC_OK) {
    msci_exec_free(m, e);
    return st;
  }
  *out = e;
  return MSC_OK;
}

msc_status msci_exec_acquire(msc_model *m, int64_t n, int32_t training, msci_exec **out) {
  pthread_mutex_lock(&m->pool_lock);
  msci_exec **link = &m->pool;
  while (*link && ((*link)->n != n || (*link)->training != training)) link = &(*link)->next;
  msci_exec *e = *link;
  if (e) *link = e->next;
  pthread_mutex_unlock(&m->pool_lock);
  if (e) {
    e->next = NULL;
    *out = e;
    return MSC_OK;
  }
  /* Made outside the lock: preparing primitives takes a while and needs no sharing. */
  return exec_create(m, n, training, out);
}

void msci_exec_release(msc_model *m, msci_exec *e) {
  if (!e) return;
  pthread_mutex_lock(&m->pool_lock);
  e->next = m->pool;
  m->pool = e;
  pthread_mutex_unlock(&m->pool_lock);
}

static mbk_tensor *value_tensor(const msci_exec *e, int32_t v) {
  return v >= 0 ? e->act[v] : e->input[-1 - v];
}

/* 1 when node i runs in this call: needed, and not inside a later fused step. */
static int runs(const msci_exec *e, const uint8_t *need, int32_t i) {
  return need[i] && !(e->fz_skip && e->fz_skip[i]);
}

/* A fused step's residual value when its slot may take the step's output (the sum
 * post-op then adds in place): nothing reads it later and the conv does not read it. */
static int32_t inplace_residual(const msc_model *m, const msci_exec *e, const uint8_t *need,
                                int32_t i) {
  if (!e->fz_conv || e->fz_conv[i] < 0 || e->fz_res[i] == MSCI_FZ_NONE) return -1;
  int32_t r = e->fz_res[i];
  if (r < 0 || !need[r] || e->last_use[r] != i) return -1;
  return m->graph.nodes[e->fz_conv[i]].in[0] == r ? -1 : r;
}

/* Inference: gives every node that runs an output tensor from the slots, reusing a slot
 * once the last reader of its previous value has run. The assignment depends only on
 * `need`, so repeated calls reuse the same tensors (and their layouts) every time. */
static msc_status assign_slots(msc_model *m, msci_exec *e, const uint8_t *need) {
  const msci_graph *g = &m->graph;
  int32_t n = g->n_nodes, n_free = 0, used = 0, v[MBK_MAX_CONCAT];
  for (int32_t i = 0; i < n; ++i) e->last_use[i] = runs(e, need, i) ? i : -1;
  for (int32_t i = 0; i < n; ++i)
    if (runs(e, need, i))
      for (int32_t k = 0, nr = msci_fuse_reads(m, e, i, v); k < nr; ++k)
        if (v[k] >= 0 && need[v[k]]) e->last_use[v[k]] = i;
  /* A node nobody reads is an output of this call: it keeps its slot to the end. */
  for (int32_t i = 0; i < n; ++i)
    if (runs(e, need, i) && e->last_use[i] == i) e->last_use[i] = n;
  int32_t *stack = e->free_slots, *owner = e->owner;
  for (int32_t i = 0; i < n; ++i) {
    if (!runs(e, need, i)) continue;
    int32_t res = inplace_residual(m, e, need, i);
    int32_t s = res >= 0 ? owner[res] : n_free > 0 ? stack[--n_free] : used++;
    if (res >= 0) e->last_use[res] = -1; /* its slot passes to this node's output */
    if (s >= e->n_slots) {
      MSCI_TRY(msci_be_tensor_create(m->be, e->ctx, &e->slot[s]));
      e->n_slots = s + 1;
    }
    owner[i] = s;
    e->act[i] = e->slot[s];
    /* Release the inputs whose last reader is this node (after taking the output, so an
     * op never writes into its own input, but for the residual handed over above). */
    for (int32_t k = 0, nr = msci_fuse_reads(m, e, i, v); k < nr; ++k) {
      /* An input not computed here (an absent modality's features) holds no slot. */
      if (v[k] < 0 || !need[v[k]] || e->last_use[v[k]] != i) continue;
      e->last_use[v[k]] = -1; /* released once even if read twice by this node */
      stack[n_free++] = owner[v[k]];
    }
  }
  return MSC_OK;
}

/* Training: the outputs some backward reads, which live to the end of the step. The
 * input x of conv2d, deconv2d, linear, batchnorm, layernorm, GELU and GRN (their
 * backward takes x), a ReLU's
 * own output (msci_exec_backward gives its backward y for x: y > 0 exactly where x > 0,
 * so the mask is the same), and the values the loss terms read. Every other output (a
 * batch norm's before its ReLU, a residual sum's, a pooling's input) is dropped after
 * its last reader in the forward pass, as in inference. */
static void mark_saved(const msc_model *m, const uint8_t *need, msci_exec *e) {
  const msci_graph *g = &m->graph;
  uint8_t *saved = e->saved;
  memset(saved, 0, (size_t)g->n_nodes);
  /* The last backward reader of a saved value is its first reader in node order (the
   * backward pass runs the nodes in reverse): last[v] until the lists are built. */
  int32_t *last = e->rel_next;
  for (int32_t i = 0; i < g->n_nodes; ++i) last[i] = e->rel_head[i] = -1;
  for (int32_t i = 0; i < g->n_nodes; ++i) {
    if (!need[i]) continue;
    const msci_node *nd = &g->nodes[i];
    int32_t from = 0, to = 0; /* the inputs its backward reads: in[from..to) */
    switch (nd->desc.type) {
    case MBK_OP_CONV2D:
    case MBK_OP_DECONV2D:
    case MBK_OP_LINEAR:
    case MBK_OP_BATCHNORM:
    case MBK_OP_LAYERNORM:
    case MBK_OP_GELU:
    case MBK_OP_GRN: to = 1; break;
    case MBK_OP_ATTN: to = nd->n_in; break; /* backward recomputes the weights */
    case MBK_OP_RELU:
      saved[i] = 1;
      if (last[i] < 0) last[i] = i;
      break;
    default: break;
    }
    for (int32_t k = from; k < to; ++k) {
      int32_t v = nd->in[k];
      if (v < 0) continue;
      saved[v] = 1;
      if (last[v] < 0) last[v] = i;
    }
  }
  /* The values the loss terms read stay to the end of the step (and are never released:
   * the objective reads them before the backward pass, the caller's results after). */
  int32_t targets[MSCI_MAX_MODALITIES + 3], nt = 0;
  for (int32_t k = 0; k < m->cfg.n_mod; ++k) targets[nt++] = g->proj[k];
  targets[nt++] = g->fused_proj;
  targets[nt++] = g->logits;
  targets[nt++] = g->seg_logits;
  for (int32_t k = 0; k < nt; ++k)
    if (targets[k] >= 0 && targets[k] < g->n_nodes)
      saved[targets[k]] = 1, last[targets[k]] = -1;
  /* Release lists: value v joins the list of its last backward reader. */
  for (int32_t v = 0; v < g->n_nodes; ++v) {
    int32_t r = last[v];
    last[v] = -1;
    if (r < 0) continue;
    e->rel_next[v] = e->rel_head[r];
    e->rel_head[r] = v;
  }
}

static int same_shape(const msci_graph *g, int32_t a, int32_t b) {
  const msci_node *x = &g->nodes[a], *y = &g->nodes[b];
  if (x->ndim != y->ndim) return 0;
  for (int32_t k = 0; k < x->ndim; ++k)
    if (x->out[k] != y->out[k]) return 0;
  return 1;
}

/* Training: a free slot that last held an output of node i's shape, so that its backend
 * tensor keeps its storage and layout from step to step; else a new slot. */
static msc_status take_slot_like(msc_model *m, msci_exec *e, int32_t i, int32_t *n_free,
                                 int32_t *used, int32_t *out) {
  int32_t *stack = e->free_slots;
  for (int32_t k = *n_free - 1; k >= 0; --k) {
    if (!same_shape(&m->graph, e->slot_node[stack[k]], i)) continue;
    *out = stack[k];
    stack[k] = stack[--*n_free];
    return MSC_OK;
  }
  int32_t s = (*used)++;
  if (s >= e->n_slots) {
    MSCI_TRY(msci_be_tensor_create(m->be, e->ctx, &e->slot[s]));
    e->n_slots = s + 1;
  }
  *out = s;
  return MSC_OK;
}

/* Training: the input whose slot node i's output may take (ReLU's x, ADD's a; API 14
 * lets both run in place), or -1: an input that no backward reads (ReLU's backward takes
 * its own y, docs/memory.md) and nothing reads after node i. */
static int32_t forward_in_place(const msc_model *m, const msci_exec *e, const uint8_t *need,
                                int32_t i) {
  const msci_node *nd = &m->graph.nodes[i];
  if (nd->desc.type != MBK_OP_RELU && nd->desc.type != MBK_OP_ADD) return -1;
  const int32_t r = nd->in[0];
  if (r < 0 || !need[r] || e->saved[r] || e->last_use[r] != i) return -1;
  if (nd->desc.type == MBK_OP_ADD && nd->in[1] == r) return -1; /* a + a */
  return r;
}

/* Training: as assign_slots, except that the outputs a backward reads (mark_saved) keep
 * their slots to the end of the step, and slots are reused only between outputs of one
 * shape. The assignment depends only on `need`: every step gets the same tensors. */
static msc_status assign_train_slots(msc_model *m, msci_exec *e, const uint8_t *need) {
  const msci_graph *g = &m->graph;
  int32_t n = g->n_nodes, n_free = 0, used = 0;
  mark_saved(m, need, e);
  for (int32_t i = 0; i < n; ++i) e->last_use[i] = need[i] ? i : -1;
  for (int32_t i = 0; i < n; ++i)
    if (need[i])
      for (int32_t k = 0; k < g->nodes[i].n_in; ++k)
        if (g->nodes[i].in[k] >= 0 && need[g->nodes[i].in[k]])
          e->last_use[g->nodes[i].in[k]] = i;
  for (int32_t i = 0; i < n; ++i)
    if (need[i] && (e->last_use[i] == i || e->saved[i])) e->last_use[i] = n;
  for (int32_t i = 0; i < n; ++i) {
    if (!need[i]) continue;
    int32_t s = 0, r = forward_in_place(m, e, need, i);
    if (r >= 0) {
      s = e->owner[r];
      e->last_use[r] = -1; /* its slot passes to this node's output */
    } else {
      MSCI_TRY(take_slot_like(m, e, i, &n_free, &used, &s));
    }
    e->owner[i] = s;
    e->slot_node[s] = i;
    e->act[i] = e->slot[s];
    for (int32_t k = 0; k < g->nodes[i].n_in; ++k) {
      int32_t v = g->nodes[i].in[k];
      if (v < 0 || !need[v] || e->last_use[v] != i) continue;
      e->last_use[v] = -1;
      e->free_slots[n_free++] = e->owner[v];
    }
  }
  e->n_free = n_free;
  return MSC_OK;
}

/* Whether row-scaled ADD node i drops paths in this pass: a training executor with a
 * stochastic-depth rate, a block with a share of it, an encoder that trains. */
static int drops(const msc_model *m, const msci_exec *e, int32_t i) {
  const msci_node *nd = &m->graph.nodes[i];
  return e->training && e->drop_path > 0 && nd->desc.type == MBK_OP_ADD &&
         nd->desc.u.add.row_scale && nd->drop_frac > 0 &&
         !(e->frozen_encoders && i <= m->graph.last_encoder_node);
}

/* Stochastic depth's draw for node i (timm's drop_path, scale_by_keep): row r keeps the
 * branch with probability keep = 1 − rate·drop_frac, scaled by 1/keep, else 0. Row r is
 * view r / S of sample r mod S (S = drop_samples), so the draw of a sample depends on
 * (seed, step, global sample, view, node) only, not on the batch it came in. */
static msc_status drop_draw(msc_model *m, msci_exec *e, int32_t i) {
  const int64_t rows = e->n, S = e->drop_samples > 0 ? e->drop_samples : e->n;
  float *s = msci_exec_host(e, MSCI_EXEC_HOST_DROP, (size_t)rows * sizeof(float));
  if (!s) return MSC_E_OUT_OF_MEMORY;
  const double keep = 1.0 - e->drop_path * (double)m->graph.nodes[i].drop_frac;
  for (int64_t r = 0; r < rows; ++r) {
    const uint64_t sample = (uint64_t)(e->drop_sample0 + r % S), view = (uint64_t)(r / S);
    msci_rng g;
    msci_rng_seed(&g,
                  e->drop_seed ^ (0xd1b54a32d192ed03ull * (sample + 1)) ^
                      (0x8cb92ba72f3d8dd7ull * (view + 1)) ^
                      (0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)),
                  "drop_path");
    s[r] = msci_rng_uniform(&g) < keep ? (float)(1.0 / keep) : 0.0f;
  }
  if (!e->drop_scale[i]) MSCI_TRY(msci_be_tensor_create(m->be, e->ctx, &e->drop_scale[i]));
  return msci_be_tensor_upload(m->be, e->drop_scale[i], 1, &rows, s);
}

int msci_exec_node_trains(const msc_model *m, const msci_exec *e, int32_t i) {
  return e->training && !(e->frozen_encoders && i <= m->graph.last_encoder_node);
}

/* The training-mode batch norms carry the executor's reduction (synchronised BatchNorm,
 * API 13) in their description: when it changed since they were made, they are remade. */
static void bn_reduce_prepare(msc_model *m, msci_exec *e) {
  if (e->bn_reduce == e->bn_made && e->bn_reduce_user == e->bn_made_user) return;
  for (int32_t i = 0; i < m->graph.n_nodes; ++i)
    if (m->graph.nodes[i].desc.type == MBK_OP_BATCHNORM && e->ops[i]) {
      msci_be_op_free(e->ops[i]);
      e->ops[i] = NULL;
    }
  e->bn_made = e->bn_reduce;
  e->bn_made_user = e->bn_reduce_user;
}

msc_status msci_exec_forward(msc_model *m, msci_exec *e, const uint8_t *need) {
  const mbk_iface *be = m->be;
  const msci_graph *g = &m->graph;
  MSCI_TRY(msci_int8_prepare(m, e));
  bn_reduce_prepare(m, e);
  MSCI_TRY(e->training ? assign_train_slots(m, e, need) : assign_slots(m, e, need));
  for (int32_t i = 0; i < g->n_nodes; ++i) {
    if (!runs(e, need, i)) continue;
    if (m->calib.active) { /* int8 calibration: the input of the step's conv or linear */
      int32_t c = e->fz_conv && e->fz_conv[i] >= 0 ? e->fz_conv[i] : i;
      int32_t t = g->nodes[c].desc.type;
      if (t == MBK_OP_CONV2D || t == MBK_OP_LINEAR)
        MSCI_TRY(msci_int8_observe(m, c, value_tensor(e, g->nodes[c].in[0])));
    }
    if (e->fz_conv && e->fz_conv[i] >= 0) {
      MSCI_TRY(msci_fuse_forward(m, e, i));
      continue;
    }
    const msci_node *nd = &g->nodes[i];
    /* Frozen encoders run in inference mode: running statistics stay as they are. */
    const int32_t training = msci_exec_node_trains(m, e, i);
    if (!e->ops[i]) {
      mbk_op_desc d = nd->desc;
      d.n = e->n;
      if (d.type == MBK_OP_BATCHNORM && training) {
        d.u.bn.reduce = e->bn_reduce;
        d.u.bn.reduce_user = e->bn_reduce_user;
      }
      msci_int8_desc(m, e, i, &d);
      MSCI_TRY(msci_be_op_create(be, e->ctx, &d, &e->ops[i]));
    }
    mbk_tensor *in[MBK_MAX_CONCAT + MSCI_MAX_NODE_PARAMS];
    int32_t k = 0;
    for (int32_t j = 0; j < nd->n_in; ++j)
      in[k++] = i == g->fused && e->absent[j] ? e->zero_feat[j] : value_tensor(e, nd->in[j]);
    for (int32_t j = 0; j < nd->n_param; ++j) in[k++] = g->params[nd->param[j]].t;
    /* Convolutions have no bias: their third input is an explicit NULL. */
    if (nd->desc.type == MBK_OP_CONV2D && !nd->desc.u.conv.bias) in[k++] = NULL;
    /* A residual sum with stochastic depth: the per-sample scale, or none (plain sum). */
    if (nd->desc.type == MBK_OP_ADD && nd->desc.u.add.row_scale) {
      int d = drops(m, e, i);
      if (d) MSCI_TRY(drop_draw(m, e, i));
      in[k++] = d ? e->drop_scale[i] : NULL;
    }
    MSCI_TRY(msci_be_op_forward(e->ops[i], training, in, k, &e->act[i], 1));
    if (i == g->fused && e->fuse_scale) MSCI_TRY(msci_exec_scale_fused(m, e, e->act[i]));
  }
  return MSC_OK;
}

msc_status msci_exec_set_fuse_mask(msc_model *m, msci_exec *e, int64_t rows,
                                   const uint8_t *keep) {
  const int32_t nm = m->cfg.n_mod;
  e->fuse_scale = NULL;
  int all = 1;
  for (int64_t r = 0; r < rows; ++r) {
    int32_t present = 0;
    for (int32_t k = 0; k < nm; ++k) present += keep[r * nm + k] != 0;
    if (present == 0)
      return msci_fail(MSC_E_INVALID_ARGUMENT, "row %lld of the batch has no modality",
                       (long long)r);
    all &= present == nm;
  }
  if (all) return MSC_OK;
  /* Scales and the h_f buffer of msci_exec_scale_fused, in one workspace. */
  size_t count = (size_t)rows * (size_t)nm + (size_t)rows * (size_t)m->graph.fused_dim;
  float *scale = msci_exec_host(e, MSCI_EXEC_HOST_FUSE, count * sizeof(float));
  if (!scale) return MSC_E_OUT_OF_MEMORY;
  for (int64_t r = 0; r < rows; ++r) {
    int32_t present = 0;
    for (int32_t k = 0; k < nm; ++k) present += keep[r * nm + k] != 0;
    /* As inverted dropout: the kept blocks are scaled up so that h_f keeps its size. */
    float up = (float)nm / (float)present;
    for (int32_t k = 0; k < nm; ++k) scale[r * nm + k] = keep[r * nm + k] ? up : 0.0f;
  }
  e->fuse_scale = scale;
  return MSC_OK;
}

msc_status msci_exec_scale_fused(msc_model *m, msci_exec *e, mbk_tensor *t) {
  const msci_graph *g = &m->graph;
  const int32_t nm = m->cfg.n_mod;
  const int64_t rows = e->n, df = g->fused_dim;
  float *h = (float *)e->host[MSCI_EXEC_HOST_FUSE] + rows * nm;
  MSCI_TRY(msci_be_tensor_download(m->be, t, h, (size_t)(rows * df)));
  for (int64_t r = 0; r < rows; ++r) {
    float *row = h + r * df;
    for (int32_t k = 0, at = 0; k < nm; at += (int32_t)g->fused_part_dim[k], ++k) {
      const float s = e->fuse_scale[r * nm + k];
      for (int64_t j = 0; j < g->fused_part_dim[k]; ++j) row[at + j] *= s;
    }
  }
  int64_t dims[2] = {rows, df};
  return msci_be_tensor_upload(m->be, t, 2, dims, h);
}

/* The gradient pool: take() hands out a tensor for a gradient of value v (v's shape; v
 * < 0 for a model input), give() returns one. A free slot that held an output of v's
 * shape comes first: the forward pass's dropped outputs, and the saved values whose last
 * backward reader ran (docs/memory.md); else a free pool tensor, made on demand.
 * Backward visits nodes in the same order every step, so each step gets the same
 * tensors in the same roles and their storage is reused, never reallocated. */
static msc_status gpool_take(msc_model *m, msci_exec *e, int32_t v, mbk_tensor **out) {
  for (int32_t k = e->n_free - 1; v >= 0 && k >= 0; --k) {
    int32_t s = e->free_slots[k];
    if (!same_shape(&m->graph, e->slot_node[s], v)) continue;
    e->free_slots[k] = e->free_slots[--e->n_free];
    *out = e->slot[s];
    return MSC_OK;
  }
  if (e->n_gfree > 0) {
    *out = e->gfree[--e->n_gfree];
    return MSC_OK;
  }
  if (e->n_gpool == e->cap_gpool)
    return msci_fail(MSC_E_INTERNAL, "gradient pool exhausted (%d tensors)", (int)e->cap_gpool);
  MSCI_TRY(msci_be_tensor_create(m->be, e->ctx, &e->gpool[e->n_gpool]));
  *out = e->gpool[e->n_gpool++];
  return MSC_OK;
}

static void gpool_give(msci_exec *e, mbk_tensor *t) {
  if (!t) return;
  for (int32_t s = 0; s < e->n_slots; ++s)
    if (e->slot[s] == t) {
      e->free_slots[e->n_free++] = s;
      return;
    }
  e->gfree[e->n_gfree++] = t;
}

void msci_exec_zero_grad(const msc_model *m, msci_exec *e) {
  memset(e->has_grad, 0, (size_t)m->graph.n_nodes);
  memset(e->grad, 0, (size_t)m->graph.n_nodes * sizeof *e->grad);
  memset(e->pgrad_valid, 0, (size_t)m->graph.n_params);
  /* Every tensor free again, in the same order as after the first step. */
  for (int32_t i = 0; i < e->n_gpool; ++i) e->gfree[i] = e->gpool[e->n_gpool - 1 - i];
  e->n_gfree = e->n_gpool;
}

msc_status msci_exec_grad_for(msc_model *m, msci_exec *e, int32_t node, mbk_tensor **out) {
  if (!e->grad[node]) MSCI_TRY(gpool_take(m, e, node, &e->grad[node]));
  e->has_grad[node] = 1;
  *out = e->grad[node];
  return MSC_OK;
}

/* Where the gradient of value v goes: grad[v] if it is the first, else a pool tensor
 * (*pending) that add_pending sums in afterwards. NULL for model inputs and frozen
 * encoders. */
static msc_status grad_target(msc_model *m, msci_exec *e, int32_t v, mbk_tensor **out,
                              mbk_tensor **pending) {
  *out = NULL;
  *pending = NULL;
  if (v < 0 || (e->frozen_encoders && v <= m->graph.last_encoder_node)) return MSC_OK;
  if (!e->has_grad[v]) {
    if (!e->grad[v]) MSCI_TRY(gpool_take(m, e, v, &e->grad[v]));
    *out = e->grad[v];
    return MSC_OK;
  }
  MSCI_TRY(gpool_take(m, e, v, pending));
  *out = *pending;
  return MSC_OK;
}

/* grad[v] += extra, through the backend's ADD op (made on first use). */
static msc_status add_pending(msc_model *m, msci_exec *e, int32_t v, mbk_tensor *extra) {
  const mbk_iface *be = m->be;
  if (!e->acc_ops[v]) {
    int64_t dims[MBK_MAX_DIMS];
    int32_t nd = msci_be_tensor_shape(be, e->grad[v], dims);
    mbk_op_desc d = {.type = MBK_OP_ADD, .ndim = nd, .n = dims[0], .c = dims[1]};
    d.h = nd == 4 ? dims[2] : 1;
    d.w = nd == 4 ? dims[3] : 1;
    MSCI_TRY(msci_be_op_create(be, e->ctx, &d, &e->acc_ops[v]));
  }
  /* In place (API 14: ADD's output may be its first input). */
  mbk_tensor *in[2] = {e->grad[v], extra};
  MSCI_TRY(msci_be_op_forward(e->acc_ops[v], 0, in, 2, &e->grad[v], 1));
  gpool_give(e, extra);
  return MSC_OK;
}

static int param_trainable(const msc_model *m, const msci_exec *e, int32_t p) {
  const msci_param *pr = &m->graph.params[p];
  if (pr->kind == MSCI_PARAM_BN_MEAN || pr->kind == MSCI_PARAM_BN_VAR) return 0;
  return !(e->frozen_encoders && strncmp(pr->name, "enc.", 4) == 0);
}

/* The backward pass's control flow, shared by msci_exec_backward and
 * msci_exec_backward_order (which must predict it exactly). */

/* Node i runs its backward: needed, given a gradient, not in a frozen encoder. */
static int backward_runs(const msc_model *m, const msci_exec *e, const uint8_t *need,
                         const uint8_t *has_grad, int32_t i) {
  return need[i] && has_grad[i] && !(e->frozen_encoders && i <= m->graph.last_encoder_node);
}

/* Value v receives a gradient (not a model input, not in a frozen encoder). */
static int value_takes_grad(const msc_model *m, const msci_exec *e, int32_t v) {
  return v >= 0 && !(e->frozen_encoders && v <= m->graph.last_encoder_node);
}

/* How many of a node's inputs get a gradient (the others are not differentiated). */
static int32_t value_grads(const msci_node *nd) {
  const int32_t t = nd->desc.type;
  return t == MBK_OP_CONCAT || t == MBK_OP_ADD || t == MBK_OP_ATTN ? nd->n_in : 1;
}

/* Whether the node's backward writes its first input's gradient over dy (API 14: the
 * output of the same shape as dy, which the node uses up). */
static int backward_in_place(const msci_node *nd) {
  const int32_t t = nd->desc.type;
  return t == MBK_OP_BATCHNORM || t == MBK_OP_RELU || t == MBK_OP_GELU || t == MBK_OP_ADD;
}

static int has_param_grads(const msci_node *nd) {
  const int32_t t = nd->desc.type;
  return t == MBK_OP_CONV2D || t == MBK_OP_LINEAR || t == MBK_OP_BATCHNORM ||
         t == MBK_OP_DECONV2D || t == MBK_OP_LAYERNORM || t == MBK_OP_GRN;
}

/* The parameter whose gradient is the node's k-th (k < 2) parameter output, or -1. */
static int32_t param_grad(const msc_model *m, const msci_exec *e, const msci_node *nd,
                          int32_t k) {
  int32_t p = k < nd->n_param ? nd->param[k] : -1;
  /* An encoder's conv2d has no bias: its third output is an explicit NULL. */
  int usable = p >= 0 && !(nd->desc.type == MBK_OP_CONV2D && k == 1 && !nd->desc.u.conv.bias) &&
               param_trainable(m, e, p);
  return usable ? p : -1;
}

int32_t msci_exec_backward_order(const msc_model *m, const msci_exec *e, const uint8_t *need,
                                 const int32_t *seeds, int32_t n_seeds, uint8_t *scratch,
                                 int32_t *order, int32_t *node_of) {
  const msci_graph *g = &m->graph;
  uint8_t *has = scratch, *seen = scratch + g->n_nodes;
  memset(scratch, 0, (size_t)g->n_nodes + (size_t)g->n_params);
  for (int32_t s = 0; s < n_seeds; ++s) has[seeds[s]] = 1;
  int32_t n = 0;
  for (int32_t i = g->n_nodes - 1; i >= 0; --i) {
    if (!backward_runs(m, e, need, has, i)) continue;
    const msci_node *nd = &g->nodes[i];
    for (int32_t k = 0; has_param_grads(nd) && k < 2; ++k) {
      int32_t p = param_grad(m, e, nd, k);
      if (p < 0) continue;
      /* Each parameter is made with its one node (model_graph.c); a second reader would
       * overwrite its gradient in msci_exec_backward as well. */
      if (seen[p]++) return -1;
      order[n] = p;
      node_of[n++] = i;
    }
    for (int32_t k = 0; k < value_grads(nd); ++k)
      if (value_takes_grad(m, e, nd->in[k])) has[nd->in[k]] = 1;
  }
  return n;
}

/* Node i's backward: its inputs' gradients and its parameters'. */
static msc_status node_backward(msc_model *m, msci_exec *e, int32_t i) {
  const msci_graph *g = &m->graph;
  const msci_node *nd = &g->nodes[i];
  /* h_f was scaled after the concatenation: its gradient is scaled the same way. */
  if (i == g->fused && e->fuse_scale) MSCI_TRY(msci_exec_scale_fused(m, e, e->grad[i]));
  mbk_tensor *in[MBK_MAX_CONCAT + 3], *out[MBK_MAX_CONCAT + 3];
  mbk_tensor *pending[MBK_MAX_CONCAT];
  int32_t n_in = 0, n_out = 0;
  memset(pending, 0, sizeof pending);
  mbk_tensor *x =
      nd->n_in > 0 ? (nd->in[0] >= 0 ? e->act[nd->in[0]] : e->input[-1 - nd->in[0]]) : NULL;
  /* Inputs of each op's backward (lib/contract/backend.h). */
  switch (nd->desc.type) {
  case MBK_OP_CONV2D:
  case MBK_OP_DECONV2D:
  case MBK_OP_LINEAR:
    in[n_in++] = x;
    in[n_in++] = g->params[nd->param[0]].t;
    break;
  case MBK_OP_BATCHNORM:
  case MBK_OP_LAYERNORM:
    in[n_in++] = x;
    in[n_in++] = g->params[nd->param[0]].t;
    break;
  case MBK_OP_GRN:
    in[n_in++] = x;
    in[n_in++] = g->params[nd->param[0]].t;
    break;
  case MBK_OP_GELU: in[n_in++] = x; break;
  case MBK_OP_ATTN:
    for (int32_t k = 0; k < nd->n_in; ++k) in[n_in++] = value_tensor(e, nd->in[k]);
    break;
  /* Its own output y for x: the only input of a ReLU's backward kept (mark_saved). */
  case MBK_OP_RELU: in[n_in++] = e->act[i]; break;
  default: break;
  }
  in[n_in++] = e->grad[i];
  /* Stochastic depth: the forward's per-sample scale scales the branch's gradient. */
  if (nd->desc.type == MBK_OP_ADD && nd->desc.u.add.row_scale)
    in[n_in++] = drops(m, e, i) ? e->drop_scale[i] : NULL;
  /* Outputs: the input values' gradients, then the parameters'. */
  int32_t n_values = value_grads(nd);
  /* The first input's gradient is written over dy (API 14): dy is used up by this node
   * and that gradient has its shape, so it needs no second tensor of that size
   * (docs/memory.md). */
  const int inplace = backward_in_place(nd);
  for (int32_t k = 0; k < n_values; ++k) {
    if (k == 0 && inplace)
      out[n_out++] = e->grad[i];
    else
      MSCI_TRY(grad_target(m, e, nd->in[k], &out[n_out++], &pending[k]));
  }
  if (has_param_grads(nd)) {
    for (int32_t k = 0; k < 2; ++k) {
      int32_t p = param_grad(m, e, nd, k);
      out[n_out++] = p >= 0 ? e->pgrad[p] : NULL;
      if (p >= 0) e->pgrad_valid[p] = 1;
    }
  }
  MSCI_TRY(msci_be_op_backward(e->ops[i], in, n_in, out, n_out));
  for (int32_t k = inplace ? 1 : 0; k < n_values; ++k) {
    int32_t v = nd->in[k];
    if (v < 0 || !out[k]) continue;
    if (pending[k])
      MSCI_TRY(add_pending(m, e, v, pending[k]));
    else if (value_takes_grad(m, e, v))
      e->has_grad[v] = 1;
  }
  if (inplace && value_takes_grad(m, e, nd->in[0])) {
    /* dx (in dy's tensor) becomes x's gradient, or is summed into the one it has (after
     * the other inputs': an ADD of a value to itself). */
    const int32_t v = nd->in[0];
    mbk_tensor *dx = e->grad[i];
    e->grad[i] = NULL;
    if (e->has_grad[v]) {
      MSCI_TRY(add_pending(m, e, v, dx));
    } else {
      e->grad[v] = dx;
      e->has_grad[v] = 1;
    }
  }
  /* This node's gradient has been used up. */
  gpool_give(e, e->grad[i]);
  e->grad[i] = NULL;
  /* Its parameters' gradients are complete: the data-parallel step may send them. */
  if (e->backward_hook) MSCI_TRY(e->backward_hook(e->backward_hook_user, i));
  return MSC_OK;
}

msc_status msci_exec_backward(msc_model *m, msci_exec *e, const uint8_t *need) {
  for (int32_t i = m->graph.n_nodes - 1; i >= 0; --i) {
    if (backward_runs(m, e, need, e->has_grad, i)) MSCI_TRY(node_backward(m, e, i));
    /* No backward reads these saved values any more: their slots may take gradients. */
    for (int32_t v = e->rel_head[i]; v >= 0; v = e->rel_next[v])
      e->free_slots[e->n_free++] = e->owner[v];
  }
  return MSC_OK;
}
