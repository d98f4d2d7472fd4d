/*
 * test_hostile_data.c — files that must not hang or exhaust the library (issue 19,
 * "Reliability under hostile input"):
 *   - a FIFO named where a file is expected (a manifest cell, data.metadata, a model file,
 *     a .npy array) is refused at once, never waited on: each case runs under alarm(), so
 *     a blocking open fails the test with SIGALRM instead of hanging it;
 *   - a line longer than MSCI_LINE_MAX (1 MiB) is refused naming the file and the line,
 *     plain or zstd; a 30 KB zstd table expanding to one 1 GiB line is refused in a child
 *     whose address space is capped at 256 MiB above what it uses, so a reader that
 *     buffered the line would fail with MSC_E_OUT_OF_MEMORY rather than the limit;
 *   - msci_path_inside on hand-made trees (symbolic links, "..", missing tails, a sibling
 *     whose name extends the root's), and BigEarthNet v2 patch names with '/' refused.
 * Manifests and series tables with cells outside the root: tests/test_formats.c and
 * tests/test_series_manifest.c ("outside_root").
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "data/dataset.h"
#include "data/dataset_files.h"
#include "data/lines.h"
#include "data/npy.h"
#include "data/raster.h"
#include "mosaic/mosaic.h"

/* ---- helpers ------------------------------------------------------------------------- */

static char g_tmp[512];
static const char *make_tmp(const char *tag) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/msc_hostile_%s_%d", tag, (int)getpid());
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_tmp, g_tmp);
  ck_assert_int_eq(system(cmd), 0);
  return g_tmp;
}

static void rm_tree(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
}

static void write_text(const char *path, const char *text) {
  write_bytes(path, text, strlen(text));
}

static msc_status open_with(const char *root, const char *fmt, const char *key,
                            const char *value, msc_dataset **ds) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  if (key) ck_assert_int_eq(msc_options_set_string(o, key, value), MSC_OK);
  msc_status st = msc_dataset_open(root, fmt, o, ds);
  msc_options_free(o);
  return st;
}

/* A FIFO at dir/name, its path in out. */
static void make_fifo(const char *dir, const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", dir, name);
  ck_assert_int_eq(mkfifo(out, 0644), 0);
}

static void assert_refused_fifo(msc_status st, const char *fifo, const char *what) {
  ck_assert_msg(st == MSC_E_IO, "%s: status %d: %s", what, (int)st, msc_last_error());
  ck_assert_msg(strstr(msc_last_error(), fifo) &&
                    strstr(msc_last_error(), "not a regular file"),
                "%s: %s", what, msc_last_error());
}

/* ---- FIFOs (defect 2) ------------------------------------------------------------------ */

/* A manifest whose first row names a FIFO: its layout is read with the GeoTIFF reader,
 * which opened the path (blocking until a writer came) before checking its type. */
START_TEST(test_fifo_raster) {
  alarm(20); /* a blocking open would hang: fail with SIGALRM instead */
  const char *root = make_tmp("fifo_raster");
  char fifo[700], path[700];
  make_fifo(root, "fifo.tif", fifo, sizeof fifo);
  snprintf(path, sizeof path, "%s/manifest.tsv", root);
  write_text(path, "img\nfifo.tif\n");
  msc_dataset *ds = NULL;
  assert_refused_fifo(open_with(root, "manifest", NULL, NULL, &ds), fifo, "manifest cell");
  msci_raster_info info;
  assert_refused_fifo(msci_raster_info_read(fifo, &info), fifo, "raster info");
  msci_raster r;
  assert_refused_fifo(msci_raster_read(fifo, &r), fifo, "raster read");
  assert_refused_fifo(msci_raster_read_window(fifo, 0, 0, 1, 1, &r), fifo, "raster window");
  alarm(0);
  rm_tree(root);
}
END_TEST

/* Tables read line by line (a manifest, a series table, BigEarthNet v2's metadata, split
 * lists) were opened with fopen: a FIFO as data.metadata blocked there. */
