/*
 * test_registry.c — the backend registry and module loader.
 *
 * ctest runs this with MSC_BACKEND_PATH=/nonexistent-dir:<build>/tests/fake_backends,
 * where the fake modules of fake_backend.c and a non-ELF libmosaic-notelf.so live.
 *
 * main() installs a log callback before anything touches the registry, so the
 * messages of discovery are captured whichever test triggers it: in Check's default
 * fork mode every test is a fresh child that discovers on its own; with CK_FORK=no
 * discovery happens once, in the first test, and the capture persists.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_call.h"
#include "backend/registry.h"
#include "common/internal.h"
#include "mosaic/mosaic.h"

/* ------------------------------------------------------------------------------ */
/* Captured log messages                                                           */
/* ------------------------------------------------------------------------------ */

#define MAX_CAPTURED 256

typedef struct captured {
  int32_t level;
  char message[1024];
} captured;

static pthread_mutex_t g_capture_lock = PTHREAD_MUTEX_INITIALIZER;
static captured g_captured[MAX_CAPTURED];
static int g_ncaptured;
static int g_capture_user;

static void capture_log(int32_t level, const char *message, void *user) {
  if (user != &g_capture_user) return;
  pthread_mutex_lock(&g_capture_lock);
  if (g_ncaptured < MAX_CAPTURED) {
    g_captured[g_ncaptured].level = level;
    snprintf(g_captured[g_ncaptured].message, sizeof g_captured[0].message, "%s", message);
    g_ncaptured++;
  }
  pthread_mutex_unlock(&g_capture_lock);
}

/* Number of captured messages of exactly this level containing all of a and b. */
static int count_captured(int32_t level, const char *a, const char *b) {
  int n = 0;
  pthread_mutex_lock(&g_capture_lock);
  for (int i = 0; i < g_ncaptured; i++)
    if (g_captured[i].level == level && strstr(g_captured[i].message, a) != NULL &&
        (b == NULL || strstr(g_captured[i].message, b) != NULL))
      n++;
  pthread_mutex_unlock(&g_capture_lock);
  return n;
}

static void dump_captured(void) {
  pthread_mutex_lock(&g_capture_lock);
  for (int i = 0; i < g_ncaptured; i++)
    fprintf(stderr, "  log[%d] level %d: %s\n", i, (int)g_captured[i].level,
            g_captured[i].message);
  pthread_mutex_unlock(&g_capture_lock);
}

/* ------------------------------------------------------------------------------ */
/* Helpers                                                                         */
/* ------------------------------------------------------------------------------ */

static int backend_index(const char *name) {
  int32_t n = msc_backend_count();
  for (int32_t i = 0; i < n; i++)
    if (strcmp(msc_backend_name(i), name) == 0) return (int)i;
  return -1;
}

/* The backend is listed, unavailable, and the reason contains every needle. */
static void assert_unavailable(const char *name, const char *needle1, const char *needle2) {
  ck_assert_msg(backend_index(name) >= 0, "backend '%s' is not listed", name);
  msc_clear_error();
  ck_assert_int_eq(msc_backend_available(name), MSC_E_BACKEND_UNAVAILABLE);
  const char *e = msc_last_error();
  ck_assert_msg(strstr(e, needle1) != NULL, "'%s': \"%s\" lacks \"%s\"", name, e, needle1);
  if (needle2 != NULL)
    ck_assert_msg(strstr(e, needle2) != NULL, "'%s': \"%s\" lacks \"%s\"", name, e, needle2);
}

/* ------------------------------------------------------------------------------ */
/* Listing                                                                         */
/* ------------------------------------------------------------------------------ */

