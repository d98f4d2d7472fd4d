/*
 * dist_grad.c — the data-parallel step's gradient all-reduce (docs/distributed.md,
 * "Overlap"): the trainable parameters' gradients summed over the ranks in buckets,
 * started while the backward pass goes on (train.dist_overlap = 1) or after it (0).
 *
 * The plan. msci_exec_backward runs the nodes in reverse and writes each parameter's
 * gradient once, in its node's backward (model_graph.c makes every parameter with its
 * one node). msci_exec_backward_order predicts, from the step's marks and the nodes the
 * objective gives a gradient, the order in which the parameters complete; the buckets are
 * cut greedily from that order (a bucket closes when the next parameter would take it
 * past train.dist_bucket values; a larger parameter gets one of its own), and each
 * bucket is "ready" at the node that completes its last parameter. Every rank makes the
 * same plan before its forward pass, so the buckets — and the sums, element for element
 * — do not depend on overlap, and a rank whose pass fails still knows which all-reduces
 * its peers start.
 *
 * Overlap. The backward hook (msci_exec's backward_hook) runs after every node: it
 * copies the buckets that became ready into their place in one host array and starts
 * their non-blocking all-reduce (lib/contract/comm.h, API 2), then tests the buckets in
 * flight — MPI progresses a collective only inside MPI calls, so one test per node is
 * what moves them while this rank computes. After the pass every bucket is waited for;
 * once the ranks agreed, the sums replace the gradients.
 *
 * Failures. A started all-reduce is ordered among the communicator's collectives, so
 * every rank must start the same buckets in the same order relative to the other
 * collectives — synchronised BatchNorm's reductions (dist_bn.c) run inside the same
 * backward pass. A rank whose pass stops early (an error, a peer's flag) drains: it
 * walks the remaining nodes as the pass would, making the flagged BatchNorm reductions
 * and starting the buckets (zeros) where its peers do, then waits for all of them like
 * the others. No request is left pending: every started one is waited for (a broken
 * communicator answers at once), and the step's agreement then reports the failing rank.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/backend_call.h"
#include "common/internal.h"
#include "train/dist.h"

static int64_t values_of(const msci_param *p) {
  int64_t n = 1;
  for (int32_t i = 0; i < p->ndim; ++i) n *= p->dims[i];
  return n;
}

static msc_status grow(void **p, size_t bytes, const char *what) {
  void *q = realloc(*p, bytes ? bytes : 1);
  if (!q)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "distributed step: %s (%zu bytes)", what, bytes);
  *p = q;
  return MSC_OK;
}

msc_status msci_dist_grad_plan(msc_dist *d, msc_model *m, msci_exec *e, const uint8_t *need,
                               const int32_t *seeds, int32_t n_seeds, size_t bucket) {
  const msci_graph *g = &m->graph;
  d->gb_n_order = d->gb_n = d->gb_started = d->gb_early = 0;
  d->gb_model = m;
  d->gb_exec = e;
  if (d->gb_cap_params < g->n_params || d->gb_cap_nodes < g->n_nodes) {
    const size_t np = (size_t)g->n_params, nn = (size_t)g->n_nodes;
    MSCI_TRY(grow((void **)&d->gb_order, np * sizeof(int32_t), "gradient buckets"));
    MSCI_TRY(grow((void **)&d->gb_node, np * sizeof(int32_t), "gradient buckets"));
    MSCI_TRY(grow((void **)&d->gb, np * sizeof(msci_grad_bucket), "gradient buckets"));
    MSCI_TRY(grow((void **)&d->gb_scratch, nn + np, "gradient buckets"));
    d->gb_cap_params = g->n_params;
    d->gb_cap_nodes = g->n_nodes;
  }
  int32_t n = msci_exec_backward_order(m, e, need, seeds, n_seeds, d->gb_scratch, d->gb_order,
                                       d->gb_node);
  if (n < 0)
    return msci_fail(MSC_E_INTERNAL,
                     "distributed step: a parameter is read by two nodes (gradient buckets)");
  size_t total = 0, used = 0;
  for (int32_t j = 0; j < n; ++j) {
    const size_t cnt = (size_t)values_of(&g->params[d->gb_order[j]]);
    if (j == 0 || (used && used + cnt > bucket)) {
      msci_grad_bucket *b = &d->gb[d->gb_n++];
      memset(b, 0, sizeof *b);
      b->first = j;
      b->at = total;
      used = 0;
    }
    msci_grad_bucket *b = &d->gb[d->gb_n - 1];
    b->n++;
    b->count += cnt;
    b->ready = d->gb_node[j];
    used += cnt;
    total += cnt;
  }
  /* The host array stays where it is while an earlier failure may still write it. */
  if (d->gb_buf_cap < total && !d->gb_orphaned) {
    MSCI_TRY(grow((void **)&d->gb_buf, total * sizeof(float), "gradient buckets"));
    d->gb_buf_cap = total;
  }
  if (d->gb_buf_cap < total)
    return msci_fail(MSC_E_COMM,
                     "distributed step: the communicator failed in an earlier step");
  d->gb_n_order = n;
  return MSC_OK;
}

