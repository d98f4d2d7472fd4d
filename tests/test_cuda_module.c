/*
 * test_cuda_module.c — the CUDA backend module as the registry sees it, on any machine.
 *
 * Run with MSC_BACKEND_PATH naming the directory of libmosaic-cuda.so (tests/cuda.cmake
 * does). What it checks:
 *  - the module is found and listed as "cuda";
 *  - with a usable device: "cuda" and "auto" both select it, and a context works;
 *  - without one: "cuda" gives MSC_E_BACKEND_UNAVAILABLE with the probe's reason (no
 *    driver, no device, ...), never a silent fallback, while "auto" resolves to the CPU
 *    backend, which still runs an op; the module, opened directly, refuses a context
 *    cleanly (an error status and message, no crash);
 *  - a module whose libraries cannot be loaded (a copy that names a missing libcudnn) is
 *    reported by the registry with the loader's message naming the missing library.
 * MSC_TEST_EXPECT_CUDA=1 (set on a GPU machine) makes "no usable device" a failure.
 * Plain C with exit codes (0 pass, 1 fail) rather than Check: no fork, because CUDA
 * cannot be used in a child forked after the parent touched it.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contract/backend.h"
#include "backend/registry.h"
#include "common/internal.h"

static int g_failures;

#define CHECK(cond, ...)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                          \
      fprintf(stderr, __VA_ARGS__);                                                            \
      fprintf(stderr, "\n");                                                                   \
      ++g_failures;                                                                            \
    }                                                                                          \
  } while (0)

static char g_log[4096];

static void on_log(int32_t level, const char *message, void *user) {
  (void)user;
  if (level <= MSC_LOG_INFO && strlen(g_log) + strlen(message) + 2 < sizeof g_log) {
    strcat(g_log, message);
    strcat(g_log, "\n");
  }
}

/* The reasons cuda_backend.cu's probe gives (or the loader's, if the module's own
 * libraries are missing on this machine). */
static int known_reason(const char *msg) {
  static const char *const known[] = {
      "no CUDA device",      "no NVIDIA driver",      "the NVIDIA driver supports CUDA",
      "busy or unavailable", "cannot run this build", "cuDNN",
      "CUDA runtime:",       "dlopen failed"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; ++i)
    if (strstr(msg, known[i])) return 1;
  return 0;
}

