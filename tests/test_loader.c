/*
 * test_loader.c — synthetic datasets (msc_synth_write) and the data loader (msc_loader):
 * files, sizes, sample formats and metadata of a synthetic BigEarthNet v2 dataset,
 * byte-identical output for a seed, refusal of foreign directories; the loader's order
 * (every sample once per epoch, the documented permutation, independent of the worker
 * count), errors raised by a worker, and clean shutdown mid-epoch (no thread left).
 *
 * The loader logic is tested over a fake fill function (msci_loader_create_fn), then over a
 * real dataset opened on the synthetic directory.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <time.h>
#include <unistd.h>

#include "data/batch.h"
#include "common/internal.h"
#include "data/loader.h"
#include "mosaic/mosaic.h"
#include "data/raster.h"
#include "train/augment.h"

#define S2P "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP"
#define S1P "S1A_IW_GRDH_1SDV_20170613T165043"

/* ---- helpers ------------------------------------------------------------------------- */

static char g_tmp[256];

/* A fresh directory name under /tmp (not created). */
static const char *tmpdir(const char *tag) {
  static int counter = 0;
  static char buf[8][300];
  char *b = buf[counter % 8];
  snprintf(b, 300, "%s/%s%d", g_tmp, tag, counter++);
  return b;
}

static void rm_rf(const char *path) {
  struct stat sb;
  if (lstat(path, &sb) != 0) return;
  if (S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(path);
    if (d) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rm_rf(sub);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

static void setup(void) {
  snprintf(g_tmp, sizeof g_tmp, "/tmp/msc-test-loader-%ld", (long)getpid());
  rm_rf(g_tmp);
  ck_assert_int_eq(mkdir(g_tmp, 0777), 0);
}

static void teardown(void) {
  rm_rf(g_tmp);
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  ck_assert_ptr_nonnull(b);
  ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return b;
}

/* 1 when both files exist with the same bytes. */
static int same_bytes(const char *a, const char *b) {
  size_t la = 0, lb = 0;
  char *x = read_all(a, &la), *y = read_all(b, &lb);
  int same = x && y && la == lb && memcmp(x, y, la) == 0;
  free(x);
  free(y);
  return same;
}

static void s2_path(char *out, size_t cap, const char *root, int row, int col,
                    const char *band) {
  snprintf(out, cap, "%s/BigEarthNet-S2/" S2P "/" S2P "_%d_%d/" S2P "_%d_%d_%s.tif", root, row,
           col, row, col, band);
}

static void s1_path(char *out, size_t cap, const char *root, int row, int col,
                    const char *pol) {
  snprintf(out, cap, "%s/BigEarthNet-S1/" S1P "/" S1P "_33UUP_%d_%d/" S1P "_33UUP_%d_%d_%s.tif",
           root, row, col, row, col, pol);
}

/* Checks a TIFF's size and sample format with libtiff, and its values with the
 * library's reader. */
static void check_tiff(const char *path, int size, int is_float) {
  TIFF *t = TIFFOpen(path, "r");
  ck_assert_msg(t != NULL, "cannot open %s", path);
  uint32_t w = 0, h = 0;
  uint16_t bps = 0, fmt = 0, spp = 0;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &fmt);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFClose(t);
  ck_assert_int_eq(w, size);
  ck_assert_int_eq(h, size);
  ck_assert_int_eq(spp, 1);
  ck_assert_int_eq(bps, is_float ? 32 : 16);
  ck_assert_int_eq(fmt, is_float ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT);

  msci_raster r;
  ck_assert_int_eq(msci_raster_read(path, &r), MSC_OK);
  ck_assert_int_eq(r.width, size);
  ck_assert_int_eq(r.height, size);
  ck_assert_int_eq(r.bands, 1);
  float lo = 1e30f, hi = -1e30f;
  double sum = 0;
  for (int64_t i = 0; i < r.width * r.height; ++i) {
    float v = r.data[i];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    sum += v;
  }
  if (is_float) {
    ck_assert_msg(lo >= -25.f && hi <= 0.f, "%s: S1 values %g..%g", path, lo, hi);
  } else {
    ck_assert_msg(lo >= 0.f && hi <= 6000.f, "%s: S2 values %g..%g", path, lo, hi);
    ck_assert_msg(sum / (double)(r.width * r.height) > 50.0, "%s: mean too low", path);
  }
  ck_assert_msg(hi > lo, "%s: constant image", path);
  msci_raster_free(&r);
}

/* Counts files whose name ends in ".tmp" under path. */
static int count_tmp(const char *path) {
  DIR *d = opendir(path);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    struct stat sb;
    if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode)) {
      n += count_tmp(sub);
    } else {
      size_t l = strlen(e->d_name);
      if (l > 4 && !strcmp(e->d_name + l - 4, ".tmp")) ++n;
    }
  }
  closedir(d);
  return n;
}

