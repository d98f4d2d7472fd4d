/*
 * registry.c — the backend registry and the loader of backend modules.
 *
 * Discovery runs once per process (pthread_once), on the first call of any
 * msc_backend_* function or of msci_backend_resolve:
 *   1. entry 0 is the built-in CPU backend (mbk_cpu_init);
 *   2. entry 1 is "cuda", always listed so that asking for it gives the reason when
 *      its module is missing;
 *   3. then every file libmosaic-<name>.so (name = [a-z0-9_]+) in the directories of
 *      MSC_BACKEND_PATH (':'-separated, in order) and then in the directory that holds
 *      libmosaic itself. Within a directory files are taken in name order; the first
 *      file found for a name wins, later ones are skipped.
 * A module is opened with dlopen(RTLD_NOW | RTLD_LOCAL); its MBK_MODULE_INIT_SYMBOL is
 * called with the host table; the returned table is checked (API version, size, every
 * function present, its name equal to the file's <name>) and probed. Any failure marks
 * the entry unavailable with a precise reason, logged as a warning. Only a module whose
 * init never succeeded (no symbol, init returned an error) is closed again: once a
 * module's init has run it may have started a runtime that must not be unloaded, so it
 * stays loaded even if its table or probe is rejected.
 *
 * After discovery the table is read-only, so every lookup is lock-free. Discovery does
 * not disturb the calling thread's msc_last_error(): modules may set it through the
 * host's fail() while loading, so the message is saved and restored around it.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contract/backend.h"
#include "backend/registry.h"
#include "common/internal.h"
#include "mosaic/mosaic.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define MSCI_MAX_BACKENDS    32
#define MSCI_NAME_CAP        64  /* backend name, NUL included */
#define MSCI_REASON_CAP      768 /* why a backend is unavailable, NUL included */
#define MSCI_MODULE_PREFIX   "libmosaic-"
#define MSCI_MODULE_SUFFIX   ".so"
#define MSCI_SAVED_ERROR_CAP 1024 /* the capacity of msc_last_error() (status.c) */

typedef struct backend_entry {
  char name[MSCI_NAME_CAP];
  const mbk_iface *iface;       /* non-NULL exactly when the backend is usable */
  void *handle;                 /* dlopen handle of a module kept loaded, or NULL */
  int found;                    /* built in, or a module file was found for it */
  char reason[MSCI_REASON_CAP]; /* why it is unusable ("" when usable) */
} backend_entry;

/* Written only inside discover() (under pthread_once), read-only afterwards. */
static backend_entry g_backends[MSCI_MAX_BACKENDS];
static int32_t g_backend_count;
static pthread_once_t g_discover_once = PTHREAD_ONCE_INIT;

/* The host services are the core's own msci_log and msci_fail: same signatures, same
 * code, so a module's messages and errors are indistinguishable from the core's. */
static const mbk_host g_host = {
    MBK_API_VERSION,
    (uint32_t)sizeof(mbk_host),
    msci_log,
    msci_fail,
};

const mbk_host *msci_host(void) {
  return &g_host;
}

/* ---------------------------------------------------------------------------------- */
/* Discovery                                                                           */
/* ---------------------------------------------------------------------------------- */

static const char *errno_text(int err, char *buf, size_t cap) {
#if defined(_GNU_SOURCE)
  return strerror_r(err, buf, cap); /* GNU variant: returns the message */
#else
  if (strerror_r(err, buf, cap) != 0) snprintf(buf, cap, "error %d", err);
  return buf;
#endif
}

static backend_entry *find_entry(const char *name) {
  for (int32_t i = 0; i < g_backend_count; i++)
    if (strcmp(g_backends[i].name, name) == 0) return &g_backends[i];
  return NULL;
}

/* Appends an entry; NULL when the table is full. name fits in MSCI_NAME_CAP. */
static backend_entry *add_entry(const char *name) {
  if (g_backend_count >= MSCI_MAX_BACKENDS) return NULL;
  backend_entry *e = &g_backends[g_backend_count++];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  return e;
}

