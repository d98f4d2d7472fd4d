/*
 * loader.c — msc_loader: batches of a dataset in a seeded per-epoch order, read ahead by
 * worker threads (the contract is in mosaic.h, "Data loader").
 *
 * Batches are numbered k = 0, 1, 2, ... across epochs (epoch k / per_epoch, batch
 * k % per_epoch of it). A ring of q = 2·workers slots holds batches k with
 * next_consume <= k < next_assign; batch k always lives in slot k % q. A worker takes the
 * next unassigned k when the ring has room, copies its indices under the lock (the
 * permutation of the epoch being assigned is kept there, regenerated once per epoch),
 * fills the slot's own batch without the lock and marks it ready. msc_loader_next waits
 * for slot next_consume % q to be ready with batch next_consume, swaps its contents
 * with the caller's batch (no copy) and frees the slot. So the order of batches never
 * depends on the number of workers or on timing. The caller's previous arrays go back
 * with the slot and are refilled in place: with batches of one shape the ring stops
 * allocating once every slot and the caller's batch have been filled once.
 *
 * A sharded loader (msc_loader_create_shard) does all of this over the global batches
 * and fills its slots with its rank's rows of them only.
 *
 * A worker's error (message in its thread-local msc_last_error) is copied into the slot
 * and raised again on the consumer's thread.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/batch.h"
#include "common/internal.h"
#include "data/loader.h"
#include "common/rng.h"

#define MAX_WORKERS 64
#define MSG_CAP     1024

enum { SLOT_EMPTY = 0, SLOT_FILLING, SLOT_READY };

typedef struct slot {
  msc_batch *batch;
  int64_t *idx; /* batch_size entries */
  int64_t n, k;
  int32_t state;
  msc_status st;
  char msg[MSG_CAP];
} slot;

struct msc_loader {
  msci_loader_fill_fn fill;
  void *user;
  int64_t n_samples, batch_size, per_epoch;
  uint64_t seed;
  int32_t drop_last;
  int32_t rank, ranks; /* this loader's share of every batch (1 share: all of it) */

  pthread_mutex_t mu;
  pthread_cond_t cv_room;  /* workers: a slot became free, or stop */
  pthread_cond_t cv_ready; /* consumer: a slot became ready */
  int32_t stop;
  int64_t next_assign, next_consume;
  int32_t q;
  slot *slots;
  int64_t perm_epoch; /* epoch whose permutation perm holds, -1 none */
  int64_t *perm;

  int32_t n_threads;
  pthread_t *threads;
};

