/*
 * comm_mpi.c — the MPI communicator module (libmosaic_mpi.so), the table of
 * lib/contract/comm.h over MPI.
 *
 * Every collective is a non-blocking MPI call (MPI_Iallreduce, MPI_Iallgather,
 * MPI_Ibcast, MPI_Ibarrier) polled with MPI_Test until it completes or the timeout
 * passes; polling sleeps a little between tests (up to 1 ms) so that a waiting rank
 * does not spin a core its peers need. A timed-out collective cannot be cancelled in
 * MPI: the communicator is then marked broken and every later call fails at once,
 * close skips MPI_Comm_free and MPI_Finalize (both would wait for the lost peers), and
 * the process is left to exit with the error its caller reports. The module never
 * calls MPI_Abort: ending the job is the program's decision.
 *
 * Errors of MPI itself come back as codes (MPI_ERRORS_RETURN on the communicator), not
 * as MPI's default abort.
 *
 * The non-blocking all-reduce (API 2) is the same MPI_Iallreduce, handed to the caller
 * as a request: test is one MPI_Testall (which also lets MPI progress the other
 * requests: without an asynchronous progress thread, Open MPI moves a collective only
 * inside MPI calls), wait is the bounded polling above. A request whose wait fails is
 * released with its MPI requests still active (MPI_Request_free is erroneous for a
 * collective); the communicator is broken by then.
 */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm.h"

#define MCM_EXPORT __attribute__((visibility("default")))

static const mbk_host *g_host;

struct mcm_comm {
  MPI_Comm comm;
  int rank, size;
  double timeout; /* seconds; 0 = none */
  int broken;
  int finalize; /* open initialised MPI: close finalises it */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static msc_status mpi_error(mcm_comm *c, const char *what, int code) {
  char text[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(code, text, &len);
  if (c) c->broken = 1;
  return g_host->fail(MSC_E_COMM, "mpi: %s failed: %s", what, text);
}

/* Waits for req until done or the deadline; a timed-out communicator is broken. */
static msc_status wait_bounded(mcm_comm *c, MPI_Request *req, const char *what) {
  const double t0 = now_s();
  long pause_ns = 1000;
  for (;;) {
    int done = 0;
    int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_error(c, what, rc);
    if (done) return MSC_OK;
    double waited = now_s() - t0;
    if (c->timeout > 0 && waited > c->timeout) {
      c->broken = 1;
      return g_host->fail(MSC_E_COMM,
                          "mpi: %s on rank %d of %d did not complete within %.1f s: another "
                          "rank has failed or stopped (the communicator is now unusable)",
                          what, c->rank, c->size, c->timeout);
    }
    struct timespec ts = {0, pause_ns};
    nanosleep(&ts, NULL);
    if (pause_ns < 1000000) pause_ns *= 2;
  }
}

static msc_status usable(mcm_comm *c, const char *what) {
  if (c->broken)
    return g_host->fail(MSC_E_COMM,
                        "mpi: %s: the communicator is broken by an earlier failed collective",
                        what);
  return MSC_OK;
}

static msc_status comm_open(void *user_comm, mcm_comm **out) {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (finalized) return g_host->fail(MSC_E_COMM, "mpi: MPI has already been finalised");
  mcm_comm *c = calloc(1, sizeof *c);
  if (!c) return g_host->fail(MSC_E_OUT_OF_MEMORY, "mpi: communicator");
  if (!inited) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) {
      free(c);
      return g_host->fail(MSC_E_COMM, "mpi: MPI_Init_thread failed (code %d)", rc);
    }
    c->finalize = 1;
  }
  MPI_Comm base = user_comm ? *(MPI_Comm *)user_comm : MPI_COMM_WORLD;
  int rc = MPI_Comm_dup(base, &c->comm);
  if (rc != MPI_SUCCESS) {
    msc_status st = mpi_error(NULL, "MPI_Comm_dup", rc);
    if (c->finalize) MPI_Finalize();
    free(c);
    return st;
  }
  MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(c->comm, &c->rank);
  MPI_Comm_size(c->comm, &c->size);
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

/* MPI counts are int: larger buffers go in pieces. */
#define MCM_CHUNK (1 << 28)

static msc_status comm_all_reduce(mcm_comm *c, void *buf, size_t count, int32_t dtype) {
  msc_status st = usable(c, "all_reduce");
  if (st != MSC_OK) return st;
  MPI_Datatype t = dtype == MCM_F64 ? MPI_DOUBLE : MPI_FLOAT;
  size_t esz = dtype == MCM_F64 ? sizeof(double) : sizeof(float);
  for (size_t at = 0; at < count; at += MCM_CHUNK) {
    size_t n = count - at < MCM_CHUNK ? count - at : MCM_CHUNK;
    MPI_Request req;
    int rc =
        MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + at * esz, (int)n, t, MPI_SUM, c->comm, &req);
    if (rc != MPI_SUCCESS) return mpi_error(c, "MPI_Iallreduce", rc);
    st = wait_bounded(c, &req, "all_reduce");
    if (st != MSC_OK) return st;
  }
  return MSC_OK;
}

/* ---- non-blocking all-reduce (API 2) ---------------------------------------------------- */