/* Marks e unusable with the formatted reason and reports it at the given level. */
static void mark_unavailable(backend_entry *e, int32_t level, const char *fmt, ...)
    MSCI_PRINTF(3, 4);
static void mark_unavailable(backend_entry *e, int32_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->reason, sizeof e->reason, fmt, ap);
  va_end(ap);
  e->iface = NULL;
  msci_log(level, "backend '%s' is unavailable: %s", e->name, e->reason);
}

/* Name of the first NULL function of the table, or NULL when all are present. */
static const char *missing_function(const mbk_iface *it) {
#define MSCI_REQUIRE(f)                                                                        \
  if (it->f == NULL) return #f;
  MSCI_REQUIRE(probe)
  MSCI_REQUIRE(ctx_create)
  MSCI_REQUIRE(ctx_free)
  MSCI_REQUIRE(tensor_create)
  MSCI_REQUIRE(tensor_free)
  MSCI_REQUIRE(tensor_upload)
  MSCI_REQUIRE(tensor_download)
  MSCI_REQUIRE(tensor_shape)
  MSCI_REQUIRE(op_create)
  MSCI_REQUIRE(op_free)
  MSCI_REQUIRE(op_forward)
  MSCI_REQUIRE(op_backward)
  MSCI_REQUIRE(tensor_zero)
  MSCI_REQUIRE(loss)
  /* optim_update (API 2) and grad_stats (API 3) are optional: without them the backend
   * runs inference only (msc_train_step says so). */
#undef MSCI_REQUIRE
  return NULL;
}

/* Checks the table an init function returned and probes the backend. On success sets
 * e->iface; otherwise marks e unavailable. label names the source in reasons. */
static void accept_iface(backend_entry *e, const char *label, const mbk_iface *it) {
  if (it == NULL) {
    mark_unavailable(e, MSC_LOG_WARNING, "%s: init returned no interface table", label);
    return;
  }
  if (it->api_version != MBK_API_VERSION) {
    mark_unavailable(e, MSC_LOG_WARNING, "%s: API version %u, this libmosaic needs %u", label,
                     (unsigned)it->api_version, (unsigned)MBK_API_VERSION);
    return;
  }
  if (it->struct_size < sizeof(mbk_iface)) {
    mark_unavailable(e, MSC_LOG_WARNING,
                     "%s: interface table of %u bytes, this libmosaic needs at least %u", label,
                     (unsigned)it->struct_size, (unsigned)sizeof(mbk_iface));
    return;
  }
  const char *missing = missing_function(it);
  if (missing != NULL) {
    mark_unavailable(e, MSC_LOG_WARNING, "%s: incomplete interface table: %s is NULL", label,
                     missing);
    return;
  }
  if (it->name == NULL || strncmp(it->name, e->name, sizeof e->name) != 0) {
    mark_unavailable(e, MSC_LOG_WARNING, "%s: the backend calls itself '%.64s', expected '%s'",
                     label, it->name ? it->name : "(null)", e->name);
    return;
  }
  char why[256] = "";
  msc_status rc = it->probe(why, sizeof why);
  why[sizeof why - 1] = '\0';
  if (rc != MSC_OK) {
    /* A sound module on a machine without a usable device is normal (a GPU build
     * installed on a laptop): INFO, like a missing module. Broken modules warn. */
    mark_unavailable(e, MSC_LOG_INFO, "%s: probe: %s", label,
                     why[0] ? why : msc_status_string(rc));
    return;
  }
  e->iface = it;
  e->reason[0] = '\0';
}

static void init_builtin_cpu(void) {
  backend_entry *e = add_entry("cpu");
  e->found = 1;
  const mbk_iface *it = NULL;
  msc_clear_error();
  msc_status rc = mbk_cpu_init(&g_host, &it);
  if (rc != MSC_OK) {
    const char *msg = msc_last_error();
    mark_unavailable(e, MSC_LOG_WARNING, "built-in cpu backend: init failed: %s",
                     msg[0] ? msg : msc_status_string(rc));
    return;
  }
  accept_iface(e, "built-in cpu backend", it);
  if (e->iface != NULL) msci_log(MSC_LOG_DEBUG, "backend 'cpu' is available (built in)");
}

