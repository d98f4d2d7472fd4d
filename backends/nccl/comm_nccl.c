/*
 * comm_nccl.c — the NCCL communicator module (libmosaic_nccl.so), the table of
 * lib/contract/comm.h over NCCL (docs/distributed.md, "GPU with NCCL").
 *
 * Bootstrap. NCCL's ranks must share one ncclUniqueId: the module opens an MPI
 * communicator exactly as libmosaic_mpi.so does (user_comm NULL: MPI_COMM_WORLD,
 * initialising MPI when nobody has; else an MPI_Comm *, duplicated), rank 0 creates the
 * id and broadcasts it. MPI serves only the bootstrap and close; the collectives are
 * NCCL's. Each rank uses GPU (local rank mod device count), the local rank being its rank
 * among the processes of its node (MPI_COMM_TYPE_SHARED); CUDA_VISIBLE_DEVICES chooses
 * which GPUs are counted.
 *
 * Buffers. The contract passes host memory, so every collective is staged through a
 * device buffer the module owns (grown to the largest collective): copy in, NCCL on a
 * module-owned stream, copy out. The caller's current device is restored after each call.
 *
 * Bounded waits. The NCCL communicator is non-blocking (ncclConfig_t.blocking = 0), so
 * neither its creation nor a launch waits for peers. The module polls
 * ncclCommGetAsyncError and then cudaStreamQuery until the work is done, an error is
 * reported or the timeout passes; on timeout or error it calls ncclCommAbort (which
 * ends the kernels waiting for peers) and the communicator is broken: every later call
 * returns MSC_E_COMM at once, and close neither finalises NCCL nor MPI. The module never
 * aborts, exits or prints.
 *
 * Non-blocking all-reduce (API 2). Each request owns a pinned host buffer, a device
 * buffer and an event, kept in a pool for the next steps (a step's buckets come back with
 * the same sizes): start copies the caller's values into the pinned buffer, enqueues
 * host → device, ncclAllReduce, device → host and the event on the stream, and returns;
 * test asks the event and, once it completed, copies the sum to the caller's buffer. The
 * copies go through pinned memory because a copy from or to pageable memory may wait
 * for the stream's earlier work (another bucket's all-reduce) without bound. A blocking
 * collective first waits (bounded) for the requests in flight, so that its own pageable
 * copies and a growing staging buffer (cudaFree synchronises the device) never wait
 * behind them; the stream orders the work anyway. Buffers are never freed while a
 * request is in flight: a request too small for a bucket is grown only when nothing is
 * in flight, else a new one is made.
 */
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm.h"

#define MCM_EXPORT __attribute__((visibility("default")))

/* The bound of open's own exchanges, before the core's set_timeout (its default too:
 * MSCI_DIST_TIMEOUT_S in lib/train/dist.c). */
#define MCM_OPEN_TIMEOUT_S 300.0

static const mbk_host *g_host;

/* A non-blocking all-reduce and its buffers (kept in the communicator's pool). */
struct mcm_request {
  void *host, *dev; /* pinned host and device buffers of cap bytes */
  size_t cap;
  cudaEvent_t done_ev; /* recorded after the copy back to host */
  void *buf;           /* the caller's buffer */
  size_t bytes;
  int state; /* REQ_FREE, REQ_FLIGHT (enqueued), REQ_DONE (buf holds the sum) */
};
enum { REQ_FREE, REQ_FLIGHT, REQ_DONE };

