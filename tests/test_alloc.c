/*
 * test_alloc.c — steady calls do not allocate (lib/contract/backend.h, lib/data/batch.h).
 *
 * This program defines malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign
 * and valloc itself (passing on to glibc's __libc_* functions). An executable's symbols
 * come first for the whole process, so every allocation is seen: libmosaic's (linked in
 * statically from mosaic_internal), oneDNN's, OpenMP's, libtiff's, on every thread.
 * Counting is switched on around the measured calls only, after warm-up calls of the
 * same shapes (executors, primitives, backend tensors and workspaces are made on first
 * use and kept).
 *
 * What is asserted:
 *  - training: msc_batch_set_modality + msc_batch_set_labels (same shapes as before)
 *    and msc_train_step, K steps after 3 warm-up steps, presets mosaic1 and mosaic2
 *    (every loss term): ZERO allocations by anyone;
 *  - inference: msc_embed (fused, a modality's projection) and msc_predict over steady
 *    batches after warm-up: ZERO allocations by anyone;
 *  - msc_batch_set_modality / set_labels / set_labeled with a shape the batch held:
 *    ZERO allocations, the array keeps its address;
 *  - msc_dataset_fill_batch into a warmed batch (the bundled BigEarthNet v2 samples):
 *    the batch's arrays keep their addresses, and NO allocation by anyone is as large
 *    as one sample of the smallest modality (c×h×w floats) — so there is no batch-sized
 *    or sample-sized intermediate buffer. Decoding the TIFF files still allocates
 *    (libtiff's state and strips, one decoded band of at most 120×120 floats per file,
 *    freed before the call returns): those are counted and printed, not asserted zero;
 *  - msc_loader_next over that dataset after warm-up: the same bound for the workers'
 *    fills, and the caller's batch comes back in storage the ring already had.
 * MSC_ALLOC_TRACE=1 prints a backtrace for every counted allocation.
 */
#include <check.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/batch.h"
#include "mosaic/mosaic.h"

#ifndef MSC_TEST_DATA
#error "MSC_TEST_DATA must name examples/data"
#endif

/* ---- the counting allocator ---------------------------------------------------------- */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_int g_counting;
static atomic_long g_count, g_largest;
static int g_trace;
static __thread int t_inside;

static void note(size_t bytes) {
  if (!atomic_load_explicit(&g_counting, memory_order_relaxed) || t_inside) return;
  t_inside = 1;
  atomic_fetch_add(&g_count, 1);
  long prev = atomic_load(&g_largest);
  while ((long)bytes > prev && !atomic_compare_exchange_weak(&g_largest, &prev, (long)bytes)) {
  }
  if (g_trace) {
    void *frames[24];
    int n = backtrace(frames, 24);
    char head[64];
    int len = snprintf(head, sizeof head, "--- allocation of %zu bytes\n", bytes);
    if (write(2, head, (size_t)len) < 0) {
    }
    backtrace_symbols_fd(frames, n, 2);
  }
  t_inside = 0;
}

void *malloc(size_t n) {
  note(n);
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
  note(n * size);
  return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
  note(n);
  return __libc_realloc(p, n);
}
void *memalign(size_t align, size_t n) {
  note(n);
  return __libc_memalign(align, n);
}
void *aligned_alloc(size_t align, size_t n) {
  note(n);
  return __libc_memalign(align, n);
}
void *valloc(size_t n) {
  note(n);
  return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), n);
}
int posix_memalign(void **out, size_t align, size_t n) {
  note(n);
  void *p = __libc_memalign(align, n);
  if (!p) return 12; /* ENOMEM */
  *out = p;
  return 0;
}

static void count_start(void) {
  atomic_store(&g_count, 0);
  atomic_store(&g_largest, 0);
  atomic_store(&g_counting, 1);
}

static long count_stop(long *largest) {
  atomic_store(&g_counting, 0);
  if (largest) *largest = atomic_load(&g_largest);
  return atomic_load(&g_count);
}

/* ---- a tiny model and in-memory data ------------------------------------------------- */

#define N    8
#define SIZE 16
#define C    4
#define K    4 /* measured calls */

