/*
 * cuda_alloc.cu — the per-context caching device allocator. cudaMalloc and cudaFree
 * synchronise the device and cost tens of microseconds, so a buffer given back is kept
 * in a free list of its size class and handed out again; a steady training loop, which
 * asks for the same sizes every step, then never reaches cudaMalloc.
 *
 * Size classes: 512 bytes at least; above that, eight classes per power of two (each
 * request rounded up by at most 12.5 %). A free list holds blocks of exactly its class
 * size, so any cached block of a class fits any request of that class.
 *
 * Reuse is stream-ordered: a block given back by work queued on the context's stream may
 * be handed to the next request at once, because that request's work is queued behind it
 * on the same stream. When cudaMalloc runs out of memory, every cached block is freed
 * (cudaFree waits for the device) and the request is tried once more.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define CLASS_MIN_LOG 9 /* 512 bytes */
#define CLASS_STEPS   8
#define CLASS_MAX_LOG 47 /* 128 TiB: beyond any device */
#define N_BINS        ((CLASS_MAX_LOG - CLASS_MIN_LOG + 1) * CLASS_STEPS)

struct cu_block {
  void *ptr;
  cu_block *next;
};

/* The class of a request: its index and its rounded size; -1 when too large. */
static int32_t size_class(size_t bytes, size_t *rounded) {
  if (bytes <= ((size_t)1 << CLASS_MIN_LOG)) {
    *rounded = (size_t)1 << CLASS_MIN_LOG;
    return 0;
  }
  int k = 63 - __builtin_clzll((unsigned long long)bytes);
  size_t gran = (size_t)1 << (k - 3);
  size_t r = (bytes + gran - 1) / gran * gran;
  if (r == ((size_t)1 << (k + 1))) { /* rounded up to the next power of two */
    ++k;
    gran <<= 1;
  }
  if (k > CLASS_MAX_LOG) return -1;
  *rounded = r;
  return (int32_t)((k - CLASS_MIN_LOG) * CLASS_STEPS + (int)(r / gran - CLASS_STEPS));
}

msc_status cu_alloc_init(cu_alloc *a) {
  memset(a, 0, sizeof *a);
  a->bins = (cu_block **)calloc(N_BINS, sizeof *a->bins);
  if (!a->bins) return CU_FAIL(MSC_E_OUT_OF_MEMORY, "cuda: allocator");
  a->n_bins = N_BINS;
  pthread_mutex_init(&a->lock, NULL);
  return MSC_OK;
}

/* Frees every cached block (the caller holds the lock or owns a alone). */
static void release_cached(cu_alloc *a) {
  for (int32_t i = 0; i < a->n_bins; ++i) {
    cu_block *b = a->bins[i];
    while (b) {
      cu_block *next = b->next;
      cudaFree(b->ptr);
      free(b);
      b = next;
    }
    a->bins[i] = NULL;
  }
  a->cached = 0;
}

void cu_alloc_destroy(cu_alloc *a) {
  if (!a || !a->bins) return;
  release_cached(a);
  free(a->bins);
  a->bins = NULL;
  pthread_mutex_destroy(&a->lock);
}

msc_status cu_alloc_get(cu_alloc *a, size_t bytes, void **ptr, size_t *got) {
  size_t rounded = 0;
  int32_t cls = size_class(bytes, &rounded);
  if (cls < 0)
    return CU_FAIL(MSC_E_OUT_OF_MEMORY, "cuda: %zu bytes is beyond any device", bytes);
  pthread_mutex_lock(&a->lock);
  cu_block *b = a->bins[cls];
  if (b) {
    a->bins[cls] = b->next;
    a->cached -= rounded;
    a->in_use += rounded;
    pthread_mutex_unlock(&a->lock);
    *ptr = b->ptr;
    *got = rounded;
    free(b);
    return MSC_OK;
  }
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, rounded);
  if (e == cudaErrorMemoryAllocation && a->cached > 0) {
    cudaGetLastError(); /* not sticky, but leave nothing for the next check to see */
    release_cached(a);
    e = cudaMalloc(&p, rounded);
  }
  if (e == cudaSuccess) {
    a->in_use += rounded;
    a->device_mallocs++;
  }
  uint64_t count = a->device_mallocs;
  size_t in_use = a->in_use;
  pthread_mutex_unlock(&a->lock);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return CU_FAIL(e == cudaErrorMemoryAllocation ? MSC_E_OUT_OF_MEMORY : MSC_E_DEVICE,
                   "cuda: cudaMalloc of %zu bytes (%zu in use): %s", rounded, in_use,
                   cudaGetErrorString(e));
  }
  /* Tests count these lines to check that a steady state does not allocate. */
  cuda_host->log(MSC_LOG_DEBUG, "cuda: cudaMalloc %zu bytes (#%llu, %zu in use)", rounded,
                 (unsigned long long)count, in_use);
  *ptr = p;
  *got = rounded;
  return MSC_OK;
}

void cu_alloc_put(cu_alloc *a, void *ptr, size_t got) {
  if (!a || !ptr) return;
  size_t rounded = 0;
  int32_t cls = size_class(got, &rounded);
  cu_block *b = (cu_block *)malloc(sizeof *b);
  if (cls < 0 || rounded != got || !b) { /* not one of ours, or no memory to cache it */
    free(b);
    cudaFree(ptr);
    pthread_mutex_lock(&a->lock);
    a->in_use -= got;
    pthread_mutex_unlock(&a->lock);
    return;
  }
  b->ptr = ptr;
  pthread_mutex_lock(&a->lock);
  b->next = a->bins[cls];
  a->bins[cls] = b;
  a->cached += rounded;
  a->in_use -= rounded;
  pthread_mutex_unlock(&a->lock);
}