static const char *const k_classes[19] = {
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters"};

static int class_index(const char *name) {
  for (int c = 0; c < 19; ++c)
    if (!strcmp(name, k_classes[c])) return c;
  return -1;
}

/* ---- synthetic BigEarthNet v2 --------------------------------------------------------- */

START_TEST(synth_files_and_metadata) {
  const char *dir = tmpdir("synth");
  ck_assert_int_eq(msc_synth_write(dir, "bigearthnet-v2", 12, 5, NULL), MSC_OK);

  static const char *const bands[12] = {"B01", "B02", "B03", "B04", "B05", "B06",
                                        "B07", "B08", "B8A", "B09", "B11", "B12"};
  static const int sizes[12] = {20, 120, 120, 120, 60, 60, 60, 120, 60, 20, 60, 60};
  char path[4096];
  for (int i = 0; i < 12; ++i) {
    for (int b = 0; b < 12; ++b) {
      s2_path(path, sizeof path, dir, 0, i, bands[b]);
      ck_assert_msg(access(path, R_OK) == 0, "missing %s", path);
      if (i < 2 || b == 1) check_tiff(path, sizes[b], 0);
    }
    for (int p = 0; p < 2; ++p) {
      s1_path(path, sizeof path, dir, 0, i, p ? "VH" : "VV");
      ck_assert_msg(access(path, R_OK) == 0, "missing %s", path);
      if (i < 3) check_tiff(path, 120, 1);
    }
  }
  ck_assert_int_eq(count_tmp(dir), 0);

  /* metadata.tsv: the header and one row per patch, each with valid fields. */
  snprintf(path, sizeof path, "%s/metadata.tsv", dir);
  size_t len = 0;
  char *tsv = read_all(path, &len);
  ck_assert_ptr_nonnull(tsv);
  char *save = NULL;
  char *line = strtok_r(tsv, "\n", &save);
  ck_assert_str_eq(line,
                   "patch_id\ts1_name\ts2v1_name\tsplit\tcountry\tcontains_seasonal_snow\t"
                   "contains_cloud_or_shadow\tlabels");
  int rows = 0, n_train = 0;
  while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
    char *f[8];
    int nf = 0;
    char *s2 = NULL;
    for (char *tok = strtok_r(line, "\t", &s2); tok && nf < 8; tok = strtok_r(NULL, "\t", &s2))
      f[nf++] = tok;
    ck_assert_int_eq(nf, 8);
    char want[256];
    snprintf(want, sizeof want, S2P "_0_%d", rows);
    ck_assert_str_eq(f[0], want);
    snprintf(want, sizeof want, S1P "_33UUP_0_%d", rows);
    ck_assert_str_eq(f[1], want);
    snprintf(want, sizeof want, "S2A_MSIL2A_20170613T101031_0_%d", rows);
    ck_assert_str_eq(f[2], want);
    ck_assert_msg(!strcmp(f[3], "train") || !strcmp(f[3], "validation") ||
                      !strcmp(f[3], "test"),
                  "split %s", f[3]);
    n_train += !strcmp(f[3], "train");
    ck_assert(strlen(f[4]) > 0);
    ck_assert_str_eq(f[5], "false");
    ck_assert_str_eq(f[6], "false");
    int n_labels = 0, last = -1;
    char *s3 = NULL;
    for (char *lab = strtok_r(f[7], ";", &s3); lab; lab = strtok_r(NULL, ";", &s3)) {
      int c = class_index(lab);
      ck_assert_msg(c >= 0, "unknown class \"%s\"", lab);
      ck_assert_int_gt(c, last); /* sorted, no duplicates */
      last = c;
      ++n_labels;
    }
    ck_assert(n_labels >= 1 && n_labels <= 3);
    ++rows;
  }
  ck_assert_int_eq(rows, 12);
  ck_assert_int_gt(n_train, 0);
  free(tsv);
}
END_TEST

START_TEST(synth_deterministic) {
  const char *a = tmpdir("a"), *b = tmpdir("b"), *c = tmpdir("c");
  ck_assert_int_eq(msc_synth_write(a, "bigearthnet-v2", 6, 11, NULL), MSC_OK);
  ck_assert_int_eq(msc_synth_write(b, "bigearthnet-v2", 6, 11, NULL), MSC_OK);
  ck_assert_int_eq(msc_synth_write(c, "bigearthnet-v2", 6, 12, NULL), MSC_OK);
  char pa[4096], pb[4096], pc[4096];
  snprintf(pa, sizeof pa, "%s/metadata.tsv", a);
  snprintf(pb, sizeof pb, "%s/metadata.tsv", b);
  ck_assert(same_bytes(pa, pb));
  static const char *const bands[4] = {"B01", "B02", "B05", "B12"};
  int differ = 0;
  for (int i = 0; i < 6; i += 2)
    for (int k = 0; k < 4; ++k) {
      s2_path(pa, sizeof pa, a, 0, i, bands[k]);
      s2_path(pb, sizeof pb, b, 0, i, bands[k]);
      s2_path(pc, sizeof pc, c, 0, i, bands[k]);
      ck_assert_msg(same_bytes(pa, pb), "%s differs", pb);
      differ += !same_bytes(pa, pc);
    }
  s1_path(pa, sizeof pa, a, 0, 3, "VH");
  s1_path(pb, sizeof pb, b, 0, 3, "VH");
  s1_path(pc, sizeof pc, c, 0, 3, "VH");
  ck_assert(same_bytes(pa, pb));
  ck_assert(!same_bytes(pa, pc));
  ck_assert_int_eq(differ, 12);
  /* Writing again into a dataset directory replaces the files with the same bytes. */
  ck_assert_int_eq(msc_synth_write(b, "bigearthnet-v2", 6, 11, NULL), MSC_OK);
  ck_assert(same_bytes(pa, pb));
}
END_TEST