struct mcm_comm {
  MPI_Comm comm; /* the bootstrap communicator */
  ncclComm_t nccl;
  cudaStream_t stream;
  void *dev; /* the staging buffer on the device */
  size_t dev_cap;
  int device;
  int rank, size;
  double timeout; /* seconds; 0 = none */
  int broken;
  int mpi_lost;       /* an MPI wait timed out: MPI_Comm_free/MPI_Finalize would hang */
  int finalize;       /* open initialised MPI: close finalises it */
  mcm_request **reqs; /* the pool of non-blocking all-reduces */
  int n_reqs, cap_reqs;
  int in_flight; /* requests in state REQ_FLIGHT */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sleeps a little longer each time (up to 1 ms) so that a waiting rank does not spin a
 * core its peers need, while short collectives still return within microseconds. */
static void pause_a_little(long *ns) {
  struct timespec ts = {0, *ns};
  nanosleep(&ts, NULL);
  if (*ns < 1000000) *ns *= 2;
}

/* Ends the NCCL communicator (kernels waiting for peers included) and marks c broken. */
static void break_comm(mcm_comm *c) {
  if (c->nccl) ncclCommAbort(c->nccl);
  c->nccl = NULL;
  c->broken = 1;
}

static msc_status nccl_failed(mcm_comm *c, const char *what, ncclResult_t r) {
  char detail[512] = "";
  const char *last = c->nccl ? ncclGetLastError(c->nccl) : NULL;
  if (last && last[0]) snprintf(detail, sizeof detail, " (%s)", last);
  break_comm(c);
  return g_host->fail(MSC_E_COMM, "nccl: %s on rank %d of %d failed: %s%s", what, c->rank,
                      c->size, ncclGetErrorString(r), detail);
}

static msc_status cuda_failed(mcm_comm *c, const char *what, cudaError_t e) {
  break_comm(c);
  return g_host->fail(MSC_E_COMM, "nccl: %s on rank %d of %d: CUDA error: %s", what, c->rank,
                      c->size, cudaGetErrorString(e));
}

/* A wait that ran past the communicator's timeout: the communicator is broken (another
 * rank failed or stopped) and the caller gets MSC_E_COMM naming the operation. */
static msc_status timed_out(mcm_comm *c, const char *what) {
  break_comm(c);
  return g_host->fail(MSC_E_COMM,
                      "nccl: %s on rank %d of %d did not complete within %.1f s: another "
                      "rank has failed or stopped (the communicator is now unusable)",
                      what, c->rank, c->size, c->timeout);
}

/* Waits until the NCCL communicator has no operation in progress and the stream is
 * idle, an error is reported, or the timeout passes. Used after creation (the stream
 * is then idle), after every launch and by close (ncclCommFinalize). */
static msc_status wait_nccl(mcm_comm *c, const char *what) {
  const double t0 = now_s();
  long pause_ns = 1000;
  for (;;) {
    ncclResult_t async = ncclSuccess;
    ncclResult_t r = ncclCommGetAsyncError(c->nccl, &async);
    if (r != ncclSuccess) return nccl_failed(c, what, r);
    if (async != ncclSuccess && async != ncclInProgress) return nccl_failed(c, what, async);
    /* The stream is asked only once NCCL has enqueued the work (async == ncclSuccess):
     * before, an idle stream would say "done" too early. */
    if (async == ncclSuccess) {
      cudaError_t e = cudaStreamQuery(c->stream);
      if (e == cudaSuccess) return MSC_OK;
      if (e != cudaErrorNotReady) return cuda_failed(c, what, e);
    }
    if (c->timeout > 0 && now_s() - t0 > c->timeout) return timed_out(c, what);
    pause_a_little(&pause_ns);
  }
}

/* A launch returns ncclInProgress on a non-blocking communicator while it enqueues. */
static msc_status launched(mcm_comm *c, const char *what, ncclResult_t r) {
  if (r != ncclSuccess && r != ncclInProgress) return nccl_failed(c, what, r);
  return wait_nccl(c, what);
}

/* Waits for an MPI request of the bootstrap, bounded like wait_nccl. */
static msc_status wait_mpi(mcm_comm *c, MPI_Request *req, const char *what) {
  const double t0 = now_s();
  long pause_ns = 1000;
  for (;;) {
    int done = 0;
    int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
      return g_host->fail(MSC_E_COMM, "nccl: bootstrap %s failed (MPI error %d)", what, rc);
    if (done) return MSC_OK;
    if (c->timeout > 0 && now_s() - t0 > c->timeout) {
      c->mpi_lost = 1;
      return g_host->fail(MSC_E_COMM,
                          "nccl: bootstrap %s on rank %d of %d did not complete within %.1f s: "
                          "another rank has failed or stopped",
                          what, c->rank, c->size, c->timeout);
    }
    pause_a_little(&pause_ns);
  }
}

/* Makes c's GPU current for the calling thread; *prev receives the caller's. */
static msc_status enter(mcm_comm *c, const char *what, int *prev) {
  if (c->broken)
    return g_host->fail(MSC_E_COMM,
                        "nccl: %s: the communicator is broken by an earlier failed collective",
                        what);
  *prev = -1;
  if (cudaGetDevice(prev) != cudaSuccess) *prev = -1;
  if (*prev != c->device) {
    cudaError_t e = cudaSetDevice(c->device);
    if (e != cudaSuccess) return cuda_failed(c, what, e);
  }
  return MSC_OK;
}

static msc_status leave(mcm_comm *c, int prev, msc_status st) {
  if (prev >= 0 && prev != c->device) cudaSetDevice(prev);
  return st;
}

/* Grows the staging buffer to at least bytes (rounded up to 1 MiB). */
static msc_status staging(mcm_comm *c, size_t bytes, const char *what) {
  if (c->dev_cap >= bytes) return MSC_OK;
  size_t cap = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
  /* The stream is idle between collectives, so the old buffer may go at once. */
  if (c->dev) cudaFree(c->dev);
  c->dev = NULL;
  c->dev_cap = 0;
  cudaError_t e = cudaMalloc(&c->dev, cap);
  if (e != cudaSuccess) {
    c->dev = NULL;
    break_comm(c);
    return g_host->fail(MSC_E_OUT_OF_MEMORY,
                        "nccl: %s on rank %d: cannot allocate the %zu-byte staging buffer on "
                        "GPU %d: %s (the communicator is now unusable)",
                        what, c->rank, cap, c->device, cudaGetErrorString(e));
  }
  c->dev_cap = cap;
  return MSC_OK;
}

static msc_status copy(mcm_comm *c, void *dst, const void *src, size_t bytes,
                       enum cudaMemcpyKind kind, const char *what) {
  if (!bytes) return MSC_OK;
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, c->stream);
  if (e != cudaSuccess) return cuda_failed(c, what, e);
  return MSC_OK;
}