START_TEST(test_fifo_tables) {
  alarm(20);
  const char *root = make_tmp("fifo_tables");
  char fifo[700];
  make_fifo(root, "table.tsv", fifo, sizeof fifo);
  msc_dataset *ds = NULL;
  static const char *const fmts[] = {"manifest", "series", "bigearthnet-v2", "pastis"};
  for (int i = 0; i < 4; ++i)
    assert_refused_fifo(open_with(root, fmts[i], "data.metadata", fifo, &ds), fifo, fmts[i]);
  msci_lines rd;
  assert_refused_fifo(msci_lines_open(&rd, fifo), fifo, "line reader");
  /* A series table of the root's own name (no data.metadata). */
  char fifo2[700];
  make_fifo(root, "series.tsv", fifo2, sizeof fifo2);
  ck_assert_int_ne(open_with(root, "series", NULL, NULL, &ds), MSC_OK);
  alarm(0);
  rm_tree(root);
}
END_TEST

/* Model files and .npy arrays went through the non-blocking open already: kept so. */
START_TEST(test_fifo_model_and_npy) {
  alarm(20);
  const char *root = make_tmp("fifo_model");
  char fifo[700];
  make_fifo(root, "model.safetensors", fifo, sizeof fifo);
  msc_model *m = NULL;
  assert_refused_fifo(msc_model_load(fifo, NULL, &m), fifo, "model file");
  msci_npy *npy = NULL;
  assert_refused_fifo(msci_npy_open(fifo, &npy), fifo, "npy");
  msci_npy_file *nf = NULL;
  assert_refused_fifo(msci_npy_file_open(fifo, &nf), fifo, "npy file");
  alarm(0);
  rm_tree(root);
}
END_TEST

/* ---- long lines (defect 4) --------------------------------------------------------------- */

/* Plain text: a line of exactly MSCI_LINE_MAX bytes (ended by "\r\n") is read whole; one
 * byte more is refused, naming the file and line 2. */
START_TEST(test_line_limit_plain) {
  const char *root = make_tmp("line_plain");
  char path[700];
  snprintf(path, sizeof path, "%s/t.tsv", root);
  const size_t max = (size_t)1 << 20; /* docs/data.md, "Limits" */
  ck_assert_uint_eq(MSCI_LINE_MAX, max);
  char *text = malloc(2 * max + 4);
  ck_assert_ptr_nonnull(text);
  memset(text, 'x', max); /* line 1: max bytes, then "\r\n" (not counted) */
  text[max] = '\r';
  text[max + 1] = '\n';
  memset(text + max + 2, 'y', max + 1); /* line 2: max + 1 bytes */
  text[2 * max + 3] = '\n';
  write_bytes(path, text, 2 * max + 4);
  free(text);
  msci_lines rd;
  ck_assert_int_eq(msci_lines_open(&rd, path), MSC_OK);
  ck_assert_int_eq(msci_lines_next(&rd), 1);
  ck_assert_uint_eq(strlen(rd.line), max);
  ck_assert_int_eq(rd.line[0], 'x');
  ck_assert_int_eq(msci_lines_next(&rd), -1);
  ck_assert_int_eq(rd.st, MSC_E_BAD_FORMAT);
  ck_assert_msg(strstr(msc_last_error(), path) && strstr(msc_last_error(), "line 2") &&
                    strstr(msc_last_error(), "1048576"),
                "%s", msc_last_error());
  msci_lines_close(&rd);
  /* The same line without a final newline (the end of the file ends it). */
  text = malloc(max + 2);
  ck_assert_ptr_nonnull(text);
  memset(text, 'z', max + 1);
  write_bytes(path, text, max + 1);
  free(text);
  ck_assert_int_eq(msci_lines_open(&rd, path), MSC_OK);
  ck_assert_int_eq(msci_lines_next(&rd), -1);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "line 1"));
  msci_lines_close(&rd);
  rm_tree(root);
}
END_TEST

/* The address space of this process now (VmSize), in bytes; 0 if unknown. */
static size_t vm_size(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %llu kB", &kb) == 1) break;
  fclose(f);
  return (size_t)kb * 1024;
}

