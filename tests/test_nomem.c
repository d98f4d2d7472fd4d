/*
 * test_nomem.c — allocation failure at every allocation site of model create/load/save,
 * dataset open and embed (docs/conventions.md, "Errors": a failed call leaks nothing).
 *
 * As in SQLite's malloc tests: for N = 1, 2, ... the N-th allocation of the call fails;
 * the call must return MSC_E_OUT_OF_MEMORY with a message (another status, such as "bad
 * file", would be a lie) or succeed, never crash; its out-parameter is untouched on error; and once its result
 * is freed nothing it allocated is still live. The loop ends at the first N the call
 * never reaches (it then succeeded with no failure injected).
 *
 * The program defines malloc, calloc, realloc, free and the aligned allocators itself
 * (passing on to glibc's __libc_* functions), like tests/test_alloc.c. Only allocations
 * whose caller lies in this executable — libmosaic, linked in statically from
 * mosaic_internal — or in libjansson (the library's JSON: options, safetensors headers,
 * dataset metadata) are counted, failed and tracked. oneDNN, OpenMP, libtiff and the C
 * library allocate too, but failing theirs tests those libraries, not ours: libgomp
 * aborts the process on a failed allocation by design (gomp_malloc), oneDNN reports
 * dnnl_out_of_memory from deep inside primitive creation. The caller is the return
 * address of the allocation call, matched against the executable segments of the two
 * objects (dl_iterate_phdr), so an allocation made by the C library on libmosaic's
 * behalf (strdup, fopen's buffer) is not counted.
 *
 * Each case first runs the call once without faults (lazily made globals: the backend
 * registry, the CPU backend), so that what is live afterwards is what the call leaked.
 * Set MSC_NOMEM_TRACE=1 for the N of every injected failure and the status it gave.
 */
#include <check.h>
#include <link.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mosaic/mosaic.h"

#ifndef MSC_TEST_DATA
#error "MSC_TEST_DATA must name examples/data"
#endif

/* ---- who is calling --------------------------------------------------------------------- */

#define MAX_RANGES 16
static uintptr_t g_lo[MAX_RANGES], g_hi[MAX_RANGES];
static int g_ranges;

static int add_object(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size, (void)data;
  const char *name = info->dlpi_name ? info->dlpi_name : "";
  int ours = name[0] == '\0' /* the executable */ || strstr(name, "libjansson") != NULL;
  for (int i = 0; ours && i < info->dlpi_phnum && g_ranges < MAX_RANGES; ++i) {
    const ElfW(Phdr) *p = &info->dlpi_phdr[i];
    if (p->p_type != PT_LOAD || !(p->p_flags & PF_X)) continue;
    g_lo[g_ranges] = info->dlpi_addr + p->p_vaddr;
    g_hi[g_ranges] = g_lo[g_ranges] + p->p_memsz;
    ++g_ranges;
  }
  return 0;
}

static int ours(const void *ra) {
  uintptr_t a = (uintptr_t)ra;
  for (int i = 0; i < g_ranges; ++i)
    if (a >= g_lo[i] && a < g_hi[i]) return 1;
  return 0;
}

/* ---- the failing, tracking allocator ------------------------------------------------------ */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_int g_track;  /* record live allocations of ours (while set) */
static atomic_int g_inject; /* count our allocations and fail the g_fail_at-th */
static atomic_long g_count; /* our allocations since arm() */
static long g_fail_at;      /* 0: none */
static atomic_int g_hit;    /* the failure was injected */
static atomic_flag g_lock = ATOMIC_FLAG_INIT;

/* The live allocations of ours: an open-addressing set of pointers. */
#define SLOTS (1u << 16)
#define TOMB  ((void *)1)
static void *g_live[SLOTS];
static size_t g_size[SLOTS];
static long g_nlive;

static void lock(void) {
  while (atomic_flag_test_and_set_explicit(&g_lock, memory_order_acquire)) {
  }
}
static void unlock(void) {
  atomic_flag_clear_explicit(&g_lock, memory_order_release);
}