/* ---- open ------------------------------------------------------------------------------ */

static void release(mcm_comm *c) {
  if (c->nccl) {
    if (c->broken) {
      ncclCommAbort(c->nccl);
    } else {
      ncclResult_t r = ncclCommFinalize(c->nccl);
      /* A flush that fails or times out aborts the communicator (wait_nccl). */
      if ((r == ncclSuccess || r == ncclInProgress) && wait_nccl(c, "close") == MSC_OK)
        ncclCommDestroy(c->nccl);
      else if (c->nccl)
        ncclCommAbort(c->nccl);
    }
    c->nccl = NULL;
  }
  if (c->dev) cudaFree(c->dev);
  for (int i = 0; i < c->n_reqs; ++i) {
    mcm_request *q = c->reqs[i];
    if (q->host) cudaFreeHost(q->host);
    if (q->dev) cudaFree(q->dev);
    if (q->done_ev) cudaEventDestroy(q->done_ev);
    free(q);
  }
  free(c->reqs);
  c->reqs = NULL;
  c->n_reqs = c->cap_reqs = 0;
  if (c->stream) cudaStreamDestroy(c->stream);
  c->dev = NULL;
  c->stream = NULL;
}

/* Frees the bootstrap communicator and finalises MPI when open initialised it, unless a
 * peer is lost (both would wait for it). */
static void release_mpi(mcm_comm *c) {
  if (c->mpi_lost || c->broken) return;
  if (c->comm != MPI_COMM_NULL) MPI_Comm_free(&c->comm);
  if (c->finalize) MPI_Finalize();
}

/* Everything after MPI is up: the GPU, the stream, the shared id, the NCCL communicator.
 * Every rank learns whether every rank could set up before anyone waits in NCCL. */