START_TEST(synth_refuses_foreign_dir) {
  const char *dir = tmpdir("foreign");
  ck_assert_int_eq(mkdir(dir, 0777), 0);
  char path[4096];
  snprintf(path, sizeof path, "%s/thesis.txt", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs("precious\n", f);
  fclose(f);
  ck_assert_int_eq(msc_synth_write(dir, "bigearthnet-v2", 2, 1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "thesis.txt"));
  snprintf(path, sizeof path, "%s/BigEarthNet-S2", dir);
  ck_assert_int_ne(access(path, F_OK), 0); /* nothing written */

  ck_assert_int_eq(msc_synth_write(tmpdir("x"), "sen12ms", 2, 1, NULL), MSC_E_UNSUPPORTED);
  ck_assert_int_eq(msc_synth_write(NULL, "bigearthnet-v2", 2, 1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_synth_write(tmpdir("x"), "bigearthnet-v2", 0, 1, NULL),
                   MSC_E_INVALID_ARGUMENT);
  /* A file where the directory should be. */
  snprintf(path, sizeof path, "%s/thesis.txt", dir);
  ck_assert_int_eq(msc_synth_write(path, "bigearthnet-v2", 1, 1, NULL), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "thesis.txt"));
}
END_TEST

/* The classes are visible in the pixels: single-label patches of a water class are dark
 * in B08 and low in VV; forests are bright in B08. */
START_TEST(synth_labels_in_pixels) {
  const char *dir = tmpdir("px");
  ck_assert_int_eq(msc_synth_write(dir, "bigearthnet-v2", 40, 3, NULL), MSC_OK);
  char path[4096];
  snprintf(path, sizeof path, "%s/metadata.tsv", dir);
  size_t len;
  char *tsv = read_all(path, &len);
  ck_assert_ptr_nonnull(tsv);
  int row = -1, checked = 0;
  char *save = NULL;
  for (char *line = strtok_r(tsv, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save), ++row) {
    if (row < 0) continue;
    const char *labels = strrchr(line, '\t') + 1;
    if (strchr(labels, ';')) continue;
    int c = class_index(labels);
    if (c != 17 && c != 18 && c != 8 && c != 9) continue;
    msci_raster r;
    s2_path(path, sizeof path, dir, 0, row, "B08");
    ck_assert_int_eq(msci_raster_read(path, &r), MSC_OK);
    double m = 0;
    for (int i = 0; i < 120 * 120; ++i) m += r.data[i];
    m /= 120 * 120;
    msci_raster_free(&r);
    s1_path(path, sizeof path, dir, 0, row, "VV");
    ck_assert_int_eq(msci_raster_read(path, &r), MSC_OK);
    double vv = 0;
    for (int i = 0; i < 120 * 120; ++i) vv += r.data[i];
    vv /= 120 * 120;
    msci_raster_free(&r);
    if (c >= 17) {
      ck_assert_msg(m < 600 && vv < -16, "water patch %d: B08 %g VV %g", row, m, vv);
    } else {
      ck_assert_msg(m > 2000 && vv > -12, "forest patch %d: B08 %g VV %g", row, m, vv);
    }
    ++checked;
  }
  ck_assert_int_gt(checked, 0);
  free(tsv);
}
END_TEST

/* ---- the permutation -------------------------------------------------------------------- */

START_TEST(permutation_properties) {
  enum { N = 1000 };
  int64_t *p = malloc(N * sizeof(int64_t)), *q = malloc(N * sizeof(int64_t));
  char *seen = calloc(N, 1);
  msci_loader_permutation(42, 0, N, p);
  for (int i = 0; i < N; ++i) {
    ck_assert(p[i] >= 0 && p[i] < N);
    ck_assert(!seen[p[i]]);
    seen[p[i]] = 1;
  }
  msci_loader_permutation(42, 0, N, q);
  ck_assert_mem_eq(p, q, N * sizeof(int64_t));
  msci_loader_permutation(42, 1, N, q);
  ck_assert(memcmp(p, q, N * sizeof(int64_t)) != 0);
  msci_loader_permutation(43, 0, N, q);
  ck_assert(memcmp(p, q, N * sizeof(int64_t)) != 0);
  int fixed = 0;
  for (int i = 0; i < N; ++i) fixed += p[i] == i;
  ck_assert_int_lt(fixed, 10); /* a shuffle, not the identity */
  msci_loader_permutation(1, 0, 1, q);
  ck_assert_int_eq(q[0], 0);
  free(p);
  free(q);
  free(seen);
}
END_TEST

/* ---- the loader over a fake dataset --------------------------------------------------- */

typedef struct fake {
  int64_t fail_index; /* a sample whose "file" is unreadable, or -1 */
  int32_t delay_us;   /* per batch, to let batches pile up in flight */
  int32_t calls;      /* fills started (atomic enough under the mutex below) */
  pthread_mutex_t mu;
} fake;

/* Modality "x": one 1×2×2 image per sample, every value = the sample index; labels:
 * sample index % 3 one-hot over 3 classes. */
static msc_status fake_fill(void *user, const int64_t *idx, int64_t n, msc_batch *b) {
  fake *f = user;
  pthread_mutex_lock(&f->mu);
  f->calls++;
  pthread_mutex_unlock(&f->mu);
  if (f->delay_us) {
    /* A jittered delay so that workers finish out of order. */
    struct timespec ts = {0, (long)(f->delay_us + (idx[0] % 3) * 1000) * 1000L};
    nanosleep(&ts, NULL);
  }
  if (msc_batch_size(b) != 0) return msci_fail(MSC_E_INTERNAL, "fake: batch not empty");
  float *x = malloc((size_t)n * 4 * sizeof(float));
  uint8_t *y = calloc((size_t)n * 3, 1);
  if (!x || !y) return msci_fail(MSC_E_OUT_OF_MEMORY, "fake");
  for (int64_t i = 0; i < n; ++i) {
    if (idx[i] == f->fail_index) {
      free(x);
      free(y);
      return msci_fail(MSC_E_IO, "sample %lld: /data/fake/patch_%lld_B02.tif: cannot open",
                       (long long)idx[i], (long long)idx[i]);
    }
    for (int j = 0; j < 4; ++j) x[i * 4 + j] = (float)idx[i];
    y[i * 3 + idx[i] % 3] = 1;
  }
  msc_status st = msc_batch_set_modality(b, "x", x, n, 1, 2, 2);
  if (st == MSC_OK) st = msc_batch_set_labels(b, y, n, 3);
  free(x);
  free(y);
  return st;
}

static void fake_init(fake *f) {
  memset(f, 0, sizeof *f);
  f->fail_index = -1;
  pthread_mutex_init(&f->mu, NULL);
}

/* Reads `batches` batches, appending each sample's index to out, sizes to sizes and the
 * epochs to epochs. */
static void drain(msc_loader *l, int n_batches, int64_t *out, int64_t *sizes, int64_t *epochs) {
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int64_t pos = 0;
  for (int k = 0; k < n_batches; ++k) {
    int64_t e = -1;
    ck_assert_int_eq(msc_loader_next(l, b, &e), MSC_OK);
    const msci_batch_modality *m = msci_batch_find(b, "x");
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(b->classes, 3);
    for (int64_t i = 0; i < b->n; ++i) {
      int64_t s = (int64_t)m->data[i * 4];
      ck_assert_int_eq(b->labels[i * 3 + s % 3], 1);
      out[pos++] = s;
    }
    sizes[k] = b->n;
    epochs[k] = e;
  }
  msc_batch_free(b);
}

START_TEST(loader_epochs_and_order) {
  enum { N = 10, BS = 3, EPOCHS = 3, PER = 4 };
  fake f;
  fake_init(&f);
  for (int workers = 0; workers <= 3; workers += 3) {
    msc_loader *l = NULL;
    ck_assert_int_eq(msci_loader_create_fn(N, fake_fill, &f, BS, 99, workers, 0, &l), MSC_OK);
    ck_assert_int_eq(msci_loader_batches_per_epoch(l), PER);
    int64_t got[N * EPOCHS], sizes[PER * EPOCHS], epochs[PER * EPOCHS];
    drain(l, PER * EPOCHS, got, sizes, epochs);
    msc_loader_free(l);
    for (int e = 0; e < EPOCHS; ++e) {
      int64_t perm[N];
      msci_loader_permutation(99, e, N, perm);
      ck_assert_mem_eq(got + e * N, perm, sizeof perm); /* exactly the documented order */
      for (int j = 0; j < PER; ++j) {
        ck_assert_int_eq(epochs[e * PER + j], e);
        ck_assert_int_eq(sizes[e * PER + j], j < PER - 1 ? BS : N % BS);
      }
    }
  }
}
END_TEST

/* msc_loader_create_shard: the shares of R ranks, in rank order, are the unsharded
 * loader's batches (R = 2, 3, 4; uneven splits of 6 with 4); bad shards are refused. */
START_TEST(loader_shards_make_the_global_batch) {
  enum { N = 29, BS = 6, K = 12 };
  fake f;
  fake_init(&f);
  msc_loader *l = NULL;
  ck_assert_int_eq(msci_loader_create_fn(N, fake_fill, &f, BS, 5, 2, 1, &l), MSC_OK);
  int64_t ref[K * BS], ref_sizes[K], ref_epochs[K];
  drain(l, K, ref, ref_sizes, ref_epochs);
  msc_loader_free(l);
  for (int32_t R = 2; R <= 4; ++R) {
    int64_t got[R][K * BS], sizes[R][K], epochs[R][K];
    for (int32_t r = 0; r < R; ++r) {
      ck_assert_int_eq(msci_loader_create_shard_fn(N, fake_fill, &f, BS, 5, 1, 1, r, R, &l),
                       MSC_OK);
      ck_assert_int_eq(msci_loader_batches_per_epoch(l), N / BS);
      drain(l, K, got[r], sizes[r], epochs[r]);
      msc_loader_free(l);
    }
    int64_t pos[4] = {0};
    for (int k = 0; k < K; ++k) {
      int64_t row = 0;
      for (int32_t r = 0; r < R; ++r) {
        ck_assert_int_eq(sizes[r][k], BS * (r + 1) / R - BS * r / R);
        ck_assert_int_eq(epochs[r][k], ref_epochs[k]);
        for (int64_t i = 0; i < sizes[r][k]; ++i, ++row)
          ck_assert_int_eq(got[r][pos[r]++], ref[k * BS + row]);
      }
      ck_assert_int_eq(row, BS);
    }
  }
  ck_assert_int_eq(msci_loader_create_shard_fn(N, fake_fill, &f, BS, 5, 1, 1, 2, 2, &l),
                   MSC_E_INVALID_ARGUMENT); /* rank out of range */
  ck_assert_int_eq(msci_loader_create_shard_fn(N, fake_fill, &f, BS, 5, 1, 0, 0, 2, &l),
                   MSC_E_INVALID_ARGUMENT); /* without drop_last */
  ck_assert_int_eq(msci_loader_create_shard_fn(N, fake_fill, &f, 2, 5, 1, 1, 0, 3, &l),
                   MSC_E_INVALID_ARGUMENT); /* fewer samples than ranks */
  ck_assert_int_eq(msc_loader_create_shard(NULL, BS, 5, 1, 1, 0, 2, &l),
                   MSC_E_INVALID_ARGUMENT);
}
END_TEST

START_TEST(loader_same_batches_any_workers) {
  enum { N = 37, BS = 4, K = 30 };
  int64_t ref[K * BS], ref_sizes[K], ref_epochs[K];
  fake f;
  fake_init(&f);
  f.delay_us = 200;
  int32_t worker_counts[3] = {1, 3, 8};
  for (int w = 0; w < 3; ++w) {
    msc_loader *l = NULL;
    ck_assert_int_eq(msci_loader_create_fn(N, fake_fill, &f, BS, 7, worker_counts[w], 1, &l),
                     MSC_OK);
    ck_assert_int_eq(msci_loader_batches_per_epoch(l), N / BS);
    int64_t got[K * BS], sizes[K], epochs[K];
    drain(l, K, got, sizes, epochs);
    msc_loader_free(l);
    for (int k = 0; k < K; ++k) {
      ck_assert_int_eq(sizes[k], BS); /* drop_last: every batch full */
      ck_assert_int_eq(epochs[k], k / (N / BS));
    }
    /* Within an epoch (9 batches = 36 of the 37 samples) no sample repeats. */
    char seen[N] = {0};
    for (int i = 0; i < (N / BS) * BS; ++i) {
      ck_assert(!seen[got[i]]);
      seen[got[i]] = 1;
    }
    if (w == 0) {
      memcpy(ref, got, sizeof ref);
      memcpy(ref_sizes, sizes, sizeof ref_sizes);
      memcpy(ref_epochs, epochs, sizeof ref_epochs);
    } else {
      ck_assert_mem_eq(got, ref, sizeof ref);
    }
  }
  /* Another seed, another order. */
  msc_loader *l = NULL;
  ck_assert_int_eq(msci_loader_create_fn(N, fake_fill, &f, BS, 8, 2, 1, &l), MSC_OK);
  int64_t got[K * BS], sizes[K], epochs[K];
  drain(l, K, got, sizes, epochs);
  msc_loader_free(l);
  ck_assert(memcmp(got, ref, sizeof ref) != 0);
}
END_TEST

static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

/* The thread count once it settles at `want` (a joined thread's /proc entry may outlive
 * pthread_join by a moment), or whatever it is after 2 s. */
static int threads_settled(int want) {
  int n = count_threads();
  for (int i = 0; i < 200 && n != want; ++i) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
    n = count_threads();
  }
  return n;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

START_TEST(loader_free_mid_epoch) {
  fake f;
  fake_init(&f);
  f.delay_us = 5000;
  const int threads0 = count_threads(), fds0 = count_fds();
  for (int round = 0; round < 3; ++round) {
    msc_loader *l = NULL;
    ck_assert_int_eq(msci_loader_create_fn(100, fake_fill, &f, 4, 1, 4, 0, &l), MSC_OK);
    ck_assert_int_eq(threads_settled(threads0 + 4), threads0 + 4);
    if (round > 0) {
      msc_batch *b = NULL;
      ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
      for (int k = 0; k < round; ++k) ck_assert_int_eq(msc_loader_next(l, b, NULL), MSC_OK);
      msc_batch_free(b);
    }
    /* Batches are being filled right now (5 ms each, 4 workers, 8 slots). */
    msc_loader_free(l);
    ck_assert_int_eq(threads_settled(threads0), threads0);
  }
  /* A loader freed before any batch was ready, and one never read from. */
  msc_loader *l = NULL;
  ck_assert_int_eq(msci_loader_create_fn(5, fake_fill, &f, 2, 1, 0, 0, &l), MSC_OK);
  msc_loader_free(l);
  msc_loader_free(NULL);
  ck_assert_int_eq(threads_settled(threads0), threads0);
  ck_assert_int_eq(count_fds(), fds0);
}
END_TEST

START_TEST(loader_worker_error) {
  enum { N = 12, BS = 4 };
  fake f;
  fake_init(&f);
  f.fail_index = 5;
  int64_t perm[N];
  msci_loader_permutation(3, 0, N, perm);
  int bad = -1;
  for (int i = 0; i < N; ++i)
    if (perm[i] == 5) bad = i / BS;
  msc_loader *l = NULL;
  ck_assert_int_eq(msci_loader_create_fn(N, fake_fill, &f, BS, 3, 2, 0, &l), MSC_OK);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  for (int k = 0; k < N / BS; ++k) {
    int64_t e = -7;
    msc_clear_error();
    msc_status st = msc_loader_next(l, b, &e);
    if (k == bad) {
      ck_assert_int_eq(st, MSC_E_IO);
      ck_assert_int_eq(e, -7); /* untouched */
      ck_assert_ptr_nonnull(strstr(msc_last_error(), "/data/fake/patch_5_B02.tif"));
    } else {
      ck_assert_int_eq(st, MSC_OK);
      ck_assert_int_eq(e, 0);
      ck_assert_int_eq(msc_batch_size(b), BS);
    }
  }
  msc_batch_free(b);
  msc_loader_free(l);
}
END_TEST

START_TEST(loader_bad_arguments) {
  fake f;
  fake_init(&f);
  msc_loader *l = (msc_loader *)&f; /* untouched on error */
  ck_assert_int_eq(msci_loader_create_fn(10, fake_fill, &f, 0, 1, 1, 0, &l),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_loader_create_fn(10, fake_fill, &f, 2, 1, -1, 0, &l),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_loader_create_fn(10, fake_fill, &f, 2, 1, 1000, 0, &l),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_loader_create_fn(0, fake_fill, &f, 2, 1, 1, 0, &l),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_loader_create_fn(3, fake_fill, &f, 4, 1, 1, 1, &l),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_loader_create_fn(3, NULL, &f, 4, 1, 1, 0, &l), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_eq(l, (msc_loader *)&f);
  /* batch_size above the dataset size without drop_last: one batch of everything. */
  ck_assert_int_eq(msci_loader_create_fn(3, fake_fill, &f, 8, 1, 1, 0, &l), MSC_OK);
  ck_assert_int_eq(msci_loader_batches_per_epoch(l), 1);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_loader_next(l, b, NULL), MSC_OK);
  ck_assert_int_eq(msc_batch_size(b), 3);
  ck_assert_int_eq(msc_loader_next(l, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_loader_next(NULL, b, NULL), MSC_E_INVALID_ARGUMENT);
  msc_batch_free(b);
  msc_loader_free(l);
}
END_TEST

/* ---- the loader over a dataset opened on a synthetic directory --------------------------- */

/* A fingerprint of sample i's pixels (every modality) from a batch. */
static uint64_t fingerprint(const msc_batch *b, int64_t i) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t k = 0; k < b->n_mod; ++k) {
    const msci_batch_modality *m = &b->mod[k];
    size_t per = (size_t)(m->c * m->h * m->w);
    const unsigned char *p = (const unsigned char *)(m->data + (size_t)i * per);
    for (size_t j = 0; j < per * sizeof(float); ++j) h = (h ^ p[j]) * 1099511628211ull;
  }
  return h;
}