START_TEST(listing) {
  int32_t n = msc_backend_count();
  ck_assert_int_ge(n, 1);
  ck_assert_str_eq(msc_backend_name(0), "cpu");
  ck_assert_ptr_null(msc_backend_name(-1));
  ck_assert_ptr_null(msc_backend_name(n));
  ck_assert_ptr_null(msc_backend_name(INT32_MAX));
  ck_assert_ptr_null(msc_backend_name(INT32_MIN));
  ck_assert_int_eq(msc_backend_count(), n);
  for (int32_t i = 0; i < n; i++) {
    const char *name = msc_backend_name(i);
    ck_assert_ptr_nonnull(name);
    ck_assert_ptr_eq(name, msc_backend_name(i)); /* stable pointers */
    ck_assert_msg(name[0] != '\0', "backend %d has an empty name", (int)i);
    for (int32_t j = 0; j < i; j++)
      ck_assert_msg(strcmp(name, msc_backend_name(j)) != 0, "'%s' listed twice", name);
  }
  /* cpu, cuda, then the fake directory's modules; the nonexistent one is skipped. */
  ck_assert_str_eq(msc_backend_name(1), "cuda");
  const char *fakes[] = {"fakebadversion", "fakegood",     "fakeinitfail",
                         "fakenodevice",   "fakenosymbol", "notelf"};
  for (size_t i = 0; i < sizeof fakes / sizeof fakes[0]; i++)
    ck_assert_msg(backend_index(fakes[i]) == (int)i + 2, "'%s' at %d", fakes[i],
                  backend_index(fakes[i]));
  ck_assert_int_eq(n, 8);
}
END_TEST

START_TEST(cpu_available) {
  msc_clear_error();
  ck_assert_int_eq(msc_backend_available("cpu"), MSC_OK);
  ck_assert_str_eq(msc_last_error(), "");
}
END_TEST

START_TEST(fakegood_available) {
  ck_assert_int_ge(backend_index("fakegood"), 0);
  ck_assert_int_eq(msc_backend_available("fakegood"), MSC_OK);
}
END_TEST

START_TEST(fakebadversion_unavailable) {
  assert_unavailable("fakebadversion", "API version", "99");
  ck_assert_msg(strstr(msc_last_error(), "libmosaic-fakebadversion.so") != NULL, "%s",
                msc_last_error());
}
END_TEST

START_TEST(fakenosymbol_unavailable) {
  assert_unavailable("fakenosymbol", "msc_backend_module_init", "no symbol");
}
END_TEST

START_TEST(fakeinitfail_unavailable) {
  assert_unavailable("fakeinitfail", "no device found", "init failed");
}
END_TEST

START_TEST(fakenodevice_unavailable) {
  assert_unavailable("fakenodevice", "no fake device present", "probe");
}
END_TEST

START_TEST(notelf_unavailable) {
  assert_unavailable("notelf", "dlopen", "libmosaic-notelf.so");
}
END_TEST

START_TEST(cuda_listed_unavailable) {
  assert_unavailable("cuda", "libmosaic-cuda.so", "not found");
}
END_TEST

