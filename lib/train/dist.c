/*
 * dist.c — msc_dist: the communicator modules (lib/contract/comm.h) and their
 * collectives, timed, and the row layout of a global batch split over the ranks
 * (docs/distributed.md). The data-parallel step itself is in train.c.
 *
 * A module libmosaic_<engine>.so is looked for in the directories of MSC_BACKEND_PATH
 * and then in the one that holds libmosaic, opened once per process with dlopen and
 * never closed (its runtime, MPI or NCCL, may hold threads and state until the process
 * ends). The engines: "mpi" (backends/mpi) and "nccl" (backends/nccl).
 */
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend_call.h"
#include "backend/registry.h"
#include "common/internal.h"
#include "model/model.h"
#include "train/dist.h"
#include "train/train.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define MSCI_DIST_TIMEOUT_S 300.0

static pthread_mutex_t g_load_lock = PTHREAD_MUTEX_INITIALIZER;

/* The engines and their modules, each loaded once and kept. hint: how to get it built. */
typedef struct dist_engine {
  const char *name, *file, *hint;
  const mcm_iface *it;
} dist_engine;
static dist_engine g_engines[] = {
    {"mpi", "libmosaic_mpi.so", "build libmosaic where MPI is installed (cmake -DMSC_MPI=ON)",
     NULL},
    {"nccl", "libmosaic_nccl.so",
     "build libmosaic where NCCL, the CUDA runtime and MPI are installed (cmake -DMSC_NCCL=ON)",
     NULL},
};
#define N_ENGINES (sizeof g_engines / sizeof g_engines[0])

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Opens dir/file and checks its table; 1 when usable (*out set), else 0 with why. */
static int try_module(const char *dir, const char *file, const mcm_iface **out, char *why,
                      size_t cap) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if (access(path, F_OK) != 0) return 0;
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(why, cap, "%s: dlopen failed: %s", path, dlerror());
    return 0;
  }
  mcm_init_fn init = NULL;
  void *sym = dlsym(h, MCM_MODULE_INIT_SYMBOL);
  memcpy(&init, &sym, sizeof init); /* object pointer to function pointer (POSIX) */
  const mcm_iface *it = init ? init(msci_host()) : NULL;
  /* The version must be this core's: both modules are built with it, so an older one is
   * a stale file (API 2 added the non-blocking all-reduce the step needs). */
  if (!it || it->api_version != MCM_API_VERSION || it->struct_size < sizeof(mcm_iface) ||
      !it->open || !it->rank || !it->size || !it->set_timeout || !it->all_reduce ||
      !it->all_gather || !it->broadcast || !it->barrier || !it->close ||
      !it->all_reduce_start || !it->test || !it->wait) {
    snprintf(why, cap, "%s: not a communicator module of API version %u", path,
             (unsigned)MCM_API_VERSION);
    if (!it) dlclose(h);
    return 0;
  }
  *out = it;
  return 1;
}

static msc_status load_module(dist_engine *e, const mcm_iface **out) {
  pthread_mutex_lock(&g_load_lock);
  char why[PATH_MAX + 128] = "";
  char looked[2 * PATH_MAX] = "";
  size_t len = 0;
  if (!e->it) {
    const char *env = secure_getenv("MSC_BACKEND_PATH");
    char dirs[PATH_MAX * 2] = "";
    char self[PATH_MAX];
    snprintf(dirs, sizeof dirs, "%s", env ? env : "");
    if (msci_library_directory(self, sizeof self))
      snprintf(dirs + strlen(dirs), sizeof dirs - strlen(dirs), "%s%s", dirs[0] ? ":" : "",
               self);
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir && !e->it;
         dir = strtok_r(NULL, ":", &save)) {
      len += (size_t)snprintf(looked + len, len < sizeof looked ? sizeof looked - len : 0,
                              "%s%s", len ? ", " : "", dir);
      try_module(dir, e->file, &e->it, why, sizeof why);
    }
  }
  const mcm_iface *it = e->it;
  pthread_mutex_unlock(&g_load_lock);
  if (!it) {
    if (why[0]) return msci_fail(MSC_E_BACKEND_UNAVAILABLE, "dist engine %s: %s", e->name, why);
    return msci_fail(MSC_E_BACKEND_UNAVAILABLE,
                     "dist engine %s: %s not found in MSC_BACKEND_PATH or next to libmosaic "
                     "(%s); %s",
                     e->name, e->file, looked[0] ? looked : "directory unknown", e->hint);
  }
  *out = it;
  return MSC_OK;
}