static size_t slot_of(const void *p) {
  return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 48) & (SLOTS - 1);
}

static void track(void *p, size_t n) {
  if (!p) return;
  lock();
  size_t i = slot_of(p);
  while (g_live[i] && g_live[i] != TOMB) i = (i + 1) & (SLOTS - 1);
  g_live[i] = p, g_size[i] = n;
  ++g_nlive;
  unlock();
}

static void untrack(void *p) {
  if (!p || !atomic_load_explicit(&g_track, memory_order_relaxed)) return;
  lock();
  for (size_t i = slot_of(p), k = 0; g_live[i] && k < SLOTS; i = (i + 1) & (SLOTS - 1), ++k)
    if (g_live[i] == p) {
      g_live[i] = TOMB;
      --g_nlive;
      break;
    }
  unlock();
}

/* 1 when this allocation (made from ra) is to fail. */
static int should_fail(const void *ra) {
  if (!atomic_load_explicit(&g_inject, memory_order_relaxed) || !ours(ra)) return 0;
  long n = atomic_fetch_add(&g_count, 1) + 1;
  if (n == g_fail_at) {
    atomic_store(&g_hit, 1);
    return 1;
  }
  return 0;
}

static void *note(void *p, size_t n, const void *ra) {
  if (p && atomic_load_explicit(&g_track, memory_order_relaxed) && ours(ra)) track(p, n);
  return p;
}

void *malloc(size_t n) {
  const void *ra = __builtin_return_address(0);
  if (should_fail(ra)) return NULL;
  return note(__libc_malloc(n), n, ra);
}
void *calloc(size_t n, size_t size) {
  const void *ra = __builtin_return_address(0);
  if (should_fail(ra)) return NULL;
  return note(__libc_calloc(n, size), n * size, ra);
}
void *realloc(void *p, size_t n) {
  const void *ra = __builtin_return_address(0);
  if (should_fail(ra)) return NULL; /* p stays valid, as after a real failure */
  void *q = __libc_realloc(p, n);
  if (q || n == 0) untrack(p);
  return q ? note(q, n, ra) : q;
}
void free(void *p) {
  untrack(p);
  __libc_free(p);
}
void *memalign(size_t align, size_t n) {
  const void *ra = __builtin_return_address(0);
  if (should_fail(ra)) return NULL;
  return note(__libc_memalign(align, n), n, ra);
}
void *aligned_alloc(size_t align, size_t n) {
  const void *ra = __builtin_return_address(0);
  if (should_fail(ra)) return NULL;
  return note(__libc_memalign(align, n), n, ra);
}
void *valloc(size_t n) {
  const void *ra = __builtin_return_address(0);
  if (should_fail(ra)) return NULL;
  return note(__libc_memalign((size_t)sysconf(_SC_PAGESIZE), n), n, ra);
}
int posix_memalign(void **out, size_t align, size_t n) {
  const void *ra = __builtin_return_address(0);
  if (should_fail(ra)) return 12; /* ENOMEM */
  void *p = __libc_memalign(align, n);
  if (!p) return 12;
  *out = note(p, n, ra);
  return 0;
}

/* Starts tracking and fails our fail_at-th allocation from now on (0: none). */
static void arm(long fail_at) {
  lock();
  memset(g_live, 0, sizeof g_live);
  g_nlive = 0;
  unlock();
  if (!g_ranges) dl_iterate_phdr(add_object, NULL);
  g_fail_at = fail_at;
  atomic_store(&g_count, 0);
  atomic_store(&g_hit, 0);
  atomic_store(&g_track, 1);
  atomic_store(&g_inject, 1);
}

/* Stops injecting (tracking goes on, so frees after the call are seen). */
static void stop_injecting(void) {
  atomic_store(&g_inject, 0);
}

/* Stops tracking; the number of our allocations still live, the first in *first. */
static long disarm(size_t *first) {
  atomic_store(&g_track, 0);
  long n = g_nlive;
  *first = 0;
  for (size_t i = 0; n > 0 && i < SLOTS; ++i)
    if (g_live[i] && g_live[i] != TOMB) {
      *first = g_size[i];
      break;
    }
  return n;
}