/* Opens dir/file as the module of entry e. */
static void load_module(backend_entry *e, const char *dir, const char *file) {
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/%s", dir, file);
  if (n < 0 || (size_t)n >= sizeof path) {
    mark_unavailable(e, MSC_LOG_WARNING, "%s: path too long in %.200s", file, dir);
    return;
  }
  dlerror(); /* clear any stale message */
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    const char *err = dlerror();
    mark_unavailable(e, MSC_LOG_WARNING, "%s: dlopen failed: %s", file,
                     err ? err : "unknown error");
    return;
  }
  dlerror();
  void *sym = dlsym(handle, MBK_MODULE_INIT_SYMBOL);
  if (sym == NULL) {
    mark_unavailable(e, MSC_LOG_WARNING, "%s: no symbol %s", file, MBK_MODULE_INIT_SYMBOL);
    dlclose(handle);
    return;
  }
  /* POSIX guarantees data and function pointers convert; memcpy keeps ISO C quiet. */
  mbk_module_init_fn init;
  memcpy(&init, &sym, sizeof init);

  const mbk_iface *it = NULL;
  msc_clear_error();
  msc_status rc = init(&g_host, &it);
  if (rc != MSC_OK) {
    const char *msg = msc_last_error();
    mark_unavailable(e, MSC_LOG_WARNING, "%s: init failed: %s", file,
                     msg[0] ? msg : msc_status_string(rc));
    dlclose(handle);
    return;
  }
  e->handle = handle; /* its init ran: stays loaded whatever the checks below say */
  accept_iface(e, file, it);
  if (e->iface != NULL) msci_log(MSC_LOG_INFO, "backend '%s' is available (%s)", e->name, path);
}

/* If file is "libmosaic-<name>.so" with a valid name, copies name and returns 1. */
static int module_name(const char *file, char *name, size_t cap) {
  const size_t plen = sizeof MSCI_MODULE_PREFIX - 1;
  const size_t slen = sizeof MSCI_MODULE_SUFFIX - 1;
  size_t len = strlen(file);
  if (len <= plen + slen || strncmp(file, MSCI_MODULE_PREFIX, plen) != 0 ||
      strcmp(file + len - slen, MSCI_MODULE_SUFFIX) != 0)
    return 0;
  size_t nlen = len - plen - slen;
  if (nlen >= cap) return 0;
  for (size_t i = 0; i < nlen; i++) {
    char c = file[plen + i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
  }
  memcpy(name, file + plen, nlen);
  name[nlen] = '\0';
  return 1;
}

typedef struct module_file {
  char file[MSCI_NAME_CAP + sizeof MSCI_MODULE_PREFIX + sizeof MSCI_MODULE_SUFFIX];
  char name[MSCI_NAME_CAP];
} module_file;

static int compare_module_files(const void *a, const void *b) {
  return strcmp(((const module_file *)a)->file, ((const module_file *)b)->file);
}

/* Takes one found module file: first match of a name wins. */
static void consider_module(const char *dir, const module_file *m) {
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/%s", dir, m->file);
  if (n < 0 || (size_t)n >= sizeof path) {
    msci_log(MSC_LOG_DEBUG, "backend module %s skipped: path too long", m->file);
    return;
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
    msci_log(MSC_LOG_DEBUG, "backend module %s skipped: not a regular file", path);
    return;
  }
  backend_entry *e = find_entry(m->name);
  if (e != NULL && e->found) {
    msci_log(MSC_LOG_DEBUG, "backend module %s skipped: backend '%s' was found before", path,
             m->name);
    return;
  }
  if (e == NULL) {
    e = add_entry(m->name);
    if (e == NULL) {
      msci_log(MSC_LOG_WARNING, "backend module %s ignored: more than %d backends", path,
               MSCI_MAX_BACKENDS);
      return;
    }
  }
  e->found = 1;
  load_module(e, dir, m->file);
}

static void scan_directory(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    char buf[128];
    int err = errno;
    msci_log(MSC_LOG_DEBUG, "backend directory %s skipped: %s", dir,
             errno_text(err, buf, sizeof buf));
    return;
  }
  msci_log(MSC_LOG_DEBUG, "looking for backend modules in %s", dir);

  module_file *files = NULL;
  size_t count = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    char name[MSCI_NAME_CAP];
    if (!module_name(de->d_name, name, sizeof name)) continue;
    if (count == cap) {
      size_t ncap = cap ? 2 * cap : 8;
      module_file *grown = realloc(files, ncap * sizeof *grown);
      if (grown == NULL) {
        msci_log(MSC_LOG_WARNING, "backend directory %s: out of memory, scan stopped", dir);
        break;
      }
      files = grown;
      cap = ncap;
    }
    size_t flen = strlen(de->d_name); /* bounded by module_name's check */
    if (flen >= sizeof files[count].file) continue;
    memcpy(files[count].file, de->d_name, flen + 1);
    memcpy(files[count].name, name, sizeof name);
    count++;
  }
  closedir(d);

  /* readdir's order is arbitrary: name order makes the result reproducible. */
  if (count > 1) qsort(files, count, sizeof *files, compare_module_files);
  for (size_t i = 0; i < count; i++) consider_module(dir, &files[i]);
  free(files);
}