MSC_API msc_status msc_dist_create(const char *engine, void *comm, msc_dist **out) {
  if (!engine || !out)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dist_create: engine and out are required");
  dist_engine *e = NULL;
  for (size_t i = 0; i < N_ENGINES && !e; ++i)
    if (strcmp(engine, g_engines[i].name) == 0) e = &g_engines[i];
  if (!e)
    return msci_fail(MSC_E_NOT_FOUND,
                     "msc_dist_create: unknown engine '%s' (this library has: mpi, nccl)",
                     engine);
  const mcm_iface *it = NULL;
  MSCI_TRY(load_module(e, &it));
  msc_dist *d = calloc(1, sizeof *d);
  if (!d) return msci_fail(MSC_E_OUT_OF_MEMORY, "msc_dist_create");
  d->it = it;
  msc_status st = it->open(comm, &d->c);
  if (st != MSC_OK) {
    free(d);
    return st;
  }
  d->rank = it->rank(d->c);
  d->size = it->size(d->c);
  it->set_timeout(d->c, MSCI_DIST_TIMEOUT_S);
  d->counts = calloc((size_t)d->size * 2, sizeof(int64_t));
  if (!d->counts) {
    msc_dist_free(d);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "msc_dist_create");
  }
  d->offsets = d->counts + d->size;
  *out = d;
  return MSC_OK;
}

MSC_API int32_t msc_dist_rank(const msc_dist *d) {
  return d ? d->rank : 0;
}

MSC_API int32_t msc_dist_size(const msc_dist *d) {
  return d ? d->size : 1;
}

MSC_API double msc_dist_comm_seconds(const msc_dist *d) {
  return d ? d->comm_seconds : 0.0;
}

