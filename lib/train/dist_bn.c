/*
 * dist_bn.c — synchronised BatchNorm (train.sync_bn, docs/distributed.md): the
 * reduction the backend's batch norms call (u.bn.reduce, lib/contract/backend.h) and
 * the draining that keeps the ranks' collectives aligned when one rank's pass fails.
 *
 * Every reduction is one all-reduce of the backend's sums plus one flag (0: this rank
 * is well). A rank whose pass stops early (an error in an op, or a flag seen) makes the
 * rest of the pass's reductions with the flag set and zero sums, in the order the other
 * ranks make them: the batch norms that train, forward in node order, backward in
 * reverse (every node of a training pass gets a gradient: msci_exec_backward). So no
 * rank waits in a collective its peers never enter, and all of them reach the step's
 * msci_dist_agree, which reports the failing rank.
 */
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "train/dist.h"

static msc_status bn_grow(msc_dist *d, size_t n) {
  if (d->bn_cap >= n) return MSC_OK;
  double *p = realloc(d->bn_buf, n * sizeof(double));
  if (!p) return msci_fail(MSC_E_OUT_OF_MEMORY, "synchronised BatchNorm: %zu values", n);
  d->bn_buf = p;
  d->bn_cap = n;
  return MSC_OK;
}

/* One flagged all-reduce of n values (buf, or zeros when buf is NULL). */
static msc_status bn_all_reduce(msc_dist *d, const double *buf, size_t n, double flag) {
  MSCI_TRY(bn_grow(d, n + 1));
  if (buf)
    memcpy(d->bn_buf, buf, n * sizeof(double));
  else
    memset(d->bn_buf, 0, n * sizeof(double));
  d->bn_buf[n] = flag;
  d->bn_done++;
  return msci_dist_all_reduce(d, d->bn_buf, n + 1, MCM_F64);
}

msc_status msci_dist_bn_reduce(void *user, double *buf, int64_t n) {
  msc_dist *d = user;
  if (!d || !buf || n <= 0)
    return msci_fail(MSC_E_INTERNAL, "synchronised BatchNorm: bad reduction (%lld values)",
                     (long long)n);
  MSCI_TRY(bn_all_reduce(d, buf, (size_t)n, 0.0));
  if (d->bn_buf[n] != 0.0) {
    d->bn_peer_failed = 1;
    return msci_fail(MSC_E_COMM,
                     "synchronised BatchNorm: another rank's step failed (its error is "
                     "reported there)");
  }
  memcpy(buf, d->bn_buf, (size_t)n * sizeof(double));
  return MSC_OK;
}

msc_status msci_dist_bn_alone(void *user, double *buf, int64_t n) {
  (void)user, (void)buf, (void)n;
  return MSC_OK;
}

msc_status msci_dist_bn_drain_node(msc_dist *d, const msc_model *m, const msci_exec *e,
                                   const uint8_t *need, int32_t backward, int32_t i,
                                   int32_t *k) {
  const msci_graph *g = &m->graph;
  if (!need[i] || g->nodes[i].desc.type != MBK_OP_BATCHNORM || !msci_exec_node_trains(m, e, i))
    return MSC_OK;
  if ((*k)++ < d->bn_done) return MSC_OK; /* made before the pass stopped */
  /* The backend's count: forward {m, Σ, Σ²} = 2C + 1, backward {Σ, Σ·x̂} = 2C. */
  const size_t n = 2 * (size_t)g->nodes[i].desc.c + (backward ? 0 : 1);
  return bn_all_reduce(d, NULL, n, 1.0);
}

msc_status msci_dist_bn_drain(msc_dist *d, const msc_model *m, const msci_exec *e,
                              const uint8_t *need, int32_t backward) {
  const msci_graph *g = &m->graph;
  msc_status first = MSC_OK;
  int32_t k = 0;
  for (int32_t j = 0; j < g->n_nodes; ++j) {
    const int32_t i = backward ? g->n_nodes - 1 - j : j;
    msc_status st = msci_dist_bn_drain_node(d, m, e, need, backward, i, &k);
    if (st != MSC_OK && first == MSC_OK) first = st;
  }
  return first;
}
