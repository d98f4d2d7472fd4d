/*
 * fuzz_common.h — what the fuzz targets of the file-based parsers share: the check that
 * aborts on a broken promise, a private scratch folder (in /dev/shm when there is one, so
 * that writing each input to a file costs no disk I/O), files written into it, links to
 * the real test data, and the status check of a refused input.
 *
 * The parsers behind these targets read paths (libtiff, the line reader, the dataset
 * openers), so each input is written to a file in the scratch folder and the parser is
 * driven through its usual entry point. The folder is one per process, created on the
 * first input and removed at exit. MSC_FUZZ_SOURCE_DIR (set by tests/fuzz/CMakeLists.txt)
 * is the repository, whose tests/data and examples/data give the real files a metadata
 * table can point to.
 */
#ifndef MOSAIC_FUZZ_COMMON_H
#define MOSAIC_FUZZ_COMMON_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mosaic/mosaic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborting is how a fuzz target reports a broken promise. */
#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "%s: check failed: %s (line %d): %s\n", __FILE__, #cond, __LINE__,       \
              msc_last_error());                                                               \
      abort();                                                                                 \
    }                                                                                          \
  } while (0)

static char fuzz_dir_path[128];

static inline int fuzz_rm_one(const char *path, const struct stat *sb, int flag,
                              struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path) == 0 ? 0 : 0; /* (best effort: keep removing the rest) */
}

static inline void fuzz_dir_remove(void) {
  if (fuzz_dir_path[0]) nftw(fuzz_dir_path, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The process's scratch folder, created on the first call (aborts if it cannot be: a
 * target without a place for its input tests nothing). */
static inline const char *fuzz_dir(void) {
  if (fuzz_dir_path[0] == 0) {
    struct stat sb;
    const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/msc_fuzz_%ld", base, (long)getpid());
    fuzz_dir_remove(); /* (a folder left by an earlier process with the same pid) */
    FUZZ_CHECK(mkdir(fuzz_dir_path, 0700) == 0);
    atexit(fuzz_dir_remove);
  }
  return fuzz_dir_path;
}

/* dir/name (a static buffer per call site is the caller's; this one is scratch). */
static inline void fuzz_path(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", fuzz_dir(), name);
}

/* Writes data to path (replacing it); aborts if it cannot. */
static inline void fuzz_write(const char *path, const void *data, size_t size) {
  FILE *fp = fopen(path, "wb");
  FUZZ_CHECK(fp != NULL);
  FUZZ_CHECK(size == 0 || fwrite(data, 1, size, fp) == size);
  FUZZ_CHECK(fclose(fp) == 0);
}

/* mkdir -p of a folder under the scratch folder (rel has no leading '/'). */
static inline void fuzz_mkdirs(const char *rel) {
  char p[1024];
  fuzz_path(p, sizeof p, rel);
  for (char *s = p + strlen(fuzz_dir()) + 1; *s; ++s) {
    if (*s != '/') continue;
    *s = '\0';
    mkdir(p, 0700);
    *s = '/';
  }
  mkdir(p, 0700);
}

/* A copy at scratch/rel of the repository file src_rel (e.g. "tests/data/..."): inside
 * the dataset root, where a table's paths are confined (data.allow_outside_root; a link
 * would resolve outside it). */
static inline void fuzz_copy(const char *src_rel, const char *rel) {
  char from[1024], to[1024];
  snprintf(from, sizeof from, "%s/%s", MSC_FUZZ_SOURCE_DIR, src_rel);
  fuzz_path(to, sizeof to, rel);
  FILE *in = fopen(from, "rb");
  FUZZ_CHECK(in != NULL);
  FILE *out = fopen(to, "wb");
  FUZZ_CHECK(out != NULL);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) FUZZ_CHECK(fwrite(buf, 1, n, out) == n);
  FUZZ_CHECK(!ferror(in) && fclose(out) == 0);
  fclose(in);
}

/* A link at scratch/rel to the repository file src_rel (e.g. "tests/data/..."): for
 * formats whose folders are not confined to the root, or to reach a file outside it. */
static inline void fuzz_link(const char *src_rel, const char *rel) {
  char from[1024], to[1024];
  snprintf(from, sizeof from, "%s/%s", MSC_FUZZ_SOURCE_DIR, src_rel);
  fuzz_path(to, sizeof to, rel);
  unlink(to);
  FUZZ_CHECK(symlink(from, to) == 0);
}

/* The statuses a dataset opener may refuse hostile metadata with (mosaic.h,
 * msc_dataset_open); anything else is a bug. */
static inline int fuzz_open_status_ok(msc_status st) {
  return st == MSC_E_BAD_FORMAT || st == MSC_E_NOT_FOUND || st == MSC_E_IO ||
         st == MSC_E_OUT_OF_MEMORY;
}

/* The status of the last fuzz_open_dataset. */
static msc_status fuzz_open_status;

/* Options from key/value string pairs (NULL-terminated; a value "#<n>" sets the integer n). */
static inline msc_options *fuzz_options(const char *const *kv) {
  msc_options *o = NULL;
  FUZZ_CHECK(msc_options_create(&o) == MSC_OK);
  for (int i = 0; kv[i]; i += 2) {
    if (kv[i + 1][0] == '#')
      FUZZ_CHECK(msc_options_set_int(o, kv[i], strtoll(kv[i + 1] + 1, NULL, 10)) == MSC_OK);
    else
      FUZZ_CHECK(msc_options_set_string(o, kv[i], kv[i + 1]) == MSC_OK);
  }
  return o;
}