MSC_API msc_status msc_dist_set_timeout(msc_dist *d, double seconds) {
  if (!d || !isfinite(seconds) || seconds < 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msc_dist_set_timeout: needs a communicator and seconds >= 0");
  d->it->set_timeout(d->c, seconds);
  return MSC_OK;
}

MSC_API msc_status msc_dist_barrier(msc_dist *d) {
  if (!d) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dist_barrier: dist is NULL");
  double t0 = now_s();
  msc_status st = d->it->barrier(d->c);
  d->comm_seconds += now_s() - t0;
  return st;
}

MSC_API void msc_dist_free(msc_dist *d) {
  if (!d) return;
  if (d->c) d->it->close(d->c);
  free(d->counts);
  free(d->send);
  free(d->recv);
  free(d->bn_buf);
  free(d->gb_order);
  free(d->gb_node);
  free(d->gb_scratch);
  free(d->gb);
  /* An all-reduce that failed unfinished may still be written by the engine. */
  if (!d->gb_orphaned) free(d->gb_buf);
  free(d);
}

/* ---- collectives, timed --------------------------------------------------------------- */

msc_status msci_dist_all_reduce(msc_dist *d, void *buf, size_t count, int32_t dtype) {
  double t0 = now_s();
  msc_status st = d->it->all_reduce(d->c, buf, count, dtype);
  d->comm_seconds += now_s() - t0;
  return st;
}

msc_status msci_dist_reduce_start(msc_dist *d, void *buf, size_t count, int32_t dtype,
                                  mcm_request **req) {
  double t0 = now_s();
  msc_status st = d->it->all_reduce_start(d->c, buf, count, dtype, req);
  d->comm_seconds += now_s() - t0;
  return st;
}

msc_status msci_dist_reduce_test(msc_dist *d, mcm_request *req, int32_t *done) {
  double t0 = now_s();
  msc_status st = d->it->test(d->c, req, done);
  d->comm_seconds += now_s() - t0;
  return st;
}

msc_status msci_dist_reduce_wait(msc_dist *d, mcm_request *req) {
  double t0 = now_s();
  msc_status st = d->it->wait(d->c, req);
  d->comm_seconds += now_s() - t0;
  return st;
}

msc_status msci_dist_all_gather(msc_dist *d, const void *send, void *recv, size_t bytes) {
  double t0 = now_s();
  msc_status st = d->it->all_gather(d->c, send, recv, bytes);
  d->comm_seconds += now_s() - t0;
  return st;
}

msc_status msci_dist_broadcast(msc_dist *d, void *buf, size_t bytes, int32_t root) {
  double t0 = now_s();
  msc_status st = d->it->broadcast(d->c, buf, bytes, root);
  d->comm_seconds += now_s() - t0;
  return st;
}

/* ---- the step's layout ------------------------------------------------------------------ */

static msc_status grow(void **buf, size_t *cap, size_t bytes) {
  if (*cap >= bytes) return MSC_OK;
  void *p = realloc(*buf, bytes);
  if (!p) return msci_fail(MSC_E_OUT_OF_MEMORY, "distributed step: %zu bytes", bytes);
  *buf = p;
  *cap = bytes;
  return MSC_OK;
}

/* What each rank contributes to the first collective of a step. */
typedef struct step_facts {
  int64_t n, step, status;
  uint64_t seed;
} step_facts;

msc_status msci_dist_begin(msc_dist *d, int64_t n, msc_status st, uint64_t seed, int64_t step) {
  const size_t R = (size_t)d->size;
  MSCI_TRY(grow(&d->recv, &d->recv_cap, R * sizeof(step_facts)));
  step_facts mine = {n, step, st, seed};
  /* A failed rank still takes part, so that the others learn of it at once. */
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", msc_last_error());
  msc_status cst = msci_dist_all_gather(d, &mine, d->recv, sizeof mine);
  if (cst != MSC_OK) return cst;
  if (st != MSC_OK) return msci_fail(st, "%s", msg);
  const step_facts *all = d->recv;
  int64_t total = 0, max_n = 0;
  for (size_t r = 0; r < R; ++r) {
    if (all[r].status != MSC_OK)
      return msci_fail(MSC_E_COMM, "distributed step: rank %zu failed (%s)", r,
                       msc_status_string((msc_status)all[r].status));
    if (all[r].seed != seed || all[r].step != step)
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "distributed step: rank %zu is at step %lld with seed %llu, rank %d at "
                       "step %lld with seed %llu: every rank must load the same model and "
                       "configure training alike",
                       r, (long long)all[r].step, (unsigned long long)all[r].seed, (int)d->rank,
                       (long long)step, (unsigned long long)seed);
    d->counts[r] = all[r].n;
    d->offsets[r] = total;
    total += all[r].n;
    if (all[r].n > max_n) max_n = all[r].n;
  }
  d->n_global = total;
  d->max_n = max_n;
  return MSC_OK;
}

msc_status msci_dist_agree(msc_dist *d, msc_status st) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", msc_last_error());
  const size_t R = (size_t)d->size;
  MSCI_TRY(grow(&d->recv, &d->recv_cap, R * sizeof(int64_t)));
  int64_t mine = st;
  msc_status cst = msci_dist_all_gather(d, &mine, d->recv, sizeof mine);
  if (cst != MSC_OK) return cst;
  if (st != MSC_OK) return msci_fail(st, "%s", msg);
  const int64_t *all = d->recv;
  for (size_t r = 0; r < R; ++r)
    if (all[r] != MSC_OK)
      return msci_fail(MSC_E_COMM, "distributed step: rank %zu failed (%s)", r,
                       msc_status_string((msc_status)all[r]));
  return MSC_OK;
}

/* What each rank contributes to msc_dist_agree: its status and, for an error, why. */
typedef struct agree_facts {
  int64_t status;
  char why[256];
} agree_facts;