static float g_s1[N * 2 * SIZE * SIZE], g_s2[N * 4 * SIZE * SIZE];
static uint8_t g_y[N * C];

static void make_data(void) {
  uint32_t r = 12345;
  for (size_t i = 0; i < sizeof g_s1 / sizeof g_s1[0]; ++i)
    g_s1[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f;
  for (size_t i = 0; i < sizeof g_s2 / sizeof g_s2[0]; ++i)
    g_s2[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f;
  for (int i = 0; i < N * C; ++i) g_y[i] = ((i * 7 + i / C) % 3) == 0;
  for (int i = 0; i < N; ++i) g_y[i * C + i % C] = 1;
}

static msc_model *tiny_model(const char *preset) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  const char *json = "{\"modality.0.encoder\":\"tiny\",\"modality.1.encoder\":\"tiny\","
                     "\"modality.0.size\":16,\"modality.1.size\":16,\"modality.1.bands\":4,"
                     "\"classes\":4,\"class_names\":\"a;b;c;d\",\"proj.dim\":16,\"seed\":7}";
  ck_assert_int_eq(msc_options_from_json(o, json), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "train.preset", preset), MSC_OK);
  msc_model *m = NULL;
  msc_status st = msc_model_create(o, &m);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  msc_options_free(o);
  return m;
}

/* The caller's side of a training step: the batch refilled from its arrays. */
static msc_status fill(msc_batch *b) {
  msc_status st = msc_batch_set_modality(b, "s1", g_s1, N, 2, SIZE, SIZE);
  if (st == MSC_OK) st = msc_batch_set_modality(b, "s2", g_s2, N, 4, SIZE, SIZE);
  if (st == MSC_OK) st = msc_batch_set_labels(b, g_y, N, C);
  return st;
}

static msc_status train(msc_model *m, msc_batch *b) {
  msc_step_result r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  msc_status st = fill(b);
  if (st == MSC_OK) st = msc_train_step(m, b, &r);
  return st;
}

static void steady_training(const char *preset) {
  make_data();
  msc_model *m = tiny_model(preset);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  for (int i = 0; i < 3; ++i) {
    msc_status st = train(m, b);
    ck_assert_msg(st == MSC_OK, "warm-up step %d: %s", i, msc_last_error());
  }
  msc_status sts[K];
  long largest = 0;
  count_start();
  for (int i = 0; i < K; ++i) sts[i] = train(m, b);
  long count = count_stop(&largest);
  for (int i = 0; i < K; ++i) ck_assert_msg(sts[i] == MSC_OK, "step %d: %d", i, sts[i]);
  ck_assert_msg(count == 0,
                "%s: %ld allocations in %d steady training steps (largest %ld "
                "bytes; MSC_ALLOC_TRACE=1 shows where)",
                preset, count, K, largest);
  msc_batch_free(b);
  msc_model_free(m);
}

START_TEST(test_train_steps_do_not_allocate) {
  steady_training("mosaic1"); /* NT-Xent, InfoNCE, fused MulSupCon, BCE */
  steady_training("mosaic2"); /* per-modality MulSupCon */
}
END_TEST

START_TEST(test_embed_does_not_allocate) {
  make_data();
  msc_model *m = tiny_model("mosaic1");
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(fill(b), MSC_OK);
  int64_t fused = 0, proj = 0;
  ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_FUSED, &fused), MSC_OK);
  ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_MODALITY_PROJECTION(1), &proj),
                   MSC_OK);
  float *out = malloc((size_t)(N * (fused > proj ? fused : proj)) * sizeof(float));
  float probs[N * C];
  msc_status sts[3 * K];
  for (int i = 0; i < 2; ++i) {
    ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, out, (size_t)(N * fused)), MSC_OK);
    ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_MODALITY_PROJECTION(1), out, (size_t)(N * proj)),
                     MSC_OK);
    ck_assert_int_eq(msc_predict(m, b, probs, N * C), MSC_OK);
  }
  long largest = 0;
  count_start();
  for (int i = 0; i < K; ++i) {
    sts[3 * i] = msc_embed(m, b, MSC_EMBED_FUSED, out, (size_t)(N * fused));
    sts[3 * i + 1] = msc_embed(m, b, MSC_EMBED_MODALITY_PROJECTION(1), out, (size_t)(N * proj));
    sts[3 * i + 2] = msc_predict(m, b, probs, N * C);
  }
  long count = count_stop(&largest);
  for (int i = 0; i < 3 * K; ++i) ck_assert_int_eq(sts[i], MSC_OK);
  ck_assert_msg(count == 0,
                "%ld allocations in %d steady embed/predict calls (largest %ld "
                "bytes)",
                count, 3 * K, largest);
  free(out);
  msc_batch_free(b);
  msc_model_free(m);
}
END_TEST

