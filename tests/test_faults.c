/*
 * test_faults.c — every save path survives failing system calls (docs/training.md, "What
 * survives a crash").
 *
 * This program defines write, pwrite, fsync, close and rename itself; they pass on to the C
 * library's (dlsym RTLD_NEXT) unless a fault is armed. An executable's symbols come
 * first for the whole process, so the calls of libmosaic (linked in statically from
 * mosaic_internal) and of libtiff (its writes go through lib/data/geotiff_write.c's
 * procedures) are all seen. stdio's internal writes are not — which is why the writers
 * use write(2).
 *
 * For each writer — msc_model_save (lib/model/safetensors.c), the GeoTIFF writer
 * (lib/data/geotiff_write.c) and the .npy writer (lib/data/npy_write.c) — a first save
 * puts an old file under the final name; a dry run of the second save counts its calls
 * of each function; then the second save is repeated with the k-th call of one function
 * failing, for every k and with EIO and ENOSPC, and with the disk filling up after 0, 1,
 * 7, ... bytes (a short write, then ENOSPC). After each failure:
 *  - the call returns MSC_E_IO and its message names the failed call and the errno text;
 *  - the file under the final name is byte-identical to the old one and reads back (or,
 *    when the fault hit after the rename — the directory's fsync — it is the complete new
 *    file and reads back);
 *  - no other file is left in the directory (no temporary file).
 * The tests run forked (Check's default): a crash is a failure, not the end of the run.
 */
#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/geotiff_write.h"
#include "data/npy.h"
#include "data/npy_write.h"
#include "data/raster.h"
#include "mosaic/mosaic.h"

/* ---- the interposed calls ------------------------------------------------------------ */

enum { OP_WRITE, OP_FSYNC, OP_CLOSE, OP_RENAME, OP_COUNT };
static const char *const op_name[OP_COUNT] = {"write", "fsync", "close", "rename"};

static int g_armed; /* count calls and inject faults only while set */
static long g_calls[OP_COUNT];
static int g_fail_op = -1; /* the call that fails ... */
static long g_fail_at;     /* ... its g_fail_at-th time (1-based) ... */
static int g_fail_errno;   /* ... with this errno */
static long g_budget = -1; /* >= 0: bytes the disk still takes, then ENOSPC */
static int g_renamed;      /* a real rename succeeded while armed */

static void *real(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (!f) abort();
  return f;
}

/* 1 when this call of op is the one to fail. */
static int fault(int op) {
  if (!g_armed) return 0;
  long n = ++g_calls[op];
  if (op == g_fail_op && n == g_fail_at) {
    errno = g_fail_errno;
    return 1;
  }
  return 0;
}

ssize_t write(int fd, const void *buf, size_t n) {
  static ssize_t (*f)(int, const void *, size_t);
  if (!f) *(void **)&f = real("write"); /* POSIX's way to store dlsym's result */
  if (fault(OP_WRITE)) return -1;
  if (g_armed && g_budget >= 0) {
    if (g_budget == 0) {
      errno = ENOSPC;
      return -1;
    }
    if ((long)n > g_budget) n = (size_t)g_budget; /* a short write: the disk fills up */
    ssize_t w = f(fd, buf, n);
    if (w > 0) g_budget -= w;
    return w;
  }
  return f(fd, buf, n);
}

/* The GeoTIFF writer puts its ghost area and each tile's leader and trailer in place with
 * pwrite: counted as a write. */
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  static ssize_t (*f)(int, const void *, size_t, off_t);
  if (!f) *(void **)&f = real("pwrite");
  if (fault(OP_WRITE)) return -1;
  if (g_armed && g_budget >= 0) {
    if (g_budget == 0) {
      errno = ENOSPC;
      return -1;
    }
    if ((long)n > g_budget) n = (size_t)g_budget;
    ssize_t w = f(fd, buf, n, off);
    if (w > 0) g_budget -= w;
    return w;
  }
  return f(fd, buf, n, off);
}

int fsync(int fd) {
  static int (*f)(int);
  if (!f) *(void **)&f = real("fsync");
  if (fault(OP_FSYNC)) return -1;
  return f(fd);
}

int close(int fd) {
  static int (*f)(int);
  if (!f) *(void **)&f = real("close");
  if (fault(OP_CLOSE)) {
    int e = errno;
    f(fd); /* Linux closes the descriptor even when close reports an error */
    errno = e;
    return -1;
  }
  return f(fd);
}

int rename(const char *from, const char *to) {
  static int (*f)(const char *, const char *);
  if (!f) *(void **)&f = real("rename");
  if (fault(OP_RENAME)) return -1;
  int r = f(from, to);
  if (r == 0 && g_armed) g_renamed = 1;
  return r;
}

