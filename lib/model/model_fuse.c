/*
 * model_fuse.c — the inference executor's fused steps (docs/model.md, "Inference
 * fusions"). In eval mode a convolution followed by its batch norm (and the block's
 * residual add and ReLU) runs as one backend CONV2D with fold_bn, residual and relu
 * (lib/contract/backend.h, API 8), which saves the batch norm's, the add's and the
 * ReLU's passes over memory. The graph stays as it is; the executor only runs some
 * nodes inside the step of a later node. Training executors never fuse: backward needs
 * every intermediate value, and a training batch norm uses the batch's statistics.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/backend_call.h"
#include "common/internal.h"
#include "model/model.h"

/* Counts the graph's outputs (embeddings, logits) as read once more, by the caller, so
 * that they are never absorbed. Only the model's n_mod modalities: the feat and proj
 * entries past them are 0, not outputs (counting them pinned node 0, the first
 * encoder's stem conv, unfused). */
static void count_outputs(const msci_graph *g, int32_t n_mod, int32_t *readers) {
  const int32_t heads[4] = {g->fused, g->fused_proj, g->logits, g->seg_logits};
  for (int32_t k = 0; k < 4; ++k)
    if (heads[k] >= 0 && heads[k] < g->n_nodes) readers[heads[k]]++;
  for (int32_t k = 0; k < n_mod; ++k) {
    if (g->feat[k] >= 0 && g->feat[k] < g->n_nodes) readers[g->feat[k]]++;
    if (g->proj[k] >= 0 && g->proj[k] < g->n_nodes) readers[g->proj[k]]++;
  }
}

/* 1 when node v may run inside a later step: a node (not a model input) of type `type`
 * whose only reader is the next node of the chain (so no output), not absorbed yet. */
static int absorbable(const msci_graph *g, const int32_t *readers, const msci_exec *e,
                      int32_t v, int32_t type) {
  return v >= 0 && g->nodes[v].desc.type == type && readers[v] == 1 && !e->fz_skip[v] &&
         e->fz_conv[v] < 0;
}

/* conv2d (no bias) → batchnorm ending at BN node j: the conv node, or -1. */
static int32_t conv_bn_chain(const msci_graph *g, const int32_t *readers, const msci_exec *e,
                             int32_t j) {
  const msci_node *bn = &g->nodes[j];
  if (bn->desc.type != MBK_OP_BATCHNORM || bn->n_param != 4) return -1;
  int32_t c = bn->in[0];
  if (!absorbable(g, readers, e, c, MBK_OP_CONV2D) || g->nodes[c].desc.u.conv.bias) return -1;
  return c;
}

static void mark_step(msci_exec *e, int32_t tail, int32_t conv, int32_t res,
                      const int32_t *absorbed, int32_t n) {
  e->fz_conv[tail] = conv;
  e->fz_res[tail] = res;
  for (int32_t k = 0; k < n; ++k) e->fz_skip[absorbed[k]] = 1;
}

/* ReLU(add(BN(conv(x)), r)) ending at ReLU node t, the BN without its own ReLU. */
static void plan_residual(const msci_graph *g, const int32_t *readers, msci_exec *e,
                          int32_t t) {
  const msci_node *relu = &g->nodes[t];
  if (relu->desc.type != MBK_OP_RELU) return;
  int32_t a = relu->in[0];
  if (!absorbable(g, readers, e, a, MBK_OP_ADD)) return;
  for (int32_t side = 0; side < 2; ++side) {
    int32_t j = g->nodes[a].in[side], r = g->nodes[a].in[1 - side];
    if (!absorbable(g, readers, e, j, MBK_OP_BATCHNORM) || g->nodes[j].desc.u.bn.relu) continue;
    int32_t c = conv_bn_chain(g, readers, e, j);
    if (c < 0 || r == j) continue;
    const int32_t absorbed[3] = {c, j, a};
    mark_step(e, t, c, r, absorbed, 3);
    return;
  }
}