/* Opens root as format with the options kv (fuzz_options), and checks the promises of
 * msc_dataset_open: a refused table gives a documented status (also_ok: one more that
 * the options make legitimate, or MSC_OK for none), a message, and leaves *out
 * untouched. Returns the dataset, or NULL when it was refused. */
static inline msc_dataset *fuzz_open_dataset(const char *root, const char *format,
                                             const char *const *kv, msc_status also_ok) {
  msc_options *o = fuzz_options(kv);
  msc_dataset *sentinel = (msc_dataset *)&sentinel;
  msc_dataset *ds = sentinel;
  msc_status st = msc_dataset_open(root, format, o, &ds);
  msc_options_free(o);
  fuzz_open_status = st;
  if (st != MSC_OK) {
    const int ok = fuzz_open_status_ok(st) || st == also_ok;
    if (!ok || getenv("MSC_FUZZ_VERBOSE"))
      fprintf(stderr, "msc_dataset_open: status %d: %s\n", (int)st, msc_last_error());
    FUZZ_CHECK(ok);
    FUZZ_CHECK(ds == sentinel);
    FUZZ_CHECK(msc_last_error()[0] != '\0'); /* a refusal says why */
    return NULL;
  }
  FUZZ_CHECK(ds != sentinel && ds != NULL);
  return ds;
}

/* The promises of an opened dataset, through the public getters: counts in range, every
 * sample's id readable with the size protocol, every modality with bands and a size, and
 * the first fill_n (at most 8) samples read into a batch, with multi-hot labels. strict:
 * the read must succeed (the table can only point at the real, readable test files);
 * otherwise a read error documented for msc_dataset_fill_batch is accepted too. */
static inline void fuzz_check_dataset(const msc_dataset *ds, int64_t fill_n, int strict) {
  const int64_t n = msc_dataset_size(ds), c = msc_dataset_class_count(ds);
  if (getenv("MSC_FUZZ_VERBOSE")) /* (to see what a corpus file reaches) */
    fprintf(stderr, "dataset: %lld samples, %lld skipped, %lld classes\n", (long long)n,
            (long long)msc_dataset_skipped(ds), (long long)c);
  FUZZ_CHECK(n >= 0 && msc_dataset_skipped(ds) >= 0 && c >= 0);
  FUZZ_CHECK(msc_dataset_labeled_count(ds) >= 0 && msc_dataset_labeled_count(ds) <= n);
  for (int64_t k = 0; k < c; ++k) FUZZ_CHECK(msc_dataset_class_name(ds, k) != NULL);
  FUZZ_CHECK(msc_dataset_class_name(ds, c) == NULL);
  const int32_t m = msc_dataset_modality_count(ds);
  FUZZ_CHECK(m >= 1);
  for (int32_t k = 0; k < m; ++k) {
    int64_t bands = 0, size = 0;
    FUZZ_CHECK(msc_dataset_modality_shape(ds, k, &bands, &size) == MSC_OK);
    FUZZ_CHECK(bands >= 1 && size >= 1);
    FUZZ_CHECK(msc_dataset_modality_name(ds, k) != NULL);
  }
  for (int64_t i = 0; i < n && i < 256; ++i) {
    size_t len = 0;
    FUZZ_CHECK(msc_dataset_sample_id(ds, i, NULL, 0, &len) == MSC_E_BUFFER_TOO_SMALL);
    char *id = malloc(len + 1);
    FUZZ_CHECK(id != NULL);
    FUZZ_CHECK(msc_dataset_sample_id(ds, i, id, len + 1, NULL) == MSC_OK);
    FUZZ_CHECK(strlen(id) == len);
    free(id);
  }
  if (n == 0 || fill_n <= 0) return;
  if (fill_n > n) fill_n = n;
  msc_batch *b = NULL;
  FUZZ_CHECK(msc_batch_create(&b) == MSC_OK);
  int64_t idx[8];
  for (int64_t i = 0; i < fill_n && i < 8; ++i) idx[i] = i;
  msc_status st = msc_dataset_fill_batch(ds, idx, fill_n < 8 ? fill_n : 8, b);
  if (st != MSC_OK)
    fprintf(stderr, "msc_dataset_fill_batch: status %d: %s\n", (int)st, msc_last_error());
  FUZZ_CHECK(st == MSC_OK ||
             (!strict && (st == MSC_E_IO || st == MSC_E_BAD_FORMAT || st == MSC_E_UNSUPPORTED ||
                          st == MSC_E_NUMERICAL || st == MSC_E_OUT_OF_MEMORY)));
  if (st != MSC_OK) {
    msc_batch_free(b);
    return;
  }
  if (c > 0) {
    uint8_t lab[8 * 64];
    int64_t cc = 0;
    if (msc_batch_labels(b, lab, sizeof lab, &cc) == MSC_OK) {
      FUZZ_CHECK(cc == c);
      for (int64_t i = 0; i < (fill_n < 8 ? fill_n : 8) * c; ++i) FUZZ_CHECK(lab[i] <= 1);
    }
  }
  msc_batch_free(b);
}

#endif