/* Valgrind's own allocator does not fit under a capped address space. */
static int under_valgrind(void) {
  const char *p = getenv("LD_PRELOAD");
  return p && strstr(p, "vgpreload") != NULL;
}

/* manifest.tsv.zst: a header, then one line of 1 GiB of 'a' (1024 concatenated zstd frames
 * of 1 MiB each, about 30 KB in all). Opened in a child with RLIMIT_AS capped at 256 MiB
 * above its current size: the refusal must come from the line limit (MSC_E_BAD_FORMAT
 * naming the file and line 2), not from running out of memory. */
START_TEST(test_line_limit_zstd_bomb) {
  const char *root = make_tmp("line_zstd");
  char path[700];
  snprintf(path, sizeof path, "%s/manifest.tsv.zst", root);
  const size_t mib = (size_t)1 << 20;
  char *chunk = malloc(mib);
  ck_assert_ptr_nonnull(chunk);
  memset(chunk, 'a', mib);
  size_t bound = ZSTD_compressBound(mib);
  unsigned char *frame = malloc(bound);
  ck_assert_ptr_nonnull(frame);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  const char head[] = "img\tlabels\n";
  size_t n = ZSTD_compress(frame, bound, head, sizeof head - 1, 1);
  ck_assert(!ZSTD_isError(n));
  ck_assert_uint_eq(fwrite(frame, 1, n, f), n);
  n = ZSTD_compress(frame, bound, chunk, mib, 1);
  ck_assert(!ZSTD_isError(n));
  for (int i = 0; i < 1024; ++i) ck_assert_uint_eq(fwrite(frame, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
  free(chunk);
  free(frame);
  struct stat sb;
  ck_assert_int_eq(stat(path, &sb), 0);
  ck_assert_int_lt(sb.st_size, 256 * 1024); /* small on disk */

  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  const pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    const size_t now = vm_size();
    if (now > 0 && !under_valgrind()) {
      struct rlimit rl = {now + 256 * mib, now + 256 * mib};
      if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
    }
    msc_dataset *ds = NULL;
    char msg[1024];
    const int st = (int)open_with(root, "manifest", NULL, NULL, &ds);
    const int len = snprintf(msg, sizeof msg, "%d %s", st, msc_last_error());
    if (write(fds[1], msg, (size_t)(len < (int)sizeof msg ? len : (int)sizeof msg - 1)) < 0)
      _exit(4);
    _exit(0);
  }
  close(fds[1]);
  char msg[1024] = {0};
  size_t got = 0;
  for (ssize_t r;
       got < sizeof msg - 1 && (r = read(fds[0], msg + got, sizeof msg - 1 - got)) > 0;)
    got += (size_t)r;
  close(fds[0]);
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
  int st = 0;
  ck_assert_int_eq(sscanf(msg, "%d", &st), 1);
  ck_assert_msg(st == MSC_E_BAD_FORMAT, "status %d: %s", st, msg);
  ck_assert_msg(strstr(msg, "manifest.tsv.zst") && strstr(msg, "line 2") &&
                    strstr(msg, "1048576"),
                "%s", msg);
  rm_tree(root);
}
END_TEST

/* ---- paths out of the root (defect 11) --------------------------------------------------- */

START_TEST(test_path_inside) {
  const char *tmp = make_tmp("inside");
  char root[PATH_MAX + 16], p[PATH_MAX + 96], out[PATH_MAX];
  ck_assert_ptr_nonnull(realpath(tmp, out));
  snprintf(root, sizeof root, "%s/root", out);
  ck_assert_int_eq(mkdir(root, 0755), 0);
  snprintf(p, sizeof p, "%s/sub", root);
  ck_assert_int_eq(mkdir(p, 0755), 0);
  snprintf(p, sizeof p, "%s/f", root);
  write_text(p, "x");
  snprintf(p, sizeof p, "%s/rootx", out); /* a sibling whose name extends the root's */
  ck_assert_int_eq(mkdir(p, 0755), 0);
  snprintf(p, sizeof p, "%s/secret", out);
  write_text(p, "x");
  char link[PATH_MAX + 96];
  snprintf(link, sizeof link, "%s/up", root);
  ck_assert_int_eq(symlink(out, link), 0); /* root/up -> the root's parent */
  snprintf(link, sizeof link, "%s/down", root);
  ck_assert_int_eq(symlink("sub", link), 0); /* root/down -> root/sub */
  static const struct {
    const char *rel; /* appended to root */
    int inside;
  } cases[] = {
      {"", 1},
      {"/f", 1},
      {"/missing", 1},
      {"/sub/../f", 1},
      {"/down/x", 1},
      {"/sub/new/deeper", 1},
      {"/../secret", 0},
      {"/../rootx/f", 0},
      {"x/f", 0},
      {"/up/secret", 0},
      {"/up/root/f", 1},
      {"/missing/../f", 0},
      {"/sub/../../secret", 0},
      {"/f/..", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
    snprintf(p, sizeof p, "%s%s", root, cases[i].rel);
    ck_assert_msg(msci_path_inside(root, p) == cases[i].inside, "%s: expected %d", p,
                  cases[i].inside);
  }
  ck_assert_int_eq(msci_path_inside(root, "/etc/passwd"), 0);
  ck_assert_int_eq(msci_path_inside(root, "/proc/self/environ"), 0);
  ck_assert_int_eq(msci_path_inside("/", "/etc/passwd"), 1);
  /* Relative paths are relative to the working directory. */
  char cwd[PATH_MAX];
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
  ck_assert_int_eq(chdir(root), 0);
  ck_assert_int_eq(msci_path_inside(root, "f"), 1);
  ck_assert_int_eq(msci_path_inside(root, "nothing/here"), 1);
  ck_assert_int_eq(msci_path_inside(root, "../secret"), 0);
  ck_assert_int_eq(chdir(cwd), 0);
  rm_tree(tmp);
}
END_TEST

/* BigEarthNet v2 builds paths from the patch and S1 names of its metadata table: a name
 * with '/' ("../../x") could lead out of the root, and is refused as not a BigEarthNet
 * name (it was looked up, and reported missing, before). */
START_TEST(test_ben2_names_with_slash) {
  const char *root = make_tmp("ben2_slash");
  char path[700];
  snprintf(path, sizeof path, "%s/metadata.tsv", root);
  static const char *const names[2][2] = {
      {"../../../../../tmp/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48",
       "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48"},
      {"S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48",
       "../../S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48"}};
  for (int i = 0; i < 2; ++i) {
    char text[1024];
    snprintf(text, sizeof text,
             "patch_id\ts1_name\ts2v1_name\tsplit\tcountry\tcontains_seasonal_snow\t"
             "contains_cloud_or_shadow\tlabels\n%s\t%s\tx\ttrain\tAustria\tfalse\tfalse\t"
             "Pastures\n",
             names[i][0], names[i][1]);
    write_text(path, text);
    msc_dataset *ds = NULL;
    msc_status st = open_with(root, "bigearthnet-v2", NULL, NULL, &ds);
    ck_assert_msg(st == MSC_E_BAD_FORMAT, "status %d: %s", (int)st, msc_last_error());
    ck_assert_msg(strstr(msc_last_error(), "not a BigEarthNet name"), "%s", msc_last_error());
  }
  rm_tree(root);
}
END_TEST

static Suite *hostile_suite(void) {
  Suite *s = suite_create("hostile_data");
  TCase *tc = tcase_create("hostile_data");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_fifo_raster);
  tcase_add_test(tc, test_fifo_tables);
  tcase_add_test(tc, test_fifo_model_and_npy);
  tcase_add_test(tc, test_line_limit_plain);
  tcase_add_test(tc, test_line_limit_zstd_bomb);
  tcase_add_test(tc, test_path_inside);
  tcase_add_test(tc, test_ben2_names_with_slash);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(hostile_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