START_TEST(test_batch_setters_reuse_storage) {
  make_data();
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  static const uint8_t flags[N] = {1, 0, 1, 1, 0, 1, 1, 1};
  ck_assert_int_eq(fill(b), MSC_OK);
  ck_assert_int_eq(msc_batch_set_labeled(b, flags, N), MSC_OK);
  const float *s1 = msci_batch_find(b, "s1")->data, *s2 = msci_batch_find(b, "s2")->data;
  const uint8_t *labels = b->labels, *labeled = b->labeled;
  msc_status st[4];
  count_start();
  st[0] = fill(b);
  st[1] = msc_batch_set_labeled(b, flags, N);
  /* A smaller array fits the storage of a larger one. */
  st[2] = msc_batch_set_modality(b, "s2", g_s2, N, 2, SIZE, SIZE);
  st[3] = msc_batch_set_modality(b, "s2", g_s2, N, 4, SIZE, SIZE);
  long count = count_stop(NULL);
  for (int i = 0; i < 4; ++i) ck_assert_int_eq(st[i], MSC_OK);
  ck_assert_msg(count == 0, "%ld allocations refilling a batch with the same shapes", count);
  ck_assert_ptr_eq(msci_batch_find(b, "s1")->data, s1);
  ck_assert_ptr_eq(msci_batch_find(b, "s2")->data, s2);
  ck_assert_ptr_eq(b->labels, labels);
  ck_assert_ptr_eq(b->labeled, labeled);
  ck_assert_mem_eq(msci_batch_find(b, "s2")->data, g_s2, sizeof g_s2);
  /* Emptied, the storage stays for the next fill. */
  msci_batch_reset(b);
  ck_assert_int_eq(msc_batch_size(b), 0);
  ck_assert_ptr_null(msci_batch_find(b, "s1"));
  ck_assert_ptr_null(b->labels);
  count_start();
  st[0] = fill(b);
  count = count_stop(NULL);
  ck_assert_int_eq(st[0], MSC_OK);
  ck_assert_int_eq(count, 0);
  ck_assert_ptr_eq(msci_batch_find(b, "s1")->data, s1);
  ck_assert_mem_eq(msci_batch_find(b, "s1")->data, g_s1, sizeof g_s1);
  msc_batch_free(b);
}
END_TEST

/* ---- the dataset and loader paths ------------------------------------------------------ */

static msc_dataset *open_v2(void) {
  msc_dataset *ds = NULL;
  msc_status st =
      msc_dataset_open(MSC_TEST_DATA "/bigearthnet-v2", "bigearthnet-v2", NULL, &ds);
  ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
  return ds;
}

/* Bytes of one sample of the dataset's smallest modality: no buffer of the fill may be
 * as large. */
static long sample_bytes(const msc_dataset *ds) {
  long least = -1;
  for (int32_t k = 0; k < msc_dataset_modality_count(ds); ++k) {
    int64_t bands = 0, size = 0;
    ck_assert_int_eq(msc_dataset_modality_shape(ds, k, &bands, &size), MSC_OK);
    long bytes = (long)(bands * size * size * (int64_t)sizeof(float));
    if (least < 0 || bytes < least) least = bytes;
  }
  return least;
}