static msc_status setup(mcm_comm *c, int ndev) {
  MPI_Comm node;
  int local = 0;
  if (MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node) ==
      MPI_SUCCESS) {
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
  } else {
    local = c->rank;
  }
  c->device = local % ndev;
  struct {
    ncclUniqueId id;
    char why[256];
  } mine;
  memset(&mine, 0, sizeof mine);
  cudaError_t e = cudaSetDevice(c->device);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
  if (e != cudaSuccess)
    snprintf(mine.why, sizeof mine.why, "GPU %d: %s", c->device, cudaGetErrorString(e));
  if (!mine.why[0] && c->rank == 0) {
    ncclResult_t r = ncclGetUniqueId(&mine.id);
    if (r != ncclSuccess)
      snprintf(mine.why, sizeof mine.why, "ncclGetUniqueId: %s", ncclGetErrorString(r));
  }
  int bad = mine.why[0] != 0, any_bad = 0;
  MPI_Request req;
  if (MPI_Iallreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, c->comm, &req) != MPI_SUCCESS)
    return g_host->fail(MSC_E_COMM, "nccl: bootstrap MPI_Iallreduce failed");
  msc_status st = wait_mpi(c, &req, "check");
  if (st != MSC_OK) return st;
  if (bad)
    return g_host->fail(MSC_E_BACKEND_UNAVAILABLE, "nccl: rank %d of %d cannot start: %s",
                        c->rank, c->size, mine.why);
  if (any_bad)
    return g_host->fail(MSC_E_COMM, "nccl: rank %d of %d: another rank could not start NCCL",
                        c->rank, c->size);
  if (MPI_Ibcast(&mine.id, (int)sizeof mine.id, MPI_BYTE, 0, c->comm, &req) != MPI_SUCCESS)
    return g_host->fail(MSC_E_COMM, "nccl: bootstrap MPI_Ibcast failed");
  st = wait_mpi(c, &req, "broadcast of the unique id");
  if (st != MSC_OK) return st;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclResult_t r = ncclCommInitRankConfig(&c->nccl, c->size, mine.id, c->rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    c->nccl = NULL; /* nothing to abort */
    c->broken = 1;
    return g_host->fail(MSC_E_COMM, "nccl: ncclCommInitRankConfig on rank %d of %d: %s (%s)",
                        c->rank, c->size, ncclGetErrorString(r), ncclGetLastError(NULL));
  }
  return wait_nccl(c, "ncclCommInitRankConfig");
}

static msc_status comm_open(void *user_comm, mcm_comm **out) {
  /* No GPU: refuse before touching MPI, so that a program may still use "mpi". */
  int ndev = 0;
  cudaError_t e = cudaGetDeviceCount(&ndev);
  if (e != cudaSuccess || ndev < 1)
    return g_host->fail(
        MSC_E_BACKEND_UNAVAILABLE,
        "nccl: no CUDA device (cudaGetDeviceCount: %s): the NCCL engine needs a "
        "GPU for every rank; the \"mpi\" engine runs without",
        e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (finalized)
    return g_host->fail(MSC_E_COMM, "nccl: MPI (its bootstrap) has already been finalised");
  mcm_comm *c = calloc(1, sizeof *c);
  if (!c) return g_host->fail(MSC_E_OUT_OF_MEMORY, "nccl: communicator");
  c->comm = MPI_COMM_NULL;
  c->timeout = MCM_OPEN_TIMEOUT_S;
  if (!inited) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) {
      free(c);
      return g_host->fail(MSC_E_COMM, "nccl: MPI_Init_thread (the bootstrap) failed (code %d)",
                          rc);
    }
    c->finalize = 1;
  }
  MPI_Comm base = user_comm ? *(MPI_Comm *)user_comm : MPI_COMM_WORLD;
  if (MPI_Comm_dup(base, &c->comm) != MPI_SUCCESS) {
    if (c->finalize) MPI_Finalize();
    free(c);
    return g_host->fail(MSC_E_COMM, "nccl: MPI_Comm_dup (the bootstrap) failed");
  }
  MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(c->comm, &c->rank);
  MPI_Comm_size(c->comm, &c->size);
  int prev = -1;
  if (cudaGetDevice(&prev) != cudaSuccess) prev = -1;
  msc_status st = setup(c, ndev);
  if (prev >= 0) cudaSetDevice(prev);
  if (st != MSC_OK) {
    release(c);
    release_mpi(c);
    free(c);
    return st;
  }
  *out = c;
  return MSC_OK;
}

static int32_t comm_rank(const mcm_comm *c) {
  return c->rank;
}
static int32_t comm_size(const mcm_comm *c) {
  return c->size;
}
static void comm_set_timeout(mcm_comm *c, double s) {
  c->timeout = s > 0 ? s : 0;
}

/* ---- non-blocking all-reduce (API 2) ----------------------------------------------------- */

/* One look at q in flight: done when its event completed (the sum is then copied to the
 * caller's buffer); an error breaks the communicator. */