/* The absolute directory holding libmosaic (for the static test archive: the program).
 * Returns 1 and fills out, or 0 when it cannot be determined. */
int msci_library_directory(char *out, size_t cap) {
  Dl_info info;
  char file[PATH_MAX];
  /* A data address of this library avoids converting a function pointer. */
  if (dladdr((const void *)&g_discover_once, &info) != 0 && info.dli_fname != NULL &&
      strchr(info.dli_fname, '/') != NULL) {
    snprintf(file, sizeof file, "%s", info.dli_fname);
  } else {
    /* The main program is named by argv[0], which may lack a directory. */
    ssize_t n = readlink("/proc/self/exe", file, sizeof file - 1);
    if (n <= 0) return 0;
    file[n] = '\0';
  }
  char *slash = strrchr(file, '/');
  if (slash == NULL) return 0;
  if (slash == file)
    slash[1] = '\0'; /* "/libmosaic.so": the root directory */
  else
    *slash = '\0';
  char resolved[PATH_MAX];
  if (realpath(file, resolved) == NULL) return 0;
  if (strlen(resolved) >= cap) return 0;
  memcpy(out, resolved, strlen(resolved) + 1);
  return 1;
}

static void discover(void) {
  /* Modules may set the thread's error message while loading: keep the caller's. */
  char saved[MSCI_SAVED_ERROR_CAP];
  snprintf(saved, sizeof saved, "%s", msc_last_error());

  init_builtin_cpu();
  add_entry("cuda");

  const char *env = secure_getenv("MSC_BACKEND_PATH");
  if (env != NULL) {
    const char *p = env;
    for (;;) {
      const char *colon = strchr(p, ':');
      size_t len = colon ? (size_t)(colon - p) : strlen(p);
      if (len > 0) {
        char dir[PATH_MAX];
        if (len < sizeof dir) {
          memcpy(dir, p, len);
          dir[len] = '\0';
          scan_directory(dir);
        } else {
          msci_log(MSC_LOG_DEBUG, "MSC_BACKEND_PATH: a directory name is too long");
        }
      }
      if (colon == NULL) break;
      p = colon + 1;
    }
  }

  char self_dir[PATH_MAX];
  if (msci_library_directory(self_dir, sizeof self_dir)) {
    scan_directory(self_dir);
  } else {
    msci_log(MSC_LOG_DEBUG, "the directory of libmosaic could not be determined");
    snprintf(self_dir, sizeof self_dir, "%s", "directory unknown");
  }

  /* Listed backends whose module was nowhere to be found. A missing optional module
   * is the normal state of a CPU-only installation, so it is reported at INFO, not as
   * a warning; a module that is present but broken is a warning. */
  for (int32_t i = 0; i < g_backend_count; i++) {
    backend_entry *e = &g_backends[i];
    if (!e->found)
      mark_unavailable(e, MSC_LOG_INFO,
                       "module " MSCI_MODULE_PREFIX "%s" MSCI_MODULE_SUFFIX
                       " not found in MSC_BACKEND_PATH or next to libmosaic (%s)",
                       e->name, self_dir);
  }

  if (saved[0] != '\0')
    msci_fail(MSC_OK, "%s", saved);
  else
    msc_clear_error();
}