static msc_dataset *open_synth(const char *dir) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "data.split", "all"), MSC_OK);
  msc_dataset *ds = NULL;
  msc_status st = msc_dataset_open(dir, "bigearthnet-v2", o, &ds);
  ck_assert_msg(st == MSC_OK, "open: %s", msc_last_error());
  msc_options_free(o);
  return ds;
}

START_TEST(loader_over_synthetic_dataset) {
  enum { N = 12, BS = 5 };
  const char *dir = tmpdir("ds");
  ck_assert_int_eq(msc_synth_write(dir, "bigearthnet-v2", N, 21, NULL), MSC_OK);
  msc_dataset *ds = open_synth(dir);
  ck_assert_int_eq(msc_dataset_size(ds), N);
  /* Each sample's fingerprint, read alone. */
  uint64_t fp[N];
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  for (int64_t i = 0; i < N; ++i) {
    msc_batch *one = NULL;
    ck_assert_int_eq(msc_batch_create(&one), MSC_OK);
    ck_assert_int_eq(msc_dataset_fill_batch(ds, &i, 1, one), MSC_OK);
    ck_assert_int_eq(one->n_mod, 2);
    fp[i] = fingerprint(one, 0);
    msc_batch_free(one);
  }
  int64_t seq[2][2 * N];
  for (int w = 0; w < 2; ++w) {
    msc_loader *l = NULL;
    ck_assert_int_eq(msc_loader_create(ds, BS, 5, w ? 3 : 1, 0, &l), MSC_OK);
    int64_t pos = 0;
    for (int k = 0; k < 6; ++k) { /* 2 epochs of 5 + 5 + 2 */
      int64_t e;
      ck_assert_int_eq(msc_loader_next(l, b, &e), MSC_OK);
      ck_assert_int_eq(e, k / 3);
      ck_assert_int_eq(msc_batch_size(b), k % 3 == 2 ? 2 : 5);
      ck_assert_int_eq(b->classes, 19);
      for (int64_t i = 0; i < b->n; ++i) {
        uint64_t h = fingerprint(b, i);
        int64_t s = -1;
        for (int64_t j = 0; j < N; ++j)
          if (fp[j] == h) s = j;
        ck_assert_int_ge(s, 0);
        seq[w][pos++] = s;
      }
    }
    msc_loader_free(l);
    for (int e = 0; e < 2; ++e) {
      int64_t perm[N];
      msci_loader_permutation(5, e, N, perm);
      ck_assert_mem_eq(seq[w] + e * N, perm, sizeof perm);
    }
  }
  ck_assert_mem_eq(seq[0], seq[1], sizeof seq[0]);
  msc_batch_free(b);
  msc_dataset_free(ds);
}
END_TEST