void msci_loader_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *perm) {
  char label[64];
  msci_rng r;
  snprintf(label, sizeof label, "loader/epoch/%lld", (long long)epoch);
  msci_rng_seed(&r, seed, label);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = (int64_t)(msci_rng_next(&r) % (uint64_t)(i + 1));
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

MSC_API int64_t msc_loader_batches_per_epoch(const msc_loader *l) {
  return msci_loader_batches_per_epoch(l);
}

int64_t msci_loader_batches_per_epoch(const msc_loader *l) {
  return l ? l->per_epoch : 0;
}

static void *worker_main(void *arg) {
  msc_loader *l = arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->stop && l->next_assign - l->next_consume >= l->q)
      pthread_cond_wait(&l->cv_room, &l->mu);
    if (l->stop) break;
    const int64_t k = l->next_assign++;
    slot *s = &l->slots[k % l->q];
    const int64_t e = k / l->per_epoch, j = k % l->per_epoch;
    if (l->perm_epoch != e) {
      msci_loader_permutation(l->seed, e, l->n_samples, l->perm);
      l->perm_epoch = e;
    }
    int64_t first = j * l->batch_size;
    int64_t n = l->n_samples - first;
    if (n > l->batch_size) n = l->batch_size;
    /* Rank r's rows of the m-sample batch: floor(r·m/R) .. floor((r+1)·m/R) - 1. */
    const int64_t lo = n * l->rank / l->ranks, hi = n * (l->rank + 1) / l->ranks;
    first += lo;
    n = hi - lo;
    memcpy(s->idx, l->perm + first, (size_t)n * sizeof(int64_t));
    s->n = n;
    s->k = k;
    s->state = SLOT_FILLING;
    pthread_mutex_unlock(&l->mu);

    /* The slot is this thread's alone until it is marked ready. Its batch is the one
     * the consumer handed back last time: emptied, its storage is filled in place. */
    msci_batch_reset(s->batch);
    msc_status st = l->fill(l->user, s->idx, n, s->batch);
    if (st != MSC_OK) {
      snprintf(s->msg, sizeof s->msg, "%s", msc_last_error());
      msci_batch_reset(s->batch);
    }

    pthread_mutex_lock(&l->mu);
    s->st = st;
    s->state = SLOT_READY;
    pthread_cond_broadcast(&l->cv_ready);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

/* Stops and joins the started threads, frees everything. */
static void loader_destroy(msc_loader *l) {
  pthread_mutex_lock(&l->mu);
  l->stop = 1;
  pthread_cond_broadcast(&l->cv_room);
  pthread_mutex_unlock(&l->mu);
  for (int32_t i = 0; i < l->n_threads; ++i) pthread_join(l->threads[i], NULL);
  if (l->slots)
    for (int32_t i = 0; i < l->q; ++i) {
      msc_batch_free(l->slots[i].batch);
      free(l->slots[i].idx);
    }
  free(l->slots);
  free(l->perm);
  free(l->threads);
  pthread_cond_destroy(&l->cv_ready);
  pthread_cond_destroy(&l->cv_room);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

msc_status msci_loader_create_fn(int64_t n_samples, msci_loader_fill_fn fill, void *user,
                                 int64_t batch_size, uint64_t seed, int32_t workers,
                                 int32_t drop_last, msc_loader **out) {
  return msci_loader_create_shard_fn(n_samples, fill, user, batch_size, seed, workers,
                                     drop_last, 0, 1, out);
}

msc_status msci_loader_create_shard_fn(int64_t n_samples, msci_loader_fill_fn fill, void *user,
                                       int64_t batch_size, uint64_t seed, int32_t workers,
                                       int32_t drop_last, int32_t rank, int32_t ranks,
                                       msc_loader **out) {
  if (!fill || !out) return msci_fail(MSC_E_INVALID_ARGUMENT, "loader: NULL argument");
  if (ranks < 1 || rank < 0 || rank >= ranks)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "loader: shard %d of %d, needs 0 <= rank < ranks",
                     (int)rank, (int)ranks);
  /* Only full batches split into non-empty shares: the last, shorter batch of an epoch
   * could leave a rank without a sample. */
  if (ranks > 1 && !drop_last)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "loader: a shard (%d ranks) needs drop_last, so that every batch is full",
                     (int)ranks);
  if (ranks > 1 && batch_size < ranks)
    return msci_fail(
        MSC_E_INVALID_ARGUMENT,
        "loader: batch_size %lld split over %d ranks leaves a rank without samples",
        (long long)batch_size, (int)ranks);
  if (batch_size < 1)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "loader: batch_size = %lld, must be >= 1",
                     (long long)batch_size);
  if (workers < 0 || workers > MAX_WORKERS)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "loader: workers = %d, must be 0..%d",
                     (int)workers, MAX_WORKERS);
  if (n_samples < 1)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "loader: the dataset has no samples");
  if (drop_last && n_samples < batch_size)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "loader: drop_last with %lld samples and batch_size %lld leaves no batch",
                     (long long)n_samples, (long long)batch_size);
  if ((uint64_t)n_samples > SIZE_MAX / sizeof(int64_t))
    return msci_fail(MSC_E_OUT_OF_MEMORY, "loader: %lld samples", (long long)n_samples);
  if (workers == 0) workers = 1;

  msc_loader *l = calloc(1, sizeof *l);
  if (!l) return msci_fail(MSC_E_OUT_OF_MEMORY, "loader: out of memory");
  l->fill = fill;
  l->user = user;
  l->n_samples = n_samples;
  /* Without drop_last a batch never holds more than the whole dataset; with it,
   * n_samples >= batch_size was checked above. */
  l->batch_size = batch_size > n_samples ? n_samples : batch_size;
  l->per_epoch =
      drop_last ? n_samples / l->batch_size : (n_samples + l->batch_size - 1) / l->batch_size;
  l->seed = seed;
  l->drop_last = drop_last != 0;
  l->rank = rank;
  l->ranks = ranks;
  l->perm_epoch = -1;
  l->q = 2 * workers;
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv_room, NULL);
  pthread_cond_init(&l->cv_ready, NULL);

  l->perm = malloc((size_t)n_samples * sizeof(int64_t));
  l->slots = calloc((size_t)l->q, sizeof(slot));
  l->threads = calloc((size_t)workers, sizeof(pthread_t));
  int ok = l->perm && l->slots && l->threads;
  for (int32_t i = 0; ok && i < l->q; ++i) {
    l->slots[i].idx = malloc((size_t)l->batch_size * sizeof(int64_t));
    ok = l->slots[i].idx && msc_batch_create(&l->slots[i].batch) == MSC_OK;
  }
  if (!ok) {
    loader_destroy(l);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "loader: out of memory (%d slots of %lld samples)",
                     (int)(2 * workers), (long long)batch_size);
  }

  /* Workers start with every signal blocked: the program's handlers stay on its threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = 0;
  for (int32_t i = 0; i < workers; ++i) {
    err = pthread_create(&l->threads[i], NULL, worker_main, l);
    if (err) break;
    l->n_threads++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err) {
    loader_destroy(l);
    return msci_fail(MSC_E_INTERNAL, "loader: cannot start worker thread: %s", strerror(err));
  }
  *out = l;
  return MSC_OK;
}

MSC_API msc_status msc_loader_next(msc_loader *l, msc_batch *batch, int64_t *epoch) {
  if (!l || !batch) return msci_fail(MSC_E_INVALID_ARGUMENT, "loader next: NULL argument");
  pthread_mutex_lock(&l->mu);
  const int64_t k = l->next_consume;
  slot *s = &l->slots[k % l->q];
  while (!(s->state == SLOT_READY && s->k == k)) pthread_cond_wait(&l->cv_ready, &l->mu);
  msc_status st = s->st;
  char msg[MSG_CAP];
  if (st == MSC_OK) {
    msc_batch t = *batch;
    *batch = *s->batch;
    *s->batch = t;
  } else {
    memcpy(msg, s->msg, sizeof msg);
  }
  s->state = SLOT_EMPTY;
  l->next_consume++;
  pthread_cond_signal(&l->cv_room);
  pthread_mutex_unlock(&l->mu);
  if (st != MSC_OK) return msci_fail(st, "%s", msg);
  if (epoch) *epoch = k / l->per_epoch;
  return MSC_OK;
}

MSC_API void msc_loader_free(msc_loader *l) {
  if (l) loader_destroy(l);
}

/* ---- over a dataset ------------------------------------------------------------------- */

static msc_status fill_from_dataset(void *user, const int64_t *indices, int64_t n,
                                    msc_batch *batch) {
  return msc_dataset_fill_batch((msc_dataset *)user, indices, n, batch);
}

MSC_API msc_status msc_loader_create(msc_dataset *ds, int64_t batch_size, uint64_t seed,
                                     int32_t workers, int32_t drop_last, msc_loader **out) {
  return msc_loader_create_shard(ds, batch_size, seed, workers, drop_last, 0, 1, out);
}

MSC_API msc_status msc_loader_create_shard(msc_dataset *ds, int64_t batch_size, uint64_t seed,
                                           int32_t workers, int32_t drop_last, int32_t rank,
                                           int32_t ranks, msc_loader **out) {
  if (!ds || !out) return msci_fail(MSC_E_INVALID_ARGUMENT, "loader: NULL argument");
  return msci_loader_create_shard_fn(msc_dataset_size(ds), fill_from_dataset, ds, batch_size,
                                     seed, workers, drop_last, rank, ranks, out);
}