MSC_API msc_status msc_dist_agree(msc_dist *d, msc_status mine, const char *why,
                                  int32_t *failed_out) {
  if (failed_out) *failed_out = -1;
  if (!d) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_dist_agree: dist is NULL");
  if (mine > MSC_OK || mine < MSCI_STATUS_LOWEST)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msc_dist_agree: %d is not a status of this library", (int)mine);
  agree_facts f;
  memset(&f, 0, sizeof f);
  f.status = mine;
  if (mine != MSC_OK) {
    const char *w = why && why[0] ? why : msc_last_error();
    if (!w[0]) w = msc_status_string(mine);
    size_t len = strlen(w);
    if (len > sizeof f.why - 1) len = msci_utf8_prefix(w, sizeof f.why - 1);
    memcpy(f.why, w, len);
  }
  const size_t R = (size_t)d->size;
  MSCI_TRY(grow(&d->recv, &d->recv_cap, R * sizeof f));
  msc_status st = msci_dist_all_gather(d, &f, d->recv, sizeof f);
  if (st != MSC_OK) return st;
  const agree_facts *all = d->recv;
  size_t failed = 0, first = 0;
  for (size_t r = 0; r < R; ++r)
    if (all[r].status != MSC_OK && failed++ == 0) first = r;
  if (failed_out) *failed_out = (int32_t)failed;
  if (failed == 0) return MSC_OK;
  if (mine != MSC_OK) return msci_fail(mine, "%s", f.why);
  /* (a peer's text is read up to its buffer's end, terminated or not) */
  const int wlen = (int)strnlen(all[first].why, sizeof all[first].why);
  if (failed == 1)
    return msci_fail(MSC_E_COMM, "rank %zu failed (%s): %.*s", first,
                     msc_status_string((msc_status)all[first].status), wlen, all[first].why);
  return msci_fail(MSC_E_COMM, "%zu ranks failed, the first rank %zu (%s): %.*s", failed, first,
                   msc_status_string((msc_status)all[first].status), wlen, all[first].why);
}

msc_status msci_dist_gather_rows(msc_dist *d, int32_t views, const void *local, void *global,
                                 size_t row_bytes) {
  const size_t R = (size_t)d->size, V = (size_t)views, mx = (size_t)d->max_n;
  const size_t n = (size_t)d->counts[d->rank], N = (size_t)d->n_global;
  const size_t block = V * mx * row_bytes; /* one rank's padded rows */
  MSCI_TRY(grow(&d->send, &d->send_cap, block));
  MSCI_TRY(grow(&d->recv, &d->recv_cap, R * block));
  for (size_t v = 0; v < V; ++v)
    memcpy((char *)d->send + v * mx * row_bytes, (const char *)local + v * n * row_bytes,
           n * row_bytes);
  MSCI_TRY(msci_dist_all_gather(d, d->send, d->recv, block));
  for (size_t r = 0; r < R; ++r)
    for (size_t v = 0; v < V; ++v)
      memcpy((char *)global + (v * N + (size_t)d->offsets[r]) * row_bytes,
             (const char *)d->recv + r * block + v * mx * row_bytes,
             (size_t)d->counts[r] * row_bytes);
  return MSC_OK;
}

void msci_dist_pick_rows(const msc_dist *d, int32_t views, const void *global, void *local,
                         size_t row_bytes) {
  const size_t n = (size_t)d->counts[d->rank], N = (size_t)d->n_global;
  const size_t off = (size_t)d->offsets[d->rank];
  for (size_t v = 0; v < (size_t)views; ++v)
    memcpy((char *)local + v * n * row_bytes, (const char *)global + (v * N + off) * row_bytes,
           n * row_bytes);
}

/* ---- attaching a model ------------------------------------------------------------------ */

static int64_t param_count(const msci_param *p) {
  int64_t n = 1;
  for (int32_t i = 0; i < p->ndim; ++i) n *= p->dims[i];
  return n;
}

/* Every rank must hold the same architecture: the parameters' count and total size, and
 * training state on all or none (what msc_train_set_dist broadcasts). */