static msc_status poll_request(mcm_comm *c, mcm_request *q, const char *what) {
  if (q->state != REQ_FLIGHT) return MSC_OK;
  ncclResult_t async = ncclSuccess;
  ncclResult_t r = ncclCommGetAsyncError(c->nccl, &async);
  if (r != ncclSuccess) return nccl_failed(c, what, r);
  if (async != ncclSuccess && async != ncclInProgress) return nccl_failed(c, what, async);
  cudaError_t e = cudaEventQuery(q->done_ev);
  if (e == cudaErrorNotReady) return MSC_OK;
  if (e != cudaSuccess) return cuda_failed(c, what, e);
  memcpy(q->buf, q->host, q->bytes);
  q->state = REQ_DONE;
  c->in_flight--;
  return MSC_OK;
}

/* Waits for q like a collective: until done, an error, or the timeout from now. */
static msc_status wait_request(mcm_comm *c, mcm_request *q, const char *what) {
  const double t0 = now_s();
  long pause_ns = 1000;
  for (;;) {
    msc_status st = poll_request(c, q, what);
    if (st != MSC_OK || q->state != REQ_FLIGHT) return st;
    if (c->timeout > 0 && now_s() - t0 > c->timeout) return timed_out(c, what);
    pause_a_little(&pause_ns);
  }
}

/* Before a blocking collective: the requests in flight done (their results stay for the
 * caller's wait). */
static msc_status settle(mcm_comm *c, const char *what) {
  for (int i = 0; i < c->n_reqs && c->in_flight > 0; ++i) {
    msc_status st = wait_request(c, c->reqs[i], what);
    if (st != MSC_OK) return st;
  }
  return MSC_OK;
}

/* A free request of at least bytes: a pooled one, one grown (only while nothing is in
 * flight: freeing synchronises the device), or a new one. */
static msc_status take_request(mcm_comm *c, size_t bytes, const char *what, mcm_request **out) {
  mcm_request *q = NULL, *small = NULL;
  for (int i = 0; i < c->n_reqs && !q; ++i) {
    if (c->reqs[i]->state != REQ_FREE) continue;
    if (c->reqs[i]->cap >= bytes)
      q = c->reqs[i];
    else if (!small)
      small = c->reqs[i];
  }
  if (!q && small && c->in_flight == 0) {
    q = small;
    if (q->host) cudaFreeHost(q->host);
    if (q->dev) cudaFree(q->dev);
    q->host = q->dev = NULL;
    q->cap = 0;
  }
  if (!q) {
    if (c->n_reqs == c->cap_reqs) {
      int cap = c->cap_reqs ? 2 * c->cap_reqs : 8;
      mcm_request **p = realloc(c->reqs, (size_t)cap * sizeof *p);
      if (!p) goto oom;
      c->reqs = p;
      c->cap_reqs = cap;
    }
    q = calloc(1, sizeof *q);
    if (!q) goto oom;
    cudaError_t e = cudaEventCreateWithFlags(&q->done_ev, cudaEventDisableTiming);
    if (e != cudaSuccess) {
      free(q);
      return cuda_failed(c, what, e);
    }
    c->reqs[c->n_reqs++] = q;
  }
  if (q->cap < bytes) {
    size_t cap = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    cudaError_t e = cudaHostAlloc(&q->host, cap, cudaHostAllocDefault);
    if (e == cudaSuccess) e = cudaMalloc(&q->dev, cap);
    if (e != cudaSuccess) {
      if (q->host) cudaFreeHost(q->host);
      q->host = q->dev = NULL;
      break_comm(c);
      return g_host->fail(MSC_E_OUT_OF_MEMORY,
                          "nccl: %s on rank %d: cannot allocate %zu bytes of pinned host and "
                          "GPU %d memory: %s (the communicator is now unusable)",
                          what, c->rank, cap, c->device, cudaGetErrorString(e));
    }
    q->cap = cap;
  }
  *out = q;
  return MSC_OK;
oom:
  break_comm(c);
  return g_host->fail(MSC_E_OUT_OF_MEMORY, "nccl: %s: request", what);
}

