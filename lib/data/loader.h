/*
 * loader.h — the loader's insides that tests reach: the per-epoch permutation and a
 * Layer: data (lib/data/README.md says what it owns and may include).
 * loader over any fill function (the public msc_loader_create is this over
 * msc_dataset_fill_batch).
 */
#ifndef MOSAIC_LIB_LOADER_H
#define MOSAIC_LIB_LOADER_H

#include <stdint.h>

#include "mosaic/mosaic.h"

/* The order of epoch `epoch`: perm[0..n-1] receives a permutation of 0..n-1, Fisher–Yates
 * (i from n-1 down to 1 swaps i with next() % (i+1)) on the stream "loader/epoch/<epoch>"
 * of seed. */
void msci_loader_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *perm);

/* Fills batch (emptied on entry by msci_batch_reset, its storage kept for
 * msci_batch_reserve to reuse) with the samples indices[0..n-1]; runs on a worker thread,
 * several at a time. On error it returns the status with msc_last_error() set on the
 * calling (worker) thread. */
typedef msc_status (*msci_loader_fill_fn)(void *user, const int64_t *indices, int64_t n,
                                          msc_batch *batch);

/* msc_loader_create over n_samples samples and a fill function. */
msc_status msci_loader_create_fn(int64_t n_samples, msci_loader_fill_fn fill, void *user,
                                 int64_t batch_size, uint64_t seed, int32_t workers,
                                 int32_t drop_last, msc_loader **out);

/* msc_loader_create_shard over a fill function: rank's rows of every batch. */
msc_status msci_loader_create_shard_fn(int64_t n_samples, msci_loader_fill_fn fill, void *user,
                                       int64_t batch_size, uint64_t seed, int32_t workers,
                                       int32_t drop_last, int32_t rank, int32_t ranks,
                                       msc_loader **out);

/* Batches per epoch (drop_last: floor, else ceil). */
int64_t msci_loader_batches_per_epoch(const msc_loader *l);

#endif