/* The whole data pipeline on 1 or 3 threads: batches from the loader (1 or 3 workers),
 * the same batches filled directly on an OpenMP team of 1 or 3, and two augmented views
 * of every sample and modality computed on that team (as the training step stages them,
 * each thread with its own scratch). Every byte must be the same whatever the counts. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

static uint64_t pipeline_hash(msc_dataset *ds, int32_t workers, int threads) {
  enum { BS = 5, BATCHES = 4, VIEWS = 2 };
  omp_set_num_threads(threads);
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "aug.noise_std", 0.05), MSC_OK);
  msci_aug_cfg cfg;
  ck_assert_int_eq(msci_aug_cfg_parse(o, &cfg), MSC_OK);
  msc_options_free(o);
  uint64_t h = 1469598103934665603ull;
  msc_loader *l = NULL;
  ck_assert_int_eq(msc_loader_create(ds, BS, 3, workers, 0, &l), MSC_OK);
  msc_batch *b = NULL, *direct = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_batch_create(&direct), MSC_OK);
  int64_t perm[64];
  const int64_t n_all = msc_dataset_size(ds);
  ck_assert_int_eq(n_all, 12); /* 3 batches an epoch: 5, 5, 2 */
  for (int k = 0; k < BATCHES; ++k) {
    ck_assert_int_eq(msc_loader_next(l, b, NULL), MSC_OK);
    msci_loader_permutation(3, k / 3, n_all, perm);
    const int64_t first = (k % 3) * BS, n = n_all - first < BS ? n_all - first : BS;
    ck_assert_int_eq(msc_dataset_fill_batch(ds, perm + first, n, direct), MSC_OK);
    ck_assert_int_eq(b->n, n);
    for (int32_t m = 0; m < b->n_mod; ++m) {
      const msci_batch_modality *bm = &b->mod[m];
      const size_t per = (size_t)(bm->c * bm->h * bm->w);
      ck_assert_mem_eq(bm->data, direct->mod[m].data, (size_t)n * per * sizeof(float));
      h = fnv(h, bm->data, (size_t)n * per * sizeof(float));
      float *views = malloc((size_t)VIEWS * (size_t)n * per * sizeof(float));
      float *scratch = malloc((size_t)threads * per * sizeof(float));
      ck_assert_ptr_nonnull(views);
      ck_assert_ptr_nonnull(scratch);
      const int32_t kind = strcmp(bm->name, "s1") == 0 ? 1 /* SAR */ : 2 /* optical */;
      int failed = 0;
#pragma omp parallel for schedule(dynamic) num_threads(threads) reduction(| : failed)
      for (int64_t i = 0; i < n; ++i)
        for (int32_t v = 0; v < VIEWS; ++v)
          failed |=
              msci_augment_view(&cfg, 17, i, v, m, kind, bm->data + (size_t)i * per, bm->c,
                                bm->h, bm->w, views + ((size_t)v * (size_t)n + (size_t)i) * per,
                                scratch + (size_t)omp_get_thread_num() * per) != MSC_OK;
      ck_assert_int_eq(failed, 0);
      h = fnv(h, views, (size_t)VIEWS * (size_t)n * per * sizeof(float));
      free(views), free(scratch);
    }
  }
  msc_loader_free(l);
  msc_batch_free(b);
  msc_batch_free(direct);
  return h;
}