/* ---- the driver ---------------------------------------------------------------------------- */

/* One attempt: runs the call with the fail_at-th allocation failing, then releases what it
 * made. Returns the status; *sentinel_kept says whether the out-parameter was left alone
 * on error. */
typedef msc_status (*attempt_fn)(int *out_untouched);

static int g_trace;

static void exhaust(const char *name, attempt_fn f) {
  int untouched = 1;
  /* Warm-up: lazily made globals are not leaks of the call. */
  ck_assert_msg(f(&untouched) == MSC_OK, "%s without faults: %s", name, msc_last_error());
  long n = 1, failures = 0, nomem = 0;
  for (;; ++n) {
    arm(n);
    msc_status st = f(&untouched);
    stop_injecting();
    int hit = atomic_load(&g_hit);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", msc_last_error());
    size_t first;
    long live = disarm(&first);
    if (g_trace && hit)
      fprintf(stderr, "%s: allocation %ld fails: status %d %s\n", name, n, (int)st, msg);
    ck_assert_msg(live == 0,
                  "%s: allocation %ld failed (status %d: %s) and %ld allocation(s) of ours "
                  "are still live (one of %zu bytes)",
                  name, n, (int)st, msg, live, first);
    if (st != MSC_OK) {
      ck_assert_msg(hit, "%s failed (%d: %s) without an injected failure", name, (int)st, msg);
      ck_assert_msg(untouched, "%s: allocation %ld failed and the out-parameter was written",
                    name, n);
      /* Only memory ran out: any other status (a "bad file", a "bad value") would send
       * the user looking for a problem that is not there. */
      ck_assert_msg(st == MSC_E_OUT_OF_MEMORY,
                    "%s: allocation %ld failed and the call returned %d, not "
                    "MSC_E_OUT_OF_MEMORY: %s",
                    name, n, (int)st, msg);
      ck_assert_msg(msg[0] != '\0', "%s: allocation %ld: status %d without a message", name, n,
                    (int)st);
      ++failures;
      nomem += st == MSC_E_OUT_OF_MEMORY;
    }
    if (!hit) break; /* the call made fewer than n allocations: all were tried */
  }
  fprintf(stderr,
          "%s: %ld allocation sites tried, %ld failed calls (%ld MSC_E_OUT_OF_MEMORY)\n", name,
          n - 1, failures, nomem);
  ck_assert_msg(n > 1, "%s: no allocation of ours was seen", name);
}

/* ---- the calls ----------------------------------------------------------------------------- */

#define BN   4
#define SIZE 16

static const char *const k_model_json =
    "{\"modality.0.encoder\":\"tiny\",\"modality.1.encoder\":\"tiny\","
    "\"modality.0.size\":16,\"modality.1.size\":16,\"modality.1.bands\":4,"
    "\"classes\":4,\"class_names\":\"a;b;c;d\",\"proj.dim\":16,\"seed\":7,\"threads\":1}";

static msc_options *model_opts(void) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_from_json(o, k_model_json), MSC_OK);
  return o;
}

static msc_model *sentinel_model(void) {
  return (msc_model *)(uintptr_t)0x5eed;
}

static msc_options *g_opts;
static char g_path[256];

static msc_status attempt_create(int *untouched) {
  msc_model *m = sentinel_model();
  msc_status st = msc_model_create(g_opts, &m);
  *untouched = st == MSC_OK || m == sentinel_model();
  if (st == MSC_OK) msc_model_free(m);
  return st;
}

static msc_status attempt_load(int *untouched) {
  msc_model *m = sentinel_model();
  msc_status st = msc_model_load(g_path, g_opts, &m);
  *untouched = st == MSC_OK || m == sentinel_model();
  if (st == MSC_OK) msc_model_free(m);
  return st;
}

static msc_model *g_model;

static msc_status attempt_save(int *untouched) {
  *untouched = 1;
  return msc_model_save(g_model, g_path);
}