static msc_status comm_all_reduce_start(mcm_comm *c, void *buf, size_t count, int32_t dtype,
                                        mcm_request **out) {
  static const char what[] = "all_reduce_start";
  int prev;
  msc_status st = enter(c, what, &prev);
  if (st != MSC_OK) return st;
  const size_t bytes = count * (dtype == MCM_F64 ? sizeof(double) : sizeof(float));
  mcm_request *q = NULL;
  st = take_request(c, bytes ? bytes : 1, what, &q);
  if (st != MSC_OK) return leave(c, prev, st);
  memcpy(q->host, buf, bytes);
  st = copy(c, q->dev, q->host, bytes, cudaMemcpyHostToDevice, what);
  if (st == MSC_OK && count) {
    ncclResult_t r =
        ncclAllReduce(q->dev, q->dev, count, dtype == MCM_F64 ? ncclFloat64 : ncclFloat32,
                      ncclSum, c->nccl, c->stream);
    if (r != ncclSuccess && r != ncclInProgress) st = nccl_failed(c, what, r);
    /* Nothing more goes on the stream until NCCL has enqueued its work (non-blocking
     * communicator); bounded by the timeout. */
    const double t0 = now_s();
    long pause_ns = 1000;
    while (st == MSC_OK && r == ncclInProgress) {
      ncclResult_t g = ncclCommGetAsyncError(c->nccl, &r);
      if (g != ncclSuccess)
        st = nccl_failed(c, what, g);
      else if (r != ncclSuccess && r != ncclInProgress)
        st = nccl_failed(c, what, r);
      else if (r == ncclInProgress && c->timeout > 0 && now_s() - t0 > c->timeout) {
        break_comm(c);
        st = g_host->fail(MSC_E_COMM,
                          "nccl: %s on rank %d of %d: NCCL did not enqueue within "
                          "%.1f s (the communicator is now unusable)",
                          what, c->rank, c->size, c->timeout);
      } else if (r == ncclInProgress)
        pause_a_little(&pause_ns);
    }
  }
  if (st == MSC_OK) st = copy(c, q->host, q->dev, bytes, cudaMemcpyDeviceToHost, what);
  if (st == MSC_OK) {
    cudaError_t e = cudaEventRecord(q->done_ev, c->stream);
    if (e != cudaSuccess) st = cuda_failed(c, what, e);
  }
  if (st != MSC_OK) return leave(c, prev, st); /* q stays free in the pool */
  q->buf = buf;
  q->bytes = bytes;
  q->state = REQ_FLIGHT;
  c->in_flight++;
  *out = q;
  return leave(c, prev, MSC_OK);
}

static msc_status comm_test(mcm_comm *c, mcm_request *q, int32_t *done) {
  static const char what[] = "all_reduce (test)";
  *done = 0;
  int prev;
  msc_status st = enter(c, what, &prev);
  if (st != MSC_OK) return st;
  st = poll_request(c, q, what);
  if (st == MSC_OK) *done = q->state == REQ_DONE;
  return leave(c, prev, st);
}

static msc_status comm_wait(mcm_comm *c, mcm_request *q) {
  static const char what[] = "all_reduce (started earlier)";
  int prev;
  msc_status st = enter(c, what, &prev);
  if (st == MSC_OK) st = leave(c, prev, wait_request(c, q, what));
  /* Released whatever happened: a broken communicator's kernels were ended by
   * ncclCommAbort, and nothing will be enqueued on the stream again. */
  if (q->state == REQ_FLIGHT) c->in_flight--;
  q->state = REQ_FREE;
  return st;
}

/* ---- collectives ----------------------------------------------------------------------- */

static msc_status comm_all_reduce(mcm_comm *c, void *buf, size_t count, int32_t dtype) {
  static const char what[] = "all_reduce";
  int prev;
  msc_status st = enter(c, what, &prev);
  if (st != MSC_OK) return st;
  st = settle(c, what);
  if (st != MSC_OK) return leave(c, prev, st);
  if (count == 0) return leave(c, prev, MSC_OK);
  const size_t bytes = count * (dtype == MCM_F64 ? sizeof(double) : sizeof(float));
  st = staging(c, bytes, what);
  if (st == MSC_OK) st = copy(c, c->dev, buf, bytes, cudaMemcpyHostToDevice, what);
  if (st == MSC_OK)
    st = launched(c, what,
                  ncclAllReduce(c->dev, c->dev, count,
                                dtype == MCM_F64 ? ncclFloat64 : ncclFloat32, ncclSum, c->nccl,
                                c->stream));
  /* Copied back only after the collective is done: a copy into pageable memory would
   * otherwise wait for it without bound. */
  if (st == MSC_OK) st = copy(c, buf, c->dev, bytes, cudaMemcpyDeviceToHost, what);
  if (st == MSC_OK) st = wait_nccl(c, what);
  return leave(c, prev, st);
}

