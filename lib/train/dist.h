/*
 * dist.h — data-parallel training (layer: train): the communicator handle behind
 * msc_dist (a module of lib/contract/comm.h loaded at run time), its collectives with
 * the time they take, and the row layout of a global batch split over the ranks
 * (docs/distributed.md).
 */
#ifndef MOSAIC_LIB_TRAIN_DIST_H
#define MOSAIC_LIB_TRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "contract/comm.h"
#include "model/model.h"
#include "mosaic/mosaic.h"

/* One gradient bucket of a step (dist_grad.c). */
typedef struct msci_grad_bucket {
  int32_t first, n; /* its parameters: gb_order[first .. first + n) */
  int32_t ready;    /* the node whose backward completes the last of them */
  size_t at, count; /* its values: gb_buf[at .. at + count) */
  mcm_request *req; /* started and not yet waited for; else NULL */
} msci_grad_bucket;

struct msc_dist {
  const mcm_iface *it;
  mcm_comm *c;
  int32_t rank, size;
  double comm_seconds; /* time spent in collectives */
  /* The step's layout: samples of each rank, their offsets, the global count. */
  int64_t *counts, *offsets;
  int64_t n_global, max_n;
  /* Scratch of the row gathers (grown as needed). */
  void *send, *recv;
  size_t send_cap, recv_cap;
  /* Synchronised BatchNorm (dist_bn.c): the reductions of the current pass so far and
   * the buffer they go through (the sums and one more value, the failure flag). */
  int32_t bn_done;
  int32_t bn_peer_failed; /* a reduction of this pass carried another rank's flag */
  double *bn_buf;
  size_t bn_cap;
  /* The gradient buckets of the current step (dist_grad.c): the trainable parameters in
   * the order the backward pass completes their gradients, cut into buckets; one host
   * array holds every bucket (each may be in flight at once). gb_started: buckets
   * started so far (in order); gb_early: of those, started inside the backward pass. */
  int32_t *gb_order, *gb_node;
  uint8_t *gb_scratch;
  msci_grad_bucket *gb;
  int32_t gb_n_order, gb_n, gb_started, gb_early, gb_cap_params, gb_cap_nodes;
  float *gb_buf;
  size_t gb_buf_cap;
  int32_t gb_orphaned; /* a wait failed on an unfinished all-reduce: gb_buf is kept */
  msc_model *gb_model; /* the step's model and executor, for the backward hook */
  msci_exec *gb_exec;
};

msc_status msci_dist_all_reduce(msc_dist *d, void *buf, size_t count, int32_t dtype);
msc_status msci_dist_all_gather(msc_dist *d, const void *send, void *recv, size_t bytes);
/* The non-blocking all-reduce of lib/contract/comm.h (API 2), timed like the others. */
msc_status msci_dist_reduce_start(msc_dist *d, void *buf, size_t count, int32_t dtype,
                                  mcm_request **req);
msc_status msci_dist_reduce_test(msc_dist *d, mcm_request *req, int32_t *done);
msc_status msci_dist_reduce_wait(msc_dist *d, mcm_request *req);
msc_status msci_dist_broadcast(msc_dist *d, void *buf, size_t bytes, int32_t root);

/* Gathers every rank's sample count n (and the step's checks: status st, seed and step,
 * which must agree) and sets the layout. Returns MSC_E_COMM when another rank reports a
 * failure, st itself when st failed here. */
msc_status msci_dist_begin(msc_dist *d, int64_t n, msc_status st, uint64_t seed, int64_t step);

/* Agrees on st across the ranks: MSC_OK everywhere, or st here and MSC_E_COMM ("rank
 * r failed") on the others. */
msc_status msci_dist_agree(msc_dist *d, msc_status st);

/* Rows of `views` blocks: a rank's local array is views × n_local rows of row_bytes;
 * the global one views × n_global rows, block v holding the ranks' rows in rank order.
 * gather: every rank's local rows into global (all-gather). pick: this rank's rows of
 * a global array into local (no communication). */
msc_status msci_dist_gather_rows(msc_dist *d, int32_t views, const void *local, void *global,
                                 size_t row_bytes);