START_TEST(pipeline_same_bytes_any_threads) {
  const char *dir = tmpdir("pipe");
  ck_assert_int_eq(msc_synth_write(dir, "bigearthnet-v2", 12, 4, NULL), MSC_OK);
  msc_dataset *ds = open_synth(dir);
  const int max = omp_get_max_threads();
  const uint64_t one = pipeline_hash(ds, 1, 1);
  ck_assert(pipeline_hash(ds, 3, 3) == one);
  ck_assert(pipeline_hash(ds, 2, 1) == one);
  omp_set_num_threads(max);
  msc_dataset_free(ds);
}
END_TEST

START_TEST(loader_dataset_file_error) {
  const char *dir = tmpdir("dserr");
  ck_assert_int_eq(msc_synth_write(dir, "bigearthnet-v2", 6, 2, NULL), MSC_OK);
  msc_dataset *ds = open_synth(dir);
  char path[4096];
  s2_path(path, sizeof path, dir, 0, 4, "B11");
  ck_assert_int_eq(unlink(path), 0);
  msc_loader *l = NULL;
  ck_assert_int_eq(msc_loader_create(ds, 3, 1, 2, 0, &l), MSC_OK);
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int errors = 0;
  for (int k = 0; k < 2; ++k) {
    msc_status st = msc_loader_next(l, b, NULL);
    if (st != MSC_OK) {
      ++errors;
      ck_assert_msg(strstr(msc_last_error(), S2P "_0_4_B11.tif") != NULL, "message: %s",
                    msc_last_error());
    }
  }
  ck_assert_int_eq(errors, 1);
  msc_batch_free(b);
  msc_loader_free(l);
  msc_dataset_free(ds);
}
END_TEST