static void arm(int op, long at, int err, long budget) {
  memset(g_calls, 0, sizeof g_calls);
  g_fail_op = op, g_fail_at = at, g_fail_errno = err, g_budget = budget, g_renamed = 0;
  g_armed = 1;
}

static void disarm(void) {
  g_armed = 0;
}

/* ---- files ------------------------------------------------------------------------------ */

static char g_dir[256];

static void make_dir(const char *tag) {
  snprintf(g_dir, sizeof g_dir, "/tmp/msc_faults_%s_%d", tag, (int)getpid());
  mkdir(g_dir, 0755);
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

static int same_bytes(const char *path, const unsigned char *want, size_t want_len) {
  size_t len;
  unsigned char *b = slurp(path, &len);
  int same = len == want_len && memcmp(b, want, len) == 0;
  free(b);
  return same;
}

/* The number of directory entries other than . and .. (only the file itself may stay). */
static int entries(void) {
  DIR *d = opendir(g_dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) ++n;
  closedir(d);
  return n;
}

static void remove_dir(const char *path) {
  unlink(path);
  rmdir(g_dir);
}

/* ---- the driver ------------------------------------------------------------------------ */

typedef struct writer {
  const char *name;
  msc_status (*save)(const char *path, int which); /* which 0: the old file, 1: the new */
  int (*loads)(const char *path);                  /* 1 when the file reads back */
} writer;

/* Checks one faulty save (see the header). */
static void check_one(const writer *w, const char *path, const unsigned char *old,
                      size_t old_len, const unsigned char *neu, size_t neu_len, int op, int err,
                      const char *what) {
  msc_status st = w->save(path, 1);
  int renamed = g_renamed;
  disarm();
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", msc_last_error());
  ck_assert_msg(entries() == 1, "%s, %s: a temporary file was left (%d entries)", w->name, what,
                entries());
  if (!renamed) {
    ck_assert_msg(st == MSC_E_IO, "%s, %s: status %d (%s)", w->name, what, (int)st, msg);
    ck_assert_msg(same_bytes(path, old, old_len), "%s, %s: the old file was changed", w->name,
                  what);
  } else {
    /* After the rename only the directory's sync can fail: the new file is complete. */
    ck_assert_msg(st == MSC_E_IO || st == MSC_OK, "%s, %s: status %d", w->name, what, (int)st);
    ck_assert_msg(same_bytes(path, neu, neu_len), "%s, %s: the new file is not complete",
                  w->name, what);
  }
  if (st != MSC_OK) {
    ck_assert_msg(strstr(msg, op_name[op]) != NULL, "%s, %s: message does not name %s: %s",
                  w->name, what, op_name[op], msg);
    ck_assert_msg(strstr(msg, strerror(err)) != NULL,
                  "%s, %s: message does not give \"%s\": %s", w->name, what, strerror(err),
                  msg);
  }
  ck_assert_msg(w->loads(path), "%s, %s: the file under the final name does not read back",
                w->name, what);
  if (renamed) { /* put the old file back for the next case */
    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(old, 1, old_len, f), old_len);
    fclose(f);
  }
}

static void run_faults(const writer *w) {
  make_dir(w->name);
  char path[512];
  snprintf(path, sizeof path, "%s/out.file", g_dir);
  /* The new file's bytes, then the old file under the final name. */
  ck_assert_int_eq(w->save(path, 1), MSC_OK);
  size_t neu_len, old_len;
  unsigned char *neu = slurp(path, &neu_len);
  ck_assert_int_eq(w->save(path, 0), MSC_OK);
  unsigned char *old = slurp(path, &old_len);
  ck_assert_msg(old_len != neu_len || memcmp(old, neu, old_len) != 0,
                "%s: the old and new files must differ", w->name);
  ck_assert(w->loads(path));

  /* A dry run counts the calls of a save. */
  arm(-1, 0, 0, -1);
  ck_assert_int_eq(w->save(path, 0), MSC_OK);
  disarm();
  long calls[OP_COUNT];
  memcpy(calls, g_calls, sizeof calls);
  ck_assert_msg(calls[OP_WRITE] > 0 && calls[OP_FSYNC] > 0 && calls[OP_RENAME] > 0,
                "%s: the dry run saw %ld writes, %ld fsyncs, %ld renames", w->name,
                calls[OP_WRITE], calls[OP_FSYNC], calls[OP_RENAME]);
  int cases = 0;
  const int errs[2] = {EIO, ENOSPC};
  for (int op = 0; op < OP_COUNT; ++op)
    for (long k = 1; k <= calls[op]; ++k)
      for (int e = 0; e < 2; ++e) {
        char what[96];
        snprintf(what, sizeof what, "%s #%ld fails with %s", op_name[op], k, strerror(errs[e]));
        arm(op, k, errs[e], -1);
        check_one(w, path, old, old_len, neu, neu_len, op, errs[e], what);
        ++cases;
      }
  /* The disk fills up after b bytes of the new file. */
  const long budgets[] = {0, 1, 7, 8, 100, (long)neu_len / 2, (long)neu_len - 1};
  for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; ++i) {
    char what[96];
    snprintf(what, sizeof what, "disk full after %ld bytes", budgets[i]);
    arm(-1, 0, 0, budgets[i]);
    check_one(w, path, old, old_len, neu, neu_len, OP_WRITE, ENOSPC, what);
    ++cases;
  }
  fprintf(stderr, "%s: %d faults (%ld writes, %ld fsyncs, %ld closes, %ld renames a save)\n",
          w->name, cases, calls[OP_WRITE], calls[OP_FSYNC], calls[OP_CLOSE], calls[OP_RENAME]);
  free(old);
  free(neu);
  remove_dir(path);
}