static msc_status same_architecture(msc_dist *d, const msc_model *m) {
  int64_t mine[3] = {m->graph.n_params, 0, m->train != NULL};
  for (int32_t p = 0; p < m->graph.n_params; ++p) mine[1] += param_count(&m->graph.params[p]);
  MSCI_TRY(grow(&d->recv, &d->recv_cap, (size_t)d->size * sizeof mine));
  MSCI_TRY(msci_dist_all_gather(d, mine, d->recv, sizeof mine));
  const int64_t *all = d->recv;
  for (int32_t r = 0; r < d->size; ++r)
    if (all[3 * r] != mine[0] || all[3 * r + 1] != mine[1])
      return msci_fail(MSC_E_SHAPE,
                       "msc_train_set_dist: rank %d's model has %lld parameters (%lld values), "
                       "rank %d's %lld (%lld): every rank needs the same architecture",
                       (int)r, (long long)all[3 * r], (long long)all[3 * r + 1], (int)d->rank,
                       (long long)mine[0], (long long)mine[1]);
  for (int32_t r = 0; r < d->size; ++r)
    if (all[3 * r + 2] != mine[2])
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "msc_train_set_dist: rank %d's model is %sconfigured for training, rank "
                       "%d's is %s: msc_train_configure every rank's model alike",
                       (int)r, all[3 * r + 2] ? "" : "not ", (int)d->rank,
                       mine[2] ? "" : "not");
  return MSC_OK;
}

MSC_API msc_status msc_train_set_dist(msc_model *m, msc_dist *d) {
  if (!m) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_train_set_dist: model is NULL");
  if (!d) {
    m->dist = NULL;
    return MSC_OK;
  }
  MSCI_TRY(same_architecture(d, m));
  if (m->train) MSCI_TRY(msci_train_ensure_ready(m));
  if (m->train) MSCI_TRY(msci_train_moments_to_host(m));
  /* Rank 0's parameters and running statistics everywhere, one tensor at a time. */
  size_t cap = 0;
  for (int32_t p = 0; p < m->graph.n_params; ++p) {
    size_t n = (size_t)param_count(&m->graph.params[p]);
    if (n > cap) cap = n;
  }
  float *h = malloc((cap ? cap : 1) * sizeof(float));
  if (!h) return msci_fail(MSC_E_OUT_OF_MEMORY, "msc_train_set_dist");
  msc_status st = MSC_OK;
  for (int32_t p = 0; st == MSC_OK && p < m->graph.n_params; ++p) {
    msci_param *pr = &m->graph.params[p];
    size_t n = (size_t)param_count(pr);
    st = msci_be_tensor_download(m->be, pr->t, h, n);
    if (st == MSC_OK) st = msci_dist_broadcast(d, h, n * sizeof(float), 0);
    if (st == MSC_OK && d->rank != 0)
      st = msci_be_tensor_upload(m->be, pr->t, pr->ndim, pr->dims, h);
    /* The host copies of the running statistics (to undo a skipped step) follow. */
    if (st == MSC_OK && m->train && m->train->master && m->train->master[p])
      memcpy(m->train->master[p], h, n * sizeof(float));
  }
  free(h);
  /* Rank 0's optimiser state too: its step and moments (a run resumed from a checkpoint
   * that only rank 0 read, or with another number of ranks, goes on as one process). */
  msci_train *t = m->train;
  if (st == MSC_OK && t) st = msci_dist_broadcast(d, &t->step, sizeof t->step, 0);
  for (int32_t p = 0; st == MSC_OK && t && p < m->graph.n_params; ++p) {
    if (!t->m1[p]) continue; /* running statistics */
    size_t n = (size_t)param_count(&m->graph.params[p]);
    st = msci_dist_broadcast(d, t->m1[p], n * sizeof(float), 0);
    if (st == MSC_OK) st = msci_dist_broadcast(d, t->m2[p], n * sizeof(float), 0);
  }
  if (t) t->dm_valid = 0; /* the next step uploads the host moments */
  if (st == MSC_OK) m->dist = d;
  return st;
}