void msci_dist_pick_rows(const msc_dist *d, int32_t views, const void *global, void *local,
                         size_t row_bytes);

/* ---- synchronised BatchNorm (train.sync_bn; dist_bn.c) ---------------------------------
 * The training-mode batch norms of a data-parallel step normalise with the statistics of
 * the global batch: the backend sums its per-channel values through msci_dist_bn_reduce
 * (an mbk_reduce_fn whose user is the msc_dist; lib/contract/backend.h, BATCHNORM) once
 * per layer in the forward pass and once in the backward pass. Every rank must make the
 * same reductions in the same order: each carries a flag, and a rank that failed makes
 * the rest of its pass's reductions with the flag set (msci_dist_bn_drain), so the
 * others fail with MSC_E_COMM at the next one instead of waiting for the timeout. */

/* The mbk_reduce_fn: buf[0..n) summed over the ranks in place, bn_done counted. */
msc_status msci_dist_bn_reduce(void *user, double *buf, int64_t n);

/* The mbk_reduce_fn of one process without a communicator (train.sync_bn alone): the
 * sums are already the global ones. */
msc_status msci_dist_bn_alone(void *user, double *buf, int64_t n);

/* After a failed forward (backward = 0) or backward (1) pass of e over the nodes marked
 * in need: the pass's remaining reductions (from bn_done on), flagged as failed. Returns
 * the first communication failure, else MSC_OK. */
msc_status msci_dist_bn_drain(msc_dist *d, const msc_model *m, const msci_exec *e,
                              const uint8_t *need, int32_t backward);

/* Node i's reduction of a pass, flagged as failed, when node i makes one (a training
 * batch norm in need) that was not made before the pass stopped; *k counts the pass's
 * reductions so far (msci_dist_bn_drain walks every node with it; dist_grad.c
 * interleaves its bucket starts). */
msc_status msci_dist_bn_drain_node(msc_dist *d, const msc_model *m, const msci_exec *e,
                                   const uint8_t *need, int32_t backward, int32_t i,
                                   int32_t *k);

/* ---- gradient buckets (dist_grad.c) --------------------------------------------------------
 * The trainable parameters' gradients are summed over the ranks in buckets of about
 * `bucket` values, cut from the parameters in the order the backward pass completes
 * them (msci_exec_backward_order), so that a bucket can be sent as soon as the pass has
 * gone past its last parameter's node. With overlap, the backward hook starts each
 * bucket there (non-blocking all-reduce) and lets the engine progress after every node;
 * without, the buckets are summed one after the other once every rank finished its
 * pass. The buckets, hence the sums, are the same either way. */

/* Before the forward pass (so that a failure here is caught by the forward's agreement):
 * the step's plan from the marks and the nodes the objective gives a gradient (seeds). */
msc_status msci_dist_grad_plan(msc_dist *d, msc_model *m, msci_exec *e, const uint8_t *need,
                               const int32_t *seeds, int32_t n_seeds, size_t bucket);

/* Overlap: installs (on = 1) or removes (0) the backward hook of e. */
void msci_dist_grad_overlap(msc_dist *d, msci_exec *e, int32_t on);

/* Overlap, after a backward pass that stopped early (or never ran) on this rank: the
 * buckets the other ranks start, started here too (zeros) in their order — interleaved
 * with the flagged synchronised-BatchNorm reductions (sync_bn) as the others make
 * them — so that every collective finds its peers. Returns the first failure. */
msc_status msci_dist_grad_drain(msc_dist *d, const msc_model *m, const msci_exec *e,
                                const uint8_t *need, int32_t sync_bn);

/* Overlap: waits for every started bucket (each request is released, whatever the
 * outcome). Returns the first failure. */
msc_status msci_dist_grad_wait(msc_dist *d);

/* After the ranks agreed that the backward pass succeeded everywhere: without overlap
 * the buckets are summed now; then the sums replace the gradients. */
msc_status msci_dist_grad_finish(msc_dist *d, msc_model *m, msci_exec *e, int32_t overlap);

#endif