static msc_status attempt_open(int *untouched) {
  msc_dataset *ds = (msc_dataset *)(uintptr_t)0x5eed;
  msc_status st =
      msc_dataset_open(MSC_TEST_DATA "/bigearthnet-v2", "bigearthnet-v2", NULL, &ds);
  *untouched = st == MSC_OK || ds == (msc_dataset *)(uintptr_t)0x5eed;
  if (st == MSC_OK) msc_dataset_free(ds);
  return st;
}

/* msc_embed on a model that has never run, so that the first call's executor and its
 * buffers are what fail. */
static float g_s1[BN * 2 * SIZE * SIZE], g_s2[BN * 4 * SIZE * SIZE];
static msc_batch *g_batch;
static float g_out[BN * 1024];
static msc_model *g_fresh;

static msc_status attempt_embed(int *untouched) {
  *untouched = 1;
  int64_t d = 0;
  msc_status st = msc_model_embedding_size(g_fresh, MSC_EMBED_FUSED, &d);
  if (st == MSC_OK) st = msc_embed(g_fresh, g_batch, MSC_EMBED_FUSED, g_out, (size_t)(BN * d));
  return st;
}

/* The embed attempt needs a model that has never run: made here, unarmed. */
static msc_status attempt_embed_fresh(int *untouched) {
  /* Injection and tracking are suspended while the model is made and resumed for the
   * call, then suspended again while it is freed (its executors are the model's, freed
   * with it: those frees are tracked). */
  int inj = atomic_load(&g_inject), trk = atomic_load(&g_track);
  atomic_store(&g_inject, 0), atomic_store(&g_track, 0);
  ck_assert_int_eq(msc_model_create(g_opts, &g_fresh), MSC_OK);
  atomic_store(&g_track, trk), atomic_store(&g_inject, inj);
  msc_status st = attempt_embed(untouched);
  atomic_store(&g_inject, 0);
  msc_model_free(g_fresh); /* tracked: what embed made, the model must free */
  g_fresh = NULL;
  return st;
}

/* ---- the tests ---------------------------------------------------------------------------- */

START_TEST(nomem_model_create) {
  g_opts = model_opts();
  exhaust("msc_model_create", attempt_create);
  msc_options_free(g_opts);
}
END_TEST

START_TEST(nomem_model_save_load) {
  g_opts = model_opts();
  snprintf(g_path, sizeof g_path, "/tmp/msc_nomem_%d.safetensors", (int)getpid());
  ck_assert_int_eq(msc_model_create(g_opts, &g_model), MSC_OK);
  exhaust("msc_model_save", attempt_save);
  exhaust("msc_model_load", attempt_load);
  msc_model_free(g_model);
  msc_options_free(g_opts);
  unlink(g_path);
}
END_TEST

START_TEST(nomem_dataset_open) {
  exhaust("msc_dataset_open", attempt_open);
}
END_TEST

START_TEST(nomem_embed) {
  g_opts = model_opts();
  uint32_t r = 99;
  for (size_t i = 0; i < sizeof g_s1 / sizeof g_s1[0]; ++i)
    g_s1[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f;
  for (size_t i = 0; i < sizeof g_s2 / sizeof g_s2[0]; ++i)
    g_s2[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f;
  ck_assert_int_eq(msc_batch_create(&g_batch), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(g_batch, "s1", g_s1, BN, 2, SIZE, SIZE), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(g_batch, "s2", g_s2, BN, 4, SIZE, SIZE), MSC_OK);
  exhaust("msc_embed", attempt_embed_fresh);
  msc_batch_free(g_batch);
  msc_options_free(g_opts);
}
END_TEST

int main(void) {
  g_trace = getenv("MSC_NOMEM_TRACE") != NULL;
  Suite *s = suite_create("nomem");
  TCase *tc = tcase_create("nomem");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, nomem_model_create);
  tcase_add_test(tc, nomem_model_save_load);
  tcase_add_test(tc, nomem_dataset_open);
  tcase_add_test(tc, nomem_embed);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