static void ensure_discovered(void) {
  pthread_once(&g_discover_once, discover);
}

/* ---------------------------------------------------------------------------------- */
/* Lookups                                                                             */
/* ---------------------------------------------------------------------------------- */

static msc_status unknown_backend(const char *name, int allow_auto) {
  char known[512];
  size_t used = 0;
  known[0] = '\0';
  if (allow_auto) used = (size_t)snprintf(known, sizeof known, "auto");
  for (int32_t i = 0; i < g_backend_count && used < sizeof known; i++) {
    int n = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "",
                     g_backends[i].name);
    if (n < 0) break;
    used += (size_t)n;
  }
  return msci_fail(MSC_E_NOT_FOUND, "unknown backend '%.100s' (known: %s)", name, known);
}

static msc_status unavailable(const backend_entry *e) {
  return msci_fail(MSC_E_BACKEND_UNAVAILABLE, "backend '%s' is unavailable: %s", e->name,
                   e->reason);
}

/* The rules of msc_backend_select. request is not NULL. */
static msc_status resolve_entry(const char *request, const backend_entry **out) {
  ensure_discovered();
  if (strcmp(request, "auto") == 0) {
    const backend_entry *cuda = find_entry("cuda");
    if (cuda != NULL && cuda->iface != NULL) {
      *out = cuda;
      return MSC_OK;
    }
    const backend_entry *cpu = &g_backends[0];
    if (cpu->iface != NULL) {
      msci_log(MSC_LOG_DEBUG, "backend 'auto' resolved to 'cpu' (cuda: %s)",
               cuda ? cuda->reason : "not listed");
      *out = cpu;
      return MSC_OK;
    }
    return msci_fail(MSC_E_BACKEND_UNAVAILABLE,
                     "backend 'auto': no usable backend (cpu: %s; cuda: %s)", cpu->reason,
                     cuda ? cuda->reason : "not listed");
  }
  const backend_entry *e = find_entry(request);
  if (e == NULL) return unknown_backend(request, 1);
  if (e->iface == NULL) return unavailable(e);
  *out = e;
  return MSC_OK;
}

int32_t msc_backend_count(void) {
  ensure_discovered();
  return g_backend_count;
}

const char *msc_backend_name(int32_t i) {
  ensure_discovered();
  if (i < 0 || i >= g_backend_count) return NULL;
  return g_backends[i].name;
}

msc_status msc_backend_available(const char *name) {
  if (name == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_backend_available: name is NULL");
  ensure_discovered();
  const backend_entry *e = find_entry(name);
  if (e == NULL) return unknown_backend(name, 0);
  if (e->iface == NULL) return unavailable(e);
  return MSC_OK;
}

msc_status msc_backend_select(const char *request, const char **chosen) {
  if (request == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_backend_select: request is NULL");
  if (chosen == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_backend_select: chosen is NULL");
  const backend_entry *e = NULL;
  msc_status rc = resolve_entry(request, &e);
  if (rc != MSC_OK) return rc;
  *chosen = e->name;
  return MSC_OK;
}

msc_status msci_backend_resolve(const char *request, const mbk_iface **out, const char **name) {
  if (request == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "backend request is NULL");
  if (out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_backend_resolve: out is NULL");
  const backend_entry *e = NULL;
  msc_status rc = resolve_entry(request, &e);
  if (rc != MSC_OK) return rc;
  *out = e->iface;
  if (name != NULL) *name = e->name;
  return MSC_OK;
}