msc_status msci_fuse_plan(const msc_model *m, msci_exec *e) {
  const msci_graph *g = &m->graph;
  const int32_t n = g->n_nodes;
  if (e->training || m->fuse_off || !(m->be->caps & MBK_CAP_CONV_FUSED)) return MSC_OK;
  int32_t *readers = calloc((size_t)n, sizeof *readers);
  e->fz_conv = malloc((size_t)n * sizeof *e->fz_conv);
  e->fz_res = malloc((size_t)n * sizeof *e->fz_res);
  e->fz_skip = calloc((size_t)n, 1);
  if (!readers || !e->fz_conv || !e->fz_res || !e->fz_skip) {
    free(readers);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "executor fusion plan");
  }
  for (int32_t i = 0; i < n; ++i) {
    e->fz_conv[i] = -1;
    e->fz_res[i] = MSCI_FZ_NONE;
    for (int32_t k = 0; k < g->nodes[i].n_in; ++k)
      if (g->nodes[i].in[k] >= 0) readers[g->nodes[i].in[k]]++;
  }
  count_outputs(g, m->cfg.n_mod, readers);
  /* The residual blocks first: their batch norms must not become steps of their own. */
  for (int32_t t = 0; t < n; ++t) plan_residual(g, readers, e, t);
  for (int32_t j = 0; j < n; ++j) {
    if (e->fz_skip[j] || e->fz_conv[j] >= 0) continue;
    int32_t c = conv_bn_chain(g, readers, e, j);
    if (c >= 0) mark_step(e, j, c, MSCI_FZ_NONE, &c, 1);
  }
  free(readers);
  return MSC_OK;
}

int32_t msci_fuse_reads(const msc_model *m, const msci_exec *e, int32_t i, int32_t *v) {
  const msci_node *nd = &m->graph.nodes[i];
  if (!e->fz_conv || e->fz_conv[i] < 0) {
    memcpy(v, nd->in, (size_t)nd->n_in * sizeof *v);
    return nd->n_in;
  }
  int32_t k = 0;
  v[k++] = m->graph.nodes[e->fz_conv[i]].in[0];
  if (e->fz_res[i] != MSCI_FZ_NONE) v[k++] = e->fz_res[i];
  return k;
}

/* The fused op's description: the conv's, with the batch norm and the tail's ReLU. */
static mbk_op_desc step_desc(const msc_model *m, const msci_exec *e, int32_t i, int32_t bn) {
  const msci_graph *g = &m->graph;
  mbk_op_desc d = g->nodes[e->fz_conv[i]].desc;
  d.n = e->n;
  d.u.conv.fold_bn = 1;
  d.u.conv.bn_eps = g->nodes[bn].desc.u.bn.eps;
  d.u.conv.residual = e->fz_res[i] != MSCI_FZ_NONE;
  d.u.conv.relu = g->nodes[i].desc.type == MBK_OP_RELU || g->nodes[bn].desc.u.bn.relu;
  msci_int8_desc(m, e, e->fz_conv[i], &d); /* int8: the conv's calibrated input range */
  return d;
}

msc_status msci_fuse_forward(msc_model *m, msci_exec *e, int32_t i) {
  const msci_graph *g = &m->graph;
  const msci_node *conv = &g->nodes[e->fz_conv[i]];
  /* The batch norm is the conv's only reader. */
  int32_t bn = g->nodes[i].desc.type == MBK_OP_BATCHNORM ? i : -1;
  if (bn < 0) {
    const msci_node *add = &g->nodes[g->nodes[i].in[0]];
    bn = add->in[0] == e->fz_res[i] ? add->in[1] : add->in[0];
  }
  if (!e->ops[i]) {
    mbk_op_desc d = step_desc(m, e, i, bn);
    MSCI_TRY(msci_be_op_create(m->be, e->ctx, &d, &e->ops[i]));
  }
  int32_t x = conv->in[0];
  mbk_tensor *in[8];
  int32_t k = 0;
  in[k++] = x >= 0 ? e->act[x] : e->input[-1 - x];
  in[k++] = g->params[conv->param[0]].t;
  in[k++] = NULL; /* no bias: the folded one is the backend's */
  for (int32_t p = 0; p < 4; ++p) in[k++] = g->params[g->nodes[bn].param[p]].t;
  if (e->fz_res[i] != MSCI_FZ_NONE) {
    int32_t r = e->fz_res[i];
    in[k++] = r >= 0 ? e->act[r] : e->input[-1 - r];
  }
  return msci_be_op_forward(e->ops[i], 0, in, k, &e->act[i], 1);
}