/* The CPU path keeps working: one ReLU through the table "auto" resolved to. */
static void run_relu(const mbk_iface *be) {
  mbk_ctx_params p = {sizeof p, 1, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  mbk_ctx *ctx = NULL;
  msc_status st = be->ctx_create(&p, &ctx);
  CHECK(st == MSC_OK, "%s ctx_create: %s", be->name, msc_last_error());
  if (st != MSC_OK) return;
  mbk_tensor *x = NULL, *y = NULL;
  mbk_op *op = NULL;
  mbk_op_desc d;
  memset(&d, 0, sizeof d);
  d.type = MBK_OP_RELU;
  d.ndim = 2, d.n = 2, d.c = 3, d.h = 1, d.w = 1;
  const float in[6] = {-1, 2, -3, 4, 0, 5}, want[6] = {0, 2, 0, 4, 0, 5};
  float got[6] = {0};
  int64_t dims[2] = {2, 3};
  st = be->tensor_create(ctx, &x);
  if (st == MSC_OK) st = be->tensor_create(ctx, &y);
  if (st == MSC_OK) st = be->tensor_upload(x, 2, dims, in);
  if (st == MSC_OK) st = be->op_create(ctx, &d, &op);
  if (st == MSC_OK) st = be->op_forward(op, 0, &x, 1, &y, 1);
  if (st == MSC_OK) st = be->tensor_download(y, got, 6);
  CHECK(st == MSC_OK, "%s relu: %s", be->name, msc_last_error());
  CHECK(memcmp(got, want, sizeof want) == 0, "%s relu gave wrong values", be->name);
  be->op_free(op);
  be->tensor_free(x);
  be->tensor_free(y);
  be->ctx_free(ctx);
}

/* Opens the module directly (the registry keeps its own handle) and asks for a context
 * that cannot exist here: it must fail with a status and a message. */
static void direct_open_without_device(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/libmosaic-cuda.so", dir);
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  CHECK(h != NULL, "dlopen %s: %s", path, dlerror());
  if (!h) return;
  void *sym = dlsym(h, MBK_MODULE_INIT_SYMBOL);
  CHECK(sym != NULL, "no %s", MBK_MODULE_INIT_SYMBOL);
  if (sym) {
    mbk_module_init_fn init;
    memcpy(&init, &sym, sizeof init);
    const mbk_iface *it = NULL;
    CHECK(init(msci_host(), &it) == MSC_OK && it, "init failed: %s", msc_last_error());
    if (it) {
      CHECK(it->optim_update != NULL, "the CUDA table has no optim_update");
      CHECK(it->grad_stats != NULL, "the CUDA table has no grad_stats");
      char why[256] = "";
      CHECK(it->probe(why, sizeof why) == MSC_E_BACKEND_UNAVAILABLE && known_reason(why),
            "probe: '%s'", why);
      printf("probe says: %s\n", why);
      mbk_ctx *ctx = NULL;
      msc_clear_error();
      mbk_ctx_params p = {sizeof p, 0, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
      msc_status st = it->ctx_create(&p, &ctx);
      CHECK(st != MSC_OK && ctx == NULL && msc_last_error()[0] != '\0',
            "ctx_create without a device: status %d, '%s'", (int)st, msc_last_error());
      printf("ctx_create says: %s\n", msc_last_error());
      it->ctx_free(NULL);
      it->tensor_free(NULL);
      it->op_free(NULL);
    }
  }
  dlclose(h);
}

/* Writes a copy of the module that needs "libcudnq.so.9" instead of libcudnn.so.9 (same
 * length, so the ELF stays valid) into dir. */
static int write_broken_copy(const char *src_dir, const char *dir) {
  char src[4096], dst[4096];
  snprintf(src, sizeof src, "%s/libmosaic-cuda.so", src_dir);
  snprintf(dst, sizeof dst, "%s/libmosaic-cuda.so", dir);
  FILE *f = fopen(src, "rb");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n);
  int ok = buf && fread(buf, 1, (size_t)n, f) == (size_t)n;
  fclose(f);
  int replaced = 0;
  static const char from[] = "libcudnn.so.9", to[] = "libcudnq.so.9";
  for (long i = 0; ok && i + (long)sizeof from - 1 <= n; ++i)
    if (memcmp(buf + i, from, sizeof from) == 0) { /* with the NUL: a whole name */
      memcpy(buf + i, to, sizeof to - 1);
      ++replaced;
    }
  FILE *g = ok && replaced ? fopen(dst, "wb") : NULL;
  ok = g && fwrite(buf, 1, (size_t)n, g) == (size_t)n;
  if (g) ok = fclose(g) == 0 && ok;
  free(buf);
  return ok;
}

/* Child mode: MSC_BACKEND_PATH holds only the broken copy. */
static int check_broken(void) {
  msc_status st = msc_backend_available("cuda");
  const char *msg = msc_last_error();
  CHECK(st == MSC_E_BACKEND_UNAVAILABLE, "broken module: status %d", (int)st);
  CHECK(strstr(msg, "dlopen failed") && strstr(msg, "libcudnq.so.9"),
        "the registry's message should name the missing library: '%s'", msg);
  printf("broken module: %s\n", msg);
  const char *chosen = NULL;
  CHECK(msc_backend_select("auto", &chosen) == MSC_OK && chosen && strcmp(chosen, "cpu") == 0,
        "auto with a broken cuda module should be cpu");
  return g_failures ? 1 : 0;
}

static void broken_module(const char *self, const char *module_dir) {
  char tmpl[] = "/tmp/msc-cuda-broken.XXXXXX";
  char *dir = mkdtemp(tmpl);
  CHECK(dir != NULL, "mkdtemp");
  if (!dir) return;
  if (write_broken_copy(module_dir, dir)) {
    char cmd[8192];
    fflush(stdout);
    snprintf(cmd, sizeof cmd, "MSC_BACKEND_PATH='%s' '%s' check-broken", dir, self);
    int rc = system(cmd);
    CHECK(rc == 0, "the broken-module check failed (status %d)", rc);
  } else {
    CHECK(0, "could not write a broken copy of the module");
  }
  char path[4200];
  snprintf(path, sizeof path, "%s/libmosaic-cuda.so", dir);
  unlink(path);
  rmdir(dir);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "check-broken") == 0) return check_broken();
  msc_set_log_callback(on_log, NULL, MSC_LOG_INFO);
  const char *dir = getenv("MSC_BACKEND_PATH");
  CHECK(dir && dir[0], "MSC_BACKEND_PATH must name the module's directory");
  if (!dir || !dir[0]) return 1;
  const int expect = getenv("MSC_TEST_EXPECT_CUDA") && atoi(getenv("MSC_TEST_EXPECT_CUDA"));

  CHECK(msc_backend_count() >= 2 && strcmp(msc_backend_name(1), "cuda") == 0,
        "cuda not listed");
  msc_status st = msc_backend_available("cuda");
  char reason[1024];
  snprintf(reason, sizeof reason, "%s", st == MSC_OK ? "" : msc_last_error());
  const char *chosen = NULL;
  const mbk_iface *auto_be = NULL;
  CHECK(msc_backend_select("auto", &chosen) == MSC_OK, "auto: %s", msc_last_error());
  CHECK(msci_backend_resolve("auto", &auto_be, NULL) == MSC_OK && auto_be, "resolve auto");

  if (st == MSC_OK) {
    printf("cuda is available\n");
    CHECK(chosen && strcmp(chosen, "cuda") == 0, "auto chose %s, not cuda", chosen);
    const mbk_iface *be = NULL;
    CHECK(msci_backend_resolve("cuda", &be, NULL) == MSC_OK && be, "resolve cuda");
    if (be) run_relu(be);
  } else {
    printf("cuda is unavailable: %s\n", reason);
    CHECK(!expect, "MSC_TEST_EXPECT_CUDA is set but cuda is unavailable: %s", reason);
    CHECK(st == MSC_E_BACKEND_UNAVAILABLE, "status %d", (int)st);
    CHECK(strstr(reason, "libmosaic-cuda.so") && !strstr(reason, "not found in"),
          "the module was not found or not named: '%s'", reason);
    CHECK(known_reason(reason), "unexplained reason: '%s'", reason);
    CHECK(strstr(g_log, "backend 'cuda' is unavailable") != NULL,
          "the unusable module was not reported through the log callback");
    const char *untouched = "untouched";
    chosen = untouched;
    CHECK(msc_backend_select("cuda", &chosen) == MSC_E_BACKEND_UNAVAILABLE &&
              chosen == untouched,
          "an explicit cuda request must fail, not fall back");
    CHECK(strstr(msc_last_error(), "probe") || strstr(msc_last_error(), "dlopen"),
          "the failure of 'cuda' should carry the reason: '%s'", msc_last_error());
    CHECK(msc_backend_select("auto", &chosen) == MSC_OK && strcmp(chosen, "cpu") == 0,
          "auto should fall back to cpu");
    if (auto_be) run_relu(auto_be);
    if (strstr(reason, "probe")) direct_open_without_device(dir);
  }
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  CHECK(len > 0, "cannot find this program");
  if (len > 0) {
    self[len] = '\0';
    broken_module(self, dir);
  }
  if (g_failures) {
    fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}