START_TEST(test_fill_batch_reuses_storage) {
  msc_dataset *ds = open_v2();
  const int64_t n = msc_dataset_size(ds);
  ck_assert_int_ge(n, 2);
  int64_t idx[2] = {0, 1}, rev[2] = {1, 0};
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, 2, b), MSC_OK);
  ck_assert_int_eq(msc_dataset_fill_batch(ds, rev, 2, b), MSC_OK);
  const float *data[8];
  for (int32_t k = 0; k < b->n_mod; ++k) data[k] = b->mod[k].data;
  const uint8_t *labels = b->labels;
  long largest = 0;
  msc_status st[K];
  count_start();
  for (int i = 0; i < K; ++i) st[i] = msc_dataset_fill_batch(ds, i % 2 ? rev : idx, 2, b);
  long count = count_stop(&largest);
  for (int i = 0; i < K; ++i) ck_assert_msg(st[i] == MSC_OK, "%s", msc_last_error());
  for (int32_t k = 0; k < b->n_mod; ++k) ck_assert_ptr_eq(b->mod[k].data, data[k]);
  ck_assert_ptr_eq(b->labels, labels);
  const long bound = sample_bytes(ds);
  fprintf(stderr,
          "fill_batch: %ld allocations (file decoding) in %d fills of 2 samples, "
          "largest %ld bytes, bound %ld\n",
          count, K, largest, bound);
  ck_assert_msg(largest < bound,
                "an allocation of %ld bytes in fill_batch (one sample of "
                "the smallest modality is %ld)",
                largest, bound);
  /* A shorter batch (the end of an epoch) and back: still the same storage. */
  ck_assert_int_eq(msc_dataset_fill_batch(ds, idx, 1, b), MSC_OK);
  count_start();
  st[0] = msc_dataset_fill_batch(ds, idx, 2, b);
  count_stop(&largest);
  ck_assert_int_eq(st[0], MSC_OK);
  for (int32_t k = 0; k < b->n_mod; ++k) ck_assert_ptr_eq(b->mod[k].data, data[k]);
  ck_assert_msg(largest < bound, "an allocation of %ld bytes", largest);
  msc_batch_free(b);
  msc_dataset_free(ds);
}
END_TEST

START_TEST(test_loader_reuses_storage) {
  msc_dataset *ds = open_v2();
  msc_loader *l = NULL;
  ck_assert_int_eq(msc_loader_create(ds, 2, 5, 1, 1, &l), MSC_OK);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  /* One worker: a ring of two slots, and the caller's batch — three arrays, each filled
   * once by the fourth batch. */
  for (int i = 0; i < 4; ++i) ck_assert_int_eq(msc_loader_next(l, b, NULL), MSC_OK);
  const float *seen[3] = {0};
  int n_seen = 0;
  long largest = 0;
  msc_status st[2 * K];
  const float *got[2 * K];
  count_start();
  for (int i = 0; i < 2 * K; ++i) {
    st[i] = msc_loader_next(l, b, NULL);
    got[i] = b->n_mod > 0 ? b->mod[0].data : NULL;
  }
  count_stop(&largest);
  for (int i = 0; i < 2 * K; ++i) {
    ck_assert_msg(st[i] == MSC_OK, "%s", msc_last_error());
    int j = 0;
    while (j < n_seen && seen[j] != got[i]) j++;
    if (j == n_seen) {
      ck_assert_int_lt(n_seen, 3);
      seen[n_seen++] = got[i];
    }
  }
  const long bound = sample_bytes(ds);
  ck_assert_msg(largest < bound, "an allocation of %ld bytes while the loader ran", largest);
  msc_loader_free(l);
  msc_batch_free(b);
  msc_dataset_free(ds);
}
END_TEST

int main(void) {
  g_trace = getenv("MSC_ALLOC_TRACE") != NULL;
  if (g_trace) {
    void *f[2];
    backtrace(f, 2); /* loads libgcc now, not inside a counted call */
  }
  Suite *s = suite_create("alloc");
  TCase *tc = tcase_create("steady");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_batch_setters_reuse_storage);
  tcase_add_test(tc, test_train_steps_do_not_allocate);
  tcase_add_test(tc, test_embed_does_not_allocate);
  tcase_add_test(tc, test_fill_batch_reuses_storage);
  tcase_add_test(tc, test_loader_reuses_storage);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