/* A batch's pixels read back (msc_batch_modality and its names), and the loader's
 * batches per epoch, against values set here and counts worked out by hand. */
START_TEST(batch_read_back_and_epoch_length) {
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  ck_assert_int_eq(msc_batch_modality_count(b), 0);
  ck_assert_ptr_null(msc_batch_modality_name(b, 0));
  enum { N = 2, C1 = 2, C2 = 3, H = 4, W = 5 };
  float a[N * C1 * H * W], z[N * C2 * H * W], got[N * C2 * H * W];
  for (int i = 0; i < N * C1 * H * W; ++i) a[i] = (float)i * 0.5f - 7.0f;
  for (int i = 0; i < N * C2 * H * W; ++i) z[i] = 1000.0f - (float)i;
  ck_assert_int_eq(msc_batch_set_modality(b, "s1", a, N, C1, H, W), MSC_OK);
  ck_assert_int_eq(msc_batch_set_modality(b, "s2", z, N, C2, H, W), MSC_OK);
  ck_assert_int_eq(msc_batch_modality_count(b), 2);
  ck_assert_str_eq(msc_batch_modality_name(b, 0), "s1");
  ck_assert_str_eq(msc_batch_modality_name(b, 1), "s2");
  ck_assert_ptr_null(msc_batch_modality_name(b, 2));
  ck_assert_ptr_null(msc_batch_modality_name(b, -1));
  int64_t c = 0, h = 0, w = 0;
  /* the shape alone */
  ck_assert_int_eq(msc_batch_modality(b, "s2", NULL, 0, &c, &h, &w), MSC_OK);
  ck_assert(c == C2 && h == H && w == W);
  /* the values, exactly as set */
  ck_assert_int_eq(msc_batch_modality(b, "s1", got, N * C1 * H * W, &c, NULL, NULL), MSC_OK);
  ck_assert_int_eq(c, C1);
  ck_assert_mem_eq(got, a, sizeof a);
  ck_assert_int_eq(msc_batch_modality(b, "s2", got, N * C2 * H * W, NULL, NULL, NULL), MSC_OK);
  ck_assert_mem_eq(got, z, sizeof z);
  /* errors leave out untouched */
  got[0] = 42.0f;
  c = 0;
  ck_assert_int_eq(msc_batch_modality(b, "s2", got, N * C2 * H * W - 1, &c, NULL, NULL),
                   MSC_E_BUFFER_TOO_SMALL);
  ck_assert_int_eq(c, C2); /* the shape is still set */
  ck_assert_float_eq(got[0], 42.0f);
  ck_assert_int_eq(
      msc_batch_modality(b, "s3", got, sizeof got / sizeof got[0], NULL, NULL, NULL),
      MSC_E_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "'s3'"));
  ck_assert_int_eq(msc_batch_modality(NULL, "s1", got, 1, NULL, NULL, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_batch_modality(b, NULL, got, 1, NULL, NULL, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_float_eq(got[0], 42.0f);
  /* a removed modality is gone from the names */
  ck_assert_int_eq(msc_batch_remove_modality(b, "s1"), MSC_OK);
  ck_assert_int_eq(msc_batch_modality_count(b), 1);
  ck_assert_str_eq(msc_batch_modality_name(b, 0), "s2");
  ck_assert_int_eq(msc_batch_modality_count(NULL), 0);
  ck_assert_ptr_null(msc_batch_modality_name(NULL, 0));
  msc_batch_free(b);

  /* 12 samples in batches of 5: 5 + 5 + 2 (3 batches), or 5 + 5 with drop_last (2) */
  const char *dir = tmpdir("epoch");
  ck_assert_int_eq(msc_synth_write(dir, "bigearthnet-v2", 12, 4, NULL), MSC_OK);
  msc_dataset *ds = open_synth(dir);
  ck_assert_int_eq(msc_dataset_size(ds), 12);
  const int64_t want[2] = {3, 2};
  for (int drop = 0; drop < 2; ++drop) {
    msc_loader *l = NULL;
    ck_assert_int_eq(msc_loader_create(ds, 5, 1, 1, drop, &l), MSC_OK);
    ck_assert_int_eq(msc_loader_batches_per_epoch(l), want[drop]);
    msc_loader_free(l);
  }
  msc_loader *l = NULL;
  ck_assert_int_eq(msc_loader_create(ds, 12, 1, 1, 0, &l), MSC_OK);
  ck_assert_int_eq(msc_loader_batches_per_epoch(l), 1);
  msc_loader_free(l);
  ck_assert_int_eq(msc_loader_batches_per_epoch(NULL), 0);
  msc_dataset_free(ds);
}
END_TEST

static Suite *loader_suite(void) {
  Suite *s = suite_create("loader");
  TCase *tc = tcase_create("synth");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, synth_files_and_metadata);
  tcase_add_test(tc, synth_deterministic);
  tcase_add_test(tc, synth_refuses_foreign_dir);
  tcase_add_test(tc, synth_labels_in_pixels);
  suite_add_tcase(s, tc);
  tc = tcase_create("loader");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, permutation_properties);
  tcase_add_test(tc, loader_epochs_and_order);
  tcase_add_test(tc, loader_same_batches_any_workers);
  tcase_add_test(tc, loader_shards_make_the_global_batch);
  tcase_add_test(tc, pipeline_same_bytes_any_threads);
  tcase_add_test(tc, loader_free_mid_epoch);
  tcase_add_test(tc, loader_worker_error);
  tcase_add_test(tc, loader_bad_arguments);
  tcase_add_test(tc, loader_over_synthetic_dataset);
  tcase_add_test(tc, loader_dataset_file_error);
  tcase_add_test(tc, batch_read_back_and_epoch_length);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(loader_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
