/*
 * comm.h — the communicator contract: what a communicator module (libmosaic_mpi.so,
 * libmosaic_nccl.so) offers the core for data-parallel training
 * (docs/distributed.md). Like the backend modules, a communicator lives in its own
 * shared object that the core opens at run time (lib/train/dist.c), so that libmosaic
 * never depends on MPI: the module is the only part linked against it.
 *
 * The module exports MCM_MODULE_INIT_SYMBOL, a mcm_init_fn. The core calls it with the
 * host services of the backend contract (log, fail) and checks the returned table: API
 * version, struct size, every function present.
 *
 * Every collective is blocking for the caller but bounded: a module waits for a
 * collective at most the communicator's timeout (set_timeout; 0 = wait forever) and
 * then returns MSC_E_COMM with a message naming the collective. After a failed or
 * timed-out collective the communicator is broken: every later call returns
 * MSC_E_COMM at once (the peers are in an unknown state). A module never aborts or
 * exits the process (no MPI_Abort): the caller decides.
 *
 * API 2 adds a non-blocking all-reduce (all_reduce_start, test, wait), which lets the
 * core sum the gradient buckets while the backward pass goes on (lib/train/dist_grad.c,
 * docs/distributed.md, "Overlap"). A started all-reduce takes its place among the
 * communicator's collectives when it is started: every rank must start its all-reduces
 * and call the blocking collectives in the same order (MPI's rule for non-blocking
 * collectives). Several may be in flight. The version is checked for equality: both
 * modules are built with the core (backends/mpi, backends/nccl), so an API 1 module is
 * refused rather than served without overlap.
 */
#ifndef MOSAIC_CONTRACT_COMM_H
#define MOSAIC_CONTRACT_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#define MCM_API_VERSION        2u
#define MCM_MODULE_INIT_SYMBOL "mosaic_comm_module_init"

/* Element types of all_reduce (a sum). */
#define MCM_F32 0
#define MCM_F64 1

typedef struct mcm_comm mcm_comm;       /* a module's communicator */
typedef struct mcm_request mcm_request; /* a started all-reduce (API 2) */

typedef struct mcm_iface {
  uint32_t api_version; /* MCM_API_VERSION */
  uint32_t struct_size; /* sizeof(mcm_iface) */
  const char *name;     /* the engine: "mpi" */
  /* Opens a communicator. user_comm: NULL for every process of the job (the module
   * initialises its runtime when nobody has), or a pointer to the engine's own
   * communicator handle (an MPI_Comm *), which is duplicated: the caller keeps its own. */
  msc_status (*open)(void *user_comm, mcm_comm **out);
  int32_t (*rank)(const mcm_comm *c);
  int32_t (*size)(const mcm_comm *c);
  void (*set_timeout)(mcm_comm *c, double seconds);
  /* In-place element-wise sum over every rank of count elements of type dtype. */
  msc_status (*all_reduce)(mcm_comm *c, void *buf, size_t count, int32_t dtype);
  /* recv (size · bytes) receives the bytes of every rank, rank order. */
  msc_status (*all_gather)(mcm_comm *c, const void *send, void *recv, size_t bytes);
  /* buf (bytes) of rank root replaces everyone's. */
  msc_status (*broadcast)(mcm_comm *c, void *buf, size_t bytes, int32_t root);
  msc_status (*barrier)(mcm_comm *c);
  /* Frees the communicator; finalises the runtime when open initialised it and the
   * communicator is not broken (a broken one would wait for dead peers). Every started
   * all-reduce must have been waited for. */
  void (*close)(mcm_comm *c);
  /* ---- API 2: non-blocking all-reduce ---- */
  /* Starts the in-place sum of all_reduce and returns at once: *req (set only on
   * MSC_OK) is then the caller's until wait. buf must stay valid and must be neither read
   * nor written by the caller until test reported done or wait returned. A failure to
   * start is a failed collective (the communicator is broken). */
  msc_status (*all_reduce_start)(mcm_comm *c, void *buf, size_t count, int32_t dtype,
                                 mcm_request **req);
  /* Progresses the engine and asks whether req completed: *done = 1 once buf holds the
   * sum (0 otherwise); req stays the caller's. Never waits. An error (a failed
   * collective, a broken communicator) returns MSC_E_COMM and leaves *done at 0. */
  msc_status (*test)(mcm_comm *c, mcm_request *req, int32_t *done);
  /* Waits for req like a blocking collective (at most the timeout, counted from this
   * call; then MSC_E_COMM and the communicator is broken) and releases req, whatever it
   * returns: every started request is waited for exactly once. On a broken communicator
   * it returns MSC_E_COMM at once; the engine may then still hold the operation (MPI
   * cannot cancel a collective), so buf must stay allocated until the process ends or
   * the caller accepts that it may still be written. */
  msc_status (*wait)(mcm_comm *c, mcm_request *req);
} mcm_iface;

typedef const mcm_iface *(*mcm_init_fn)(const mbk_host *host);

#endif