/* Copies bucket b's gradients into its place (zeros when drained) and starts its sum. */
static msc_status start_bucket(msc_dist *d, int32_t b, int32_t zeros) {
  msci_grad_bucket *bk = &d->gb[b];
  const msc_model *m = d->gb_model;
  const msci_exec *e = d->gb_exec;
  float *at = d->gb_buf + bk->at;
  d->gb_started = b + 1; /* counted even if it fails: the drain goes on after it */
  if (zeros) {
    memset(at, 0, bk->count * sizeof(float));
  } else {
    for (int32_t j = bk->first; j < bk->first + bk->n; ++j) {
      const int32_t p = d->gb_order[j];
      const msci_param *pr = &m->graph.params[p];
      if (!e->pgrad_valid[p])
        return msci_fail(MSC_E_INTERNAL,
                         "distributed step: the gradient of %s is not there when its bucket "
                         "starts (msci_exec_backward_order mispredicted the backward pass)",
                         pr->name);
      const size_t cnt = (size_t)values_of(pr);
      MSCI_TRY(msci_be_tensor_download(m->be, e->pgrad[p], at, cnt));
      at += cnt;
    }
  }
  return msci_dist_reduce_start(d, d->gb_buf + bk->at, bk->count, MCM_F32, &bk->req);
}

/* The backward hook: the buckets ready at this node started, those in flight tested. */
static msc_status on_node(void *user, int32_t node) {
  msc_dist *d = user;
  while (d->gb_started < d->gb_n && d->gb[d->gb_started].ready >= node) {
    MSCI_TRY(start_bucket(d, d->gb_started, 0));
    d->gb_early++;
  }
  for (int32_t b = 0; b < d->gb_started; ++b) {
    int32_t done = 0;
    if (d->gb[b].req) MSCI_TRY(msci_dist_reduce_test(d, d->gb[b].req, &done));
  }
  return MSC_OK;
}

void msci_dist_grad_overlap(msc_dist *d, msci_exec *e, int32_t on) {
  e->backward_hook = on ? on_node : NULL;
  e->backward_hook_user = on ? d : NULL;
}

msc_status msci_dist_grad_drain(msc_dist *d, const msc_model *m, const msci_exec *e,
                                const uint8_t *need, int32_t sync_bn) {
  const msci_graph *g = &m->graph;
  msc_status first = MSC_OK;
  int32_t k = 0;
  for (int32_t i = g->n_nodes - 1; i >= 0; --i) {
    msc_status st = MSC_OK;
    /* In the pass's order: the node's own reduction, then the buckets it completes. */
    if (sync_bn) st = msci_dist_bn_drain_node(d, m, e, need, 1, i, &k);
    if (st != MSC_OK && first == MSC_OK) first = st;
    while (d->gb_started < d->gb_n && d->gb[d->gb_started].ready >= i) {
      st = start_bucket(d, d->gb_started, 1);
      if (st != MSC_OK && first == MSC_OK) first = st;
    }
  }
  return first;
}

msc_status msci_dist_grad_wait(msc_dist *d) {
  msc_status first = MSC_OK;
  for (int32_t b = 0; b < d->gb_started; ++b) {
    msci_grad_bucket *bk = &d->gb[b];
    if (!bk->req) continue;
    msc_status st = msci_dist_reduce_wait(d, bk->req);
    bk->req = NULL;
    if (st != MSC_OK) {
      /* Possibly unfinished inside the engine (MPI cannot cancel a collective). */
      d->gb_orphaned = 1;
      if (first == MSC_OK) first = st;
    }
  }
  return first;
}

msc_status msci_dist_grad_finish(msc_dist *d, msc_model *m, msci_exec *e, int32_t overlap) {
  const msci_graph *g = &m->graph;
  /* The plan must be what the pass did: every gradient written is in a bucket (the
   * buckets' own parameters were checked when they started). */
  int32_t written = 0;
  for (int32_t p = 0; p < g->n_params; ++p) {
    const msci_param *pr = &g->params[p];
    written += e->pgrad_valid[p] && pr->kind != MSCI_PARAM_BN_MEAN &&
               pr->kind != MSCI_PARAM_BN_VAR &&
               !(e->frozen_encoders && strncmp(pr->name, "enc.", 4) == 0);
  }
  if (written != d->gb_n_order)
    return msci_fail(MSC_E_INTERNAL,
                     "distributed step: the backward pass wrote %d gradients, the buckets "
                     "hold %d (msci_exec_backward_order mispredicted it)",
                     (int)written, (int)d->gb_n_order);
  for (int32_t b = 0; !overlap && b < d->gb_n; ++b) {
    msci_grad_bucket *bk = &d->gb[b];
    MSCI_TRY(start_bucket(d, b, 0));
    msc_status st = msci_dist_reduce_wait(d, bk->req);
    bk->req = NULL;
    if (st != MSC_OK) d->gb_orphaned = 1;
    MSCI_TRY(st);
  }
  if (overlap && d->gb_started != d->gb_n)
    return msci_fail(MSC_E_INTERNAL, "distributed step: %d of %d gradient buckets started",
                     (int)d->gb_started, (int)d->gb_n);
  for (int32_t b = 0; b < d->gb_n; ++b) {
    const msci_grad_bucket *bk = &d->gb[b];
    const float *at = d->gb_buf + bk->at;
    for (int32_t j = bk->first; j < bk->first + bk->n; ++j) {
      const msci_param *pr = &g->params[d->gb_order[j]];
      MSCI_TRY(msci_be_tensor_upload(m->be, e->pgrad[d->gb_order[j]], pr->ndim, pr->dims, at));
      at += values_of(pr);
    }
  }
  return MSC_OK;
}