/* ---- the writers ---------------------------------------------------------------------- */

/* The two models are made on the first (unarmed) calls: only the save runs armed. */
static msc_status save_model(const char *path, int which) {
  static msc_model *models[2];
  if (!models[which]) {
    msc_options *o = NULL;
    ck_assert_int_eq(msc_options_create(&o), MSC_OK);
    ck_assert_int_eq(msc_options_from_json(
                         o, "{\"modality.0.encoder\":\"tiny\",\"modality.1.encoder\":\"tiny\","
                            "\"modality.0.size\":16,\"modality.1.size\":16,\"classes\":3,"
                            "\"proj.dim\":8,\"threads\":1}"),
                     MSC_OK);
    ck_assert_int_eq(msc_options_set_int(o, "seed", which ? 11 : 5), MSC_OK);
    msc_status st = msc_model_create(o, &models[which]);
    ck_assert_msg(st == MSC_OK, "%s", msc_last_error());
    msc_options_free(o);
  }
  return msc_model_save(models[which], path);
}

static int loads_model(const char *path) {
  msc_model *m = NULL;
  msc_status st = msc_model_load(path, NULL, &m);
  msc_model_free(m);
  return st == MSC_OK;
}

#define GW 40
#define GH 24

static msc_status save_geotiff(const char *path, int which) {
  static float px[2 * GW * GH];
  for (int i = 0; i < 2 * GW * GH; ++i) px[i] = (float)((i * 37 + which * 11) % 101) * 0.25f;
  msci_geotiff_spec s;
  memset(&s, 0, sizeof s);
  s.width = GW, s.height = GH, s.bands = 2;
  s.sample_format = 3, s.bits = 32, s.tile = 16, s.compression = 8;
  s.overviews = MSCI_OVERVIEW_AVERAGE;
  return msci_geotiff_write(path, &s, px);
}

static int loads_geotiff(const char *path) {
  msci_raster r;
  msc_status st = msci_raster_read(path, &r);
  int ok = st == MSC_OK && r.info.width == GW && r.info.height == GH;
  msci_raster_free(&r);
  return ok;
}

static msc_status save_npy(const char *path, int which) {
  static int16_t v[6 * 50];
  for (int i = 0; i < 6 * 50; ++i) v[i] = (int16_t)(i * (which ? 3 : 5) - 400);
  const int64_t shape[2] = {6, 50};
  return msci_npy_write(path, "<i2", 2, shape, v);
}

static int loads_npy(const char *path) {
  msci_npy *n = NULL;
  if (msci_npy_open(path, &n) != MSC_OK) return 0;
  int32_t nd = 0;
  int64_t dims[4] = {0};
  int ok = msci_npy_shape(n, &nd, dims) == MSC_OK && nd == 2 && dims[0] == 6 && dims[1] == 50;
  msci_npy_close(n);
  return ok;
}

START_TEST(model_save_faults) {
  const writer w = {"model", save_model, loads_model};
  run_faults(&w);
}
END_TEST

START_TEST(geotiff_faults) {
  const writer w = {"geotiff", save_geotiff, loads_geotiff};
  run_faults(&w);
}
END_TEST

START_TEST(npy_faults) {
  const writer w = {"npy", save_npy, loads_npy};
  run_faults(&w);
}
END_TEST

int main(void) {
  Suite *s = suite_create("faults");
  TCase *tc = tcase_create("io");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, model_save_faults);
  tcase_add_test(tc, geotiff_faults);
  tcase_add_test(tc, npy_faults);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