START_TEST(unknown_and_null) {
  msc_clear_error();
  ck_assert_int_eq(msc_backend_available("nope"), MSC_E_NOT_FOUND);
  const char *e = msc_last_error();
  ck_assert_msg(strstr(e, "'nope'") != NULL, "%s", e);
  ck_assert_msg(strstr(e, "cpu") != NULL && strstr(e, "fakegood") != NULL, "%s", e);
  ck_assert_int_eq(msc_backend_available(""), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_backend_available("CPU"), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msc_backend_available("auto"), MSC_E_NOT_FOUND);

  msc_clear_error();
  ck_assert_int_eq(msc_backend_available(NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_ne(msc_last_error(), "");

  const char *chosen = "untouched";
  ck_assert_int_eq(msc_backend_select(NULL, &chosen), MSC_E_INVALID_ARGUMENT);
  ck_assert_str_eq(chosen, "untouched");
  ck_assert_int_eq(msc_backend_select("auto", NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_backend_select("nope", &chosen), MSC_E_NOT_FOUND);
  ck_assert_str_eq(chosen, "untouched");
  ck_assert_msg(strstr(msc_last_error(), "auto") != NULL, "%s", msc_last_error());
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Selection                                                                       */
/* ------------------------------------------------------------------------------ */

START_TEST(select_auto_is_cpu) {
  const char *chosen = NULL;
  ck_assert_int_eq(msc_backend_select("auto", &chosen), MSC_OK);
  ck_assert_str_eq(chosen, "cpu");
  ck_assert_ptr_eq(chosen, msc_backend_name(0));
}
END_TEST

START_TEST(select_cuda_never_falls_back) {
  const char *sentinel = "sentinel";
  const char *chosen = sentinel;
  ck_assert_int_eq(msc_backend_select("cuda", &chosen), MSC_E_BACKEND_UNAVAILABLE);
  ck_assert_ptr_eq(chosen, sentinel);
  ck_assert_msg(strstr(msc_last_error(), "libmosaic-cuda.so") != NULL, "%s", msc_last_error());
  ck_assert_int_eq(msc_backend_select("fakeinitfail", &chosen), MSC_E_BACKEND_UNAVAILABLE);
  ck_assert_ptr_eq(chosen, sentinel);
}
END_TEST

START_TEST(select_explicit) {
  const char *chosen = NULL;
  ck_assert_int_eq(msc_backend_select("fakegood", &chosen), MSC_OK);
  ck_assert_str_eq(chosen, "fakegood");
  ck_assert_ptr_eq(chosen, msc_backend_name(backend_index("fakegood")));
  ck_assert_int_eq(msc_backend_select("cpu", &chosen), MSC_OK);
  ck_assert_str_eq(chosen, "cpu");
}
END_TEST

START_TEST(resolve_internal) {
  const mbk_iface *iface = NULL;
  const char *name = NULL;
  ck_assert_int_eq(msci_backend_resolve("auto", &iface, &name), MSC_OK);
  ck_assert_str_eq(name, "cpu");
  ck_assert_ptr_nonnull(iface);
  ck_assert_str_eq(iface->name, "cpu");
  ck_assert_uint_eq(iface->api_version, MBK_API_VERSION);

  ck_assert_int_eq(msci_backend_resolve("fakegood", &iface, &name), MSC_OK);
  ck_assert_str_eq(name, "fakegood");
  ck_assert_str_eq(iface->name, "fakegood");

  /* The module works through the table, and reports errors through the host. */
  mbk_ctx *ctx = NULL;
  ck_assert_int_eq(iface->ctx_create(NULL, &ctx), MSC_OK);
  mbk_tensor *t = NULL;
  ck_assert_int_eq(iface->tensor_create(ctx, &t), MSC_OK);
  const int64_t dims[2] = {2, 3};
  const float src[6] = {1, 2, 3, 4, 5, 6};
  ck_assert_int_eq(iface->tensor_upload(t, 2, dims, src), MSC_OK);
  int64_t shape[MBK_MAX_DIMS];
  ck_assert_int_eq(iface->tensor_shape(t, shape), 2);
  ck_assert_int_eq(shape[0], 2);
  ck_assert_int_eq(shape[1], 3);
  float dst[6] = {0};
  ck_assert_int_eq(iface->tensor_download(t, dst, 6), MSC_OK);
  ck_assert_mem_eq(dst, src, sizeof src);
  msc_clear_error();
  ck_assert_int_eq(iface->tensor_download(t, dst, 5), MSC_E_BUFFER_TOO_SMALL);
  ck_assert_msg(strstr(msc_last_error(), "fakegood") != NULL, "%s", msc_last_error());
  mbk_op_desc desc;
  memset(&desc, 0, sizeof desc);
  desc.type = MBK_OP_RELU;
  mbk_op *op = NULL;
  ck_assert_int_eq(iface->op_create(ctx, &desc, &op), MSC_E_UNSUPPORTED);
  iface->tensor_free(t);
  iface->ctx_free(ctx);

  /* Same rules as msc_backend_select; outputs untouched on error. */
  const mbk_iface *sentinel_iface = (const mbk_iface *)&desc;
  const char *sentinel_name = "sentinel";
  iface = sentinel_iface;
  name = sentinel_name;
  ck_assert_int_eq(msci_backend_resolve("cuda", &iface, &name), MSC_E_BACKEND_UNAVAILABLE);
  ck_assert_int_eq(msci_backend_resolve("nope", &iface, &name), MSC_E_NOT_FOUND);
  ck_assert_int_eq(msci_backend_resolve(NULL, &iface, &name), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_backend_resolve("cpu", NULL, &name), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_eq(iface, sentinel_iface);
  ck_assert_ptr_eq(name, sentinel_name);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Errors and logs                                                                 */
/* ------------------------------------------------------------------------------ */

START_TEST(success_leaves_error_alone) {
  /* In fork mode this is also the first registry call of the process: discovery,
   * during which modules set errors through the host, must not clobber it either. */
  msci_fail(MSC_E_IO, "an earlier failure");
  ck_assert_int_ge(msc_backend_count(), 1);
  ck_assert_str_eq(msc_last_error(), "an earlier failure");
  ck_assert_int_eq(msc_backend_available("cpu"), MSC_OK);
  const char *chosen = NULL;
  ck_assert_int_eq(msc_backend_select("auto", &chosen), MSC_OK);
  ck_assert_ptr_nonnull(msc_backend_name(0));
  ck_assert_str_eq(msc_last_error(), "an earlier failure");
}
END_TEST

START_TEST(warnings_for_broken_modules) {
  ck_assert_int_ge(msc_backend_count(), 1); /* discovery has run */
  int ok = count_captured(MSC_LOG_WARNING, "fakebadversion", "API version") == 1 &&
           count_captured(MSC_LOG_WARNING, "fakenosymbol", "msc_backend_module_init") == 1 &&
           count_captured(MSC_LOG_WARNING, "fakeinitfail", "no device found") == 1 &&
           count_captured(MSC_LOG_INFO, "fakenodevice", "no fake device present") == 1 &&
           count_captured(MSC_LOG_WARNING, "fakenodevice", NULL) == 0 &&
           count_captured(MSC_LOG_WARNING, "notelf", "dlopen") == 1 &&
           count_captured(MSC_LOG_WARNING, "fakegood", NULL) == 0 &&
           count_captured(MSC_LOG_WARNING, "'cpu'", NULL) == 0;
  if (!ok) dump_captured();
  ck_assert_msg(ok, "warnings for the broken modules were not logged as expected");
  /* A missing optional module, or one whose probe finds no device, is not a warning;
   * it is reported at INFO. */
  ck_assert_int_eq(count_captured(MSC_LOG_WARNING, "backend 'cuda'", NULL), 0);
  ck_assert_int_eq(count_captured(MSC_LOG_INFO, "libmosaic-cuda.so", "not found"), 1);
  /* The good module is announced, the nonexistent directory noted at DEBUG, and the
   * module's own host->log call arrived. */
  ck_assert_int_eq(count_captured(MSC_LOG_INFO, "fakegood", "available"), 1);
  ck_assert_int_eq(count_captured(MSC_LOG_DEBUG, "/nonexistent-dir", NULL), 1);
  ck_assert_int_eq(count_captured(MSC_LOG_DEBUG, "fakegood: initialised", NULL), 1);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Concurrent first calls                                                          */
/* ------------------------------------------------------------------------------ */

#define RACERS 8

typedef struct racer {
  pthread_barrier_t *barrier;
  int32_t count;
  const char *name0;
  msc_status available;
  int kind;
} racer;

static void *race_first_call(void *arg) {
  racer *r = arg;
  pthread_barrier_wait(r->barrier);
  switch (r->kind % 3) { /* different entry points race for the same discovery */
  case 0: r->count = msc_backend_count(); break;
  case 1:
    r->available = msc_backend_available("fakegood");
    r->count = msc_backend_count();
    break;
  default: {
    const char *chosen = NULL;
    r->available = msc_backend_select("auto", &chosen);
    r->count = msc_backend_count();
    break;
  }
  }
  r->name0 = msc_backend_name(0);
  return NULL;
}

START_TEST(concurrent_first_calls) {
  /* In fork mode nothing in this process has touched the registry yet. */
  pthread_barrier_t barrier;
  ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, RACERS), 0);
  racer r[RACERS];
  pthread_t t[RACERS];
  for (int i = 0; i < RACERS; i++) {
    memset(&r[i], 0, sizeof r[i]);
    r[i].barrier = &barrier;
    r[i].kind = i;
    ck_assert_int_eq(pthread_create(&t[i], NULL, race_first_call, &r[i]), 0);
  }
  for (int i = 0; i < RACERS; i++) ck_assert_int_eq(pthread_join(t[i], NULL), 0);
  pthread_barrier_destroy(&barrier);
  int32_t n = msc_backend_count();
  for (int i = 0; i < RACERS; i++) {
    ck_assert_int_eq(r[i].count, n);
    ck_assert_ptr_eq(r[i].name0, msc_backend_name(0));
    ck_assert_int_eq(r[i].available, MSC_OK);
  }
  ck_assert_str_eq(msc_backend_name(0), "cpu");
  /* Discovery ran once: one warning per broken module, not one per thread. */
  ck_assert_int_eq(count_captured(MSC_LOG_WARNING, "fakebadversion", NULL), 1);
}
END_TEST

/* The core's frame (backend_call.c) checks arguments before a module sees them: what it
 * rejects fails with MSC_E_INVALID_ARGUMENT and a message of its own, what it accepts
 * reaches the fake module, which answers MSC_E_UNSUPPORTED. */
static void expect_frame(const char *what, msc_status got, msc_status want, const char *msg) {
  ck_assert_msg(got == want, "%s: status %d, expected %d (%s)", what, (int)got, (int)want,
                msc_last_error());
  ck_assert_msg(strstr(msc_last_error(), msg) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
                msc_last_error(), msg);
  msc_clear_error();
}

START_TEST(frame_checks_module_calls) {
  const mbk_iface *be = NULL;
  const char *name = NULL;
  ck_assert_int_eq(msci_backend_resolve("fakegood", &be, &name), MSC_OK);
  mbk_ctx *ctx = NULL;
  ck_assert_int_eq(msci_be_ctx_create(be, NULL, &ctx), MSC_OK);
  mbk_tensor *a = NULL, *b = NULL, *y = NULL;
  ck_assert_int_eq(msci_be_tensor_create(be, ctx, &a), MSC_OK);
  ck_assert_int_eq(msci_be_tensor_create(be, ctx, &b), MSC_OK);
  ck_assert_int_eq(msci_be_tensor_create(be, ctx, &y), MSC_OK);
  msc_clear_error();

  /* Descriptions: an invalid one never reaches the module. */
  mbk_op_desc d;
  memset(&d, 0, sizeof d);
  d.type = MBK_OP_ADD;
  d.ndim = 2;
  d.n = 2;
  d.c = 3;
  d.h = d.w = 1;
  msci_be_op *op = NULL;
  mbk_op_desc bad = d;
  bad.n = 0;
  expect_frame("op_create, n = 0", msci_be_op_create(be, ctx, &bad, &op),
               MSC_E_INVALID_ARGUMENT, "fakegood: op type 7: n and c must be positive");
  ck_assert_ptr_null(op);
  bad = d;
  bad.type = MBK_OP_RELU; /* valid, but the module has no relu */
  expect_frame("op_create, relu", msci_be_op_create(be, ctx, &bad, &op), MSC_E_UNSUPPORTED,
               "fakegood: op type 3 is not supported");
  ck_assert_int_eq(msci_be_op_create(be, ctx, &d, &op), MSC_OK);
  ck_assert_ptr_nonnull(op);

  /* Argument counts and NULL entries of each pass. */
  mbk_tensor *in[3] = {a, b, b}, *out[2] = {y, y}, *in_null[2] = {a, NULL};
  expect_frame("add forward, 1 input", msci_be_op_forward(op, 0, in, 1, out, 1),
               MSC_E_INVALID_ARGUMENT,
               "fakegood: add forward takes 2 inputs and 1 output, got 1 and 1");
  expect_frame("add forward, 3 inputs", msci_be_op_forward(op, 0, in, 3, out, 1),
               MSC_E_INVALID_ARGUMENT, "takes 2 inputs and 1 output, got 3 and 1");
  expect_frame("add forward, 2 outputs", msci_be_op_forward(op, 0, in, 2, out, 2),
               MSC_E_INVALID_ARGUMENT, "got 2 and 2");
  expect_frame("add forward, b NULL", msci_be_op_forward(op, 0, in_null, 2, out, 1),
               MSC_E_INVALID_ARGUMENT, "fakegood: add forward: input 1 is NULL");
  mbk_tensor *null_out[1] = {NULL};
  expect_frame("add forward, y NULL", msci_be_op_forward(op, 0, in, 2, null_out, 1),
               MSC_E_INVALID_ARGUMENT, "fakegood: add forward: output 0 is NULL");
  expect_frame("add forward, no inputs", msci_be_op_forward(op, 0, NULL, 2, out, 1),
               MSC_E_INVALID_ARGUMENT, "the input array is NULL");
  expect_frame("add forward", msci_be_op_forward(op, 0, in, 2, out, 1), MSC_E_UNSUPPORTED,
               "fakegood: op_forward is not supported");
  expect_frame("add backward, 2 inputs", msci_be_op_backward(op, in, 2, out, 2),
               MSC_E_INVALID_ARGUMENT, "add backward takes 1 input and 2 outputs");
  mbk_tensor *grads[2] = {NULL, NULL}; /* both input gradients are optional */
  expect_frame("add backward", msci_be_op_backward(op, in, 1, grads, 2), MSC_E_UNSUPPORTED,
               "fakegood: op_backward is not supported");
  expect_frame("forward, NULL op", msci_be_op_forward(NULL, 0, in, 2, out, 1),
               MSC_E_INVALID_ARGUMENT, "NULL");

  /* Loss arguments. */
  double v = 0;
  mbk_loss_desc ld;
  memset(&ld, 0, sizeof ld);
  ld.type = MBK_LOSS_INFONCE;
  ld.n = 1;
  ld.d = 3;
  ld.tau = 0.1f;
  expect_frame("infonce without x2", msci_be_loss(be, ctx, &ld, a, NULL, &v, y, NULL),
               MSC_E_INVALID_ARGUMENT, "fakegood: loss: NULL argument");
  ld.type = MBK_LOSS_MULSUPCON;
  ld.c = 2;
  expect_frame("mulsupcon without rows", msci_be_loss(be, ctx, &ld, a, NULL, &v, y, NULL),
               MSC_E_INVALID_ARGUMENT, "fakegood: mulsupcon: rows and labels are required");
  ld.type = MBK_LOSS_NTXENT;
  ld.n = 0;
  expect_frame("ntxent n = 0", msci_be_loss(be, ctx, &ld, a, NULL, &v, y, NULL),
               MSC_E_INVALID_ARGUMENT, "fakegood: loss: bad sizes");
  ld.n = 1;
  expect_frame("ntxent", msci_be_loss(be, ctx, &ld, a, NULL, &v, y, NULL), MSC_E_UNSUPPORTED,
               "fakegood: loss is not supported");

  /* Tensors. */
  const int64_t dims[2] = {2, 3};
  expect_frame("upload, NULL data", msci_be_tensor_upload(be, a, 2, dims, NULL),
               MSC_E_INVALID_ARGUMENT, "fakegood: tensor_upload: NULL argument");

  msci_be_op_free(op);
  msci_be_tensor_free(be, a);
  msci_be_tensor_free(be, b);
  msci_be_tensor_free(be, y);
  msci_be_ctx_free(be, ctx);
}
END_TEST

static Suite *registry_suite(void) {
  Suite *s = suite_create("registry");

  TCase *tc = tcase_create("listing");
  tcase_add_test(tc, listing);
  tcase_add_test(tc, cpu_available);
  tcase_add_test(tc, fakegood_available);
  tcase_add_test(tc, frame_checks_module_calls);
  tcase_add_test(tc, fakebadversion_unavailable);
  tcase_add_test(tc, fakenosymbol_unavailable);
  tcase_add_test(tc, fakeinitfail_unavailable);
  tcase_add_test(tc, fakenodevice_unavailable);
  tcase_add_test(tc, notelf_unavailable);
  tcase_add_test(tc, cuda_listed_unavailable);
  tcase_add_test(tc, unknown_and_null);
  suite_add_tcase(s, tc);

  tc = tcase_create("selection");
  tcase_add_test(tc, select_auto_is_cpu);
  tcase_add_test(tc, select_cuda_never_falls_back);
  tcase_add_test(tc, select_explicit);
  tcase_add_test(tc, resolve_internal);
  suite_add_tcase(s, tc);

  tc = tcase_create("errors and logs");
  tcase_add_test(tc, success_leaves_error_alone);
  tcase_add_test(tc, warnings_for_broken_modules);
  suite_add_tcase(s, tc);

  tc = tcase_create("threads");
  tcase_add_test(tc, concurrent_first_calls);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  /* Run by hand (not through ctest): use the fake modules built next to this program. */
  if (getenv("MSC_BACKEND_PATH") == NULL) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
      exe[n] = '\0';
      char *slash = strrchr(exe, '/');
      if (slash != NULL) {
        *slash = '\0';
        char path[4200];
        snprintf(path, sizeof path, "/nonexistent-dir:%s/fake_backends", exe);
        setenv("MSC_BACKEND_PATH", path, 1);
      }
    }
  }
  /* Before any registry call, so discovery's messages are captured. */
  if (msc_set_log_callback(capture_log, &g_capture_user, MSC_LOG_DEBUG) != MSC_OK) {
    fprintf(stderr, "msc_set_log_callback failed: %s\n", msc_last_error());
    return EXIT_FAILURE;
  }
  SRunner *sr = srunner_create(registry_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