static msc_status comm_all_gather(mcm_comm *c, const void *send, void *recv, size_t bytes) {
  static const char what[] = "all_gather";
  int prev;
  msc_status st = enter(c, what, &prev);
  if (st != MSC_OK) return st;
  st = settle(c, what);
  if (st != MSC_OK) return leave(c, prev, st);
  if (bytes == 0) return leave(c, prev, MSC_OK);
  const size_t total = bytes * (size_t)c->size;
  st = staging(c, total, what);
  /* In place: this rank's part already at its offset of the result. */
  char *mine = (char *)c->dev + bytes * (size_t)c->rank;
  if (st == MSC_OK) st = copy(c, mine, send, bytes, cudaMemcpyHostToDevice, what);
  if (st == MSC_OK)
    st = launched(c, what, ncclAllGather(mine, c->dev, bytes, ncclUint8, c->nccl, c->stream));
  if (st == MSC_OK) st = copy(c, recv, c->dev, total, cudaMemcpyDeviceToHost, what);
  if (st == MSC_OK) st = wait_nccl(c, what);
  return leave(c, prev, st);
}

static msc_status comm_broadcast(mcm_comm *c, void *buf, size_t bytes, int32_t root) {
  static const char what[] = "broadcast";
  if (root < 0 || root >= c->size)
    return g_host->fail(MSC_E_INVALID_ARGUMENT, "nccl: broadcast from rank %d of %d", (int)root,
                        c->size);
  int prev;
  msc_status st = enter(c, what, &prev);
  if (st != MSC_OK) return st;
  st = settle(c, what);
  if (st != MSC_OK) return leave(c, prev, st);
  if (bytes == 0) return leave(c, prev, MSC_OK);
  st = staging(c, bytes, what);
  if (st == MSC_OK && c->rank == root)
    st = copy(c, c->dev, buf, bytes, cudaMemcpyHostToDevice, what);
  if (st == MSC_OK)
    st = launched(c, what,
                  ncclBroadcast(c->dev, c->dev, bytes, ncclUint8, root, c->nccl, c->stream));
  if (st == MSC_OK && c->rank != root)
    st = copy(c, buf, c->dev, bytes, cudaMemcpyDeviceToHost, what);
  if (st == MSC_OK) st = wait_nccl(c, what);
  return leave(c, prev, st);
}

/* NCCL has no barrier: an all-reduce of one value waits for every rank as well. */
static msc_status comm_barrier(mcm_comm *c) {
  static const char what[] = "barrier";
  int prev;
  msc_status st = enter(c, what, &prev);
  if (st != MSC_OK) return st;
  st = settle(c, what);
  if (st != MSC_OK) return leave(c, prev, st);
  st = staging(c, sizeof(float), what);
  if (st == MSC_OK) {
    cudaError_t e = cudaMemsetAsync(c->dev, 0, sizeof(float), c->stream);
    if (e != cudaSuccess) st = cuda_failed(c, what, e);
  }
  if (st == MSC_OK)
    st = launched(c, what,
                  ncclAllReduce(c->dev, c->dev, 1, ncclFloat32, ncclSum, c->nccl, c->stream));
  return leave(c, prev, st);
}

static void comm_close(mcm_comm *c) {
  if (!c) return;
  int prev = -1;
  if (cudaGetDevice(&prev) != cudaSuccess) prev = -1;
  cudaSetDevice(c->device);
  release(c);
  if (prev >= 0) cudaSetDevice(prev);
  release_mpi(c);
  free(c);
}

static const mcm_iface g_iface = {
    MCM_API_VERSION,
    (uint32_t)sizeof(mcm_iface),
    "nccl",
    comm_open,
    comm_rank,
    comm_size,
    comm_set_timeout,
    comm_all_reduce,
    comm_all_gather,
    comm_broadcast,
    comm_barrier,
    comm_close,
    comm_all_reduce_start,
    comm_test,
    comm_wait,
};

MCM_EXPORT const mcm_iface *mosaic_comm_module_init(const mbk_host *host);
MCM_EXPORT const mcm_iface *mosaic_comm_module_init(const mbk_host *host) {
  if (!host || host->api_version != MBK_API_VERSION || !host->fail) return NULL;
  g_host = host;
  return &g_iface;
}