struct mcm_request {
  int n, done;
  MPI_Request r[]; /* one per chunk of MCM_CHUNK values */
};

static msc_status comm_all_reduce_start(mcm_comm *c, void *buf, size_t count, int32_t dtype,
                                        mcm_request **out) {
  msc_status st = usable(c, "all_reduce_start");
  if (st != MSC_OK) return st;
  MPI_Datatype t = dtype == MCM_F64 ? MPI_DOUBLE : MPI_FLOAT;
  size_t esz = dtype == MCM_F64 ? sizeof(double) : sizeof(float);
  size_t chunks = count / MCM_CHUNK + 1;
  mcm_request *q = calloc(1, sizeof *q + chunks * sizeof(MPI_Request));
  if (!q) {
    /* The peers start this all-reduce: not taking part breaks the communicator. */
    c->broken = 1;
    return g_host->fail(MSC_E_OUT_OF_MEMORY, "mpi: all_reduce_start: request");
  }
  for (size_t at = 0; at < count || q->n == 0; at += MCM_CHUNK) {
    size_t n = count - at < MCM_CHUNK ? count - at : MCM_CHUNK;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + at * esz, (int)n, t, MPI_SUM, c->comm,
                            &q->r[q->n]);
    if (rc != MPI_SUCCESS) {
      free(q); /* the chunks already started stay with MPI (cannot be freed) */
      return mpi_error(c, "MPI_Iallreduce", rc);
    }
    q->n++;
  }
  *out = q;
  return MSC_OK;
}

static msc_status comm_test(mcm_comm *c, mcm_request *q, int32_t *done) {
  *done = 0;
  msc_status st = usable(c, "test");
  if (st != MSC_OK) return st;
  if (!q->done) {
    int flag = 0;
    int rc = MPI_Testall(q->n, q->r, &flag, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_error(c, "MPI_Testall", rc);
    q->done = flag;
  }
  *done = q->done;
  return MSC_OK;
}

static msc_status comm_wait(mcm_comm *c, mcm_request *q) {
  msc_status st = usable(c, "wait");
  const double t0 = now_s();
  long pause_ns = 1000;
  while (st == MSC_OK && !q->done) {
    int flag = 0;
    int rc = MPI_Testall(q->n, q->r, &flag, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) {
      st = mpi_error(c, "MPI_Testall", rc);
      break;
    }
    q->done = flag;
    if (flag) break;
    if (c->timeout > 0 && now_s() - t0 > c->timeout) {
      c->broken = 1;
      st = g_host->fail(MSC_E_COMM,
                        "mpi: all_reduce (started earlier) on rank %d of %d did not complete "
                        "within %.1f s: another rank has failed or stopped (the communicator "
                        "is now unusable)",
                        c->rank, c->size, c->timeout);
      break;
    }
    struct timespec ts = {0, pause_ns};
    nanosleep(&ts, NULL);
    if (pause_ns < 1000000) pause_ns *= 2;
  }
  free(q);
  return st;
}

static msc_status comm_all_gather(mcm_comm *c, const void *send, void *recv, size_t bytes) {
  msc_status st = usable(c, "all_gather");
  if (st != MSC_OK) return st;
  if (bytes > INT_MAX)
    return g_host->fail(MSC_E_UNSUPPORTED, "mpi: all_gather of %zu bytes per rank (at most %d)",
                        bytes, INT_MAX);
  MPI_Request req;
  int rc =
      MPI_Iallgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, c->comm, &req);
  if (rc != MPI_SUCCESS) return mpi_error(c, "MPI_Iallgather", rc);
  return wait_bounded(c, &req, "all_gather");
}

static msc_status comm_broadcast(mcm_comm *c, void *buf, size_t bytes, int32_t root) {
  msc_status st = usable(c, "broadcast");
  if (st != MSC_OK) return st;
  for (size_t at = 0; at < bytes; at += MCM_CHUNK) {
    size_t n = bytes - at < MCM_CHUNK ? bytes - at : MCM_CHUNK;
    MPI_Request req;
    int rc = MPI_Ibcast((char *)buf + at, (int)n, MPI_BYTE, root, c->comm, &req);
    if (rc != MPI_SUCCESS) return mpi_error(c, "MPI_Ibcast", rc);
    st = wait_bounded(c, &req, "broadcast");
    if (st != MSC_OK) return st;
  }
  return MSC_OK;
}

static msc_status comm_barrier(mcm_comm *c) {
  msc_status st = usable(c, "barrier");
  if (st != MSC_OK) return st;
  MPI_Request req;
  int rc = MPI_Ibarrier(c->comm, &req);
  if (rc != MPI_SUCCESS) return mpi_error(c, "MPI_Ibarrier", rc);
  return wait_bounded(c, &req, "barrier");
}

static void comm_close(mcm_comm *c) {
  if (!c) return;
  if (!c->broken) {
    MPI_Comm_free(&c->comm);
    if (c->finalize) MPI_Finalize();
  }
  free(c);
}

static const mcm_iface g_iface = {
    MCM_API_VERSION,
    (uint32_t)sizeof(mcm_iface),
    "mpi",
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
