/*
 * model_exec.c — executors: the model's graph prepared for one batch size on a backend
 * context of its own, and the pool that lets several threads run one model at once.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "model.h"

void msci_exec_free(const msc_model *m, msci_exec *e) {
  if (!e) return;
  const mbk_iface *be = m->be;
  for (int32_t i = 0; i < m->graph.n_nodes; ++i) {
    if (e->ops) be->op_free(e->ops[i]);
    if (e->act && e->training) be->tensor_free(e->act[i]);
  }
  for (int32_t i = 0; i < e->n_slots; ++i) be->tensor_free(e->slot[i]);
  for (int32_t i = 0; i < MSCI_MAX_MODALITIES; ++i) be->tensor_free(e->input[i]);
  free(e->ops);
  free(e->act);
  free(e->slot);
  free(e->last_use);
  free(e->free_slots);
  free(e->owner);
  free(e->stage);
  be->ctx_free(e->ctx);
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
  msc_status st = (e->ops && e->act && e->slot && e->last_use && e->free_slots && e->owner)
                      ? MSC_OK
                      : msci_fail(MSC_E_OUT_OF_MEMORY, "executor");
  mbk_ctx_params p = {sizeof p, m->threads, 0};
  if (st == MSC_OK) st = be->ctx_create(&p, &e->ctx);
  for (int32_t i = 0; st == MSC_OK && training && i < nn; ++i)
    st = be->tensor_create(e->ctx, &e->act[i]);
  for (int32_t i = 0; st == MSC_OK && i < m->cfg.n_mod; ++i)
    st = be->tensor_create(e->ctx, &e->input[i]);
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

/* Inference: gives every needed node an output tensor from the slots, reusing a slot
 * once the last reader of its previous value has run. The assignment depends only on
 * `need`, so repeated calls reuse the same tensors (and their layouts) every time. */
static msc_status assign_slots(msc_model *m, msci_exec *e, const uint8_t *need) {
  const msci_graph *g = &m->graph;
  int32_t n = g->n_nodes, n_free = 0, used = 0;
  for (int32_t i = 0; i < n; ++i) e->last_use[i] = need[i] ? i : -1;
  for (int32_t i = 0; i < n; ++i)
    if (need[i])
      for (int32_t k = 0; k < g->nodes[i].n_in; ++k)
        if (g->nodes[i].in[k] >= 0) e->last_use[g->nodes[i].in[k]] = i;
  /* A node nobody reads is an output of this call: it keeps its slot to the end. */
  for (int32_t i = 0; i < n; ++i)
    if (need[i] && e->last_use[i] == i) e->last_use[i] = n;
  int32_t *stack = e->free_slots, *owner = e->owner;
  for (int32_t i = 0; i < n; ++i) {
    if (!need[i]) continue;
    int32_t s = n_free > 0 ? stack[--n_free] : used++;
    if (s >= e->n_slots) {
      MSCI_TRY(m->be->tensor_create(e->ctx, &e->slot[s]));
      e->n_slots = s + 1;
    }
    owner[i] = s;
    e->act[i] = e->slot[s];
    /* Release the inputs whose last reader is this node (after taking the output, so an
     * op never writes into its own input). */
    for (int32_t k = 0; k < g->nodes[i].n_in; ++k) {
      int32_t v = g->nodes[i].in[k];
      if (v < 0 || e->last_use[v] != i) continue;
      e->last_use[v] = -1; /* released once even if read twice by this node */
      stack[n_free++] = owner[v];
    }
  }
  return MSC_OK;
}

msc_status msci_exec_forward(msc_model *m, msci_exec *e, const uint8_t *need) {
  const mbk_iface *be = m->be;
  const msci_graph *g = &m->graph;
  if (!e->training) MSCI_TRY(assign_slots(m, e, need));
  for (int32_t i = 0; i < g->n_nodes; ++i) {
    if (!need[i]) continue;
    const msci_node *nd = &g->nodes[i];
    if (!e->ops[i]) {
      mbk_op_desc d = nd->desc;
      d.n = e->n;
      MSCI_TRY(be->op_create(e->ctx, &d, &e->ops[i]));
    }
    mbk_tensor *in[MBK_MAX_CONCAT + MSCI_MAX_NODE_PARAMS];
    int32_t k = 0;
    for (int32_t j = 0; j < nd->n_in; ++j) in[k++] = value_tensor(e, nd->in[j]);
    for (int32_t j = 0; j < nd->n_param; ++j) in[k++] = g->params[nd->param[j]].t;
    /* Convolutions have no bias: their third input is an explicit NULL. */
    if (nd->desc.type == MBK_OP_CONV2D) in[k++] = NULL;
    MSCI_TRY(be->op_forward(e->ops[i], e->training, in, k, &e->act[i], 1));
  }
  return MSC_OK;
}
